"""Kingdee K/3 Cloud's write-back: create a reimbursement bill, flag a payment for recall.

``landed`` reads Kingdee only (the check before re-sending a ``pending`` action); ``send`` makes
the write calls (DynamicFormService Save / Submit / Audit, source-systems.md §7.5) and returns
what Kingdee answered. Writes go out once per call (the write client does not retry), so a
doubtful call is settled by ``landed`` on the next attempt, not by blind re-sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from oafin.standard import BUSINESS_TZ, yuan
from oafin.systems.base import ActionInput, ActionPlan, CannotPropose

ER_FORM = "ER_ExpReimbursement"  # default-forms.md; source-systems.md §7.5
PAY_FORM = "AP_PAYBILL"
CURRENCY_NUMBERS = {"CNY": "PRE001"}  # default-forms.md: PRE001 is CNY
# FDocumentStatus (source-systems.md §7.4): Z 暂存, A 创建, B 审核中, C 已审核, D 重新审核.
SUBMITTABLE = ("Z", "A", "D")
_ZONE = ZoneInfo(BUSINESS_TZ)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _local(moment: Any, fmt: str) -> str:
    value = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    return value.astimezone(_ZONE).strftime(fmt)


def find_bill(client: Any, claim_no: str) -> dict[str, Any] | None:
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


class CreateBill:
    """The reimbursement bill for an approved OA claim finance does not have: Save, Submit, Audit if allowed."""

    name = "finance_create_bill"
    description = f"Save + Submit of an {ER_FORM} bill (Audit with corrections.allow_audit)"

    def plan(self, data: ActionInput) -> ActionPlan:
        claim = data.claim
        number = data.applicant_external_id
        if not number:
            raise CannotPropose(
                f"applicant {claim.get('applicant_id')} has no kingdee_staff_number in the people table"
            )
        currency = CURRENCY_NUMBERS.get(claim.get("currency") or "CNY")
        if currency is None:
            raise CannotPropose(f"currency {claim.get('currency')} has no Kingdee currency number")
        amount = int(claim["amount_fen"])
        model = {
            "FDate": _local(claim["approved_at"], "%Y-%m-%dT%H:%M:%S"),
            "F_OAFIN_OANo": claim["claim_no"],
            "FProposerID": {"FStaffNumber": number},
            "FRequestDeptID": {"FNumber": claim.get("department_code") or ""},
            "FExpenseAmount": yuan(amount),
            "FCausa": claim.get("title") or "",
            "FCurrencyID": {"FNumber": currency},
            "FOrgID": {"FNumber": claim.get("company_code") or data.options.get("company_code") or ""},
        }
        return ActionPlan(
            content={"form_id": ER_FORM, "claim_no": claim["claim_no"], "model": model},
            target=f"kingdee {ER_FORM} for OA {claim['claim_no']}",
            preview=(
                f"Kingdee: Save a {ER_FORM} bill for OA {claim['claim_no']} (staff {number}, "
                f"¥{yuan(amount)}, dated {model['FDate']}), then Submit"
            ),
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        bill = find_bill(client, content["claim_no"])
        if bill is None or bill["FDocumentStatus"] not in bill_target_status(
            bool(options.get("allow_audit"))
        ):
            return None
        return {"found": bill["FBillNo"], "fid": bill["FID"], "status": bill["FDocumentStatus"]}

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Save (unless a bill for the claim exists), Submit, and Audit if allowed: each step only if
        the bill's current status still needs it, so a half-done earlier attempt is completed, not
        repeated."""
        allow_audit = bool(options.get("allow_audit"))
        steps: list[dict[str, Any]] = []
        bill = find_bill(client, content["claim_no"])
        if bill is None:
            saved = client.save(ER_FORM, content["model"])
            fid, number, status = saved.get("Id"), saved.get("Number"), "A"
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


def _payment(client: Any, fid: int) -> dict[str, Any] | None:
    rows = list(client.iter_rows(PAY_FORM, ["FID", "FBillNo", "FREMARK"], f"FID = {int(fid)}", "FID ASC"))
    return rows[0] if rows else None


class FlagRecall:
    """A remark on an excess payment asking for recall; never a reversal."""

    name = "finance_flag_recall"
    description = f"Save of FREMARK on {PAY_FORM} (NeedUpDateFields)"

    def plan(self, data: ActionInput) -> ActionPlan:
        doc = data.doc
        if doc is None:
            raise CannotPropose("no payment to flag")
        fid = int(str(doc["doc_id"]).rsplit(":", 1)[1])
        note = data.text or ""
        return ActionPlan(
            content={"form_id": PAY_FORM, "fid": fid, "doc_no": doc["doc_no"], "note": note},
            target=f"kingdee {PAY_FORM} {doc['doc_no']}",
            preview=f"Kingdee: add to the remark of payment {doc['doc_no']} (¥{yuan(doc['amount_fen'] or 0)}): {note}",
        )

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        row = _payment(client, content["fid"])
        if row is None or marker not in str(row.get("FREMARK") or ""):
            return None
        return {"found": row["FBillNo"], "remark": row["FREMARK"]}

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
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
