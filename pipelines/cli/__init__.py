"""The ``tinyaug`` command line: one click group; each command parses options, calls one library
function and reports.

- ``common``: the error decorator (``TinyaugError`` -> a one-line ``Error: ...``), logging, and
  the options several commands share (task, device).
- ``augment``: ``augment``, ``inspect``, ``export``; ``distill``: ``finetune``,
  ``teacher-logits``, ``make-student``, ``distill``, ``evaluate``; ``starter``: ``build-mlm``,
  ``export-mlm``, ``eval-mlm``; ``experiment``: ``experiment ablation|report``; ``bench``, ``bench-engines``; ``browse``.

Command modules import each other never, and heavy libraries (torch, transformers, datasets) only
inside a command's body, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Sequence

import click

from tinyaug import __version__
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.cli import augment, bench, browse, distill, experiment, starter
from tinyaug.pipelines.cli.common import setup_logging

# oneDNN (torch's CPU matmul library) caches a compiled kernel per matrix shape, 1,024 by default.
# The masked LM batches contexts by exact length, so shapes keep changing, and that cache grew by
# tens of MB per shard: 1,000 vs 10,000 SST-2 sentences peaked 26% apart. Sixteen entries keep a
# batch-of-one run's repeats (same sentence, same shapes) and bound the rest. oneDNN reads the
# variable at its first kernel, so it is set here, before any command runs; a value in the
# environment wins.
ONEDNN_CACHE_CAPACITY = "16"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyaug")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """TinyBERT-style data augmentation and distillation.

    Example: tinyaug augment --task sst2 --limit 50
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)
    setup_logging(verbose)


for _module in (augment, browse, distill, starter, experiment, bench):
    for _command in _module.COMMANDS:
        main.add_command(_command)


def run_command(argv: Sequence[str]) -> None:
    """Run one ``tinyaug`` command line in this process, as the shell would (its output on
    stderr, so a caller's stdout stays its own); a failure raises ``TinyaugError`` with the
    command's one-line message. The experiment runs its steps through this."""
    level = logging.getLogger("tinyaug").getEffectiveLevel()
    verbosity = ["-vv"] if level <= logging.DEBUG else ["-v"] if level <= logging.INFO else []
    try:
        with contextlib.redirect_stdout(sys.stderr):
            main.main([*verbosity, *map(str, argv)], prog_name="tinyaug", standalone_mode=False)
    except click.ClickException as exc:
        raise TinyaugError(f"`tinyaug {' '.join(map(str, argv))}` failed: {exc.format_message()}") from None
