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

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from oafin.engine import findings as F
from oafin.engine.matching import DAY_NS, Links, MatchParams, Residual, group_pass, rule_pass
from oafin.engine.scope import (  # noqa: F401  (re-exported: the engine's interface)
    DEAD_DOC_STATUSES,
    ReconcileParams,
    References,
    _in,
    _Prepared,
    _submit,
    claims_in_scope,
    doc_dates,
    docs_in_scope,
)

EXCEPTION_FRAME_COLUMNS = F.EXCEPTION_FRAME_COLUMNS
MATCH_COLUMNS = ["claim_id", "doc_id", "match_pass", "rule"]
# links carry the pass and the rule as codes into these
PASSES = ("key", "rule", "group")
RULES = ("claim_no_ref", "person_amount_date", "split", "source_doc_nos", "batch")
assert len(PASSES) <= 8 and len(RULES) <= 8  # three bits each when links are sorted
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


@dataclass
class ReconcileResult:
    exceptions: pd.DataFrame
    matches: pd.DataFrame  # MATCH_COLUMNS, for the claims in scope
    stats: dict[str, Any] = field(default_factory=dict)
    ambiguous: pd.DataFrame | None = None  # claim_id, doc_id, match_pass: ties left unmatched


def _in_ns(period: Any, ns: np.ndarray) -> np.ndarray:
    """``_in`` of int64 ns timestamps (int64 min is NaT, before any period)."""
    start, end = (pd.Timestamp(t).as_unit("ns").value for t in (period.start, period.end))
    return (ns >= start) & (ns < end)


def _pick(column: pd.Series, pos: np.ndarray) -> Any:
    """``column`` at ``pos`` for a new frame; Arrow text stays Arrow (no round trip via objects)."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan:
        return column.iloc[pos].array
    return column.iloc[pos].to_numpy()


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> Any:
    """Codes into ``labels`` as a categorical column: one byte a link instead of a string (at
    10M links two text columns of labels were 400 MB); its values are the labels."""
    return pd.Categorical.from_codes(codes.astype(np.int8), dtype=pd.CategoricalDtype(list(labels)))


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
    threads: int | None = None,
) -> ReconcileResult:
    """Reconcile every extracted claim and document for ``params.period``.

    ``claims`` and ``docs`` are the valid standard rows of everything extracted (the period and
    its lookback); ``quarantined`` holds the quarantine rows (``QUARANTINE_COLUMNS``), whose keys
    still count as existing when looking for counterparts, so one bad record does not also raise a
    "missing" on its partner. ``invoices`` is the ``claim_invoice`` frame of those claims;
    ``invalid_invoices`` (``claim_id``, ``invoice_key``, ``reasons``) is what
    ``data_contracts.invoices.check_invoices`` reports for them (computed here when omitted).
    Documents dated after ``as_of`` are not looked at: the run sees the world as of ``as_of``.
    ``threads`` (default: the cores, at most 4) code the independent key spaces side by side;
    1 runs everything in the calling thread. The result does not depend on it.
    """
    refs = references or References()
    quarantined = quarantined if quarantined is not None else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    as_of = pd.Timestamp(params.as_of)
    dates = doc_dates(docs)
    # documents dated after as_of are masked out rather than copied out (a copy of the frame)
    seen = ~(dates > as_of).to_numpy(dtype=bool)
    n_threads = threads if threads is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(n_threads, "oafin-engine") if n_threads > 1 else nullcontext() as pool:
        P = _Prepared(claims, docs, quarantined, dates, pool, seen=None if seen.all() else seen)
        # the invoices need only the inputs: coded beside the matching
        coded_invoices = _submit(pool, F.invoice_codes, P.claims, invoices, invalid_invoices)
        return _reconcile_prepared(P, params, refs, quarantined, coded_invoices, as_of, pool)


def _reconcile_prepared(
    P: _Prepared,
    params: ReconcileParams,
    refs: References,
    quarantined: pd.DataFrame,
    coded_invoices: Any,
    as_of: pd.Timestamp,
    pool: Executor | None,
) -> ReconcileResult:
    period = params.period
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
    # the findings read ctx and write nothing: the independent ones run beside the others
    matches_frame = _submit(pool, _matches, P, links, scope)
    beside = [
        _submit(pool, F.approval_findings, ctx, refs),
        _submit(pool, F.budget_overrun, ctx, refs),
        _submit(pool, F.missing_in_oa, ctx, links, chained),
    ]
    found = [
        F.status_mismatch(ctx, NOT_APPROVED),
        F.missing_in_finance(ctx),
        F.payment_findings(ctx),
        F.invoice_findings(ctx, coded_invoices.result()),
        F.quarantine_exceptions(quarantined, period),
        *(f.result() for f in beside),
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

    matches, pass_codes = matches_frame.result()
    approved = scope & P.c_approved
    matched = int((approved & (agg["n_live"] > 0)).sum())
    by_pass = {PASSES[i]: n for i, n in enumerate(np.bincount(pass_codes, minlength=len(PASSES))) if n}
    stats = {
        "claims_in_scope": int(scope.sum()),
        "approved_in_scope": int(approved.sum()),
        "approved_matched": matched,
        "auto_match_rate": round(matched / int(approved.sum()), 4) if approved.any() else None,
        "docs_in_scope": int((_in_ns(period, P.d_t) & P.d_seen).sum()),
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


def _matches(P: _Prepared, links: Links, scope: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The links of the claims in scope as ids, and their pass codes, by claim then document."""
    sel = scope[links.c]
    c_pos, d_pos, pass_codes, rule_codes = _by_claim_then_doc(
        links.c[sel], links.d[sel], links.match_pass[sel], links.rule[sel], len(P.docs)
    )
    matches = pd.DataFrame(
        {
            "claim_id": _pick(P.claims["claim_id"], c_pos),
            "doc_id": _pick(P.docs["doc_id"], d_pos),
            "match_pass": _labels(pass_codes, PASSES),
            "rule": _labels(rule_codes, RULES),
        }
    )
    return matches, pass_codes


