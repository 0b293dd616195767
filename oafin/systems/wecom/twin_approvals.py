"""The WeCom twin's approval desk (issue #17): forms oafin submits, and who decides them.

``oa/gettemplatedetail`` serves the corrections template (``TEMPLATE``: the controls by title
and id an admin's template would have); ``oa/applyevent`` (real-clients.md §4.2) checks the body as
WeCom does (301025 for a bad parameter or a template mismatch, every Table row with every column;
301055 for a creator outside the app's visibility) and starts a form at ``sp_status`` 1 with one
``sp_record`` node (``approverattr`` 2, all must approve) holding one detail per approver (the
call's ``approver``, or with ``use_template_approver`` 1 the template's flow: ``default_approvers``).
An approver agrees (detail ``sp_status`` 2) or refuses (3, the form 3); all agreed, the form is 2;
the applicant withdraws (form 4, 已撤销).

The scripted approver (``Script``, as the DingTalk twin's) decides every new form once it has been
read ``after_reads`` times: ``approve``, ``reject`` (the first approver), ``applicant`` (the
applicant of the first row's claim agrees too), ``withdraw`` (the applicant of the form).
"""

from __future__ import annotations

import bisect
import time
from typing import Any, Final

from oafin.systems.dingtalk.twin_approvals import OUTCOMES, DeskError, Script
from oafin.systems.wecom.approvals import BATCH_TITLE, COLUMNS, REPORT_TITLE, SUMMARY_TITLE, TABLE_TITLE

CORRECTIONS_TEMPLATE_ID: Final = (
    "3WLJF6naF9ZGmVCqWRzT1dVdkjTNF8WCkGDhTiHW"  # the sandbox's corrections template
)
BAD_PARAM: Final = 301025
NO_PERMISSION: Final = 301055


def _prop(control: str, cid: str, title: str) -> dict[str, Any]:
    return {
        "control": control,
        "id": cid,
        "title": [{"text": title, "lang": "zh_CN"}],
        "require": 1,
        "un_print": 0,
    }


FORM_DESIGN: Final = {
    BATCH_TITLE: ("Text", "Text-1730000000001"),
    REPORT_TITLE: ("Text", "Text-1730000000002"),
    SUMMARY_TITLE: ("Textarea", "Textarea-1730000000003"),
    TABLE_TITLE: ("Table", "Table-1730000000004"),
}
COLUMN_DESIGN: Final = {title: ("Text", f"Text-17300000001{i:02d}") for i, title in enumerate(COLUMNS, 1)}
TEMPLATE: Final = {
    "template_names": [{"text": "oafin 对账更正审批", "lang": "zh_CN"}],
    "template_content": {
        "controls": [
            {
                "property": _prop(control, cid, title),
                "config": (
                    {
                        "table": {
                            "children": [{"property": _prop(c, i, t)} for t, (c, i) in COLUMN_DESIGN.items()]
                        }
                    }
                    if control == "Table"
                    else {}
                ),
            }
            for title, (control, cid) in FORM_DESIGN.items()
        ]
    },
}


class WeComDeskError(DeskError):
    def __init__(self, message: str, code: int = BAD_PARAM) -> None:
        super().__init__(message)
        self.code = code


def _value(**fields: Any) -> dict[str, Any]:
    """Every list key present, as real value objects carry them (real-clients.md §2.1)."""
    return {
        "tips": [],
        "members": [],
        "departments": [],
        "files": [],
        "children": [],
        "stat_field": [],
        **fields,
    }


