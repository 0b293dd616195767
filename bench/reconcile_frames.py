"""The frames ``bench/reconcile.py`` reconciles: one company-month of ``n`` claims, built lean.

Columns and dtypes are what the pipeline hands the engine (``data_contracts.frames``): text as
pandas ``str`` (Arrow ``large_string``), money as ``Int64`` fen, timestamps as
``datetime64[ns, UTC]``. Every text column is built straight into Arrow buffers — numbered ids as
fixed-width ASCII digits written by numpy, labels and people by an Arrow ``take`` from a few
values, noise by Arrow compute — so no Python string object is made per row, and each temporary
is dropped as soon as its column is built. The frames take about 370 bytes of RSS per claim, its
documents and invoice included (382 MiB at 1M claims, 3.4 GiB at 10M); generating them peaks
about 25 % above that.

What finance did with each approved claim (shares of the approved claims): 1.0 % missing,
0.8 % paid a different amount, 0.4 % paid twice, 0.4 % paid to someone else, 0.4 % paid late,
0.4 % paid without the OA number (the rule pass pairs it), 0.3 % paid in two parts without the OA
number (the group pass), 21.3 % a reimbursement bill paid by a payment naming the bill, the rest
paid directly. Noise in the keys: 3 % of the documents' OA numbers carry a trailing space, 2 % are
in lower case. 0.2 % of the invoices were already on the previous claim; 0.2 % of the claims are
approved by their applicant, 0.2 % by an employee; one bill in 200 has no OA claim at all.

People scale with ``n`` (``people_for``): a company with ten times the claims has about ten times
the people, so each person's claims in a month — and so what the rule and group passes see — stay
the same at every size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.frames import TEXT_DTYPE, TS_DTYPE
from oafin.engine.reconcile import References
from oafin.periods import Period

PERIOD = Period.parse("2026-10")
MIN_PEOPLE = 2000
CLAIMS_PER_PERSON = 500  # per month, at most: people = n / 500, at least MIN_PEOPLE
DAY_NS = 86_400 * 10**9
NAT = np.iinfo(np.int64).min

# the fate of each claim: (name, upper bound of its share of the uniform draw)
FATES = (
    ("missing", 0.010),
    ("amount", 0.018),
    ("duplicate", 0.022),
    ("payee", 0.026),
    ("late", 0.030),
    ("rule", 0.034),
    ("split", 0.037),
    ("bill", 0.25),
)
NONE, DIRECT = len(FATES), len(FATES) + 1  # not approved; paid directly (the rest)
FATE = {name: i for i, (name, _) in enumerate(FATES)} | {"none": NONE, "direct": DIRECT}


def people_for(n: int) -> int:
    """People of a company with ``n`` claims a month: n / 500, at least 2,000, a multiple of 10
    (every ten: a director, three managers, six employees)."""
    return max(MIN_PEOPLE, n // CLAIMS_PER_PERSON // 10 * 10)


# --- Arrow text columns without Python objects ----------------------------------------------


def _from_bytes(data: np.ndarray, offsets: np.ndarray) -> pa.LargeStringArray:
    """A ``large_string`` array over a uint8 buffer and int64 offsets (no copy)."""
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.LargeStringArray:
    """``prefix`` + each number zero-padded to ``width`` digits, as fixed-width ASCII."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    w = len(head) + width
    n = len(numbers)
    buf = np.empty((n, w), dtype=np.uint8)
    buf[:, : len(head)] = head
    rest = np.array(numbers, dtype=np.int64)  # a copy: divided in place below
    digit = np.empty(n, dtype=np.int64)
    for col in range(w - 1, len(head) - 1, -1):
        np.divmod(rest, 10, out=(rest, digit))
        buf[:, col] = digit + 48
    del rest, digit
    return _from_bytes(buf.reshape(-1), np.arange(0, (n + 1) * w, w, dtype=np.int64))


def constant(value: str, n: int) -> pa.LargeStringArray:
    """``value`` on each of ``n`` rows."""
    raw = np.frombuffer(value.encode(), dtype=np.uint8)
    w = len(raw)
    data = np.tile(raw, n) if w else np.empty(0, dtype=np.uint8)
    return _from_bytes(data, np.arange(0, (n + 1) * w, w, dtype=np.int64) if w else np.zeros(n + 1, np.int64))


def labels(values: list[str] | pa.Array, codes: np.ndarray) -> pa.Array:
    """``values[codes]`` as ``large_string`` (an Arrow take from a few values)."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string())
    return arr.take(pa.array(codes))


def text(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow text as a pandas ``str`` column (the pipeline's dtype), without a copy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return pd.Series(pd.array(arr, dtype=TEXT_DTYPE))


def fen(values: np.ndarray) -> pd.Series:
    """int64 fen as the pipeline's nullable ``Int64`` (nothing missing)."""
    values = np.asarray(values, dtype=np.int64)
    return pd.Series(pd.arrays.IntegerArray(values, np.zeros(len(values), dtype=bool)))


