"""Code tables: departments, expense types, people, budgets and the approval matrix.

CSV files, UTF-8, one header row with the column names of default-forms.md ("Code tables the
sandbox ships"). Every cell is read as text, so a DingTalk userid ``06314984119`` keeps its 0;
lookup keys are NFKC-normalised and stripped like every other compared value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd

from mappings.parse import normalize_text

DEFAULT_TABLES_DIR: Final = Path(__file__).resolve().parent / "tables"

TABLE_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "departments": ("name", "code"),
    "expense_types": ("label", "code"),
    "people": ("person_id", "dingtalk_userid", "kingdee_staff_number", "name", "department", "role"),
    "budgets": ("budget_code", "department_code", "period", "amount_fen"),
    "approval_matrix": ("role", "max_amount_fen"),
}
# Tables a mapping's `codes:` can name: table → (the column looked up, the column returned).
CODE_LOOKUPS: Final[dict[str, tuple[str, str]]] = {
    "departments": ("name", "code"),
    "expense_types": ("label", "code"),
}
# Columns of people.csv a mapping's `via: people.<column>` can look a person up by.
PEOPLE_KEYS: Final = ("person_id", "dingtalk_userid", "kingdee_staff_number")

_FEN: Final = re.compile(r"-?\d+")


class CodeTableError(ValueError):
    """A code table file that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True, eq=False)
class CodeTables:
    """The loaded tables, as frames of text (``budgets.amount_fen`` is int64) plus fast lookups."""

    departments: pd.DataFrame
    expense_types: pd.DataFrame
    people: pd.DataFrame
    budgets: pd.DataFrame
    approval_matrix: dict[str, int]
    source_dir: Path | None = None
    _codes: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _people_by: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frames(
        cls,
        departments: pd.DataFrame,
        expense_types: pd.DataFrame,
        people: pd.DataFrame,
        budgets: pd.DataFrame,
        approval_matrix: dict[str, int],
        source_dir: Path | None = None,
    ) -> CodeTables:
        """Build the lookups; a key that maps to two different values is an error."""
        frames = {"departments": departments, "expense_types": expense_types, "people": people}
        codes = {
            table: _index(frames[table], key, value, table) for table, (key, value) in CODE_LOOKUPS.items()
        }
        people_by = {column: _index(people, column, "person_id", "people") for column in PEOPLE_KEYS}
        return cls(departments, expense_types, people, budgets, approval_matrix, source_dir, codes, people_by)

    def code(self, table: str, value: str) -> str | None:
        """``code("departments", "财务部")`` → ``"D01"``; ``None`` when the table does not know it."""
        return self._codes[table].get(normalize_text(value))

    def person_id(self, column: str, value: str) -> str | None:
        """The ``person_id`` whose ``column`` (e.g. ``dingtalk_userid``) is ``value``, or ``None``."""
        return self._people_by[column].get(normalize_text(value))

    def person_by_dingtalk_userid(self, userid: str) -> str | None:
        return self.person_id("dingtalk_userid", userid)

    def person_by_kingdee_staff_number(self, staff_number: str) -> str | None:
        return self.person_id("kingdee_staff_number", staff_number)

    def lookup(self, table: str) -> dict[str, str]:
        """The normalised key → code dict behind ``code(table, ...)`` (for the mapper's hot loop)."""
        return self._codes[table]

    def people_lookup(self, column: str) -> dict[str, str]:
        """The normalised ``column`` value → ``person_id`` dict behind ``person_id(column, ...)``."""
        return self._people_by[column]


def _index(frame: pd.DataFrame, key: str, value: str, table: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for k, v in zip(frame[key], frame[value], strict=True):
        k, v = normalize_text(k), normalize_text(v)
        if not k:
            continue  # a person without an account in that system
        if index.setdefault(k, v) != v:
            raise CodeTableError(f"{table}: {key} {k!r} maps to both {index[k]!r} and {v!r}")
    return index


def _read(path: Path, table: str) -> pd.DataFrame:
    try:
        # utf-8-sig: a table saved from Excel starts with a byte-order mark
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise CodeTableError(f"{path}: code table not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CodeTableError(f"{path}: not a UTF-8 CSV file: {exc}") from None
    missing = [c for c in TABLE_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise CodeTableError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(TABLE_COLUMNS[table])}"
        )
    return frame.map(normalize_text)


def _fen_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    for line, text in enumerate(frame[column], start=2):
        if not _FEN.fullmatch(text):
            raise CodeTableError(f"{path}:{line}: {column} {text!r} is not a whole number of fen")
    return frame[column].astype("int64")


def load_code_tables(dir: Path = DEFAULT_TABLES_DIR) -> CodeTables:
    """Read ``departments.csv``, ``expense_types.csv``, ``people.csv``, ``budgets.csv`` and
    ``approval_matrix.csv`` from ``dir`` (default: the tables shipped with the default mappings)."""
    dir = Path(dir)
    frames = {table: _read(dir / f"{table}.csv", table) for table in TABLE_COLUMNS}
    budgets = frames["budgets"].assign(
        amount_fen=_fen_column(frames["budgets"], "amount_fen", dir / "budgets.csv")
    )
    matrix = frames["approval_matrix"]
    limits = _fen_column(matrix, "max_amount_fen", dir / "approval_matrix.csv")
    approval_matrix = {role: int(limit) for role, limit in zip(matrix["role"], limits, strict=True)}
    if len(approval_matrix) != len(matrix):
        raise CodeTableError(f"{dir / 'approval_matrix.csv'}: a role is listed twice")
    return CodeTables.from_frames(
        frames["departments"],
        frames["expense_types"],
        frames["people"],
        budgets,
        approval_matrix,
        source_dir=dir,
    )
