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


def load_frames(engine: Engine, company_code: str | None = None) -> Frames:
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
    )


def build_frames(
    claims: Sequence[Mapping[Any, Any]],
    docs: Sequence[Mapping[Any, Any]],
    invoices: Sequence[Mapping[Any, Any]],
    quarantined: Sequence[Mapping[Any, Any]],
    company_code: str | None = None,
) -> Frames:
    """The engine's input frames from the standard and quarantine rows (as stored): pure."""
    claims_f = _company(to_frame("expense_claim", claims), company_code)
    docs_f = _company(to_frame("finance_doc", docs), company_code)
    invoices_f = to_frame("claim_invoice", invoices)
    invoices_f = invoices_f.loc[invoices_f["claim_id"].isin(claims_f["claim_id"])].reset_index(drop=True)
    q = _company(pd.DataFrame(list(quarantined), columns=[c.name for c in quarantine.columns]), company_code)
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


def run_engine(frames: Frames, settings: Settings, period: Period, as_of: datetime) -> ReconcileResult:
    return reconcile_frames(frames, params_from(settings, period, as_of), code_tables(settings))


def reconcile_frames(frames: Frames, params: ReconcileParams, tables: CodeTables) -> ReconcileResult:
    """The engine over the frames, with the code tables as its references: pure."""
    return reconcile(
        frames.claims,
        frames.docs,
        params,
        frames.quarantined,
        invoices=frames.invoices,
        invalid_invoices=check_invoices(frames.invoices),
        references=References(
            people=tables.people, approval_matrix=tables.approval_matrix, budgets=tables.budgets
        ),
    )


def store_matches(conn: Connection, matches: pd.DataFrame, *, period: str, company_code: str) -> None:
    """Make the period's and company's rows of ``match`` exactly this run's matches."""
    rows = [
        {"period": period, "company_code": company_code, **rec}
        for rec in matches[["claim_id", "doc_id", "match_pass", "rule"]].to_dict("records")
    ]
    sync_rows(conn, match, rows, and_(match.c.period == period, match.c.company_code == company_code))


def reconcile_period(engine: Engine, settings: Settings, period: Period, as_of: datetime) -> PeriodResult:
    company = settings.oa.company_code
    frames = load_frames(engine, company)
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
        "records_valid": len(claims) + len(docs),
        "records_quarantined": len(q),
        "data_accuracy": round((len(claims) + len(docs)) / total, 4) if total else None,
    }
    return PeriodResult(period.name, as_of, company, recorded, stats)
