"""From links and claims to exceptions: DESIGN's 14 types, one discrepancy → one exception.

Readings (DESIGN, "Reconciliation" and the exception table), per claim in scope:

- not approved but a live audited or paid document → ``STATUS_MISMATCH`` (and nothing else from
  its documents: a claim paid although rejected is not also paid late);
- approved, no live document, ``approved_at <= as_of - SLA`` → ``MISSING_IN_FINANCE``;
- paid more than once (two or more payments) for more than was billed → ``DUPLICATE_PAYMENT``,
  else billed (or, without a bill, paid) ≠ claim, or paid ≠ billed, beyond tolerance →
  ``AMOUNT_MISMATCH`` (a claim paid in parts that fall short is an amount mismatch);
- a payment to a known person other than the applicant → ``PAYEE_MISMATCH``;
- first payment more than SLA after approval, or none by ``as_of`` although due and billed →
  ``LATE_PAYMENT``;
- the applicant among the approvers → ``SELF_APPROVAL``; an approver whose limit (approval
  matrix: their person id, else their role) is below the amount → ``APPROVAL_LIMIT``;
- per budget code, the period's approved claims summing strictly above its budget →
  ``BUDGET_OVERRUN``;
- an invoice failing its checks → ``INVALID_INVOICE``; an invoice already on an earlier claim
  (by submission time) → ``DUPLICATE_INVOICE`` on the later, in-scope use;
- documents dated in the period that no claim stands behind → ``MISSING_IN_OA`` (once per chain);
- quarantined records of the period → ``UNMAPPED_CODE`` / ``CONTRACT_VIOLATION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.invoices import check_invoices, invoice_keys
from oafin.engine.codes import factorize_text, text_codes
from oafin.engine.keys import norm_keys, split_keys
from oafin.engine.matching import DAY_NS, Links
from oafin.engine.scope import ReconcileParams, References, _ns, _Prepared, docs_in_scope
from oafin.standard import EXCEPTION_KEY_COLUMNS

EXCEPTION_FRAME_COLUMNS = [
    "exception_type",
    "company_code",
    *EXCEPTION_KEY_COLUMNS,
    "person_id",
    "amount_fen",
    "detail",
]
NAT = np.iinfo(np.int64).min


@dataclass
class Context:
    P: _Prepared
    params: ReconcileParams
    scope: np.ndarray  # claims in scope (bool by position)
    agg: dict[str, Any]  # per claim position: what its live documents add up to (arrays)
    due: pd.Timestamp
    ambiguous: pd.DataFrame  # c, d, match_pass


def rows(kind: str, n: int, **columns: Any) -> pd.DataFrame:
    """``n`` exception rows of one type; values are arrays of length ``n`` or scalars."""
    data = {"exception_type": np.full(n, kind, dtype=object)}
    for name in EXCEPTION_FRAME_COLUMNS[1:]:
        value = columns.get(name)
        if isinstance(value, pd.Series):
            value = value.to_numpy(dtype=object)
        data[name] = value if isinstance(value, np.ndarray) else np.full(n, value, dtype=object)
    return pd.DataFrame(data, columns=EXCEPTION_FRAME_COLUMNS)


def _claim_rows(ctx: Context, kind: str, mask: np.ndarray, **columns: Any) -> pd.DataFrame:
    c = ctx.P.claims
    pos = np.flatnonzero(mask)
    base = {
        "company_code": _take(c["company_code"], pos),
        "claim_no": _take(c["claim_no"], pos),
        "person_id": _take(c["applicant_id"], pos),
        "amount_fen": ctx.P.c_amount[pos],
    }
    extra = {
        k: (v[pos] if isinstance(v, np.ndarray) and len(v) == len(mask) else v) for k, v in columns.items()
    }
    return rows(kind, len(pos), **(base | extra))


def _take(column: pd.Series, pos: np.ndarray) -> np.ndarray:
    """``column`` at positions ``pos`` as objects (converting only those: Arrow text is slow to convert)."""
    return column.iloc[pos].to_numpy(dtype=object)


def _sum_by(c: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Integer sums of ``values`` per claim position (int64, never through float)."""
    if len(c) == 0:
        return np.zeros(n, dtype=np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, c, np.asarray(values, dtype=np.int64))
    return out


