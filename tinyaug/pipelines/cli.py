"""The ``tinyaug`` command line: parse options, call one pipeline function, report.

Library errors (``TinyaugError``) become one-line ``click.ClickException`` messages here and
only here. Commands of other areas live in their own modules and are added below.
"""

from __future__ import annotations

import logging

import click

from tinyaug import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyaug")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """TinyBERT-style data augmentation and distillation.

    Example: tinyaug augment --task sst2 --limit 50
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "datasets", "huggingface_hub", "gensim"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _register() -> None:
    from tinyaug.pipelines import cli_augment, cli_bench, cli_distill, cli_experiment, cli_mlm

    for module in (cli_augment, cli_bench, cli_distill, cli_experiment, cli_mlm):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
