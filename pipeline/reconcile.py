"""Reconcile a period from the warehouse's standard tables and record its exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from data_contracts.frames import to_frame
from engine.period import Period
from engine.reconcile import ReconcileParams, reconcile
from oafin.config import Settings
from warehouse.lifecycle import record_exceptions
from warehouse.schema import STANDARD_TABLES, quarantine
from warehouse.store import read_table


@dataclass
class PeriodResult:
    period: str
    as_of: datetime
    company_code: str
    exceptions: pd.DataFrame  # this run's exceptions with their lifecycle columns
    stats: dict[str, Any]


def load_frames(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        claims = read_table(conn, STANDARD_TABLES["expense_claim"])
        docs = read_table(conn, STANDARD_TABLES["finance_doc"])
        q = read_table(conn, quarantine)
    claims = to_frame("expense_claim", claims.to_dict("records"))
    docs = to_frame("finance_doc", docs.to_dict("records"))
    q["scope_at"] = pd.to_datetime(q["scope_at"], utc=True)
    return claims, docs, q


def reconcile_period(engine: Engine, settings: Settings, period: Period, as_of: datetime) -> PeriodResult:
    claims, docs, q = load_frames(engine)
    cfg = settings.reconcile
    params = ReconcileParams(
        period=period,
        as_of=as_of,
        amount_tolerance_fen=cfg.amount_tolerance_fen,
        payment_sla_days=cfg.payment_sla_days,
        date_window_days=cfg.date_window_days,
    )
    result = reconcile(claims, docs, params, q)
    company = settings.oa.company_code
    with engine.begin() as conn:
        recorded = record_exceptions(
            conn, result.exceptions, period=period.name, as_of=as_of, company_code=company
        )
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
