"""The code tables: ids stay text, money is int64 fen, lookups are normalised, bad files say where."""

from __future__ import annotations

import csv
import shutil

import pytest

from mappings.code_tables import DEFAULT_TABLES_DIR, CodeTableError, load_code_tables


def _csv_rows(name: str) -> list[dict[str, str]]:
    with (DEFAULT_TABLES_DIR / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tables():
    return load_code_tables()


def test_people_ids_are_text_with_leading_zeros(tables):
    rows = _csv_rows("people")
    assert list(tables.people["dingtalk_userid"]) == [r["dingtalk_userid"] for r in rows]
    assert any(r["dingtalk_userid"].startswith("0") for r in rows)
    for row in rows:
        assert tables.person_by_dingtalk_userid(row["dingtalk_userid"]) == row["person_id"]
        assert tables.person_by_kingdee_staff_number(row["kingdee_staff_number"]) == row["person_id"]


def test_person_lookup_is_normalised_and_misses_are_none(tables):
    row = _csv_rows("people")[0]
    full_width = row["dingtalk_userid"].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert tables.person_by_dingtalk_userid(f" {full_width} ") == row["person_id"]
    assert tables.person_by_dingtalk_userid(row["dingtalk_userid"].lstrip("0")) is None


def test_budgets_amounts_are_int64_fen(tables):
    rows = _csv_rows("budgets")
    assert str(tables.budgets["amount_fen"].dtype) == "int64"
    assert int(tables.budgets["amount_fen"].sum()) == sum(int(r["amount_fen"]) for r in rows)
    assert list(tables.budgets["period"][:2]) == [r["period"] for r in rows[:2]]


def test_approval_matrix_is_role_to_int(tables):
    expected = {r["role"]: int(r["max_amount_fen"]) for r in _csv_rows("approval_matrix")}
    assert tables.approval_matrix == expected
    assert all(type(v) is int for v in tables.approval_matrix.values())


def test_department_and_expense_type_codes(tables):
    # default-forms.md: 财务部 → D01, 差旅费 → TRAVEL
    assert tables.code("departments", "财务部") == "D01"
    assert tables.code("expense_types", " 差旅费 ") == "TRAVEL"
    assert tables.code("expense_types", "差旅") is None


@pytest.fixture
def table_copy(tmp_path):
    for path in DEFAULT_TABLES_DIR.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_missing_column_names_the_file(table_copy):
    (table_copy / "departments.csv").write_text("部门,code\n财务部,D01\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"departments\.csv.*missing column.*name"):
        load_code_tables(table_copy)


def test_bad_amount_names_file_and_line(table_copy):
    text = (table_copy / "budgets.csv").read_text(encoding="utf-8").splitlines()
    text[3] = "B-D01-OPS,D01,2026-03,600000.00"
    (table_copy / "budgets.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"budgets\.csv:4: amount_fen '600000\.00'"):
        load_code_tables(table_copy)


def test_a_label_with_two_codes_is_refused(table_copy):
    with (table_copy / "expense_types.csv").open("a", encoding="utf-8") as fh:
        fh.write("差旅费,TRIP\n")
    with pytest.raises(CodeTableError, match="差旅费"):
        load_code_tables(table_copy)


def test_excel_byte_order_mark_is_accepted(table_copy):
    path = table_copy / "departments.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_code_tables(table_copy).code("departments", "财务部") == "D01"
