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


def test_identity_ids_are_text_with_leading_zeros(tables):
    rows = _csv_rows("identities")
    assert list(tables.identities["external_id"]) == [r["external_id"] for r in rows]
    assert any(r["external_id"].startswith("0") for r in rows if r["system"] == "dingtalk")
    for row in rows:
        assert tables.person_by_identity(row["system"], row["external_id"]) == row["person_id"]


def test_every_person_has_one_id_per_shipped_system(tables):
    people = [r["person_id"] for r in _csv_rows("people")]
    from oafin.sandbox.tables import OTHER_SYSTEM_IDS

    # DingTalk and Kingdee first, then one group per OTHER_SYSTEM_IDS entry (issue #13 and others)
    assert tables.systems == ["dingtalk", "kingdee", *OTHER_SYSTEM_IDS]
    for system in tables.systems:
        assert sorted(tables.external_ids(system)) == sorted(people)
    assert list(tables.people.columns) == ["person_id", "name", "department", "role"]


def test_person_lookup_is_normalised_and_misses_are_none(tables):
    row = next(r for r in _csv_rows("identities") if r["system"] == "dingtalk")
    full_width = row["external_id"].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert tables.person_by_identity("dingtalk", f" {full_width} ") == row["person_id"]
    assert tables.person_by_identity("dingtalk", row["external_id"].lstrip("0")) is None
    # an id is looked up in its own system only: a DingTalk userid is no Kingdee staff number
    assert tables.person_by_identity("kingdee", row["external_id"]) is None
    assert tables.person_by_identity("wecom", row["external_id"]) is None


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


def test_a_new_system_is_new_rows_not_a_new_column(table_copy):
    with (table_copy / "identities.csv").open("a", encoding="utf-8") as fh:
        fh.write("P0001,wecom,sun.chaoxiu\nP0002,feishu,ou_7d8a6e6df7621556ce0d21922b676706ccs\n")
    tables = load_code_tables(table_copy)
    assert tables.person_by_identity("wecom", "sun.chaoxiu") == "P0001"
    assert tables.person_by_identity("feishu", "ou_7d8a6e6df7621556ce0d21922b676706ccs") == "P0002"
    assert tables.person_by_identity("dingtalk", "sun.chaoxiu") is None


def test_an_id_of_two_people_in_one_system_is_refused(table_copy):
    with (table_copy / "identities.csv").open("a", encoding="utf-8") as fh:
        fh.write("P0002,kingdee,STF00001\n")
    with pytest.raises(CodeTableError, match=r"identities \(kingdee\).*STF00001"):
        load_code_tables(table_copy)


def test_an_identity_of_an_unknown_person_is_refused(table_copy):
    with (table_copy / "identities.csv").open("a", encoding="utf-8") as fh:
        fh.write("P9999,wecom,nobody\n")
    with pytest.raises(CodeTableError, match="P9999.*not in the people table"):
        load_code_tables(table_copy)


def test_tables_of_the_last_release_are_still_read(table_copy):
    """people.csv with one id column per system and no identities.csv (the shape before #9)."""
    tables = load_code_tables(table_copy)
    wide = tables.people.assign(
        dingtalk_userid=tables.people.person_id.map(tables.external_ids("dingtalk")),
        kingdee_staff_number=tables.people.person_id.map(tables.external_ids("kingdee")),
    )
    wide.at[1, "kingdee_staff_number"] = ""  # someone without a Kingdee account
    wide.to_csv(table_copy / "people.csv", index=False)
    (table_copy / "identities.csv").unlink()
    old = load_code_tables(table_copy)
    assert list(old.identities.columns) == ["person_id", "system", "external_id"]
    assert old.external_ids("dingtalk") == tables.external_ids("dingtalk")
    assert old.person_by_identity("kingdee", "STF00001") == "P0001"
    assert "P0002" not in old.external_ids("kingdee")


def test_old_id_columns_next_to_identities_csv_say_how_to_move_them(table_copy):
    people = (table_copy / "people.csv").read_text(encoding="utf-8").splitlines()
    people = [people[0] + ",dingtalk_userid"] + [row + ",0123" for row in people[1:]]
    (table_copy / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"dingtalk_userid are identities now.*system dingtalk"):
        load_code_tables(table_copy)
