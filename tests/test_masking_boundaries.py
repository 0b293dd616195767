"""Personal numbers are masked once, where text leaves the source layer, with one policy (issue #10 item 10).

A source's HTTP error body (mobile, bank card, resident id) in retry warnings and the final error;
``exceptions.csv``'s ``invoice_no`` when it is really a card or id number; the warehouse's
``exception.detail``; quarantine's reasons (masked before they are cut) and payload; a number glued
to the label that names it. Business keys stay as they are.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import create_engine, select

from data_contracts.masking import mask_id_number
from oafin.connectors import RetryPolicy, SourceError, TransientError
from oafin.connectors.http import ApiClient, Call
from oafin.masking import is_bank_card, is_resident_id, mask_json, mask_key, redact_text
from oafin.pipeline.standardize import _quarantine_row, plausibility_issues
from oafin.records import Issue, MappedRecord
from oafin.reporting.exceptions_csv import report_frame
from oafin.reporting.redact import redact_text as report_redact
from oafin.warehouse.lifecycle import record_exceptions
from oafin.warehouse.schema import exception, metadata
from tests.test_masking_redact import id_complete, luhn_complete

CARD = luhn_complete("621700" + "012345678901")  # 19-digit UnionPay debit card
RESIDENT = id_complete("11010519900307123")  # 18-character resident id, born 1990-03-07
MOBILE = "13600136000"
SECRETS = (CARD, RESIDENT, MOBILE)


def _leaks(text: str) -> list[str]:
    """Any personal number (or the first 10 characters of one) that survived in ``text``."""
    return [s for s in SECRETS if s in text or s[:10] in text]


class _ErrorBody(http.server.BaseHTTPRequestHandler):
    """A real HTTP server whose answers quote the caller's personal data, as some sources do."""

    def do_POST(self) -> None:
        status = 500 if self.path == "/busy" else 400
        body = f'{{"error": "收款人 张三 手机 {MOBILE} 卡号 {CARD} 身份证 {RESIDENT} rejected"}}'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def error_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorBody)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_error_body_with_personal_numbers_is_masked_in_retries_and_the_final_error(error_server, caplog):
    api = ApiClient("kingdee", error_server, retry=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(TransientError) as busy:
            api.request(Call("kingdee", "Save", f"payee={CARD}"), "POST", "/busy", json={})
        with pytest.raises(SourceError) as refused:
            api.request(Call("kingdee", "Save"), "POST", "/refused", json={})
    finally:
        api.close()
    for error in (busy.value, refused.value):
        text = f"{error} {error.detail} {error.call} {error!r}"
        assert _leaks(text) == [], text
        assert CARD[-4:] in text and RESIDENT[-4:] in text and MOBILE[-4:] in text  # masked, not dropped
    assert "retry 1 of 2" in caplog.text
    assert _leaks(caplog.text) == [], caplog.text


def test_a_number_glued_to_its_label_is_masked_and_an_identifier_is_not():
    assert redact_text("Tel13600136000") == "Tel*******6000"
    assert (
        redact_text("call tel:13600136000 or mobile+8613600136000")
        == "call tel:*******6000 or mobile*******6000"
    )
    assert redact_text(f"card{CARD} ID{RESIDENT}") == f"card{'*' * 15}{CARD[-4:]} ID{'*' * 14}{RESIDENT[-4:]}"
    assert redact_text("ABC13800138000 Paid13600136000") == "ABC13800138000 Paid13600136000"
    assert report_redact is redact_text  # one policy, under both names
    assert mask_id_number(RESIDENT) == "*" * 14 + RESIDENT[-4:]  # ids keep their last 4 only, as in free text


def test_business_keys_stay_unless_they_are_a_card_or_an_id_number():
    malformed = "2644000000000000000"  # a 19-digit invoice number with a digit lost: not a card
    assert not is_bank_card(malformed) and not is_resident_id(malformed)
    for key in ("BX202610020012", "FKD00020001", "26440000000000000001", "1440319001-12345678", malformed):
        assert mask_key(key) == key
    assert is_bank_card(CARD) and is_resident_id(RESIDENT)
    assert mask_key(CARD) == "*" * 15 + CARD[-4:]
    assert mask_key(RESIDENT) == "*" * 14 + RESIDENT[-4:]


def _exceptions(invoice_nos: list[str], detail: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exception_type": ["INVALID_INVOICE"] * len(invoice_nos),
            "claim_no": [f"BX20261002{i:04d}" for i in range(len(invoice_nos))],
            "invoice_no": invoice_nos,
            "detail": [detail] * len(invoice_nos),
            "amount_fen": [100] * len(invoice_nos),
            "first_seen": [datetime(2026, 10, 31, tzinfo=UTC)] * len(invoice_nos),
            "last_seen": [datetime(2026, 10, 31, tzinfo=UTC)] * len(invoice_nos),
        }
    )


def test_exceptions_csv_masks_an_invoice_no_that_is_a_card_or_an_id():
    malformed = "2644000000000000000"
    shown = report_frame(_exceptions([CARD, RESIDENT, malformed], "bad invoice"))
    text = shown.to_csv(index=False)
    assert _leaks(text) == [], text
    assert malformed in set(shown["invoice_no"])  # a malformed invoice number is still findable
    assert set(shown["claim_no"]) == {"BX202610020000", "BX202610020001", "BX202610020002"}


