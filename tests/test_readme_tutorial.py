"""The README's tutorial runs as written, offline, in an empty folder: every command of the
```bash blocks of its "## Tutorial" section through a shell, one after the other, and the
```python block of "### Writing your own method".

A command the tests must not run (it needs the network, an account, ...) is marked in the README
by a comment line right above it, ``# not run in tests: REASON``; each such command is reported
as a skipped test with its reason (``pytest -rs``), never dropped silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

NOT_RUN = re.compile(r"#\s*not run in tests:\s*(.+)")
COMMAND_TIMEOUT = 300  # seconds per command; the whole tutorial takes about a minute on 2 cores


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level (lines in
    fenced code blocks, such as a shell comment, are no headings)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines, inside, fenced = [], False, False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        heading_here = not fenced and re.match(r"#{1,%d} " % level, line)
        if inside and heading_here:
            break
        if inside:
            lines.append(line)
        inside = inside or line.rstrip("\n") == heading
    assert inside, f"README: no {heading!r} section"
    return "".join(lines)


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(r"^```%s\n(.*?)^```" % language, section, re.S | re.M)


def tutorial_commands() -> tuple[list[str], list[tuple[str, str]]]:
    """(commands to run in order, [(command, reason)] not to run): the lines of the Tutorial's
    bash blocks, a line ending in a backslash joined with the next."""
    section = _section((REPO / "README.md").read_text(encoding="utf-8"), "## Tutorial")
    run, not_run = [], []
    for block in _blocks(section, "bash"):
        reason = None
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                if marker := NOT_RUN.match(line):
                    reason = marker.group(1).strip()
                continue
            if reason is not None:
                not_run.append((line, reason))
                reason = None
            else:
                run.append(line)
        assert reason is None, f"'# not run in tests' marks no command in a Tutorial block: {block!r}"
    return run, not_run


def own_method_code() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = _blocks(_section(text, "### Writing your own method"), "python")
    assert blocks, "README: no ```python block under '### Writing your own method'"
    return blocks[0]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_DATASETS_CACHE=str(tmp_path / ".hf-datasets-cache"), TOKENIZERS_PARALLELISM="false")
    # `python` and `tinyaug` in the commands are this interpreter's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _report(what: str, result: subprocess.CompletedProcess) -> str:
    return (f"{what}\nexit status {result.returncode}\n--- stdout (end)\n{result.stdout[-3000:]}"
            f"\n--- stderr (end)\n{result.stderr[-3000:]}")


def test_the_tutorial_runs_as_written_offline(tmp_path):
    commands, _ = tutorial_commands()
    assert any(c.startswith("tinyaug augment") for c in commands)
    assert any(c.startswith("tinyaug distill") for c in commands)
    env, shell = _env(tmp_path), shutil.which("bash")
    for command in commands:
        result = subprocess.run(command, shell=True, executable=shell, cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        assert result.returncode == 0, _report(f"README tutorial command failed: {command}", result)
    # what the tutorial says it made
    for made in ("sst2-aug/README.md", "train_aug.csv", "glue_out/train_aug.tsv",
                 "sst2-aug-hub/data/train-00000-of-00001.parquet", "teacher", "student"):
        assert (tmp_path / made).exists(), f"the tutorial should have made {made}"


NOT_RUN_COMMANDS = tutorial_commands()[1]


@pytest.mark.parametrize("command,reason", NOT_RUN_COMMANDS, ids=[c.split()[0] for c, _ in NOT_RUN_COMMANDS])
def test_tutorial_command_marked_not_run(command, reason):
    pytest.skip(f"README tutorial command not run in tests ({reason}): {command}")


def test_writing_your_own_method_runs_as_written(tmp_path):
    result = subprocess.run([sys.executable, "-c", own_method_code()], cwd=tmp_path, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, _report("README '### Writing your own method' failed", result)
    assert result.stdout.strip(), "the example prints the augmented texts"
