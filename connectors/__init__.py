"""httpx clients for the real OA and finance APIs: auth, paging, retries, rate limits.

``connectors.http`` is the layer every client shares; ``connectors.auth`` and
``connectors.paging`` hold the strategies that differ between systems;
``connectors.dingtalk`` and ``connectors.kingdee`` are the clients.
"""

from __future__ import annotations

from connectors.auth import Auth, CookieSessionAuth, Credential, KingdeeSignatureAuth, TokenAuth
from connectors.dingtalk import DingTalkClient
from connectors.errors import (
    AuthError,
    BadResponseError,
    ConnectorError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
    TransientError,
)
from connectors.http import ApiClient, Call, CallStats, Timeouts
from connectors.kingdee import KingdeeClient
from connectors.limits import RateLimiter, RetryPolicy
from connectors.paging import CursorPager, OffsetLimitPager, PageIndexPager, PageTokenPager

__all__ = [
    "ApiClient",
    "Auth",
    "AuthError",
    "BadResponseError",
    "Call",
    "CallStats",
    "ConnectorError",
    "CookieSessionAuth",
    "Credential",
    "CursorPager",
    "DingTalkClient",
    "KingdeeClient",
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