def _count(c: np.ndarray, n: int) -> np.ndarray:
    """Links per claim position, as int32 (a count never reaches 2^31)."""
    return np.bincount(c, minlength=n).astype(np.int32)


def aggregate(P: _Prepared, links: Links, dead: tuple[str, ...]) -> dict[str, Any]:
    """Per claim position: live documents, bills, payments, first payment, payee mismatch.

    Plain arrays by claim position (a frame would turn the object column of payees into text).
    """
    n = len(P.claims)
    live = P.d_live[links.d]
    c, d, share = links.c[live], links.d[live], links.share_fen[live]
    bill = P.d_is_bill[d]
    paid = P.d_paid[d]
    c_bill, c_paid = c[bill], c[paid]
    agg: dict[str, Any] = {
        "n_live": _count(c, n),
        "n_bills": _count(c_bill, n),
        "bill_sum": _sum_by(c_bill, P.d_amount[d[bill]], n),
        "n_pays": _count(c_paid, n),
        "paid_sum": _sum_by(c_paid, share[paid], n),
        "n_settled": _count(c[P.d_settled[d]], n),
    }
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, c_paid, P.d_t[d[paid]])
    agg["first_paid"] = np.where(first == np.iinfo(np.int64).max, NAT, first)
    other = paid & (P.d_person[d] >= 0) & (P.d_person[d] != P.c_person[c])
    agg["payee_bad"] = np.bincount(c[other], minlength=n) > 0
    bad: dict[int, object] = {}  # claim position → the first other payee (few: not a column)
    if other.any():
        first_bad = pd.Series(_take(P.docs["payee_id"], d[other])).groupby(c[other]).first()
        bad = dict(zip(first_bad.index.tolist(), first_bad.tolist(), strict=True))
    agg["bad_payee"] = bad
    return agg


def status_mismatch(ctx: Context, not_approved: tuple[str, ...]) -> pd.DataFrame:
    status = ctx.P.claims["status"]
    mask = (
        ctx.scope & status.isin(not_approved).fillna(False).to_numpy(dtype=bool) & (ctx.agg["n_settled"] > 0)
    )
    detail = np.array(
        [f"OA status {s} but settled in finance" for s in _take(status, np.flatnonzero(mask))], dtype=object
    )
    full = np.empty(len(mask), dtype=object)
    full[mask] = detail
    return _claim_rows(ctx, "STATUS_MISMATCH", mask, detail=full)


def _ambiguous_note(ctx: Context, side: str, other: str, ids: pd.Series) -> dict[int, str]:
    """For each ``side`` position in a tie: 'ambiguous <pass> match: <other ids>'."""
    amb = ctx.ambiguous
    if amb.empty:
        return {}
    grouped = amb.groupby(side)
    notes = {}
    for pos, group in grouped:  # pos is a position (int); the stubs type group keys as any scalar
        names = sorted({str(x) for x in _take(ids, group[other].to_numpy())})
        notes[int(pos)] = f"; ambiguous {group['match_pass'].iloc[0]} match, tied: {', '.join(names)}"  # type: ignore[arg-type]
    return notes


def missing_in_finance(ctx: Context) -> pd.DataFrame:
    P = ctx.P
    approved_at = P.claims["approved_at"]
    mask = (
        ctx.scope
        & P.c_approved
        & (ctx.agg["n_live"] == 0)
        & (approved_at <= ctx.due).to_numpy()
        & ~P.has(P.c_key, P.key_set(P.q_doc_refs))
    )
    notes = _ambiguous_note(ctx, "c", "d", P.docs["doc_no"])
    pos = np.flatnonzero(mask)
    when = approved_at.iloc[pos].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    detail = np.empty(len(mask), dtype=object)
    for i, day in zip(pos, when, strict=True):
        detail[i] = f"approved {day}, no finance document" + notes.get(int(i), "")
    return _claim_rows(ctx, "MISSING_IN_FINANCE", mask, detail=detail)


