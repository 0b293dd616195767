"""The conformance checks: plain functions over a running system under test (``Running``).

Each raises ``AssertionError`` when the system (client + twin) does not conform. The parametrised
tests (``test_conformance.py``) call them for every system; ``test_broken_twin.py`` calls them
against a deliberately broken twin and expects them to fail.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import islice

import pytest

from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.parse import normalize_text
from oafin.connectors import AuthError, BadResponseError, RateLimitedError
from oafin.connectors.errors import UNREADABLE_KEY, ConnectorError
from oafin.pipeline.standardize import plausibility_issues
from oafin.records import RawRecord
from oafin.sandbox.model import Bill, Claim, Payment
from tests.conformance.systems import FAST, ErrorShape, Running, in_window, period_window

DIES_AFTER = 3  # calls a token survives in the expiry checks: it dies several times per read
ARMED = 60  # calls an endless-paging fault lasts: far more than a pager that notices needs


def window(run: Running, kind: str, pages: int, extra: int = 0) -> tuple[datetime, datetime, list[str]]:
    """A window from the period's start holding exactly ``pages`` full pages (+ ``extra`` records).

    The window ends at a moment where the served records change timestamp, so a half-open window
    cuts exactly there, whatever the system filters on.
    """
    sut, p = run.sut, run.sut.page_size
    start, _ = period_window(run.dataset)
    served = sut.served(run.dataset, kind)
    moments = sorted(m for m, _ in served if m >= start)
    n = pages * p + extra
    while n < len(moments) and moments[n - 1] == moments[n]:
        n += p  # the cut would split equal timestamps: take one page more
    assert n < len(moments), f"{sut.name} {kind}: the sandbox month is too small for {pages} pages of {p}"
    end = moments[n]
    expected = in_window(served, start, end)
    assert len(expected) == n
    return start, end, expected


def read_ids(run: Running, kind: str, start: datetime, end: datetime) -> tuple[list[str], int]:
    """Source ids read over HTTP at the forced page size, and how many credential refreshes it took."""
    with run.sut.open(run.url, page_size=run.sut.page_size) as client:
        records = list(run.sut.read(client, kind, start, end))
        return [r.source_id for r in records], sum(client.stats.refreshes.values())


def check_token_fetch(run: Running) -> None:
    sut = run.sut
    with sut.open(run.url) as client:
        assert sut.fetch_token(client), f"{sut.name}: an empty token"
    start, end, _ = window(run, sut.kinds[0], pages=1)
    with sut.open(run.url, bad_credentials=True) as client, pytest.raises(AuthError) as caught:
        list(islice(sut.read(client, sut.kinds[0], start, end), 1))
    assert str(caught.value).startswith(f"{sut.name} {sut.token_call}"), str(caught.value)
    assert not caught.value.retryable, "bad credentials never heal: no retries"


def check_paging_to_the_end(run: Running, kind: str, extra: int) -> None:
    """Every record of the window, once, in the served order; ``extra`` 0: the last page is exactly full."""
    start, end, expected = window(run, kind, pages=3, extra=extra)
    run.handle.calls.clear()
    ids, _ = read_ids(run, kind, start, end)
    missing = [i for i in expected if i not in ids]
    assert not missing, (
        f"{run.sut.name} {kind}: {len(missing)} of {len(expected)} records not read ({extra=})"
    )
    assert ids == expected, f"{run.sut.name} {kind}: records repeated or out of order"
    is_list = run.sut.is_list_path or (lambda path: True)
    pages = sum(1 for c in run.handle.calls if run.sut.list_path in c.path and is_list(c.path))
    most = len(expected) // run.sut.page_size + run.sut.list_walks
    assert pages <= most, f"{pages} list calls for {len(expected)} records"


def check_token_expiry_mid_paging(run: Running, kind: str, envelope: str) -> None:
    """The token dies every ``DIES_AFTER`` calls, answered in ``envelope``: refreshed, nothing lost."""
    start, end, expected = window(run, kind, pages=3, extra=1)
    sut = run.sut
    sut.use_expiry_envelope(run.state, envelope)
    run.handle.set_token_uses(DIES_AFTER, sut.twin.name)
    run.state.tokens.expire()  # the next fetch issues a token that counts its uses
    try:
        ids, refreshes = read_ids(run, kind, start, end)
    finally:
        run.handle.reset()
        sut.use_expiry_envelope(run.state, sut.expiry_envelopes[0])
    assert ids == expected, f"{sut.name} {kind}: records lost or repeated across a token refresh ({envelope})"
    assert refreshes >= 1, f"{sut.name}: the token never died: the check did not test expiry"


def check_rate_limit(run: Running, kind: str, rate_limit: str) -> None:
    """A rate-limit answer is waited out; one that persists past the retry budget names the call."""
    sut = run.sut
    start, end, expected = window(run, kind, pages=2, extra=1)
    run.handle.faults.inject(sut.twin.name, rate_limit, path_contains=sut.list_path, times=2)  # type: ignore[arg-type]
    ids, _ = read_ids(run, kind, start, end)
    assert ids == expected
    assert sum(c.fault == rate_limit for c in run.handle.calls) == 2
    run.handle.faults.inject(
        sut.twin.name,
        rate_limit,  # type: ignore[arg-type]
        path_contains=sut.list_path,
        times=FAST.max_attempts + 2,
    )
    with pytest.raises(RateLimitedError) as caught:
        read_ids(run, kind, start, end)
    assert str(caught.value).startswith(f"{sut.name} {sut.list_call}"), str(caught.value)


def check_error_shape(run: Running, shape: ErrorShape) -> None:
    """A documented error answer gives the documented error class, naming system and call."""
    sut = run.sut
    kind = sut.kinds[0]
    start, end, _ = window(run, kind, pages=1, extra=1)
    run.handle.faults.answer(
        sut.twin.name,
        shape.body,
        status=shape.status,
        path_contains=shape.path_contains,
        times=FAST.max_attempts + 2,
    )
    with pytest.raises(ConnectorError) as caught:
        read_ids(run, kind, start, end)
    error, message = caught.value, str(caught.value)
    assert isinstance(error, shape.error), f"{shape.name}: {type(error).__name__} ({message})"
    assert message.startswith(f"{sut.name} {shape.call}"), message
    assert shape.mentions in message, message


def check_round_trip(run: Running, kind: str) -> None:
    """Records read over HTTP, mapped with the system's default mapping, equal the neutral month's facts."""
    sut = run.sut
    start, end, _ = window(run, kind, pages=3, extra=2)
    with sut.open(run.url, page_size=sut.page_size) as client:
        raws: list[RawRecord] = list(sut.read(client, kind, start, end))
    mapped = map_records(sut.mapping(), raws, load_code_tables(), sut.mapping_context)
    clean = 0
    for raw, record in zip(raws, mapped, strict=True):
        item = sut.month_item(run.dataset, raw)
        if record.issues:
            assert isinstance(item, Claim) and item.quarantined, (raw.source_id, record.issues)
            continue
        facts = record.values
        expected = _standard_facts(item)
        got = {k: facts.get(k) for k in expected}
        assert got == expected, f"{sut.name} {kind} {raw.source_id}: {got} != {expected}"
        clean += 1
    assert clean >= 0.9 * len(raws) and clean > 0


def check_noise_maps_to_the_same_facts(run: Running, kind: str, per_kind: int = 2) -> None:
    """The same fact written differently (full-width digits, thousands separators, a yen sign,
    stray spaces, a hand-typed claim number, a time just past midnight China time) maps to the
    neutral month's fact: a few records of each kind of noise, read over HTTP one by one."""
    sut = run.sut
    chosen: dict[str, list[tuple[datetime, str]]] = {}
    for moment, source_id in sut.served(run.dataset, kind):
        item = sut.month_item(run.dataset, RawRecord(sut.name, kind, source_id, {}))
        for label in _noise(run, item):
            if len(chosen.setdefault(label, [])) < per_kind:
                chosen[label].append((moment, source_id))
    assert chosen, f"{sut.name} {kind}: the sandbox month has no noise to check"
    mapping, tables = sut.mapping(), load_code_tables()
    for label, picks in sorted(chosen.items()):
        for moment, source_id in picks:
            with sut.open(run.url) as client:
                window = sut.read(client, kind, moment, moment + timedelta(seconds=1))
                raws = [r for r in window if r.source_id == source_id]
            assert len(raws) == 1, f"{sut.name} {kind} {source_id}: read {len(raws)} times"
            (record,) = map_records(mapping, raws, tables, sut.mapping_context)
            item = sut.month_item(run.dataset, raws[0])
            assert not record.issues, (label, source_id, record.issues)
            expected = _standard_facts(item)
            got = {k: record.values.get(k) for k in expected}
            assert got == expected, f"{sut.name} {kind} {source_id} ({label}): {got} != {expected}"


