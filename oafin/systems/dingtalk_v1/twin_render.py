"""The neutral sandbox month in DingTalk v1.0 shapes: what the dingtalk-v1 twin serves.

The same company's DingTalk as the topapi twin: the same form (labels, component ids, the text
as typed), the same people and departments. What differs is the v1.0 shape of
``GET /v1.0/workflow/processInstances`` (source-systems.md §1.3 "New v1.0"): camelCase keys,
``formComponentValues[{id, name, value, extValue, componentType, bizAlias}]``, times in UTC
``yyyy-MM-ddTHH:mmZ`` (minute precision, per the SDK's doc comment), ``operationRecords`` with
``userId/date/type/result/remark``, ``tasks`` with an int64 ``taskId``. The 发票明细 ``TableField``
value is a JSON string of ``rowValue`` cells carrying ``componentType``/``label``/``value``/``key``
and its ``extValue`` is ``{"statValue":[],"componentName":"TableField"}``; an invoice file per
invoice is listed in a ``DDAttachment`` field, a JSON string of
``[{spaceId, fileName, fileSize, fileType, fileId}]`` (real-clients.md §2.7).

The topapi rendering is reused (``oafin.systems.dingtalk.twin_render``) wherever the data is the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Claim
from oafin.systems.dingtalk import twin_render as topapi

NAME: Final = "dingtalk-v1"
# source-systems.md §1.3: "Use the UTC time format: yyyy-MM-ddTHH:mmZ", e.g. 2022-08-31T11:52Z.
V1_TIME_FORMAT: Final = "%Y-%m-%dT%H:%MZ"
ATTACHMENT_LABEL: Final = "附件"
ATTACHMENT_ID: Final = "DDAttachment_0V7QK3W2M1S80"
SPACE_ID: Final = "26351912117"  # the approval app's DingTalk drive space (one per corp)
# The v1.0 cells of a TableField row carry their component type (real-clients.md §2.7).
TABLE_CELL_TYPES: Final = {
    "开票日期": "DDDateField",
    "不含税金额": "MoneyField",
    "税额": "MoneyField",
    "价税合计": "MoneyField",
}


def utc_minute(moment: datetime) -> str:
    """A v1.0 time: UTC, minute precision (``2026-10-05T01:52Z``)."""
    return moment.astimezone(UTC).strftime(V1_TIME_FORMAT)


def _table_value(value: str) -> str:
    """The topapi TableField rows, each cell given the v1.0 ``componentType`` and ``key``."""
    rows = json.loads(value)
    out = []
    for number, row in enumerate(rows, start=1):
        cells = [
            {
                "componentType": TABLE_CELL_TYPES.get(cell["label"], "TextField"),
                "label": cell["label"],
                "value": cell["value"],
                "key": cell["label"],
            }
            for cell in row["rowValue"]
        ]
        out.append({"rowValue": cells, "rowNumber": str(number)})
    return json.dumps(out, ensure_ascii=False)


def _attachments(claim: Claim) -> str:
    """One PDF per invoice in the claim's 附件 field (metadata only; the file needs a download grant)."""
    files = [
        {
            "spaceId": SPACE_ID,
            "fileName": f"发票{inv.number}.pdf",
            "fileSize": str(40_000 + int(inv.number[-4:])),
            "fileType": "pdf",
            "fileId": f"{int(claim.source_id[-6:], 36) % 10**8:08d}{i:02d}",
        }
        for i, inv in enumerate(claim.invoices)
    ]
    return json.dumps(files, ensure_ascii=False)


def form_component_values(claim: Claim) -> list[dict[str, Any]]:
    """The topapi form (same labels, ids and text) in v1.0 keys, plus the 附件 DDAttachment."""
    values = []
    for comp in topapi.form_values(claim):
        kind = comp["component_type"]
        value = comp["value"]
        ext = comp.get("ext_value")
        if kind == "TableField":
            value = _table_value(value)
            ext = json.dumps({"statValue": [], "componentName": "TableField"})
        out: dict[str, Any] = {"id": comp["id"], "name": comp["name"], "value": value}
        if ext is not None:
            out["extValue"] = ext
        out["componentType"] = kind
        values.append(out)
    values.append(
        {
            "id": ATTACHMENT_ID,
            "name": ATTACHMENT_LABEL,
            "value": _attachments(claim),
            "componentType": "DDAttachment",
        }
    )
    return values


