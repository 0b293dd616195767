"""DingTalk approval instances for correction batches (issue #17), old topapi API.

The form an admin creates in DingTalk (README, "Corrections approved in the OA") has these
controls, by name (``form_component_values[].name``):

| name | control | holds |
|---|---|---|
| ``更正批次`` | TextField | oafin's batch id (how a lost create is found again) |
| ``对账报告`` | TextField | the link to the run's report |
| ``更正说明`` | TextareaField | how many actions, the total amount, what approving does |
| ``更正明细`` | TableField | one row per action: ``编号, 报销单号, 异常类型, 金额, 目标系统, 发送内容`` |

A TableField value is a JSON string of rows, each a list of ``{name, value}``
(real-clients.md §4.1, "Table values use the same JSON string as v1.0"); read back it is the
``rowValue`` shape of real-clients.md §2.7.

Reading: status and result (source-systems.md §1.4): ``COMPLETED`` + ``agree`` is approved,
``COMPLETED`` + ``refuse`` rejected, ``TERMINATED``/``CANCELED`` withdrawn, anything else pending.
The people who decided are the operation records ``EXECUTE_TASK_NORMAL`` (or ``_AGENT``, a
delegate deciding) with ``AGREE``/``REFUSE`` (real-clients.md §4.1), and who withdrew the
``TERMINATE_PROCESS_INSTANCE`` record; tasks ``COMPLETED`` with ``AGREE``/``REFUSE`` fill in a
decision the records lack, marked not human (an automatic pass looks so, real-clients.md §4.4):
they count for segregation of duties, never as the approval itself. DingTalk has no row-level decision (real-clients.md §4.4): the
instance approves the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from oafin.systems.base import ApprovalRecord, ApprovalRequest, ApprovalState, ApprovalStatus

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
BATCH_FIELD: Final = "更正批次"
REPORT_FIELD: Final = "对账报告"
SUMMARY_FIELD: Final = "更正说明"
TABLE_FIELD: Final = "更正明细"
COLUMNS: Final = ("编号", "报销单号", "异常类型", "金额", "目标系统", "发送内容")
DECIDING_OPERATIONS: Final = frozenset({"EXECUTE_TASK_NORMAL", "EXECUTE_TASK_AGENT"})
RESULTS: Final = {"AGREE": "agree", "REFUSE": "refuse"}


def form_values(request: ApprovalRequest) -> list[dict[str, Any]]:
    """``form_component_values`` for ``request`` (see the module docstring)."""
    rows = [
        [{"name": name, "value": value} for name, value in zip(COLUMNS, r.cells(), strict=True)]
        for r in request.rows
    ]
    summary = request.summary()
    return [
        {"name": BATCH_FIELD, "value": request.batch_id},
        {"name": REPORT_FIELD, "value": request.report_link},
        {"name": SUMMARY_FIELD, "value": summary},
        {"name": TABLE_FIELD, "value": json.dumps(rows, ensure_ascii=False)},
    ]


def _when(text: Any) -> datetime | None:
    """topapi dates are Beijing-time ``yyyy-MM-dd HH:mm:ss`` strings (source-systems.md §1.3)."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError:
        return None


def status_of(instance: dict[str, Any]) -> ApprovalStatus:
    status, result = str(instance.get("status") or ""), str(instance.get("result") or "")
    if status == "COMPLETED" and result == "agree":
        return "approved"
    if status == "COMPLETED" and result == "refuse":
        return "rejected"
    if status in ("TERMINATED", "CANCELED"):
        return "withdrawn"
    return "pending"


@dataclass(frozen=True)
class InstanceKeys:
    """Where an instance keeps its records: topapi's snake_case names, or v1.0's camelCase ones
    (the same records otherwise, source-systems.md §1.3), and how its times are written."""

    records: str = "operation_records"
    operation: str = "operation_type"
    result: str = "operation_result"
    user: str = "userid"
    task_user: str = "userid"
    task_result: str = "task_result"
    task_status: str = "task_status"
    finished: str = "finish_time"
    form: str = "form_component_values"
    when: Callable[[Any], datetime | None] = _when


TOPAPI: Final = InstanceKeys()


def records_of(instance: dict[str, Any], keys: InstanceKeys = TOPAPI) -> tuple[ApprovalRecord, ...]:
    out: list[ApprovalRecord] = []
    for r in instance.get(keys.records) or []:
        op, result, user = r.get(keys.operation), r.get(keys.result), str(r.get(keys.user) or "")
        if not user:
            continue
        if op in DECIDING_OPERATIONS and result in RESULTS:
            out.append(
                ApprovalRecord(user, RESULTS[result], keys.when(r.get("date")), str(r.get("remark") or ""))
            )
        elif op == "TERMINATE_PROCESS_INSTANCE":
            out.append(ApprovalRecord(user, "withdraw", keys.when(r.get("date")), str(r.get("remark") or "")))
    seen = {(r.user_id, r.decision) for r in out}
    for t in instance.get("tasks") or []:
        user, result = str(t.get(keys.task_user) or ""), t.get(keys.task_result)
        if (
            t.get(keys.task_status) == "COMPLETED"
            and result in RESULTS
            and (user, RESULTS[result]) not in seen
        ):
            out.append(ApprovalRecord(user, RESULTS[result], keys.when(t.get(keys.finished)), human=False))
    return tuple(out)


def batch_of(instance: dict[str, Any], keys: InstanceKeys = TOPAPI) -> str | None:
    for value in instance.get(keys.form) or []:
        if value.get("name") == BATCH_FIELD:
            return str(value.get("value") or "")
    return None


class DingTalkApprovals:
    """``Approvals`` over the topapi client (``DingTalkClient``)."""

    row_level = False  # real-clients.md §4.4: the instance decides the whole batch

    def create(self, client: Any, request: ApprovalRequest) -> str:
        return str(
            client.create_instance(
                request.process_code,
                request.originator_id,
                form_values(request),
                dept_id=request.dept_id or "-1",
                approvers=list(request.approver_ids),
            )
        )

    def find(self, client: Any, request: ApprovalRequest, since: datetime) -> str | None:
        """The instance of ``request.batch_id`` among the form's instances created since ``since``
        (a minute earlier: clocks differ), by its ``更正批次`` field."""
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
