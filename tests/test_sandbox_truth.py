"""The sandbox's truth.csv, re-derived from the served data by a small independent reading of DESIGN.

The oracle below reads only what the fake APIs serve (process instances, Kingdee rows) and
the code tables, applies DESIGN's rules literally (key matching, scope, SLA, tolerance,
quarantine, "one discrepancy, one exception"), and must find exactly the truth rows: no
injection may be missed, none may raise a second type, and the noise must raise nothing.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from oafin.sandbox.codes import load_codes
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text, uscc_check
from oafin.sandbox.generator import generate, period_bounds
from oafin.sandbox.tables import TABLES_DIR
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
SLA = timedelta(days=5)
TOLERANCE_FEN = 1
LEGAL_RATES = {"13%", "9%", "6%", "3%", "1%", "0%", "5%"}


def norm(value: object) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value or ""))).upper()


def text(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value or "")).strip()


def fen(value: object) -> int | None:
    """Money text or number → fen; None when empty or unreadable."""
    raw = text(value).replace(",", "").removeprefix("¥")
    if not raw:
        return None
    try:
        return int((Decimal(raw) * 100).quantize(Decimal("1"), ROUND_HALF_UP))
    except ArithmeticError:
        return None


def local(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)


def invoice_ok(cells: dict[str, str]) -> bool:
    code, number = cells["发票代码"], cells["发票号码"]
    traditional = re.fullmatch(r"\d{10}|\d{12}", code) and re.fullmatch(r"\d{8}", number)
    digital = code == "" and re.fullmatch(r"\d{20}", number)
    if not (traditional or digital):
        return False
    if fen(cells["不含税金额"]) + fen(cells["税额"]) != fen(cells["价税合计"]):  # type: ignore[operator]
        return False
    seller = cells["销售方纳税人识别号"]
    return cells["税率"] in LEGAL_RATES and len(seller) == 18 and uscc_check(seller[:17]) == seller[17]


def invoice_key(cells: dict[str, str]) -> str:
    return f"{cells['发票代码']}-{cells['发票号码']}" if cells["发票代码"] else cells["发票号码"]


def oracle(ds: Dataset) -> set[tuple[str, str]]:
    """Every (exception_type, key) DESIGN's rules find in the served data."""
    codes = load_codes(TABLES_DIR)
    people_by_user = {p.userid: p for p in codes.people}
    people_by_staff = {p.staff_number: p for p in codes.people}
    start, end = period_bounds(ds.period)
    as_of = end
    found: set[tuple[str, str]] = set()

    claims = []
    for inst in dingtalk_instances(ds):
        form = {c["name"]: c for c in inst["form_component_values"]}
        status = {("COMPLETED", "agree"): "approved", ("RUNNING", ""): "pending"}.get(
            (inst["status"], inst["result"]), "other"
        )
        approved_at = local(inst["finish_time"]) if status == "approved" else None
        submitted = local(inst["create_time"])
        amount = fen(form["报销金额"]["value"]) if "报销金额" in form else None
        quarantine = None
        dept, expense_type = text(form["所属部门"]["value"]), text(form["费用类型"]["value"])
        if dept not in codes.departments or expense_type not in codes.expense_types:
            quarantine = "UNMAPPED_CODE"
        elif amount is None or amount <= 0:
            quarantine = "CONTRACT_VIOLATION"
        scope_at = approved_at or submitted
        rows = json.loads(form["发票明细"]["value"])
        claims.append(
            {
                "no": inst["business_id"],
                "key": norm(inst["business_id"]),
                "status": status,
                "approved_at": approved_at,
                "submitted": submitted,
                "in_scope": start <= scope_at < end,
                "amount": amount,
                "quarantine": quarantine,
                "applicant": people_by_user[inst["originator_userid"]],
                "approvers": [
                    people_by_user[r["userid"]]
                    for r in inst["operation_records"]
                    if r["operation_result"] == "AGREE"
                ],
                "budget_code": text(form["预算编号"]["value"]),
                "invoices": [{c["label"]: c["value"] for c in row["rowValue"]} for row in rows],
            }
        )
    by_key = {c["key"]: c for c in claims}
    quarantined_keys = {c["key"] for c in claims if c["quarantine"]}

    bills = {}
    for row in kingdee_rows(ds)["ER_ExpReimbursement"]:
        bills[norm(row["FBillNo"])] = {
            "no": row["FBillNo"],
            "when": local(row["FDate"]),
            "ref": norm(row["F_OAFIN_OANo"]),
            "amount": fen(row["FExpenseAmount"]),
        }
    payments = []
    for row in kingdee_rows(ds)["AP_PAYBILL"]:
        payments.append(
            {
                "no": row["FBillNo"],
                "when": local(row["FDATE"]),
                "ref": norm(row["F_OAFIN_OANo"]),
                "sources": [norm(s) for s in str(row["FSOURCEBILLNO"]).split(",") if norm(s)],
                "payee": people_by_staff[text(row["FCONTACTUNIT.FNumber"])],
                "amount": fen(row["FREALPAYAMOUNTFOR_D"]),
            }
        )

    # Pass 1 (key): bills and direct payments by OA number, payments by the bills they settle.
    bills_of = defaultdict(list)
    for bill in bills.values():
        if bill["ref"] in by_key:
            bills_of[bill["ref"]].append(bill)
    pays_of = defaultdict(list)  # claim key -> [(payment, amount attributed to the claim)]
    for pay in payments:
        if pay["ref"] in by_key:
            pays_of[pay["ref"]].append((pay, pay["amount"]))
        for src in pay["sources"]:
            bill = bills.get(src)
            if bill and bill["ref"] in by_key:
                share = pay["amount"] if len(pay["sources"]) == 1 else bill["amount"]
                pays_of[bill["ref"]].append((pay, share))

    due = as_of - SLA
    for c in claims:
        if not c["in_scope"]:
            continue
        if c["quarantine"]:
            found.add((c["quarantine"], c["no"]))
            continue
        my_bills, my_pays = bills_of[c["key"]], pays_of[c["key"]]
        if c["status"] != "approved":
            if my_bills or my_pays:
                found.add(("STATUS_MISMATCH", c["no"]))
            continue
        if c["applicant"] in c["approvers"]:
            found.add(("SELF_APPROVAL", c["no"]))
        if any(a.limit_fen < c["amount"] for a in c["approvers"]):
            found.add(("APPROVAL_LIMIT", c["no"]))
        if not my_bills and not my_pays:
            if c["approved_at"] <= due:
                found.add(("MISSING_IN_FINANCE", c["no"]))
            continue
        billed = sum(b["amount"] for b in my_bills) if my_bills else sum(a for _, a in my_pays)
        paid = sum(a for _, a in my_pays)
        if paid > billed + TOLERANCE_FEN and len(my_pays) > 1:
            found.add(("DUPLICATE_PAYMENT", c["no"]))
        elif abs(billed - c["amount"]) > TOLERANCE_FEN:
            found.add(("AMOUNT_MISMATCH", c["no"]))
        if any(p["payee"] is not c["applicant"] for p, _ in my_pays):
            found.add(("PAYEE_MISMATCH", c["no"]))
        first = min((p["when"] for p, _ in my_pays), default=None)
        if (first is not None and first - c["approved_at"] > SLA) or (
            first is None and c["approved_at"] <= due
        ):
            found.add(("LATE_PAYMENT", c["no"]))

    # Invoices: checked on every in-scope claim (quarantined or not); a reuse is a duplicate.
    seen: set[str] = set()
    for c in sorted(claims, key=lambda c: c["submitted"]):
        for cells in c["invoices"]:
            key = invoice_key(cells)
            if c["in_scope"] and not invoice_ok(cells):
                found.add(("INVALID_INVOICE", key))
            if key in seen and c["in_scope"]:
                found.add(("DUPLICATE_INVOICE", key))
            seen.add(key)

    used: dict[str, int] = defaultdict(int)
    for c in claims:
        if c["in_scope"] and c["status"] == "approved" and not c["quarantine"]:
            used[c["budget_code"]] += c["amount"]
    for code, total in used.items():
        if total > codes.budgets[(code, ds.period)]:
            found.add(("BUDGET_OVERRUN", code))

    # MISSING_IN_OA: in-period documents no claim stands behind; a payment of such a bill is
    # part of the bill's chain, not a second finding.
    linked_bills = {k for k, b in bills.items() if b["ref"] in by_key or b["ref"] in quarantined_keys}
    for key, bill in bills.items():
        if key not in linked_bills and start <= bill["when"] < end:
            found.add(("MISSING_IN_OA", bill["no"]))
    for pay in payments:
        if (
            start <= pay["when"] < end
            and pay["ref"] not in by_key
            and not any(s in bills for s in pay["sources"])
        ):
            found.add(("MISSING_IN_OA", pay["no"]))
    return found


