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

import atexit
import gc
import os
from typing import Sequence

import click

from tinyaug import __version__
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.cli import augment, bench, browse, cache, distill, experiment, starter
from tinyaug.pipelines.cli.common import PROCESS, command_runner, setup_logging
from tinyaug.pipelines.cli.progress import QUIET_KEY

# oneDNN (torch's CPU matmul library) caches a compiled kernel per matrix shape, 1,024 by default.
# The masked LM batches contexts by exact length, so shapes keep changing, and that cache grew by
# tens of MB per shard: 1,000 vs 10,000 SST-2 sentences peaked 26% apart. Sixteen entries keep a
# batch-of-one run's repeats (same sentence, same shapes) and bound the rest. oneDNN reads the
# variable at its first kernel, so it is set here, before any command runs; a value in the
# environment wins.
ONEDNN_CACHE_CAPACITY = "16"

# Python's cycle collector runs after every 700 new container objects, and at times walks every
# object there is. Importing torch, transformers and datasets makes about 500,000 that all live on,
# so a 1-row augment spent about 1 s of its start-up in 8 such full walks. A young collection
# every 50,000 new objects (mypy's command line waits for 200,000) leaves 0.3 s of collection, and
# a cycle of garbage still goes at the next one (a few MB later). The command line's process only:
# the library leaves a caller's collector alone.
GC_THRESHOLDS = (50_000, 20, 10)
_freeze_at_exit = []  # one exit handler per process, however many commands it runs (tests, the experiment)


def _freeze_objects_at_exit() -> None:
    """At exit, after the exit handlers registered later (those run first): every object there is
    joins the collector's permanent generation, so the interpreter's last collections skip them.
    Those took 1.2 s of a 1-row augment's 8 s, walking and freeing torch's and transformers'
    modules one by one; the system frees the memory at once. Nothing written waits on them (files
    and locks close in their with-blocks, logging flushes in its own exit handler); only the
    finalizers of objects caught in reference cycles no longer run at exit."""
    gc.freeze()


INTERRUPTED = "Interrupted: rerun the same command to resume"
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


class InterruptibleGroup(click.Group):
    """The group whose commands Ctrl-C always stops: wherever the interrupt lands (a library's
    ``__del__`` included, where Python would swallow it), the command ends with one line and exit
    status 130, no traceback (``io.interrupts``). A command run inside another one (``run_command``)
    passes the interrupt up to the outer one."""

    def invoke(self, ctx: click.Context) -> object:
        from tinyaug.pipelines.io.interrupts import active, check_interrupted, handle_interrupts, interrupted

        outermost = not active()
        with handle_interrupts():
            try:
                result = super().invoke(ctx)
                check_interrupted()  # an interrupt a library swallowed still stops the command
                return result
            except (KeyboardInterrupt, click.Abort) as exc:
                if isinstance(exc, click.Abort) and not interrupted():
                    raise  # click's own abort (an unanswered prompt), not Ctrl-C
                if not outermost:
                    raise KeyboardInterrupt from None
                click.echo(INTERRUPTED, err=True)
                raise click.exceptions.Exit(INTERRUPTED_EXIT) from None


@click.group(cls=InterruptibleGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyaug")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or progress lines.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """TinyBERT-style data augmentation and distillation.

    Example: tinyaug augment --task sst2 --limit 50
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)
    gc.set_threshold(*GC_THRESHOLDS)
    if not _freeze_at_exit:
        _freeze_at_exit.append(atexit.register(_freeze_objects_at_exit))
    setup_logging(verbose)
    ctx.meta[QUIET_KEY] = quiet


for _module in (augment, browse, distill, starter, experiment, bench, cache):
    for _command in _module.COMMANDS:
        main.add_command(_command)


def run() -> None:
    """The ``tinyaug`` program (its console script, ``python -m tinyaug.pipelines.cli``): this
    process runs one command line and ends, so its start-up may freeze what it loads
    (``common.start_up``)."""
    PROCESS.owned = True
    main(prog_name="tinyaug")


def run_command(argv: Sequence[str]) -> None:
    """Run one ``tinyaug`` command line in this process, as the shell would (``common.command_runner``:
    its output on stderr; a failure raises ``TinyaugError`` with the command's one-line message)."""
    command_runner(main)(argv)
