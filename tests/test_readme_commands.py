"""Every command in the README works when pasted from the repository root (issue #11): each names
an executable that exists (``.venv/bin/...``, never a bare ``oafin`` or ``prefect``: the venv is
never activated), every ``oafin`` command parses with oafin's own argument parser, and every
config file a command names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from oafin.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHELL_WORDS = {"make", "export", "eval"}
BARE = ("oafin", "prefect", "python", "python3", "pytest", "ruff")


def shell_blocks(text: str) -> list[str]:
    """The fenced blocks without a language or marked as shell."""
    blocks = re.findall(r"^```([a-z]*)\n(.*?)^```", text, flags=re.M | re.S)
    return [body for lang, body in blocks if lang in ("", "sh", "bash", "shell", "console")]


def commands(text: str) -> list[list[str]]:
    """Each command line of the shell blocks as words (comments dropped; ``eval "$(...)"`` and
    ``VAR=value cmd`` unwrapped)."""
    out = []
    for block in shell_blocks(text):
        for line in block.splitlines():
            # optional parts the reader may add ([--as-of 2026-10-20]) are not pasted as they are
            words = shlex.split(re.sub(r" \[[^\]]*\]", "", line), comments=True)
            if not words:
                continue
            if words[0] == "eval":
                inner = re.fullmatch(r"\$\((.*)\)", words[1])
                assert inner, line
                out.append(shlex.split(inner.group(1)))
                continue
            out.append(words)
    return out


COMMANDS = commands(README)


def test_the_readme_has_commands_to_check() -> None:
    assert len(COMMANDS) > 10
    assert any(c[0] == ".venv/bin/prefect" for c in COMMANDS)


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_each_command_names_an_executable_that_exists(words: list[str]) -> None:
    first = words[0]
    if first in SHELL_WORDS:
        return
    assert first not in BARE, f"bare {first!r}: write .venv/bin/{first} (the venv is never activated)"
    assert (ROOT / first).exists() or first.startswith(".venv/bin/"), first
    if first.startswith(".venv/bin/"):
        # .venv is made by `make bootstrap`; its scripts are the project's and its dependencies'
        assert first.removeprefix(".venv/bin/") in {"oafin", "prefect", "python"}, first


OAFIN = [c[1:] for c in COMMANDS if c[0] == ".venv/bin/oafin"]


@pytest.mark.parametrize("args", OAFIN, ids=[" ".join(a)[:60] for a in OAFIN])
def test_each_oafin_command_parses_and_names_files_that_exist(args: list[str]) -> None:
    parsed = _parser().parse_args(args)  # SystemExit (a test error) on an unknown command or flag
    config = getattr(parsed, "config", None)
    if config is not None and not str(config).startswith("demo/"):  # demo/ is made by `make demo`
        assert (ROOT / config).is_file(), f"{config} does not exist"


def test_no_inline_command_is_bare() -> None:
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", README, flags=re.M | re.S))
    # a span with a flag or a path is meant to be pasted; `oafin run` alone only names the command
    pasteable = [s for s in spans if any(w.startswith("-") or "/" in w for w in s.split()[1:])]
    bare = [s for s in pasteable if s.split()[0] in BARE]
    assert bare == [], bare


def test_the_readme_says_relative_paths_resolve_against_the_configs_folder() -> None:
    assert "relative paths" in README.lower() and "config file's folder" in README
