"""The code tables the generator draws from (mappings/tables/*.csv, written by sandbox/tables.py).

A person's DingTalk userid and Kingdee staff number come from identities.csv (system, external_id).

Read independently of the mapping loader on purpose: the sandbox writes the ground
truth the pipeline is checked against, so it must not share the pipeline's reading code.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Person:
    person_id: str
    userid: str  # DingTalk userid (text; may start with 0)
    staff_number: str  # Kingdee FStaffNumber
    name: str
    department: str  # department name, as in people.csv
    dept_code: str
    role: str
    limit_fen: int  # highest amount this person may approve (approval_matrix.csv)
    # system -> their id there (identities.csv)
    identities: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Codes:
    departments: dict[str, str]  # name -> code
    expense_types: dict[str, str]  # label -> code
    people: list[Person]
    budgets: dict[tuple[str, str], int]  # (budget_code, period) -> amount_fen
    limits: dict[str, int]  # role -> max_amount_fen

    def by_department(self, dept_code: str) -> list[Person]:
        return [p for p in self.people if p.dept_code == dept_code]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_codes(tables_dir: Path) -> Codes:
    departments = {r["name"]: r["code"] for r in _rows(tables_dir / "departments.csv")}
    limits = {r["role"]: int(r["max_amount_fen"]) for r in _rows(tables_dir / "approval_matrix.csv")}
    identities: dict[str, dict[str, str]] = defaultdict(dict)
    for r in _rows(tables_dir / "identities.csv"):
        identities[r["person_id"]].setdefault(r["system"], r["external_id"])
    people = [
        Person(
            person_id=r["person_id"],
            userid=identities[r["person_id"]].get("dingtalk", ""),
            staff_number=identities[r["person_id"]].get("kingdee", ""),
            name=r["name"],
            department=r["department"],
            dept_code=departments[r["department"]],
            role=r["role"],
            limit_fen=limits[r["role"]],
            identities=dict(identities[r["person_id"]]),
        )
        for r in _rows(tables_dir / "people.csv")
    ]
    budgets = {
        (r["budget_code"], r["period"]): int(r["amount_fen"]) for r in _rows(tables_dir / "budgets.csv")
    }
    expense_types = {r["label"]: r["code"] for r in _rows(tables_dir / "expense_types.csv")}
    return Codes(departments, expense_types, people, budgets, limits)