def payment_findings(ctx: Context) -> pd.DataFrame:
    """DUPLICATE_PAYMENT or AMOUNT_MISMATCH, PAYEE_MISMATCH, LATE_PAYMENT on approved claims."""
    P, a, tol = ctx.P, ctx.agg, ctx.params.amount_tolerance_fen
    base = ctx.scope & P.c_approved
    n_bills, n_pays = a["n_bills"], a["n_pays"]
    bill_sum, paid_sum = a["bill_sum"], a["paid_sum"]
    billed = np.where(n_bills > 0, bill_sum, paid_sum)
    has_amount = (n_bills > 0) | (n_pays > 0)
    # paid more than once for more than was billed (or, with no bill, than was claimed)
    reference = np.where(n_bills > 0, bill_sum, P.c_amount)
    dup = base & (n_pays > 1) & (paid_sum > reference + tol)
    off_claim = np.abs(billed - P.c_amount) > tol
    off_paid = (n_pays > 0) & (np.abs(paid_sum - billed) > tol)
    amount = base & has_amount & ~dup & (off_claim | off_paid)
    diff = np.where(off_claim, billed - P.c_amount, paid_sum - P.c_amount)
    out = []
    if dup.any():
        detail = _texts(
            dup,
            lambda i: f"{n_pays[i]} payments totalling {paid_sum[i]} fen for {reference[i]} fen",
        )
        out.append(_claim_rows(ctx, "DUPLICATE_PAYMENT", dup, amount_fen=paid_sum - reference, detail=detail))
    if amount.any():
        detail = _texts(
            amount,
            lambda i: f"OA {P.c_amount[i]} fen, finance billed {billed[i]} fen, paid {paid_sum[i]} fen",
        )
        out.append(_claim_rows(ctx, "AMOUNT_MISMATCH", amount, amount_fen=diff, detail=detail))
    payee = base & a["payee_bad"]
    if payee.any():
        bad = a["bad_payee"]
        detail = _texts(payee, lambda i: f"paid to {bad[i]}")
        out.append(_claim_rows(ctx, "PAYEE_MISMATCH", payee, detail=detail))
    sla = ctx.params.payment_sla_days * DAY_NS
    first = a["first_paid"]
    due = (P.claims["approved_at"] <= ctx.due).to_numpy()
    late = base & (a["n_live"] > 0) & (((first != NAT) & (first - P.c_t > sla)) | ((first == NAT) & due))
    if late.any():
        detail = _texts(
            late,
            lambda i: (
                "unpaid"
                if first[i] == NAT
                else f"first payment {(first[i] - P.c_t[i]) / DAY_NS:.1f} days after approval"
            ),
        )
        out.append(_claim_rows(ctx, "LATE_PAYMENT", late, detail=detail))
    return _concat(out)


def _texts(mask: np.ndarray, fn: Any) -> np.ndarray:
    out = np.empty(len(mask), dtype=object)
    for i in np.flatnonzero(mask):
        out[i] = fn(i)
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else rows("", 0)


