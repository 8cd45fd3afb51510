"""``python -m tinyaug.pipelines.cli``: the ``tinyaug`` command, for child processes started with
the running interpreter (``bench --kernels``)."""

from tinyaug.pipelines.cli import run

run()
