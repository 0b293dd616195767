"""The shared connector toolkit for every source system: httpx transport, auth, paging, retries, rate limits.

``oafin.connectors.http`` is the layer every client shares; ``oafin.connectors.auth`` and
``oafin.connectors.paging`` hold the strategies that differ between systems;
each system's client lives in its own folder, ``oafin/systems/<name>/``.
"""

from __future__ import annotations

from oafin.connectors.auth import Auth, CookieSessionAuth, Credential, KingdeeSignatureAuth, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadRecordError,
    BadResponseError,
    ConnectorError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
    TransientError,
)
from oafin.connectors.http import ApiClient, Call, CallStats, Timeouts
from oafin.connectors.limits import RateLimiter, RetryPolicy
from oafin.connectors.paging import CursorPager, OffsetLimitPager, PageIndexPager, PageTokenPager

__all__ = [
    "ApiClient",
    "Auth",
    "AuthError",
    "BadRecordError",
    "BadResponseError",
    "Call",
    "CallStats",
    "ConnectorError",
    "CookieSessionAuth",
    "Credential",
    "CursorPager",
    "KingdeeSignatureAuth",
    "OffsetLimitPager",
    "PageIndexPager",
    "PageTokenPager",
    "RateLimitedError",
    "RateLimiter",
    "RetryPolicy",
    "SourceError",
    "Timeouts",
    "TokenAuth",
    "TokenExpiredError",
    "TransientError",
]