def _noise(run: Running, item: Claim | Bill | Payment) -> list[str]:
    """The kinds of harmless noise on one of the month's objects (none on a quarantined claim)."""
    start, _ = period_window(run.dataset)
    if isinstance(item, Claim):
        if item.quarantined:
            return []
        labels = [f"padded {name}" for name in item.text_pad]
        text = item.amount_text or ""
        styles = {"full-width": "．" in text, "thousands": "," in text, "yen sign": text.startswith("¥")}
        labels += [f"amount {style}" for style, present in styles.items() if present]
        if item.finished is not None and abs(item.finished - start) < timedelta(minutes=30):
            labels.append("decided near midnight at the period start")
        return labels
    if isinstance(item, Bill):
        labels = ["claim number hand-typed"] if item.claim and item.oa_no_text != item.claim.claim_no else []
        return (
            labels
            + (["staff id padded"] if item.staff_pad else [])
            + (["amount as text"] if item.amount_as_text else [])
        )
    return (["paid straight from the claim"] if item.oa_no_text else []) + (
        ["batch"] if len(item.bills) > 1 else []
    )


def _standard_facts(item: Claim | Bill | Payment) -> dict[str, object]:
    """What the standard must say about a month's object, whichever system served it."""
    if isinstance(item, Claim):
        facts: dict[str, object] = {
            "claim_no": item.claim_no,
            "applicant_id": item.originator.person_id,
            "amount_fen": item.amount_fen,
            "status": item.status,
            "submitted_at": item.created,
            "budget_code": item.budget_code,
            "title": normalize_text(item.title),
        }
        if item.approved:
            facts["approved_at"] = item.finished
        return facts
    if isinstance(item, Bill):
        ref = normalize_text(item.oa_no_text) or None
        return {
            "doc_no": item.doc_no,
            "doc_type": "reimbursement",
            "amount_fen": item.amount_fen,
            "payee_id": item.proposer.person_id,
            "posted_at": item.when,
            "claim_no_ref": ref,
        }
    return {
        "doc_no": item.doc_no,
        "doc_type": "payment",
        "amount_fen": item.amount_fen,
        "payee_id": item.payee.person_id,
        "paid_at": item.when,
        "source_doc_nos": ",".join(b.doc_no for b in item.bills),
    }


