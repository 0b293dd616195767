"""Chains of systems (DESIGN, "Chains of systems"): reconcile each adjacent pair and the chain end to end.

A chain is the config's sources in order, each with its role (``oa``, ``expense``, ``erp``) and the
system whose records it holds (the prefix of ``claim_id``/``doc_id``). Nothing here names a system:
pairs are decided by role and record type.

- The first pair, the OA and the next source (an ERP in a two-system chain, an expense platform
  such as Hesine in a longer one), is the claims-against-documents reconciliation of
  ``oafin.engine.reconcile``, on that source's reimbursements and payments (never its vouchers).
  Where that source is an expense platform, a document there with no OA approval behind it is
  ``EXPENSE_WITHOUT_OA`` (what ``MISSING_IN_OA`` is against a finance system).
- A pair (expense platform, ERP) is the paid documents against the ERP's vouchers
  (``finance_doc.doc_type == "voucher"``). A voucher books the documents whose numbers it carries
  in ``source_doc_nos``; the platform's paid document carries the voucher number written back in
  ``voucher_no``. For every payment of the expense platform paid in the period, as of ``as_of``:

  * ``VOUCHER_MISSING`` (pair: the OA and the ERP, the chain end to end): no voucher books it,
    although it pays a claim approved in OA (its own ``claim_no_ref``, or that of a bill it pays,
    is an approved claim's number);
  * ``VOUCHER_NOT_IN_ERP``: the ``voucher_no`` written back to it is no voucher number in the ERP
    (checked first: with such a number, no ``VOUCHER_MISSING`` as well);
  * ``VOUCHER_AMOUNT_MISMATCH`` (keyed by the voucher): the vouchers booking it total another
    amount than was paid, beyond the amount tolerance;
  * ``VOUCHER_PERIOD`` (keyed by the voucher): a voucher booking it is in another period than the
    payment (the Asia/Shanghai month of ``paid_at``) or in a closed one (before the run's period).

Every exception names its pair in ``left_system`` and ``right_system`` (source names); quarantined
records of a source are reported on the pair that source closes (the first pair for the OA's).
``pair_stats`` counts, per pair, what matched, what has no counterpart and what differs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from oafin.engine import findings as F
from oafin.engine.keys import norm_key
from oafin.engine.reconcile import EXCEPTION_FRAME_COLUMNS, ReconcileResult, reconcile
from oafin.engine.scope import ReconcileParams, References

CHAIN_COLUMNS = [*EXCEPTION_FRAME_COLUMNS, "left_system", "right_system"]
VOUCHER_TYPE = "voucher"
PAIR_STAT_COLUMNS = [
    "left_system",
    "right_system",
    "matched",
    "matched_fen",
    "unmatched",
    "unmatched_fen",
    "differing",
    "differing_fen",
]
# The first pair's codes that count as "no counterpart" and "differs", for pair_stats.
_UNMATCHED = ("MISSING_IN_FINANCE", "MISSING_IN_OA", "EXPENSE_WITHOUT_OA")
_DIFFERING = ("AMOUNT_MISMATCH",)


@dataclass(frozen=True)
class ChainLink:
    """One source of the chain: its config name, the system its records carry, its role."""

    name: str
    system: str
    role: str


def system_of(ids: pd.Series) -> pd.Series:
    """``dingtalk:...`` → ``dingtalk``: the system a standard id belongs to."""
    return ids.astype(str).str.split(":", n=1).str[0]


def _of(frame: pd.DataFrame, column: str, system: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame.loc[(system_of(frame[column]) == system).to_numpy()].reset_index(drop=True)


def reconcile_chain(
    claims: pd.DataFrame,
    docs: pd.DataFrame,
    params: ReconcileParams,
    chain: Sequence[ChainLink],
    quarantined: pd.DataFrame | None = None,
    *,
    invoices: pd.DataFrame | None = None,
    invalid_invoices: pd.DataFrame | None = None,
    references: References | None = None,
) -> ReconcileResult:
    """Every pair of ``chain`` (OA first), as the module docstring says; one ``ReconcileResult``."""
    if len(chain) < 2 or chain[0].role != "oa":
        raise ValueError("a chain starts with an oa source and has at least two sources")
    oa, first = chain[0], chain[1]
    q = quarantined if quarantined is not None else pd.DataFrame(columns=["system"])
    first_docs = _of(docs, "doc_id", first.system)
    first_docs = first_docs.loc[(first_docs["doc_type"] != VOUCHER_TYPE).to_numpy()].reset_index(drop=True)
    first_q = q.loc[q["system"].isin([oa.system, first.system]).to_numpy()] if not q.empty else q
    result = reconcile(
        _of(claims, "claim_id", oa.system),
        first_docs,
        params,
        first_q.reset_index(drop=True) if quarantined is not None else None,
        invoices=invoices,
        invalid_invoices=invalid_invoices,
        references=references,
    )
    found = [_named(result.exceptions, oa.name, first.name)]
    if first.role == "expense":
        found[0]["exception_type"] = found[0]["exception_type"].replace("MISSING_IN_OA", "EXPENSE_WITHOUT_OA")
    stats = [_first_pair_stats(found[0], result, _of(claims, "claim_id", oa.system), oa.name, first.name)]

    for left, right in zip(chain[1:], chain[2:], strict=False):
        right_q = q.loc[(q["system"] == right.system).to_numpy()] if not q.empty else q
        if not right_q.empty:
            found.append(
                _named(
                    F.quarantine_exceptions(right_q.reset_index(drop=True), params.period),
                    left.name,
                    right.name,
                )
            )
        if left.role == "expense" and right.role == "erp":
            vouchers, pair = voucher_findings(
                _of(claims, "claim_id", oa.system),
                _of(docs, "doc_id", left.system),
                _of(docs, "doc_id", right.system),
                params,
                names=(oa.name, left.name, right.name),
            )
            found.append(vouchers)
            stats.append(pair)

    non_empty = [f for f in found if not f.empty]
    exceptions = pd.concat(non_empty, ignore_index=True) if non_empty else pd.DataFrame(columns=CHAIN_COLUMNS)
    exceptions = exceptions[CHAIN_COLUMNS].sort_values(
        ["exception_type", "claim_no", "doc_no", "invoice_no", "budget_code"], na_position="first"
    )
    result.exceptions = exceptions.reset_index(drop=True)
    result.stats = {**result.stats, "exceptions": int(len(exceptions)), "pairs": stats}
    return result


def _named(frame: pd.DataFrame, left: str, right: str) -> pd.DataFrame:
    out = frame.copy()
    out["left_system"] = left
    out["right_system"] = right
    return out


def _first_pair_stats(
    found: pd.DataFrame, result: ReconcileResult, claims: pd.DataFrame, left: str, right: str
) -> dict[str, Any]:
    types = found["exception_type"]
    amounts = pd.to_numeric(found["amount_fen"], errors="coerce").fillna(0)
    unmatched, differing = types.isin(_UNMATCHED), types.isin(_DIFFERING)
    return {
        "left_system": left,
        "right_system": right,
        "matched": int(result.stats.get("approved_matched", 0)),
        # the approved claims of the period the engine linked to a document of the right system
        "matched_fen": int(
            pd.to_numeric(
                claims.loc[
                    (claims["claim_id"].isin(result.matches["claim_id"]) & (claims["status"] == "approved"))
                    .fillna(False)
                    .to_numpy(),
                    "amount_fen",
                ],
                errors="coerce",
            )
            .fillna(0)
            .sum()
        ),
        "unmatched": int(unmatched.sum()),
        "unmatched_fen": int(amounts[unmatched].sum()),
        "differing": int(differing.sum()),
        "differing_fen": int(amounts[differing].abs().sum()),
    }


def _approved_claim_nos(claims: pd.DataFrame) -> set[str]:
    approved = claims.loc[(claims["status"] == "approved").fillna(False).to_numpy(), "claim_no"]
    return {norm_key(v) for v in approved.dropna()}


def _nos(value: Any) -> list[str]:
    """A comma-separated list of document or claim numbers, each normalised; missing → []."""
    text = norm_key(value)
    return [v for v in text.split(",") if v]


def voucher_findings(
    claims: pd.DataFrame,
    platform_docs: pd.DataFrame,
    erp_docs: pd.DataFrame,
    params: ReconcileParams,
    *,
    names: tuple[str, str, str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The (expense platform, ERP) pair's exceptions and its pair statistics.

    ``names``: the source names of the OA, the expense platform and the ERP.
    """
    oa_name, left_name, right_name = names
    period, as_of = params.period, pd.Timestamp(params.as_of)
    tol = params.amount_tolerance_fen
    live = ~platform_docs["status"].isin(("reversed", "rejected"))
    bills = platform_docs.loc[live & (platform_docs["doc_type"] == "reimbursement")]
    bill_claims = {
        norm_key(no): _nos(ref) for no, ref in zip(bills["doc_no"], bills["claim_no_ref"], strict=True)
    }
    approved = _approved_claim_nos(claims)
    paid_at = pd.to_datetime(platform_docs["paid_at"], utc=True)
    in_period = (paid_at >= period.start) & (paid_at < period.end) & (paid_at <= as_of)
    payments = platform_docs.loc[
        (
            live & (platform_docs["doc_type"] == "payment") & (platform_docs["status"] == "paid") & in_period
        ).to_numpy()
    ]
    erp_live = ~erp_docs["status"].isin(("reversed", "rejected"))
    posted = pd.to_datetime(erp_docs["posted_at"], utc=True)
    vouchers = erp_docs.loc[
        (erp_live & (erp_docs["doc_type"] == VOUCHER_TYPE) & ~(posted > as_of)).to_numpy()
    ]
    voucher_nos = {norm_key(v) for v in vouchers["doc_no"].dropna()}
    booking: dict[str, list[Mapping[Hashable, Any]]] = {}
    for v in vouchers.to_dict("records"):
        for no in _nos(v.get("source_doc_nos")):
            booking.setdefault(no, []).append(v)

    rows: list[dict[str, Any]] = []

    def add(
        kind: str, doc_no: str, left: str, right: str, pay: Mapping[Hashable, Any], amount: Any, detail: str
    ) -> None:
        rows.append(
            {
                "exception_type": kind,
                "company_code": pay.get("company_code"),
                "claim_no": None,
                "doc_no": doc_no,
                "invoice_no": None,
                "budget_code": None,
                "person_id": pay.get("payee_id"),
                "amount_fen": amount,
                "detail": detail,
                "left_system": left,
                "right_system": right,
            }
        )

    matched = matched_fen = unmatched = unmatched_fen = differing = differing_fen = 0
    for pay in payments.sort_values("doc_no").to_dict("records"):
        no = norm_key(pay["doc_no"])
        amount = int(pay["amount_fen"])
        booked = booking.get(no, [])
        written = norm_key(pay.get("voucher_no"))
        if written and written not in voucher_nos:
            add(
                "VOUCHER_NOT_IN_ERP", pay["doc_no"], left_name, right_name, pay, amount,
                f"voucher no. '{written}' written back, not found in the ERP",
            )  # fmt: skip
        if not booked:
            refs = _nos(pay.get("claim_no_ref")) + [
                c for b in _nos(pay.get("source_doc_nos")) for c in bill_claims.get(b, [])
            ]
            if not written and any(r in approved for r in refs):
                add(
                    "VOUCHER_MISSING",
                    pay["doc_no"],
                    oa_name,
                    right_name,
                    pay,
                    amount,
                    "paid, approved in OA, no voucher in the ERP",
                )
            unmatched += 1
            unmatched_fen += amount
            continue
        total = sum(int(v["amount_fen"]) for v in booked)
        first = booked[0]
        if abs(total - amount) > tol:
            add(
                "VOUCHER_AMOUNT_MISMATCH", first["doc_no"], left_name, right_name, pay, total - amount,
                f"voucher {total} fen, paid {amount} fen by {pay['doc_no']}",
            )  # fmt: skip
            differing += 1
            differing_fen += abs(total - amount)
        else:
            matched += 1
            matched_fen += amount
        pay_period = pay.get("period")
        for voucher in booked:
            closed = str(voucher.get("period") or "") < period.name
            if voucher.get("period") != pay_period or closed:
                why = "a closed period" if closed else f"not the payment's period {pay_period}"
                add(
                    "VOUCHER_PERIOD", voucher["doc_no"], left_name, right_name, pay, int(voucher["amount_fen"]),
                    f"voucher in period {voucher.get('period')}: {why} (payment {pay['doc_no']})",
                )  # fmt: skip
    frame = pd.DataFrame(rows, columns=CHAIN_COLUMNS)
    stats = {
        "left_system": left_name,
        "right_system": right_name,
        "matched": matched,
        "matched_fen": matched_fen,
        "unmatched": unmatched,
        "unmatched_fen": unmatched_fen,
        "differing": differing,
        "differing_fen": differing_fen,
    }
    return frame, stats
