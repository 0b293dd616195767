"""Feishu's write-back through the corrections pipeline: status comments proposed for a Feishu +
Kingdee chain, approved, pushed once to the Feishu twin over HTTP, found again by their markers,
and never pushed twice (a second push is skipped as done)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oafin.config import load_settings
from oafin.demo import sandbox_environment, settings_sources
from oafin.pipeline.corrections.approval import Decision
from oafin.pipeline.corrections.model import marker_for
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import propose, record_decision
from oafin.pipeline.runtime import code_tables
from oafin.sandbox import credentials
from oafin.sandbox.generator import generate
from oafin.sandbox_server import running_sandbox
from oafin.systems.feishu.client import FeishuClient
from oafin.warehouse import ledger
from oafin.warehouse.store import connect
from tests.test_corrections_helpers import chain_targets
from tests.test_systems_end_to_end import run_pair

SEED = 23
N_CLAIMS = 50


def test_status_comments_land_on_feishu_once(tmp_path: Path) -> None:
    month = generate(seed=SEED, n_claims=N_CLAIMS)
    with running_sandbox(month) as sandbox:
        run_pair(sandbox, "feishu", "kingdee", tmp_path)
        config = tmp_path / "oafin.toml"
        poster = month.people[0].identities["feishu"]
        config.write_text(
            config.read_text(encoding="utf-8") + f'\n[corrections]\ncomment_userid = "{poster}"\n',
            encoding="utf-8",
        )
        settings = load_settings(config)
        engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
        proposed = propose(
            engine, code_tables(settings), comment_userid=poster, targets=chain_targets(settings)
        )
        with engine.connect() as conn:
            rows = {r["idempotency_key"]: r for r in ledger.rows(conn)}
        comments = [k for k in proposed.keys if rows[k]["action"] == "oa_status_comment"]
        assert comments and all(rows[k]["system"] == "feishu" for k in comments)
        record_decision(engine, Decision(approved={k: "审批人 (P0002)" for k in comments}))
        with pytest.MonkeyPatch.context() as mp:
            for key, value in sandbox_environment(settings_sources(settings)).items():
                mp.setenv(key, value)
            sandbox.reset()
            first = push_approved(engine, settings, comments)
            again = push_approved(engine, settings, comments)
        assert {r.outcome for r in first} == {"pushed"}
        assert {r.outcome for r in again} == {"skipped_done"}
        writes = sandbox.received_writes("feishu")
        assert len(writes) == len(comments)
        with engine.connect() as conn:
            done = {r["idempotency_key"]: r for r in ledger.rows(conn, comments)}
        assert all(r["status"] == "done" for r in done.values())
        # each comment is on its claim's instance, with the action's marker, as Feishu keeps it
        with FeishuClient(
            sandbox.url("feishu"), credentials.FEISHU_APP_ID, credentials.FEISHU_APP_SECRET
        ) as fs:
            for key in comments:
                instance = str(rows[key]["target"]).split()[2]
                found = fs.find_comment(instance, marker_for(key))
                assert found is not None and found["open_id"] == poster, key
