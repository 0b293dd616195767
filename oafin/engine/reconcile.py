"""Reconciliation: OA claims against finance documents, and the controls on claims. Pure pandas.

Chain (DESIGN, "Reconciliation"): claim → reimbursement bill (``claim_no_ref``) → payments
(``source_doc_nos``), or claim → payment directly. ``oafin.engine.matching`` links documents to
claims in passes (key, rule, group); ``oafin.engine.findings`` turns the links and the claims into
the 14 exception types, one discrepancy → one exception (the most specific wins; independent
findings on one claim stay separate).

Vectorised throughout: positions and integer codes, merges, group-bys; the only Python loops
run over the few keys that are not plain ASCII and over the rule/group passes' tiny residue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from oafin.engine import findings as F
from oafin.engine.keys import norm_keys, split_keys
from oafin.engine.matching import DAY_NS, LINK_COLUMNS, MatchParams, Residual, group_pass, rule_pass
from oafin.periods import Period

EXCEPTION_FRAME_COLUMNS = F.EXCEPTION_FRAME_COLUMNS
MATCH_COLUMNS = ["claim_id", "doc_id", "match_pass", "rule"]
# links carry the pass and the rule as codes into these
PASSES = ("key", "rule", "group")
RULES = ("claim_no_ref", "person_amount_date", "split", "source_doc_nos", "batch")
DEAD_DOC_STATUSES = ("reversed", "rejected")
NOT_APPROVED = ("rejected", "withdrawn", "draft", "pending")
QUARANTINE_COLUMNS = [
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


@dataclass
class ReconcileResult:
    exceptions: pd.DataFrame
    matches: pd.DataFrame  # MATCH_COLUMNS, for the claims in scope
    stats: dict[str, Any] = field(default_factory=dict)
    ambiguous: pd.DataFrame | None = None  # claim_id, doc_id, match_pass: ties left unmatched


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


def _pick(column: pd.Series, pos: np.ndarray) -> Any:
    """``column`` at ``pos`` for a new frame; Arrow text stays Arrow (no round trip via objects)."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan:
        return column.iloc[pos].array
    return column.iloc[pos].to_numpy()


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> Any:
    """Codes into ``labels`` as a text column, built by taking from the few labels."""
    if len(codes) == 0:
        return np.array([], dtype=object)
    return pd.array(np.array(labels, dtype=object), dtype="str").take(codes)


def _first_position(targets: np.ndarray, eligible: np.ndarray, n_keys: int) -> np.ndarray:
    """key code → the first position in ``targets`` holding it (among ``eligible``), -1 if none."""
    first = np.full(n_keys + 1, -1, dtype=np.int64)
    pos = np.flatnonzero(eligible & (targets >= 0))
    first[targets[pos][::-1]] = pos[::-1]  # later writes win: reversed, so the first position wins
    return first


def _lookup(keys: np.ndarray, first: np.ndarray) -> np.ndarray:
    return np.where(keys >= 0, first[np.maximum(keys, 0)], -1)


