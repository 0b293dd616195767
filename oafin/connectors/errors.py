"""Connector errors: what went wrong, on which system, in which call.

Every message starts with ``"<system> <call>: "`` so a log line or a failed
flow run says where to look, e.g.
``kingdee ExecuteBillQuery(FormId=AP_PAYBILL, StartRow=2000): response is not JSON: ...``.
Messages never carry a secret: the HTTP layer redacts app secrets, tokens and
session ids before it raises (see ``oafin.connectors.http.Redactor``). Nor a personal number:
an error's call and detail are masked when it is made (``oafin.masking.redact_text``), so an HTTP
error body with a mobile, card or resident id reaches no log, flow-run state or report whole.

``retryable`` says whether waiting and trying again can help; the HTTP layer
retries only those, and raises the last one when the retry budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable

from oafin.masking import redact_text


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
        call = redact_text(call) or ""
        detail = redact_text(detail) or ""
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


class BadRecordError(BadResponseError):
    """One record's response cannot be read at all (JSON nested deeper than ``MAX_JSON_DEPTH``).

    Not retried, and not fatal: the client lands the record as ``unreadable_payload(reason)`` and
    standardisation quarantines it with that reason (issue #10 item 12), so the run goes on.
    """

    retryable = False


# The key of a landed payload that stands for a record the source sent but oafin could not read.
UNREADABLE_KEY = "oafin_unreadable"


def unreadable_payload(reason: str) -> dict[str, str]:
    """What is landed, and then quarantined, in place of a record that cannot be read."""
    return {UNREADABLE_KEY: reason}


class SourceError(ConnectorError):
    """The system refused the request for a reason retrying cannot fix.

    An unknown FormId or field key, an invalid parameter, any other 4xx.
    """
