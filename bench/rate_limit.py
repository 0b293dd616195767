"""Benchmark: requests per second achieved under the shared rate limit, as a share of the limit.

    .venv/bin/python -m bench.rate_limit [--claims 300] [--rates 20,40,100]

Starts a Prefect test server and a sandbox, creates the global rate limit the flow creates
(``tasks.limits.ensure_rate_limits``), and extracts the OA side through the limiter the extract
task uses. For each rate it prints the requests the sandbox answered, the achieved rate over the
run (first to last request) and the busiest one-second window, each as a share of the limit:
the target is at least 90 % and never above. The last case runs two extractions at once, each
with a limiter of its own (as two flow runs in two processes would have) sharing one limit:
together they must stay under it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="oafin-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _config(folder: Path, dingtalk_url: str, kingdee_url: str, rate: float) -> Path:
    from oafin.config import OaFinDefaults
    from oafin.demo import sandbox_environment

    os.environ.update(sandbox_environment([("oa", "dingtalk"), ("finance", "kingdee")]))
    text = OaFinDefaults.demo_toml(dingtalk_url, kingdee_url)
    text = text.replace("rate_limit_per_second = 500", f"rate_limit_per_second = {rate}")
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{folder / "w.db"}"')
    path = folder / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _rates(stamps: list[float]) -> tuple[float, int]:
    """(requests per second from first to last request, most requests in any one second)."""
    stamps = sorted(stamps)
    span = stamps[-1] - stamps[0]
    overall = (len(stamps) - 1) / span if span > 0 else float("inf")
    peak, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    return overall, peak


def run(claims: int, rates: list[float]) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from oafin.config import load_settings
    from oafin.periods import Period
    from oafin.pipeline.extract import extract_source
    from oafin.pipeline.runtime import warehouse
    from oafin.sandbox.generator import generate
    from oafin.sandbox_server import running_sandbox
    from tasks.limits import SharedRateLimiter, ensure_rate_limits, limit_name, source_rate

    dataset = generate(seed=7, n_claims=claims)
    period = Period.parse(dataset.period)
    print(f"sandbox: {claims} claims; OA extraction through the shared Prefect rate limit")
    print(
        f"{'case':28} {'limit/s':>8} {'requests':>9} {'achieved/s':>11} {'share':>7} {'peak 1 s':>9} {'share':>7}"
    )
    with prefect_test_harness(server_startup_timeout=120), running_sandbox(dataset) as sb:
        cases = [(f"one run at {r:g}/s", r, 1) for r in rates] + [
            (f"two runs sharing {rates[0]:g}/s", rates[0], 2)
        ]
        for label, rate, runs in cases:
            folder = Path(tempfile.mkdtemp(prefix="oafin-bench-"))
            settings = load_settings(_config(folder, sb.dingtalk_url, sb.kingdee_url, rate))
            ensure_rate_limits(settings)
            name, rate = limit_name(settings.source("oa")), source_rate(settings.source("oa"))
            start, end = period.extraction_window(settings.reconcile.lookback_days)
            sb.reset()

            def extract(
                i: int, settings=settings, folder=folder, window=(start, end), limit=(name, rate)
            ) -> None:
                engine = warehouse(f"sqlite:///{folder / f'w{i}.db'}")
                extract_source(engine, settings, "oa", *window, limiter=SharedRateLimiter(*limit))

            threads = [threading.Thread(target=extract, args=(i,)) for i in range(runs)]
            began = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - began
            stamps = [c.at for c in sb.calls.snapshot("dingtalk")]
            overall, peak = _rates(stamps)
            print(
                f"{label:28} {rate:8g} {len(stamps):9d} {overall:11.1f} {overall / rate:7.1%} "
                f"{peak:9d} {peak / rate:7.1%}   ({wall:.1f} s wall)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--rates", default="20,40,100")
    args = parser.parse_args()
    run(args.claims, [float(r) for r in args.rates.split(",")])


if __name__ == "__main__":
    main()