def truth_set(ds: Dataset) -> set[tuple[str, str]]:
    keyed = ds.truth.apply(
        lambda r: (r["exception_type"], r["claim_no"] or r["doc_no"] or r["invoice_no"] or r["budget_code"]),
        axis=1,
    )
    return set(keyed)


def check_against_oracle(ds: Dataset) -> None:
    expected = truth_set(ds)
    assert len(expected) == len(ds.truth), "one truth row per (type, key)"
    found = oracle(ds)
    assert found - expected == set(), "found but not in truth"
    assert expected - found == set(), "in truth but not found"


def test_truth_of_the_default_month_is_what_the_rules_find(sandbox_dataset_full: Dataset) -> None:
    check_against_oracle(sandbox_dataset_full)


@pytest.mark.parametrize(
    ("seed", "n_claims", "period"), [(11, 400, "2026-10"), (3, 600, "2026-12"), (5, 200, "2027-02")]
)
def test_truth_holds_for_other_seeds_sizes_and_periods(seed: int, n_claims: int, period: str) -> None:
    check_against_oracle(generate(seed=seed, n_claims=n_claims, period=period))


def test_the_oracle_notices_a_cent_too_much_on_a_clean_bill(sandbox_dataset: Dataset) -> None:
    """Guard on the guard: change one clean bill by 5 fen and the oracle must disagree with truth."""
    ds = copy.deepcopy(sandbox_dataset)
    flagged = set(ds.truth["claim_no"])
    approved_in_period = {
        i["business_id"]
        for i in dingtalk_instances(ds)
        if i["result"] == "agree" and i["finish_time"].startswith(ds.period)
    }
    bill = next(
        r
        for r in kingdee_rows(ds)["ER_ExpReimbursement"]
        if text(r["F_OAFIN_OANo"]) in approved_in_period - flagged
    )
    bill["FExpenseAmount"] = fen_text(fen(bill["FExpenseAmount"]) + 5)  # type: ignore[operator]
    assert oracle(ds) - truth_set(ds) == {("AMOUNT_MISMATCH", text(bill["F_OAFIN_OANo"]))}