def _approver_table(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pos, approver key code) for every approved claim in scope, and the key texts by code.

    Rows are by claim position, then in the order the approvers are listed. Each distinct
    ``approver_ids`` text is split and normalised once (there are few: approvers are people).
    """
    base = ctx.scope & ctx.P.c_approved
    pos = np.flatnonzero(base)
    raw_all, uniques = factorize_text(ctx.P.claims["approver_ids"])
    raw = raw_all[pos]
    exploded = split_keys(uniques)
    ex_u = exploded["pos"].to_numpy(dtype=np.int64)  # ascending: by unique, then list order
    key_codes, key_text = pd.factorize(exploded["key"])
    key_codes = key_codes.astype(np.int64)
    per_u = np.bincount(ex_u, minlength=len(uniques) + 1)
    start_u = np.concatenate([[0], np.cumsum(per_u)[:-1]])
    per_u[len(uniques)] = 0  # a missing list (code -1) has no approvers
    raw = np.where(raw >= 0, raw, len(uniques))
    k = per_u[raw]
    rep = np.repeat(np.arange(len(pos)), k)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    idx = start_u[raw[rep]] + within
    return pos[rep], key_codes[idx], np.asarray(key_text, dtype=object)


def approval_findings(ctx: Context, refs: References) -> pd.DataFrame:
    """SELF_APPROVAL and APPROVAL_LIMIT (independent of each other and of the payment findings)."""
    P = ctx.P
    a_pos, a_key, key_text = _approver_table(ctx)
    if len(a_pos) == 0:
        return rows("", 0)
    # applicants and approver keys as one code space of normalised text (both sides are few people)
    app_raw, app_uniques = P.applicants
    app_norm = norm_keys(pd.Series(app_uniques))
    joint = pd.factorize(
        pd.concat(
            [app_norm.reset_index(drop=True), pd.Series(key_text, dtype=object).astype("str")],
            ignore_index=True,
        )
    )[0].astype(np.int64)
    empty = np.flatnonzero((app_norm == "").to_numpy(dtype=bool))
    app_joint = np.append(joint[: len(app_norm)], -1)  # a missing applicant (raw -1) never matches
    if len(empty):
        app_joint[empty] = -1
    key_joint = joint[len(app_norm) :]
    applicant = app_joint[np.where(app_raw >= 0, app_raw, len(app_norm))]
    self_rows = key_joint[a_key] == applicant[a_pos]
    mask = np.zeros(len(P.claims), dtype=bool)
    mask[a_pos[self_rows]] = True
    out = [_claim_rows(ctx, "SELF_APPROVAL", mask, detail="the applicant approved their own claim")]
    if refs.approval_matrix and refs.people is not None:
        limits = _limits(refs.approval_matrix, refs.people)
        found = [limits.get(k) for k in key_text]
        has_u = np.array([v is not None for v in found], dtype=bool)
        limit_u = np.array([v if v is not None else 0 for v in found], dtype=np.int64)
        amount = P.c_amount[a_pos]
        over = has_u[a_key] & (limit_u[a_key] < amount)
        h_pos, h_key = a_pos[over], a_key[over]
        first_pos, first_idx = np.unique(h_pos, return_index=True)  # the first listed over-limit approver
        lim_mask = np.zeros(len(P.claims), dtype=bool)
        lim_mask[first_pos] = True
        detail = np.empty(len(P.claims), dtype=object)
        for pos, kc in zip(first_pos, h_key[first_idx], strict=True):
            detail[pos] = f"approved by {key_text[kc]} whose limit is {limit_u[kc]} fen"
        out.append(_claim_rows(ctx, "APPROVAL_LIMIT", lim_mask, detail=detail))
    return _concat(out)


def _limits(approval_matrix: dict[str, int], people: pd.DataFrame) -> dict[str, int]:
    """Approver key → limit: the matrix entry for the person, else for their role."""
    matrix = {str(k).strip(): int(v) for k, v in approval_matrix.items()}
    keys = norm_keys(people["person_id"]).to_numpy(dtype=object)
    out: dict[str, int] = {}
    for key, pid, role in zip(keys, people["person_id"], people["role"], strict=True):
        if pid in matrix:
            out[key] = matrix[pid]
        elif role in matrix:
            out[key] = matrix[role]
    for k, v in matrix.items():  # a person id in the matrix that the people table lacks
        out.setdefault(k.upper(), v)
    return out


def budget_overrun(ctx: Context, refs: References) -> pd.DataFrame:
    if refs.budgets is None or refs.budgets.empty:
        return rows("", 0)
    P = ctx.P
    base = ctx.scope & P.c_approved
    # per distinct budget code text (few), in order of first use: its sum; then normalise those
    pos = np.flatnonzero(base)
    codes, all_uniques = factorize_text(P.claims["budget_code"])
    raw = np.where(codes[pos] >= 0, codes[pos], len(all_uniques))  # missing: a code of its own
    n_codes = len(all_uniques) + 1
    # the codes the in-scope claims use, in order of their first use
    first_use = np.full(n_codes, len(pos), dtype=np.int64)
    np.minimum.at(first_use, raw, np.arange(len(pos), dtype=np.int64))
    used_codes = np.flatnonzero(first_use < len(pos))
    used_codes = used_codes[np.argsort(first_use[used_codes], kind="stable")]
    totals = np.zeros(n_codes, dtype=np.int64)
    np.add.at(totals, raw, P.c_amount[pos])
    sums = totals[used_codes]
    texts = np.empty(n_codes, dtype=object)  # the last code, missing, stays None
    texts[: len(all_uniques)] = all_uniques.to_numpy(dtype=object)
    raw_text = pd.Series(texts[used_codes].tolist(), dtype="str")
    norm = norm_keys(raw_text)
    used = pd.DataFrame({"code": norm.to_numpy(), "fen": sums}).groupby("code")["fen"].sum()
    b = refs.budgets.loc[refs.budgets["period"].astype(str) == ctx.params.period.name]
    budget = pd.Series(
        b["amount_fen"].astype(np.int64).to_numpy(), index=norm_keys(b["budget_code"]).to_numpy()
    )
    budget = budget[~budget.index.duplicated()]
    both = pd.DataFrame({"used": used, "budget": budget}).dropna()
    over = both.loc[both["used"] > both["budget"]].sort_index()
    names = pd.Series(raw_text.to_numpy(dtype=object), index=norm.to_numpy()).groupby(level=0).first()
    company = P.claims["company_code"].dropna()
    return rows(
        "BUDGET_OVERRUN",
        len(over),
        company_code=company.iloc[0] if len(company) else None,
        budget_code=names.reindex(over.index).to_numpy(dtype=object),
        amount_fen=(over["used"] - over["budget"]).astype(np.int64).to_numpy(),
        detail=np.array(
            [
                f"approved {int(u)} fen against a budget of {int(b)} fen"
                for u, b in zip(over["used"], over["budget"], strict=True)
            ],
            dtype=object,
        ),
    )


@dataclass
class InvoiceCodes:
    """The invoices of a run with their claims' positions and their numbers as codes."""

    invoices: pd.DataFrame
    invalid: pd.DataFrame  # claim_id, invoice_key, reasons
    inv_pos: np.ndarray  # each invoice's claim position, -1 for none
    bad_pos: np.ndarray  # each failing invoice's claim position, -1 for none
    key_codes: np.ndarray  # the invoice keys (``invoice_keys``) as codes, -1 for none


