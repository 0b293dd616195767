"""Kingdee's own SDK reads the Kingdee twin, and agrees with oafin's connector (issue #18).

The official Python SDK (``kingdee-cdp-webapi-sdk`` 8.2.0, import ``k3cloud_webapi_sdk``; a
test-only dev dependency) never logs in: it signs every request with its ``X-Api-*``/``X-Kd-*``
HMAC headers (real-clients.md §1.8). Pointed at the twin over real HTTP, it must read every
reimbursement bill and payment of a small seed through ``ExecuteBillQuery`` and ``BillQuery``,
field by field the same as oafin's connector reads them in either auth mode, ``View`` one bill,
and get errors in the ``ResponseStatus`` envelope. The connector's signature mode must give the
same reconciliation as its session mode (``oafin.run.run_plain``, the demo's data steps).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from k3cloud_webapi_sdk.main import K3CloudApiSdk
from k3cloud_webapi_sdk.util.encode_util import DecodeAppSecret

from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import AuthError
from oafin.connectors.auth import KingdeeSignatureAuth, kingdee_client_secret
from oafin.connectors.limits import no_limit
from oafin.run import run_plain
from oafin.sandbox import credentials
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.kingdee.client import QUERY_SERVICE, AuthMode, KingdeeClient
from oafin.systems.kingdee.twin import SIGNATURE_HEADERS
from oafin.systems.kingdee.twin import TWIN as KINGDEE_TWIN
from tests.test_orchestration_support import write_config

SEED = 23
N_CLAIMS = 50  # the generator's smallest month that still holds every kind of finding
FORMS = ("ER_ExpReimbursement", "AP_PAYBILL")
SDK_PAGE = 17  # a small page: the SDK pages several times per form
MODES: tuple[AuthMode, ...] = ("session", "signature")


@pytest.fixture(scope="module")
def kingdee() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=SEED, n_claims=N_CLAIMS), twins=[KINGDEE_TWIN]) as handle:
        yield handle


def make_sdk(url: str, app_secret: str = credentials.KINGDEE_APP_SECRET) -> K3CloudApiSdk:
    sdk = K3CloudApiSdk(url, timeout=30)
    sdk.InitConfig(
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        app_secret,
        url,
        lcid=2052,
    )
    return sdk


def connector(url: str, mode: AuthMode) -> KingdeeClient:
    return KingdeeClient(
        url,
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        credentials.KINGDEE_APP_SECRET,
        auth_mode=mode,
        limiter=no_limit,
    )


def field_keys(form: str) -> list[str]:
    return list(load_mapping(default_mapping_path("kingdee")).field_keys(form))


def loads(text: str) -> Any:
    """The SDK returns the raw response text; read its numbers exactly, as oafin's connector does."""
    return json.loads(text, parse_float=Decimal)


def sdk_pages(sdk: K3CloudApiSdk, method: str, form: str, keys: list[str]) -> list[Any]:
    """Every row of ``form`` through the SDK's ``method``, paging ``StartRow += Limit`` (§7.3)."""
    rows: list[Any] = []
    while True:
        text = getattr(sdk, method)(
            {
                "FormId": form,
                "FieldKeys": ",".join(keys),
                "FilterString": "",
                "OrderString": "FID ASC",
                "StartRow": len(rows),
                "Limit": SDK_PAGE,
            }
        )
        page = loads(text)
        assert isinstance(page, list), text[:200]
        assert ',"IsSuccess":false,' not in text, text[:300]  # the Java SDK's own error test (§7.3)
        rows += page
        if len(page) < SDK_PAGE:
            return rows


def assert_same_rows(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], what: str) -> None:
    assert len(ours) == len(theirs), f"{what}: {len(ours)} rows by oafin, {len(theirs)} by the SDK"
    for mine, sdks in zip(ours, theirs, strict=True):
        assert list(mine) == list(sdks), f"{what} FID {mine.get('FID')}: keys differ"
        for key in mine:
            assert mine[key] == sdks[key] and type(mine[key]) is type(sdks[key]), (
                f"{what} FID {mine['FID']} {key}: oafin {mine[key]!r}, SDK {sdks[key]!r}"
            )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", FORMS)
