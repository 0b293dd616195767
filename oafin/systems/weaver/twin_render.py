"""The neutral sandbox month in Weaver e-cology 9's shapes: what the Weaver twin serves.

Each claim becomes one workflow request (流程请求) of the expense workflow, in three shapes:

- the list item of the paService lists (source-systems.md §4.2; real-clients.md §2.3: a bare JSON
  array whose values are all strings);
- the ``getWorkflowRequest`` detail: ``workflowMainTableInfo.requestRecords[0]
  .workflowRequestTableFields[]`` for the main table and ``workflowDetailTableInfos[]`` for the
  invoice detail table ``formtable_main_<n>_dt1`` (§4.2; field objects as in
  ``wccdev/oa-workflow-api:oa_workflow_api/utils.py`` ``get_info``). Money comes as strings;
  select fields carry the option index in ``fieldValue`` and the label in ``fieldShowValue``,
  browser fields the id and the name;
- the ``getRequestLog`` items, newest first (``utils.py`` ``get_remark``): ``logtype`` 2 提交,
  0 批准, 3 退回; ``operator`` is the HrmResource id.

Field names (``fieldName``, the form's database columns) are per deployment; these are the
sandbox's, and ``mappings/weaver.yaml`` names them. Times are Beijing-time strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from oafin.sandbox.codes import Person
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import amount_in_words, fen_text
from oafin.sandbox.model import Claim, Invoice

NAME: Final = "weaver"
BEIJING_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
FORM_ID: Final = "-12"  # a 单据 (bill-type) form: negative ids, table formtable_main_12
MAIN_TABLE: Final = "formtable_main_12"
DETAIL_TABLE: Final = f"{MAIN_TABLE}_dt1"
WORKFLOW: Final = {
    "formId": FORM_ID,
    "workflowId": "52021",
    "workflowName": "费用报销",
    "workflowTypeId": "1021",
    "workflowTypeName": "财务流程",
}
WORKFLOW_ID: Final = WORKFLOW["workflowId"]
FIRST_REQUEST_ID: Final = 315_001
ADMIN_NAME: Final = "系统管理员"

# Nodes of the expense workflow: (id, name, currentnodetype 0 创建 / 1 批准 / 2 提交 / 3 归档).
CREATE: Final = ("60001", "创建", "0")
MANAGER: Final = ("60002", "部门经理审批", "1")
FINANCE: Final = ("60003", "财务审批", "1")
ARCHIVE: Final = ("60004", "归档", "3")
# The standard's claim status -> the request's ``status`` label. Approved requests are archived;
# a refused one is sent back (退回) to the creation node; a withdrawn one taken back (撤回) there.
STATUS_LABEL: Final = {"approved": "归档", "rejected": "退回", "withdrawn": "撤回"}

# The main table: fieldName -> (fieldShowName, fieldHtmlType, fieldType, fieldDBType).
MAIN_FIELDS: Final = {
    "bxdh": ("报销单号", "1", "1", "varchar2(100)"),
    "szbm": ("所属部门", "3", "4", "integer"),  # a department browser: value id, show name
    "fylx": ("费用类型", "5", "1", "integer"),  # a select: value index, show label
    "bxje": ("报销金额", "1", "3", "number(38,2)"),
    "dxje": ("大写金额", "1", "1", "varchar2(200)"),
    "bxsy": ("报销事由", "2", "1", "clob"),
    "ysbh": ("预算编号", "1", "1", "varchar2(50)"),
    "xmbh": ("项目编号", "1", "1", "varchar2(50)"),
    "skzh": ("收款账号", "1", "1", "varchar2(50)"),
}
DETAIL_FIELDS: Final = {
    "fpdm": ("发票代码", "1", "1", "varchar2(20)"),
    "fphm": ("发票号码", "1", "1", "varchar2(30)"),
    "kprq": ("开票日期", "3", "2", "char(10)"),
    "bhsje": ("不含税金额", "1", "3", "number(38,2)"),
    "se": ("税额", "1", "3", "number(38,2)"),
    "jshj": ("价税合计", "1", "3", "number(38,2)"),
    "sl": ("税率", "1", "1", "varchar2(10)"),
    "xsfsh": ("销售方纳税人识别号", "1", "1", "varchar2(30)"),
}
PADDED_FIELDS: Final = {"department": "szbm", "expense_type": "fylx", "title": "bxsy"}
_FIELD_IDS: Final = {name: str(179_900 + i) for i, name in enumerate([*MAIN_FIELDS, *DETAIL_FIELDS])}


def beijing(moment: datetime) -> str:
    return moment.strftime(BEIJING_FORMAT)


def weaver_id(person: Person) -> str:
    """The person's HrmResource id (identities.csv, system ``weaver``)."""
    return person.identities["weaver"]


