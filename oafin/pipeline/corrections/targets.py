"""How each action is sent to its system, and how to see whether it already landed there.

``landed`` reads the target system only (the check before re-sending a ``pending`` action);
``send`` makes the write calls and returns what the system answered. Writes go out once per
call (the connectors' write clients do not retry), so a doubtful call is settled by ``landed``
on the next attempt, not by blind re-sending.
"""

from __future__ import annotations

from typing import Any

from oafin.pipeline.corrections.propose import ER_FORM, PAY_FORM
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.kingdee.client import KingdeeClient

# FDocumentStatus (source-systems.md §7.4): Z 暂存, A 创建, B 审核中, C 已审核, D 重新审核.
SUBMITTABLE = ("Z", "A", "D")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_text(content: dict[str, Any], marker: str) -> str:
    return f"{content['text']} {marker}"


def comment_landed(client: DingTalkClient, content: dict[str, Any], marker: str) -> dict[str, Any] | None:
    record = client.find_comment(content["instance_id"], marker)
    return None if record is None else {"found": "ADD_REMARK", "date": record.get("date")}


def comment_send(client: DingTalkClient, content: dict[str, Any], marker: str) -> dict[str, Any]:
    reply = client.add_comment(
        content["instance_id"], comment_text(content, marker), content["comment_userid"]
    )
    return {k: reply.get(k) for k in ("errcode", "errmsg", "result", "request_id")}


def find_bill(client: KingdeeClient, claim_no: str) -> dict[str, Any] | None:
    """The reimbursement bill carrying ``claim_no`` in ``F_OAFIN_OANo`` (default-forms.md), if any.

    Whoever created it (oafin or a person), a bill for the claim exists: oafin never adds a second.
    """
    rows = list(
        client.iter_rows(
            ER_FORM, ["FID", "FBillNo", "FDocumentStatus"], f"F_OAFIN_OANo = {_quote(claim_no)}", "FID ASC"
        )
    )
    return rows[0] if rows else None


def bill_target_status(allow_audit: bool) -> tuple[str, ...]:
    return ("C",) if allow_audit else ("B", "C")


def bill_landed(client: KingdeeClient, content: dict[str, Any], allow_audit: bool) -> dict[str, Any] | None:
    bill = find_bill(client, content["claim_no"])
    if bill is None or bill["FDocumentStatus"] not in bill_target_status(allow_audit):
        return None
    return {"found": bill["FBillNo"], "fid": bill["FID"], "status": bill["FDocumentStatus"]}


def bill_send(client: KingdeeClient, content: dict[str, Any], allow_audit: bool) -> dict[str, Any]:
    """Save (unless a bill for the claim exists), Submit, and Audit if allowed: each step only if the
    bill's current status still needs it, so a half-done earlier attempt is completed, not repeated."""
    steps: list[dict[str, Any]] = []
    bill = find_bill(client, content["claim_no"])
    if bill is None:
        saved = client.save(ER_FORM, content["model"])
        fid, number, status = saved.get("Id"), saved["Number"], "A"  # a saved bill has its number
        steps.append({"call": "Save", "Id": fid, "Number": number})
    else:
        fid, number, status = bill["FID"], bill["FBillNo"], bill["FDocumentStatus"]
    if status in SUBMITTABLE:
        client.submit(ER_FORM, [number])
        status = "B"
        steps.append({"call": "Submit", "Number": number})
    if allow_audit and status == "B":
        client.audit(ER_FORM, [number])
        status = "C"
        steps.append({"call": "Audit", "Number": number})
    return {"fid": fid, "number": number, "status": status, "steps": steps}


def _payment(client: KingdeeClient, fid: int) -> dict[str, Any] | None:
    rows = list(client.iter_rows(PAY_FORM, ["FID", "FBillNo", "FREMARK"], f"FID = {int(fid)}", "FID ASC"))
    return rows[0] if rows else None


def flag_landed(client: KingdeeClient, content: dict[str, Any], marker: str) -> dict[str, Any] | None:
    row = _payment(client, content["fid"])
    if row is None or marker not in str(row.get("FREMARK") or ""):
        return None
    return {"found": row["FBillNo"], "remark": row["FREMARK"]}


def flag_send(client: KingdeeClient, content: dict[str, Any], marker: str) -> dict[str, Any]:
    """Append the note (with the marker) to the payment's FREMARK via Save with NeedUpDateFields:
    the only field that changes; the payment is never reversed or un-audited."""
    row = _payment(client, content["fid"])
    if row is None:
        raise LookupError(f"payment {content['doc_no']} (FID {content['fid']}) is not in Kingdee")
    current = str(row.get("FREMARK") or "").strip()
    remark = f"{current} {content['note']} {marker}".strip()
    saved = client.save(
        PAY_FORM, {"FID": int(content["fid"]), "FREMARK": remark}, need_update_fields=["FREMARK"]
    )
    return {"fid": saved.get("Id"), "number": saved.get("Number"), "remark": remark}


def landed(
    action: str, client: Any, content: dict[str, Any], marker: str, allow_audit: bool
) -> dict[str, Any] | None:
    if action == "oa_status_comment":
        return comment_landed(client, content, marker)
    if action == "finance_create_bill":
        return bill_landed(client, content, allow_audit)
    if action == "finance_flag_recall":
        return flag_landed(client, content, marker)
    raise ValueError(f"unknown action {action}")


def send(action: str, client: Any, content: dict[str, Any], marker: str, allow_audit: bool) -> dict[str, Any]:
    if action == "oa_status_comment":
        return comment_send(client, content, marker)
    if action == "finance_create_bill":
        return bill_send(client, content, allow_audit)
    if action == "finance_flag_recall":
        return flag_send(client, content, marker)
    raise ValueError(f"unknown action {action}")
