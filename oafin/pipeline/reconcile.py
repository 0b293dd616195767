"""Reconcile a period from the warehouse's standard tables; record its exceptions and matches.

Reads what standardisation wrote (claims, invoices, finance documents, quarantine) for the run's
company, the code tables (people and their roles, the approval matrix, budgets) and the
``[reconcile]`` settings; writes the exception lifecycle and the ``match`` table of the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_

from data_contracts.frames import to_frame
from data_contracts.invoices import check_invoices
from mappings.code_tables import CodeTables
from oafin.config import Settings
from oafin.engine.chain import ChainLink, reconcile_chain
from oafin.engine.reconcile import ReconcileParams, ReconcileResult, References, reconcile
from oafin.periods import Period
from oafin.pipeline.runtime import code_tables
from oafin.warehouse.lifecycle import record_exceptions
from oafin.warehouse.schema import STANDARD_TABLES, match, quarantine
from oafin.warehouse.store import read_table, sync_rows


@dataclass
class PeriodResult:
    period: str
    as_of: datetime
    company_code: str
    exceptions: pd.DataFrame  # this run's exceptions with their lifecycle columns
    stats: dict[str, Any]


@dataclass
class Frames:
    claims: pd.DataFrame
    docs: pd.DataFrame
    quarantined: pd.DataFrame
    invoices: pd.DataFrame


def _company(frame: pd.DataFrame, company_code: str | None) -> pd.DataFrame:
    """Rows of one company (rows that name none are taken to be the run's)."""
    if company_code is None or frame.empty:
        return frame.reset_index(drop=True)
    keep = frame["company_code"].isna() | (frame["company_code"] == company_code)
    return frame.loc[keep].reset_index(drop=True)


class ScopeError(RuntimeError):
    """A source's records are in the warehouse but none is of the company the source is configured for."""


def _system_of(frame: pd.DataFrame, id_column: str) -> pd.Series:
    if id_column == "system":
        return frame["system"].astype(str)
    return frame[id_column].astype(str).str.split(":", n=1).str[0]


def _scoped(
    frame: pd.DataFrame, id_column: str, scopes: Mapping[str, str], fallback: str | None
) -> pd.DataFrame:
    """Rows each in the scope of its own source's company_code (``scopes``: system → company_code);
    rows that name no company are taken to be their source's."""
    if frame.empty:
        return frame.reset_index(drop=True)
    wanted = _system_of(frame, id_column).map(lambda s: scopes.get(s, fallback))
    keep = frame["company_code"].isna() | wanted.isna() | (frame["company_code"] == wanted)
    return frame.loc[keep].reset_index(drop=True)


def check_scope(
    frames: Sequence[tuple[pd.DataFrame, pd.DataFrame, str]], sources: Sequence[tuple[str, str, str]]
) -> None:
    """Fail loudly when a source has records but none in its company's scope (a wrong
    company_code in the config would otherwise reconcile an empty month and report it clean).

    ``frames``: (before scoping, after scoping, the column naming the row's system or its id);
    ``sources``: (name, system, company_code) per source.
    """
    for name, system, code in sources:
        seen: set[str] = set()
        total = kept = 0
        for before, after, id_column in frames:
            if before.empty:
                continue
            mine = _system_of(before, id_column) == system
            total += int(mine.sum())
            seen |= {str(v) for v in before.loc[mine, "company_code"].dropna().unique()}
            if not after.empty:
                kept += int((_system_of(after, id_column) == system).sum())
        if total and not kept:
            raise ScopeError(
                f"source {name!r} ({system}): {total} records in the warehouse but none of company_code "
                f"{code!r}; company codes seen: {', '.join(sorted(seen)) or 'none'}. Check the source's "
                "company_code in the config (or the mapping of its company field)"
            )


def load_frames(
    engine: Engine,
    company_code: str | None = None,
    *,
    sources: Sequence[tuple[str, str, str]] = (),
) -> Frames:
    """The standard frames of one company, read from the warehouse (``build_frames`` says how they
    are scoped)."""
    with engine.connect() as conn:
        claims = read_table(conn, STANDARD_TABLES["expense_claim"])
        docs = read_table(conn, STANDARD_TABLES["finance_doc"])
        invoices = read_table(conn, STANDARD_TABLES["claim_invoice"])
        q = read_table(conn, quarantine)
    return build_frames(
        claims.to_dict("records"),
        docs.to_dict("records"),
        invoices.to_dict("records"),
        q.to_dict("records"),
        company_code,
        sources=sources,
    )


def build_frames(
    claims: Sequence[Mapping[Any, Any]],
    docs: Sequence[Mapping[Any, Any]],
    invoices: Sequence[Mapping[Any, Any]],
    quarantined: Sequence[Mapping[Any, Any]],
    company_code: str | None = None,
    *,
    sources: Sequence[tuple[str, str, str]] = (),
) -> Frames:
    """The engine's input frames from the standard and quarantine rows (as stored): pure.

    ``sources`` ((name, system, company_code) per source): each source's rows are scoped by its own
    company_code and a source with records but none in scope raises ``ScopeError``; without it,
    every row is scoped by ``company_code``."""
    claims_f = to_frame("expense_claim", claims)
    docs_f = to_frame("finance_doc", docs)
    q = pd.DataFrame(list(quarantined), columns=[c.name for c in quarantine.columns])
    if sources:
        scopes = {system: code for _, system, code in sources}
        pairs = [
            (frame, _scoped(frame, column, scopes, company_code), column)
            for frame, column in ((claims_f, "claim_id"), (docs_f, "doc_id"), (q, "system"))
        ]
        check_scope(pairs, sources)
        claims_f, docs_f, q = (after for _, after, _ in pairs)
    else:
        claims_f = _company(claims_f, company_code)
        docs_f = _company(docs_f, company_code)
        q = _company(q, company_code)
    invoices_f = to_frame("claim_invoice", invoices)
    invoices_f = invoices_f.loc[invoices_f["claim_id"].isin(claims_f["claim_id"])].reset_index(drop=True)
    q["scope_at"] = pd.to_datetime(q["scope_at"], utc=True)
    return Frames(claims_f, docs_f, q, invoices_f)


def params_from(settings: Settings, period: Period, as_of: datetime) -> ReconcileParams:
    cfg = settings.reconcile
    return ReconcileParams(
        period=period,
        as_of=as_of,
        amount_tolerance_fen=cfg.amount_tolerance_fen,
        payment_sla_days=cfg.payment_sla_days,
        date_window_days=cfg.date_window_days,
    )


def chain_links(settings: Settings) -> list[ChainLink]:
    """The config's chain as the engine sees it: each source's name, system and role, OA first."""
    return [ChainLink(s.name, s.system, s.role) for s in settings.chain_sources]


def run_engine(frames: Frames, settings: Settings, period: Period, as_of: datetime) -> ReconcileResult:
    return reconcile_frames(
        frames, params_from(settings, period, as_of), code_tables(settings), chain=chain_links(settings)
    )


def reconcile_frames(
    frames: Frames, params: ReconcileParams, tables: CodeTables, *, chain: Sequence[ChainLink] = ()
) -> ReconcileResult:
    """The engine over the frames, with the code tables as its references: pure.

    With ``chain`` (the config's sources in order), every pair of the chain is reconciled and each
    exception names its pair (``oafin.engine.chain``); without, the frames are one OA against one
    finance system, as before chains.
    """
    references = References(
        people=tables.people, approval_matrix=tables.approval_matrix, budgets=tables.budgets
    )
    if chain:
        return reconcile_chain(
            frames.claims,
            frames.docs,
            params,
            chain,
            frames.quarantined,
            invoices=frames.invoices,
            invalid_invoices=check_invoices(frames.invoices),
            references=references,
        )
    return reconcile(
        frames.claims,
        frames.docs,
        params,
        frames.quarantined,
        invoices=frames.invoices,
        invalid_invoices=check_invoices(frames.invoices),
        references=references,
    )


def store_matches(conn: Connection, matches: pd.DataFrame, *, period: str, company_code: str) -> None:
    """Make the period's and company's rows of ``match`` exactly this run's matches."""
    rows = [
        {"period": period, "company_code": company_code, **rec}
        for rec in matches[["claim_id", "doc_id", "match_pass", "rule"]].to_dict("records")
    ]
    sync_rows(conn, match, rows, and_(match.c.period == period, match.c.company_code == company_code))


def reconcile_period(engine: Engine, settings: Settings, period: Period, as_of: datetime) -> PeriodResult:
    company = settings.company_code
    sources = [(s.name, s.system, s.company_code) for s in settings.chain_sources]
    frames = load_frames(engine, company, sources=sources)
    result = run_engine(frames, settings, period, as_of)
    with engine.begin() as conn:
        recorded = record_exceptions(
            conn, result.exceptions, period=period.name, as_of=as_of, company_code=company
        )
        store_matches(conn, result.matches, period=period.name, company_code=company)
    claims, docs, q = frames.claims, frames.docs, frames.quarantined
    total = len(claims) + len(docs) + len(q)
    stats = {
        "period": period.name,
        "company_code": company,
        "as_of": as_of.isoformat(),
        **result.stats,
        # one count everywhere (reporting.context.shown_exceptions): found, less those ignored
        "exceptions": int((recorded["status"] != "ignored").sum()),
        "exceptions_ignored": int((recorded["status"] == "ignored").sum()),
        "records_valid": len(claims) + len(docs),
        "records_quarantined": len(q),
        "data_accuracy": round((len(claims) + len(docs)) / total, 4) if total else None,
    }
    return PeriodResult(period.name, as_of, company, recorded, stats)