@dataclass(frozen=True)
class WeaverRequest:
    """One request as the twin serves it, with what the visibility of each user is built from."""

    request_id: str
    created: datetime
    creator_id: str
    item: dict[str, Any]  # the list item, without the viewer's own keys (userid, isremark, viewtype)
    detail: dict[str, Any]  # getWorkflowRequest ``data``
    log: list[dict[str, Any]]  # getRequestLog ``data``, newest first
    status: dict[str, Any]  # getRequestStatus ``data`` (no node name: real-clients.md §2.3)
    operators: frozenset[str]  # who approved, refused or withdrew it
    pending: bool


def _field(name: str, spec: tuple[str, str, str, str], value: str, show: str, order: int) -> dict[str, Any]:
    show_name, html_type, field_type, db_type = spec
    out: dict[str, Any] = {
        "fieldId": _FIELD_IDS[name],
        "fieldName": name,
        "fieldShowName": show_name,
        "fieldValue": value,
        "fieldShowValue": show,
        "fieldHtmlType": html_type,
        "fieldType": field_type,
        "fieldDBType": db_type,
        "fieldOrder": order,
        "fieldFormName": f"field{_FIELD_IDS[name]}",
        "edit": False,
        "view": True,
        "mand": False,
        "browserurl": "",
        "selectnames": [],
        "selectvalues": [],
    }
    return out


def main_fields(claim: Claim, dept_ids: dict[str, str], type_index: dict[str, str]) -> list[dict[str, Any]]:
    pad = {PADDED_FIELDS[name]: spaces for name, spaces in claim.text_pad.items()}
    label = claim.expense_label
    values: dict[str, tuple[str, str]] = {
        "bxdh": (claim.claim_no, claim.claim_no),
        "szbm": (dept_ids.get(claim.originator.dept_code, ""), claim.dept_label + pad.get("szbm", "")),
        "fylx": (type_index.get(label.strip(), ""), label + pad.get("fylx", "")),
    }
    if claim.amount_text is not None:  # None: the field is missing altogether
        values["bxje"] = (claim.amount_text, claim.amount_text)
        if claim.kind != "CONTRACT_VIOLATION":
            words = amount_in_words(claim.amount_fen)
            values["dxje"] = (words, words)
    title = claim.title + pad.get("bxsy", "")
    values |= {
        "bxsy": (title, title),
        "ysbh": (claim.budget_code, claim.budget_code),
        "xmbh": (claim.project_code, claim.project_code),
        "skzh": (claim.card, claim.card),
    }
    out = []
    for order, (name, (value, show)) in enumerate(values.items()):
        field = _field(name, MAIN_FIELDS[name], value, show, order)
        if name == "fylx":
            field["selectnames"] = list(type_index)
            field["selectvalues"] = list(type_index.values())
        out.append(field)
    return out


def invoice_records(invoices: list[Invoice]) -> list[dict[str, Any]]:
    """The invoice detail table's ``workflowRequestTableRecords``, one per invoice."""
    records = []
    for i, inv in enumerate(invoices, start=1):
        cells = {
            "fpdm": inv.code,
            "fphm": inv.number,
            "kprq": inv.issued.isoformat(),
            "bhsje": fen_text(inv.ex_tax_fen),
            "se": fen_text(inv.tax_fen),
            "jshj": fen_text(inv.total_fen),
            "sl": f"{inv.rate_pct}%",
            "xsfsh": inv.seller_id,
        }
        fields = [
            _field(name, DETAIL_FIELDS[name], value, value, order)
            for order, (name, value) in enumerate(cells.items())
        ]
        records.append({"recordOrder": i, "workflowRequestTableFields": fields})
    return records


