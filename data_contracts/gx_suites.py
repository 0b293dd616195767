"""Great Expectations over the batch as a whole: the standardised tables and the reconciliation result.

pandera (``data_contracts.models``) holds each record to its contract; these suites check what no
single record can: row counts against what was landed from the source, totals that must tie out
between the engine, the warehouse and the reports, and freshness. Each run builds a Data Docs
site under ``<reports>/<period>/data_docs/`` (an ephemeral GX context: no ``gx/`` folder appears
anywhere else).

Checked against great_expectations 1.24.1 with pandas 3.1: the fluent API below works; comparing
a tz-aware timestamp column with a ``date`` or date string does not (GX raises "Cannot compare
Timestamp with datetime.date"), so bounds are passed as aware ``datetime`` objects.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts.frames import to_frame
from data_contracts.gx_offline import make_offline
from oafin.standard import CLAIM_STATUSES, DOC_STATUSES, DOC_TYPES, EXCEPTION_STATUSES, EXCEPTION_TYPES

FRESHNESS_DAYS = 7  # the newest record of a source must be at most this old at as_of
SITE_NAME = "oafin"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One expectation: its GX class name and keyword arguments."""

    expectation: str
    kwargs: dict[str, Any]


def standard_checks(entity: str, landed: int, quarantined: int, as_of: datetime) -> list[Check]:
    """A standard table holds every landed record that is not quarantined, unique, in range, fresh."""
    fresh_from = as_of - timedelta(days=FRESHNESS_DAYS)
    common = [Check("ExpectTableRowCountToEqual", {"value": landed - quarantined})]
    if entity == "expense_claim":
        return [
            *common,
            Check("ExpectColumnValuesToBeUnique", {"column": "claim_id"}),
            Check("ExpectColumnValuesToNotBeNull", {"column": "claim_no"}),
            Check("ExpectColumnValuesToNotBeNull", {"column": "amount_fen"}),
            Check("ExpectColumnValuesToBeBetween", {"column": "amount_fen", "min_value": 1}),
            Check("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": list(CLAIM_STATUSES)}),
            Check(
                "ExpectColumnMaxToBeBetween",
                {"column": "submitted_at", "min_value": fresh_from, "max_value": as_of},
            ),
            Check("ExpectColumnMaxToBeBetween", {"column": "approved_at", "max_value": as_of}),
        ]
    return [
        *common,
        Check("ExpectColumnValuesToBeUnique", {"column": "doc_id"}),
        Check("ExpectColumnValuesToNotBeNull", {"column": "doc_no"}),
        Check("ExpectColumnValuesToBeBetween", {"column": "amount_fen", "min_value": 1}),
        Check("ExpectColumnValuesToBeInSet", {"column": "doc_type", "value_set": list(DOC_TYPES)}),
        Check("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": list(DOC_STATUSES)}),
        Check(
            "ExpectColumnMaxToBeBetween", {"column": "dated_at", "min_value": fresh_from, "max_value": as_of}
        ),
    ]


def result_checks(warehouse_rows: int, warehouse_fen: int) -> list[Check]:
    """The reported exceptions are exactly the warehouse's: same rows, same total, valid codes."""
    return [
        Check("ExpectTableRowCountToEqual", {"value": warehouse_rows}),
        Check("ExpectColumnValuesToBeUnique", {"column": "exception_id"}),
        Check(
            "ExpectColumnValuesToBeInSet", {"column": "exception_type", "value_set": list(EXCEPTION_TYPES)}
        ),
        Check("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": list(EXCEPTION_STATUSES)}),
        Check(
            "ExpectColumnSumToBeBetween",
            {"column": "abs_fen", "min_value": warehouse_fen, "max_value": warehouse_fen},
        ),
    ]


TOTALS_CHECKS = [
    # the report's matched + unmatched claims = the engine's approved claims in scope
    Check(
        "ExpectMulticolumnSumToEqual",
        {"column_list": ["matched_claims", "unmatched_claims", "neg_engine_approved"], "sum_total": 0},
    ),
    # the report's independent count of matched claims and claims in scope equal the engine's
    Check(
        "ExpectColumnPairValuesToBeEqual", {"column_A": "matched_claims", "column_B": "engine_matched_claims"}
    ),
    Check(
        "ExpectColumnPairValuesToBeEqual",
        {"column_A": "claims_in_scope", "column_B": "engine_claims_in_scope"},
    ),
]


def totals_frame(kpis: dict[str, Any], stats: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "matched_claims": kpis["matched_claims"],
                "unmatched_claims": kpis["unmatched_claims"],
                "neg_engine_approved": -int(stats.get("approved_in_scope", -1)),
                "engine_matched_claims": stats.get("approved_matched", -1),
                "claims_in_scope": kpis["claims_in_scope"],
                "engine_claims_in_scope": stats.get("claims_in_scope", -1),
            }
        ]
    ).astype("int64")


