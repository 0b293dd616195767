"""The Feishu twin's approval desk (issue #17): instances oafin creates, and who decides them.

``POST /open-apis/approval/v4/instances`` (real-clients.md §4.3) starts a PENDING instance: an
``AUTO_PASS`` node first (no user, as real-clients.md §2.2 logs it: the form's flow passes a step by
itself), then one PENDING ``AND`` task per approver (the call's ``node_approver_open_id_list`` /
``node_approver_user_id_list``, else the definition's own flow: ``default_approvers``), and the
timeline's START and AUTO_PASS entries. A ``uuid`` already used fails with 60012 (§4.3). All
approvers must agree (会签); one refusal completes the instance REJECTED; the originator's
withdrawal makes it CANCELED with a timeline CANCEL entry (the shapes twin_render gives the
month's instances).

The scripted approver (``Script``, as the DingTalk twin's) decides every new instance of the
corrections definition once it has been read ``after_reads`` times: ``approve`` (every approver
agrees), ``reject`` (the first refuses), ``applicant`` (the applicant of the first row's claim
agrees, and every other approver: the case oafin must refuse), ``withdraw`` (the originator).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from oafin.systems.dingtalk.twin_approvals import OUTCOMES, DeskError, Script
from oafin.systems.feishu.approvals import BATCH_ID, TABLE_ID

CORRECTIONS_APPROVAL_CODE: Final = "0AF1C0DE-0000-4C0E-A000-C0229EC71045"  # the sandbox's definition
DUPLICATE_UUID: Final = 60012  # real-clients.md §4.3


class FeishuDeskError(DeskError):
    """A call the real API would refuse; ``code`` is Feishu's (1390001 param invalid by default)."""

    def __init__(self, message: str, code: int = 1390001) -> None:
        super().__init__(message)
        self.code = code


def _now() -> str:
    return str(int(datetime.now().timestamp() * 1000))