def _node(claim: Claim) -> tuple[str, str, str]:
    if claim.status == "approved":
        return ARCHIVE
    if claim.status in ("rejected", "withdrawn"):
        return CREATE
    return MANAGER if not claim.approvers else FINANCE


def _log(
    nodeid: str, nodename: str, dest: str, logtype: str, who: Person, when: datetime, to: Person | None
) -> dict[str, Any]:
    return {
        "id": "",  # numbered in request order below
        "logid": "0",
        "logtype": logtype,
        "nodeid": nodeid,
        "nodename": nodename,
        "destnodeid": dest,
        "operator": weaver_id(who),
        "operatortype": "0",
        "operatorDept": "",
        "operatedate": when.strftime("%Y-%m-%d"),
        "operatetime": when.strftime("%H:%M:%S"),
        "receivedPersons": to.name if to is not None else "",
        "receivedPersonids": weaver_id(to) if to is not None else "",
        "remarkHtml": "",
        "agentorbyagentid": "-1",
        "agenttype": "0",
    }


def request_log(claim: Claim) -> list[dict[str, Any]]:
    """The request's log, newest first (``getRequestLog``)."""
    p = claim.originator
    entries = [_log(CREATE[0], CREATE[1], MANAGER[0], "2", p, claim.created, None)]
    nodes = [MANAGER, FINANCE, FINANCE, FINANCE]
    for step, (person, when) in enumerate(zip(claim.approvers, claim.approval_times, strict=True)):
        node = nodes[min(step, len(nodes) - 1)]
        dest = ARCHIVE if claim.status == "approved" and step == len(claim.approvers) - 1 else FINANCE
        entries.append(_log(node[0], node[1], dest[0], "0", person, when, None))
    if claim.refuser is not None and claim.finished is not None:
        node = MANAGER if not claim.approvers else FINANCE
        entries.append(_log(node[0], node[1], CREATE[0], "3", claim.refuser, claim.finished, p))
    if claim.status == "withdrawn" and claim.finished is not None:
        # 强制收回 by the creator (logtype "x" in e-cology's workflow_requestlog) [U]
        entries.append(_log(CREATE[0], CREATE[1], CREATE[0], "x", p, claim.finished, None))
    return list(reversed(entries))


