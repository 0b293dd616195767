"""Windowing strategy: cut an extraction window into the longest spans a list API accepts.

WeCom ``getapprovalinfo`` refuses a span of more than 31 days (source-systems.md §2.2,
"起始时间跨度不能超过31天"); other list APIs cap their windows too. ``split_window`` gives the
half-open sub-windows, in order, that together cover ``[start, end)`` exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def split_window(start: datetime, end: datetime, max_span: timedelta) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` as consecutive half-open windows of at most ``max_span`` each.

    An empty or inverted window gives no sub-window. Times must be timezone-aware.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("pass timezone-aware datetimes")
    if max_span <= timedelta(0):
        raise ValueError("max_span must be positive")
    windows = []
    cursor = start
    while cursor < end:
        stop = min(cursor + max_span, end)
        windows.append((cursor, stop))
        cursor = stop
    return windows
