"""The DingTalk twin's approval desk (issue #17): instances oafin creates, and who decides them.

``processinstance/create`` starts a RUNNING instance with one RUNNING task per approver (the
call's ``approvers``, else the form's own flow: ``default_approvers``) and the
START_PROCESS_INSTANCE record; ``process/instance/execute`` agrees or refuses a task
(EXECUTE_TASK_NORMAL records, source-systems.md §1.4); ``process/instance/terminate`` withdraws
(TERMINATE_PROCESS_INSTANCE, status TERMINATED). All approvers must agree (会签); one refusal
completes the instance as refused.

The scripted approver (``Script``) stands in for the people at their phones: set on the state
(``DingTalkState.script``, or ``oafin sandbox serve`` / the demo), it decides every new instance of
the corrections form once the instance has been read ``after_reads`` times:

- ``approve``: every approver agrees;
- ``reject``: the first approver refuses;
- ``applicant``: the applicant of the first row's claim (from the month's instances) agrees, and
  so does every other approver: the case oafin must refuse (segregation of duties);
- ``withdraw``: the originator withdraws the instance.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from oafin.systems.dingtalk.approvals import BATCH_FIELD, TABLE_FIELD

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
CORRECTIONS_PROCESS_CODE: Final = "PROC-OAFIN-CORRECTIONS"  # the sandbox's corrections form
Outcome = Literal["approve", "reject", "applicant", "withdraw"]
OUTCOMES: Final = ("approve", "reject", "applicant", "withdraw")


class DeskError(ValueError):
    """A call the real API would refuse; the message is the ``sub_msg``."""


@dataclass
class Script:
    outcome: Outcome
    userid: str | None = None  # who acts instead of the default (see the module docstring)
    after_reads: int = 1  # reads that still see the instance running; the next one sees the decision


def _now() -> str:
    return datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _record(userid: str, op: str, result: str, remark: str = "") -> dict[str, Any]:
    return {
        "userid": userid,
        "date": _now(),
        "operation_type": op,
        "operation_result": result,
        "remark": remark,
    }


class ApprovalDesk:
    """Created instances live in the twin's ``instances`` (so ``get`` and ``listids`` serve them)."""

    def __init__(
        self,
        instances: dict[str, dict[str, Any]],
        index: Callable[[str, str, str], None],
        known_users: set[str],
        default_approvers: list[str],
        applicant_of_claim: dict[str, str],
    ) -> None:
        self.instances = instances
        self.index = index  # (process_code, create_time, instance_id): listids serves it
        self.known_users = known_users
        self.default_approvers = default_approvers
        self.applicant_of_claim = applicant_of_claim
        self.process_code = CORRECTIONS_PROCESS_CODE  # the corrections form an admin made
        self.forms: set[str] = {CORRECTIONS_PROCESS_CODE}
        self.created: dict[str, dict[str, Any]] = {}  # instance id -> {"rows", "reads"}
        self.script: Script | None = None
        self.calls: list[dict[str, Any]] = []  # create/execute/terminate received, in order

    def set_script(self, outcome: str, userid: str | None = None, after_reads: int = 1) -> None:
        """Let the scripted approver decide every new instance (see the module docstring)."""
        if outcome not in OUTCOMES:
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        self.script = Script(outcome, userid, after_reads)  # type: ignore[arg-type]

    # --- the API's side ---------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> str:
        code = str(body.get("process_code") or "")
        if code not in self.forms:
            raise DeskError(f"process_code {code} does not exist")
        originator = str(body.get("originator_user_id") or "")
        if originator not in self.known_users:
            raise DeskError(f"originator_user_id {originator!r} is not a user of this organisation")
        values = body.get("form_component_values")
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            raise DeskError("form_component_values must be a list of {name, value}")
        by_name = {str(v.get("name")): v.get("value") for v in values}
        if not by_name.get(BATCH_FIELD) or TABLE_FIELD not in by_name:
            raise DeskError(f"the form's required fields {BATCH_FIELD}, {TABLE_FIELD} are missing")
        try:
            rows = json.loads(str(by_name[TABLE_FIELD]))
            assert isinstance(rows, list) and all(isinstance(r, list) for r in rows)
        except (ValueError, AssertionError):
            raise DeskError(f"{TABLE_FIELD} must be a JSON list of rows") from None
        approvers = [a for a in str(body.get("approvers") or "").split(",") if a] or self.default_approvers
        unknown = [a for a in approvers if a not in self.known_users]
        if unknown:
            raise DeskError(f"approvers {unknown} are not users of this organisation")
        iid = uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[:4] + "-oafin"
        now = _now()
        self.instances[iid] = {
            "title": f"oafin 对账更正审批（{len(rows)} 项）",
            "create_time": now,
            "originator_userid": originator,
            "originator_dept_id": str(body.get("dept_id") or "-1"),
            "status": "RUNNING",
            "result": "",
            "approver_userids": list(approvers),
            "cc_userids": [],
            "business_id": iid[:8],
            "biz_action": "NONE",
            "attached_process_instance_ids": [],
            "main_process_instance_id": "",
            "form_component_values": [_read_back(str(k), v) for k, v in by_name.items()],
            "operation_records": [_record(originator, "START_PROCESS_INSTANCE", "NONE")],
            "tasks": [
                {
                    "userid": a,
                    "task_status": "RUNNING",
                    "task_result": "NONE",
                    "create_time": now,
                    "taskid": str(60_000_000 + i),
                }
                for i, a in enumerate(approvers, 1)
            ],
        }
        self.created[iid] = {"rows": rows, "reads": 0}
        self.index(code, now, iid)
        self.calls.append({"call": "processinstance/create", "body": body, "instance_id": iid, "at": now})
        return iid

    def execute(
        self, iid: str, userid: str, result: str, task_id: str | None = None, remark: str = ""
    ) -> None:
        instance = self._running(iid)
        if result not in ("agree", "refuse"):
            raise DeskError("result must be agree or refuse")
        task = next(
            (
                t
                for t in instance["tasks"]
                if t["userid"] == userid
                and t["task_status"] == "RUNNING"
                and (task_id is None or str(t["taskid"]) == str(task_id))
            ),
            None,
        )
        if task is None:
            raise DeskError(f"user {userid} has no running task on instance {iid}")
        task.update(task_status="COMPLETED", task_result=result.upper(), finish_time=_now())
        instance["operation_records"] = [
            *instance["operation_records"],
            _record(userid, "EXECUTE_TASK_NORMAL", result.upper(), "同意" if result == "agree" else "驳回"),
        ]
        if result == "refuse":
            self._finish(instance, "COMPLETED", "refuse")
        elif all(t["task_result"] == "AGREE" for t in instance["tasks"]):
            self._finish(instance, "COMPLETED", "agree")
        self.calls.append({"call": "process/instance/execute", "instance_id": iid, "userid": userid})

    def terminate(self, iid: str, userid: str, remark: str = "撤销") -> None:
        instance = self._running(iid)
        if userid != instance["originator_userid"]:
            raise DeskError(f"only the originator may withdraw instance {iid}")
        for t in instance["tasks"]:
            if t["task_status"] == "RUNNING":
                t["task_status"] = "CANCELED"
        instance["operation_records"] = [
            *instance["operation_records"],
            _record(userid, "TERMINATE_PROCESS_INSTANCE", "NONE", remark),
        ]
        self._finish(instance, "TERMINATED", "")
        self.calls.append({"call": "process/instance/terminate", "instance_id": iid, "userid": userid})

    def on_read(self, iid: str) -> None:
        """``processinstance/get`` of ``iid``: the scripted approver acts once its reads are done."""
        made = self.created.get(iid)
        if made is None:
            return
        made["reads"] += 1
        script = self.script
        if (
            script is not None
            and made["reads"] > script.after_reads
            and self.instances[iid]["status"] == "RUNNING"
        ):
            self.decide(iid, script.outcome, script.userid)

    # --- the scripted approver --------------------------------------------------------------
    def applicant_of(self, iid: str) -> str:
        rows = self.created[iid]["rows"]
        claim_no = next(
            (c.get("value") for c in (rows[0] if rows else []) if c.get("name") == "报销单号"), None
        )
        userid = self.applicant_of_claim.get(str(claim_no))
        if userid is None:
            raise DeskError(f"no applicant known for claim {claim_no!r} of instance {iid}")
        return userid

    def decide(self, iid: str, outcome: str, userid: str | None = None) -> None:
        """Decide ``iid`` as ``outcome`` (see the module docstring) through the API's own steps."""
        instance = self._running(iid)
        if outcome == "withdraw":
            self.terminate(iid, userid or instance["originator_userid"])
            return
        holders = [t["userid"] for t in instance["tasks"] if t["task_status"] == "RUNNING"]
        if outcome == "reject":
            self.execute(iid, userid or holders[0], "refuse")
            return
        if outcome == "applicant":
            who = userid or self.applicant_of(iid)
            if who not in holders:  # the form's flow routes the claim's own department head to it
                instance["tasks"].append(
                    {
                        "userid": who,
                        "task_status": "RUNNING",
                        "task_result": "NONE",
                        "create_time": _now(),
                        "taskid": str(60_000_000 + len(instance["tasks"]) + 1),
                    }
                )
                instance["approver_userids"] = [*instance["approver_userids"], who]
            holders = [who, *(h for h in holders if h != who)]
        elif outcome != "approve":
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        elif userid is not None:
            holders = [userid]
        for who in holders:
            self.execute(iid, who, "agree")

    def _running(self, iid: str) -> dict[str, Any]:
        instance = self.instances.get(iid)
        if instance is None or iid not in self.created:
            raise DeskError(f"instance {iid} does not exist")
        if instance["status"] != "RUNNING":
            raise DeskError(f"instance {iid} is {instance['status']}, not running")
        return instance

    @staticmethod
    def _finish(instance: dict[str, Any], status: str, result: str) -> None:
        instance.update(status=status, result=result, finish_time=_now())


def _read_back(name: str, value: Any) -> dict[str, Any]:
    """A form value as ``processinstance/get`` returns it; a table in the ``rowValue`` shape
    (real-clients.md §2.7)."""
    if name == TABLE_FIELD:
        rows = json.loads(str(value))
        shown = [
            {
                "rowValue": [
                    {
                        "componentType": "TextField",
                        "label": c.get("name"),
                        "value": c.get("value"),
                        "key": c.get("name"),
                    }
                    for c in row
                ],
                "rowNumber": str(i),
            }
            for i, row in enumerate(rows, 1)
        ]
        return {
            "name": name,
            "value": json.dumps(shown, ensure_ascii=False),
            "ext_value": json.dumps({"statValue": [], "componentName": "TableField"}),
            "component_type": "TableField",
        }
    return {"name": name, "value": "" if value is None else str(value), "component_type": "TextField"}
