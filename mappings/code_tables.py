"""Code tables: departments, expense types, people, identities, budgets and the approval matrix.

CSV files, UTF-8, one header row with the column names of default-forms.md ("Code tables the
sandbox ships"). Every cell is read as text, so a DingTalk userid ``06314984119`` keeps its 0;
lookup keys are NFKC-normalised and stripped like every other compared value.

People are identities, not one column per system (DESIGN.md, "The data standard"):
``people.csv`` has one row per human, ``identities.csv`` one row per account a person has in a
system (``person_id, system, external_id``: a DingTalk userid, a Kingdee staff number, a WeCom
userid, a Feishu open_id, ...). A new system needs new rows, never a new column.
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
    "people": ("person_id", "name", "department", "role"),
    "identities": ("person_id", "system", "external_id"),
    "budgets": ("budget_code", "department_code", "period", "amount_fen"),
    "approval_matrix": ("role", "max_amount_fen"),
}
# Tables a mapping's `codes:` can name: table → (the column looked up, the column returned).
CODE_LOOKUPS: Final[dict[str, tuple[str, str]]] = {
    "departments": ("name", "code"),
    "expense_types": ("label", "code"),
}
# people.csv of releases before identities.csv: one column per system. Still read when there is
# no identities.csv (each non-blank cell becomes an identity row of that system).
LEGACY_ID_COLUMNS: Final = {"dingtalk_userid": "dingtalk", "kingdee_staff_number": "kingdee"}

# What a mapping's `via:` can name: `identity` looks the value up in identities.csv for the
# mapping's own system; `person_id` takes the value as a person_id of people.csv.
VIA_LOOKUPS: Final = ("identity", "person_id")

_FEN: Final = re.compile(r"-?\d+")


class CodeTableError(ValueError):
    """A code table file that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True, eq=False)
class CodeTables:
    """The loaded tables, as frames of text (``budgets.amount_fen`` is int64) plus fast lookups.

    ``people``: ``person_id, name, department, role``; ``identities``: ``person_id, system,
    external_id`` (normalised text, in file order).
    """

    departments: pd.DataFrame
    expense_types: pd.DataFrame
    people: pd.DataFrame
    identities: pd.DataFrame
    budgets: pd.DataFrame
    approval_matrix: dict[str, int]
    source_dir: Path | None = None
    _codes: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _by_identity: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _person_ids: frozenset[str] = field(default_factory=frozenset, repr=False)

    @classmethod
    def from_frames(
        cls,
        departments: pd.DataFrame,
        expense_types: pd.DataFrame,
        people: pd.DataFrame,
        identities: pd.DataFrame,
        budgets: pd.DataFrame,
        approval_matrix: dict[str, int],
        source_dir: Path | None = None,
    ) -> CodeTables:
        """Build the lookups; a key that maps to two different values is an error, and so is an
        identity of a person the people table does not have."""
        frames = {"departments": departments, "expense_types": expense_types, "people": people}
        codes = {
            table: _index(frames[table], key, value, table) for table, (key, value) in CODE_LOOKUPS.items()
        }
        person_ids = frozenset(normalize_text(p) for p in people["person_id"])
        by_identity: dict[str, dict[str, str]] = {}
        for system, group in identities.groupby("system", sort=False):
            system = normalize_text(system)
            if not system:
                raise CodeTableError("identities: a row has no system")
            by_identity[system] = _index(group, "external_id", "person_id", f"identities ({system})")
            unknown = sorted(set(by_identity[system].values()) - person_ids)
            if unknown:
                raise CodeTableError(
                    f"identities: person_id {unknown[0]!r} ({system}) is not in the people table"
                )
        return cls(
            departments,
            expense_types,
            people,
            identities,
            budgets,
            approval_matrix,
            source_dir,
            codes,
            by_identity,
            person_ids,
        )

    def code(self, table: str, value: str) -> str | None:
        """``code("departments", "财务部")`` → ``"D01"``; ``None`` when the table does not know it."""
        return self._codes[table].get(normalize_text(value))

    def person_by_identity(self, system: str, external_id: str) -> str | None:
        """The ``person_id`` whose id in ``system`` (e.g. a ``dingtalk`` userid) is ``external_id``."""
        return self.identity_lookup(system).get(normalize_text(external_id))

    def external_ids(self, system: str) -> dict[str, str]:
        """``person_id`` → their id in ``system`` (the first listed, if they have several)."""
        out: dict[str, str] = {}
        for external_id, person_id in self.identity_lookup(system).items():
            out.setdefault(person_id, external_id)
        return out

    @property
    def systems(self) -> list[str]:
        """The systems identities.csv lists ids for."""
        return list(self._by_identity)

    def lookup(self, table: str) -> dict[str, str]:
        """The normalised key → code dict behind ``code(table, ...)`` (for the mapper's hot loop)."""
        return self._codes[table]

    def identity_lookup(self, system: str) -> dict[str, str]:
        """The normalised external id → ``person_id`` dict of ``system`` (empty for a system with none)."""
        found = self._by_identity.get(system)  # the mapper's hot loop passes a clean name
        return found if found is not None else self._by_identity.get(normalize_text(system), {})

    def person_ids(self) -> frozenset[str]:
        """Every ``person_id`` of the people table (normalised)."""
        return self._person_ids


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


def _identities(dir: Path, people: pd.DataFrame) -> pd.DataFrame:
    """identities.csv; or, for tables of an earlier release, the ids in people.csv's old columns."""
    legacy = [c for c in LEGACY_ID_COLUMNS if c in people.columns]
    path = dir / "identities.csv"
    if not path.exists() and legacy:
        rows = [
            (person_id, LEGACY_ID_COLUMNS[column], external_id)
            for person_id, *ids in people[["person_id", *legacy]].itertuples(index=False)
            for column, external_id in zip(legacy, ids, strict=True)
            if external_id
        ]
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS["identities"]), dtype=object)
    if legacy:
        raise CodeTableError(
            f"{dir / 'people.csv'}: column(s) {', '.join(legacy)} are identities now and {path} exists; "
            f"move them to {path.name} as rows person_id,system,external_id (system "
            + ", ".join(f"{LEGACY_ID_COLUMNS[c]} for {c}" for c in legacy)
            + ") and drop the columns"
        )
    return _read(path, "identities")


def load_code_tables(dir: Path = DEFAULT_TABLES_DIR) -> CodeTables:
    """Read ``departments.csv``, ``expense_types.csv``, ``people.csv``, ``identities.csv``,
    ``budgets.csv`` and ``approval_matrix.csv`` from ``dir`` (default: the tables shipped with the
    default mappings)."""
    dir = Path(dir)
    frames = {table: _read(dir / f"{table}.csv", table) for table in TABLE_COLUMNS if table != "identities"}
    frames["identities"] = _identities(dir, frames["people"])
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
        frames["identities"],
        budgets,
        approval_matrix,
        source_dir=dir,
    )
