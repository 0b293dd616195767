"""The HTTP layer every connector shares: timeouts, retries, auth, rate limit, JSON, counters.

``ApiClient.request`` sends one API call and returns its decoded JSON body,
or raises a ``ConnectorError`` naming the system and the call:

- waits on the rate limiter before every request sent;
- retries, with exponential backoff and jitter, what can heal: HTTP 429
  (honouring ``Retry-After``), 5xx, timeouts and connection errors, bodies
  that are not JSON, and whatever the system's ``check`` classifies as
  rate-limited or transient;
- on ``TokenExpiredError`` (from ``check``) drops the credential, fetches a
  new one and repeats the call, once per call;
- fails fast on everything else: bad credentials, other 4xx, the system's own
  business errors;
- redacts every secret it knows of (app secrets, tokens, session ids) from
  error messages, and from httpx's own request log lines; masks personal numbers
  (``oafin.masking``) in every error it raises and every line it logs.

JSON is decoded with ``parse_float=Decimal`` so money never passes through a float, and at most
``MAX_JSON_DEPTH`` levels deep: a deeper body is a ``BadRecordError`` naming the call, never a
``RecursionError`` (issue #10 item 12).
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

import httpx

from oafin.connectors.auth import Auth
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
from oafin.connectors.limits import DEFAULT_RETRY, Acquire, RetryPolicy, no_limit
from oafin.masking import redact_text

logger = logging.getLogger(__name__)

# Query parameters that carry credentials on the systems in source-systems.md.
SENSITIVE_PARAMS = frozenset(
    {
        "access_token",
        "accesstoken",
        "appsecret",
        "app_secret",
        "corpsecret",
        "secret",
        "token",
        "signature",
        "password",
    }
)
_PARAM_RE = re.compile(r"(?i)\b(" + "|".join(sorted(SENSITIVE_PARAMS)) + r")=([^&\s\"'#]+)")
SNIPPET_CHARS = 200
MAX_EXPIRED_REFRESHES = 3  # credential refreshes per call when the system says "expired"
MAX_SUPERSEDED = 8  # dead credentials per call that other threads had already reported
# No API in source-systems.md nests deeper than ~6 levels; Python's decoder gives up near 1000.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait: to connect, and for each read (a page of rows can be slow)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


DEFAULT_TIMEOUTS = Timeouts()


class Redactor:
    """Removes known secrets and credential-bearing query parameters from text.

    Remembers every secret it was ever given, so a token that has since been
    replaced is still hidden.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            # Very short values would blank out ordinary text; real secrets are long.
            self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        text = redact_text(_PARAM_RE.sub(lambda m: f"{m.group(1)}=***", text)) or ""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text


def redact_url(url: httpx.URL | str) -> str:
    """A URL with the values of credential-bearing query parameters replaced by ``***``."""
    return _PARAM_RE.sub(lambda m: f"{m.group(1)}=***", str(url))


class _HttpxUrlFilter(logging.Filter):
    """httpx logs every request's full URL at INFO; DingTalk's carries the app secret or the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _HttpxUrlFilter) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_HttpxUrlFilter())


class JsonTooDeepError(ValueError):
    """JSON nested deeper than ``MAX_JSON_DEPTH`` levels (or than Python's decoder can follow)."""


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), counted without recursion; stops past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def parse_json(text: str) -> Any:
    """Decode JSON keeping every non-integer number as ``Decimal``; at most ``MAX_JSON_DEPTH`` deep."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except RecursionError:
        raise JsonTooDeepError("JSON nested deeper than Python can decode") from None
    if isinstance(value, dict | list) and json_depth(value) > MAX_JSON_DEPTH:
        raise JsonTooDeepError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class Call:
    """One API call as errors and logs name it: ``kingdee ExecuteBillQuery(FormId=AP_PAYBILL, StartRow=0)``."""

    system: str
    name: str
    args: str = ""

    @property
    def label(self) -> str:
        """The name and arguments, personal numbers masked: this is what logs and errors show."""
        return (redact_text(f"{self.name}({self.args})") or "") if self.args else self.name

    def error(self, cls: type[ConnectorError], detail: str, **kwargs: Any) -> ConnectorError:
        return cls(self.system, self.label, detail, **kwargs)


# A system's own check of a decoded body: raise ``call.error(...)`` for what the
# envelope says went wrong, return for success. Called for 2xx bodies and, where
# they are JSON, for 4xx bodies too (some systems put the real reason there).
Check = Callable[[Call, Any, httpx.Response], None]


class CallStats:
    """Counters per call name: requests sent, retries, credential refreshes. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.refreshes: Counter[str] = Counter()

    def count(self, counter: Counter[str], name: str) -> None:
        with self._lock:
            counter[name] += 1

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "retries": dict(self.retries),
                "refreshes": dict(self.refreshes),
            }


class _CredentialFailed(Exception):
    """Carries the error of a token fetch or login out of the call that needed it.

    The fetch is a call of its own with its own retries; retrying the outer
    call as well would multiply the attempts.
    """

    def __init__(self, error: ConnectorError) -> None:
        super().__init__(str(error))
        self.error = error


