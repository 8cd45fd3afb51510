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


def test_the_collector_is_paused_while_a_command_loads_and_is_the_same_after(tiny_dir, tmp_path, monkeypatch):
    """Start-up (imports, models) runs without the cyclic collector (``start_up``); the command
    ends with the collector as it was and nothing left frozen (in-process callers: tests, scripts)."""
    import gc

    from tinyaug.pipelines.augmentation import build
    from tinyaug.pipelines.cli import common

    seen = {}
    quiet, load_models = common.quiet_libraries, build.load_models

    def recording(name, func):
        def call(*args, **kwargs):
            seen[name] = gc.isenabled()
            return func(*args, **kwargs)
        return call

    monkeypatch.setattr(common, "quiet_libraries", recording("libraries", quiet))
    monkeypatch.setattr(build, "load_models", recording("models", load_models))
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", "sample", "--limit", "2", "-n", "2",
                                       "--show", "0", "--mlm", str(tiny_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert seen == {"libraries": False, "models": False}
    assert gc.isenabled() and gc.get_freeze_count() == 0
    failed = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", "sample", "--limit", "2",
                                       "--mlm", str(tmp_path / "missing"), "--out", str(tmp_path / "out2")])
    assert failed.exit_code == 1 and gc.isenabled() and gc.get_freeze_count() == 0  # an error on the way too
