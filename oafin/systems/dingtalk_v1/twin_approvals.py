"""The DingTalk v1.0 twin's approval desk (issue #17): the topapi twin's desk behind v1.0 shapes.

The same company's DingTalk: the corrections form, the approval rules (会签, one refusal
completes the instance refused, only the originator withdraws) and the scripted approver are the
topapi desk's (oafin/systems/dingtalk/twin_approvals.py). What differs is the call: ``POST
/v1.0/workflow/processInstances`` takes ``processCode, originatorUserId, deptId,
formComponentValues, approvers[{actionType, userIds}]`` and answers ``{"instanceId"}``
(real-clients.md §4.1), and the instance reads back in v1.0 keys and UTC minute times
(``v1_instance``, as twin_render shapes the month's instances).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from oafin.systems.dingtalk.twin_approvals import CORRECTIONS_PROCESS_CODE, ApprovalDesk, DeskError
from oafin.systems.dingtalk_v1.twin_render import utc_minute

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
CREATE_CALL: Final = "v1.0/workflow/processInstances"
__all__ = ["CORRECTIONS_PROCESS_CODE", "CREATE_CALL", "DeskError", "V1ApprovalDesk", "v1_instance"]


def _beijing(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def _minute(text: Any) -> str:
    return utc_minute(_beijing(str(text)))


def v1_instance(inst: dict[str, Any]) -> dict[str, Any]:
    """A topapi-shaped instance of the desk as ``GET /v1.0/workflow/processInstances`` returns it."""
    out: dict[str, Any] = {"title": inst["title"], "createTime": _minute(inst["create_time"])}
    if inst.get("finish_time"):
        out["finishTime"] = _minute(inst["finish_time"])
    out |= {
        "originatorUserId": inst["originator_userid"],
        "originatorDeptId": inst["originator_dept_id"],
        "originatorDeptName": "",
        "status": inst["status"],
        "result": inst["result"],
        "businessId": inst["business_id"],
        "bizAction": inst["biz_action"],
        "approverUserIds": list(inst["approver_userids"]),
        "ccUserIds": [],
        "attachedProcessInstanceIds": [],
        "mainProcessInstanceId": "",
        "formComponentValues": [
            {
                "id": v["name"],
                "name": v["name"],
                "value": v["value"],
                "componentType": v.get("component_type", "TextField"),
                **({"extValue": v["ext_value"]} if "ext_value" in v else {}),
            }
            for v in inst["form_component_values"]
        ],
        "operationRecords": [
            {
                "userId": r["userid"],
                "date": _minute(r["date"]),
                "type": r["operation_type"],
                "result": r["operation_result"],
                "remark": r.get("remark", ""),
                "showName": "",
                "attachments": [],
            }
            for r in inst["operation_records"]
        ],
        "tasks": [
            {
                "taskId": int(t["taskid"]),
                "userId": t["userid"],
                "status": t["task_status"],
                "result": t["task_result"],
                "createTime": _minute(t["create_time"]),
                **({"finishTime": _minute(t["finish_time"])} if t.get("finish_time") else {}),
                "activityId": "oafin_approve",
                "mobileUrl": "",
                "pcUrl": "",
            }
            for t in inst["tasks"]
        ],
    }
    return out


class V1ApprovalDesk(ApprovalDesk):
    """The topapi desk, taking the v1.0 create body; its instances stay in topapi shape (private)."""

    def __init__(
        self,
        index: Callable[[str, int, str], None],
        known_users: set[str],
        default_approvers: list[str],
        applicant_of_claim: dict[str, str],
    ) -> None:
        def index_ms(code: str, create_time: str, iid: str) -> None:
            index(code, int(_beijing(create_time).timestamp()) * 1000, iid)

        super().__init__({}, index_ms, known_users, default_approvers, applicant_of_claim)

    def create_v1(self, body: dict[str, Any]) -> str:
        approvers = body.get("approvers") or []
        if not isinstance(approvers, list) or not all(isinstance(a, dict) for a in approvers):
            raise DeskError("approvers must be a list of {actionType, userIds}")
        users = [u for a in approvers for u in a.get("userIds") or []]
        iid = self.create(
            {
                "process_code": body.get("processCode"),
                "originator_user_id": body.get("originatorUserId"),
                "dept_id": body.get("deptId", -1),
                "form_component_values": body.get("formComponentValues"),
                "approvers": ",".join(str(u) for u in users),
            }
        )
        self.calls[-1] = {**self.calls[-1], "call": CREATE_CALL, "body": body}
        return iid

    def read_v1(self, iid: str) -> dict[str, Any]:
        self.on_read(iid)
        return v1_instance(self.instances[iid])