def test_sdk_reads_every_bill_and_payment_as_the_connector_does(
    kingdee: SandboxHandle, form: str, mode: AuthMode
) -> None:
    url = kingdee.kingdee_url
    keys = field_keys(form)
    with connector(url, mode) as client:
        ours = list(client.iter_rows(form, keys, "", "FID ASC"))
    expected_ids = [
        d.doc_id
        for d in (kingdee.dataset.bills if form == "ER_ExpReimbursement" else kingdee.dataset.payments)
    ]
    assert [row["FID"] for row in ours] == sorted(expected_ids), "the connector missed or repeated documents"
    assert len(ours) > 2 * SDK_PAGE, "the seed is too small to page the SDK"

    kingdee.calls.clear()
    sdk = make_sdk(url)
    arrays = sdk_pages(sdk, "ExecuteBillQuery", form, keys)
    objects = sdk_pages(sdk, "BillQuery", form, keys)
    assert all(isinstance(row, list) for row in arrays), "ExecuteBillQuery: a bare 2-D array"
    assert all(isinstance(row, dict) for row in objects), "BillQuery: JSON objects"
    assert_same_rows(ours, [dict(zip(keys, row, strict=True)) for row in arrays], f"{form} ExecuteBillQuery")
    assert_same_rows(ours, objects, f"{form} BillQuery")
    assert kingdee.calls.count("LoginByAppSecret") == 0, "the SDK never logs in: the twin must not need it"


def test_signed_calls_get_a_session_that_is_echoed_and_silently_renewed(kingdee: SandboxHandle) -> None:
    """The twin opens a ``kdservice-sessionid`` session on a signed call; the SDK and the connector
    echo it (header + cookie), so no new one is issued while it lives; when it dies the next signed
    call gets a new one with no error (real-clients.md §1.8, source-systems.md §7.2 gotcha)."""
    state = kingdee.state("kingdee")
    sdk = make_sdk(kingdee.kingdee_url)
    sdk_pages(sdk, "BillQuery", "AP_PAYBILL", ["FID"])
    first = sdk.cookiesStore.SID
    assert first, "the twin set no kdservice-sessionid on a signed call"
    sdk_pages(sdk, "ExecuteBillQuery", "AP_PAYBILL", ["FID"])
    assert first == sdk.cookiesStore.SID, "the echoed session was not accepted: a new one was issued"

    with connector(kingdee.kingdee_url, "signature") as client:
        auth = client.auth
        assert isinstance(auth, KingdeeSignatureAuth)
        client.execute_bill_query("AP_PAYBILL", ["FID"], limit=1)
        session = auth.session_id
        client.execute_bill_query("AP_PAYBILL", ["FID"], limit=1)
        assert session and auth.session_id == session
        state.sessions.expire(session)
        assert client.execute_bill_query("AP_PAYBILL", ["FID"], limit=1), "signed call refused"
        assert auth.session_id not in ("", session), "a dead session was not renewed"
        assert sum(client.stats.refreshes.values()) == 0, "signature mode never re-logs in"