class WeComApprovalDesk:
    """Submitted forms live in the twin's ``approvals`` and ``applied`` (so detail and info serve them)."""

    def __init__(
        self,
        approvals: dict[str, dict[str, Any]],
        applied: list[tuple[int, str]],
        users: dict[str, str],
        default_approvers: list[str],
        applicant_of_claim: dict[str, str],
    ) -> None:
        self.approvals = approvals
        self.applied = applied
        self.users = users  # userid -> partyid
        self.default_approvers = default_approvers
        self.applicant_of_claim = applicant_of_claim
        self.process_code = CORRECTIONS_TEMPLATE_ID  # the corrections template an admin made
        self.templates: dict[str, dict[str, Any]] = {CORRECTIONS_TEMPLATE_ID: TEMPLATE}
        self.created: dict[str, dict[str, Any]] = {}  # sp_no -> {"rows", "reads"}
        self.script: Script | None = None
        self.calls: list[dict[str, Any]] = []
        self._serial = 0

    def set_script(self, outcome: str, userid: str | None = None, after_reads: int = 1) -> None:
        if outcome not in OUTCOMES:
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        self.script = Script(outcome, userid, after_reads)  # type: ignore[arg-type]

    # --- the API's side ---------------------------------------------------------------------
    def template(self, template_id: str) -> dict[str, Any]:
        found = self.templates.get(template_id)
        if found is None:
            raise WeComDeskError(f"template_id {template_id} does not exist")
        return found

    def apply(self, body: dict[str, Any]) -> str:
        template_id = str(body.get("template_id") or "")
        self.template(template_id)
        creator = str(body.get("creator_userid") or "")
        if creator not in self.users:
            raise WeComDeskError("creator_userid not in app visible range", NO_PERMISSION)
        contents = (body.get("apply_data") or {}).get("contents")
        if not isinstance(contents, list):
            raise WeComDeskError("apply_data.contents must be a list")
        by_id = {str(c.get("id")): c for c in contents if isinstance(c, dict)}
        titles = {cid: title for title, (_, cid) in FORM_DESIGN.items()}
        if set(by_id) != set(titles) or any(
            by_id[cid].get("control") != FORM_DESIGN[t][0] for cid, t in titles.items()
        ):
            raise WeComDeskError("apply_data does not match the template's controls")
        children = (by_id[FORM_DESIGN[TABLE_TITLE][1]].get("value") or {}).get("children")
        column_ids = {cid for _, cid in COLUMN_DESIGN.values()}
        if not isinstance(children, list) or not children:
            raise WeComDeskError(f"{TABLE_TITLE} needs at least one row")
        rows = [r.get("list") if isinstance(r, dict) else None for r in children]
        if any(not isinstance(r, list) or {str(c.get("id")) for c in r} != column_ids for r in rows):
            raise WeComDeskError(f"every {TABLE_TITLE} row must hold each of its columns")
        if not (by_id[FORM_DESIGN[BATCH_TITLE][1]].get("value") or {}).get("text"):
            raise WeComDeskError(f"{BATCH_TITLE} is required")
        if body.get("use_template_approver") in (1, "1"):
            approvers = list(self.default_approvers)
        else:
            approvers = [u for node in body.get("approver") or [] for u in node.get("userid") or []]
            if not approvers:
                raise WeComDeskError("approver is required when use_template_approver is 0")
        unknown = [a for a in approvers if a not in self.users]
        if unknown:
            raise WeComDeskError(f"approvers {unknown} are not in the app's visible range", NO_PERMISSION)
        now = int(time.time())
        self._serial += 1
        sp_no = time.strftime("%Y%m%d", time.gmtime(now + 8 * 3600)) + f"9{self._serial:05d}"
        read_back = [
            {
                "control": FORM_DESIGN[t][0],
                "id": cid,
                "title": [{"text": t, "lang": "zh_CN"}],
                "value": _value(**(by_id[cid].get("value") or {})),
            }
            for cid, t in titles.items()
        ]
        self.approvals[sp_no] = {
            "sp_no": sp_no,
            "sp_name": "oafin 对账更正审批",
            "sp_status": 1,
            "template_id": template_id,
            "apply_time": now,
            "applyer": {"userid": creator, "partyid": self.users[creator]},
            "sp_record": [
                {
                    "sp_status": 1,
                    "approverattr": 2,
                    "details": [
                        {"approver": {"userid": a}, "speech": "", "sp_status": 1, "sptime": 0, "media_id": []}
                        for a in approvers
                    ],
                }
            ],
            "notifyer": [],
            "comments": [],
            "apply_data": {"contents": read_back},
        }
        bisect.insort(self.applied, (now, sp_no))
        self.created[sp_no] = {"rows": rows, "reads": 0}
        self.calls.append({"call": "oa/applyevent", "body": body, "instance_id": sp_no, "at": now})
        return sp_no

    def act(self, sp_no: str, userid: str, agree: bool, speech: str = "") -> None:
        info = self._running(sp_no)
        node = info["sp_record"][0]
        detail = next(
            (d for d in node["details"] if d["approver"]["userid"] == userid and d["sp_status"] == 1), None
        )
        if detail is None:
            raise WeComDeskError(f"user {userid} has nothing to decide on {sp_no}")
        detail.update(sp_status=2 if agree else 3, sptime=int(time.time()), speech=speech)
        if not agree:
            node["sp_status"] = info["sp_status"] = 3
        elif all(d["sp_status"] == 2 for d in node["details"]):
            node["sp_status"] = info["sp_status"] = 2
        self.calls.append({"call": "decide", "instance_id": sp_no, "userid": userid, "agree": agree})

    def withdraw(self, sp_no: str, userid: str) -> None:
        info = self._running(sp_no)
        if userid != info["applyer"]["userid"]:
            raise WeComDeskError(f"only the applicant may withdraw {sp_no}")
        info["sp_status"] = 4
        self.calls.append({"call": "withdraw", "instance_id": sp_no, "userid": userid})

    def on_read(self, sp_no: str) -> None:
        made = self.created.get(sp_no)
        if made is None:
            return
        made["reads"] += 1
        script = self.script
        if (
            script is not None
            and made["reads"] > script.after_reads
            and self.approvals[sp_no]["sp_status"] == 1
        ):
            self.decide(sp_no, script.outcome, script.userid)

    # --- the scripted approver --------------------------------------------------------------
    def applicant_of(self, sp_no: str) -> str:
        rows = self.created[sp_no]["rows"]
        claim_id = COLUMN_DESIGN["报销单号"][1]
        claim_no = next(
            (
                (c.get("value") or {}).get("text")
                for c in (rows[0] if rows else [])
                if c.get("id") == claim_id
            ),
            None,
        )
        who = self.applicant_of_claim.get(str(claim_no))
        if who is None:
            raise DeskError(f"no applicant known for claim {claim_no!r} of {sp_no}")
        return who

    def decide(self, sp_no: str, outcome: str, userid: str | None = None) -> None:
        info = self._running(sp_no)
        if outcome == "withdraw":
            self.withdraw(sp_no, userid or info["applyer"]["userid"])
            return
        node = info["sp_record"][0]
        holders = [d["approver"]["userid"] for d in node["details"] if d["sp_status"] == 1]
        if outcome == "reject":
            self.act(sp_no, userid or holders[0], False, "驳回")
            return
        if outcome == "applicant":
            who = userid or self.applicant_of(sp_no)
            if who not in holders:  # the flow routes the claim's own department head to it
                node["details"].append(
                    {"approver": {"userid": who}, "speech": "", "sp_status": 1, "sptime": 0, "media_id": []}
                )
            holders = [who, *(h for h in holders if h != who)]
        elif outcome != "approve":
            raise DeskError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        elif userid is not None:
            holders = [userid]
        for who in holders:
            self.act(sp_no, who, True, "同意")

    def _running(self, sp_no: str) -> dict[str, Any]:
        info = self.approvals.get(sp_no)
        if info is None or sp_no not in self.created:
            raise WeComDeskError(f"sp_no {sp_no} does not exist")
        if info["sp_status"] != 1:
            raise WeComDeskError(f"{sp_no} is sp_status {info['sp_status']}, not pending")
        return info
