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


def _fails_deep_inside() -> None:
    raise ValueError("period must look like 2026-10, got '2026-10\\n'")


def test_a_failure_is_one_line_for_the_operator_and_the_traceback_is_kept(
    tmp_path, monkeypatch, capsys
) -> None:
    from oafin.failure import report_failure

    monkeypatch.setenv("OAFIN_LOG_DIR", str(tmp_path))
    monkeypatch.delenv("OAFIN_VERBOSE", raising=False)
    try:
        _fails_deep_inside()
    except ValueError as exc:
        path = report_failure("run", exc)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("oafin: run failed: ValueError: period must look like")
    assert str(tmp_path / "oafin-errors.log") in err and "--verbose" in err
    kept = (tmp_path / "oafin-errors.log").read_text(encoding="utf-8")
    assert path == tmp_path / "oafin-errors.log"
    assert "Traceback (most recent call last)" in kept and "_fails_deep_inside" in kept

    monkeypatch.setenv("OAFIN_VERBOSE", "1")
    try:
        _fails_deep_inside()
    except ValueError as exc:
        report_failure("run", exc)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_fails_deep_inside" in err