def invoice_codes(
    claims: pd.DataFrame, invoices: pd.DataFrame | None, invalid: pd.DataFrame | None
) -> InvoiceCodes | None:
    """What ``invoice_findings`` needs from the inputs alone (so it can be computed beside the
    matching); ``None`` when there are no invoices."""
    if invoices is None or invoices.empty:
        return None
    inv = invoices.reset_index(drop=True)
    if invalid is None:
        invalid = check_invoices(inv)
    # claim ids of the claims, the invoices and the failing invoices as one code space
    n_c, n_i = len(claims), len(inv)
    ids = text_codes([claims["claim_id"], inv["claim_id"], invalid["claim_id"]])
    first = np.full(int(ids.max()) + 2, -1, dtype=np.int64)
    first[ids[:n_c][::-1]] = np.arange(n_c)[::-1]
    return InvoiceCodes(
        invoices=inv,
        invalid=invalid,
        inv_pos=first[ids[n_c : n_c + n_i]],
        bad_pos=first[ids[n_c + n_i :]],
        key_codes=text_codes([invoice_keys(inv)]),
    )


def invoice_findings(ctx: Context, coded: InvoiceCodes | None) -> pd.DataFrame:
    """INVALID_INVOICE on in-scope claims; DUPLICATE_INVOICE on a later, in-scope use.

    "Later" is by the claims' submission time (then their order in the frame); the first use of
    an invoice number is the original, every later use on an in-scope claim a duplicate (one
    exception per invoice number).
    """
    if coded is None:
        return rows("", 0)
    P = ctx.P
    invalid, inv_pos, bad_pos = coded.invalid, coded.inv_pos, coded.bad_pos
    out = []

    bad_keys = invalid["invoice_key"].fillna("").to_numpy(dtype=object)
    keep = (bad_pos >= 0) & (bad_keys != "")
    keep[keep] = ctx.scope[bad_pos[keep]]
    if keep.any():
        bad = pd.DataFrame({"pos": bad_pos[keep], "key": bad_keys[keep]}).assign(
            reasons=invalid["reasons"].to_numpy(dtype=object)[keep]
        )
        bad = bad.drop_duplicates("key")
        out.append(_invoice_rows(ctx, "INVALID_INVOICE", bad, bad["reasons"].to_numpy(dtype=object)))

    key_codes = coded.key_codes
    ok = np.flatnonzero((inv_pos >= 0) & (key_codes >= 0))
    pos, kc = inv_pos[ok], key_codes[ok]
    # Each invoice number's first use: the least (submission time, claim position), by group
    # minima rather than a sort of every use.
    sub = _sub_ns(P)[pos]
    n_keys = int(kc.max()) + 1 if len(kc) else 0
    least_sub = np.full(n_keys, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(least_sub, kc, sub)
    at_least = sub == least_sub[kc]
    original_pos = np.full(n_keys, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(original_pos, kc[at_least], pos[at_least])
    original = original_pos[kc]  # the claim of each invoice number's first use
    dup = np.flatnonzero((pos != original) & ctx.scope[pos])
    if len(dup):
        # one exception per invoice number: its earliest later use
        order = np.lexsort((pos[dup], sub[dup], kc[dup]))
        sorted_keys = kc[dup][order]
        first_of_key = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])
        idx = dup[order][first_of_key]
        key_text = invoice_keys(coded.invoices.iloc[ok[idx]]).fillna("").to_numpy(dtype=object)
        frame = pd.DataFrame({"pos": pos[idx], "key": key_text})
        nos = _take(P.claims["claim_no"], pos[idx])
        firsts = _take(P.claims["claim_no"], original[idx])
        detail = np.array(
            [f"on claim {n}, first on claim {f}" for n, f in zip(nos, firsts, strict=True)], dtype=object
        )
        out.append(_invoice_rows(ctx, "DUPLICATE_INVOICE", frame, detail))
    return _concat(out)


