"""A group close done for real on this machine (issue #16): a Prefect server on PostgreSQL, a process
work pool, W workers each in a working directory of its own (as if on W machines: no shared files,
no shared PREFECT_HOME; what they share is the server, the warehouse and the rate limits), the
sandbox serving N companies, and the group-close flow over all of them.

``--kill-one`` kills the first worker (its whole process group, as a machine that dies) once it has a
child run in flight: Prefect's zombie automation marks that run Crashed when its heartbeats stop,
the group close schedules it again, and the other worker finishes it. The benchmark then checks
that every company was reconciled by exactly one completed run and that each company's exceptions
equal those of a plain single-company run (``oafin.run.run_plain`` into SQLite).

    .venv/bin/python -m bench.group_close --companies 20 --workers 2 --kill-one

The last line: ``companies= workers= wall_s= serial_s= speedup=`` (``serial_s``: the children's
run times added up, what one worker running them one after another would take).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PERIOD = "2026-10"
POOL = "oafin-group"
HEARTBEAT_SECONDS = 30  # Prefect's minimum; a run with no sign of life for 3 of them is Crashed
DEFAULT_PG = os.environ.get("OAFIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _libpq(url: str, database: str | None = None) -> str:
    """A SQLAlchemy URL as libpq wants it, optionally for another database on the same server."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if database:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(server_url: str, name: str, extensions: tuple[str, ...] = ()) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; its SQLAlchemy URL (psycopg)."""
    from sqlalchemy.engine import make_url

    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(_libpq(server_url, name), autocommit=True) as conn:
        for ext in extensions:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Cluster:
    """A Prefect server and its workers, each a process group of its own."""

    root: Path
    api_url: str
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_dirs: list[Path] = field(default_factory=list)

    def kill_worker(self, i: int) -> None:
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait()

    def stop(self) -> None:
        for proc in [*self.workers, self.server]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)


