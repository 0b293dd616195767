"""What a period's run looks at, and the frames reduced to what matching needs.

Below ``findings`` and ``reconcile``, which both use it (so neither imports the other back):
the run's parameters and references, which claims and documents are in scope, and
``_Prepared``, the frames by position with keys and people as integer codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from oafin.engine.keys import norm_keys, split_keys
from oafin.periods import Period

DEAD_DOC_STATUSES = ("reversed", "rejected")


@dataclass(frozen=True)
class ReconcileParams:
    period: Period
    as_of: datetime
    amount_tolerance_fen: int = 1
    payment_sla_days: int = 5
    date_window_days: int = 15
    max_group_size: int = 3
    max_group_candidates: int = 20


@dataclass(frozen=True)
class References:
    """What the controls check claims against (code tables; all optional).

    ``people``: ``person_id``, ``role``. ``approval_matrix``: role *or* person_id → the highest
    amount (fen) they may approve; a person's own entry wins over their role's. ``budgets``:
    ``budget_code``, ``period``, ``amount_fen``.
    """

    people: pd.DataFrame | None = None
    approval_matrix: dict[str, int] | None = None
    budgets: pd.DataFrame | None = None


def _in(period: Period, ts: pd.Series) -> pd.Series:
    return ts.notna() & (ts >= period.start) & (ts < period.end)


def claims_in_scope(claims: pd.DataFrame, period: Period) -> pd.Series:
    """Approved in the period or, if never approved, submitted in it."""
    approved = claims["approved_at"]
    return _in(period, approved) | (approved.isna() & _in(period, claims["submitted_at"]))


def doc_dates(docs: pd.DataFrame) -> pd.Series:
    """A payment is dated when it was paid, anything else when it was posted."""
    dated = docs["paid_at"].where(docs["doc_type"] == "payment", docs["posted_at"])
    return dated.fillna(docs["posted_at"])


def docs_in_scope(docs: pd.DataFrame, period: Period) -> pd.Series:
    return _in(period, doc_dates(docs))


def _ns(ts: pd.Series) -> np.ndarray:
    """Aware timestamps as int64 ns since the epoch; NaT → int64 min."""
    naive = pd.to_datetime(ts, utc=True).dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _fen(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").fillna(0).astype(np.int64).to_numpy()


class _Prepared:
    """The frames reduced to what matching needs, by position; keys and people as int codes."""

    def __init__(
        self,
        claims: pd.DataFrame,
        docs: pd.DataFrame,
        quarantined: pd.DataFrame,
        d_date: pd.Series | None = None,
    ) -> None:
        self.claims = claims.reset_index(drop=True)
        self.docs = docs.reset_index(drop=True)
        c, d = self.claims, self.docs
        n_c, n_d = len(c), len(d)
        self.c_amount = _fen(c["amount_fen"])
        self.c_approved = (c["status"] == "approved").fillna(False).to_numpy(dtype=bool)
        self.c_t = _ns(c["approved_at"])
        self.d_amount = _fen(d["amount_fen"])
        self.d_is_bill = (d["doc_type"] == "reimbursement").fillna(False).to_numpy(dtype=bool)
        self.d_is_pay = (d["doc_type"] == "payment").fillna(False).to_numpy(dtype=bool)
        self.d_paid = self.d_is_pay & (d["status"] == "paid").fillna(False).to_numpy(dtype=bool)
        self.d_settled = d["status"].isin(("audited", "paid")).to_numpy(dtype=bool)
        self.d_reversed = (d["status"] == "reversed").fillna(False).to_numpy(dtype=bool)
        self.d_live = ~d["status"].isin(DEAD_DOC_STATUSES).to_numpy(dtype=bool)
        self.d_date = doc_dates(d) if d_date is None else d_date.reset_index(drop=True)
        self.d_t = _ns(self.d_date)

        # Business keys of both sides (and of quarantine) as integer codes.
        q_claims = quarantined.loc[quarantined["entity"] == "expense_claim"]
        q_docs = quarantined.loc[quarantined["entity"] == "finance_doc"]
        self.src = split_keys(d["source_doc_nos"])
        bill_pos = np.flatnonzero(self.d_is_bill)
        # Two code spaces (-1 is "no key"): OA numbers (claims, the documents' references, and
        # quarantine's), and document numbers (bills, the payments' source lists, quarantine's).
        oa = [
            norm_keys(c["claim_no"]),
            norm_keys(d["claim_no_ref"]),
            norm_keys(q_claims["business_key"]),
            norm_keys(q_docs["claim_no_ref"]),
        ]
        # a document's own number is only looked up for bills (payments name their bills)
        doc = [
            norm_keys(d["doc_no"].iloc[bill_pos]),
            pd.Series(self.src["key"].to_numpy(), dtype="str"),
            norm_keys(q_docs["business_key"]),
        ]
        self.c_key, self.d_ref, self.q_claim_keys, self.q_doc_refs = _split(_codes(oa), oa)
        bill_key, src_key, self.q_doc_keys = _split(_codes(doc), doc)
        self.n_keys = max(
            _size(self.c_key, self.d_ref, self.q_claim_keys, self.q_doc_refs),
            _size(bill_key, src_key, self.q_doc_keys),
        )
        self.src = self.src.assign(code=src_key)
        self.d_key = np.full(n_d, -1, dtype=np.int64)
        self.d_key[bill_pos] = bill_key

        # People of both sides as one code space.
        people = _norm_codes([c["applicant_id"], d["payee_id"]])
        self.c_person, self.d_person = people[:n_c], people[n_c : n_c + n_d]

    def key_set(self, codes: np.ndarray) -> np.ndarray:
        """A membership mask over the key space."""
        mask = np.zeros(self.n_keys + 1, dtype=bool)
        mask[codes[codes >= 0]] = True
        return mask

    def has(self, codes: np.ndarray, members: np.ndarray) -> np.ndarray:
        """``codes`` (one per row) found in ``members`` (a ``key_set``); -1 never is."""
        return np.where(codes >= 0, members[np.maximum(codes, 0)], False)


def _codes(parts: list[pd.Series]) -> np.ndarray:
    """One integer code per value across ``parts`` (equal text, equal code); ``""`` → -1."""
    joined = pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True)
    if joined.empty:
        return np.array([], dtype=np.int64)
    codes, uniques = pd.factorize(joined)
    codes = codes.astype(np.int64)
    empty = np.flatnonzero(np.asarray(uniques == "", dtype=bool))
    if len(empty):
        codes[codes == empty[0]] = -1
    return codes


def _split(codes: np.ndarray, parts: list[pd.Series]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *(len(x) for x in parts)])
    return [codes[bounds[i] : bounds[i + 1]] for i in range(len(parts))]


def _size(*codes: np.ndarray) -> int:
    """How many codes a space has (one more than the largest in any of its parts)."""
    return max((int(x.max()) + 1 for x in codes if len(x)), default=0)


def _norm_codes(parts: list[pd.Series]) -> np.ndarray:
    """``_codes`` of the normalised ``parts``, normalising each distinct raw value once.

    For low-cardinality columns (people): factorize the raw text, normalise the few uniques,
    and code the normalised uniques in one space. Missing and ``""`` → -1.
    """
    raw = [pd.factorize(p.reset_index(drop=True)) for p in parts]
    uniq = [pd.Series(u) for _, u in raw]
    shared = _codes([norm_keys(u) for u in uniq])
    bounds = np.cumsum([0, *(len(u) for u in uniq)])
    out = []
    for i, (codes, _) in enumerate(raw):
        table = np.append(shared[bounds[i] : bounds[i + 1]], -1)  # raw -1 (missing) → -1
        out.append(table[codes])
    return np.concatenate(out) if out else np.array([], dtype=np.int64)
