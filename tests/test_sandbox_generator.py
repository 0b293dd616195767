"""The generated month: deterministic, in the APIs' shapes, every finding injected, noise present."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from oafin.sandbox.chain import CHAIN_ONLY_TYPES
from oafin.sandbox.codes import load_codes
from oafin.sandbox.dataset import TRUTH_COLUMNS, Dataset
from oafin.sandbox.finance_fields import luhn_check_digit, uscc_check
from oafin.sandbox.generator import CLAIM_FINDINGS, generate
from oafin.sandbox.tables import TABLES_DIR
from oafin.sandbox_server import sandbox_twins, write_dataset
from oafin.standard import EXCEPTION_TYPES
from oafin.systems.dingtalk.twin_render import FORM
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.systems.kingdee.twin_render import FORM_FIELDS
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows
from tests.test_sandbox_truth import fen, invoice_key

STATUSES = {("COMPLETED", "agree"), ("COMPLETED", "refuse"), ("RUNNING", ""), ("TERMINATED", "")}
BEIJING = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
KINGDEE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def form(instance: dict) -> dict[str, str]:
    return {c["name"]: c["value"] for c in instance["form_component_values"]}


def invoices(instance: dict) -> list[dict[str, str]]:
    rows = json.loads(form(instance)["发票明细"])
    return [{cell["label"]: cell["value"] for cell in row["rowValue"]} for row in rows]


def test_the_same_seed_gives_the_same_month_and_another_seed_another() -> None:
    first, again, other = (
        generate(seed=3, n_claims=200),
        generate(seed=3, n_claims=200),
        generate(seed=4, n_claims=200),
    )
    assert dingtalk_instances(first) == dingtalk_instances(again)
    assert kingdee_rows(first) == kingdee_rows(again)
    assert first.truth.equals(again.truth)
    assert dingtalk_instances(first) != dingtalk_instances(other)
    assert not first.truth.equals(other.truth)


def test_too_few_claims_to_hold_every_finding_is_refused() -> None:
    with pytest.raises(ValueError, match="n_claims"):
        generate(n_claims=10)


def test_every_exception_type_is_injected_often_enough(sandbox_dataset_full: Dataset) -> None:
    counts = Counter(sandbox_dataset_full.truth["exception_type"])
    # the chain's own types are in the chain's truth (oafin.sandbox.chain), not the month's
    assert set(counts) == set(EXCEPTION_TYPES) - set(CHAIN_ONLY_TYPES)
    for kind in (*CLAIM_FINDINGS, "MISSING_IN_OA"):
        assert counts[kind] >= 15, kind
    assert counts["BUDGET_OVERRUN"] >= 2  # a few budget lines, out of 16


def test_truth_has_one_row_per_finding_with_exactly_its_key(sandbox_dataset_full: Dataset) -> None:
    truth = sandbox_dataset_full.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    keys = truth[["claim_no", "doc_no", "invoice_no", "budget_code"]].ne("")
    assert (keys.sum(axis=1) == 1).all(), "each row names exactly one key"
    key_of = {"MISSING_IN_OA": "doc_no", "DUPLICATE_INVOICE": "invoice_no", "INVALID_INVOICE": "invoice_no"}
    for kind, rows in truth.groupby("exception_type"):
        column = key_of.get(str(kind), "budget_code" if kind == "BUDGET_OVERRUN" else "claim_no")
        assert rows[column].ne("").all(), kind
    assert not truth.duplicated().any()


def test_truth_keys_exist_in_the_served_data(sandbox_dataset_full: Dataset) -> None:
    ds = sandbox_dataset_full
    claim_nos = {i["business_id"] for i in dingtalk_instances(ds)}
    bill_nos = {r["FBillNo"] for r in kingdee_rows(ds)["ER_ExpReimbursement"]}
    invoice_keys = {invoice_key(inv) for i in dingtalk_instances(ds) for inv in invoices(i)}
    budget_codes = {code for code, period in load_codes(TABLES_DIR).budgets if period == ds.period}
    truth = ds.truth
    assert set(truth.loc[truth.claim_no != "", "claim_no"]) <= claim_nos
    assert set(truth.loc[truth.doc_no != "", "doc_no"]) <= bill_nos
    assert set(truth.loc[truth.invoice_no != "", "invoice_no"]) <= invoice_keys
    assert set(truth.loc[truth.budget_code != "", "budget_code"]) <= budget_codes


def test_missing_in_oa_bills_carry_no_known_oa_number(sandbox_dataset_full: Dataset) -> None:
    ds = sandbox_dataset_full
    claim_nos = {i["business_id"] for i in dingtalk_instances(ds)}
    orphans = set(ds.truth.loc[ds.truth.exception_type == "MISSING_IN_OA", "doc_no"])
    refs = [r["F_OAFIN_OANo"] for r in kingdee_rows(ds)["ER_ExpReimbursement"] if r["FBillNo"] in orphans]
    assert len(refs) == len(orphans)
    assert all(unicodedata.normalize("NFKC", ref).strip() not in claim_nos for ref in refs)
    assert "" in refs and any(refs), "both an empty and an unknown OA number"


def test_instances_have_the_default_form_and_old_api_shapes(sandbox_dataset: Dataset) -> None:
    codes = load_codes(TABLES_DIR)
    userids = {p.userid for p in codes.people}
    ids = [i["process_instance_id"] for i in dingtalk_instances(sandbox_dataset)]
    assert len(set(ids)) == len(ids)
    for inst in dingtalk_instances(sandbox_dataset):
        assert (inst["status"], inst["result"]) in STATUSES
        assert BEIJING.match(inst["create_time"])
        assert ("finish_time" in inst) == (inst["status"] != "RUNNING")
        assert re.fullmatch(r"BX\d{8}\d{4}", inst["business_id"])
        assert inst["business_id"][2:10] == inst["create_time"][:10].replace("-", "")
        assert inst["originator_userid"] in userids
        for component in inst["form_component_values"]:
            assert isinstance(component["value"], str)
            assert (component["component_type"], component["id"]) == FORM[component["name"]]
        records = inst["operation_records"]
        assert records[0]["operation_type"] == "START_PROCESS_INSTANCE"
        assert records[0]["userid"] == inst["originator_userid"]
        if inst["result"] == "agree":
            agreed = [r for r in records if r["operation_result"] == "AGREE"]
            assert 1 <= len(agreed) <= 2
            assert agreed[-1]["date"] == inst["finish_time"]


def test_kingdee_rows_have_the_default_field_keys(sandbox_dataset: Dataset) -> None:
    for form_id, rows in kingdee_rows(sandbox_dataset).items():
        assert rows, form_id
        fids = [r["FID"] for r in rows]
        assert fids == sorted(set(fids))
        for row in rows:
            assert tuple(row) == FORM_FIELDS[form_id]
            assert KINGDEE.match(row["FDate" if form_id == "ER_ExpReimbursement" else "FDATE"])
    bill_nos = {r["FBillNo"] for r in kingdee_rows(sandbox_dataset)["ER_ExpReimbursement"]}
    for pay in kingdee_rows(sandbox_dataset)["AP_PAYBILL"]:
        sources = [s for s in pay["FSOURCEBILLNO"].split(",") if s]
        assert set(sources) <= bill_nos
        assert sources or pay["F_OAFIN_OANo"], "a payment settles bills or pays an OA claim straight"


def test_clean_claims_have_invoices_that_add_up_and_valid_ids(sandbox_dataset_full: Dataset) -> None:
    ds = sandbox_dataset_full
    flagged_claims = set(ds.truth["claim_no"])
    flagged_invoices = set(ds.truth["invoice_no"])
    checked = 0
    for inst in dingtalk_instances(ds):
        invs = invoices(inst)
        if inst["business_id"] in flagged_claims or {invoice_key(i) for i in invs} & flagged_invoices:
            continue
        values = form(inst)
        assert sum(fen(i["价税合计"]) for i in invs) == fen(values["报销金额"])
        for inv in invs:
            assert fen(inv["不含税金额"]) + fen(inv["税额"]) == fen(inv["价税合计"])
            assert inv["税率"] in {"13%", "9%", "6%", "3%", "1%"}
            rate = Decimal(inv["税率"].rstrip("%")) / 100
            assert abs(fen(inv["不含税金额"]) * rate - fen(inv["税额"])) <= 1
            assert (
                re.fullmatch(r"(\d{10}|\d{12})", inv["发票代码"])
                and re.fullmatch(r"\d{8}", inv["发票号码"])
                or (inv["发票代码"] == "" and re.fullmatch(r"26\d{18}", inv["发票号码"]))
            )
            seller = inv["销售方纳税人识别号"]
            assert uscc_check(seller[:17]) == seller[17]
        card = values["收款账号"]
        assert card.startswith("62") and luhn_check_digit(card[:-1]) == card[-1]
        checked += 1
    assert checked > 2500


def test_clean_claims_are_approved_by_someone_else_within_their_limit(sandbox_dataset_full: Dataset) -> None:
    people = {p.userid: p for p in load_codes(TABLES_DIR).people}
    flagged = set(sandbox_dataset_full.truth["claim_no"])
    for inst in dingtalk_instances(sandbox_dataset_full):
        if inst["result"] != "agree" or inst["business_id"] in flagged:
            continue
        amount = fen(form(inst)["报销金额"])
        for record in inst["operation_records"]:
            if record["operation_result"] == "AGREE":
                assert record["userid"] != inst["originator_userid"]
                assert people[record["userid"]].limit_fen >= amount


def test_noise_of_every_kind_is_present(sandbox_dataset_full: Dataset) -> None:
    ds = sandbox_dataset_full
    amounts = [form(i).get("报销金额", "") for i in dingtalk_instances(ds)]
    assert any("," in a for a in amounts)
    assert any("１" in a or "．" in a for a in amounts)
    assert any(a.startswith("¥") for a in amounts)
    texts = [form(i)[label] for i in dingtalk_instances(ds) for label in ("所属部门", "费用类型", "报销事由")]
    assert any(t != t.rstrip() for t in texts)

    bills = kingdee_rows(ds)["ER_ExpReimbursement"]
    refs = [b["F_OAFIN_OANo"] for b in bills]
    assert any(r != r.strip() for r in refs)
    assert any(r != unicodedata.normalize("NFKC", r) for r in refs)
    assert any(isinstance(b["FExpenseAmount"], str) for b in bills)
    assert any(isinstance(b["FExpenseAmount"], int | float) for b in bills)

    payments = kingdee_rows(ds)["AP_PAYBILL"]
    bill_fen = {b["FBillNo"]: fen(b["FExpenseAmount"]) for b in bills}
    paid: dict[str, list[int]] = defaultdict(list)
    for pay in payments:
        if "," in pay["FSOURCEBILLNO"]:  # a batch: one payment of several bills, for their sum
            sources = pay["FSOURCEBILLNO"].split(",")
            assert fen(pay["FREALPAYAMOUNTFOR_D"]) == sum(bill_fen[s] for s in sources)
        elif pay["FSOURCEBILLNO"]:
            paid[pay["FSOURCEBILLNO"]].append(fen(pay["FREALPAYAMOUNTFOR_D"]))
    assert any("," in p["FSOURCEBILLNO"] for p in payments)
    splits = [bill for bill, parts in paid.items() if len(parts) > 1 and sum(parts) == bill_fen[bill]]
    assert splits

    flagged = set(ds.truth["claim_no"])
    claim_fen = {
        i["business_id"]: fen(form(i)["报销金额"])
        for i in dingtalk_instances(ds)
        if i["business_id"] not in flagged
    }
    off_by_one = [
        b
        for b in bills
        if (ref := unicodedata.normalize("NFKC", b["F_OAFIN_OANo"]).strip()) in claim_fen
        and abs(fen(b["FExpenseAmount"]) - claim_fen[ref]) == 1
    ]
    assert off_by_one

    finished = [i.get("finish_time", "") for i in dingtalk_instances(ds) if i["result"] == "agree"]
    assert any(f.startswith("2026-10-31 23:") and f[14:16] >= "30" for f in finished)
    assert any(f.startswith("2026-10-01 00:") and f[14:16] < "30" for f in finished)
    assert any(f.startswith("2026-09-30 23:") and f[14:16] >= "30" for f in finished)


def test_write_and_read_round_trip(sandbox_dataset: Dataset, tmp_path: Path) -> None:
    write_dataset(sandbox_dataset, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    # every registered twin's rendering (one file or more each), then the month itself
    twin_files = {name for twin in sandbox_twins() for name in twin.files(sandbox_dataset)}
    assert {
        "dingtalk_instances.json",
        "feishu_instances.json",
        "hesine_documents.json",
        "kingdee_AP_PAYBILL.json",
        "kingdee_ER_ExpReimbursement.json",
    } <= twin_files
    assert names == sorted(twin_files | {"manifest.json", "month.json", "truth.csv"})
    again = Dataset.read(tmp_path)
    assert again.claims == sandbox_dataset.claims
    assert (again.bills, again.payments) == (sandbox_dataset.bills, sandbox_dataset.payments)
    assert dingtalk_instances(again) == dingtalk_instances(sandbox_dataset)
    assert kingdee_rows(again) == kingdee_rows(sandbox_dataset)
    written = json.loads((tmp_path / "dingtalk_instances.json").read_text(encoding="utf-8"))
    assert written == dingtalk_instances(sandbox_dataset)
    assert again.truth.equals(sandbox_dataset.truth)
    assert (again.seed, again.period, again.company_code, again.process_code) == (
        sandbox_dataset.seed,
        sandbox_dataset.period,
        sandbox_dataset.company_code,
        "PROC-OAFIN-EXPENSE",
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["claims"] == len(dingtalk_instances(sandbox_dataset))
    assert manifest["counts"]["truth"] == len(sandbox_dataset.truth)
    assert sum(manifest["counts"]["truth_by_type"].values()) == len(sandbox_dataset.truth)
