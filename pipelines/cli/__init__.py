"""The ``tinyaug`` command line: parse options, call one pipeline function, report.

Library errors (``TinyaugError``) become one-line ``click.ClickException`` messages here and
only here. Commands of other areas live in their own modules and are added below.
"""

from __future__ import annotations

import logging
import os

import click

from tinyaug import __version__

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
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "datasets", "huggingface_hub", "gensim"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _register() -> None:
    from tinyaug.pipelines.cli import augment as cli_augment, bench as cli_bench, distill as cli_distill, experiment as cli_experiment, starter as cli_mlm

    for module in (cli_augment, cli_bench, cli_distill, cli_experiment, cli_mlm):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
