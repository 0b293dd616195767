"""Access tokens (DingTalk) and sessions (Kingdee) of the fake servers: issue, check, expire."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Literal

TokenState = Literal["valid", "expired", "unknown"]


class TokenStore:
    """Tokens that expire ``lifetime`` seconds after they were issued (or last re-issued).

    ``reuse``: asking again while the current token is valid returns the same token with its
    life extended, as DingTalk reportedly does (source-systems.md §1.1 [U]). Otherwise every
    issue is a new token (a Kingdee login opens a new session).

    ``max_uses``: a token dies after that many checked calls (None: no such limit), so a test can
    have it die in the middle of paging, on exactly the call it wants, whatever the clock does.
    """

    def __init__(self, lifetime: float, *, reuse: bool) -> None:
        self.default_lifetime = lifetime
        self.lifetime = lifetime
        self.reuse = reuse
        self.max_uses: int | None = None
        self._uses: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._current: str | None = None
        self._lock = threading.Lock()

    def issue(self) -> str:
        now = time.monotonic()
        with self._lock:
            token = self._current
            if not (self.reuse and token is not None and self._expiry.get(token, 0.0) > now):
                token = secrets.token_hex(16)
            self._expiry[token] = now + self.lifetime
            self._current = token
            return token

    def check(self, token: str | None) -> TokenState:
        """The token's state; a valid one counts one use (and dies past ``max_uses``)."""
        with self._lock:
            key = token or ""
            expiry = self._expiry.get(key)
            if expiry is None:
                return "unknown"
            if expiry <= time.monotonic():
                return "expired"
            if self.max_uses is not None:
                self._uses[key] = self._uses.get(key, 0) + 1
                if self._uses[key] > self.max_uses:
                    self._expiry[key] = float("-inf")
                    return "expired"
            return "valid"

    def reset(self) -> None:
        """Back to the default lifetime and no use limit (tokens already issued keep theirs)."""
        with self._lock:
            self.lifetime = self.default_lifetime
            self.max_uses = None

    def expire(self, token: str | None = None) -> None:
        """Expire ``token`` (default: the latest one issued) now."""
        with self._lock:
            token = token or self._current
            if token in self._expiry:
                self._expiry[token] = float("-inf")

    def revoke(self, token: str) -> None:
        with self._lock:
            self._expiry.pop(token, None)
