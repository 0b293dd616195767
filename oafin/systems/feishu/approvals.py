"""Feishu approval instances for correction batches (issue #17), approval v4.

The approval definition an admin creates in Feishu (README, "Corrections approved in the OA") has
these widgets, by widget id (``form[].id``, set as the widget's custom id in the form designer):

| id | widget | holds |
|---|---|---|
| ``oafin_batch`` | input | oafin's batch id (how a lost create is found again) |
| ``oafin_report`` | input | the link to the run's report |
| ``oafin_summary`` | textarea | how many actions, the total amount, what approving does |
| ``oafin_actions`` | fieldList | one row per action: ``oafin_marker, oafin_claim, oafin_type, oafin_amount, oafin_target, oafin_sent`` |

Create (real-clients.md §4.3 [S], lark-oapi ``InstanceCreate``): ``POST
/open-apis/approval/v4/instances`` with ``approval_code``, ``open_id`` (or ``user_id``), ``form`` a
JSON **string** of ``[{id, type, value}]`` (a fieldList's value a 2-D array of such widgets),
``node_approver_open_id_list`` ``[{key: node_id, value: [ids]}]`` where the call names approvers,
and ``uuid`` (unique per tenant: a second create with it fails with 60012, §4.3); the answer is
``data.instance_code``. The amount column is text (``¥1,234.50``): an ``amount`` widget would carry
a float-like JSON number (real-clients.md §2.2), and the column is for people to read.

Reading (source-systems.md §3.3, real-clients.md §2.2): ``status`` ``APPROVED`` is approved,
``REJECTED`` rejected, ``CANCELED``/``DELETED``/``REVERTED`` withdrawn, anything else pending (the
query endpoint's ``REJECT``/``RECALL`` are mapped too, §3.2). Who decided: ``task_list`` entries
with status ``APPROVED``/``REJECTED`` and a user (real-clients.md §4.4: the task list is Feishu's
record of a human decision); an ``AUTO_PASS`` task has no user and is skipped, and a timeline
``AUTO_PASS`` entry that names someone counts for segregation of duties only (``human=False``).
The withdrawal is the timeline's ``CANCEL`` entry (its user: the originator) [U: the timeline's
type values other than START and AUTO_PASS are not in the reference; CANCEL/PASS/REJECT are the
names Feishu's instance-get page uses]. Feishu has no row-level decision (real-clients.md §4.4).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from oafin.systems.base import ApprovalRecord, ApprovalRequest, ApprovalState, ApprovalStatus

BATCH_ID: Final = "oafin_batch"
REPORT_ID: Final = "oafin_report"
SUMMARY_ID: Final = "oafin_summary"
TABLE_ID: Final = "oafin_actions"
COLUMNS: Final = (
    ("oafin_marker", "编号"),
    ("oafin_claim", "报销单号"),
    ("oafin_type", "异常类型"),
    ("oafin_amount", "金额"),
    ("oafin_target", "目标系统"),
    ("oafin_sent", "发送内容"),
)
APPROVED: Final = frozenset({"APPROVED"})
REJECTED: Final = frozenset({"REJECTED", "REJECT"})
WITHDRAWN: Final = frozenset({"CANCELED", "DELETED", "REVERTED", "RECALL"})
TASK_RESULTS: Final = {"APPROVED": "agree", "REJECTED": "refuse"}


def user_field(user_id: str) -> str:
    """Feishu names a person by ``open_id`` (``ou_...``, what the identities table holds) or by the
    tenant's ``user_id``: the field the id belongs in."""
    return "open_id" if user_id.startswith("ou_") else "user_id"


