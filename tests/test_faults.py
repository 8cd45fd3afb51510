"""Fault injection: ``augment``, ``teacher-logits`` and ``export`` killed with SIGKILL at random
moments (real subprocesses, tiny models), then run again with the same command, must end with
exactly the output of an uninterrupted run and nothing else beside it; a disk that fills up
while shards are written gives one line, no dataset, and a rerun that resumes.

``benchmarks/kill_resume.py`` does the same on a real slice with the real models, many times.
"""

from __future__ import annotations

import errno
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyaug.pipelines.bench.faults import digest, leftovers, run_killed, work_seconds
from tinyaug.pipelines.bench.faults import run as timed
from tinyaug.pipelines.cli import main
from helpers import write_fault_world

TRIALS = 2
MAX_TRIALS = 6  # on a loaded machine a random kill may come after the end: try again until one lands


def trials(killed: list[int]):
    """Trial numbers: TRIALS of them, and more (up to MAX_TRIALS) until a kill has landed."""
    trial = 0
    while trial < TRIALS or (not any(killed) and trial < MAX_TRIALS):
        yield trial
        trial += 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Toy SST-2 (240 rows), a tiny masked LM and vectors as files, a tiny teacher."""
    return write_fault_world(tmp_path_factory.mktemp("faults"), train_rows=240)


def augment_args(world: Path, out: Path) -> list[str]:
    return ["augment", "--task", "sst2", "--data-dir", str(world / "glue"), "--mlm", str(world / "mlm"),
            "--vectors", str(world / "vectors.txt"), "-n", "8", "--shard-size", "20", "--device", "cpu",
            "--show", "0", "--out", str(out)]


def test_augment_killed_at_random_moments_resumes_identical(world, tmp_path):
    seconds = work_seconds(augment_args(world, tmp_path / "reference"), tmp_path / "reference.partial")
    reference = digest(tmp_path / "reference")
    rng, killed = random.Random(17), []
    for trial in trials(killed):
        out = tmp_path / f"killed{trial}"
        killed.append(run_killed(augment_args(world, out), out.with_name(out.name + ".partial"), seconds, rng))
        timed(augment_args(world, out))
        assert digest(out) == reference, f"trial {trial}"
        assert not leftovers(out)
    assert any(killed)  # at least one kill landed before the run finished


def test_teacher_logits_killed_at_random_moments_resumes_identical(world, tmp_path):
    timed(augment_args(world, tmp_path / "aug"))
    args = ["teacher-logits", "--teacher", str(world / "teacher"), "--task", "sst2", "--device", "cpu",
            "--batch-size", "8"]
    shutil.copytree(tmp_path / "aug", tmp_path / "reference")
    seconds = work_seconds(args + ["--data", str(tmp_path / "reference")], tmp_path / "reference.teacher.partial")
    reference = digest(tmp_path / "reference")
    rng, killed = random.Random(5), []
    for trial in trials(killed):
        data = tmp_path / f"data{trial}"
        shutil.copytree(tmp_path / "aug", data)
        killed.append(run_killed(args + ["--data", str(data)], data.with_name(data.name + ".teacher.partial"),
                                 seconds, rng))
        timed(args + ["--data", str(data)])  # in place, as the experiment runs it
        assert digest(data) == reference, f"trial {trial}"
        assert not leftovers(data)
    assert any(killed)


def test_export_killed_at_random_moments_leaves_the_old_file_or_the_new_one(world, tmp_path):
    timed(augment_args(world, tmp_path / "aug"))
    target = tmp_path / "train_aug.parquet"
    args = ["export", str(tmp_path / "aug"), "--format", "parquet", "--to", str(target), "--overwrite"]
    seconds = timed(args)
    reference = digest(target)
    rng = random.Random(11)
    for trial in range(TRIALS):
        target.write_bytes(b"the previous export")
        run_killed(args, tmp_path / "aug", seconds, rng)
        assert target.read_bytes() == b"the previous export" or digest(target) == reference
        timed(args)
        assert digest(target) == reference
        assert not leftovers(target)


def test_a_full_disk_while_writing_shards_gives_one_line_and_resumes(world, tmp_path, monkeypatch):
    from tinyaug.pipelines.augmentation import shards

    real = shards.atomic_directory
    calls = []

    def filling(target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target)

    monkeypatch.setattr(shards, "atomic_directory", filling)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 1 and "the disk is full" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()[-1]) < 300
    assert not out.exists() and len(list((tmp_path / "o.partial" / "shards").iterdir())) == 2
    monkeypatch.undo()
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 0 and "Resuming: 2 of 12 shards" in result.output
    timed(augment_args(world, tmp_path / "reference"))
    assert digest(out) == digest(tmp_path / "reference")


def test_an_export_that_fails_mid_write_leaves_the_old_file_and_no_temporary(world, tmp_path, monkeypatch):
    """The kill test above may land before or after the write; this one fails inside it, for sure:
    the Parquet writer has written part of the temporary file when it raises."""
    import datasets

    timed(augment_args(world, tmp_path / "aug"))
    target = tmp_path / "train_aug.parquet"
    target.write_bytes(b"the previous export")
    real = datasets.Dataset.to_parquet
    written = []

    def half_then_fail(self, path, *args, **kwargs):
        real(self.select(range(len(self) // 2)), path, *args, **kwargs)
        written.append(Path(path).stat().st_size)
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(datasets.Dataset, "to_parquet", half_then_fail)
    result = CliRunner().invoke(main, ["export", str(tmp_path / "aug"), "--format", "parquet", "--to", str(target),
                                       "--overwrite"])
    assert written and written[0] > 0  # the failure came mid-write, with part of the file on disk
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert target.read_bytes() == b"the previous export"
    assert not leftovers(target)
