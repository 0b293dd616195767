"""``oafin demo``: sandbox + SQLite + local Prefect, on embedded defaults, in one command.

1. generate a seeded company-month (and its truth.csv) into ``<workdir>/sandbox``;
2. serve it as a fake OA and a fake finance system on localhost (``--oa`` / ``--finance``,
   DingTalk and Kingdee by default; default ports when free), and put the sandbox's public fake
   credentials into this process's environment under the sources' variable names
   (``sandbox_environment``: production code never imports them);
3. write ``<workdir>/oafin.toml`` — the config this run used, which also works with
   ``oafin sandbox serve`` running on its defaults;
4. run the daily flow for the period and print where the reports are and how they score
   against the truth.

``fault_rate`` > 0 makes the sandbox answer that share of read calls with a random fault
(oafin.sandbox.faults.RANDOM_KINDS, seeded by ``seed``); the client's read timeout is lowered below the
sandbox's slow answers so those are timeouts. The exceptions.csv must come out the same as
without faults.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from oafin.config import ConfigError, OaFinDefaults, Settings, load_settings, render_toml
from oafin.demo_workdir import prepare_demo_workdir
from oafin.failure import report_failure
from oafin.run import frozen_heap, print_summary, run_flow
from oafin.systems.base import env_name
from oafin.systems.registry import get_system
from oafin.truth import score_files

if TYPE_CHECKING:
    from oafin.prefect_runtime import EarlyServer
    from oafin.sandbox.dataset import Dataset

DEFAULT_OA = "dingtalk"
DEFAULT_FINANCE = "kingdee"
FAULT_TIMEOUT_SECONDS = 1.0  # below sandbox.faults.DEFAULT_SLOW_SECONDS: a slow answer times out


def sandbox_environment(sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The sandbox's public fake credentials as the environment variables the sources read.

    ``sources``: (source name, system name) pairs. The values are ``oafin.sandbox.credentials``'
    ``<SYSTEM>_<FIELD>`` constants, for each credential field the system declares.
    """
    from oafin.sandbox import credentials

    env = {}
    for source, system in sources:
        for field in get_system(system).secret_fields:
            constant = f"{system.upper()}_{field.upper()}".replace("-", "_")  # dingtalk-v1 -> DINGTALK_V1
            env[env_name(source, field)] = str(getattr(credentials, constant))
    return env


def sandbox_env_command(config: Path) -> int:
    """``oafin sandbox env``: ``export`` lines putting the sandbox's public fake credentials where
    ``config``'s sources read them. Refused for a source whose URL is not local: the fake
    credentials are for the sandbox only, and no config key turns them on for a run."""
    import shlex
    from urllib.parse import urlsplit

    from oafin.preflight import LOCAL_HOSTS

    settings = load_settings(config)
    remote = [s for s in settings.sources if (urlsplit(s.base_url).hostname or "") not in LOCAL_HOSTS]
    if remote:
        names = ", ".join(f"{s.name!r} ({s.base_url})" for s in remote)
        raise ConfigError(
            f"{config}: source {names} is not the local sandbox; the sandbox's fake credentials are "
            "for localhost only: set the real app's credentials (OAFIN_SOURCE_<NAME>_<FIELD>) instead"
        )
    for key, value in sandbox_environment(settings_sources(settings)).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def settings_sources(settings: Settings) -> list[tuple[str, str]]:
    return [(s.name, s.system) for s in settings.sources]


def chain_source_names(systems: Sequence[str]) -> list[tuple[str, str]]:
    """(source name, system) for a chain of systems, OA first: ``oa``, then the expense platforms
    (``expense``, ``expense2``, ...), then ``finance``, each named by its registered role."""
    out: list[tuple[str, str]] = []
    for i, system in enumerate(systems):
        role = get_system(system).role
        if i == 0:
            name = "oa"
        elif i == len(systems) - 1 and role == "erp":
            name = "finance"
        else:
            taken = sum(1 for n, _ in out if n.startswith(role))
            name = role if not taken else f"{role}{taken + 1}"
        out.append((name, system))
    return out


