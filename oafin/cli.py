"""The ``oafin`` command: demo, run, corrections, audit verify, sandbox serve|generate."""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from oafin.config import ConfigError
from oafin.preflight import ArgumentError, UnreachableError, check_period
from oafin.warehouse.errors import WarehouseSchemaError

DEFAULT_PERIOD = "2026-10"
DEFAULT_SEED = 7
_freeze_at_exit = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oafin", description="Reconcile an OA system with a finance system."
    )
    parser.add_argument("--verbose", action="store_true", help="print the traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="start the sandbox, run the daily flow on embedded defaults, print the reports"
    )
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo.add_argument("--workdir", type=Path, default=Path("demo"))
    demo.add_argument("--period", default=DEFAULT_PERIOD)
    demo.add_argument("--n-claims", type=int, default=3000)
    demo.add_argument(
        "--fault-rate", type=float, default=0.0, help="random sandbox faults on this share of calls (0..1)"
    )
    demo.add_argument("--oa", default="dingtalk", help="the OA system the sandbox plays (registered name)")
    demo.add_argument(
        "--finance", default="kingdee", help="the finance system the sandbox plays (registered name)"
    )
    demo.add_argument(
        "--corrections",
        choices=["oa"],
        default=None,
        help="then propose corrections and have them approved in the sandbox's OA (a scripted approver)",
    )
    demo.add_argument(
        "--oa-decision",
        choices=["approve", "reject", "applicant", "withdraw"],
        default="approve",
        help="what the sandbox's scripted approver does with the instance (with --corrections oa)",
    )
    demo.add_argument(
        "--chain",
        default=None,
        help="the chain of systems, OA first, comma-separated (e.g. dingtalk,hesine,kingdee); "
        "replaces --oa/--finance",
    )

    run = sub.add_parser("run", help="run the daily flow for a period with a config file")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--period", required=True)
    run.add_argument(
        "--as-of", default=None, help="ISO date/time (China time if no zone); default: period end"
    )
    run.add_argument(
        "--full",
        action="store_true",
        help="re-extract the whole window instead of reading past the watermarks",
    )

    corr = sub.add_parser(
        "corrections", help="propose corrections for open exceptions; push approved ones with --apply"
    )
    corr.add_argument("--config", type=Path, required=True)
    corr.add_argument("--period", default=None, help="only exceptions first found in this period")
    corr.add_argument(
        "--apply",
        action="store_true",
        help="ask for approval and push (default: dry run, no system is called)",
    )
    corr.add_argument(
        "--check-oa",
        action="store_true",
        help="read the open OA approval instances, push what they approved (the scheduled check)",
    )

    audit = sub.add_parser("audit", help="the hash-chained audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    verify = asub.add_parser("verify", help="detect edited or deleted audit rows")
    verify.add_argument("--config", type=Path, required=True)
    verify.add_argument(
        "--expect-head", default=None, help="SEQ:HASH printed by an earlier run, kept elsewhere"
    )

    review = sub.add_parser("review", help="reviewers' workbook edits")
    rsub = review.add_subparsers(dest="review_command", required=True)
    rimport = rsub.add_parser("import", help="read Status and Comment edits of reconciliation.xlsx back")
    rimport.add_argument("file", type=Path, help="the edited reconciliation.xlsx")
    rimport.add_argument("--config", type=Path, default=Path("oafin.toml"), help="default: ./oafin.toml")

    db = sub.add_parser("db", help="the warehouse's schema")
    dsub = db.add_subparsers(dest="db_command", required=True)
    dupgrade = dsub.add_parser("upgrade", help="migrate the warehouse to the schema this oafin needs")
    dupgrade.add_argument("--config", type=Path, required=True)

    sandbox = sub.add_parser("sandbox", help="the fake DingTalk and Kingdee")
    ssub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = ssub.add_parser("serve", help="serve the fake systems on localhost")
    serve.add_argument("--seed", type=int, default=DEFAULT_SEED)
    serve.add_argument("--period", default=DEFAULT_PERIOD)
    serve.add_argument("--n-claims", type=int, default=3000)
    serve.add_argument("--data", type=Path, default=None, help="serve a generated data folder instead")
    serve.add_argument("--host", default=None)
    serve.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="SYSTEM=PORT",
        help="serve SYSTEM's twin on PORT (repeatable); default: each system's default port",
    )
    serve.add_argument(
        "--fault-rate", type=float, default=0.0, help="random faults on this share of read calls (0..1)"
    )
    senv = ssub.add_parser(
        "env",
        help="print `export` lines with the sandbox's public fake credentials for a config's sources "
        '(local URLs only): eval "$(.venv/bin/oafin sandbox env --config FILE)"',
    )
    senv.add_argument("--config", type=Path, required=True)
    gen = ssub.add_parser("generate", help="write a seeded company-month and its truth.csv")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED)
    gen.add_argument("--period", default=DEFAULT_PERIOD)
    gen.add_argument("--n-claims", type=int, default=3000)
    gen.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # At exit, after every other atexit handler: what is still alive lives until the process ends,
    # so the interpreter's final garbage collections need not walk it. After a demo that is ~1.9M
    # objects, walked several times: 9-22 s between the last line printed and the exit on a
    # loaded 2-core machine, 0.2 s frozen. (In a process that goes on, e.g. tests, nothing changes.)
    global _freeze_at_exit
    if not _freeze_at_exit:
        _freeze_at_exit = True
        atexit.register(gc.freeze)
    # Before Prefect is imported: its anonymous telemetry is what makes a local SQLite server log
    # "database is locked" noise (prefect-notes.md).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if args.verbose:
        os.environ["OAFIN_VERBOSE"] = "1"  # oafin.failure.report_failure prints the traceback
    if args.command in ("demo", "run", "corrections"):  # long runs: the first SIGTERM stops them
        from oafin.stopping import stop_on_first_sigterm

        stop_on_first_sigterm()
    try:
        # arguments are checked before anything starts (a server, the sandbox, Prefect)
        if args.command in ("demo", "sandbox", "corrections"):
            check_period(getattr(args, "period", None), relative=False)
        if args.command == "demo":
            from oafin.demo import run_demo

            return run_demo(
                seed=args.seed,
                workdir=args.workdir,
                period=args.period,
                n_claims=args.n_claims,
                fault_rate=args.fault_rate,
                oa=args.oa,
                finance=args.finance,
                corrections=args.corrections,
                oa_decision=args.oa_decision,
                chain=[s.strip() for s in args.chain.split(",") if s.strip()] if args.chain else None,
            )
        if args.command == "run":
            from oafin.run import run_period

            return run_period(args.config, args.period, args.as_of, full=args.full)
        if args.command == "corrections":
            from flows.corrections import check_command, corrections_command

            if args.check_oa:
                return check_command(args.config)
            return corrections_command(args.config, args.period, args.apply)
        if args.command == "audit":
            from oafin.audit import verify_command

            return verify_command(args.config, args.expect_head)
        if args.command == "db":
            from oafin.db import upgrade_command

            return upgrade_command(args.config)
        if args.command == "review":
            from oafin.review import run_review_import

            return run_review_import(args.config, args.file)
        if args.sandbox_command == "env":
            from oafin.demo import sandbox_env_command

            return sandbox_env_command(args.config)
        if args.sandbox_command == "generate":
            from oafin.sandbox.generator import generate
            from oafin.sandbox_server import write_dataset

            dataset = generate(seed=args.seed, period=args.period, n_claims=args.n_claims)
            write_dataset(dataset, args.out)
            print(f"wrote {len(dataset.claims)} OA claims, each twin's rendering and truth.csv to {args.out}")
            return 0
        return _serve(args)
    except ArgumentError as exc:
        print(f"oafin: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"oafin: config error: {exc}", file=sys.stderr)
        return 2
    except UnreachableError as exc:
        print(f"oafin: {exc}", file=sys.stderr)
        return 1
    except WarehouseSchemaError as exc:
        print(f"oafin: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from oafin import sandbox_server as server
    from oafin.sandbox.generator import Dataset, generate

    dataset = (
        Dataset.read(args.data)
        if args.data
        else generate(seed=args.seed, period=args.period, n_claims=args.n_claims)
    )
    host = args.host or server.DEFAULT_HOST
    ports = _ports(args.port)
    print(f"seed {dataset.seed}, period {dataset.period}: {len(dataset.claims)} OA claims. Ctrl-C stops.")
    server.serve(dataset, host, fault_rate=args.fault_rate, ports=ports)
    return 0


def _ports(values: Sequence[str]) -> dict[str, int]:
    """``["dingtalk=18701"]`` → ``{"dingtalk": 18701}``, each name checked against the registry."""
    from oafin.systems.registry import get_system

    ports: dict[str, int] = {}
    for value in values:
        name, sep, port = value.partition("=")
        if not sep or not port.isdigit():
            raise ConfigError(f"--port takes SYSTEM=PORT, got {value!r}")
        try:
            get_system(name)
        except LookupError as exc:
            raise ConfigError(str(exc)) from None
        ports[name] = int(port)
    return ports


if __name__ == "__main__":
    raise SystemExit(main())
