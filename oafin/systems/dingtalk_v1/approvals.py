"""DingTalk approval instances for correction batches (issue #17), v1.0 API.

The same form as on topapi (oafin/systems/dingtalk/approvals.py: controls ``更正批次``,
``对账报告``, ``更正说明``, the ``更正明细`` TableField), created and read through v1.0:

- create (real-clients.md §4.1 [S: alibabacloud-dingtalk 2.2.65]): ``POST
  /v1.0/workflow/processInstances`` with ``processCode``, ``originatorUserId``, ``deptId``,
  ``formComponentValues[{name, value}]`` (a table's value the JSON string of a 2-D array of
  ``{name, value}``, as on topapi) and ``approvers[{actionType: "AND", userIds}]`` where the call
  names them (``AND``: all must agree, 会签); the answer is ``{"instanceId": ...}``. No idempotency
  key (§4.1): a lost answer is found by the ``更正批次`` value among the form's instances.
- read (source-systems.md §1.3-1.4, real-clients.md §4.1): ``GET
  /v1.0/workflow/processInstances?processInstanceId=``: ``status``/``result`` as on topapi;
  ``operationRecords[{userId, type, result, date, remark}]`` of type ``EXECUTE_TASK_NORMAL`` (or
  ``_AGENT``) with ``AGREE``/``REFUSE`` are the people who decided, ``TERMINATE_PROCESS_INSTANCE``
  who withdrew; ``tasks[{userId, status, result, finishTime}]`` completed without such a record
  count for segregation of duties only (an automatic pass looks so, real-clients.md §4.4). Times
  are UTC ``yyyy-MM-ddTHH:mmZ`` (source-systems.md §1.3). No row-level decision (§4.4).

The people are DingTalk's userids, the same on both APIs: ``identity_system`` is ``dingtalk``
(as mappings/dingtalk-v1.yaml reads them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from oafin.systems.base import ApprovalRecord, ApprovalRequest, ApprovalState
from oafin.systems.dingtalk import approvals as topapi
from oafin.systems.dingtalk.approvals import InstanceKeys, form_values, status_of

IDENTITY_SYSTEM: Final = "dingtalk"


def create_body(request: ApprovalRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "processCode": request.process_code,
        "originatorUserId": request.originator_id,
        "formComponentValues": form_values(request),
    }
    dept = str(request.dept_id or "").lstrip("-")
    if dept.isdigit() and request.dept_id not in (None, "-1"):
        body["deptId"] = int(str(request.dept_id))  # int64 in the SDK's model
    if request.approver_ids:
        body["approvers"] = [{"actionType": "AND", "userIds": list(request.approver_ids)}]
    return body


def _when(text: Any) -> datetime | None:
    """v1.0 times are UTC ``yyyy-MM-ddTHH:mmZ`` (source-systems.md §1.3)."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return None


# v1.0 keeps topapi's records under camelCase names (source-systems.md §1.3)
V1: Final = InstanceKeys(
    records="operationRecords",
    operation="type",
    result="result",
    user="userId",
    task_user="userId",
    task_result="result",
    task_status="status",
    finished="finishTime",
    form="formComponentValues",
    when=_when,
)


def records_of(instance: dict[str, Any]) -> tuple[ApprovalRecord, ...]:
    return topapi.records_of(instance, V1)


def batch_of(instance: dict[str, Any]) -> str | None:
    return topapi.batch_of(instance, V1)


class DingTalkV1Approvals:
    """``Approvals`` over the v1.0 client (``DingTalkV1Client``)."""

    row_level = False  # real-clients.md §4.4
    identity_system = IDENTITY_SYSTEM

    def create(self, client: Any, request: ApprovalRequest) -> str:
        return str(client.create_process_instance(create_body(request)))

    def find(self, client: Any, request: ApprovalRequest, since: datetime) -> str | None:
        start, end = since - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
        for instance_id in client.iter_instance_ids(request.process_code, start, end):
            if batch_of(client.get_instance(instance_id)) == request.batch_id:
                return instance_id
        return None

    def read(self, client: Any, instance_id: str) -> ApprovalState:
        instance = client.get_instance(instance_id)
        return ApprovalState(
            instance_id=instance_id,
            status=status_of(instance),
            records=records_of(instance),
            raw_status=f"{instance.get('status') or ''}/{instance.get('result') or ''}",
        )
