"""Issue #10 item 16: what is retried, and what an operator sees when a command fails."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from oafin.connectors.errors import ConnectorError
from oafin.pipeline.extract import worth_retrying


def _operational() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("insert ...", {}, sqlite3.OperationalError("database is locked"))


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("claim_no"),
        TypeError("unsupported operand"),
        AttributeError("x"),
        ValueError("bad"),
        ZeroDivisionError(),
        NotImplementedError(),
        FileNotFoundError("mappings/x.yaml"),
        RecursionError(),
    ],
)
def test_a_programming_error_is_not_retried(exc: BaseException) -> None:
    assert not worth_retrying(exc, 1)


@pytest.mark.parametrize(
    "exc", [_operational(), ConnectionResetError("reset by peer"), TimeoutError("read timed out")]
)
def test_what_may_heal_is_retried(exc: BaseException) -> None:
    assert worth_retrying(exc, 1)


def test_a_connector_error_is_retried_as_it_says() -> None:
    assert worth_retrying(ConnectorError("kingdee", "ExecuteBillQuery", "HTTP 503", retryable=True), 1)
    assert not worth_retrying(ConnectorError("kingdee", "ExecuteBillQuery", "HTTP 400", retryable=False), 1)