def _start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_server(root: Path, prefect_db_url: str, port: int) -> Cluster:
    api_url = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    server_env = {
        **base,
        "PREFECT_HOME": str(root / "server-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db_url.replace("+psycopg", "+asyncpg"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    server = _start(
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        root,
        server_env,
        root / "server.log",
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise RuntimeError("prefect server did not answer within 180 s")
    client_env = {
        **base,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # every run (the group close too) shows it is alive every 30 s, so a dead one is known in 90 s
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    }
    return Cluster(root, api_url, client_env, server)


def start_workers(cluster: Cluster, n: int, credentials: dict[str, str], configs: dict[str, str]) -> None:
    """``n`` process workers, each in its own directory with its own copy of the flow files and the
    companies' configs (the same code and configs installed on every machine)."""
    for i in range(n):
        home = cluster.root / f"machine-{i + 1}"
        (home / "configs").mkdir(parents=True)
        shutil.copytree(REPO / "flows", home / "flows")
        for name, text in configs.items():
            (home / "configs" / name).write_text(text, encoding="utf-8")
        env = {
            **cluster.env,
            **credentials,
            "PREFECT_HOME": str(home / ".prefect"),
            "OAFIN_HOME": str(home),
        }
        cmd = [str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
        cmd += ["--name", f"machine-{i + 1}", "--limit", "2"]
        cluster.workers.append(_start(cmd, home, env, cluster.root / f"worker-{i + 1}.log"))
        cluster.worker_dirs.append(home)


def deploy(cluster: Cluster) -> None:
    """The work pool and the daily deployment the group close starts children through."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.utilities.callables import parameter_schema

    from flows.daily import daily

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
        flow_id = client.create_flow_from_name(daily.name)
        client.create_deployment(
            flow_id=flow_id,
            name="daily",
            entrypoint="flows/daily.py:daily",
            work_pool_name=POOL,
            # as prefect.yaml: each machine runs the flow from its own OAFIN_HOME
            pull_steps=[
                {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $OAFIN_HOME }}"}}
            ],
            parameter_openapi_schema=parameter_schema(daily).model_dump(),
        )


def company_codes(n: int) -> list[str]:
    return [f"C{i + 1:02d}" for i in range(n)]


@contextmanager
def serve_companies(codes: list[str], n_claims: int) -> Iterator[dict[str, Any]]:
    """The sandbox for each company (its own DingTalk and Kingdee twins, its own month)."""
    from oafin.sandbox.generator import generate
    from oafin.sandbox_server import running_sandbox
    from oafin.systems.base import twin_of
    from oafin.systems.registry import systems

    twins = [twin_of(systems()[name]) for name in ("dingtalk", "kingdee")]
    with ExitStack() as stack:
        handles = {
            code: stack.enter_context(
                running_sandbox(generate(seed=100 + i, n_claims=n_claims, company_code=code), twins=twins)
            )
            for i, code in enumerate(codes)
        }
        yield handles


def company_schema(warehouse_url: str, code: str) -> str:
    """The company's own schema in the group's warehouse database, created; its URL.

    One schema per company: two companies on two instances of one system can have the same source
    ids (Kingdee FIDs are per instance), and ``<system>:<source id>`` is a record's id in a schema.
    """
    with psycopg.connect(_libpq(warehouse_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(code.lower())))
    sep = "&" if "?" in warehouse_url else "?"
    return f"{warehouse_url}{sep}options=-csearch_path%3D{code.lower()}"


def company_config(handle: Any, code: str, warehouse_url: str) -> str:
    from oafin.config import OaFinDefaults

    text = OaFinDefaults.demo_toml(handle.urls["dingtalk"], handle.urls["kingdee"])
    text = text.replace('company_code = "C01"', f'company_code = "{code}"')
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "{warehouse_url}"')
    return text.replace('dir = "reports"', f'dir = "reports/{code}"')


def credentials_for(config_text: str, folder: Path) -> dict[str, str]:
    from oafin.config import load_settings
    from oafin.demo import sandbox_environment, settings_sources

    path = folder / "probe.toml"
    path.write_text(config_text, encoding="utf-8")
    return sandbox_environment(settings_sources(load_settings(path)))


def exception_keys(warehouse_url: str, company: str) -> list[tuple[str, ...]]:
    """The company's exceptions of the period in the warehouse, as sorted (type, business keys)."""
    from sqlalchemy import create_engine, select

    from oafin.standard import EXCEPTION_KEY_COLUMNS
    from oafin.warehouse.schema import exception

    cols = [exception.c.exception_type, *(exception.c[k] for k in EXCEPTION_KEY_COLUMNS)]
    engine = create_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(*cols).where(exception.c.company_code == company, exception.c.period == PERIOD)
            ).all()
    finally:
        engine.dispose()
    return sorted(tuple(str(v or "") for v in row) for row in rows)


def plain_exceptions(config_text: str, company: str, folder: Path) -> list[tuple[str, ...]]:
    """The same company reconciled alone: the daily steps as plain functions into a SQLite file."""
    from oafin.run import run_plain

    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'w.db'}"
    path = folder / "oafin.toml"
    lines = []
    in_warehouse = False
    for line in config_text.splitlines():
        if line.strip() == "[warehouse]":
            in_warehouse = True
        elif line.startswith("["):
            in_warehouse = False
        if in_warehouse and line.startswith("url = "):
            line = f'url = "{url}"'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_plain(path, PERIOD, full=True)
    return exception_keys(url, company)


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (the flow runs a worker started, whatever session they are in)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_when_busy(cluster: Cluster, stop_at: float) -> dict[str, Any]:
    """Once machine 1's worker has a flow run in flight (a child process), kill the worker and every
    process under it at once, as a machine that loses power; what was killed."""
    victim = cluster.workers[0]
    while time.monotonic() < stop_at and victim.poll() is None:
        busy = _descendants(victim.pid)
        if busy:
            time.sleep(5)  # let the run land something first
            doomed = [victim.pid, *_descendants(victim.pid)]
            for pid in doomed:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            victim.wait()
            return {"killed_processes": len(doomed)}
        time.sleep(0.5)
    return {}


def run(
    n_companies: int, n_workers: int, n_claims: int, *, kill_one: bool, pg: str, keep: bool = False
) -> dict[str, Any]:
    """Everything the module docstring says; returns the summary rows, timings and the checks."""
    import threading

    root = Path(tempfile.mkdtemp(prefix="oafin-group-close-"))
    controller = root / "controller"
    (controller / "configs").mkdir(parents=True)
    # This process is the operator's machine, a client of the same server: Prefect reads its
    # settings when first imported, so they are set before anything imports it.
    port = _free_port()
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[key]
    os.environ.update(
        {
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_HOME": str(controller / ".prefect"),
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    prefect_db = fresh_database(pg, "oafin_group_prefect", ("pg_trgm",))
    warehouse = fresh_database(pg, "oafin_group_warehouse")
    codes = company_codes(n_companies)
    cluster: Cluster | None = None
    cwd = Path.cwd()
    try:
        with serve_companies(codes, n_claims) as handles:
            schemas = {c: company_schema(warehouse, c) for c in codes}
            configs = {f"{c}.toml": company_config(handles[c], c, schemas[c]) for c in codes}
            credentials = credentials_for(configs[f"{codes[0]}.toml"], root)
            cluster = start_server(root, prefect_db, port)
            os.environ.update(credentials)
            deploy(cluster)
            start_workers(cluster, n_workers, credentials, configs)
            for name, text in configs.items():
                (controller / "configs" / name).write_text(text, encoding="utf-8")
            os.chdir(controller)
            killed: dict[str, Any] = {}
            killer = None
            if kill_one:
                killer = threading.Thread(
                    target=lambda: killed.update(_kill_when_busy(cluster, time.monotonic() + 600)),
                    daemon=True,
                )
                killer.start()
            from flows.group_close import group_close

            started = time.monotonic()
            rows = group_close(
                config_paths=[f"configs/{c}.toml" for c in codes],
                period=PERIOD,
                full=True,
                poll_seconds=2.0,
                give_up_after_seconds=1200,
            )
            wall = time.monotonic() - started
            if killer is not None:
                killer.join(timeout=5)
            checks = verify(codes, configs, schemas, root, rows, killed if kill_one else None)
            checks["serial_s"] = serial_seconds()
    finally:
        os.chdir(cwd)
        if cluster is not None:
            cluster.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    table = [json.dumps(r, ensure_ascii=False) for r in rows]
    if killed:
        table.append(f"killed machine-1: its worker and {killed['killed_processes'] - 1} processes under it")
    table += [f"check {k}: {v}" for k, v in checks.items() if k != "serial_s"]
    ok = all(v is True for k, v in checks.items() if k.startswith("ok_"))
    return {
        "rows": rows,
        "wall_s": wall,
        "serial_s": checks["serial_s"],
        "checks": checks,
        "ok": ok,
        "table": table,
    }


def serial_seconds() -> float:
    """The child runs' run times added up (what one worker would take one after another)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["daily"]))
        )
    return sum(r.total_run_time.total_seconds() for r in runs)


def verify(
    codes: list[str],
    configs: dict[str, str],
    schemas: dict[str, str],
    root: Path,
    rows: list[dict[str, Any]],
    killed: dict[str, Any] | None,
) -> dict[str, Any]:
    """Every company completed by exactly one run, with the exceptions of a plain run of it alone."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["daily"]))
        )
    per_company: dict[str, list[str]] = {}
    for r in runs:
        company = str(r.parameters.get("config_path", "")).rsplit("/", 1)[-1].removesuffix(".toml")
        per_company.setdefault(company, []).append(r.state.type.value if r.state else "?")
    checks: dict[str, Any] = {
        "ok_every_company_completed": all(r["state"] == "Completed" for r in rows)
        and len(rows) == len(codes),
        "ok_one_run_per_company": all(per_company.get(c) == ["COMPLETED"] for c in codes),
    }
    if killed is not None:
        checks["ok_a_run_was_killed_and_retried"] = bool(killed) and any(r["retries"] > 0 for r in rows)
    differ = []
    for code in codes:
        group_side = exception_keys(schemas[code], code)
        alone = plain_exceptions(configs[f"{code}.toml"], code, root / "plain" / code)
        if group_side != alone or not alone:
            differ.append(f"{code} ({len(group_side)} vs {len(alone)})")
    checks["ok_exceptions_equal_single_company_runs"] = not differ
    if differ:
        checks["differ"] = ", ".join(differ)
    checks["exceptions_per_company"] = {c: len(exception_keys(schemas[c], c)) for c in codes[:3]}
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-claims", type=int, default=200)
    parser.add_argument("--kill-one", action="store_true", help="kill the first worker mid-run")
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL server (its databases are created)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    result = run(
        args.companies, args.workers, args.n_claims, kill_one=args.kill_one, pg=args.pg, keep=args.keep
    )
    for line in result["table"]:
        print(line)
    print(
        f"companies={args.companies} workers={args.workers} wall_s={result['wall_s']:.1f} "
        f"serial_s={result['serial_s']:.1f} speedup={result['serial_s'] / result['wall_s']:.2f}"
    )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