def _sub_ns(P: _Prepared) -> np.ndarray:
    return _ns(P.claims["submitted_at"])


def _invoice_rows(ctx: Context, kind: str, frame: pd.DataFrame, detail: np.ndarray) -> pd.DataFrame:
    c = ctx.P.claims
    pos = frame["pos"].to_numpy()
    claim_nos = _take(c["claim_no"], pos)
    return rows(
        kind,
        len(frame),
        company_code=_take(c["company_code"], pos),
        invoice_no=frame["key"].to_numpy(dtype=object),
        person_id=_take(c["applicant_id"], pos),
        detail=np.array(
            [
                f"claim {n}: {d}" if kind == "INVALID_INVOICE" else d
                for n, d in zip(claim_nos, detail, strict=True)
            ],
            dtype=object,
        ),
    )


def missing_in_oa(ctx: Context, links: Links, chained: np.ndarray) -> pd.DataFrame:
    """In-period documents with no OA claim behind them, counted once per chain."""
    P = ctx.P
    d = P.docs
    scoped = docs_in_scope(d, ctx.params.period).to_numpy(dtype=bool) & ~P.d_reversed & P.d_seen
    linked = np.zeros(len(d), dtype=bool)
    linked[links.d] = True
    # A payment that settles a known bill is part of that bill's chain: the bill carries the finding.
    q_claim = P.has(P.d_ref, P.key_set(P.q_claim_keys))
    mask = scoped & ~linked & ~q_claim & ~(P.d_is_pay & chained)
    notes = _ambiguous_note(ctx, "d", "c", P.claims["claim_no"])
    pos = np.flatnonzero(mask)
    refs = d["claim_no_ref"].iloc[pos].fillna("").to_numpy(dtype=object)
    kinds = d["doc_type"].iloc[pos].fillna("").to_numpy(dtype=object)
    detail = np.array(
        [
            f"{kind} with OA number '{ref}' not found in OA" + notes.get(int(i), "")
            for i, kind, ref in zip(pos, kinds, refs, strict=True)
        ],
        dtype=object,
    )
    return rows(
        "MISSING_IN_OA",
        len(pos),
        company_code=_take(d["company_code"], pos),
        doc_no=_take(d["doc_no"], pos),
        person_id=_take(d["payee_id"], pos),
        amount_fen=P.d_amount[pos],
        detail=detail,
    )


def quarantine_exceptions(quarantined: pd.DataFrame, period: Any) -> pd.DataFrame:
    """Quarantined records of the period (or of no readable date) as UNMAPPED_CODE / CONTRACT_VIOLATION."""
    scope_at = pd.to_datetime(quarantined["scope_at"], utc=True)
    q = quarantined.loc[scope_at.isna() | ((scope_at >= period.start) & (scope_at < period.end))]
    is_claim = (q["entity"] == "expense_claim").to_numpy()
    key = q["business_key"].to_numpy(dtype=object)
    out = rows(
        "",
        len(q),
        company_code=q["company_code"].to_numpy(dtype=object),
        claim_no=np.where(is_claim, key, None),
        doc_no=np.where(~is_claim, key, None),
        person_id=q["person_id"].to_numpy(dtype=object),
        amount_fen=q["amount_fen"].to_numpy(dtype=object),
        detail=q["reasons"].to_numpy(dtype=object),
    )
    out["exception_type"] = q["exception_type"].to_numpy(dtype=object)
    return out
