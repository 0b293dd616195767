"""What the reports show, computed once from the warehouse and a period's result.

Plain pandas over the standard tables, so the workbook, the HTML page, the Prefect artifacts and
the tests all read the same numbers:

- the exceptions enriched for a reviewer: person name and department (``person`` table), the
  business date of the record behind it, its age in days and age bucket, a bilingual reason, the
  reviewer's comment;
- approval-to-payment cycle time: ``expense_claim.approved_at`` to the first paid ``finance_doc``
  payment the engine linked to the claim (the ``match`` table: by number, through the bill, by
  rule or by group); only payments made by ``as_of`` count; median and p90 of the period and
  of every earlier period the warehouse has reconciled (the trend);
- matched and unmatched totals of the period's approved claims, in fen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from data_contracts.frames import to_frame
from oafin.engine.keys import norm_keys
from oafin.engine.reconcile import MATCH_COLUMNS
from oafin.periods import SHANGHAI, Period
from oafin.reporting.details_zh import detail_sentence, invoice_claim_no, risk_of
from oafin.reporting.labels_zh import (
    CONTROL,
    OVER_LIMIT,
    PAID_OUT,
    TYPES,
    UNAPPROVED,
    UNPAID,
    risk_category,
    type_label,
    type_name,
)
from oafin.reporting.redact import redact_text
from oafin.standard import EXCEPTION_TYPES
from oafin.warehouse.lifecycle import read_events
from oafin.warehouse.review_table import exception_review
from oafin.warehouse.schema import STANDARD_TABLES, exception, match, quarantine
from oafin.warehouse.store import read_table

# (low, high, label): days since the record's business date (approval, posting or payment).
AGE_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 7, "0-7 d"),
    (8, 30, "8-30 d"),
    (31, 60, "31-60 d"),
    (61, 90, "61-90 d"),
    (91, None, ">90 d"),
)
AGE_LABELS = tuple(label for *_, label in AGE_BUCKETS)

# A short human reason per type: (Chinese, English); the names live in labels_zh.
REASONS: dict[str, tuple[str, str]] = {k: (zh, en) for k, (_name, zh, en) in TYPES.items()}
LIVE_DOC_EXCLUDED = ("reversed", "rejected")


def reason_of(kind: str) -> tuple[str, str]:
    return REASONS.get(kind, (kind, kind.replace("_", " ").lower()))


def age_bucket(days: float | int | None) -> str | None:
    if days is None or pd.isna(days):
        return None
    for low, high, label in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return AGE_LABELS[0]  # negative ages (dated after as_of) count as new


def humanize_detail(detail: Any) -> str:
    """A quarantine's JSON list of reasons as one readable, masked line; other text as it is.

    Amounts the engine writes in fen (``OA 25050 fen``) read as yuan (``OA ¥250.50``)."""
    if detail is None or (isinstance(detail, float) and detail != detail) or detail is pd.NA:
        return ""
    text = str(detail)
    if text.startswith("[{"):
        try:
            reasons = json.loads(text)
            parts = []
            for r in reasons:
                value = r.get("value")
                shown = "" if value in (None, "") else f" (value {value})"
                parts.append(f"{r.get('field') or r.get('code')}: {r.get('message')}{shown}")
            text = "; ".join(parts)
        except (ValueError, AttributeError, TypeError):
            pass
    return _FEN.sub(lambda m: _yuan_text(int(m.group(1))), redact_text(text) or "")


_FEN = re.compile(r"(?<![\w.])(-?\d+) fen\b")


def _yuan_text(fen: int) -> str:
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}¥{whole:,}.{cents:02d}"


def _scope(claims: pd.DataFrame, period: Period) -> pd.Series:
    """Approved in the period or, if never approved, submitted in it (DESIGN, scope of a run)."""

    def inside(ts: pd.Series) -> pd.Series:
        return ts.notna() & (ts >= period.start) & (ts < period.end)

    approved = claims["approved_at"]
    return inside(approved) | (approved.isna() & inside(claims["submitted_at"]))


def first_payments(
    claims: pd.DataFrame, docs: pd.DataFrame, as_of: datetime, matches: pd.DataFrame
) -> pd.DataFrame:
    """Each claim's first payment made by ``as_of``: columns ``claim_id``, ``paid_at``.

    A payment belongs to a claim when the engine linked them (``matches``: ``claim_id``,
    ``doc_id``, as the warehouse's ``match`` table holds them): by the claim's number, through
    the bill it settles, or by the rule and group passes. The chain is computed once, by the
    engine; reports read it.
    """
    live = docs.loc[~docs["status"].isin(LIVE_DOC_EXCLUDED)]
    paid = live.loc[
        (live["doc_type"] == "payment")
        & (live["status"] == "paid")
        & live["paid_at"].notna()
        & (live["paid_at"] <= as_of),
        ["doc_id", "paid_at"],
    ]
    links = matches[["claim_id", "doc_id"]].merge(paid, on="doc_id")
    links = links.loc[links["claim_id"].isin(claims["claim_id"])]
    first = links.groupby("claim_id")["paid_at"].min()
    out = pd.DataFrame(
        {"claim_id": first.index.astype(object), "paid_at": pd.to_datetime(first.to_numpy(), utc=True)}
    )
    return out.reset_index(drop=True)


def cycle_times(
    claims: pd.DataFrame, docs: pd.DataFrame, as_of: datetime, matches: pd.DataFrame
) -> pd.DataFrame:
    """Approved claims paid by ``as_of``: ``claim_id``, ``claim_no``, ``period`` (of approval),
    ``approved_at``, ``paid_at``, ``cycle_days`` (float days, approval to first payment)."""
    approved = claims.loc[(claims["status"] == "approved") & claims["approved_at"].notna()]
    paid = first_payments(approved, docs, as_of, matches)
    out = approved[["claim_id", "claim_no", "approved_at"]].merge(paid, on="claim_id")
    out["cycle_days"] = (out["paid_at"] - out["approved_at"]).dt.total_seconds() / 86400.0
    out["period"] = out["approved_at"].dt.tz_convert(SHANGHAI).dt.strftime("%Y-%m")
    return out[["claim_id", "claim_no", "period", "approved_at", "paid_at", "cycle_days"]]


def cycle_stats(days: pd.Series) -> dict[str, Any]:
    """``n``, ``median_days`` and ``p90_days`` (numpy's linear percentile), rounded to 0.1 day."""
    values = days.dropna().to_numpy(dtype=float)
    if not len(values):
        return {"n": 0, "median_days": None, "p90_days": None}
    return {
        "n": len(values),
        "median_days": round(float(np.percentile(values, 50)), 1),
        "p90_days": round(float(np.percentile(values, 90)), 1),
    }


def cycle_trend(cycles: pd.DataFrame, upto: str) -> pd.DataFrame:
    """Median and p90 per approval period, for every period up to ``upto`` the warehouse holds."""
    rows = [
        {"period": p, **cycle_stats(group["cycle_days"])}
        for p, group in cycles.loc[cycles["period"] <= upto].groupby("period", sort=True)
    ]
    return pd.DataFrame(rows, columns=["period", "n", "median_days", "p90_days"])


@dataclass
class ReportData:
    """Everything a report shows for one run of a period."""

    period: str
    company_code: str
    as_of: datetime
    exceptions: pd.DataFrame  # enriched, one row per shown exception
    stats: dict[str, Any]
    kpis: dict[str, Any]
    by_type: pd.DataFrame  # exception_type, count, amount_fen
    by_age: pd.DataFrame  # exception_type x AGE_LABELS counts
    top_departments: pd.DataFrame  # department, count, amount_fen
    cycle_trend: pd.DataFrame
    quality: dict[str, Any] | None = None  # Great Expectations summary, when it ran
    links: dict[str, str] = field(default_factory=dict)  # name -> relative path from the report folder


def _read(engine: Engine, entity: str) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = read_table(conn, STANDARD_TABLES[entity])
    return to_frame(entity, rows.to_dict("records"))


def read_matches(engine: Engine, company_code: str) -> pd.DataFrame:
    """The engine's stored links of one company, every period it has reconciled (``match``)."""
    with engine.connect() as conn:
        rows = read_table(conn, match, match.c.company_code == company_code)
    return rows.reindex(columns=MATCH_COLUMNS)


def matched_claim_ids(claims: pd.DataFrame, docs: pd.DataFrame, matches: pd.DataFrame) -> set[str]:
    """Claims the engine linked to at least one live finance document (``matches``)."""
    live = docs.loc[~docs["status"].isin(LIVE_DOC_EXCLUDED), ["doc_id"]]
    linked = matches[["claim_id", "doc_id"]].merge(live, on="doc_id")
    return set(linked["claim_id"]) & set(claims["claim_id"])


def _of_company(frame: pd.DataFrame, company_code: str) -> pd.DataFrame:
    """Rows of one company (rows that name none are taken to be the run's, as the engine does)."""
    keep = frame["company_code"].isna() | (frame["company_code"] == company_code)
    return frame.loc[keep].reset_index(drop=True)


def _map_distinct(series: pd.Series, fn: Any) -> pd.Series:
    """``series.map(fn)``, calling ``fn`` once per distinct value (details repeat a lot)."""
    values = series.astype(object)
    table = {v: fn(v) for v in pd.unique(values[values.notna()])}
    return values.map(lambda v: table.get(v, "") if v is not None and v == v else fn(None))


def department_names(claims: pd.DataFrame, people: pd.DataFrame) -> pd.Series:
    """``department_code`` → the department name most of its claims' applicants carry."""
    names = people.drop_duplicates("person_id").set_index("person_id")["department"]
    pairs = pd.DataFrame(
        {"code": claims["department_code"], "name": claims["applicant_id"].map(names)}
    ).dropna()
    if pairs.empty:
        return pd.Series(dtype=object)
    counts = pairs.groupby(["code", "name"]).size().reset_index(name="n")
    best = counts.sort_values(["code", "n", "name"], ascending=[True, False, True]).drop_duplicates("code")
    return best.set_index("code")["name"]


def pair_labels(ex: pd.DataFrame) -> pd.Series:
    """``oa → finance``: the pair of the chain that found each exception ("" where not recorded)."""
    if "left_system" not in ex.columns or "right_system" not in ex.columns:
        return pd.Series([""] * len(ex), index=ex.index, dtype=object)
    left = ex["left_system"].astype(object).where(ex["left_system"].notna(), "")
    right = ex["right_system"].astype(object).where(ex["right_system"].notna(), "")
    return pd.Series(
        [f"{a} → {b}" if a and b else "" for a, b in zip(left, right, strict=True)],
        index=ex.index,
        dtype=object,
    )


PAIR_FIELDS = ("matched", "matched_fen", "unmatched", "unmatched_fen", "differing", "differing_fen")


def pair_summary(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Per pair of the chain (``stats["pairs"]``, oafin.engine.chain): matched, no counterpart,
    differing, each a count and an amount in fen (None where the engine does not measure it)."""
    out = []
    for pair in stats.get("pairs") or []:
        row: dict[str, Any] = {"pair": f"{pair.get('left_system')} → {pair.get('right_system')}"}
        for name in PAIR_FIELDS:
            value = pair.get(name)
            row[name] = None if value is None else int(value)
        out.append(row)
    return out


def enrich_exceptions(
    exceptions: pd.DataFrame,
    claims: pd.DataFrame,
    docs: pd.DataFrame,
    people: pd.DataFrame,
    reviews: pd.DataFrame,
    as_of: datetime,
    budgets: pd.DataFrame | None = None,
    quarantine_dates: pd.Series | None = None,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The exceptions with what a reviewer needs beside them (see the module docstring).

    ``quarantine_dates``: business key → the quarantined record's business date (``scope_at``),
    so CONTRACT_VIOLATION and UNMAPPED_CODE rows are dated by their record, not by the run;
    ``history``: the lifecycle's events (``oafin.warehouse.lifecycle.exception_event``)."""
    ex = exceptions.reset_index(drop=True).copy()
    for col in (
        "claim_no",
        "doc_no",
        "invoice_no",
        "budget_code",
        "person_id",
        "amount_fen",
        "detail",
        "comment",
    ):
        if col not in ex.columns:
            ex[col] = None
    ex = ex.drop(columns=["comment"])
    names = people.drop_duplicates("person_id").set_index("person_id")
    ex["person_name"] = ex["person_id"].map(names["name"])
    ex["department"] = ex["person_id"].map(names["department"])
    if budgets is not None and len(budgets):
        # no person behind it (a budget line): the budget's department, named as its people name it
        code_name = department_names(claims, people)
        by_budget = budgets.drop_duplicates("budget_code").set_index("budget_code")["department_code"]
        ex["department"] = ex["department"].fillna(ex["budget_code"].map(by_budget).map(code_name))

    claim_date = claims["approved_at"].fillna(claims["submitted_at"])
    by_claim = pd.Series(claim_date.to_numpy(), index=norm_keys(claims["claim_no"])).groupby(level=0).min()
    doc_date = (
        docs["paid_at"].where(docs["doc_type"] == "payment", docs["posted_at"]).fillna(docs["posted_at"])
    )
    by_doc = pd.Series(doc_date.to_numpy(), index=norm_keys(docs["doc_no"])).groupby(level=0).min()
    event = norm_keys(ex["claim_no"]).map(by_claim)
    event = event.fillna(norm_keys(ex["doc_no"]).map(by_doc))
    # invoice findings: the date of the claim the invoice was used on
    inv_claim = pd.Series(
        [invoice_claim_no(k, d) for k, d in zip(ex["exception_type"], ex["detail"], strict=True)],
        index=ex.index,
        dtype=object,
    )
    event = event.fillna(norm_keys(inv_claim).map(by_claim))
    if quarantine_dates is not None and len(quarantine_dates):
        q = pd.to_datetime(quarantine_dates, utc=True)
        q = pd.Series(q.to_numpy(), index=norm_keys(pd.Series(quarantine_dates.index))).groupby(level=0).min()
        event = event.fillna(norm_keys(ex["claim_no"]).map(q)).fillna(norm_keys(ex["doc_no"]).map(q))
    first_seen = pd.to_datetime(ex["first_seen"], utc=True)
    event = pd.to_datetime(event, utc=True).fillna(first_seen)
    ex["event_at"] = event
    ex["age_days"] = ((pd.Timestamp(as_of) - event).dt.total_seconds() // 86400).astype("Int64")
    ex["age_bucket"] = ex["age_days"].map(age_bucket)
    ex["reason_zh"] = ex["exception_type"].map(lambda k: reason_of(k)[0])
    ex["reason_en"] = ex["exception_type"].map(lambda k: reason_of(k)[1])
    ex["type_name"] = ex["exception_type"].map(type_name)
    ex["type_label"] = ex["exception_type"].map(type_label)
    ex["pair"] = pair_labels(ex)
    ex["amount_fen"] = pd.array(ex["amount_fen"], dtype="Int64")  # type: ignore[call-overload]  # stubs: a Series is valid input
    person = _person_text(names)
    fen = ex["amount_fen"].astype(object).where(ex["amount_fen"].notna(), None)
    ex["detail_text"] = [
        redact_text(detail_sentence(k, d, a, person) or humanize_detail(d)) or ""
        for k, d, a in zip(ex["exception_type"], ex["detail"], fen, strict=True)
    ]
    risk = [risk_of(k, a, d) for k, a, d in zip(ex["exception_type"], fen, ex["detail"], strict=True)]
    ex["risk_fen"] = pd.array([r[0] for r in risk], dtype="Int64")
    ex["priority"] = [r[1] for r in risk]
    ex["risk_category"] = [r[2] for r in risk]
    comments = reviews.set_index("exception_id")["comment"] if len(reviews) else pd.Series(dtype=object)
    ex["comment"] = ex["exception_id"].map(comments)
    ex["history"] = ex["exception_id"].map(history_texts(history)) if history is not None else None
    # What finance acts on first: money already paid out wrongly, then the largest sum at risk,
    # then the oldest; type order and keys only break ties (a stable, reproducible list).
    order = {k: i for i, k in enumerate(EXCEPTION_TYPES)}
    ex["_o"] = ex["exception_type"].map(order).fillna(len(order))
    ex["_r"] = -ex["risk_fen"].fillna(0).astype("int64")
    ex["_a"] = -ex["age_days"].fillna(0).astype("int64")
    ex = ex.sort_values(
        ["priority", "_r", "_a", "_o", "claim_no", "doc_no", "invoice_no", "budget_code"],
        na_position="first",
        kind="stable",
    )
    return ex.drop(columns=["_o", "_r", "_a"]).reset_index(drop=True)


def _person_text(names: pd.DataFrame) -> Any:
    """person id → ``张三（财务部）``; an id the people table lacks is shown masked."""

    def text(pid: str | None) -> str:
        if not pid:
            return "（未知）"
        key = str(pid).strip()
        if key in names.index:
            name, dept = names.at[key, "name"], names.at[key, "department"]
            return f"{name!s}（{dept}）" if isinstance(dept, str) and dept else str(name)
        return redact_text(key) or key

    return text


def history_texts(history: pd.DataFrame | None) -> pd.Series:
    """exception id → its events, oldest first, one line each (``2026-11-05 重新打开：…``)."""
    if history is None or history.empty:
        return pd.Series(dtype=object)
    rank = history["event"].map({"review": 0, "resolved": 1, "reopened": 2}).fillna(3)
    h = history.assign(_rank=rank).sort_values(["exception_id", "at", "_rank"], kind="stable")
    at = pd.to_datetime(h["at"], utc=True).dt.tz_convert(SHANGHAI).dt.strftime("%Y-%m-%d")
    lines = at + " " + h["note"].fillna("").map(lambda t: redact_text(t) or "")
    return lines.groupby(h["exception_id"]).agg("\n".join)


def summarise(ex: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Counts and amounts by type, counts by type and age bucket, top departments by amount."""
    amount = ex["amount_fen"].fillna(0).astype("int64").abs()
    risk = (ex["risk_fen"] if "risk_fen" in ex else pd.Series(0, index=ex.index)).fillna(0).astype("int64")
    g = ex.assign(abs_fen=amount, risk=risk).groupby("exception_type")
    known = [k for k in EXCEPTION_TYPES if k in g.groups]
    known.sort(key=lambda k: risk_category(k)[0])  # by what finance acts on first, then type order
    by_type = pd.DataFrame(
        {"count": g.size(), "amount_fen": g["abs_fen"].sum(), "risk_fen": g["risk"].sum()}
    ).reindex(known + sorted({str(k) for k in g.groups} - set(EXCEPTION_TYPES)))
    by_type = by_type.rename_axis("exception_type").reset_index()
    by_age = (
        pd.crosstab(ex["exception_type"], ex["age_bucket"]).reindex(columns=list(AGE_LABELS), fill_value=0)
        if len(ex)
        else pd.DataFrame(columns=list(AGE_LABELS))
    )
    by_age = (
        by_age.reindex(by_type["exception_type"], fill_value=0).rename_axis("exception_type").reset_index()
    )
    by_age.columns.name = None
    dep = ex.assign(abs_fen=amount, risk=risk, department=ex["department"].fillna("(unknown 未知)")).groupby(
        "department"
    )
    top = pd.DataFrame(
        {"count": dep.size(), "amount_fen": dep["abs_fen"].sum(), "risk_fen": dep["risk"].sum()}
    ).rename_axis("department")
    top = top.reset_index().sort_values(["risk_fen", "department"], ascending=[False, True]).head(10)
    return by_type, by_age, top.reset_index(drop=True)


def build_report_data(
    engine: Engine,
    *,
    period: str,
    company_code: str,
    as_of: datetime,
    exceptions: pd.DataFrame,
    stats: dict[str, Any],
) -> ReportData:
    """Read the standard tables and reviews, and compute every number the reports show."""
    claims = _of_company(_read(engine, "expense_claim"), company_code)
    docs = _of_company(_read(engine, "finance_doc"), company_code)
    people = _read(engine, "person")
    budgets = _read(engine, "budget")
    with engine.connect() as conn:
        reviews = read_table(conn, exception_review)
        q = conn.execute(select(quarantine.c.business_key, quarantine.c.scope_at)).all()
        history = read_events(conn, exceptions["exception_id"].tolist()) if len(exceptions) else None
    quarantine_dates = pd.Series([r[1] for r in q], index=[r[0] for r in q], dtype=object)
    return assemble_report_data(
        period=period,
        company_code=company_code,
        as_of=as_of,
        exceptions=exceptions,
        stats=stats,
        claims=claims,
        docs=docs,
        people=people,
        reviews=reviews,
        matches=read_matches(engine, company_code),
        budgets=budgets,
        quarantine_dates=quarantine_dates,
        history=history,
    )


def assemble_report_data(
    *,
    period: str,
    company_code: str,
    as_of: datetime,
    exceptions: pd.DataFrame,
    stats: dict[str, Any],
    claims: pd.DataFrame,
    docs: pd.DataFrame,
    people: pd.DataFrame,
    reviews: pd.DataFrame,
    matches: pd.DataFrame,
    budgets: pd.DataFrame | None = None,
    quarantine_dates: pd.Series | None = None,
    history: pd.DataFrame | None = None,
) -> ReportData:
    """The report's numbers from standard frames (``to_frame`` dtypes) and the engine's stored
    links (``matches``: ``claim_id``, ``doc_id``, ...); pure, for tests and benches."""
    ex = enrich_exceptions(
        exceptions, claims, docs, people, reviews, as_of, budgets, quarantine_dates, history
    )
    by_type, by_age, top = summarise(ex)
    cycles = cycle_times(claims, docs, as_of, matches)
    trend = cycle_trend(cycles, period)
    current = cycle_stats(cycles.loc[cycles["period"] == period, "cycle_days"])

    scoped = claims.loc[_scope(claims, Period.parse(period))]
    approved = scoped.loc[scoped["status"] == "approved"]
    is_matched = approved["claim_id"].isin(matched_claim_ids(approved, docs, matches))
    fen = approved["amount_fen"].fillna(0).astype("int64")
    ex_fen = ex["amount_fen"].fillna(0).astype("int64")
    risk = ex["risk_fen"].fillna(0).astype("int64")
    kpis = {
        "auto_match_rate": stats.get("auto_match_rate"),
        "data_accuracy": stats.get("data_accuracy"),
        "exceptions": len(ex),
        "exceptions_open": int(ex["status"].isin(("open", "reopened")).sum()),
        # the sum of the claims' and documents' amounts behind the exceptions (not money at risk)
        "exceptions_amount_fen": int(ex_fen.abs().sum()),
        # money at risk (labels_zh.RISK_DEFINITIONS), apart from the control findings
        "risk_fen": int(risk.sum()),
        "risk_paid_out_fen": int(risk[ex["priority"] == PAID_OUT[0]].sum()),
        "risk_unapproved_fen": int(risk[ex["priority"] == UNAPPROVED[0]].sum()),
        "risk_over_limit_fen": int(risk[ex["priority"] == OVER_LIMIT[0]].sum()),
        "risk_unpaid_fen": int(risk[ex["priority"] == UNPAID[0]].sum()),
        "exceptions_with_risk": int((risk > 0).sum()),
        "control_findings": int((ex["priority"] == CONTROL[0]).sum()),
        "exceptions_reopened": int((ex["status"] == "reopened").sum()),
        "claims_in_scope": int(len(scoped)),
        "approved_in_scope": int(len(approved)),
        "matched_claims": int(is_matched.sum()),
        "matched_fen": int(fen[is_matched].sum()),
        "unmatched_claims": int((~is_matched).sum()),
        "unmatched_fen": int(fen[~is_matched].sum()),
        "missing_in_oa_fen": int(ex_fen[ex["exception_type"] == "MISSING_IN_OA"].sum()),
        "docs_in_scope": stats.get("docs_in_scope"),
        "cycle_n": current["n"],
        "cycle_median_days": current["median_days"],
        "cycle_p90_days": current["p90_days"],
    }
    return ReportData(
        period=period,
        company_code=company_code,
        as_of=as_of,
        exceptions=ex,
        stats=stats,
        kpis=kpis,
        by_type=by_type,
        by_age=by_age,
        top_departments=top,
        cycle_trend=trend,
    )


def shown_exceptions(exceptions: pd.DataFrame) -> pd.DataFrame:
    """The one definition of "the run's exceptions" every count uses (CLI, log, workbook, HTML,
    summary.json, KPIs): what the run found, less those a reviewer set to ``ignored``."""
    return exceptions.loc[exceptions["status"] != "ignored"]


def exceptions_of_run(engine: Engine, period: str, company_code: str, as_of: datetime) -> pd.DataFrame:
    """The exceptions a run of ``period`` found, as the warehouse holds them (``last_seen == as_of``)."""
    with engine.connect() as conn:
        frame = read_table(conn, exception, exception.c.period <= period)
    frame = frame.loc[frame["company_code"] == company_code]
    last_seen = pd.to_datetime(frame["last_seen"], utc=True)
    return frame.loc[last_seen == pd.Timestamp(as_of)].reset_index(drop=True)


def relative_link(target: Path, base: Path) -> str:
    """``target`` relative to the report folder ``base``, with forward slashes, for an href."""
    return target.resolve().relative_to(base.resolve()).as_posix()