# -- hostile input: the same faults against every system (issue #10 items 11 and 12) -----------


def check_hostile(run: Running, kind: str, hostile: str) -> None:
    """A hostile answer gives a record quarantined with the reason, or an error naming the system
    and call; never a crash (a ``RecursionError``, a ``UnicodeDecodeError``), a hang or a record
    silently lost."""
    {"invalid_utf8": _check_invalid_utf8, "deep_json": _check_deep_json, "empty_pages": _check_empty_pages}[
        hostile
    ](run, kind)


def _faulted_read(run: Running, kind: str, fault: str) -> tuple[list[RawRecord], list[str]]:
    """The window read with ``fault`` on every call it applies to."""
    start, end, expected = window(run, kind, pages=2, extra=1)
    run.handle.faults.set_rate(1.0, kinds=[fault])
    try:
        with run.sut.open(run.url, page_size=run.sut.page_size) as client:
            raws = list(run.sut.read(client, kind, start, end))
    finally:
        run.handle.faults.set_rate(0.0)
    assert any(c.fault == fault for c in run.handle.calls), f"{run.sut.name}: no {fault} fault was served"
    return raws, expected


def _check_invalid_utf8(run: Running, kind: str) -> None:
    """Bytes that are not UTF-8 in an answer: the answer still decodes (they become U+FFFD), every
    record is read, and each record carrying them is quarantined naming it."""
    raws, expected = _faulted_read(run, kind, "invalid_utf8")
    got = [r.source_id for r in raws]
    assert got == expected, f"{run.sut.name} {kind}: records lost or repeated: {got} != {expected}"
    poisoned = [r for r in raws if "\ufffd" in json.dumps(r.payload, ensure_ascii=False, default=str)]
    assert poisoned, f"{run.sut.name} {kind}: the fault reached no record"
    mapped = map_records(run.sut.mapping(), poisoned, load_code_tables(), run.sut.mapping_context)
    for raw, record in zip(poisoned, mapped, strict=True):
        issues = [*record.issues, *plausibility_issues(record.entity, record.values)]
        assert any("UTF-8" in i.message for i in issues), (
            f"{run.sut.name} {kind} {raw.source_id}: undecodable bytes let through ({issues})"
        )


