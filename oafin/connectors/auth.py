"""Auth strategies: how a credential is obtained, cached, refreshed and applied to a request.

Every system in source-systems.md fits one of three shapes:

- ``TokenAuth``: a token fetched from a token endpoint, cached until shortly
  before it expires and placed on each request either as a query parameter
  (DingTalk old API ``access_token``, WeCom ``access_token``, Yonyou
  ``access_token``, Ekuaibao ``accessToken``) or as a header (DingTalk v1.0
  ``x-acs-dingtalk-access-token``, Feishu ``Authorization: Bearer``, Seeyon and
  Weaver ``token``). A new system of this kind is one ``fetch`` function.
- ``CookieSessionAuth``: a login call that opens a server session whose cookies
  go on every later request (Kingdee ``LoginByAppSecret``, source-systems.md §7.2).
- ``KingdeeSignatureAuth``: no credential to fetch; each request is signed
  (Kingdee SDK 7.x/8.x HMAC headers, source-systems.md §7.2).

The HTTP layer (``oafin.connectors.http.ApiClient``) drives them: ``apply`` before
sending (it returns a marker naming the credential it used), ``on_response``
after, and ``invalidate(marker)`` when the system says the credential has
expired, after which the next ``apply`` fetches a fresh one. Invalidating by
marker means that when several threads see the same expired token at once,
only one new token is fetched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

import httpx


@dataclass(frozen=True)
class Credential:
    """A token (``str``) or a session's cookies (``dict``), with its lifetime if the system says."""

    value: str | Mapping[str, str]
    expires_in: float | None = None


class Auth(Protocol):
    """What the HTTP layer needs from an auth strategy."""

    def apply(self, request: httpx.Request) -> object:
        """Put the credential on ``request``; return a marker naming the credential used."""
        ...

    def invalidate(self, marker: object) -> bool | None:
        """Forget the credential ``marker`` names, if it is still the current one. False: it was
        already forgotten or replaced (another thread got there first); None: cannot tell."""
        ...

    def on_response(self, response: httpx.Response) -> None:
        """See every response (a server may renew a session silently)."""
        ...

    def secrets(self) -> list[str]:
        """Values that must never appear in a message or a log line."""
        ...


