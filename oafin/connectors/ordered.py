"""Ordered concurrent calls: a list read one page at a time, then one detail call per item, several
in flight at once, yielded in the list's order (every system with a list-then-detail API reads so)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, name: str) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` for each of ``items``, in their order, ``workers`` calls at a time.

    A bounded window of futures: at most 2 x ``workers`` calls are in flight, so a long list is
    never read ahead of its consumer, and the first failure is raised in order (the calls behind it
    are cancelled). ``workers`` 1 calls one by one on the caller's thread. ``name`` prefixes the
    threads' names (in logs).
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    pending: deque[tuple[T, Future[R]]] = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= 2 * workers:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
