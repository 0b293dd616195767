"""WeCom approval forms for correction batches (issue #17): ``oa/applyevent`` and ``oa/getapprovaldetail``.

The template an admin creates in WeCom (README, "Corrections approved in the OA") has these
controls, by title (WeCom assigns the control ids, ``Text-1727...``; oafin reads them from the
template with ``oa/gettemplatedetail`` [U: that call's answer shape is not in the reference; as
WeCom's doc page shows it, ``template_content.controls[].property{control, id, title}``, a Table's
columns under ``config.table.children[].property``]):

| title | control | holds |
|---|---|---|
| ``更正批次`` | Text | oafin's batch id (how a lost create is found again) |
| ``对账报告`` | Text | the link to the run's report |
| ``更正说明`` | Textarea | how many actions, the total amount, what approving does |
| ``更正明细`` | Table | one row per action: ``编号, 报销单号, 异常类型, 金额, 目标系统, 发送内容`` (Text each) |

Create (real-clients.md §4.2): ``POST /cgi-bin/oa/applyevent`` with ``creator_userid``,
``template_id``, ``use_template_approver`` (0: the approvers named in the call, in the legacy
``approver[{attr: 2 (all must approve), userid}]`` form wechatpy sends; 1: the template's own flow),
``apply_data.contents[{control, id, value}]`` (a Table's value ``{"children": [{"list": [...]}]}``,
one ``list`` per row, every column in each) and ``summary_list``; the answer is ``sp_no``. There is
no idempotency key (§4.2): a lost answer is found with ``getapprovalinfo`` filtered on the template
and the creator, by the ``更正批次`` control.

Reading (source-systems.md §2.3-2.4, real-clients.md §4.2): form ``sp_status`` 2 (and 10, paid) is
approved, 3 rejected, 4/6/7 (withdrawn, revoked after approval, deleted) withdrawn, anything else
pending. Who decided: ``sp_record[].details[]`` with ``approver.userid`` and ``sp_status`` 2 (agree)
or 3 (refuse) (real-clients.md §4.4). WeCom records no separate act for a withdrawal: 已撤销 is the
applicant's own act [U], so a withdrawn form's decider is its ``applyer``. WeCom console rules can
auto-approve [U], indistinguishable in the record: every agreeing detail counts as human. No
row-level decision (real-clients.md §4.4).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from oafin.systems.base import ApprovalRecord, ApprovalRequest, ApprovalState, ApprovalStatus, yuan

BATCH_TITLE: Final = "更正批次"
REPORT_TITLE: Final = "对账报告"
SUMMARY_TITLE: Final = "更正说明"
TABLE_TITLE: Final = "更正明细"
COLUMNS: Final = ("编号", "报销单号", "异常类型", "金额", "目标系统", "发送内容")
APPROVED: Final = frozenset({2, 10})
REJECTED: Final = frozenset({3})
WITHDRAWN: Final = frozenset({4, 6, 7})
DETAIL_RESULTS: Final = {2: "agree", 3: "refuse"}

Design = dict[str, tuple[str, str]]  # title -> (control, id)


def _title(prop: dict[str, Any]) -> str:
    titles = prop.get("title") or []
    return str(titles[0].get("text") or "") if titles and isinstance(titles[0], dict) else ""


def design_of(template: dict[str, Any]) -> tuple[Design, Design]:
    """(form controls, the 更正明细 table's columns) by title, from ``gettemplatedetail``'s answer."""
    form: Design = {}
    columns: Design = {}
    for c in (template.get("template_content") or {}).get("controls") or []:
        prop = c.get("property") or {}
        form[_title(prop)] = (str(prop.get("control")), str(prop.get("id")))
        if _title(prop) == TABLE_TITLE:
            for child in ((c.get("config") or {}).get("table") or {}).get("children") or []:
                cp = child.get("property") or {}
                columns[_title(cp)] = (str(cp.get("control")), str(cp.get("id")))
    missing = [t for t in (BATCH_TITLE, REPORT_TITLE, SUMMARY_TITLE, TABLE_TITLE) if t not in form]
    missing += [f"{TABLE_TITLE}.{t}" for t in COLUMNS if t not in columns]
    if missing:
        raise ValueError(
            f"the template lacks the controls {', '.join(missing)} (README: the corrections form)"
        )
    return form, columns


def _text(design: Design, title: str, text: str) -> dict[str, Any]:
    control, cid = design[title]
    return {"control": control, "id": cid, "value": {"text": text}}


def apply_body(request: ApprovalRequest, template: dict[str, Any]) -> dict[str, Any]:
    """``oa/applyevent``'s body for ``request`` (see the module docstring)."""
    form, columns = design_of(template)
    rows = [
        {"list": [_text(columns, title, value) for title, value in zip(COLUMNS, r.cells(), strict=True)]}
        for r in request.rows
    ]
    summary = request.summary()
    control, table_id = form[TABLE_TITLE]
    body: dict[str, Any] = {
        "creator_userid": request.originator_id,
        "template_id": request.process_code,
        "use_template_approver": 0 if request.approver_ids else 1,
        "apply_data": {
            "contents": [
                _text(form, BATCH_TITLE, request.batch_id),
                _text(form, REPORT_TITLE, request.report_link),
                _text(form, SUMMARY_TITLE, summary),
                {"control": control, "id": table_id, "value": {"children": rows}},
            ]
        },
        "summary_list": [
            {"summary_info": [{"text": f"oafin 对账更正 {len(request.rows)} 项", "lang": "zh_CN"}]},
            {"summary_info": [{"text": f"合计 {yuan(request.total_fen)}", "lang": "zh_CN"}]},
        ],
    }
    if request.approver_ids:
        body["approver"] = [{"attr": 2, "userid": list(request.approver_ids)}]  # 2: all must approve
        body["notify_type"] = 1
    return body


def _status(info: dict[str, Any]) -> int | None:
    try:
        return int(info.get("sp_status"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def status_of(info: dict[str, Any]) -> ApprovalStatus:
    status = _status(info)
    if status in APPROVED:
        return "approved"
    if status in REJECTED:
        return "rejected"
    if status in WITHDRAWN:
        return "withdrawn"
    return "pending"


def _when(seconds: Any) -> datetime | None:
    """``sptime`` is Unix seconds, 0 when not yet acted (source-systems.md §2.3)."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value, UTC) if value > 0 else None


def records_of(info: dict[str, Any]) -> tuple[ApprovalRecord, ...]:
    out: list[ApprovalRecord] = []
    for node in info.get("sp_record") or []:
        for d in (node or {}).get("details") or []:
            user = str(((d or {}).get("approver") or {}).get("userid") or "")
            try:
                result = DETAIL_RESULTS.get(int(d.get("sp_status")))
            except (TypeError, ValueError):
                result = None
            if user and result:
                out.append(ApprovalRecord(user, result, _when(d.get("sptime")), str(d.get("speech") or "")))
    applicant = str((info.get("applyer") or {}).get("userid") or "")
    if status_of(info) == "withdrawn" and applicant:
        out.append(ApprovalRecord(applicant, "withdraw"))
    return tuple(out)


def batch_of(info: dict[str, Any]) -> str | None:
    for c in (info.get("apply_data") or {}).get("contents") or []:
        if _title(c) == BATCH_TITLE:
            return str(((c.get("value") or {}).get("text")) or "")
    return None


class WeComApprovals:
    """``Approvals`` over the WeCom client (``WeComClient``)."""

    row_level = False  # real-clients.md §4.4: the form decides the whole batch

    def create(self, client: Any, request: ApprovalRequest) -> str:
        template = client.get_template(request.process_code)
        try:
            body = apply_body(request, template)
        except ValueError as exc:
            raise ValueError(
                f"wecom oa/gettemplatedetail template_id={request.process_code}: {exc}"
            ) from None
        return str(client.apply_event(body))

    def find(self, client: Any, request: ApprovalRequest, since: datetime) -> str | None:
        """The form of ``request.batch_id`` among the template's forms by the creator since ``since``
        (a minute earlier: clocks differ), by its ``更正批次`` control."""
        start, end = since - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
        for sp_no in client.iter_sp_nos(request.process_code, start, end, creator=request.originator_id):
            if batch_of(client.get_detail(sp_no)) == request.batch_id:
                return sp_no
        return None

    def read(self, client: Any, instance_id: str) -> ApprovalState:
        info = client.get_detail(instance_id)
        return ApprovalState(
            instance_id=instance_id,
            status=status_of(info),
            records=records_of(info),
            raw_status=str(info.get("sp_status") or ""),
        )
