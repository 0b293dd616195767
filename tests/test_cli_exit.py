"""How an ``oafin`` command ends: the objects still alive are frozen before the interpreter's final
garbage collections (after a demo, ~1.9M objects walked several times took 9-22 s on a loaded
2-core machine between the last line printed and the exit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_command_freezes_what_is_alive_before_the_interpreter_finalizes(tmp_path: Path) -> None:
    # an atexit handler registered before main() runs after main()'s own (LIFO): it sees the freeze
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count()))\n"
        "from oafin.cli import main\n"
        "print('frozen before exit:', gc.get_freeze_count())\n"
        "sys.exit(main(['sandbox', 'generate', '--n-claims', '60', '--out', sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "frozen before exit: 0" in done.stdout
    frozen = int(done.stdout.rsplit("frozen at exit:", 1)[1].split()[0])
    assert frozen > 10_000  # the modules, the dataset: everything still alive