def test_the_warehouse_stores_exception_detail_masked(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    metadata.create_all(engine)
    found = _exceptions(["12345678"], f"paid to {CARD}, applicant id {RESIDENT}, tel {MOBILE}")
    found = found.drop(columns=["first_seen", "last_seen"])
    with engine.begin() as conn:
        record_exceptions(
            conn, found, period="2026-10", as_of=datetime(2026, 10, 31, tzinfo=UTC), company_code="C01"
        )
    with engine.connect() as conn:
        details = [d for (d,) in conn.execute(select(exception.c.detail))]
    engine.dispose()
    assert len(details) == 1
    assert _leaks(details[0]) == [] and CARD[-4:] in details[0]


def test_quarantine_masks_before_cutting_and_keeps_no_payee_account():
    long_title = RESIDENT + " " + "x" * 2100  # too long: shown cut to 40 characters
    issues = plausibility_issues("expense_claim", {"title": long_title})
    assert issues and all(_leaks(i.value or "") == [] for i in issues)
    assert "x" * 10 in issues[0].value  # still shows what it is, masked and cut
    raw = {
        "process_instance_id": "p1",
        "form": [{"name": "收款账号", "value": CARD}, {"name": "电话", "value": MOBILE}],
        "idno": int(RESIDENT[:17]),
    }
    record = MappedRecord(
        "expense_claim",
        "dingtalk",
        "P",
        "p1",
        {"claim_no": "BX202610020001"},
        raw,
        [Issue("CONTRACT_VIOLATION", "payee", CARD, f"account {CARD} not the applicant's")],
    )
    row = _quarantine_row(record)
    stored = row["payload"] + row["reasons"]
    assert _leaks(stored) == [], stored
    assert row["business_key"] == "BX202610020001" and '"p1"' in row["payload"]
    assert record.raw["form"][0]["value"] == CARD  # the record itself (and the raw landing) is untouched


# A Yonyou voucher id is a 19-digit number (source-systems.md §8.1, real-clients.md §2.6), as long
# as a bank card; where the text or the payload says it is a record id, it is one.
VOUCHER_ID = "1874650000000001234"  # the twin's VOUCHER_ID_BASE + a doc id
LINE_ID = 1874660000000012341


def test_yonyou_voucher_ids_in_a_record_id_context_are_not_masked_as_bank_numbers():
    for text in (
        f"yonyou vouchers {VOUCHER_ID}: payload nested too deeply to store",  # extract's unreadable note
        f"yonyou platform_vouchers {VOUCHER_ID}: response not readable",
        f"MISSING_IN_OA yonyou:vouchers:{VOUCHER_ID} (FKD00020001)",  # the standard doc_id
        f"yonyou addVoucher(header.id={VOUCHER_ID}): 310504",
        f"source_id={VOUCHER_ID}, voucher_id: {VOUCHER_ID}",
    ):
        assert redact_text(text) == text
    payload = {"header": {"id": VOUCHER_ID, "billcode": "记-0001"}, "body": [{"id": LINE_ID, "memo": "x"}]}
    assert mask_json(payload) == payload
    error = SourceError(
        "yonyou", f"queryVouchers(source_id={VOUCHER_ID})", f"voucher {VOUCHER_ID} has no lines"
    )
    assert VOUCHER_ID in error.call and VOUCHER_ID in error.detail


def test_a_card_or_id_number_in_a_record_id_context_is_still_masked_and_bare_numbers_too():
    for number in (CARD, RESIDENT):
        for text in (f"voucher_id={number}", f"yonyou:vouchers:{number}", f"yonyou vouchers {number}: x"):
            assert _leaks(redact_text(text) or "") == [], text
        assert _leaks(str(mask_json({"header": {"id": number}, "sourceId": number}))) == []
    # no context: a 19-digit number may be a card that fails Luhn or a corporate account
    # (chinese-finance-fields.md: Luhn does not hold for every card; none for 对公账号)
    assert VOUCHER_ID not in (redact_text(f"paid to {VOUCHER_ID}") or "")
    # keys that name a personal number are no record-id context
    for key in ("bankCardId", "idno", "id_card", "payeeAccountId", "certificateId"):
        assert VOUCHER_ID not in str(mask_json({key: VOUCHER_ID})), key


def test_a_call_naming_a_record_by_an_id_parameter_keeps_the_id():
    """Seeyon flow ids are Java longs, up to 19 digits and signed; the clients name a call by
    ``flowId=``, ``summaryId=``, ``process_instance_id=`` and the like."""
    for text in (
        "seeyon flow/state(flowId=-4812345678901234567): HTTP 500",
        "seeyon flow/state(flowId=4812345678901234567): HTTP 500",
        "summaryId: 4812345678901234567",
        "dingtalk processinstance/get(process_instance_id=4812345678901234567): 820004",
    ):
        assert redact_text(text) == text
    assert mask_json({"summaryId": "-4812345678901234567"}) == {"summaryId": "-4812345678901234567"}
    for text in (f"payeeAccountId={VOUCHER_ID}", f"bankCardId: {VOUCHER_ID}", f"flowId={CARD}"):
        assert VOUCHER_ID not in (redact_text(text) or "") and _leaks(redact_text(text) or "") == [], text