def chain_kinds(systems: Sequence[str]) -> dict[str, list[str]]:
    """Source name → the kinds it reads, for a chain's ERP after an expense platform: only the
    forms its default mapping maps to vouchers (the platform holds the bills and payments)."""
    from mappings.loader import default_mapping_path, load_mapping
    from oafin.pipeline.sources import voucher_kinds

    out: dict[str, list[str]] = {}
    names = chain_source_names(systems)
    for i, (name, system) in enumerate(names):
        if i == 0 or get_system(system).role != "erp" or get_system(names[i - 1][1]).role != "expense":
            continue
        vouchers = voucher_kinds(load_mapping(default_mapping_path(system)))
        if vouchers:
            out[name] = vouchers
    return out


def sandbox_url(handle: Any, system: str) -> str:
    """Where the running sandbox serves ``system`` (``handle.url(name)`` where the server has it)."""
    url = getattr(handle, "url", None)
    return url(system) if callable(url) else str(getattr(handle, f"{system}_url"))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class DemoRun:
    """What one demo run made: its config, the flow's summary, and the score against the truth."""

    config_path: Path
    summary: dict[str, Any]
    scores: pd.DataFrame
    settings: Settings


def serve_and_run(
    dataset: Dataset,
    workdir: Path,
    *,
    seed: int,
    fault_rate: float = 0.0,
    ports: tuple[int, int] | None = None,
    oa: str = DEFAULT_OA,
    finance: str = DEFAULT_FINANCE,
    corrections: str | None = None,
    oa_decision: str = "approve",
    chain: Sequence[str] | None = None,
    prefect_server: EarlyServer | None = None,
) -> DemoRun:
    """Steps 1-4 on a generated ``dataset``: write it, serve it, write the config, run the daily flow.

    ``ports`` are the fake DingTalk's and Kingdee's (0: any free port); by default the sandbox's
    own ports when they are free. ``chain``: the systems of a chain, OA first (instead of ``oa``
    and ``finance``); the truth.csv written is then the chain's (``oafin.sandbox.chain``).
    ``prefect_server``: Prefect's temporary server, already starting (``oafin.prefect_runtime.early_server``).
    Raises what the flow raised.
    """
    from oafin import sandbox_server as server
    from oafin.sandbox.chain import truth_for_roles

    workdir.mkdir(parents=True, exist_ok=True)
    dataset.write(workdir / "sandbox")
    systems = list(chain) if chain else [oa, finance]
    roles: list[str] = [get_system(s).role for s in systems]
    truth_for_roles(dataset, roles).to_csv(workdir / "sandbox" / "truth.csv", index=False, encoding="utf-8")
    host = server.DEFAULT_HOST
    if ports is None:
        ports = (server.DEFAULT_DINGTALK_PORT, server.DEFAULT_KINGDEE_PORT)
        if not all(_port_free(host, p) for p in ports):
            print(
                f"note: ports {ports} are busy (is `oafin sandbox serve` running?); the demo uses free ports instead"
            )
            ports = (0, 0)
    # the chain's other twins on their own default ports too, when free (as `oafin sandbox serve
    # --port NAME=PORT` would serve them)
    others: dict[str, int] = {}
    if ports != (0, 0):
        for system in systems:
            twin = getattr(get_system(system), "twin", None)
            if (
                system not in ("dingtalk", "kingdee")
                and twin is not None
                and _port_free(host, twin.default_port)
            ):
                others[system] = twin.default_port
    with server.running_sandbox(
        dataset, host=host, dingtalk_port=ports[0], kingdee_port=ports[1], ports=others
    ) as sandbox:
        config_path = workdir / "oafin.toml"
        if chain:
            text = OaFinDefaults.chain_toml(
                [(name, system, sandbox_url(sandbox, system)) for name, system in chain_source_names(chain)],
                chain_kinds(chain),
            )
        else:
            text = OaFinDefaults.demo_toml(
                sandbox_url(sandbox, oa), sandbox_url(sandbox, finance), oa=oa, finance=finance
            )
        config_path.write_text(text, encoding="utf-8")
        settings = load_settings(config_path)
        os.environ.update(sandbox_environment(settings_sources(settings)))
        if fault_rate:
            sandbox.faults.set_rate(fault_rate, seed=seed)
            for source in settings.sources:
                source.timeout_seconds = FAULT_TIMEOUT_SECONDS
            print(f"faults:  {fault_rate:.0%} of read calls get a random fault (seed {seed})")
        config_path.write_text(render_toml(settings), encoding="utf-8")
        print(f"sandbox: seed {seed}, period {dataset.period}, {len(dataset.claims)} OA claims")
        print(f"config:  {config_path} (relative paths in it resolve against {config_path.parent})")
        summary = run_flow(config_path, dataset.period, server=prefect_server)
        if corrections == "oa":  # issue 17: corrections approved in the sandbox's OA
            from oafin.demo_corrections import run_oa_corrections

            with frozen_heap():  # collected again, as during the daily flow
                run_oa_corrections(sandbox, config_path, settings, dataset.period, oa_decision)
        if fault_rate:
            faulted = [c for c in sandbox.calls if c.fault]
            kinds = sorted({c.fault for c in faulted if c.fault})
            print(f"faults:  {len(faulted)} of {len(sandbox.calls)} calls faulted ({', '.join(kinds)})")
    scores = score_files(Path(summary["reports"]["csv"]), workdir / "sandbox" / "truth.csv")
    return DemoRun(config_path, summary, scores, settings)


