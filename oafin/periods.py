"""A period's scope (DESIGN, "Scope of a period's run"): a calendar month in Asia/Shanghai."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from oafin.standard import BUSINESS_TZ

SHANGHAI = ZoneInfo(BUSINESS_TZ)
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")  # fullmatch: no trailing newline


@dataclass(frozen=True)
class Period:
    """``start`` and ``end`` are aware UTC instants; the period is ``start <= t < end``."""

    name: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, name: str) -> Period:
        m = _PERIOD.fullmatch(name) if isinstance(name, str) else None
        if not m:
            raise ValueError(f"period must look like 2026-10, got {name!r}")
        year, month = int(m.group(1)), int(m.group(2))
        start = datetime(year, month, 1, tzinfo=SHANGHAI)
        nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
        return cls(name, start.astimezone(UTC), nxt.astimezone(UTC))

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def extraction_window(
        self, lookback_days: int, as_of: datetime | None = None
    ) -> tuple[datetime, datetime]:
        """What a run extracts: the lookback before the period, up to ``as_of`` (default: period end)."""
        return self.start - timedelta(days=lookback_days), (as_of or self.end)


def period_of(t: datetime) -> str:
    """The Asia/Shanghai month an aware instant falls in."""
    return t.astimezone(SHANGHAI).strftime("%Y-%m")


def parse_as_of(text: str | None, period: Period, now: datetime | None = None) -> datetime:
    """``--as-of``: an ISO date or datetime (China time when no zone is given); default: the end of
    the period, or now if that is earlier (the current period: nothing is known about the future)."""
    if not text:
        return min(period.end, now or datetime.now(UTC))
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=SHANGHAI)
    return t.astimezone(UTC)
