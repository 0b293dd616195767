"""One request-rate limit per external system, shared by every task and flow run.

The authority is a Prefect global concurrency limit with slot decay (a rate limit): its slots
decay at ``rate`` per second, so all processes together cannot take more than ``rate`` a second
(prefect-notes.md: ``from prefect.concurrency.sync import rate_limit``, ``strict=True`` so a
missing limit is an error rather than no limit; the limits are created in set-up code,
``ensure_rate_limits``).

Asking the Prefect API once per HTTP request costs a server round trip and a transaction each;
measured on 2 cores (with other work running) that topped out near 9 acquisitions a second
whatever the limit. So each process draws slots in chunks (a quarter second's worth) ahead of
need, in a background thread, and paces the requests it sends with a local token bucket at
``rate``. The local bucket keeps one process at or under the rate; the global limit (capacity two
chunks, decaying at ``rate``) keeps all of them together at or under it over any stretch of time,
with bursts of at most two chunks. bench/rate_limit.py measures both.
"""

from __future__ import annotations

import contextvars
import hashlib
import math
import threading
from collections.abc import Callable

from oafin.config import Settings, SourceConfig
from oafin.connectors.limits import RateLimiter
from oafin.pipeline.sources import source_rate as source_rate  # re-exported (bench/rate_limit.py)

CHUNK_SECONDS = 0.25


def limit_name(source: SourceConfig) -> str:
    """``oafin-<system>-1a2b3c4d``: one limit per system endpoint (lowercase, digits, dashes)."""
    digest = hashlib.sha256(source.base_url.rstrip("/").encode()).hexdigest()[:8]
    return f"oafin-{source.system}-{digest}"


def chunk_size(rate: float) -> int:
    return max(1, math.ceil(rate * CHUNK_SECONDS))


def ensure_rate_limits(settings: Settings) -> dict[str, float]:
    """Create or update the global rate limit of each source (idempotent); returns name → rate."""
    from prefect.client.orchestration import get_client

    made: dict[str, float] = {}
    with get_client(sync_client=True) as client:
        for source in settings.sources:
            rate = source_rate(source)
            name = limit_name(source)
            client.upsert_global_concurrency_limit_by_name(
                name, limit=2 * chunk_size(rate), slot_decay_per_second=rate
            )
            made[name] = rate
    return made


def _prefect_take(name: str) -> Callable[[int], None]:
    def take(slots: int) -> None:
        from prefect.concurrency.sync import rate_limit

        rate_limit(name, occupy=slots, strict=True)

    return take


class SharedRateLimiter:
    """A limiter callable for the connectors: local pacing plus slots drawn from a shared pool.

    ``take(n)`` blocks until ``n`` slots of the shared limit are granted (the Prefect rate limit
    by default; tests may pass another). Thread-safe; one instance per limit per process.
    """

    def __init__(self, name: str, rate: float, take: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.rate = rate
        self.chunk = chunk_size(rate)
        self.pacer = RateLimiter(rate, burst=1)
        self._take = take or _prefect_take(name)
        self._cond = threading.Condition()
        self._reserve = 0
        self._fetching = False
        self._error: BaseException | None = None

    def acquire(self) -> None:
        with self._cond:
            while self._reserve == 0:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                self._fetch_ahead()
                self._cond.wait()
            self._reserve -= 1
            if self._reserve <= self.chunk // 2:
                self._fetch_ahead()
        self.pacer.acquire()

    __call__ = acquire

    def _fetch_ahead(self) -> None:
        """Start drawing the next chunk in the background (the caller holds the lock)."""
        if self._fetching:
            return
        self._fetching = True
        context = contextvars.copy_context()  # the thread must see the same Prefect API settings
        threading.Thread(target=context.run, args=(self._fetch,), daemon=True, name=self.name).start()

    def _fetch(self) -> None:
        error: BaseException | None = None
        try:
            self._take(self.chunk)
        except BaseException as exc:  # handed to the next acquire() in a request thread
            error = exc
        with self._cond:
            self._fetching = False
            if error is None:
                self._reserve += self.chunk
            else:
                self._error = error
            self._cond.notify_all()


_limiters: dict[tuple[str, float], SharedRateLimiter] = {}
_lock = threading.Lock()


def shared_limiter(source: SourceConfig) -> SharedRateLimiter:
    """The process's limiter for ``source`` (tasks in threads share it)."""
    key = (limit_name(source), source_rate(source))
    with _lock:
        if key not in _limiters:
            _limiters[key] = SharedRateLimiter(key[0], key[1])
        return _limiters[key]