@dataclass(frozen=True)
class StandardTable:
    """One standard table as the warehouse holds it, and how many records were landed and held back."""

    rows: pd.DataFrame  # the table's rows as read (``oafin.warehouse.store.read_table``)
    landed: int  # raw records landed from the source
    quarantined: int  # of those, quarantined


def _standard_frame(entity: str, rows: pd.DataFrame) -> pd.DataFrame:
    frame = to_frame(entity, rows.to_dict("records"))
    if entity == "finance_doc":
        frame["dated_at"] = frame["paid_at"].fillna(frame["posted_at"])
    return frame


def build_batches(
    tables: dict[str, StandardTable],
    *,
    as_of: datetime,
    exceptions: pd.DataFrame,
    kpis: dict[str, Any],
    stats: dict[str, Any],
    warehouse_exceptions: pd.DataFrame,
) -> dict[str, tuple[pd.DataFrame, list[Check]]]:
    """Suite name → (batch, checks) for one run. ``tables``: entity → its standard table (the
    caller reads the warehouse; this module never does). ``exceptions`` is what the reports show;
    ``warehouse_exceptions`` is what the warehouse holds for the same run."""
    batches: dict[str, tuple[pd.DataFrame, list[Check]]] = {}
    for entity, table in tables.items():
        batches[f"standard-{entity}"] = (
            _standard_frame(entity, table.rows),
            standard_checks(entity, table.landed, table.quarantined, as_of),
        )
    shown = exceptions[["exception_id", "exception_type", "status", "amount_fen"]].copy()
    shown["abs_fen"] = shown["amount_fen"].fillna(0).astype("int64").abs()
    wh_fen = int(
        pd.array(warehouse_exceptions["amount_fen"], dtype="Int64")  # type: ignore[call-overload]  # stubs: a Series is valid input
        .fillna(0)
        .astype("int64")
        .__abs__()
        .sum()
    )
    batches["reconciliation-exceptions"] = (
        shown.drop(columns=["amount_fen"]),
        result_checks(len(warehouse_exceptions), wh_fen),
    )
    batches["reconciliation-totals"] = (totals_frame(kpis, stats), TOTALS_CHECKS)
    return batches


def import_gx() -> None:
    """Import Great Expectations (about nine tenths of ``run_suites``' time on the demo), so that a
    caller can do it before it is needed (``oafin demo`` while Prefect's server starts)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics from a finance run
    import great_expectations  # noqa: F401
    from great_expectations.core.run_identifier import RunIdentifier  # noqa: F401
    from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: F401


def run_suites(
    batches: dict[str, tuple[pd.DataFrame, list[Check]]], docs_dir: Path, *, run_name: str, run_time: datetime
) -> dict[str, Any]:
    """Validate every batch with Great Expectations and build the Data Docs site in ``docs_dir``.

    Returns ``success``, ``evaluated``, ``passed``, ``failures`` (one readable line each),
    ``data_docs`` (the site's index.html) and ``suites``. Errors inside an expectation count
    as failures, with GX's message.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics from a finance run
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if docs_dir.exists():
        shutil.rmtree(docs_dir)  # the site shows this run only
    docs_dir.mkdir(parents=True)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = ctx.data_sources.add_pandas("oafin")
    definitions = []
    frames: dict[str, pd.DataFrame] = {}
    for name, (frame, checks) in batches.items():
        asset = source.add_dataframe_asset(name)
        batch_def = asset.add_batch_definition_whole_dataframe(f"{name}-batch")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for check in checks:
            suite.add_expectation(getattr(gx.expectations, check.expectation)(**check.kwargs))
        definitions.append(
            ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
        )
        frames[name] = frame

    evaluated = passed = 0
    failures: list[str] = []
    suites: dict[str, bool] = {}
    run_id = RunIdentifier(run_name=run_name, run_time=run_time)
    for definition in definitions:
        result = definition.run(batch_parameters={"dataframe": frames[definition.name]}, run_id=run_id)
        suites[definition.name] = bool(result.success)
        for r in result.results:
            evaluated += 1
            if r.success:
                passed += 1
                continue
            cfg = r.expectation_config
            kwargs = cfg.kwargs if cfg is not None else {}
            column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A") or ""
            observed = r.result.get("observed_value", r.result.get("unexpected_count"))
            error = (r.exception_info or {}).get("exception_message")
            failures.append(
                f"{definition.name}: {cfg.type if cfg is not None else '?'} {column} observed {observed}"
                + (f" (error: {error})" if error else "")
            )
    ctx.build_data_docs(site_names=[SITE_NAME])
    make_offline(docs_dir)  # vendored CSS/JS instead of CDNs: the pages render offline
    index = docs_dir / "index.html"
    # each suite's validation page, which reports link directly as well as through the index
    pages = {
        name: str(next(iter(sorted((docs_dir / "validations" / name).rglob("*.html"))), ""))
        for name in batches
        if (docs_dir / "validations" / name).exists()
    }
    return {
        "pages": pages,
        "success": not failures,
        "evaluated": evaluated,
        "passed": passed,
        "failures": failures,
        "suites": suites,
        "data_docs": str(index) if index.exists() else None,
    }
