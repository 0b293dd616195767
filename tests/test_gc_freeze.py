"""The garbage collector and a run's ~2M long-lived objects: frozen while a run sets up and runs
(``oafin.run.frozen_heap``), and at exit before the interpreter's final collections (after a demo,
~1.9M objects walked several times took 9-22 s on a loaded 2-core machine after the last line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oafin.run import frozen_heap


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


def test_a_frozen_heap_is_given_back_when_the_outermost_block_ends() -> None:
    import gc

    assert gc.isenabled() and gc.get_freeze_count() == 0
    with frozen_heap(collect=False):  # the demo's set-up: frozen, no collections
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        made = [[i] for i in range(1000)]  # objects made in the set-up ...
        with frozen_heap():  # ... frozen too by the flow's block, which collects again
            assert gc.isenabled() and gc.get_freeze_count() >= len(made)
        assert not gc.isenabled() and gc.get_freeze_count() > 0  # the set-up's state again
    assert gc.isenabled() and gc.get_freeze_count() == 0  # collectable again, as before
    gc.disable()
    try:
        with frozen_heap():
            pass
        assert not gc.isenabled()  # a caller's choice is restored
    finally:
        gc.enable()


def test_a_frozen_heap_is_given_back_when_the_block_fails() -> None:
    import gc

    try:
        with frozen_heap(collect=False):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert gc.isenabled() and gc.get_freeze_count() == 0
