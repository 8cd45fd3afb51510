"""The command group's process-wide settings."""

import os

from click.testing import CliRunner

from tinyaug.pipelines.cli import ONEDNN_CACHE_CAPACITY, main

CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def test_every_command_bounds_the_onednn_kernel_cache(monkeypatch):
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    result = CliRunner().invoke(main, ["augment", "--help"])
    assert result.exit_code == 0, result.output
    assert os.environ[CACHE_VARIABLE] == ONEDNN_CACHE_CAPACITY == "16"


def test_a_cache_capacity_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv(CACHE_VARIABLE, "1024")
    assert CliRunner().invoke(main, ["augment", "--help"]).exit_code == 0
    assert os.environ[CACHE_VARIABLE] == "1024"