def weaver_request(
    claim: Claim, request_id: str, dept_ids: dict[str, str], type_index: dict[str, str]
) -> WeaverRequest:
    p = claim.originator
    node_id, node_name, node_type = _node(claim)
    status = STATUS_LABEL.get(claim.status, node_name)
    log = request_log(claim)
    for i, entry in enumerate(log):
        entry["id"] = str(int(request_id) * 10 + len(log) - i)
    last = log[0]
    last_time = f"{last['operatedate']} {last['operatetime']}"
    last_person = claim.refuser or (claim.approvers[-1] if claim.approvers else p)
    if claim.status == "withdrawn":
        last_person = p
    dept_id = dept_ids.get(p.dept_code, "")
    item = {
        "requestId": request_id,
        "requestName": f"{p.name}提交的费用报销",
        "requestLevel": "0",
        "requestmark": claim.claim_no,
        "createTime": beijing(claim.created),
        "creatorId": weaver_id(p),
        "creatorName": p.name,
        "creatorDepartmentId": dept_id,
        "creatorDepartmentName": p.department,
        "creatorSubcompanyId": "1",
        "creatorSubcompanyName": "总部",
        "currentNodeId": node_id,
        "currentNodeName": node_name,
        "currentnodetype": node_type,
        "nodeid": node_id,
        "status": status,
        "isbereject": "1" if claim.status == "rejected" else "",
        "isprocessed": "",
        "lastOperateTime": last_time,
        "lastOperatorId": weaver_id(last_person),
        "lastOperatorName": last_person.name,
        "receiveTime": last_time,
        "operateTime": last_time,
        "agentorbyagentid": "-1",
        "agenttype": "0",
        "preisremark": "0",
        "takisremark": "",
        "sysName": "",
        "workflowBaseInfo": dict(WORKFLOW),
    }
    detail = {
        "requestId": request_id,
        "requestName": item["requestName"],
        "requestLevel": "0",
        "status": status,
        "currentNodeId": node_id,
        "currentNodeName": node_name,
        "createTime": item["createTime"],
        "creatorId": item["creatorId"],
        "creatorName": p.name,
        "lastOperateTime": last_time,
        "lastOperatorName": last_person.name,
        "messageType": "0",
        "remark": "",
        "canView": True,
        "canEdit": False,
        "workflowBaseInfo": {k: v for k, v in WORKFLOW.items() if k != "formId"},
        "workflowMainTableInfo": {
            "tableDBName": MAIN_TABLE,
            "requestRecords": [
                {"recordOrder": 0, "workflowRequestTableFields": main_fields(claim, dept_ids, type_index)}
            ],
        },
        "workflowDetailTableInfos": [
            {
                "tableDBName": DETAIL_TABLE,
                "tableTitle": "发票明细",
                "tableFieldName": [spec[0] for spec in DETAIL_FIELDS.values()],
                "workflowRequestTableRecords": invoice_records(claim.invoices),
            }
        ],
    }
    status_data = {  # getRequestStatus (utils.py get_status): no currentNodeName
        "requestId": request_id,
        "requestName": item["requestName"],
        "requestLevel": "0",
        "status": status if claim.status != "pending" else f"{CREATE[1]} 至 {node_name}",
        "currentNodeId": node_id,
        "currentNodeType": node_type,
        "creatorId": item["creatorId"],
        "creatertype": 0,
        "isremark": 0,
        "workflowId": int(WORKFLOW_ID),
        "mainTableInfoEntity": {"billid": int(FORM_ID), "tableDbName": MAIN_TABLE},
        "workflowBaseInfo": {k: v for k, v in WORKFLOW.items() if k != "workflowId"},
    }
    operators = {weaver_id(a) for a in claim.approvers}
    if claim.refuser is not None:
        operators.add(weaver_id(claim.refuser))
    return WeaverRequest(
        request_id=request_id,
        created=claim.created,
        creator_id=weaver_id(p),
        item=item,
        detail=detail,
        log=log,
        status=status_data,
        operators=frozenset(operators),
        pending=claim.status == "pending",
    )


def department_ids(dataset: Dataset) -> dict[str, str]:
    """e-cology's HrmDepartment id for each department code (fixed by the code tables' order)."""
    codes = sorted({p.dept_code for p in dataset.people})
    return {code: str(21 + i) for i, code in enumerate(codes)}


def expense_type_options(dataset: Dataset) -> dict[str, str]:
    """The 费用类型 select's options: label -> option value (in first-seen order of the month)."""
    labels = dict.fromkeys(c.expense_label.strip() for c in dataset.claims)
    return {label: str(i) for i, label in enumerate(labels)}


def render(dataset: Dataset) -> list[WeaverRequest]:
    """Every claim of the month as a request, in submission order; request ids count up from 315001."""
    dept_ids = department_ids(dataset)
    options = expense_type_options(dataset)
    return [
        weaver_request(claim, str(FIRST_REQUEST_ID + i), dept_ids, options)
        for i, claim in enumerate(dataset.claims)
    ]


def requests(dataset: Dataset) -> list[WeaverRequest]:
    """The month's requests as the Weaver twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)


def request_ids(dataset: Dataset) -> dict[str, str]:
    """The neutral claim's ``source_id`` -> its Weaver ``requestId``."""
    return {c.source_id: str(FIRST_REQUEST_ID + i) for i, c in enumerate(dataset.claims)}