def reconcile(
    claims: pd.DataFrame,
    docs: pd.DataFrame,
    params: ReconcileParams,
    quarantined: pd.DataFrame | None = None,
    *,
    invoices: pd.DataFrame | None = None,
    invalid_invoices: pd.DataFrame | None = None,
    references: References | None = None,
) -> ReconcileResult:
    """Reconcile every extracted claim and document for ``params.period``.

    ``claims`` and ``docs`` are the valid standard rows of everything extracted (the period and
    its lookback); ``quarantined`` holds the quarantine rows (``QUARANTINE_COLUMNS``), whose keys
    still count as existing when looking for counterparts, so one bad record does not also raise a
    "missing" on its partner. ``invoices`` is the ``claim_invoice`` frame of those claims;
    ``invalid_invoices`` (``claim_id``, ``invoice_key``, ``reasons``) is what
    ``data_contracts.validate.check_invoices`` reports for them (computed here when omitted).
    Documents dated after ``as_of`` are not looked at: the run sees the world as of ``as_of``.
    """
    period = params.period
    refs = references or References()
    quarantined = quarantined if quarantined is not None else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    as_of = pd.Timestamp(params.as_of)
    dates = doc_dates(docs)
    seen = ~(dates > as_of).to_numpy(dtype=bool)
    if not seen.all():
        docs, dates = docs.loc[seen], dates.loc[seen]
    P = _Prepared(claims, docs, quarantined, dates)
    claims, docs = P.claims, P.docs

    mp = MatchParams(
        params.amount_tolerance_fen,
        params.date_window_days,
        params.max_group_size,
        params.max_group_candidates,
    )
    links, ambiguous, chained = _match(P, mp)

    scope = claims_in_scope(claims, period).to_numpy() & ~(claims["approved_at"] > as_of).to_numpy()
    agg = F.aggregate(P, links, DEAD_DOC_STATUSES)
    ctx = F.Context(
        P=P,
        params=params,
        scope=scope,
        agg=agg,
        due=pd.Timestamp(params.as_of - timedelta(days=params.payment_sla_days)),
        ambiguous=ambiguous,
    )
    found = [
        F.status_mismatch(ctx, NOT_APPROVED),
        F.missing_in_finance(ctx),
        F.payment_findings(ctx),
        F.approval_findings(ctx, refs),
        F.budget_overrun(ctx, refs),
        F.invoice_findings(ctx, invoices, invalid_invoices),
        F.missing_in_oa(ctx, links, chained),
        F.quarantine_exceptions(quarantined, period),
    ]
    non_empty = [f for f in found if not f.empty]
    exceptions = (
        pd.concat(non_empty, ignore_index=True)
        if non_empty
        else pd.DataFrame(columns=EXCEPTION_FRAME_COLUMNS)
    )
    exceptions = exceptions.sort_values(
        ["exception_type", "claim_no", "doc_no", "invoice_no", "budget_code"], na_position="first"
    ).reset_index(drop=True)

    # links are unique per (c, d); order by claim then document position (ids are stable per input)
    sel = scope[links["c"].to_numpy()]
    c_pos, d_pos = links["c"].to_numpy()[sel], links["d"].to_numpy()[sel]
    order = np.lexsort((d_pos, c_pos))
    matches = pd.DataFrame(
        {
            "claim_id": _pick(claims["claim_id"], c_pos[order]),
            "doc_id": _pick(docs["doc_id"], d_pos[order]),
            "match_pass": _labels(links["match_pass"].to_numpy()[sel][order], PASSES),
            "rule": _labels(links["rule"].to_numpy()[sel][order], RULES),
        }
    )

    approved = scope & P.c_approved
    matched = int((approved & (agg["n_live"] > 0)).sum())
    by_pass = pd.Series(matches["match_pass"]).value_counts().to_dict()
    stats = {
        "claims_in_scope": int(scope.sum()),
        "approved_in_scope": int(approved.sum()),
        "approved_matched": matched,
        "auto_match_rate": round(matched / int(approved.sum()), 4) if approved.any() else None,
        "docs_in_scope": int(_in(period, P.d_date).sum()),
        "matches_by_pass": {k: int(v) for k, v in sorted(by_pass.items())},
        "ambiguous_candidates": int(len(ambiguous)),
        "exceptions": int(len(exceptions)),
    }
    amb = pd.DataFrame(
        {
            "claim_id": claims["claim_id"].iloc[ambiguous["c"].to_numpy()].to_numpy(dtype=object),
            "doc_id": docs["doc_id"].iloc[ambiguous["d"].to_numpy()].to_numpy(dtype=object),
            "match_pass": ambiguous["match_pass"].to_numpy(dtype=object),
        }
    )
    return ReconcileResult(exceptions=exceptions, matches=matches, stats=stats, ambiguous=amb)