class FeishuApprovalDesk:
    """Created instances live in the twin's ``instances`` (so instance get and the list serve them)."""

    def __init__(
        self,
        instances: dict[str, dict[str, Any]],
        index: Callable[[str, int, str], None],
        users: dict[str, str],
        default_approvers: list[str],
        applicant_of_claim: dict[str, str],
    ) -> None:
        self.instances = instances
        self.index = index  # (approval_code, start ms, instance_code): the list serves it
        self.users = users  # open_id -> user_id
        self.by_user_id = {u: o for o, u in users.items()}
        self.default_approvers = default_approvers  # open_ids
        self.applicant_of_claim = applicant_of_claim  # claim_no -> open_id
        self.process_code = CORRECTIONS_APPROVAL_CODE  # the corrections definition an admin made
        self.forms: set[str] = {CORRECTIONS_APPROVAL_CODE}
        self.created: dict[str, dict[str, Any]] = {}  # instance code -> {"rows", "reads"}
        self.uuids: set[str] = set()
        self.script: Script | None = None
        self.calls: list[dict[str, Any]] = []

    def set_script(self, outcome: str, userid: str | None = None, after_reads: int = 1) -> None:
        if outcome not in OUTCOMES:
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        self.script = Script(outcome, userid, after_reads)  # type: ignore[arg-type]

    def _open_id(self, body: dict[str, Any], prefix: str = "") -> str | None:
        if body.get(f"{prefix}open_id"):
            return str(body[f"{prefix}open_id"]) if body[f"{prefix}open_id"] in self.users else None
        return self.by_user_id.get(str(body.get(f"{prefix}user_id") or ""))

    def _person(self, open_id: str) -> dict[str, str]:
        return {"open_id": open_id, "user_id": self.users[open_id]}

    # --- the API's side ---------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> str:
        code = str(body.get("approval_code") or "")
        if code not in self.forms:
            raise FeishuDeskError(f"approval code {code} not found", 1390002)
        originator = self._open_id(body)
        if originator is None:
            raise FeishuDeskError("open_id or user_id is not a user of this tenant")
        key = str(body.get("uuid") or "")
        if key and (len(key) > 64 or key in self.uuids):
            raise FeishuDeskError(f"uuid {key} already used", DUPLICATE_UUID)
        try:
            widgets = json.loads(str(body.get("form") or ""))
            assert isinstance(widgets, list) and all(isinstance(w, dict) for w in widgets)
        except (ValueError, AssertionError):
            raise FeishuDeskError("form must be a JSON string of widgets") from None
        by_id = {str(w.get("id")): w for w in widgets}
        table = by_id.get(TABLE_ID, {})
        rows = table.get("value")
        if not by_id.get(BATCH_ID, {}).get("value") or table.get("type") != "fieldList":
            raise FeishuDeskError(f"the form's required widgets {BATCH_ID}, {TABLE_ID} are missing")
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise FeishuDeskError(f"{TABLE_ID} must be a 2-D array of widgets")
        approvers: list[str] = []
        for kind in ("open_id", "user_id"):
            for node in body.get(f"node_approver_{kind}_list") or []:
                for who in node.get("value") or []:
                    found = who if kind == "open_id" and who in self.users else self.by_user_id.get(who)
                    if found is None:
                        raise FeishuDeskError(f"approver {who} is not a user of this tenant")
                    approvers.append(found)
        approvers = approvers or list(self.default_approvers)
        iid = str(uuid.uuid4()).upper()
        now = _now()
        auto = {"id": f"{iid[:8]}-0", "node_id": "node_auto", "node_name": "自动通过", "open_id": ""}
        self.instances[iid] = {
            "approval_code": code,
            "approval_name": "oafin 对账更正审批",
            "department_id": str(body.get("department_id") or ""),
            "end_time": "0",
            "form": json.dumps(
                [{**w, "custom_id": w.get("id"), "name": w.get("id")} for w in widgets], ensure_ascii=False
            ),
            "instance_code": iid,
            **self._person(originator),
            "reverted": False,
            "serial_number": iid[:8],
            "start_time": now,
            "status": "PENDING",
            "task_list": [
                {**auto, "start_time": now, "end_time": now, "status": "APPROVED", "type": "AUTO_PASS"},
                *(
                    {
                        "id": f"{iid[:8]}-{i}",
                        "node_id": "oafin_approve",
                        "node_name": "审批",
                        **self._person(a),
                        "start_time": now,
                        "end_time": "0",
                        "status": "PENDING",
                        "type": "AND",
                    }
                    for i, a in enumerate(approvers, 1)
                ),
            ],
            "timeline": [
                {
                    "create_time": now,
                    "ext": "{}",
                    "node_key": "START",
                    "type": "START",
                    **self._person(originator),
                },
                {
                    "create_time": now,
                    "ext": "{}",
                    "node_key": "node_auto",
                    "open_id": "",
                    "task_id": auto["id"],
                    "type": "AUTO_PASS",
                },
            ],
            "uuid": key or iid,
        }
        if key:
            self.uuids.add(key)
        self.created[iid] = {"rows": rows, "reads": 0}
        self.index(code, int(now), iid)
        self.calls.append({"call": "instances/create", "body": body, "instance_id": iid, "at": now})
        return iid

    def act(self, iid: str, open_id: str, status: str, comment: str = "") -> None:
        """A task's holder approves (``APPROVED``) or rejects (``REJECTED``) it."""
        instance = self._running(iid)
        task = next(
            (t for t in instance["task_list"] if t.get("open_id") == open_id and t["status"] == "PENDING"),
            None,
        )
        if task is None:
            raise FeishuDeskError(f"user {open_id} has no pending task on instance {iid}")
        now = _now()
        task.update(status=status, end_time=now)
        instance["timeline"].append(
            {
                "create_time": now,
                "ext": json.dumps({"comment": comment}, ensure_ascii=False) if comment else "{}",
                "node_key": task["node_id"],
                "task_id": task["id"],
                "type": "PASS" if status == "APPROVED" else "REJECT",
                **self._person(open_id),
            }
        )
        if status == "REJECTED":
            self._finish(instance, "REJECTED")
        elif all(t["status"] == "APPROVED" for t in instance["task_list"]):
            self._finish(instance, "APPROVED")
        self.calls.append({"call": f"tasks/{status.lower()}", "instance_id": iid, "open_id": open_id})

    def cancel(self, iid: str, open_id: str) -> None:
        instance = self._running(iid)
        if open_id != instance["open_id"]:
            raise FeishuDeskError(f"only the originator may withdraw instance {iid}")
        for t in instance["task_list"]:
            if t["status"] == "PENDING":
                t["status"] = "DONE"
        instance["timeline"].append(
            {"create_time": _now(), "ext": "{}", "node_key": "", "type": "CANCEL", **self._person(open_id)}
        )
        self._finish(instance, "CANCELED")
        self.calls.append({"call": "instances/cancel", "instance_id": iid, "open_id": open_id})

    def on_read(self, iid: str) -> None:
        made = self.created.get(iid)
        if made is None:
            return
        made["reads"] += 1
        script = self.script
        if (
            script is not None
            and made["reads"] > script.after_reads
            and self.instances[iid]["status"] == "PENDING"
        ):
            self.decide(iid, script.outcome, script.userid)

    # --- the scripted approver --------------------------------------------------------------
    def applicant_of(self, iid: str) -> str:
        rows = self.created[iid]["rows"]
        claim_no = next(
            (c.get("value") for c in (rows[0] if rows else []) if c.get("id") == "oafin_claim"), None
        )
        who = self.applicant_of_claim.get(str(claim_no))
        if who is None:
            raise DeskError(f"no applicant known for claim {claim_no!r} of instance {iid}")
        return who

    def decide(self, iid: str, outcome: str, userid: str | None = None) -> None:
        instance = self._running(iid)
        if outcome == "withdraw":
            self.cancel(iid, userid or instance["open_id"])
            return
        holders = [t["open_id"] for t in instance["task_list"] if t["status"] == "PENDING"]
        if outcome == "reject":
            self.act(iid, userid or holders[0], "REJECTED", "驳回")
            return
        if outcome == "applicant":
            who = userid or self.applicant_of(iid)
            if who not in holders:  # the flow routes the claim's own department head to it
                n = len(instance["task_list"])
                instance["task_list"].append(
                    {
                        "id": f"{iid[:8]}-{n}",
                        "node_id": "oafin_approve",
                        "node_name": "审批",
                        **self._person(who),
                        "start_time": _now(),
                        "end_time": "0",
                        "status": "PENDING",
                        "type": "AND",
                    }
                )
            holders = [who, *(h for h in holders if h != who)]
        elif outcome != "approve":
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        elif userid is not None:
            holders = [userid]
        for who in holders:
            self.act(iid, who, "APPROVED", "同意")

    def _running(self, iid: str) -> dict[str, Any]:
        instance = self.instances.get(iid)
        if instance is None or iid not in self.created:
            raise FeishuDeskError(f"instance {iid} not found", 1390003)
        if instance["status"] != "PENDING":
            raise FeishuDeskError(f"instance {iid} is {instance['status']}, not pending")
        return instance

    @staticmethod
    def _finish(instance: dict[str, Any], status: str) -> None:
        instance.update(status=status, end_time=_now())
