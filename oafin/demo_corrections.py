"""``oafin demo --corrections oa``: after the daily flow, corrections approved in the sandbox's OA.

The run's proposals are sent as one approval instance to the OA twin's corrections form; the
twin's scripted approver (``--oa-decision``: approve, reject, applicant, withdraw) decides it on
its second read; the scheduled check (run here once, as its deployment would) records the decision
and pushes what was approved; the audit trail of the batch is printed and verified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oafin.config import ConfigError, Settings, load_settings

DECISIONS = ("approve", "reject", "applicant", "withdraw")


def oa_corrections_toml(process_code: str, originator: str) -> str:
    return (
        "\n[corrections]\n"
        f'comment_userid = "{originator}"\n'
        'approval = "oa"\n'
        "\n[corrections.oa]\n"
        f'process_code = "{process_code}"\n'
        f'originator_userid = "{originator}"\n'
    )


def run_oa_corrections(
    sandbox: Any, config_path: Path, settings: Settings, period: str, decision: str
) -> dict:
    """Configure approval in the OA, run the corrections flow and the check once; print the outcome."""
    from flows.corrections import check_oa_approvals, corrections
    from oafin.audit import verify_url
    from oafin.pipeline.runtime import code_tables
    from oafin.prefect_runtime import ephemeral_server

    oa = settings.chain_sources[0].system
    desk = getattr(sandbox.state(oa), "desk", None)
    if desk is None:
        raise ConfigError(f"--corrections oa: the {oa} sandbox has no approval desk (no approval instances)")
    if decision not in DECISIONS:
        raise ConfigError(f"--oa-decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    tables = code_tables(settings)
    from oafin.systems.base import approvals_of
    from oafin.systems.registry import get_system

    # the OA's user ids may be another system's identities (an API version sharing its people)
    ids = tables.external_ids(getattr(approvals_of(get_system(oa)), "identity_system", None) or oa)
    people = tables.people
    clerks = [p for p in people.loc[people["role"] == "employee", "person_id"] if p in ids]
    originator = ids[clerks[0]]
    with config_path.open("a", encoding="utf-8") as f:
        f.write(oa_corrections_toml(desk.process_code, originator))
    desk.set_script(decision, after_reads=1)
    print(f"\ncorrections: approval in the OA ({oa} form {desk.process_code}), scripted approver: {decision}")
    with ephemeral_server():
        summary = corrections(config_path=str(config_path.resolve()), period=period, apply=True)
        for b in summary.get("oa", []):
            print(
                f"  {summary['proposed']} actions proposed, sent as OA instance {b['instance_id']}: {b['status']}"
            )
        done = check_oa_approvals(config_path=str(config_path.resolve()))
    counts: dict[str, int] = {}
    for r in done["results"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    for b in done["batches"]:
        print(f"  the check read OA instance {b['instance_id']}: {b['status']} by {b['decided_by']}")
        print(f"  {len(b['approved'])} approved, {len(b['refused'])} refused")
        for key, reason in list(b["refused"].items())[:3]:
            print(f"    refused {key[:16]}: {reason}")
    print(f"  pushed: {counts or 'nothing'}")
    report = verify_url(load_settings(config_path).warehouse_url)
    print(
        f"  audit verify: {'OK' if report.ok else 'BROKEN'}, {report.rows} rows, head {report.head_seq}:{report.head_hash[:16]}"
    )
    for line in audit_trail_lines(load_settings(config_path).warehouse_url):
        print(f"  {line}")
    print(f"  check again by hand: .venv/bin/oafin corrections --check-oa --config {config_path}")
    return done


def audit_trail_lines(url: str, actions: int = 1) -> list[str]:
    """The audit trail of the last OA batch and of its first ``actions`` actions, one line per row."""
    import json

    from oafin.warehouse import approvals, audit
    from oafin.warehouse.store import connect

    engine = connect(url)
    try:
        with engine.connect() as conn:
            batches = approvals.batches(conn)
            if not batches:
                return []
            batch = batches[-1]
            subjects = [approvals.subject(batch["batch_id"]), *approvals.keys_of(batch)[:actions]]
            rows = [e for s in subjects for e in audit.entries(conn, s)]
    finally:
        engine.dispose()
    lines = ["audit trail (seq, event, actor, subject, payload):"]
    for e in sorted(rows, key=lambda e: e.seq):
        payload = json.loads(e.payload)
        if isinstance(payload, dict) and "keys" in payload:
            payload = {**payload, "keys": f"{len(payload['keys'])} keys"}
        if isinstance(payload, dict):
            for name in ("approved", "refused"):
                if isinstance(payload.get(name), list):
                    payload[name] = f"{len(payload[name])} keys"
        text = json.dumps(payload, ensure_ascii=False)
        lines.append(f"  {e.seq:>5} {e.event:<12} {e.actor[:70]:<70} {e.subject[:22]} {text[:160]}")
    return lines
