"""Matching claims to finance documents in passes, each on what the earlier passes left.

DESIGN, "Reconciliation":

1. ``key``: ``finance_doc.claim_no_ref == expense_claim.claim_no`` (rule ``claim_no_ref``), and
   payments to bills by ``source_doc_nos`` (rule ``source_doc_nos``: a payment follows its bill).
2. ``rule``: same person, amount within tolerance, date within a window (rule
   ``person_amount_date``). The best candidate wins by a clear score (amount difference in fen,
   then whole days apart); a pair is taken only when each side is the other's unique best, so a
   tie is reported (``ambiguous``) and never guessed.
3. ``group``: one claim paid by several documents (rule ``split``), or one payment covering
   several claims (rule ``batch``); sums equal within tolerance, every member within the window
   of the claim. The search is bounded: at most ``max_group_size`` members, and only people with
   at most ``max_group_candidates`` unmatched documents (or claims) are searched.

Everything works on positions (``c`` into the claims frame, ``d`` into the documents frame) and
integer codes, with merges and group-bys: no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_NS = 86_400 * 10**9
LINK_COLUMNS = ["c", "d", "match_pass", "rule", "share_fen"]
EXPAND_TOLERANCE_MAX = 10  # up to this many fen, join on exact amounts ± each offset


@dataclass(frozen=True)
class MatchParams:
    amount_tolerance_fen: int = 1
    date_window_days: int = 15
    max_group_size: int = 3
    max_group_candidates: int = 20


@dataclass(frozen=True)
class Links:
    """Claim ↔ document links by position, one array per ``LINK_COLUMNS`` name (pass and rule as
    codes into the engine's ``PASSES`` and ``RULES``)."""

    c: np.ndarray
    d: np.ndarray
    match_pass: np.ndarray
    rule: np.ndarray
    share_fen: np.ndarray

    def unique(self, n_docs: int) -> Links:
        """The first link of each (c, d) pair. Only a document linked more than once can repeat a
        pair, so only those few links are compared."""
        d = self.d.astype(np.int64, copy=False)
        many = np.bincount(d, minlength=n_docs)[d] > 1 if len(d) else np.zeros(0, dtype=bool)
        rows = np.flatnonzero(many)
        if len(rows):
            pair = self.c[rows].astype(np.int64) * (n_docs + 1) + d[rows]
            repeated = pd.Series(pair).duplicated().to_numpy()
            if repeated.any():
                keep = np.ones(len(d), dtype=bool)
                keep[rows[repeated]] = False
                return Links(*(getattr(self, n)[keep] for n in LINK_COLUMNS)).compact()
        return self.compact()

    def compact(self) -> Links:
        """Positions as int32 and pass and rule as int8 where they fit (half the memory of the
        links, the largest arrays of a run after the frames: 11.7M at 10M claims)."""
        small = max(len(self.c), int(self.c.max(initial=0)) + 1, int(self.d.max(initial=0)) + 1) < 2**31
        pos = np.int32 if small else np.int64
        return Links(
            self.c.astype(pos, copy=False),
            self.d.astype(pos, copy=False),
            self.match_pass.astype(np.int8, copy=False),
            self.rule.astype(np.int8, copy=False),
            self.share_fen.astype(np.int64, copy=False),
        )


@dataclass
class Residual:
    """Unmatched claims or documents for the rule and group passes."""

    pos: np.ndarray  # positions in the claims or documents frame
    person: np.ndarray  # int codes (shared between the two sides), -1 unknown
    amount: np.ndarray  # int64 fen
    t: np.ndarray  # int64 ns since epoch (approval time of a claim, date of a document)
    kind: np.ndarray | None = None  # documents: 0 bill, 1 payment

    def frame(self, prefix: str) -> pd.DataFrame:
        data = {
            f"{prefix}": self.pos,
            "person": self.person,
            f"{prefix}_amt": self.amount,
            f"{prefix}_t": self.t,
        }
        if self.kind is not None:
            data["kind"] = self.kind
        return pd.DataFrame(data)

    def without(self, taken: np.ndarray) -> Residual:
        keep = ~np.isin(self.pos, taken)
        return Residual(
            self.pos[keep],
            self.person[keep],
            self.amount[keep],
            self.t[keep],
            None if self.kind is None else self.kind[keep],
        )


def _amount_join(left: pd.DataFrame, right: pd.DataFrame, lcol: str, rcol: str, tol: int) -> pd.DataFrame:
    """Rows of ``left`` × ``right`` of the same person whose amounts differ by at most ``tol``."""
    if left.empty or right.empty:
        return left.iloc[:0].merge(right.iloc[:0], on="person")
    if tol <= EXPAND_TOLERANCE_MAX:
        parts = []
        for off in range(-tol, tol + 1):
            keyed = right.assign(_amt=right[rcol] + off)
            parts.append(left.merge(keyed, left_on=["person", lcol], right_on=["person", "_amt"]))
        out = pd.concat(parts, ignore_index=True).drop(columns="_amt")
    else:
        out = left.merge(right, on="person")
        out = out.loc[(out[lcol] - out[rcol]).abs() <= tol]
    return out.reset_index(drop=True)


def rule_pass(claims: Residual, docs: Residual, p: MatchParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs (c, d) by person, amount and date; returns (accepted pairs, ambiguous pairs)."""
    left = docs.frame("d")
    left = left.loc[left["person"] >= 0]
    right = claims.frame("c")
    pairs = _amount_join(left, right, "d_amt", "c_amt", p.amount_tolerance_fen)
    if pairs.empty:
        return _empty_pairs(), _empty_pairs()
    gap = (pairs["d_t"] - pairs["c_t"]).abs()
    pairs = pairs.loc[gap <= p.date_window_days * DAY_NS].copy()
    adiff = (pairs["d_amt"] - pairs["c_amt"]).abs().to_numpy()
    days = ((pairs["d_t"] - pairs["c_t"]).abs() // DAY_NS).to_numpy()
    pairs["score"] = adiff * 1000 + np.minimum(days, 999)
    return mutual_best(pairs[["c", "d", "score"]])


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"c": np.array([], dtype=np.int64), "d": np.array([], dtype=np.int64)})


def mutual_best(pairs: pd.DataFrame, rounds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accept each pair that is the unique best of both its claim and its document, repeatedly.

    What is left at the best score of a side with more than one candidate is a tie: returned as
    ambiguous (every tied pair), for the caller to report.
    """
    accepted = []
    for _ in range(rounds):
        if pairs.empty:
            break
        best_d = pairs.groupby("d")["score"].transform("min")
        best_c = pairs.groupby("c")["score"].transform("min")
        at_d = pairs["score"] == best_d
        at_c = pairs["score"] == best_c
        n_d = at_d.groupby(pairs["d"]).transform("sum")
        n_c = at_c.groupby(pairs["c"]).transform("sum")
        take = at_d & at_c & (n_d == 1) & (n_c == 1)
        if not take.any():
            break
        got = pairs.loc[take, ["c", "d"]]
        accepted.append(got)
        pairs = pairs.loc[~pairs["c"].isin(got["c"]) & ~pairs["d"].isin(got["d"])]
    ok = pd.concat(accepted, ignore_index=True) if accepted else _empty_pairs()
    if pairs.empty:
        return ok, _empty_pairs()
    best_d = pairs.groupby("d")["score"].transform("min")
    best_c = pairs.groupby("c")["score"].transform("min")
    tied = pairs.loc[(pairs["score"] == best_d) | (pairs["score"] == best_c), ["c", "d"]]
    return ok, tied.reset_index(drop=True)


def _combos(side: pd.DataFrame, prefix: str, p: MatchParams, by: list[str]) -> pd.DataFrame:
    """Every set of 2..max_group_size rows of one person (and ``by``): members, sum, time span."""
    counts = side.groupby("person")[prefix].transform("size")
    side = side.loc[(side["person"] >= 0) & (counts <= p.max_group_candidates)]
    amt, t = f"{prefix}_amt", f"{prefix}_t"
    base = side.rename(columns={prefix: "m0", amt: "sum", t: "t_min"}).assign(t_max=side[t].to_numpy())
    out = []
    current = base
    for size in range(2, p.max_group_size + 1):
        last = f"m{size - 2}"
        nxt = f"m{size - 1}"
        joined = current.merge(side.rename(columns={prefix: nxt}), on=["person", *by])
        joined = joined.loc[joined[nxt] > joined[last]]
        if joined.empty:
            break
        current = joined.assign(
            sum=joined["sum"] + joined[amt],
            t_min=np.minimum(joined["t_min"], joined[t]),
            t_max=np.maximum(joined["t_max"], joined[t]),
        ).drop(columns=[amt, t])
        out.append(current)
    if not out:
        return pd.DataFrame(columns=["person", *by, "sum", "t_min", "t_max", "m0", "m1"])
    combos = pd.concat(out, ignore_index=True)
    combos["gid"] = np.arange(len(combos), dtype=np.int64)
    return combos


def _members(combos: pd.DataFrame, p: MatchParams) -> pd.DataFrame:
    """(gid, member) rows of the combos."""
    cols = [f"m{i}" for i in range(p.max_group_size) if f"m{i}" in combos.columns]
    long = combos.melt(id_vars=["gid"], value_vars=cols, value_name="member").dropna(subset=["member"])
    return long[["gid", "member"]].astype({"member": np.int64})


def _unique_groups(hits: pd.DataFrame, one: str, p: MatchParams, combos: pd.DataFrame) -> tuple:
    """Hits (gid, ``one``) → accepted (gid, one) where ``one`` has a single candidate group and every
    member of that group is a candidate of no other ``one``; the rest are ambiguous."""
    if hits.empty:
        return hits, hits
    per_one = hits.groupby(one)["gid"].transform("size")
    members = _members(combos.loc[combos["gid"].isin(hits["gid"])], p).merge(hits[["gid", one]], on="gid")
    owners = members.groupby("member")[one].transform("nunique")
    contested = set(members.loc[owners > 1, "gid"])
    take = (per_one == 1) & ~hits["gid"].isin(contested)
    return hits.loc[take], hits.loc[~take]


def group_pass(
    claims: Residual, docs: Residual, p: MatchParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split (one claim, several documents of one kind) then batch (one payment, several claims).

    Returns (split links c, d), (batch links c, d), ambiguous (c, d).
    """
    tol, window = p.amount_tolerance_fen, p.date_window_days * DAY_NS
    ambiguous = []
    split = _empty_pairs()
    doc_combos = _combos(docs.frame("d"), "d", p, ["kind"])
    if not doc_combos.empty:
        hits = _amount_join(doc_combos, claims.frame("c"), "sum", "c_amt", tol)
        near = ((hits["t_min"] - hits["c_t"]).abs() <= window) & (
            (hits["t_max"] - hits["c_t"]).abs() <= window
        )
        hits = hits.loc[near, ["gid", "c"]].drop_duplicates()
        ok, amb = _unique_groups(hits, "c", p, doc_combos)
        if not ok.empty:
            split = _members(doc_combos.loc[doc_combos["gid"].isin(ok["gid"])], p).merge(ok, on="gid")
            split = split.rename(columns={"member": "d"})[["c", "d"]]
        if not amb.empty:
            amb_m = _members(doc_combos.loc[doc_combos["gid"].isin(amb["gid"])], p).merge(amb, on="gid")
            ambiguous.append(amb_m.rename(columns={"member": "d"})[["c", "d"]])
    claims = claims.without(split["c"].to_numpy())
    docs = docs.without(split["d"].to_numpy())

    batch = _empty_pairs()
    payments = docs.frame("d")
    payments = payments.loc[payments["kind"] == 1].drop(columns="kind")
    claim_combos = _combos(claims.frame("c"), "c", p, [])
    if not claim_combos.empty and not payments.empty:
        hits = _amount_join(claim_combos, payments, "sum", "d_amt", tol)
        near = ((hits["t_min"] - hits["d_t"]).abs() <= window) & (
            (hits["t_max"] - hits["d_t"]).abs() <= window
        )
        hits = hits.loc[near, ["gid", "d"]].drop_duplicates()
        ok, amb = _unique_groups(hits, "d", p, claim_combos)
        if not ok.empty:
            batch = _members(claim_combos.loc[claim_combos["gid"].isin(ok["gid"])], p).merge(ok, on="gid")
            batch = batch.rename(columns={"member": "c"})[["c", "d"]]
        if not amb.empty:
            amb_m = _members(claim_combos.loc[claim_combos["gid"].isin(amb["gid"])], p).merge(amb, on="gid")
            ambiguous.append(amb_m.rename(columns={"member": "c"})[["c", "d"]])
    amb_all = pd.concat(ambiguous, ignore_index=True) if ambiguous else _empty_pairs()
    return split, batch, amb_all
