"""Issue #10 item 15: ``oafin demo --workdir DIR`` never overwrites a config or adopts a database
it did not make, and says what it reuses. Through the real command line; the refusal comes
before the sandbox or Prefect starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from oafin.cli import main
from oafin.demo_workdir import MARKER, WorkdirError, prepare_demo_workdir


def test_a_directory_with_someone_elses_config_is_refused(tmp_path: Path, capsys) -> None:
    workdir = tmp_path / "prod"
    workdir.mkdir()
    (workdir / "oafin.toml").write_text("# the team's production config\n", encoding="utf-8")
    (workdir / "oafin.db").write_bytes(b"production warehouse")

    code = main(["demo", "--workdir", str(workdir), "--n-claims", "20"])

    assert code == 2
    assert "is not empty and was not made by `oafin demo`" in capsys.readouterr().err
    assert (workdir / "oafin.toml").read_text(encoding="utf-8") == "# the team's production config\n"
    assert (workdir / "oafin.db").read_bytes() == b"production warehouse"
    assert not (workdir / "sandbox").exists() and not (workdir / MARKER).exists()


def test_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "oafin.toml"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(WorkdirError, match="is a file"):
        prepare_demo_workdir(path)


def test_an_empty_or_new_directory_is_taken_and_marked(tmp_path: Path) -> None:
    assert prepare_demo_workdir(tmp_path / "new") == []
    assert (tmp_path / "new" / MARKER).exists()
    (tmp_path / "empty").mkdir()
    assert prepare_demo_workdir(tmp_path / "empty") == []


def test_an_earlier_demos_directory_is_reused_and_says_so(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    prepare_demo_workdir(workdir)
    (workdir / "oafin.toml").write_text("# demo\n", encoding="utf-8")
    (workdir / "oafin.db").write_bytes(b"")
    notes = prepare_demo_workdir(workdir)
    assert any("reusing the warehouse" in n and "oafin.db" in n for n in notes)
    assert any("rewriting" in n and "oafin.toml" in n for n in notes)
