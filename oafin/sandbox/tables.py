"""Writes the default code tables (mappings/tables/*.csv) the sandbox's data is drawn from.

Run once by hand (``python -m oafin.sandbox.tables``); the output is committed so the
default mappings and the sandbox agree. Deterministic: the same file every time.
Shapes from reference/default-forms.md, "Code tables the sandbox ships".
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Callable
from pathlib import Path

TABLES_DIR = Path(__file__).resolve().parents[2] / "mappings" / "tables"

DEPARTMENTS = [
    ("财务部", "D01"),
    ("销售部", "D02"),
    ("市场部", "D03"),
    ("研发部", "D04"),
    ("人力资源部", "D05"),
    ("行政部", "D06"),
    ("采购部", "D07"),
    ("客户服务部", "D08"),
]
EXPENSE_TYPES = [
    ("差旅费", "TRAVEL"),
    ("办公费", "OFFICE"),
    ("业务招待费", "ENTERTAIN"),
    ("交通费", "TRANSPORT"),
    ("培训费", "TRAINING"),
    ("通讯费", "TELECOM"),
]
# role -> highest amount (fen) that role may approve
APPROVAL_MATRIX = [("employee", 0), ("manager", 2_000_000), ("director", 10_000_000), ("cfo", 100_000_000)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
BUDGET_PERIODS = [f"{y}-{m:02d}" for y in (2026, 2027) for m in range(1, 13)]


def feishu_open_id(n: int) -> str:
    """Feishu's ``open_id`` of person ``n``: ``ou_`` and 32 hex digits (source-systems.md §3.3,
    real-clients.md §2.2), derived from ``n`` alone."""
    return "ou_" + hashlib.sha256(f"oafin-feishu-{n}".encode()).hexdigest()[:32]


# The ids people have in the other systems, derived from their number n (P0001 -> 1) without new
# random draws, so adding a system changes no other table. A new system adds one entry; its rows
# come after the DingTalk and Kingdee ones in identities.csv, grouped by system.
OTHER_SYSTEM_IDS: dict[str, Callable[[int], str]] = {
    # Yonyou YonBIP staff codes (人员编码): numeric text with leading zeros, kept as text
    "yonyou": lambda n: f"0{n:07d}",
    # WeCom userids are the member's account, letters and digits (source-systems.md §2.3 applyer.userid)
    "wecom": lambda n: f"WeCom{n:05d}",
    "feishu": feishu_open_id,
    # Weaver e-cology 9: HrmResource ids are integers sent as text ("18781" in
    # source-systems.md §4.2's list samples; 1 is the built-in sysadmin, so people start above it).
    "weaver": lambda n: str(18000 + n),
    # Seeyon member ids (orgMembers, start_member_id) are Java longs written as text, often
    # negative (source-systems.md §5: per-deployment ids; the sign is what a client must keep).
    "seeyon": lambda n: str(-(4_591_219_347_528_000_000 + 7_919 * n)),
    # Hesine staff ids are "<corporationId>:<staffId>" wherever a document names a person
    # (ownerId, submitterId; source-systems.md §6.3), so the identity is the whole pair.
    "hesine": lambda n: f"oafinSandboxCorp:ID01oaf{n:05d}",
}


def build_people(rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The people (one row per human) and their identities (one row per account in a system).

    The random draws come in the same order as when these were columns of people.csv, so the
    sandbox's data and truth do not change.
    """
    people: list[dict[str, str]] = []
    identities: list[dict[str, str]] = []

    def add(n: int, name: str | None, dept_name: str, role: str) -> None:
        person_id = f"P{n:04d}"
        # DingTalk userids are text and can start with 0 (default-forms.md)
        userid = f"0{rng.randrange(10**9, 10**10)}"
        name = name or rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN])
        people.append({"person_id": person_id, "name": name, "department": dept_name, "role": role})
        identities.append({"person_id": person_id, "system": "dingtalk", "external_id": userid})
        identities.append({"person_id": person_id, "system": "kingdee", "external_id": f"STF{n:05d}"})

    n = 0
    for dept_name, _code in DEPARTMENTS:
        roles = ["director"] + ["manager"] * 2 + ["employee"] * 17
        for role in roles:
            n += 1
            add(n, None, dept_name, role)
    add(n + 1, "钱总", "财务部", "cfo")
    for system, external_id in OTHER_SYSTEM_IDS.items():
        for person in people:
            n = int(person["person_id"][1:])
            identities.append(
                {"person_id": person["person_id"], "system": system, "external_id": external_id(n)}
            )
    return people, identities


def build_budgets() -> list[dict[str, str]]:
    rows = []
    for _name, code in DEPARTMENTS:
        for kind in ("OPS", "PRJ"):
            for period in BUDGET_PERIODS:
                rows.append(
                    {
                        "budget_code": f"B-{code}-{kind}",
                        "department_code": code,
                        "period": period,
                        "amount_fen": str(60_000_000),  # ¥600,000.00 a month
                    }
                )
    return rows


def _write(path: Path, header: list[str], rows: list[dict[str, str]] | list[tuple]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([row[h] for h in header] if isinstance(row, dict) else list(row))


def write_tables(out: Path = TABLES_DIR) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261001)
    _write(out / "departments.csv", ["name", "code"], DEPARTMENTS)
    _write(out / "expense_types.csv", ["label", "code"], EXPENSE_TYPES)
    _write(out / "approval_matrix.csv", ["role", "max_amount_fen"], APPROVAL_MATRIX)
    people, identities = build_people(rng)
    _write(out / "people.csv", list(people[0]), people)
    _write(out / "identities.csv", list(identities[0]), identities)
    _write(out / "budgets.csv", ["budget_code", "department_code", "period", "amount_fen"], build_budgets())


if __name__ == "__main__":
    write_tables()