def ts(ns: np.ndarray) -> pd.Series:
    """int64 ns since the epoch (``NAT`` for missing) as ``datetime64[ns, UTC]``."""
    return pd.Series(np.asarray(ns, dtype=np.int64).view("datetime64[ns]"), dtype=TS_DTYPE)


def _shuffled(perm: np.ndarray, parts: list) -> Any:
    """The parts one after the other, then in the order ``perm``: numpy in, numpy out; Arrow in,
    a pandas ``str`` column out."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)[perm]
    return text(pa.chunked_array([p.cast(pa.large_string()) for p in parts]).take(pa.array(perm)))


# --- the company-month ------------------------------------------------------------------------


def make_frames(n: int, seed: int = 7) -> dict:
    """Claims, documents, invoices and references for one company-month of ``n`` claims."""
    rng = np.random.default_rng(seed)
    n_people = people_for(n)
    start = int(pd.Timestamp(PERIOD.start).value)
    person = rng.integers(0, n_people, n)
    # approvers are managers and directors (people 0-3 of every ten); now and then an employee
    approver = rng.integers(0, n_people // 10, n) * 10 + rng.integers(0, 4, n)
    approver = np.where(approver == person, (approver + 1) % n_people, approver)
    approver = np.where(rng.random(n) < 0.002, (approver // 10) * 10 + 5, approver)
    approver = np.where(rng.random(n) < 0.002, person, approver)  # self-approval
    amount = rng.integers(20_00, 4_000_00, n)
    approved_at = start + rng.integers(0, 20 * 86_400, n) * 10**9
    submitted_at = approved_at - rng.integers(600, 3 * 86_400, n) * 10**9
    # status codes: 0 approved (97 %), 1 rejected, 2 pending
    status = np.where(rng.random(n) < 0.97, 0, np.where(rng.random(n) < 0.5, 1, 2)).astype(np.int8)
    approved = status == 0
    width = max(5, len(str(n_people - 1)))
    people = numbered("P", np.arange(n_people), width)
    claim_no = numbered("BX", np.arange(n), 9)

    claims = pd.DataFrame(
        {
            "claim_id": text(numbered("dingtalk:BX", np.arange(n), 9)),
            "claim_no": text(claim_no),
            "company_code": text(constant("C01", n)),
            "applicant_id": text(people.take(pa.array(person))),
            "amount_fen": fen(amount),
            "status": text(labels(["approved", "rejected", "pending"], status)),
            "submitted_at": ts(submitted_at),
            "approved_at": ts(np.where(approved, approved_at, NAT)),
            "approver_ids": text(people.take(pa.array(approver))),
            "budget_code": text(labels([f"B-{i}-OPS" for i in range(10)], person % 10)),
        }
    )
    del submitted_at, approver, status

    # What finance did with each approved claim.
    r = rng.random(n)
    fate = np.full(n, DIRECT, dtype=np.int8)
    for code, (_, upper) in reversed(list(enumerate(FATES))):
        fate[r < upper] = code
    fate[~approved] = NONE
    del r, approved
    lag = rng.integers(600, 3 * 86_400, n) * 10**9
    paid_at = approved_at + lag + np.where(fate == FATE["late"], 7 * DAY_NS, 0)
    pay_amount = np.where(fate == FATE["amount"], amount + rng.integers(100, 5000, n), amount)
    payee = np.where(fate == FATE["payee"], (person + 7) % n_people, person)
    noisy = rng.random(n)
    ref = pc.if_else(
        pa.array(noisy < 0.03),
        pc.binary_join_element_wise(
            claim_no, pa.scalar(" ", pa.large_string()), pa.scalar("", pa.large_string())
        ),
        claim_no,
    )
    ref = pc.if_else(pa.array((noisy >= 0.03) & (noisy < 0.05)), pc.ascii_lower(ref), ref)
    del noisy, claim_no
    bill_at = approved_at + lag // 2
    del lag

    direct = np.flatnonzero(
        np.isin(fate, [FATE[f] for f in ("direct", "amount", "payee", "late", "duplicate")])
    )
    dup = np.flatnonzero(fate == FATE["duplicate"])
    bill = np.flatnonzero(fate == FATE["bill"])
    rule = np.flatnonzero(fate == FATE["rule"])  # a payment whose OA number was left empty: the rule pass
    split = np.flatnonzero(fate == FATE["split"])  # two payments summing to the claim: the group pass
    del fate
    n_orphan = max(1, n // 200)  # bills with no OA claim, proposed by people outside the claimants
    orphan_at = start + rng.integers(0, 28 * 86_400, n_orphan) * 10**9
    orphan_amount = rng.integers(20_00, 4_000_00, n_orphan)
    first_part = amount[split] // 3

    # The pieces of the documents frame, in order: (kind, prefix, positions of the claims).
    pieces = [
        ("payment", "FKD", direct),
        ("payment", "FKX", dup),
        ("reimbursement", "FYBX", bill),
        ("payment", "FKB", bill),
        ("payment", "FKR", rule),
        ("payment", "FKSA", split),
        ("payment", "FKSB", split),
        ("reimbursement", "FYO", np.arange(n_orphan)),
    ]
    total = sum(len(pos) for _, _, pos in pieces)
    perm = rng.permutation(total)  # the documents come shuffled

    no_ref = [constant("", len(direct)), constant("", len(dup)), constant("", len(bill))]
    doc_no = [numbered(prefix, pos, 9) for _, prefix, pos in pieces]
    docs = {
        "doc_id": _shuffled(
            perm, [numbered(f"kingdee:{kind}:{prefix}", pos, 9) for kind, prefix, pos in pieces]
        ),
        "doc_no": _shuffled(perm, doc_no),
        "doc_type": _shuffled(
            perm, [labels([kind], np.zeros(len(pos), np.int64)) for kind, _, pos in pieces]
        ),
        "company_code": text(constant("C01", total)),
        "claim_no_ref": _shuffled(
            perm,
            [
                ref.take(pa.array(direct)),
                ref.take(pa.array(dup)),
                ref.take(pa.array(bill)),
                constant("", len(bill)),
                constant("", len(rule)),
                constant("", len(split)),
                constant("", len(split)),
                numbered("BXO", np.arange(n_orphan), 9),
            ],
        ),
        "source_doc_nos": _shuffled(
            perm,
            [
                *no_ref,
                doc_no[2],
                constant("", len(rule)),
                constant("", len(split)),
                constant("", len(split)),
                constant("", n_orphan),
            ],
        ),
    }
    del ref, doc_no, no_ref
    docs["payee_id"] = _shuffled(
        perm,
        [
            people.take(pa.array(payee[direct])),
            people.take(pa.array(payee[dup])),
            people.take(pa.array(person[bill])),
            people.take(pa.array(person[bill])),
            people.take(pa.array(person[rule])),
            people.take(pa.array(person[split])),
            people.take(pa.array(person[split])),
            numbered("X", np.arange(n_orphan) % 50, 5),
        ],
    )
    docs["amount_fen"] = fen(
        _shuffled(
            perm,
            [
                pay_amount[direct],
                pay_amount[dup],
                amount[bill],
                amount[bill],
                amount[rule],
                first_part,
                amount[split] - first_part,
                orphan_amount,
            ],
        )
    )
    statuses = ["audited", "paid"]
    docs["status"] = text(
        labels(
            statuses,
            _shuffled(perm, [np.full(len(pos), kind == "payment", dtype=np.int8) for kind, _, pos in pieces]),
        )
    )
    posted = [
        paid_at[direct],
        paid_at[dup] + DAY_NS,
        bill_at[bill],
        paid_at[bill],
        paid_at[rule],
        paid_at[split],
        paid_at[split] + DAY_NS,
        orphan_at,
    ]
    paid = [*posted[:2], np.full(len(bill), NAT), *posted[3:7], np.full(n_orphan, NAT)]
    docs["posted_at"] = ts(_shuffled(perm, posted))
    del posted
    docs["paid_at"] = ts(_shuffled(perm, paid))
    del paid, paid_at, bill_at, pay_amount, payee, perm
    docs_frame = pd.DataFrame(docs)
    del docs

    inv = rng.permutation(n)
    prev = np.arange(n) - (rng.random(n) < 0.002)  # an invoice already on the previous claim
    prev[0] = 0
    invoices = pd.DataFrame(
        {
            "claim_id": claims["claim_id"],  # the claims' own column (copy on write: shared)
            "invoice_code": text(constant("", n)),
            "invoice_no": text(numbered("2644", inv[prev], 16)),
        }
    )
    del inv, prev
    positions = np.arange(n_people)
    roles = labels(
        ["director", "manager", "employee"],
        np.where(positions % 10 == 0, 0, np.where(positions % 10 < 4, 1, 2)),
    )
    references = References(
        people=pd.DataFrame({"person_id": text(people), "role": text(roles)}),
        approval_matrix={"employee": 0, "manager": 2_000_000, "director": 10_000_000},
        budgets=pd.DataFrame(
            {
                "budget_code": [f"B-{i}-OPS" for i in range(10)],
                "period": PERIOD.name,
                "amount_fen": [int(n * 2_000_00 / 10 * (0.9 if i < 3 else 1.2)) for i in range(10)],
            }
        ),
    )
    return {"claims": claims, "docs": docs_frame, "invoices": invoices, "references": references}