def _check_deep_json(run: Running, kind: str) -> None:
    """JSON nested 100,000 levels deep: a record landed as unreadable naming the call (then
    quarantined), or, when it is a list page, the read stops with an error naming the list call."""
    try:
        raws, expected = _faulted_read(run, kind, "deep_json")
    except BadResponseError as exc:  # a whole list page unreadable: nothing on it can be named
        message = str(exc)
        assert message.startswith(f"{run.sut.name} {run.sut.list_call}"), message
        assert "nested" in message and not exc.retryable, message
        return
    unreadable = [r for r in raws if UNREADABLE_KEY in r.payload]
    # A system that windows on a field of the record itself (WeCom's apply_time) cannot drop an
    # unreadable record at the window's edge: an extra one, quarantined, is no loss.
    got = [r.source_id for r in raws if r.source_id in expected or r not in unreadable]
    assert got == expected, f"{run.sut.name} {kind}: records lost or repeated: {got} != {expected}"
    assert unreadable, f"{run.sut.name} {kind}: the fault reached no record"
    for raw in unreadable:
        reason = str(raw.payload[UNREADABLE_KEY])
        assert reason.startswith(f"{run.sut.name} ") and "nested" in reason, reason


def _check_empty_pages(run: Running, kind: str) -> None:
    """List pages that are empty yet say there is more (a cursor or token that advances over
    nothing, a count not reached): an error naming system and list call, long before the fault
    runs out, never a walk that ends as if the list were done."""
    sut = run.sut
    start, end, _ = window(run, kind, pages=2, extra=1)
    run.handle.faults.inject(sut.twin.name, "empty_pages", path_contains=sut.list_path, times=ARMED)
    with pytest.raises(BadResponseError) as caught:
        read_ids(run, kind, start, end)
    message = str(caught.value)
    assert message.startswith(f"{sut.name} {sut.list_call}"), message
    assert not caught.value.retryable, message
    assert sum(c.fault == "empty_pages" for c in run.handle.calls) < ARMED, "the walk did not notice"
