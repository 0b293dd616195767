"""The daily run's steps, in their one order: plan → extract → reference tables → standardize and
validate each source → reconcile → report.

Both the Prefect flow (``flows.daily``) and the plain run (``oafin.run.run_plain``) drive their
steps through ``run_daily``; they differ only in how a step runs (a Prefect task with retries and
caching, or a plain call), which ``DailySteps`` abstracts. No source or system is named here:
the sources are the config's chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from oafin.config import Settings


class DailySteps(Protocol):
    """How each step runs. ``extract`` and ``standardize`` receive every item at once so an
    implementation may run them concurrently; each returns one result per item, in order."""

    def plan(self) -> list[dict[str, Any]]:
        """Per (source, kind): what to read (``ExtractPlan.as_dict()``)."""
        ...

    def extract(self, plans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Land each plan's records; each result has ``source``, ``system``, ``kind``, ``landed``, ``mode``."""
        ...

    def reference_tables(self) -> None:
        """Store the code tables the reports and checks read (people, budgets)."""
        ...

    def standardize(self, sources: Sequence[str]) -> list[dict[str, Any]]:
        """Map, validate and store each source's landed records (``StandardizeSummary`` as a dict)."""
        ...

    def reconcile(self) -> Any:
        """Reconcile the period; returns the ``PeriodResult``."""
        ...

    def report(self, result: Any) -> dict[str, str] | None:
        """Write the reports; returns name → path (``None``: no reports)."""
        ...


@dataclass
class DailyRun:
    plans: list[dict[str, Any]]
    landed: list[dict[str, Any]]
    standardized: dict[str, dict[str, Any]]  # source name → summary
    result: Any
    reports: dict[str, str] | None

    @property
    def notes(self) -> list[str]:
        """What the readers noted for the operator (e.g. a per-user list shorter than its count)."""
        return [str(n) for item in self.landed for n in item.get("notes") or ()]

    @property
    def extracted(self) -> dict[str, int]:
        """Records landed per source name."""
        totals = {name: 0 for name in self.standardized}
        for item in self.landed:
            totals[item["source"]] = totals.get(item["source"], 0) + int(item["landed"])
        return totals


def run_daily(steps: DailySteps, settings: Settings) -> DailyRun:
    """Run the steps in order for the sources of ``settings``' chain."""
    plans = steps.plan()
    landed = steps.extract(plans)
    steps.reference_tables()
    standardized = dict(zip(settings.chain, steps.standardize(settings.chain), strict=True))
    result = steps.reconcile()
    reports = steps.report(result)
    return DailyRun(plans, landed, standardized, result, reports)