def _match(P: _Prepared, mp: MatchParams) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """All passes. Returns (links, ambiguous c/d/match_pass, chained payments mask)."""
    n_docs = len(P.docs)
    is_bill, is_pay = P.d_is_bill, P.d_is_pay

    # Pass 1, key: the OA number on the document.
    d_claim = _lookup(P.d_ref, _first_position(P.c_key, np.ones(len(P.claims), bool), P.n_keys))
    d_pass = np.where(d_claim >= 0, PASSES.index("key"), -1).astype(np.int64)
    d_rule = np.where(d_claim >= 0, RULES.index("claim_no_ref"), -1).astype(np.int64)

    # Payments to bills by source_doc_nos (a key relation, whatever matched the bill).
    src = P.src.loc[is_pay[P.src["pos"].to_numpy()]]
    src_code = src["code"].to_numpy()
    src_pos = src["pos"].to_numpy()
    src_bill = _lookup(src_code, _first_position(P.d_key, is_bill, P.n_keys))
    n_src = np.bincount(src_pos, minlength=n_docs)
    known = (src_bill >= 0) | P.has(src_code, P.key_set(P.q_doc_keys))
    chained = np.zeros(n_docs, dtype=bool)
    chained[src_pos[known]] = True

    # Claims the key pass reached, for the residue.
    reached = np.zeros(len(P.claims), dtype=bool)
    reached[d_claim[d_claim >= 0]] = True
    reached |= P.has(P.c_key, P.key_set(P.q_doc_refs))
    q_claim = P.has(P.d_ref, P.key_set(P.q_claim_keys))

    open_doc = (d_claim < 0) & P.d_live & ~chained & (is_bill | is_pay) & ~q_claim
    open_claim = P.c_approved & ~reached & (P.c_t != np.iinfo(np.int64).min)
    claims_res = Residual(
        np.flatnonzero(open_claim), P.c_person[open_claim], P.c_amount[open_claim], P.c_t[open_claim]
    )
    docs_res = Residual(
        np.flatnonzero(open_doc),
        P.d_person[open_doc],
        P.d_amount[open_doc],
        P.d_t[open_doc],
        is_pay[open_doc].astype(np.int8),
    )
    ambiguous = []

    # Pass 2, rule.
    if len(claims_res.pos) and len(docs_res.pos):
        ok, tied = rule_pass(claims_res, docs_res, mp)
        d_claim[ok["d"].to_numpy()] = ok["c"].to_numpy()
        d_pass[ok["d"].to_numpy()] = PASSES.index("rule")
        d_rule[ok["d"].to_numpy()] = RULES.index("person_amount_date")
        ambiguous.append(tied.assign(match_pass="rule"))
        claims_res = claims_res.without(ok["c"].to_numpy())
        docs_res = docs_res.without(ok["d"].to_numpy())

    # Pass 3, group.
    batch = pd.DataFrame(columns=LINK_COLUMNS)
    if len(claims_res.pos) and len(docs_res.pos):
        split, batch_pairs, tied = group_pass(claims_res, docs_res, mp)
        d_claim[split["d"].to_numpy()] = split["c"].to_numpy()
        d_pass[split["d"].to_numpy()] = PASSES.index("group")
        d_rule[split["d"].to_numpy()] = RULES.index("split")
        batch = batch_pairs.assign(
            match_pass=PASSES.index("group"),
            rule=RULES.index("batch"),
            share_fen=P.c_amount[batch_pairs["c"].to_numpy()],
        )
        ambiguous.append(tied.assign(match_pass="group"))
        # a tie is reported only if no pass matched either side of it in the end
        done_c = np.concatenate([split["c"].to_numpy(), batch_pairs["c"].to_numpy()])
        done_d = np.concatenate([split["d"].to_numpy(), batch_pairs["d"].to_numpy()])
        ambiguous = [a.loc[~a["c"].isin(done_c) & ~a["d"].isin(done_d)] for a in ambiguous]

    single = np.flatnonzero(d_claim >= 0)
    direct = pd.DataFrame(
        {
            "c": d_claim[single],
            "d": single,
            "match_pass": d_pass[single],
            "rule": d_rule[single],
            "share_fen": P.d_amount[single],
        }
    )
    # Payments follow their bills (whatever pass matched the bill); a payment of several bills
    # is attributed each bill's amount, a payment of one bill its own amount.
    bill_claim = np.where(src_bill >= 0, d_claim[np.maximum(src_bill, 0)], -1)
    via = bill_claim >= 0
    pay_pos, bill_pos = src_pos[via], src_bill[via]
    via_links = pd.DataFrame(
        {
            "c": bill_claim[via],
            "d": pay_pos,
            "match_pass": d_pass[bill_pos],
            "rule": np.full(len(pay_pos), RULES.index("source_doc_nos"), dtype=np.int64),
            "share_fen": np.where(n_src[pay_pos] == 1, P.d_amount[pay_pos], P.d_amount[bill_pos]),
        }
    )
    parts = [f for f in (direct, via_links, batch) if not f.empty]
    if parts:
        links = pd.concat(parts, ignore_index=True)
        pair = links["c"].to_numpy(dtype=np.int64) * (n_docs + 1) + links["d"].to_numpy(dtype=np.int64)
        links = links.loc[~pd.Series(pair).duplicated().to_numpy()]
    else:
        links = pd.DataFrame({c: pd.Series(dtype=object) for c in LINK_COLUMNS})
    links = links.astype(
        {"c": np.int64, "d": np.int64, "match_pass": np.int64, "rule": np.int64, "share_fen": np.int64}
    )
    amb = [a for a in ambiguous if not a.empty]
    amb_frame = (
        pd.concat(amb, ignore_index=True)
        if amb
        else pd.DataFrame({"c": np.array([], np.int64), "d": np.array([], np.int64), "match_pass": []})
    )
    return links.reset_index(drop=True), amb_frame, chained


__all__ = [
    "DAY_NS",
    "EXCEPTION_FRAME_COLUMNS",
    "MATCH_COLUMNS",
    "ReconcileParams",
    "ReconcileResult",
    "References",
    "claims_in_scope",
    "docs_in_scope",
    "reconcile",
]
