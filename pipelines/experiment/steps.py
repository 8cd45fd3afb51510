"""One step of the experiment (``Step``: a ``tinyaug`` command line or a Python helper) and the
record of every attempt to run one (``attempts.json``).

Not here: which steps an experiment has and in what order (``ablation``).
"""

from __future__ import annotations

import dataclasses
import datetime
import shlex
from pathlib import Path
from typing import Any, Callable

from tinyaug.pipelines.io.storage import read_json, write_json


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of the experiment: a ``tinyaug`` command line (``argv``), or, for the one step
    that is no command, a Python ``helper`` with a comment for ``commands.sh``."""

    name: str
    result_file: Path  # written last: the step is done when it exists
    argv: tuple[str, ...] | None  # the command line after ``tinyaug``
    helper: Callable[[], None] | None = None
    note: str = ""  # the ``commands.sh`` line of a helper step
    after: tuple[str, ...] = ()  # steps that, when they ran again, make this one run again
    tidy: Callable[[], None] | None = None  # run after the step (dropping weights)
    out: Path | None = None  # the folder it writes: left incomplete by an interrupted attempt, removed before a rerun

    @classmethod
    def command(cls, name: str, result_file: Path, argv: list[Any], **kwargs: Any) -> "Step":
        return cls(name, result_file, tuple(str(part) for part in argv), **kwargs)

    @classmethod
    def python(cls, name: str, result_file: Path, helper: Callable[[], None], note: str, **kwargs: Any) -> "Step":
        return cls(name, result_file, None, helper, note, **kwargs)

    @property
    def command_line(self) -> str:
        if self.argv is None:
            return self.note
        return " ".join(shlex.quote(part) for part in ("tinyaug", *self.argv))


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def outcome(exc: BaseException) -> str:
    """How an attempt that raised ended, in a few words, for ``attempts.json``."""
    import click

    if isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
        return "stopped: interrupted (Ctrl-C or SIGINT)"
    if isinstance(exc, SystemExit):
        return f"stopped: exit status {exc.code}"
    message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    return f"failed: {type(exc).__name__}: {message}"[:300]


def record_attempt(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Add (or update, by step and start time) one attempt in ``path`` (``attempts.json``): every
    step that starts is in it, and one with no ``ended`` was cut off (killed, or the machine
    stopped)."""
    attempts = read_json(path) or []
    same = [i for i, a in enumerate(attempts) if (a["step"], a["started"]) == (record["step"], record["started"])]
    if same:
        attempts[same[0]] = record
    else:
        attempts.append(record)
    write_json(path, attempts)
    return record