class CredentialCache:
    """One credential, fetched on first use and again when expired or invalidated.

    ``refresh_margin`` seconds before the stated expiry the credential counts
    as expired, so a request never leaves with a token about to die in flight.
    Thread-safe: concurrent callers wait for one fetch.
    """

    def __init__(
        self,
        fetch: Callable[[], Credential],
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Credential | None = None
        self._deadline: float | None = None
        self._generation = 0
        self.fetches = 0

    def get(self) -> tuple[Credential, int]:
        with self._lock:
            expired = self._deadline is not None and self._clock() >= self._deadline
            if self._current is None or expired:
                credential = self._fetch()
                self.fetches += 1
                self._generation += 1
                self._current = credential
                self._deadline = (
                    None
                    if credential.expires_in is None
                    else self._clock() + max(0.0, credential.expires_in - self._margin)
                )
            return self._current, self._generation

    def peek(self) -> Credential | None:
        return self._current

    def replace(self, credential: Credential) -> None:
        """Swap in a credential the server handed out unasked (same generation)."""
        with self._lock:
            self._current = credential

    def invalidate(self, generation: object) -> bool:
        """Drop the credential of ``generation``; False when it was already dropped or replaced
        (another thread saw the same dead credential first), so the caller's refresh is not its own."""
        with self._lock:
            if generation == self._generation and self._current is not None:
                self._current = None
                self._deadline = None
                return True
            return False


class TokenAuth:
    """A bearer-style token in a query parameter or a header.

    DingTalk old API: ``TokenAuth(fetch, place="query", name="access_token")``
    (source-systems.md §1.1). The same class serves DingTalk v1.0
    (``place="header", name="x-acs-dingtalk-access-token"``), Feishu
    (``place="header", name="Authorization", prefix="Bearer "``), Seeyon/Weaver
    (``place="header", name="token"``), WeCom and Yonyou (``place="query"``).
    """

    def __init__(
        self,
        fetch: Callable[[], Credential],
        *,
        place: Literal["query", "header"] = "query",
        name: str = "access_token",
        prefix: str = "",
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = CredentialCache(fetch, refresh_margin=refresh_margin, clock=clock)
        self.place = place
        self.name = name
        self.prefix = prefix

    def apply(self, request: httpx.Request) -> object:
        credential, generation = self.cache.get()
        token = str(credential.value)
        if self.place == "query":
            request.url = request.url.copy_merge_params({self.name: token})
        else:
            request.headers[self.name] = self.prefix + token
        return generation

    def invalidate(self, marker: object) -> bool:
        return self.cache.invalidate(marker)

    def on_response(self, response: httpx.Response) -> None:
        return None

    def secrets(self) -> list[str]:
        current = self.cache.peek()
        return [str(current.value)] if current is not None else []


class CookieSessionAuth:
    """A login that opens a session; its cookies go on every later request.

    ``login`` returns the session cookies (Kingdee: ``kdservice-sessionid`` and
    the ASP.NET cookies, source-systems.md §7.2). The ``Cookie`` header is set
    explicitly, so the session does not depend on the ``httpx.Client`` cookie
    jar (which a caller may share between systems). Kingdee renews an expired
    session silently by issuing a new session id (§7.2 gotcha), so a
    ``Set-Cookie`` for a session cookie on any response updates the session.
    """

    def __init__(self, login: Callable[[], Credential], *, secret_cookies: tuple[str, ...] = ()) -> None:
        self.cache = CredentialCache(login, refresh_margin=0.0)
        self.secret_cookies = secret_cookies

    def _cookies(self) -> dict[str, str]:
        current = self.cache.peek()
        if current is None or isinstance(current.value, str):
            return {}
        return dict(current.value)

    def apply(self, request: httpx.Request) -> object:
        credential, generation = self.cache.get()
        assert not isinstance(credential.value, str), "a session is a mapping of cookies"
        request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in credential.value.items())
        return generation

    def invalidate(self, marker: object) -> bool:
        return self.cache.invalidate(marker)

    def on_response(self, response: httpx.Response) -> None:
        session = self._cookies()
        if not session:
            return
        renewed = {name: value for name, value in response.cookies.items() if name in session}
        if renewed and any(session[name] != value for name, value in renewed.items()):
            self.cache.replace(Credential({**session, **renewed}))

    def secrets(self) -> list[str]:
        session = self._cookies()
        names = self.secret_cookies or tuple(session)
        return [session[name] for name in names if session.get(name)]


# The official SDK's built-in XOR pad for the client secret (``util/encode_util.py``
# ``generate_code``/``extend_byte_array``: four 8-character chunks, rot13'd; the random digit the
# SDK puts between chunks is skipped again). Public: it ships in every copy of the SDK.
_KINGDEE_XOR_PAD = "0054s397p6234378o09pn7q3r5qropr7"


def _rot13(text: str) -> str:
    return text.translate(
        str.maketrans(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
        )
    )


def kingdee_client_secret(app_id: str) -> str:
    """The client secret the Kingdee SDK derives from an AppID ``<clientId>_<32 base64 chars>``.

    As ``k3cloud_webapi_sdk.util.encode_util.DecodeAppSecret`` (SDK 8.2.0, real-clients.md §1.8):
    base64-decode the part after ``_``, XOR it with the SDK's pad, base64-encode again. A part that
    is not 32 valid base64 characters gives ``""`` (the SDK then signs with an empty key).
    """
    parts = app_id.split("_")
    if len(parts) != 2 or len(parts[1]) != 32:
        return ""
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return ""
    pad = _rot13(_KINGDEE_XOR_PAD).encode()
    return base64.b64encode(bytes(b ^ pad[i] for i, b in enumerate(raw))).decode()


def kingdee_hmac(key: str, message: str) -> str:
    """The SDK's HMAC: ``Base64(hex(HMAC-SHA256))`` of the lowercase hex string (real-clients.md §1.8)."""
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def kingdee_api_string(path: str, nonce: str, timestamp: str) -> str:
    """What ``X-Api-Signature`` signs: the URL path url-encoded (``/`` too), nonce and timestamp."""
    quoted = quote(path, encoding="utf-8").replace("/", "%2F")
    return f"POST\n{quoted}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"


def kingdee_signature_headers(
    *,
    path: str,
    app_id: str,
    app_secret: str,
    app_data: str,
    timestamp: str,
    nonce: str,
    client_secret: str | None = None,
) -> dict[str, str]:
    """The SDK's signature headers for one POST to ``path`` (``WebApiClient.BuildHeader``).

    ``app_data`` is ``"acctId,userName,lcid,orgNum"``. ``client_secret`` defaults to the one the
    SDK derives from ``app_id``. The Kingdee twin calls this to check a request's signature.
    """
    secret = kingdee_client_secret(app_id) if client_secret is None else client_secret
    return {
        "X-Api-ClientID": app_id.split("_", 1)[0],
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": timestamp,
        "x-api-nonce": nonce,
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": kingdee_hmac(secret, kingdee_api_string(path, nonce, timestamp)),
        "X-Kd-Appkey": app_id,
        "X-Kd-Appdata": base64.b64encode(app_data.encode()).decode(),
        "X-Kd-Signature": kingdee_hmac(app_secret, app_id + app_data),
    }


class KingdeeSignatureAuth:
    """Kingdee SDK 7.x/8.x per-request signature: no login, HMAC headers on every call.

    Headers as in the official Python SDK's ``WebApiClient.BuildHeader``
    (``k3cloud_webapi_sdk/core/webapi_client.py`` 8.2.0, source-systems.md §7.2, corrected by
    real-clients.md §1.8: the HMAC is Base64 of the *hex* digest). The client secret is derived
    from the AppID as the SDK does (``kingdee_client_secret``) unless ``client_secret`` is given.
    Checked against the SDK's own headers (tests/test_kingdee_sdk.py) and the Kingdee twin, which
    verifies both signatures for the sandbox's credentials. A ``kdservice-sessionid`` cookie the
    server sets is echoed on later requests as a header and a cookie, as the SDK's
    ``FillCookieAndHeader``/``BuildHeader`` do; the signature still goes on every request.
    """

    SESSION_COOKIE = "kdservice-sessionid"

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        acct_id: str,
        username: str,
        client_secret: str | None = None,
        lcid: int = 2052,
        org_num: str = "0",
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.client_id = app_id.split("_", 1)[0]
        self.client_secret = kingdee_client_secret(app_id) if client_secret is None else client_secret
        self.app_data = f"{acct_id},{username},{lcid},{org_num}"
        self.clock = clock
        self.nonce = nonce
        self.session_id = ""

    @staticmethod
    def _hmac_b64hex(key: str, message: str) -> str:
        return kingdee_hmac(key, message)

    def headers(self, path: str) -> dict[str, str]:
        """The signature headers for a POST to ``path`` now."""
        return kingdee_signature_headers(
            path=path,
            app_id=self.app_id,
            app_secret=self.app_secret,
            app_data=self.app_data,
            timestamp=str(int(self.clock())),
            nonce=self.nonce(),
            client_secret=self.client_secret,
        )

    def apply(self, request: httpx.Request) -> object:
        request.headers.update(self.headers(request.url.path))
        session = self.session_id
        if session:
            request.headers[self.SESSION_COOKIE] = session
            request.headers["Cookie"] = f"{self.SESSION_COOKIE}={session}"
        return None

    def invalidate(self, marker: object) -> None:
        return None

    def on_response(self, response: httpx.Response) -> None:
        session = response.cookies.get(self.SESSION_COOKIE)
        if session:
            self.session_id = session

    def secrets(self) -> list[str]:
        return [s for s in (self.app_secret, self.client_secret, self.session_id) if s]
