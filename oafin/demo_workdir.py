"""``oafin demo --workdir DIR``: which directories the demo may write into (issue #10 item 15).

The demo writes ``oafin.toml``, ``sandbox/`` and ``reports/`` into DIR and keeps its warehouse in
``oafin.db`` there. It refuses a directory that holds anything unless an earlier demo made it
(the marker file), so it never overwrites someone's config or adopts someone's database; in its
own directory it says what it reuses.
"""

from __future__ import annotations

from pathlib import Path

from oafin.config import ConfigError

MARKER = ".oafin-demo"


class WorkdirError(ConfigError):
    """The directory is not one the demo may write into."""


def prepare_demo_workdir(workdir: Path) -> list[str]:
    """Create or check ``workdir``; returns what an earlier demo left there that this one reuses."""
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir} is a file, not a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / MARKER
    if any(workdir.iterdir()) and not marker.exists():
        raise WorkdirError(
            f"--workdir {workdir} is not empty and was not made by `oafin demo` (no {MARKER} file): "
            "the demo would overwrite its oafin.toml and use its oafin.db. Give an empty or new "
            "directory, e.g. --workdir demo-new"
        )
    notes = []
    if (workdir / "oafin.db").exists():
        notes.append(
            f"reusing the warehouse {workdir / 'oafin.db'} of an earlier demo (delete it to start afresh)"
        )
    if (workdir / "oafin.toml").exists():
        notes.append(f"rewriting {workdir / 'oafin.toml'}, written by an earlier demo")
    marker.write_text("made by `oafin demo`; a later `oafin demo --workdir` may reuse this directory\n")
    return notes
