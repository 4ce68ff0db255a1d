"""Help and docs stay true: every command the README (and docs/) shows answers --help, and every flag
they give a command is one that command has."""
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from train.__main__ import COMMANDS as TRAIN_COMMANDS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = "\n".join([README, *(page.read_text() for page in sorted((REPO / "docs").glob("*.md")))])
SUBCOMMANDS = {"train": tuple(TRAIN_COMMANDS), "engines": ("build", "bench")}
COMMAND = re.compile(r"(?:\.venv/bin/)?python3? (?:-m ([\w.]+)|(run_pipeline\.py))")


def readme_commands(docs: str = DOCS) -> dict[str, set[str]]:
    """{command: flags the docs give it}: each `python -m MODULE [SUB]` / `python run_pipeline.py` on
    a line of the README or docs/ (a code block's continuation lines joined), its flags up to a pipe,
    && or comment."""
    text = re.sub(r"\\\n\s*", " ", docs)
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        for match in COMMAND.finditer(line):
            module = match.group(1) or "run_pipeline"
            if module == "pytest":
                continue
            rest = re.split(r"\||&&|#|`", line[match.end():])[0]
            words = rest.split()
            if module in SUBCOMMANDS and words and words[0] in SUBCOMMANDS[module]:
                module, words = f"{module} {words[0]}", words[1:]
            flags = {w.split("=")[0].rstrip(",.;:)") for w in words if w.startswith("--")}
            found.setdefault(module, set()).update(f for f in flags if re.fullmatch(r"--[a-z][a-z0-9-]*", f))
    return found


COMMANDS = readme_commands()


@lru_cache(maxsize=None)
def help_of(command: str) -> str:
    argv = ([sys.executable, str(REPO / "run_pipeline.py")] if command == "run_pipeline"
            else [sys.executable, "-m", *command.split()])
    run = subprocess.run([*argv, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{command} --help: exit {run.returncode}\n{run.stderr[-1500:]}"
    return run.stdout


def test_the_readme_shows_the_commands_users_run():
    shown = readme_commands(README)
    for command in ("run_pipeline", "train exprada", "train classifier", "pipeline.subscribe", "pipeline.replay",
                    "pipeline.report", "benchmarks.paper_table4", "benchmarks.cgit_transfer"):
        assert command in shown, command


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_readme_command_answers_help_and_has_the_flags_the_readme_gives_it(command):
    text = help_of(command)
    assert "usage:" in text
    missing = sorted(flag for flag in COMMANDS[command] if not re.search(re.escape(flag) + r"\b", text))
    assert not missing, f"the README or docs/ give `{command}` flags its --help does not know: {missing}"
