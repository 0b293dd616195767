"""The neutral sandbox month in Seeyon's shapes: what the Seeyon twin serves.

Each claim becomes one CAP4 form record as the export returns it at ``data.data.data[]``
(real-clients.md §2.4): ``masterData.fieldNNNN.{value, showValue}``; the invoice rows are a
sub-table in ``subData``. The sandbox deployment's field codes are below (a real one has its
own: the mapping names them). What the references do not show is marked [U]:

- ``subData``'s layout [U]: ``[{"name": "formson_0232", "records": [{"id", "fields": [{"name",
  "value", "showValue"}]}]}]``, the layout of CAP4's batch-add records; the mapping's
  ``form_components`` and ``children`` keys say where rows are, so another layout is a mapping edit;
- ``masterData``'s system columns ``id``, ``start_member_id``, ``start_date`` (those of a
  ``formmain_*`` table), written like fields [U];
- the flow id at the record's top level as ``summaryId`` (config ``flow_id_key``) [U];
- ``GET /flow/state/{flowId}``'s body [U]: ``{"code": 0, "data": {"state", "stateName",
  "startDate", "finishDate", "nodes": [{"memberId", "memberName", "action", "handleDate"}]}}``,
  ``state`` 0 running, 1 ended, 2 terminated (a refusal), 3 revoked (withdrawn).

Times are China-time ``yyyy-MM-dd HH:mm:ss`` strings; the neutral month's noise (how an amount was
typed, trailing spaces) is written as it is.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from oafin.sandbox.codes import Person
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text
from oafin.sandbox.model import Claim, Invoice

NAME: Final = "seeyon"
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
TEMPLATE_CODE: Final = "BX001"  # the sandbox's expense form (SeeyonSettings.template_code default)
FORM_NAME: Final = "费用报销单"
MASTER_TABLE: Final = "formmain_0231"
INVOICE_TABLE: Final = "formson_0232"
INVOICE_DISPLAY: Final = "发票明细"
# The standard claim status -> the flow state [U] (see the module docstring).
STATE: Final = {
    "pending": (0, "运行中"),
    "approved": (1, "已结束"),
    "rejected": (2, "已终止"),
    "withdrawn": (3, "已撤销"),
}
# The neutral month's padded fields -> the display names carrying them.
PADDED: Final = {"department": "所属部门", "expense_type": "费用类型", "title": "报销事由"}

# The sandbox deployment's master fields: code -> (display name, field type).
MASTER_FIELDS: Final = {
    "field0001": ("单据编号", "VARCHAR"),
    "field0002": ("报销人", "MEMBER"),
    "field0003": ("报销金额", "DECIMAL"),
    "field0004": ("所属部门", "DEPARTMENT"),
    "field0005": ("费用类型", "SELECT"),
    "field0006": ("报销事由", "VARCHAR"),
    "field0007": ("预算编号", "VARCHAR"),
    "field0008": ("项目编号", "VARCHAR"),
    "field0009": ("收款账号", "VARCHAR"),
}
INVOICE_FIELDS: Final = {
    "field0010": ("发票代码", "VARCHAR"),
    "field0011": ("发票号码", "VARCHAR"),
    "field0012": ("开票日期", "DATE"),
    "field0013": ("不含税金额", "DECIMAL"),
    "field0014": ("税额", "DECIMAL"),
    "field0015": ("价税合计", "DECIMAL"),
    "field0016": ("税率", "VARCHAR"),
    "field0017": ("销售方纳税人识别号", "VARCHAR"),
}


def when(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def member_id(person: Person) -> str:
    return person.identities["seeyon"]


def definition() -> dict[str, Any]:
    """``data.data.definition``: the form's tables and fields [U layout; place C]."""

    def fields(table: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
        return [{"name": code, "display": d, "fieldType": t} for code, (d, t) in table.items()]

    return {
        "formName": FORM_NAME,
        "templateCode": TEMPLATE_CODE,
        "tableName": MASTER_TABLE,
        "fields": fields(MASTER_FIELDS),
        "subTables": [
            {"tableName": INVOICE_TABLE, "display": INVOICE_DISPLAY, "fields": fields(INVOICE_FIELDS)}
        ],
    }


def _cell(value: Any, show: str | None = None) -> dict[str, Any]:
    text = "" if value is None else str(value)
    return {"value": text, "showValue": text if show is None else show}


def _stable_id(source_id: str, salt: str) -> str:
    """A Java-long-like id derived from the claim's UUID (no random draw)."""
    n = uuid.UUID(source_id).int ^ uuid.uuid5(uuid.NAMESPACE_OID, salt).int
    return str(n % 9_000_000_000_000_000_000 - 4_500_000_000_000_000_000)


def invoice_rows(claim: Claim) -> list[dict[str, Any]]:
    def row(i: int, inv: Invoice) -> dict[str, Any]:
        cells = {
            "field0010": inv.code,
            "field0011": inv.number,
            "field0012": inv.issued.isoformat(),
            "field0013": fen_text(inv.ex_tax_fen),
            "field0014": fen_text(inv.tax_fen),
            "field0015": fen_text(inv.total_fen),
            "field0016": f"{inv.rate_pct}%",
            "field0017": inv.seller_id,
        }
        return {
            "id": _stable_id(claim.source_id, f"invoice-{i}"),
            "fields": [{"name": k, "value": v, "showValue": v} for k, v in cells.items()],
        }

    return [row(i, inv) for i, inv in enumerate(claim.invoices)]


def form_record(claim: Claim, dept_ids: dict[str, str]) -> dict[str, Any]:
    p = claim.originator
    pad = {PADDED[name]: spaces for name, spaces in claim.text_pad.items()}
    master: dict[str, Any] = {
        "id": _cell(_stable_id(claim.source_id, "formmain")),
        "state": _cell(1),
        "start_member_id": _cell(member_id(p), p.name),
        "start_date": _cell(when(claim.created)),
        "field0001": _cell(claim.claim_no),
        "field0002": _cell(member_id(p), p.name),
    }
    if claim.amount_text is not None:  # None: the field is missing altogether
        master["field0003"] = _cell(claim.amount_text)
    master |= {
        "field0004": _cell(dept_ids[p.dept_code], claim.dept_label + pad.get("所属部门", "")),
        "field0005": _cell(claim.expense_label + pad.get("费用类型", "")),
        "field0006": _cell(claim.title + pad.get("报销事由", "")),
        "field0007": _cell(claim.budget_code),
        "field0008": _cell(claim.project_code),
        "field0009": _cell(claim.card),
    }
    return {
        "summaryId": flow_id(claim),
        "masterTable": MASTER_TABLE,
        "masterData": master,
        "subData": [{"name": INVOICE_TABLE, "display": INVOICE_DISPLAY, "records": invoice_rows(claim)}],
    }


def flow_id(claim: Claim) -> str:
    return _stable_id(claim.source_id, "col_summary")


def flow_state(claim: Claim) -> dict[str, Any]:
    """The ``data`` of ``GET /flow/state/{flowId}`` [U]."""
    state, name = STATE[claim.status]
    p = claim.originator
    nodes = [_node(p, "start", claim.created)]
    for person, moment in zip(claim.approvers, claim.approval_times, strict=True):
        nodes.append(_node(person, "agree", moment))
    if claim.refuser is not None and claim.finished is not None:
        nodes.append(_node(claim.refuser, "disagree", claim.finished))
    if claim.status == "withdrawn" and claim.finished is not None:
        nodes.append(_node(p, "cancel", claim.finished))
    data: dict[str, Any] = {
        "flowId": flow_id(claim),
        "subject": f"{p.name}的{FORM_NAME}",
        "state": state,
        "stateName": name,
        "startMemberId": member_id(p),
        "startDate": when(claim.created),
    }
    if claim.finished is not None and claim.status != "pending":
        data["finishDate"] = when(claim.finished)
    data["nodes"] = nodes
    return data


def _node(person: Person, action: str, moment: datetime) -> dict[str, str]:
    return {
        "memberId": member_id(person),
        "memberName": person.name,
        "action": action,
        "handleDate": when(moment),
    }


def department_ids(dataset: Dataset) -> dict[str, str]:
    """Seeyon's department ids (org unit ids, Java longs) per department code."""
    codes = sorted({p.dept_code for p in dataset.people})
    return {code: str(-(6_112_000_000_000_000_000 + 104_729 * i)) for i, code in enumerate(codes)}


def render(dataset: Dataset) -> list[tuple[Claim, dict[str, Any], dict[str, Any]]]:
    """(claim, form record, flow state) for every claim, in submission order."""
    dept_ids = department_ids(dataset)
    return [(c, form_record(c, dept_ids), flow_state(c)) for c in dataset.claims]


def records(dataset: Dataset) -> list[tuple[Claim, dict[str, Any], dict[str, Any]]]:
    """The month as the Seeyon twin serves it (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)


def files(dataset: Dataset) -> dict[str, Any]:
    return {
        "seeyon_cap4_export.json": {"definition": definition(), "data": [r for _, r, _ in records(dataset)]},
        "seeyon_flow_states.json": {r["summaryId"]: s for _, r, s in records(dataset)},
    }
