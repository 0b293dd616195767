"""What a period's run looks at, and the frames reduced to what matching needs.

Below ``findings`` and ``reconcile``, which both use it (so neither imports the other back):
the run's parameters and references, which claims and documents are in scope, and
``_Prepared``, the frames by position with keys and people as integer codes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from oafin.engine.codes import compact, factorize_text, text_codes
from oafin.engine.keys import norm_keys, split_keys
from oafin.periods import Period

DEAD_DOC_STATUSES = ("reversed", "rejected")
T = TypeVar("T")


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
    if isinstance(ts.dtype, pd.DatetimeTZDtype):  # the engine's input: no conversion of the values
        return ts.array.as_unit("ns").asi8
    naive = pd.to_datetime(ts, utc=True).dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _fen(values: pd.Series) -> np.ndarray:
    """Amounts in fen as int64, missing or unreadable → 0 (integers are never converted)."""
    if values.dtype == np.int64:
        return values.to_numpy()
    if isinstance(values.dtype, pd.Int64Dtype):
        return values.to_numpy(dtype=np.int64, na_value=0)
    return pd.to_numeric(values, errors="coerce").fillna(0).astype(np.int64).to_numpy()


class _Prepared:
    """The frames reduced to what matching needs, by position; keys and people as int codes."""

    def __init__(
        self,
        claims: pd.DataFrame,
        docs: pd.DataFrame,
        quarantined: pd.DataFrame,
        d_date: pd.Series | None = None,
        pool: Executor | None = None,
        *,
        seen: np.ndarray | None = None,
    ) -> None:
        """``seen`` (by document position, default all): the documents the run may look at; the
        others are as if absent (no key, no kind, not live, not in scope)."""
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
        self.d_t = _ns(doc_dates(d) if d_date is None else d_date)  # NaT: int64 min
        self.d_seen = np.ones(n_d, dtype=bool) if seen is None else np.asarray(seen, dtype=bool)
        if seen is not None:
            for name in ("d_is_bill", "d_is_pay", "d_paid", "d_settled", "d_reversed", "d_live"):
                setattr(self, name, getattr(self, name) & self.d_seen)

        # Business keys of both sides (and of quarantine) as integer codes, and people: three
        # independent code spaces, coded side by side (the coding releases the GIL).
        q_claims = quarantined.loc[quarantined["entity"] == "expense_claim"]
        q_docs = quarantined.loc[quarantined["entity"] == "finance_doc"]
        bill_pos = np.flatnonzero(self.d_is_bill)
        # OA numbers: claims, the documents' references, and quarantine's
        refs = _submit(pool, norm_keys, d["claim_no_ref"])
        doc_space = _submit(pool, _doc_codes, d, bill_pos, q_docs)
        people_space = _submit(pool, _norm_codes, [c["applicant_id"], d["payee_id"]])
        claim_nos = norm_keys(c["claim_no"])
        oa = [
            claim_nos,
            refs.result(),
            norm_keys(q_claims["business_key"]),
            norm_keys(q_docs["claim_no_ref"]),
        ]
        self.c_key, self.d_ref, self.q_claim_keys, self.q_doc_refs = _split(compact(text_codes(oa)), oa)
        src, bill_key, src_key, self.q_doc_keys = doc_space.result()
        if seen is not None:  # an unseen document names nothing
            self.d_ref = np.where(self.d_seen, self.d_ref, -1)
            shown = self.d_seen[src["pos"].to_numpy()]
            src, src_key = src.loc[shown].reset_index(drop=True), src_key[shown]
        self.n_keys = max(
            _size(self.c_key, self.d_ref, self.q_claim_keys, self.q_doc_refs),
            _size(bill_key, src_key, self.q_doc_keys),
        )
        self.src = src.assign(code=src_key)
        self.d_key = np.full(n_d, -1, dtype=np.int32)
        self.d_key[bill_pos] = bill_key

        # People of both sides as one code space.
        people, raw = people_space.result()
        people = compact(people)
        self.c_person, self.d_person = people[:n_c], people[n_c : n_c + n_d]
        # the applicants' raw text as codes and distinct values (the controls compare it)
        self.applicants: tuple[np.ndarray, pd.Series] = (compact(raw[0][0]), raw[0][1])

    def key_set(self, codes: np.ndarray) -> np.ndarray:
        """A membership mask over the key space."""
        mask = np.zeros(self.n_keys + 1, dtype=bool)
        mask[codes[codes >= 0]] = True
        return mask

    def has(self, codes: np.ndarray, members: np.ndarray) -> np.ndarray:
        """``codes`` (one per row) found in ``members`` (a ``key_set``); -1 never is."""
        return np.where(codes >= 0, members[np.maximum(codes, 0)], False)


class _Done(Generic[T]):
    """A result computed on the spot, for runs without a pool."""

    def __init__(self, value: T) -> None:
        self.value = value

    def result(self) -> T:
        return self.value


def _submit(pool: Executor | None, fn: Callable[..., T], *args: Any) -> Future[T] | _Done[T]:
    return pool.submit(fn, *args) if pool is not None else _Done(fn(*args))


def _doc_codes(
    d: pd.DataFrame, bill_pos: np.ndarray, q_docs: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Document numbers as codes: bills', the payments' source lists', quarantine's.

    A document's own number is only looked up for bills (payments name their bills). Returns the
    exploded source lists (``pos``, ``key``) and the codes of the three parts.
    """
    src = split_keys(d["source_doc_nos"])
    doc = [norm_keys(d["doc_no"].iloc[bill_pos]), src["key"], norm_keys(q_docs["business_key"])]
    bill_key, src_key, q_doc_keys = _split(compact(text_codes(doc)), doc)
    return src, bill_key, src_key, q_doc_keys


def _split(codes: np.ndarray, parts: list[pd.Series]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *(len(x) for x in parts)])
    return [codes[bounds[i] : bounds[i + 1]] for i in range(len(parts))]


def _size(*codes: np.ndarray) -> int:
    """How many codes a space has (one more than the largest in any of its parts)."""
    return max((int(x.max()) + 1 for x in codes if len(x)), default=0)


def _norm_codes(parts: list[pd.Series]) -> tuple[np.ndarray, list[tuple[np.ndarray, pd.Series]]]:
    """``text_codes`` of the normalised ``parts``, normalising each distinct raw value once.

    For low-cardinality columns (people): factorize the raw text, normalise the few uniques,
    and code the normalised uniques in one space. Missing and ``""`` → -1.
    """
    raw = [factorize_text(p) for p in parts]
    shared = text_codes([norm_keys(u) for _, u in raw])
    bounds = np.cumsum([0, *(len(u) for _, u in raw)])
    out = []
    for i, (codes, _) in enumerate(raw):
        table = np.append(shared[bounds[i] : bounds[i + 1]], -1)  # raw -1 (missing) → -1
        out.append(table[codes])
    return (np.concatenate(out) if out else np.array([], dtype=np.int64)), raw
