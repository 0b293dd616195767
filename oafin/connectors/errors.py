"""Connector errors: what went wrong, on which system, in which call.

Every message starts with ``"<system> <call>: "`` so a log line or a failed
flow run says where to look, e.g.
``kingdee ExecuteBillQuery(FormId=AP_PAYBILL, StartRow=2000): response is not JSON: ...``.
Messages never carry a secret: the HTTP layer redacts app secrets, tokens and
session ids before it raises (see ``oafin.connectors.http.Redactor``).

``retryable`` says whether waiting and trying again can help; the HTTP layer
retries only those, and raises the last one when the retry budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    retryable: bool = False

    def __init__(
        self,
        system: str,
        call: str,
        detail: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.system = system
        self.call = call
        self.detail = detail
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable
        super().__init__(f"{system} {call}: {detail}")

    def redacted(self, redact: Callable[[str], str]) -> ConnectorError:
        """A copy of this error, of the same class, with ``redact`` applied to its detail."""
        clone = type(self)(
            self.system,
            self.call,
            redact(self.detail),
            retry_after=self.retry_after,
            retryable=self.retryable,
        )
        clone.__cause__ = self.__cause__
        return clone


class AuthError(ConnectorError):
    """Credentials rejected, or a permission missing: fails fast, never retried."""


class TokenExpiredError(AuthError):
    """The token or session in use is no longer valid.

    The HTTP layer catches this once per call, throws the credential away,
    fetches a new one and repeats the call. A second expiry in the same call
    (a fresh credential rejected at once) escapes as this error, an ``AuthError``.
    """

    marker: object = None  # the credential the failed call used (set by the HTTP layer)


class RateLimitedError(ConnectorError):
    """The system (HTTP 429 or its own code) says to slow down."""

    retryable = True


class TransientError(ConnectorError):
    """HTTP 5xx, a timeout, a dropped connection, a "system busy" code."""

    retryable = True


class BadResponseError(ConnectorError):
    """The response is not what the API promises (not JSON, wrong shape).

    Retried: a truncated or garbled body is usually a proxy's or a load
    balancer's hiccup. One that persists past the retry budget is raised.
    """

    retryable = True


class SourceError(ConnectorError):
    """The system refused the request for a reason retrying cannot fix.

    An unknown FormId or field key, an invalid parameter, any other 4xx.
    """
