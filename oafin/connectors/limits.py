"""Client-side rate limiting and retry timing.

The HTTP layer calls ``acquire()`` before every request it sends. Any
callable fits, so the in-process ``RateLimiter`` here can later give way to a
Prefect global concurrency limit, e.g.
``lambda: prefect.concurrency.sync.rate_limit("dingtalk")``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Acquire = Callable[[], None]

# source-systems.md §1.6: 90018 is one app key calling one API more than 40 times a second.
DINGTALK_REQUESTS_PER_SECOND = 40.0
# real-clients.md §2.1 (corrects source-systems.md §0): WeCom getapprovalinfo and getapprovaldetail
# are each limited to 600 calls a minute ("接口频率限制 600次/分钟"), answered with errcode 45009.
WECOM_REQUESTS_PER_SECOND = 10.0
# source-systems.md §7.5: Kingdee documents no rate limit; stay gentle with a customer's ERP.
KINGDEE_REQUESTS_PER_SECOND = 10.0
# Hesine documents per-API QPS only for OCR/invoice checks (1/s) and the mall (5/s), and no limit on
# getApplyList; real clients sleep ~200 ms between pages (source-systems.md §6, real-clients.md §2.5).
HESINE_REQUESTS_PER_SECOND = 5.0


class RateLimiter:
    """A token bucket: ``rate`` requests a second on average, bursts of up to ``burst``.

    Thread-safe; ``acquire()`` blocks until a request may go.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)

    __call__ = acquire


def no_limit() -> None:
    """An ``acquire`` that never waits."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry what can heal.

    ``max_attempts`` counts every request of one call, the first included.
    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))`` with "equal
    jitter" (half fixed, half random), or what the server's ``Retry-After``
    asks, capped at ``max_retry_after``. Tests pass ``base_delay=0``.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, retry_number - 1))
        return ceiling / 2 + self.random() * ceiling / 2


DEFAULT_RETRY = RetryPolicy()
