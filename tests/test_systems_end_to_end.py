"""Every registered OA and finance system end to end, the same way: one generated company-month,
served by each system's twin over real HTTP, read by its connector, mapped by its default mapping,
reconciled, and scored against the sandbox's truth.

The systems issues (#12, #13, #15) ask, for each new system, that its run finds exactly the truth
(precision and recall 1.0 on every type), the same counts per type as the DingTalk-topapi run of the
same seed, and the same exceptions with 10 % of the read calls faulted. A new OA system appends its
name to ``OA_SYSTEMS``, a new finance system to ``FINANCE_SYSTEMS``; the tests do the rest.

The runs are the daily flow's data steps as plain functions (``oafin.run.run_plain``: no Prefect,
no report files) into a real SQLite warehouse; ``oafin demo`` runs the same steps inside the flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from oafin.config import OaFinDefaults
from oafin.connectors.limits import RetryPolicy
from oafin.reporting.exceptions_csv import report_frame
from oafin.run import run_plain
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.truth import score

# The baseline pair first: every other system is compared with it.
OA_SYSTEMS = ["dingtalk", "dingtalk-v1", "wecom", "feishu", "weaver", "seeyon"]
FINANCE_SYSTEMS = ["kingdee", "yonyou"]
BASE_OA, BASE_FINANCE = OA_SYSTEMS[0], FINANCE_SYSTEMS[0]

SEED = 23
N_CLAIMS = 240
FAULT_RATE = 0.10
QUICK_RETRY = RetryPolicy(base_delay=0.02, max_delay=0.2)
# Columns that depend on when a run happened, not on what it found.
RUN_COLUMNS = ("exception_id", "first_seen", "last_seen", "run_id")


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=SEED, n_claims=N_CLAIMS)


@pytest.fixture(scope="module")
def served(month: Dataset) -> Iterator[SandboxHandle]:
    """Every registered system's twin, serving the same month."""
    with running_sandbox(month) as handle:
        yield handle


def run_pair(
    sandbox: SandboxHandle, oa: str, finance: str, folder: Path, *, fault_rate: float = 0.0
) -> pd.DataFrame:
    """The exceptions of one run of ``oa`` against ``finance``, as exceptions.csv holds them."""
    from oafin.config import load_settings
    from oafin.demo import FAULT_TIMEOUT_SECONDS, sandbox_environment, settings_sources

    folder.mkdir(parents=True, exist_ok=True)
    text = OaFinDefaults.demo_toml(sandbox.urls[oa], sandbox.urls[finance], oa=oa, finance=finance)
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{folder / "w.db"}"')
    if fault_rate:
        text = text.replace(
            'company_code = "C01"', f'company_code = "C01"\ntimeout_seconds = {FAULT_TIMEOUT_SECONDS}'
        )
    config = folder / "oafin.toml"
    config.write_text(text, encoding="utf-8")
    env = sandbox_environment(settings_sources(load_settings(config)))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        sandbox.reset()
        if fault_rate:
            sandbox.faults.set_rate(fault_rate, seed=SEED)
        try:
            run = run_plain(config, sandbox.dataset.period, full=True, retry=QUICK_RETRY)
        finally:
            sandbox.faults.set_rate(0.0)
    if fault_rate:
        assert sum(1 for c in sandbox.calls if c.fault) >= 3, "too few faults were served to test anything"
    found = report_frame(run["result"].exceptions)
    return found.drop(columns=[c for c in RUN_COLUMNS if c in found.columns])


def counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["exception_type"].value_counts().sort_index().items()}


@pytest.fixture(scope="module")
def baseline(served: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run_pair(served, BASE_OA, BASE_FINANCE, tmp_path_factory.mktemp("baseline"))


def assert_finds_the_truth(found: pd.DataFrame, month: Dataset) -> None:
    scores = score(found, month.truth)
    missed = scores[(scores["precision"] != 1.0) | (scores["recall"] != 1.0)]
    assert missed.empty, f"not exactly the truth:\n{scores.to_string(index=False)}"
    assert set(scores["exception_type"]) == set(month.truth["exception_type"])


PAIRS = [(oa, BASE_FINANCE) for oa in OA_SYSTEMS[1:]] + [(BASE_OA, fin) for fin in FINANCE_SYSTEMS[1:]]
ALL_PAIRS = [(BASE_OA, BASE_FINANCE), *PAIRS]


def test_the_baseline_pair_finds_exactly_the_truth(baseline: pd.DataFrame, month: Dataset) -> None:
    assert_finds_the_truth(baseline, month)


@pytest.mark.parametrize(("oa", "finance"), ALL_PAIRS, ids=[f"{o}-{f}" for o, f in ALL_PAIRS])
def test_each_system_finds_the_truth_with_the_baseline_counts(
    oa: str, finance: str, served: SandboxHandle, baseline: pd.DataFrame, month: Dataset, tmp_path: Path
) -> None:
    """A second run of the baseline pair must also repeat the first; every other pair must equal it."""
    found = run_pair(served, oa, finance, tmp_path)
    assert_finds_the_truth(found, month)
    assert counts(found) == counts(baseline)


@pytest.mark.parametrize(("oa", "finance"), ALL_PAIRS, ids=[f"{o}-{f}" for o, f in ALL_PAIRS])
def test_faults_on_a_tenth_of_the_calls_change_no_exception(
    oa: str, finance: str, served: SandboxHandle, tmp_path: Path
) -> None:
    clean = run_pair(served, oa, finance, tmp_path / "clean")
    faulted = run_pair(served, oa, finance, tmp_path / "faulted", fault_rate=FAULT_RATE)
    pd.testing.assert_frame_equal(faulted, clean)