def _record(userid: str, when: datetime, op: str, result: str, remark: str = "") -> dict[str, Any]:
    return {
        "userId": userid,
        "date": utc_minute(when),
        "type": op,
        "result": result,
        "remark": remark,
        "showName": "",
        # files attached to the action: none in the sandbox month, but the key is there (the
        # SDK's model always has the list, source-systems.md §1.3 lists it)
        "attachments": [],
    }


def operation_records(claim: Claim) -> list[dict[str, Any]]:
    """The topapi records (same people, same order) in v1.0 keys and times (§1.4 enumerations)."""
    return [
        _record(
            r["userid"],
            when,
            r["operation_type"],
            r["operation_result"],
            r["remark"],
        )
        for r, when in zip(topapi.operation_records(claim), _record_times(claim), strict=True)
    ]


def _record_times(claim: Claim) -> list[datetime]:
    """The moments of ``topapi.operation_records(claim)``, in the same order."""
    times = [claim.created, *claim.approval_times]
    if claim.refuser is not None and claim.finished is not None:
        times.append(claim.finished)
    if claim.status == "withdrawn" and claim.finished is not None:
        times.append(claim.finished)
    return times


def task_id(claim: Claim, index: int) -> int:
    """A stable int64 task id (the SDK types ``taskId`` as int64, source-systems.md §1.3)."""
    return 60_000_000_000 + (int(claim.source_id[-6:], 36) % 10**6) * 100 + index


def tasks(claim: Claim) -> list[dict[str, Any]]:
    """One task per approver who acted, COMPLETED with AGREE or REFUSE (§1.4)."""
    acted = [(p.userid, when, "AGREE") for p, when in zip(claim.approvers, claim.approval_times, strict=True)]
    if claim.refuser is not None and claim.finished is not None:
        acted.append((claim.refuser.userid, claim.finished, "REFUSE"))
    out = []
    for i, (userid, when, result) in enumerate(acted):
        out.append(
            {
                "taskId": task_id(claim, i),
                "userId": userid,
                "status": "COMPLETED",
                "result": result,
                "createTime": utc_minute(claim.created),
                "finishTime": utc_minute(when),
                "activityId": f"node_{i + 1}",
                "processInstanceId": claim.source_id,
                "mobileUrl": "",
                "pcUrl": "",
            }
        )
    return out


def process_instance(claim: Claim, topapi_instance: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of ``GET /v1.0/workflow/processInstances`` for one claim (with its id)."""
    inst: dict[str, Any] = {
        "processInstanceId": claim.source_id,  # stripped again by the twin: the real result has none
        "title": topapi_instance["title"],
        "createTime": utc_minute(claim.created),
    }
    if "finish_time" in topapi_instance and claim.finished is not None:
        inst["finishTime"] = utc_minute(claim.finished)
    inst |= {
        "originatorUserId": topapi_instance["originator_userid"],
        "originatorDeptId": topapi_instance["originator_dept_id"],
        "originatorDeptName": topapi_instance["originator_dept_name"],
        "status": topapi_instance["status"],
        "result": topapi_instance["result"],
        "businessId": topapi_instance["business_id"],
        "bizAction": topapi_instance["biz_action"],
        "approverUserIds": list(topapi_instance["approver_userids"]),
        "ccUserIds": [],
        "attachedProcessInstanceIds": [],
        "mainProcessInstanceId": "",
        "formComponentValues": form_component_values(claim),
        "operationRecords": operation_records(claim),
        "tasks": tasks(claim),
    }
    return inst


def render(dataset: Dataset) -> list[dict[str, Any]]:
    """Every claim as a v1.0 instance (with ``processInstanceId``), in submission order."""
    return [
        process_instance(claim, inst)
        for claim, inst in zip(dataset.claims, topapi.instances(dataset), strict=True)
    ]


def instances(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's v1.0 instances as the twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
