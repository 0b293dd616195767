"""Chains of systems end to end (issue 14): OA → expense platform (→ ERP vouchers), over real HTTP.

One generated month, served by every twin; a chain config reads each source through its connector,
maps it, and the engine reconciles each adjacent pair and the chain end to end. Each chain must find
exactly its truth (``oafin.sandbox.chain.truth_for_roles``: the month's truth, ``MISSING_IN_OA`` read
as ``EXPENSE_WITHOUT_OA`` against an expense platform, plus the voucher findings), name each
exception's pair, and find the same with 10 % of the read calls faulted. A chain ending in another
ERP (one whose vouchers map to ``doc_type: voucher``) is appended to ``CHAINS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from oafin.config import OaFinDefaults, load_settings
from oafin.connectors.limits import RetryPolicy
from oafin.demo import (
    FAULT_TIMEOUT_SECONDS,
    chain_kinds,
    chain_source_names,
    sandbox_environment,
    settings_sources,
)
from oafin.reporting.exceptions_csv import report_frame
from oafin.run import run_plain
from oafin.sandbox.chain import CHAIN_FINDINGS, truth_for_roles
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.registry import get_system
from oafin.truth import score

CHAINS = [("dingtalk", "hesine"), ("dingtalk", "hesine", "kingdee"), ("dingtalk", "hesine", "yonyou")]
SEED = 23
N_CLAIMS = 240
FAULT_RATE = 0.10
QUICK_RETRY = RetryPolicy(base_delay=0.02, max_delay=0.2)
RUN_COLUMNS = ("exception_id", "first_seen", "last_seen", "run_id")


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=SEED, n_claims=N_CLAIMS)


@pytest.fixture(scope="module")
def served(month: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(month) as handle:
        yield handle


def run_chain(
    sandbox: SandboxHandle, systems: tuple[str, ...], folder: Path, *, fault_rate: float = 0.0
) -> pd.DataFrame:
    """The exceptions of one run of the chain ``systems``, as exceptions.csv holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    names = chain_source_names(systems)
    text = OaFinDefaults.chain_toml(
        [(name, system, sandbox.urls[system]) for name, system in names], chain_kinds(systems)
    )
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


def truth_of(month: Dataset, systems: tuple[str, ...]) -> pd.DataFrame:
    return truth_for_roles(month, [get_system(s).role for s in systems])


IDS = ["-".join(c) for c in CHAINS]


@pytest.mark.parametrize("systems", CHAINS, ids=IDS)
def test_each_chain_finds_exactly_its_truth_and_names_each_pair(
    systems: tuple[str, ...], served: SandboxHandle, month: Dataset, tmp_path: Path
) -> None:
    found = run_chain(served, systems, tmp_path)
    truth = truth_of(month, systems)
    scores = score(found, truth)
    missed = scores[(scores["precision"] != 1.0) | (scores["recall"] != 1.0)]
    assert missed.empty, f"not exactly the truth:\n{scores.to_string(index=False)}"
    assert set(scores["exception_type"]) == set(truth["exception_type"])
    assert "MISSING_IN_OA" not in set(found["exception_type"]), (
        "against an expense platform it is EXPENSE_WITHOUT_OA"
    )
    names = [name for name, _ in chain_source_names(systems)]
    adjacent = set(zip(names, names[1:], strict=False))
    pairs = set(zip(found["left_system"], found["right_system"], strict=True))
    end_to_end = found[(found["left_system"] == names[0]) & (found["right_system"] == names[-1])]
    assert pairs <= adjacent | {(names[0], names[-1])}, pairs
    if len(systems) > 2:
        assert set(end_to_end["exception_type"]) == {"VOUCHER_MISSING"}
        on_vouchers = found[found["exception_type"].isin(CHAIN_FINDINGS)]
        assert set(on_vouchers["right_system"]) == {names[-1]}
        assert (names[1], names[2]) in pairs
    else:
        assert not set(found["exception_type"]) & set(CHAIN_FINDINGS)


@pytest.mark.parametrize("systems", CHAINS, ids=IDS)
def test_faults_on_a_tenth_of_the_calls_change_no_exception_of_a_chain(
    systems: tuple[str, ...], served: SandboxHandle, tmp_path: Path
) -> None:
    clean = run_chain(served, systems, tmp_path / "clean")
    faulted = run_chain(served, systems, tmp_path / "faulted", fault_rate=FAULT_RATE)
    pd.testing.assert_frame_equal(faulted, clean)


def test_a_two_system_chain_names_its_one_pair(served: SandboxHandle, month: Dataset, tmp_path: Path) -> None:
    """OA → ERP as before chains: the month's own truth, every exception on the pair (oa, finance),
    the ERP's vouchers read but never reconciled against the OA."""
    found = run_chain(served, ("dingtalk", "kingdee"), tmp_path)
    scores = score(found, month.truth)
    assert ((scores["precision"] == 1.0) & (scores["recall"] == 1.0)).all(), scores.to_string(index=False)
    assert set(zip(found["left_system"], found["right_system"], strict=True)) == {("oa", "finance")}
