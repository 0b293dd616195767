"""The speeds the test suite used to assert, measured here instead (a loaded machine failed them).

    .venv/bin/python -m bench.suite_timings [--repeat 3] [--strict]

Each case is the measurement a test made, with the limit it asserted:

- invoice checks: ``check_invoices`` on 10,000 invoices, 200 of them at an illegal VAT rate
  (was ``tests/test_contracts_validate.py``, limit 0.5 s);
- sandbox start: ``running_sandbox`` on two chosen free ports, time until it serves
  (was ``tests/test_sandbox_http.py``, limit 1 s);
- sandbox GETs: 2,000 DingTalk ``processinstance/get`` calls in a row on one connection
  (was ``tests/test_sandbox_http.py``, limit 10 s);
- month generation: ``generate(seed=99, n_claims=3000)``, the default month
  (was ``tests/test_sandbox_generator.py``, limit 8 s).

Prints one line per case (best and worst of ``--repeat`` runs, the old limit, within or OVER), and
as its last line ``cases= over=``. ``--strict`` exits 1 when a best time is over its limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import sys
import time
from collections.abc import Callable

import httpx

from data_contracts.frames import to_frame
from data_contracts.validate import check_invoices
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import running_sandbox
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances

SELLER = "91350100M000100Y43"  # the standard's example USCC, correct check character


def _invoices(n: int = 10_000, bad_every: int = 50) -> list[dict]:
    rows = [
        {
            "claim_id": f"dingtalk:PI-{i}",
            "invoice_code": "044002600111",
            "invoice_no": f"{i:08d}",
            "issue_date": dt.date(2026, 10, 5),
            "amount_ex_tax_fen": 100_000,
            "tax_fen": 6_000,
            "total_fen": 106_000,
            "tax_rate_bp": 600,
            "seller_tax_id": SELLER,
        }
        for i in range(n)
    ]
    for i in range(0, n, bad_every):
        rows[i] = {**rows[i], "tax_rate_bp": 1600}  # 16 % is no longer a legal rate in 2026
    return rows


def invoice_checks() -> Callable[[], float]:
    frame = to_frame("claim_invoice", _invoices())

    def run() -> float:
        started = time.perf_counter()
        report = check_invoices(frame)
        elapsed = time.perf_counter() - started
        assert len(report) == 200, len(report)
        return elapsed

    return run


def _free_ports(n: int) -> list[int]:
    ports = []
    for _ in range(n):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    return ports


def sandbox_start(dataset: Dataset) -> Callable[[], float]:
    def run() -> float:
        ports = _free_ports(2)
        started = time.perf_counter()
        with running_sandbox(dataset, dingtalk_port=ports[0], kingdee_port=ports[1]) as sb:
            elapsed = time.perf_counter() - started
            assert httpx.get(sb.dingtalk_url + "/gettoken").json()["errcode"] != 0
        return elapsed

    return run


def sandbox_gets(dataset: Dataset, n: int = 2000) -> Callable[[], float]:
    ids = [i["process_instance_id"] for i in dingtalk_instances(dataset)]

    def run() -> float:
        with running_sandbox(dataset) as sb, httpx.Client(timeout=10) as http:
            params = {"appkey": credentials.DINGTALK_APP_KEY, "appsecret": credentials.DINGTALK_APP_SECRET}
            token = http.get(f"{sb.dingtalk_url}/gettoken", params=params).json()["access_token"]
            started = time.perf_counter()
            for instance_id in (ids * (n // len(ids) + 1))[:n]:
                answer = http.post(
                    f"{sb.dingtalk_url}/topapi/processinstance/get",
                    params={"access_token": token},
                    json={"process_instance_id": instance_id},
                )
                assert answer.status_code == 200 and answer.json()["errcode"] == 0, answer.text
            return time.perf_counter() - started

    return run


def month_generation() -> float:
    started = time.perf_counter()
    generate(seed=99, n_claims=3000)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best one is compared")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a case's best time is over its limit"
    )
    args = parser.parse_args(argv)

    dataset = generate(seed=7, n_claims=300)  # the test session's sandbox month
    cases: list[tuple[str, float, Callable[[], float]]] = [
        ("invoice checks, 10,000 invoices", 0.5, invoice_checks()),
        ("sandbox start on chosen ports", 1.0, sandbox_start(dataset)),
        ("sandbox, 2,000 DingTalk gets", 10.0, sandbox_gets(dataset)),
        ("generate the default month (3,000)", 8.0, month_generation),
    ]
    print(f"{'case':38} {'best_s':>8} {'worst_s':>8} {'limit_s':>8}  verdict")
    over = 0
    for label, limit, run in cases:
        times = [run() for _ in range(max(1, args.repeat))]
        best, worst = min(times), max(times)
        verdict = "within" if best < limit else "OVER"
        over += verdict == "OVER"
        print(f"{label:38} {best:8.3f} {worst:8.3f} {limit:8.1f}  {verdict}", flush=True)
    print(f"cases={len(cases)} over={over}")
    return 1 if args.strict and over else 0


if __name__ == "__main__":
    sys.exit(main())
