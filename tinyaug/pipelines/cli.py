"""The ``tinyaug`` command line: parse options, call one pipeline function, report.

Library errors (``TinyaugError``) become one-line ``click.ClickException`` messages here and
only here. Commands of other areas live in their own modules and are added below.
"""

from __future__ import annotations

import click

from tinyaug import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyaug")
def main() -> None:
    """TinyBERT-style data augmentation and distillation.

    Example: tinyaug augment --task sst2 --limit 50
    """


def _register() -> None:
    from tinyaug.pipelines import cli_distill, cli_mlm

    for module in (cli_distill, cli_mlm):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
