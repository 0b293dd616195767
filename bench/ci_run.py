"""Where the time of CI goes: ``.ci/run`` on a fresh clone, each phase timed (issue #16: under 5 min idle).

    .venv/bin/python -m bench.ci_run [--repo .] [--keep] [-- PYTEST_ARGS...]

Clones ``--repo`` (its committed HEAD) into a temporary folder, links the repo's ``.tools`` there when it
has one (uv, as a developer's clone has it), runs ``CI=true bash .ci/run`` and stamps every line it prints.
Prints the phases (set-up, lint beside the system packages and the bytecode, pytest start and collection,
the tests), then as its last line ``total_s= cpu_s= tests= load_start= load_end=``: ``cpu_s`` is the user
and system CPU of everything the run started, which a loaded machine changes far less than the seconds.
Arguments after ``--`` go to pytest (``-- --durations=30``). The clone is deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKS = (  # (phase that ends at this line, a pattern of the line)
    ("uv sync", re.compile(r"^touch \.venv/\.synced")),
    ("bytecode (beside lint)", re.compile(r"^bytecode written")),
    ("lint: ruff, lint-imports, mypy", re.compile(r"^Success: no issues found")),
    ("to the pytest command", re.compile(r"-m pytest -n")),
    ("pytest start and collection", re.compile(r"^\d+ workers \[\d+ items\]|^collected \d+ items")),
    ("the tests", re.compile(r"^=+ .*\b(passed|failed|error)")),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository to clone (default: .)")
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest as PYTEST_ARGS")
    args = parser.parse_args(argv)

    repo = args.repo.resolve()
    clone = Path(tempfile.mkdtemp(prefix="oafin-ci-run-")) / "repo"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    if (repo / ".tools").exists():
        (clone / ".tools").symlink_to((repo / ".tools").resolve())
    env = {**os.environ, "CI": "true", "PYTEST_ARGS": " ".join(args.pytest_args)}
    load_start = os.getloadavg()[0]
    started = time.monotonic()
    ends: dict[str, float] = {}
    tests = ""
    proc = subprocess.Popen(
        ["bash", ".ci/run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - started
        print(f"{now:8.1f} {line}", end="", flush=True)
        for phase, pattern in MARKS:
            if phase not in ends and pattern.search(line.strip()):
                ends[phase] = now
                if phase == "the tests":
                    tests = line.strip().strip("= ")
    code = proc.wait()
    total = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_end = os.getloadavg()[0]
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)

    print(f"\n{'phase':34} {'ends_s':>8} {'takes_s':>8}")
    before = 0.0
    for phase, _ in MARKS:
        if phase in ends:
            print(f"{phase:34} {ends[phase]:8.1f} {ends[phase] - max(before, 0):8.1f}")
            if not phase.startswith("bytecode"):  # bytecode runs beside lint, not before it
                before = ends[phase]
    print(f"exit code {code}")
    print(
        f"total_s={total:.1f} cpu_s={usage.ru_utime + usage.ru_stime:.1f} tests={tests.replace(' ', '_')!s} "
        f"load_start={load_start:.2f} load_end={load_end:.2f}"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