def test_sdk_views_one_bill_as_the_connector_reads_it(kingdee: SandboxHandle) -> None:
    form = "ER_ExpReimbursement"
    keys = field_keys(form)
    with connector(kingdee.kingdee_url, "signature") as client:
        row = list(client.iter_rows(form, keys, "", "FID ASC"))[3]
    sdk = make_sdk(kingdee.kingdee_url)
    by_number = loads(sdk.View(form, {"Number": row["FBillNo"]}))
    by_id = loads(sdk.View(form, {"Id": str(row["FID"])}))
    assert by_number == by_id
    status = by_number["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is True and status["SuccessEntitys"][0]["Number"] == row["FBillNo"]
    bill = by_number["Result"]["Result"]  # two nested Result layers (§7.4)
    assert (bill["Id"], bill["Number"]) == (row["FID"], row["FBillNo"])
    for key, value in row.items():
        node: Any = bill
        for part in key.split("."):  # base-data references nest, as in a Save model
            node = node[part]
        assert node == value, f"View {key}: {node!r}, query {value!r}"


def test_sdk_errors_come_in_the_response_status_envelope(kingdee: SandboxHandle) -> None:
    url = kingdee.kingdee_url
    sdk = make_sdk(url)
    unknown_form = json.loads(sdk.BillQuery({"FormId": "ER_ExpenseReimbursement", "FieldKeys": "FID"}))
    status = unknown_form[0][0]["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and status["Errors"][0]["Message"] == "业务对象不存在"
    bad_field = json.loads(sdk.ExecuteBillQuery({"FormId": "AP_PAYBILL", "FieldKeys": "FID,FNoSuch"}))
    assert "FNoSuch" in bad_field[0][0]["Result"]["ResponseStatus"]["Errors"][0]["Message"]
    missing = json.loads(sdk.View("AP_PAYBILL", {"Number": "FKD-NOT-THERE"}))
    assert missing["Result"]["ResponseStatus"]["IsSuccess"] is False

    refused = json.loads(make_sdk(url, app_secret="not-the-secret").BillQuery({"FormId": "AP_PAYBILL"}))
    status = refused[0][0]["Result"]["ResponseStatus"]
    assert (status["IsSuccess"], status["MsgCode"]) == (False, 1)
    assert status["Errors"][0]["Message"] == "会话信息已丢失，请重新登录"  # §7.2 gotcha
    assert status["Errors"][1]["FieldName"] == "X-Kd-Signature"


def test_connector_signs_exactly_as_the_sdk_does(kingdee: SandboxHandle) -> None:
    sdk = make_sdk(kingdee.kingdee_url)
    path = "/k3cloud/" + KingdeeClient.service_path(QUERY_SERVICE)
    theirs = sdk.BuildHeader(kingdee.kingdee_url + KingdeeClient.service_path(QUERY_SERVICE))
    auth = KingdeeSignatureAuth(
        app_id=credentials.KINGDEE_APP_ID,
        app_secret=credentials.KINGDEE_APP_SECRET,
        acct_id=credentials.KINGDEE_ACCT_ID,
        username=credentials.KINGDEE_USERNAME,
        clock=lambda: float(theirs["x-api-timestamp"]),
        nonce=lambda: theirs["x-api-nonce"],
    )
    ours = auth.headers(path)
    assert ours == {name: theirs[name] for name in SIGNATURE_HEADERS}


def test_client_secret_is_derived_from_the_app_id_as_the_sdk_does() -> None:
    rng = random.Random(18)
    alphabet = string.ascii_letters + string.digits + "+/"
    for _ in range(50):
        tail = "".join(rng.choice(alphabet) for _ in range(32))
        mine = kingdee_client_secret(f"224466_{tail}")
        assert mine == DecodeAppSecret(tail) and mine, tail
    assert kingdee_client_secret(credentials.KINGDEE_APP_ID) == DecodeAppSecret("oafinSandboxAppId") == ""
    assert kingdee_client_secret("224466_" + "!" * 32) == ""


def test_twin_refuses_missing_or_tampered_signature_headers(kingdee: SandboxHandle) -> None:
    path = "/k3cloud/" + KingdeeClient.service_path(QUERY_SERVICE)
    auth = KingdeeSignatureAuth(
        app_id=credentials.KINGDEE_APP_ID,
        app_secret=credentials.KINGDEE_APP_SECRET,
        acct_id=credentials.KINGDEE_ACCT_ID,
        username=credentials.KINGDEE_USERNAME,
    )
    body = {"data": {"FormId": "AP_PAYBILL", "FieldKeys": "FID", "Limit": 1}}
    url = kingdee.kingdee_url + KingdeeClient.service_path(QUERY_SERVICE)

    def answer(headers: dict[str, str]) -> Any:
        return httpx.post(url, json=body, headers=headers, timeout=30).json()

    good = auth.headers(path)
    assert isinstance(answer(good)[0][0], int), "well-signed headers read the rows"
    cases = {name: {k: v for k, v in good.items() if k != name} for name in SIGNATURE_HEADERS}
    cases["X-Api-Signature"] = {**good, "x-api-nonce": good["x-api-nonce"] + "0"}  # signed another nonce
    cases["X-Api-Auth-Version"] = {**good, "X-Api-Auth-Version": "1.0"}
    cases["x-api-timestamp"] = {**good, "x-api-timestamp": "yesterday"}
    for header, headers in cases.items():
        status = answer(headers)[0][0]["Result"]["ResponseStatus"]
        assert status["IsSuccess"] is False, header
        assert [e["FieldName"] for e in status["Errors"]][1:] == [header], (header, status["Errors"])
    with connector(kingdee.kingdee_url, "signature") as client:
        client.auth.client_secret = "wrong"  # type: ignore[union-attr]
        with pytest.raises(AuthError, match="signature refused") as caught:
            client.execute_bill_query("AP_PAYBILL", ["FID"], limit=1)
    assert not caught.value.retryable


EXCEPTION_KEYS = ["exception_type", "claim_no", "doc_no", "invoice_no", "budget_code"]


def _exceptions(result: Any) -> pd.DataFrame:
    frame = result.exceptions
    return frame.sort_values(EXCEPTION_KEYS, na_position="first").reset_index(drop=True)


def test_signature_mode_finds_the_same_exceptions_as_session_login(
    kingdee: SandboxHandle, sandbox_credentials_env: dict[str, str], tmp_path: Path
) -> None:
    # The demo's config on its sandbox (a DingTalk twin too), once as is (session, the documented
    # default) and once with `auth = "signature"` on the Kingdee source: the demo's data steps.
    with running_sandbox(kingdee.dataset) as handle:
        period = handle.dataset.period
        session_cfg = write_config(tmp_path / "session", handle, f"sqlite:///{tmp_path / 'session.db'}")
        signed_cfg = write_config(tmp_path / "signature", handle, f"sqlite:///{tmp_path / 'signature.db'}")
        text = signed_cfg.read_text(encoding="utf-8")
        assert text.count('system = "kingdee"\n') == 1
        signed_cfg.write_text(
            text.replace('system = "kingdee"\n', 'system = "kingdee"\nauth = "signature"\n'), encoding="utf-8"
        )
        handle.calls.clear()
        session = run_plain(session_cfg, period, full=True)
        logins = handle.calls.count("LoginByAppSecret")
        handle.calls.clear()
        signed = run_plain(signed_cfg, period, full=True)
        assert handle.calls.count("LoginByAppSecret") == 0, "signature mode logged in"
        assert handle.calls.count("ExecuteBillQuery") > 0
    assert logins >= 1, "session mode did not log in: the two runs did not differ in how they authenticated"
    ours, theirs = _exceptions(session["result"]), _exceptions(signed["result"])
    assert len(ours) > 0 and ours["exception_type"].nunique() > 3
    pd.testing.assert_frame_equal(ours, theirs)
    assert session["landed"] == signed["landed"]


def test_signature_mode_writes_back_and_the_sdk_views_the_result(kingdee: SandboxHandle) -> None:
    # Write-back (issue #6) in signature mode: Save + Submit signed, no login; the SDK sees the bill.
    with running_sandbox(kingdee.dataset, twins=[KINGDEE_TWIN]) as handle:  # its own twin: writes change rows
        with connector(handle.kingdee_url, "signature") as client:
            saved = client.save("ER_ExpReimbursement", {"FCausa": "issue 18", "F_OAFIN_OANo": "BX-SIG-1"})
            client.submit("ER_ExpReimbursement", [saved["Number"]])
        assert handle.calls.count("LoginByAppSecret") == 0
        viewed = loads(make_sdk(handle.kingdee_url).View("ER_ExpReimbursement", {"Id": saved["Id"]}))
    bill = viewed["Result"]["Result"]
    assert (bill["Number"], bill["FCausa"], bill["FDocumentStatus"]) == (saved["Number"], "issue 18", "B")
