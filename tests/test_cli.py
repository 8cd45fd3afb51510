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


def test_the_collector_is_paused_while_a_command_loads_and_a_callers_freeze_is_left_alone(tiny_dir, tmp_path,
                                                                                           monkeypatch):
    """Start-up (imports, models) runs without the cyclic collector (``start_up``); under an
    in-process caller (here the test) the collector ends as it was, the caller's frozen objects
    still frozen and nothing more frozen."""
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
    gc.freeze()  # the caller's own
    try:
        frozen = gc.get_freeze_count()
        result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", "sample", "--limit", "2", "-n",
                                           "2", "--show", "0", "--mlm", str(tiny_dir), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert seen == {"libraries": False, "models": False}
        assert gc.isenabled() and frozen * 0.9 < gc.get_freeze_count() <= frozen  # (frozen objects freed: fewer)
        failed = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", "sample", "--limit", "2",
                                           "--mlm", str(tmp_path / "missing"), "--out", str(tmp_path / "out2")])
        assert failed.exit_code == 1 and gc.isenabled()  # an error on the way too
        assert frozen * 0.9 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_the_program_freezes_what_its_first_command_loads_and_no_more(tmp_path, monkeypatch):
    """In the ``tinyaug`` program's own process the first command's start-up is frozen; a command
    run after it or inside it (the experiment's steps) freezes nothing more, so its garbage stays
    collectable."""
    import argparse
    import gc
    import weakref

    from tinyaug.pipelines.cli import common

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path))
    monkeypatch.setattr(common, "PROCESS", common.ProcessState(owned=True))
    gc.collect()
    try:
        assert CliRunner().invoke(main, ["cache", "list"]).exit_code == 0
        first = gc.get_freeze_count()
        assert first > 0
        garbage = argparse.Namespace()
        garbage.itself = garbage  # a cycle made after the first command, garbage from here on
        gone = weakref.ref(garbage)
        del garbage
        assert CliRunner().invoke(main, ["cache", "list"]).exit_code == 0
        assert gc.get_freeze_count() <= first and gc.isenabled()
        gc.collect()
        assert gone() is None  # not frozen with the second command
    finally:
        gc.unfreeze()
