"""Accuracy of the whole reconciliation over several generated months (issue 3).

Dataset → RawRecords (shaped as the connectors land them: a DingTalk payload is the process
instance, a Kingdee payload the row keyed by field key) → the pipeline's own transforms (mapping,
standardisation with its quarantine, the engine), scored against the generator's truth per
exception type. No HTTP and no warehouse: the sandbox's servers and the store are tested
elsewhere; this is about the rules.

Run as a script for the table the issue note quotes:
``.venv/bin/python -m tests.test_accuracy --seeds 1 2 3 4 5 --n 3000``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pytest

from mappings import default_mapping_path, load_code_tables, load_mapping, map_records
from oafin.engine.reconcile import ReconcileParams
from oafin.periods import Period
from oafin.pipeline.reconcile import build_frames, reconcile_frames
from oafin.pipeline.standardize import standardize_records
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows
from oafin.truth import score

SEEDS = (1, 2, 3, 4, 5)
N_CLAIMS = 3000
MIN_SCORE = 0.995


def raw_records(ds: Dataset) -> tuple[list[RawRecord], list[RawRecord]]:
    oa = [RawRecord("dingtalk", ds.process_code, i["process_instance_id"], i) for i in dingtalk_instances(ds)]
    fin = [
        RawRecord("kingdee", form, str(row["FID"]), row)
        for form, rows in kingdee_rows(ds).items()
        for row in rows
    ]
    return oa, fin


def reconcile_dataset(ds: Dataset, company_code: str = "C01") -> pd.DataFrame:
    """The exceptions the pipeline's own steps find in a generated month (as_of = period end).

    The real transforms, in the pipeline's order, minus the warehouse in between: mapping
    (``mappings.map_records``), standardisation (``oafin.pipeline.standardize.standardize_records``:
    plausibility, contracts, quarantine rows), the engine's frames
    (``oafin.pipeline.reconcile.build_frames``) and the engine (``reconcile_frames``).
    """
    tables = load_code_tables()
    oa, fin = raw_records(ds)
    context = {"company_code": company_code}
    claims = standardize_records(
        "expense_claim", map_records(load_mapping(default_mapping_path("dingtalk")), oa, tables, context)
    )
    docs = standardize_records(
        "finance_doc", map_records(load_mapping(default_mapping_path("kingdee")), fin, tables, context)
    )
    frames = build_frames(
        claims.rows,
        docs.rows,
        claims.invoice_rows,
        [*claims.quarantine_rows, *docs.quarantine_rows],
        company_code,
    )
    period = Period.parse(ds.period)
    return reconcile_frames(frames, ReconcileParams(period=period, as_of=period.end), tables).exceptions


def accuracy_table(seeds: tuple[int, ...], n_claims: int) -> pd.DataFrame:
    parts = []
    for seed in seeds:
        ds = generate(seed=seed, n_claims=n_claims)
        parts.append(score(reconcile_dataset(ds).fillna(""), ds.truth).assign(seed=seed))
    per_seed = pd.concat(parts, ignore_index=True)
    total = per_seed.groupby("exception_type", sort=False)[["truth", "found", "true_positive"]].sum()
    total["precision"] = (total["true_positive"] / total["found"]).round(4)
    total["recall"] = (total["true_positive"] / total["truth"]).round(4)
    worst = per_seed.groupby("exception_type", sort=False)[["precision", "recall"]].min()
    return total.join(worst, rsuffix="_worst_seed").reset_index()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return accuracy_table(SEEDS, N_CLAIMS)


def test_every_type_is_found_with_precision_and_recall_of_at_least_0_995(table: pd.DataFrame) -> None:
    print("\n" + table.to_string(index=False))
    from oafin.sandbox.chain import CHAIN_ONLY_TYPES
    from oafin.standard import EXCEPTION_TYPES

    # a two-system month: the chain's own types are scored by tests/test_systems_chain.py
    expected = set(EXCEPTION_TYPES) - set(CHAIN_ONLY_TYPES)
    assert set(table["exception_type"]) == expected, "every type injected and scored"
    for row in table.itertuples():
        assert row.precision_worst_seed >= MIN_SCORE, table.to_string()
        assert row.recall_worst_seed >= MIN_SCORE, table.to_string()


def test_a_changed_amount_is_noticed(sandbox_dataset: Dataset) -> None:
    """Guard on the guard: the scoring can fail. One clean bill 5 fen off becomes an AMOUNT_MISMATCH."""
    import copy

    ds = copy.deepcopy(sandbox_dataset)
    flagged = set(ds.truth["claim_no"].dropna())
    bill = next(
        r
        for r in kingdee_rows(ds)["ER_ExpReimbursement"]
        # a claim submitted (so approved) in the period, with nothing flagged on it
        if r["F_OAFIN_OANo"].strip().startswith("BX" + ds.period.replace("-", ""))
        and r["F_OAFIN_OANo"].strip() not in flagged
    )
    bill["FExpenseAmount"] = str(Decimal(str(bill["FExpenseAmount"]).replace(",", "")) + Decimal("0.05"))
    found = reconcile_dataset(ds)
    extra = found.loc[~found["claim_no"].isin(flagged) & found["claim_no"].notna()]
    assert set(zip(extra["exception_type"], extra["claim_no"], strict=True)) >= {
        ("AMOUNT_MISMATCH", bill["F_OAFIN_OANo"].strip())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--n", type=int, default=N_CLAIMS)
    args = parser.parse_args()
    start = datetime.now()
    print(accuracy_table(tuple(args.seeds), args.n).to_string(index=False))
    print(f"{len(args.seeds)} seeds x {args.n} claims in {(datetime.now() - start).total_seconds():.1f} s")


if __name__ == "__main__":
    main()