class ApiClient:
    """A system's HTTP session: one ``httpx.Client`` plus the policies above.

    ``http`` may be passed in (then the caller closes it); otherwise the client
    creates one with ``timeouts`` and closes it on ``close()``.
    """

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        http: httpx.Client | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        limiter: Acquire = no_limit,
        secrets: Iterable[str | None] = (),
        check: Check | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url
        self.auth = auth
        self.retry = retry
        self.limiter = limiter
        self.check = check
        self.redact = Redactor(secrets)
        self.stats = CallStats()
        self._owns_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeouts.httpx())

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def sending_once(self) -> ApiClient:
        """A sibling for writes: same auth, connection pool, limiter and redaction, but no retries.

        A write that timed out or got a 5xx may have landed, so it is never repeated blindly; the
        caller's ledger checks the target before sending again. Only a refreshed token repeats it.
        """
        sibling = copy.copy(self)
        sibling.retry = RetryPolicy(max_attempts=1)
        sibling.stats = CallStats()
        sibling._owns_http = False
        return sibling

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def request(
        self,
        call: Call,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authed: bool = True,
        check: Check | None = None,
    ) -> Any:
        """Send ``call`` until it succeeds, cannot heal, or the retry budget is spent.

        ``json`` is sent as a JSON body, ``data`` as form fields (``application/x-www-form-urlencoded``,
        as Weaver's paService takes them, source-systems.md §4.1); ``headers`` are added to the
        request (Weaver's regist/applytoken take their credentials as headers).
        """
        check = check or self.check
        attempt = 0
        refreshes = others = 0
        while True:
            attempt += 1
            try:
                return self._attempt(call, method, path, params, json, authed, check, data, headers)
            except _CredentialFailed as failed:
                raise failed.error from None
            except TokenExpiredError as exc:
                # Once per call; a system that says the token is *expired* (not invalid) may say
                # so again when threads sharing the token race a refresh (``retryable``; issue #5).
                # A dead credential another thread already reported is not this call's refresh
                # (issue #16: bursts of expiries across threads), up to MAX_SUPERSEDED times.
                if not authed or self.auth is None:
                    raise self._redacted(exc) from exc.__cause__
                superseded = self.auth.invalidate(exc.marker) is False and others < MAX_SUPERSEDED
                allowed = MAX_EXPIRED_REFRESHES if exc.retryable else 1
                if superseded:
                    others += 1
                elif refreshes >= allowed:
                    raise self._redacted(exc) from exc.__cause__
                else:
                    refreshes += 1
                attempt -= 1  # the refresh is not a retry: the budget stays whole
                self.stats.count(self.stats.refreshes, call.name)
                logger.info("%s %s: credential expired, fetching a new one", call.system, call.label)
            except ConnectorError as exc:
                if not exc.retryable or attempt >= self.retry.max_attempts:
                    if exc.retryable:
                        logger.warning("%s %s: giving up after %d attempts", call.system, call.label, attempt)
                    raise self._redacted(exc) from exc.__cause__
                wait = self.retry.delay(attempt, exc.retry_after)
                self.stats.count(self.stats.retries, call.name)
                logger.warning(
                    "%s; retry %d of %d in %.2fs",
                    self.redact(str(exc)),
                    attempt,
                    self.retry.max_attempts - 1,
                    wait,
                )
                self.retry.sleep(wait)

    def _redacted(self, exc: ConnectorError) -> ConnectorError:
        if self.auth is not None:
            self.redact.add(*self.auth.secrets())
        return exc.redacted(self.redact)

    def _attempt(
        self,
        call: Call,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        authed: bool,
        check: Check | None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        request = self.http.build_request(
            method, self.url(path), params=params, json=body, data=data, headers=headers
        )
        marker = None
        if authed and self.auth is not None:
            try:
                marker = self.auth.apply(request)  # may fetch a token: its own call, its own retries
            except ConnectorError as exc:
                raise _CredentialFailed(exc) from None
            self.redact.add(*self.auth.secrets())
        self.limiter()
        self.stats.count(self.stats.requests, call.name)
        logger.debug("%s %s: %s %s", call.system, call.label, method, redact_url(request.url.path))
        try:
            response = self.http.send(request)
            response.read()
        except httpx.TimeoutException as exc:
            raise call.error(TransientError, f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise call.error(TransientError, f"connection failed ({type(exc).__name__}: {exc})") from None
        if authed and self.auth is not None:
            self.auth.on_response(response)
        try:
            return self._decode(call, response, check)
        except TokenExpiredError as exc:
            exc.marker = marker
            raise

    def _decode(self, call: Call, response: httpx.Response, check: Check | None) -> Any:
        status = response.status_code
        text = response.text
        if status == 429:
            raise call.error(
                RateLimitedError, f"HTTP 429: {snippet(text)}", retry_after=retry_after_seconds(response)
            )
        if status >= 500:
            raise call.error(
                TransientError, f"HTTP {status}: {snippet(text)}", retry_after=retry_after_seconds(response)
            )
        if status >= 400:
            try:
                body = parse_json(text)
            except ValueError:
                body = None
            if body is not None and check is not None:
                check(call, body, response)
            cls = AuthError if status in (401, 403) else SourceError
            raise call.error(cls, f"HTTP {status}: {snippet(text)}")
        if not 200 <= status < 300:
            raise call.error(SourceError, f"unexpected HTTP {status}: {snippet(text)}")
        if status == 204 and not text.strip():
            return None  # "No Content": some writes answer so on success (real-clients.md §2.5, Hesine)
        try:
            body = parse_json(text)
        except JsonTooDeepError as exc:
            raise call.error(BadRecordError, f"response not readable: {exc}") from None
        except ValueError:
            raise call.error(BadResponseError, f"response is not JSON: {snippet(text)!r}") from None
        if check is not None:
            check(call, body, response)
        return body


class SystemClient:
    """What every system's client shares: it owns one ``ApiClient`` (``self.api``), counts its calls
    and closes it as a context manager."""

    api: ApiClient

    @property
    def stats(self) -> CallStats:
        return self.api.stats

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.api.close()