def run_demo(
    *,
    seed: int,
    workdir: Path,
    period: str,
    n_claims: int,
    fault_rate: float = 0.0,
    oa: str = DEFAULT_OA,
    finance: str = DEFAULT_FINANCE,
    corrections: str | None = None,
    oa_decision: str = "approve",
    chain: Sequence[str] | None = None,
) -> int:
    from oafin.prefect_runtime import early_server
    from oafin.sandbox.generator import generate

    started = time.monotonic()
    workdir = workdir.resolve()
    for note in prepare_demo_workdir(workdir):  # refuses a directory the demo did not make
        print(f"note: {note}")
    # Prefect's temporary server starts now, alongside the sandbox and the flow's imports; stopped
    # at the end of this block unless the flow was handed it (then Prefect stops it at exit)
    # no garbage collection while it sets up (imports, the data set, the sandbox: next to no
    # garbage); run_flow freezes all that and collects again for the flow
    with frozen_heap(collect=False), early_server() as server:
        dataset = generate(seed=seed, period=period, n_claims=n_claims)
        try:
            demo = serve_and_run(
                dataset,
                workdir,
                seed=seed,
                fault_rate=fault_rate,
                oa=oa,
                finance=finance,
                corrections=corrections,
                oa_decision=oa_decision,
                chain=chain,
                prefect_server=server,
            )
        except Exception as exc:  # one line for the operator; the traceback kept
            report_failure("demo's daily flow", exc)
            return 1
    print_summary(demo.summary)
    print(
        "\nwhat to look at: open report.html in a browser (the first table is what finance must act "
        "on first: money already paid out wrongly); the workbook is what a reviewer edits and "
        "imports back; exceptions.csv is for the data team."
    )
    print("\nhow the exceptions score against the sandbox's truth (precision / recall per type):")
    print(demo.scores.to_string(index=False))
    print(f"\nreproduce (from {Path.cwd()}):")
    for line in reproduce_lines(seed, period, demo.config_path, chain or ()):
        print(f"  {line}")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    return 0


def reproduce_lines(seed: int, period: str, config_path: Path, systems: Sequence[str] = ()) -> list[str]:
    """The demo's run by hand, each line pasteable from the directory the demo ran in; ``systems``
    (a chain's) other than DingTalk and Kingdee are served on their default ports."""
    config = _shown_path(config_path)
    extra = ""
    for system in systems:
        twin = getattr(get_system(system), "twin", None)
        if system not in ("dingtalk", "kingdee") and twin is not None:
            extra += f" --port {system}={twin.default_port}"
    return [
        f".venv/bin/oafin sandbox serve --seed {seed} --period {period}{extra}   # in another terminal",
        f'eval "$(.venv/bin/oafin sandbox env --config {config})"',
        f".venv/bin/oafin run --config {config} --period {period}",
    ]


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (shorter to paste), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


__all__ = ["DemoRun", "run_demo", "serve_and_run", "ConfigError"]
