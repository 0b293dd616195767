"""The default WeCom mapping reads the same standard facts as the DingTalk one, claim by claim.

Both twins render the same neutral month; mapped with their default mappings, every claim must
give the same standard record (but its id) and the same invoices. Also the mapping language's
parts WeCom needs: ``value_path``, ``rows_path``, path labels, ``-1`` indexes, epoch seconds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mappings.apply import map_record
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from mappings.parse import parser
from mappings.spec import FieldSpec
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.systems.dingtalk.twin_render import instances
from oafin.systems.wecom.twin_render import approvals


def test_every_claim_maps_to_the_same_facts_as_through_dingtalk(sandbox_dataset: Dataset) -> None:
    tables, context = load_code_tables(), {"company_code": "C01"}
    wecom, dingtalk = (
        load_mapping(default_mapping_path("wecom")),
        load_mapping(default_mapping_path("dingtalk")),
    )
    compared = 0
    for info, inst in zip(approvals(sandbox_dataset), instances(sandbox_dataset), strict=True):
        w = map_record(
            wecom,
            RawRecord("wecom", info["template_id"], info["sp_no"], {"errcode": 0, "info": info}),
            tables,
            context,
        )
        d = map_record(
            dingtalk,
            RawRecord("dingtalk", sandbox_dataset.process_code, inst["process_instance_id"], inst),
            tables,
            context,
        )
        assert [(i.code, i.field) for i in w.issues] == [(i.code, i.field) for i in d.issues], info["sp_no"]
        drop = ("claim_id",)
        assert {k: v for k, v in w.values.items() if k not in drop} == {
            k: v for k, v in d.values.items() if k not in drop
        }, info["sp_no"]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "claim_id"} for r in rows]  # noqa: E731
        assert strip(w.children["claim_invoice"]) == strip(d.children["claim_invoice"]), info["sp_no"]
        compared += 1
    assert compared == len(sandbox_dataset.claims)


def test_value_path_needs_a_form_or_a_label() -> None:
    with pytest.raises(ValueError, match="value_path"):
        FieldSpec.model_validate({"path": "sp_no", "value_path": "text"})
    assert FieldSpec.model_validate({"form": "报销金额", "value_path": "new_money", "parse": "money"})


def test_epoch_seconds_parse_to_utc_and_to_the_business_date() -> None:
    assert parser("epoch_s")("1790000000") == datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)
    # 2026-10-01 00:00 in Beijing is 2026-09-30 16:00 UTC: the business date is the 1st
    assert parser("epoch_s_date")("1790784000") == date(2026, 10, 1)
    assert parser("epoch_s_date")("1790783999") == date(2026, 9, 30)
    with pytest.raises(ValueError):
        parser("epoch_s")("12.5")


def test_the_last_node_is_read_with_index_minus_one(sandbox_dataset: Dataset) -> None:
    mapping, tables = load_mapping(default_mapping_path("wecom")), load_code_tables()
    info = next(i for i in approvals(sandbox_dataset) if i["sp_status"] == 2 and len(i["sp_record"]) > 1)
    record = map_record(
        mapping, RawRecord("wecom", info["template_id"], info["sp_no"], info), tables, {"company_code": "C01"}
    )
    last = info["sp_record"][-1]["details"][0]["sptime"]
    assert record.values["approved_at"] == parser("epoch_s")(last)
    assert record.values["approved_at"] != parser("epoch_s")(info["sp_record"][0]["details"][0]["sptime"])
