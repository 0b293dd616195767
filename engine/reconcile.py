"""Reconciliation: OA claims against finance documents. Pure pandas in, pandas out.

Chain (DESIGN, "Reconciliation"): claim → reimbursement bill (``claim_no_ref``) → payments
(``source_doc_nos``), or claim → payment directly (``claim_no_ref`` on the payment).

Pass 1, key matching, is implemented here; rule and group passes plug in after it on what it
leaves unmatched. Exceptions follow "one discrepancy, one exception": a claim with a status
mismatch is not also an amount mismatch; a payment of a bill that is itself missing in OA is not
a second ``MISSING_IN_OA``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from engine.keys import norm_keys, split_list
from engine.period import Period

EXCEPTION_FRAME_COLUMNS = [
    "exception_type",
    "company_code",
    "claim_no",
    "doc_no",
    "invoice_no",
    "budget_code",
    "person_id",
    "amount_fen",
    "detail",
]
MATCH_COLUMNS = ["claim_id", "doc_id", "match_pass", "rule"]
DEAD_DOC_STATUSES = ("reversed", "rejected")
NOT_APPROVED = ("rejected", "withdrawn", "draft", "pending")


@dataclass(frozen=True)
class ReconcileParams:
    period: Period
    as_of: datetime
    amount_tolerance_fen: int = 1
    payment_sla_days: int = 5
    date_window_days: int = 15


@dataclass
class ReconcileResult:
    exceptions: pd.DataFrame
    matches: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def _in(period: Period, ts: pd.Series) -> pd.Series:
    return ts.notna() & (ts >= period.start) & (ts < period.end)


def _exceptions(kind: str, frame: pd.DataFrame, **columns: Any) -> pd.DataFrame:
    """Build exception rows of one type from ``frame``; keyword values are column names or Series."""
    out = pd.DataFrame(index=frame.index)
    out["exception_type"] = kind
    for name in EXCEPTION_FRAME_COLUMNS[1:]:
        value = columns.get(name)
        if isinstance(value, str) and value in frame.columns:
            out[name] = frame[value]
        elif value is not None:
            out[name] = value
        else:
            out[name] = None
    return out[EXCEPTION_FRAME_COLUMNS]


def claims_in_scope(claims: pd.DataFrame, period: Period) -> pd.Series:
    """Approved in the period or, if never approved, submitted in it."""
    approved = claims["approved_at"]
    return _in(period, approved) | (approved.isna() & _in(period, claims["submitted_at"]))


def docs_in_scope(docs: pd.DataFrame, period: Period) -> pd.Series:
    """Dated in the period: a payment by when it was paid, anything else by when it was posted."""
    dated = docs["paid_at"].where(docs["doc_type"] == "payment", docs["posted_at"])
    dated = dated.fillna(docs["posted_at"])
    return _in(period, dated)


def link_documents(claims: pd.DataFrame, docs: pd.DataFrame) -> pd.DataFrame:
    """Pass 1: every (claim key, document) link found by keys.

    Bills and payments carrying the claim's number link directly; payments also link through the
    bills they settle (``source_doc_nos``).
    """
    claim_keys = set(claims["key"])
    direct = docs.loc[docs["ref_key"].isin(claim_keys), ["doc_id", "ref_key"]].rename(
        columns={"ref_key": "claim_key"}
    )
    direct["rule"] = "claim_no_ref"

    bills = docs.loc[docs["doc_type"] == "reimbursement"]
    bill_claim = (
        bills.loc[bills["ref_key"].isin(claim_keys)]
        .drop_duplicates("doc_key")
        .set_index("doc_key")["ref_key"]
    )
    payments = docs.loc[docs["doc_type"] == "payment", ["doc_id", "source_keys"]].explode("source_keys")
    via = payments.assign(claim_key=payments["source_keys"].map(bill_claim)).dropna(subset=["claim_key"])
    via = via[["doc_id", "claim_key"]].assign(rule="source_doc_nos")

    links = pd.concat([direct, via], ignore_index=True).drop_duplicates(["doc_id", "claim_key"])
    return links


def reconcile(
    claims: pd.DataFrame,
    docs: pd.DataFrame,
    params: ReconcileParams,
    quarantined: pd.DataFrame | None = None,
) -> ReconcileResult:
    """Reconcile every extracted claim and document for ``params.period``.

    ``claims`` and ``docs`` are the valid standard rows of everything extracted (the period and
    its lookback); ``quarantined`` holds the quarantine rows (``entity``, ``business_key``,
    ``claim_no_ref``, ``scope_at``, ``exception_type``, ``person_id``, ``amount_fen``,
    ``company_code``, ``reasons``), whose keys still count as existing when looking for
    counterparts, so one bad record does not also raise a "missing" on its partner.
    """
    period, tol = params.period, params.amount_tolerance_fen
    quarantined = quarantined if quarantined is not None else pd.DataFrame(columns=_QUARANTINE_COLUMNS)
    claims = claims.assign(key=norm_keys(claims["claim_no"]))
    docs = docs.assign(
        ref_key=norm_keys(docs["claim_no_ref"]),
        doc_key=norm_keys(docs["doc_no"]),
        source_keys=split_list(docs["source_doc_nos"]),
    )
    q_claims = quarantined.loc[quarantined["entity"] == "expense_claim"]
    q_docs = quarantined.loc[quarantined["entity"] == "finance_doc"]
    q_claim_keys = set(norm_keys(q_claims["business_key"]))
    q_doc_keys = set(norm_keys(q_docs["business_key"]))
    q_doc_refs = set(norm_keys(q_docs["claim_no_ref"]))

    links = link_documents(claims, docs)
    live_docs = docs.loc[~docs["status"].isin(DEAD_DOC_STATUSES)]
    live = links.merge(live_docs[["doc_id", "doc_type", "amount_fen", "status"]], on="doc_id")
    bills = live.loc[live["doc_type"] == "reimbursement"]
    paid = live.loc[(live["doc_type"] == "payment") & (live["status"] == "paid")]
    direct_paid = paid.loc[paid["rule"] == "claim_no_ref"]

    per_claim = pd.DataFrame(index=pd.Index(claims["key"].unique(), name="key"))
    per_claim["n_live"] = live.groupby("claim_key").size()
    per_claim["bill_fen"] = bills.drop_duplicates("doc_id").groupby("claim_key")["amount_fen"].sum()
    per_claim["n_bills"] = bills.groupby("claim_key")["doc_id"].nunique()
    per_claim["direct_fen"] = direct_paid.drop_duplicates("doc_id").groupby("claim_key")["amount_fen"].sum()
    per_claim["n_settled"] = live.loc[live["status"].isin(("audited", "paid"))].groupby("claim_key").size()
    per_claim = per_claim.fillna(0).astype("int64")

    scoped = claims.loc[claims_in_scope(claims, period)].join(per_claim, on="key")
    approved = scoped.loc[scoped["status"] == "approved"]
    found: list[pd.DataFrame] = []

    status_mm = scoped.loc[scoped["status"].isin(NOT_APPROVED) & (scoped["n_settled"] > 0)]
    found.append(
        _exceptions(
            "STATUS_MISMATCH",
            status_mm,
            company_code="company_code",
            claim_no="claim_no",
            person_id="applicant_id",
            amount_fen="amount_fen",
            detail="OA status " + status_mm["status"] + " but settled in finance",
        )
    )

    due = params.as_of - timedelta(days=params.payment_sla_days)
    missing_fin = approved.loc[
        (approved["n_live"] == 0) & (approved["approved_at"] <= due) & ~approved["key"].isin(q_doc_refs)
    ]
    found.append(
        _exceptions(
            "MISSING_IN_FINANCE",
            missing_fin,
            company_code="company_code",
            claim_no="claim_no",
            person_id="applicant_id",
            amount_fen="amount_fen",
            detail="approved " + missing_fin["approved_at"].dt.strftime("%Y-%m-%d") + ", no finance document",
        )
    )

    fin_fen = approved["bill_fen"].where(approved["n_bills"] > 0, approved["direct_fen"])
    has_amount = (approved["n_bills"] > 0) | (approved["direct_fen"] > 0)
    diff = fin_fen - approved["amount_fen"]
    amount_mm = approved.loc[has_amount & (diff.abs() > tol)]
    found.append(
        _exceptions(
            "AMOUNT_MISMATCH",
            amount_mm,
            company_code="company_code",
            claim_no="claim_no",
            person_id="applicant_id",
            amount_fen=diff.loc[amount_mm.index],
            detail="OA "
            + amount_mm["amount_fen"].astype(str)
            + " fen, finance "
            + fin_fen.loc[amount_mm.index].astype(str)
            + " fen",
        )
    )

    found.append(_missing_in_oa(docs, links, period, q_claim_keys, q_doc_keys))
    found.append(_quarantine_exceptions(quarantined, period))

    non_empty = [f for f in found if not f.empty]
    exceptions = (
        pd.concat(non_empty, ignore_index=True)
        if non_empty
        else pd.DataFrame(columns=EXCEPTION_FRAME_COLUMNS)
    )
    exceptions = exceptions.sort_values(
        ["exception_type", "claim_no", "doc_no"], na_position="first"
    ).reset_index(drop=True)
    matches = links.merge(docs[["doc_id"]], on="doc_id").merge(
        claims[["claim_id", "key"]], left_on="claim_key", right_on="key"
    )
    matches = (
        matches.assign(match_pass="key")[MATCH_COLUMNS]
        .sort_values(["claim_id", "doc_id"])
        .reset_index(drop=True)
    )
    matched = int((approved["n_live"] > 0).sum())
    stats = {
        "claims_in_scope": int(len(scoped)),
        "approved_in_scope": int(len(approved)),
        "approved_matched": matched,
        "auto_match_rate": round(matched / len(approved), 4) if len(approved) else None,
        "docs_in_scope": int(docs_in_scope(docs, period).sum()),
        "exceptions": int(len(exceptions)),
    }
    return ReconcileResult(exceptions=exceptions, matches=matches, stats=stats)


def _missing_in_oa(
    docs: pd.DataFrame, links: pd.DataFrame, period: Period, q_claim_keys: set[str], q_doc_keys: set[str]
) -> pd.DataFrame:
    """In-period documents with no OA claim behind them, counted once per chain."""
    scoped = docs.loc[docs_in_scope(docs, period) & ~docs["status"].isin(("reversed",))]
    linked = set(links["doc_id"])
    known_bills = set(docs.loc[docs["doc_type"] == "reimbursement", "doc_key"]) | q_doc_keys
    orphan = scoped.loc[~scoped["doc_id"].isin(linked) & ~scoped["ref_key"].isin(q_claim_keys)]
    # A payment that settles a known bill is part of that bill's chain: the bill carries the finding.
    settles_known = orphan["source_keys"].map(lambda keys: any(k in known_bills for k in keys))
    orphan = orphan.loc[~((orphan["doc_type"] == "payment") & settles_known)]
    return _exceptions(
        "MISSING_IN_OA",
        orphan,
        company_code="company_code",
        doc_no="doc_no",
        person_id="payee_id",
        amount_fen="amount_fen",
        detail=orphan["doc_type"]
        + " with OA number '"
        + orphan["claim_no_ref"].fillna("")
        + "' not found in OA",
    )


_QUARANTINE_COLUMNS = [
    "entity",
    "business_key",
    "claim_no_ref",
    "scope_at",
    "exception_type",
    "person_id",
    "amount_fen",
    "company_code",
    "reasons",
]


def _quarantine_exceptions(quarantined: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Quarantined records of the period (or of no readable date) as UNMAPPED_CODE / CONTRACT_VIOLATION."""
    q = quarantined.loc[quarantined["scope_at"].isna() | _in(period, quarantined["scope_at"])]
    is_claim = q["entity"] == "expense_claim"
    out = _exceptions(
        "",
        q,
        company_code="company_code",
        claim_no=q["business_key"].where(is_claim),
        doc_no=q["business_key"].where(~is_claim),
        person_id="person_id",
        amount_fen="amount_fen",
        detail="reasons",
    )
    out["exception_type"] = q["exception_type"]
    return out
