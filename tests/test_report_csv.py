"""exceptions.csv stays a clean machine interface (issue 11): UTF-8 without a BOM, fixed columns."""

from __future__ import annotations

import csv
import io

from oafin.reporting.exceptions_csv import CSV_COLUMNS, write_exceptions_csv
from tests.test_report_context import CARD, exception_rows


def test_exceptions_csv_is_utf8_without_bom_in_the_standard_columns(tmp_path):
    path = write_exceptions_csv(exception_rows(), tmp_path / "exceptions.csv")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert list(rows[0]) == CSV_COLUMNS
    assert {r["exception_type"] for r in rows} == set(exception_rows()["exception_type"])  # codes, not names
    by_id = {r["exception_id"]: r for r in rows}
    assert by_id["e1"]["amount_fen"] == "123456" and by_id["e1"]["first_seen"] == "2026-10-31T16:00:00Z"
    assert CARD not in raw.decode("utf-8")
