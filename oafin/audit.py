"""``oafin audit verify``: check the hash chain, and the ledger's references into it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import Connection, select

from oafin.config import ConfigError, load_settings
from oafin.warehouse import approvals, audit, ledger
from oafin.warehouse.audit import VerifyReport, audit_log
from oafin.warehouse.ledger import correction_ledger
from oafin.warehouse.store import connect

_HEAD = re.compile(r"([0-9]{1,18}):([0-9a-fA-F]{64})")


def parse_head(text: str) -> tuple[int, str]:
    m = _HEAD.fullmatch(text)
    if m is None:
        raise ConfigError(f"--expect-head must be SEQ:SHA256 as printed by the last run, got {text!r}")
    return int(m.group(1)), m.group(2).lower()


def check_ledger_anchors(conn: Connection, report: VerifyReport) -> None:
    """Each ledger row names the audit row of its latest transition: it must be there, unchanged,
    and the key's audit trail must replay to the row (status, approver, content, applicant).

    This catches the one deletion a chain cannot see by itself, its last rows, and a ledger row
    edited without the audit log (issue #10 item 6)."""
    stored = {
        seq: (digest, subject)
        for seq, digest, subject in conn.execute(
            select(audit_log.c.seq, audit_log.c.row_hash, audit_log.c.subject).where(
                audit_log.c.seq.in_(select(correction_ledger.c.audit_seq))
            )
        )
    }
    trails = ledger.trails(conn)
    for row in ledger.rows(conn):
        key, seq, digest = row["idempotency_key"], row["audit_seq"], row["audit_hash"]
        if seq is None:
            report.problems.append(f"ledger {key[:16]} has no audit anchor (it was removed)")
            continue
        found = stored.get(seq)
        if found is None:
            report.problems.append(
                f"ledger {key[:16]} refers to audit seq {seq}, which is missing (rows were deleted)"
            )
        elif found != (digest, key):
            report.problems.append(f"ledger {key[:16]} refers to audit seq {seq}, which no longer matches")
        else:
            report.problems.extend(ledger.trail_problems(row, trails.get(key, [])))
    check_oa_approvals(conn, report, trails)


def check_oa_approvals(
    conn: Connection, report: VerifyReport, trails: dict[str, list[audit.AuditEntry]]
) -> None:
    """Each OA approval batch replays from its audit trail (instance id, status, approvers), and each
    action approved through the OA names a batch the OA approved, with the same instance and
    approvers, none of whom applied for the action's claim (issue 17)."""
    batches = {b["batch_id"]: b for b in approvals.batches(conn)}
    batch_trails = approvals.trails(conn)
    for batch_id, batch in batches.items():
        report.problems.extend(approvals.trail_problems(batch, batch_trails.get(batch_id, [])))
    for row in ledger.rows(conn):
        key = row["idempotency_key"]
        approvals_of_key = [json.loads(e.payload) for e in trails.get(key, []) if e.event == "approved"]
        for approval in approvals_of_key:
            if approval.get("via") == approvals.VIA_OA:
                report.problems.extend(
                    approvals.ledger_problems(
                        key, approval, row["applicant_id"], batches.get(str(approval.get("batch")))
                    )
                )


def verify_url(url: str, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            report = audit.verify(conn, expect_head)
            check_ledger_anchors(conn, report)
        return report
    finally:
        engine.dispose()


def verify_command(config: Path, expect_head: str | None = None) -> int:
    settings = load_settings(config)
    head = parse_head(expect_head) if expect_head else None
    report = verify_url(settings.warehouse_url, head)
    if report.ok:
        print(f"audit log OK: {report.rows} rows, head {report.head_seq}:{report.head_hash}")
        return 0
    print(f"audit log BROKEN ({len(report.problems)} problems in {report.rows} rows):")
    for problem in report.problems:
        print(f"  {problem}")
    return 1