def form_widgets(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The ``form`` widgets for ``request`` (see the module docstring), before JSON encoding."""
    rows = [
        [
            {"id": cid, "type": "input", "value": value}
            for (cid, _), value in zip(COLUMNS, r.cells(), strict=True)
        ]
        for r in request.rows
    ]
    summary = request.summary()
    return [
        {"id": BATCH_ID, "type": "input", "value": request.batch_id},
        {"id": REPORT_ID, "type": "input", "value": request.report_link},
        {"id": SUMMARY_ID, "type": "textarea", "value": summary},
        {"id": TABLE_ID, "type": "fieldList", "value": rows},
    ]


def create_body(request: ApprovalRequest, approver_node: str) -> dict[str, Any]:
    """The create call's body (real-clients.md §4.3)."""
    body: dict[str, Any] = {
        "approval_code": request.process_code,
        user_field(request.originator_id): request.originator_id,
        "form": json.dumps(form_widgets(request), ensure_ascii=False),
        "uuid": request.batch_id[:64],  # 1-64 characters, unique per tenant (§4.3)
    }
    if request.dept_id:
        body["department_id"] = request.dept_id
    if request.approver_ids:
        by_kind: dict[str, list[str]] = {}
        for a in request.approver_ids:
            by_kind.setdefault(user_field(a), []).append(a)
        for kind, ids in by_kind.items():
            body[f"node_approver_{kind}_list"] = [{"key": approver_node, "value": ids}]
    return body


def _when(ms: Any) -> datetime | None:
    """Feishu times are ms epoch strings, ``"0"`` when not yet (source-systems.md §3.3)."""
    text = str(ms or "")
    if not text.isdigit() or int(text) == 0:
        return None
    return datetime.fromtimestamp(int(text) / 1000, UTC)


def _who(entry: dict[str, Any]) -> str:
    return str(entry.get("open_id") or entry.get("user_id") or "")


def status_of(instance: dict[str, Any]) -> ApprovalStatus:
    status = str(instance.get("status") or "")
    if status in APPROVED:
        return "approved"
    if status in REJECTED:
        return "rejected"
    if status in WITHDRAWN:
        return "withdrawn"
    return "pending"


def records_of(instance: dict[str, Any]) -> tuple[ApprovalRecord, ...]:
    out: list[ApprovalRecord] = []
    for t in instance.get("task_list") or []:
        user, status = _who(t), str(t.get("status") or "")
        if not user or t.get("type") == "AUTO_PASS" or status not in TASK_RESULTS:
            continue
        out.append(ApprovalRecord(user, TASK_RESULTS[status], _when(t.get("end_time"))))
    seen = {r.user_id for r in out}
    for e in instance.get("timeline") or []:
        user, kind = _who(e), e.get("type")
        if not user:
            continue
        if kind == "CANCEL":
            out.append(
                ApprovalRecord(user, "withdraw", _when(e.get("create_time")), str(e.get("comment") or ""))
            )
        elif kind == "AUTO_PASS" and user not in seen:
            out.append(ApprovalRecord(user, "agree", _when(e.get("create_time")), human=False))
    return tuple(out)


def decode_form(instance: dict[str, Any]) -> list[dict[str, Any]]:
    form = instance.get("form")
    try:
        value = json.loads(form) if isinstance(form, str) else form
    except ValueError:
        return []
    return [w for w in value if isinstance(w, dict)] if isinstance(value, list) else []


def batch_of(instance: dict[str, Any]) -> str | None:
    for widget in decode_form(instance):
        if BATCH_ID in (widget.get("id"), widget.get("custom_id")):
            return str(widget.get("value") or "")
    return None


class FeishuApprovals:
    """``Approvals`` over the approval v4 client (``FeishuClient``)."""

    row_level = False  # real-clients.md §4.4: the instance decides the whole batch

    def __init__(self, approver_node: str = "oafin_approve") -> None:
        # the approval node's custom id in the definition, where named approvers go (§4.3)
        self.approver_node = approver_node

    def create(self, client: Any, request: ApprovalRequest) -> str:
        return str(client.create_instance(create_body(request, self.approver_node)))

    def find(self, client: Any, request: ApprovalRequest, since: datetime) -> str | None:
        """The instance of ``request.batch_id`` among the definition's instances created since
        ``since`` (a minute earlier: clocks differ), by its ``oafin_batch`` widget."""
        start, end = since - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
        for code in client.iter_instance_codes(request.process_code, start, end):
            if batch_of(client.get_instance(code)) == request.batch_id:
                return code
        return None

    def read(self, client: Any, instance_id: str) -> ApprovalState:
        instance = client.get_instance(instance_id)
        return ApprovalState(
            instance_id=instance_id,
            status=status_of(instance),
            records=records_of(instance),
            raw_status=str(instance.get("status") or ""),
        )
