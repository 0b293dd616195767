"""Crash test: SIGKILL the run at random points, run it again, and nothing is lost or doubled.

The run is the daily flow's data steps (``oafin.run.run_plain``: plan, extract every kind in
committed batches, advance watermarks, standardize, validate, reconcile) in a forked child process
against a sandbox of 50 claims over real HTTP and a SQLite warehouse. Forking keeps it cheap (no
interpreter start, no imports); the child shares nothing with the test but the code.

After every kill the warehouse must be consistent: no record or exception twice, and no
watermark claiming a window whose records are not all landed. Every few kills a run is let
through and the warehouse must then equal a run that was never interrupted; then the next cycle
starts from an empty warehouse, so kills fall both on a first run and on re-runs of a killed one.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from oafin.run import run_plain
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.warehouse.watermarks import extract_watermark
from tests.test_orchestration_support import assert_same, snapshot, write_config

KILLS = 20
COMPLETE_EVERY = 5
SEED = 5
_fork = multiprocessing.get_context("fork")


@pytest.fixture(scope="module")
def crash_sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=SEED, n_claims=50)) as handle:
        yield handle


def _child(config: str, period: str) -> None:
    import oafin.pipeline.extract

    oafin.pipeline.extract.BATCH = 25  # (in the child only) many commits per kind: kills between them
    run_plain(config, period, full=True)


def _run(config: str, period: str, kill_after: float | None = None) -> tuple[float, bool]:
    """Run in a child; SIGKILL it after ``kill_after`` s. Returns (seconds, whether it was killed)."""
    proc = _fork.Process(target=_child, args=(config, period), daemon=True)
    started = time.monotonic()
    proc.start()
    proc.join(kill_after)
    killed = proc.is_alive()
    if killed:
        proc.kill()  # SIGKILL: no cleanup, no rollback handlers, no atexit
        proc.join()
    else:
        assert proc.exitcode == 0, f"the run failed on its own (exit code {proc.exitcode})"
    return time.monotonic() - started, killed


def _consistent(url: str, baseline: dict) -> dict[str, int]:
    """Invariants that must hold after any kill; returns a few counts to show where it died."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            dup_exc = conn.execute(
                text(
                    "select count(*) from (select exception_type, claim_no, doc_no, invoice_no, budget_code "
                    "from exception group by 1,2,3,4,5 having count(*) > 1) d"
                )
            ).scalar_one()
            dup_claims = conn.execute(
                text(
                    "select count(*) from (select claim_no from expense_claim group by 1 having count(*) > 1) d"
                )
            ).scalar_one()
            raw = {tuple(r) for r in conn.execute(text("select system, kind, source_id from raw_record"))}
            marks = [tuple(r) for r in conn.execute(extract_watermark.select())]
            counts = {
                "raw": len(raw),
                "claims": conn.execute(text("select count(*) from expense_claim")).scalar_one(),
                "exceptions": conn.execute(text("select count(*) from exception")).scalar_one(),
                "watermarks": len(marks),
            }
    except Exception as exc:  # a kill before the first table was created
        if "no such table" in str(exc):
            return {"raw": 0, "claims": 0, "exceptions": 0, "watermarks": 0}
        raise
    finally:
        engine.dispose()
    assert dup_exc == 0, "an exception is counted twice"
    assert dup_claims == 0, "a claim is stored twice"
    expected = baseline["raw_record"]
    for system, kind, *_ in marks:
        wanted = expected.loc[(expected["system"] == system) & (expected["kind"] == kind)]
        missing = {(system, kind, s) for s in wanted["source_id"]} - raw
        assert not missing, f"watermark of {system} {kind} advanced with {len(missing)} records not landed"
    return counts


def test_sigkill_at_random_points_loses_and_doubles_nothing(crash_sandbox, tmp_path):
    period = crash_sandbox.dataset.period
    ref = write_config(tmp_path / "ref", crash_sandbox, f"sqlite:///{tmp_path / 'ref' / 'w.db'}", oa_rate=150)
    whole, killed = _run(str(ref), period)
    assert not killed
    baseline = snapshot(f"sqlite:///{tmp_path / 'ref' / 'w.db'}")

    url = f"sqlite:///{tmp_path / 'crash' / 'w.db'}"
    config = str(write_config(tmp_path / "crash", crash_sandbox, url, oa_rate=150))
    rng = random.Random(SEED)
    # Cycles of COMPLETE_EVERY kills, each cycle's points in ascending order: the first kill of a
    # cycle hits a run on an empty warehouse early, the later ones hit re-runs of killed runs.
    delays: list[float] = []
    points = []
    i = 0
    # Until KILLS runs were really killed (a run faster than the drawn point just finishes).
    while sum(p[1] for p in points) < KILLS and len(points) < 5 * KILLS:
        if not delays:
            delays = sorted(rng.uniform(0.0, whole) for _ in range(COMPLETE_EVERY))
        delay = delays.pop(0)
        _, killed = _run(config, period, kill_after=delay)
        points.append((round(delay, 2), killed, _consistent(url, baseline)))
        i += killed
        if killed and i % COMPLETE_EVERY == 0:
            _run(config, period)
            assert_same(baseline, snapshot(url))
            for path in (tmp_path / "crash").glob("w.db*"):  # the next kills start from nothing again
                path.unlink()
            delays = []
    _run(config, period)
    assert_same(baseline, snapshot(url))

    print(f"\nuninterrupted run {whole:.2f} s; kill points (s after start, killed, state after):")
    for point in points:
        print("  ", point)
    killed_points = [p for p in points if p[1]]
    assert len(killed_points) >= KILLS
    # the kills landed across the run: before extraction was done, and after
    assert any(p[2]["watermarks"] < 3 for p in killed_points)
    assert any(p[2]["watermarks"] == 3 for p in killed_points)