def _by_claim_then_doc(
    c: np.ndarray, d: np.ndarray, pass_: np.ndarray, rule: np.ndarray, n_docs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The links (unique per claim and document) in claim, then document order.

    Sorting the values, packed into one int64 (claim, document, pass, rule), is about twice as
    fast as sorting positions by a key; a space too large for 63 bits is sorted by positions.
    """
    width = n_docs + 1
    if len(c) == 0 or (int(c.max()) + 1) * width * 64 >= 2**63:
        order = np.lexsort((d, c))
        return c[order], d[order], pass_[order], rule[order]
    c64, d64 = c.astype(np.int64), d.astype(np.int64)
    packed = np.sort(((c64 * width + d64) << 6) | (pass_.astype(np.int64) << 3) | rule.astype(np.int64))
    del c64, d64
    pair = packed >> 6
    c_sorted, d_sorted = (pair // width).astype(c.dtype), (pair % width).astype(d.dtype)
    del pair
    return c_sorted, d_sorted, ((packed >> 3) & 7).astype(np.int8), (packed & 7).astype(np.int8)


def _match(P: _Prepared, mp: MatchParams) -> tuple[Links, pd.DataFrame, np.ndarray]:
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
    batch_pairs = pd.DataFrame({"c": np.array([], np.int64), "d": np.array([], np.int64)})
    if len(claims_res.pos) and len(docs_res.pos):
        split, batch_pairs, tied = group_pass(claims_res, docs_res, mp)
        d_claim[split["d"].to_numpy()] = split["c"].to_numpy()
        d_pass[split["d"].to_numpy()] = PASSES.index("group")
        d_rule[split["d"].to_numpy()] = RULES.index("split")
        ambiguous.append(tied.assign(match_pass="group"))
        # a tie is reported only if no pass matched either side of it in the end
        done_c = np.concatenate([split["c"].to_numpy(), batch_pairs["c"].to_numpy()])
        done_d = np.concatenate([split["d"].to_numpy(), batch_pairs["d"].to_numpy()])
        ambiguous = [a.loc[~a["c"].isin(done_c) & ~a["d"].isin(done_d)] for a in ambiguous]

    single = np.flatnonzero(d_claim >= 0)
    # Payments follow their bills (whatever pass matched the bill); a payment of several bills
    # is attributed each bill's amount, a payment of one bill its own amount.
    bill_claim = np.where(src_bill >= 0, d_claim[np.maximum(src_bill, 0)], -1)
    via = bill_claim >= 0
    pay_pos, bill_pos = src_pos[via], src_bill[via]
    links = Links(
        c=np.concatenate([d_claim[single], bill_claim[via], batch_pairs["c"].to_numpy(dtype=np.int64)]),
        d=np.concatenate([single, pay_pos, batch_pairs["d"].to_numpy(dtype=np.int64)]),
        match_pass=np.concatenate(
            [d_pass[single], d_pass[bill_pos], np.full(len(batch_pairs), PASSES.index("group"))]
        ),
        rule=np.concatenate(
            [
                d_rule[single],
                np.full(len(pay_pos), RULES.index("source_doc_nos")),
                np.full(len(batch_pairs), RULES.index("batch")),
            ]
        ),
        share_fen=np.concatenate(
            [
                P.d_amount[single],
                np.where(n_src[pay_pos] == 1, P.d_amount[pay_pos], P.d_amount[bill_pos]),
                P.c_amount[batch_pairs["c"].to_numpy(dtype=np.int64)],
            ]
        ),
    ).unique(n_docs)
    amb = [a for a in ambiguous if not a.empty]
    amb_frame = (
        pd.concat(amb, ignore_index=True)
        if amb
        else pd.DataFrame({"c": np.array([], np.int64), "d": np.array([], np.int64), "match_pass": []})
    )
    return links, amb_frame, chained


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
