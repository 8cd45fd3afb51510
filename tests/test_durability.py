"""Durability: what a power loss, a bad edit or Ctrl-C can leave, and how tinyaug copes.

Writes are flushed to the disk before they are renamed into place; damaged shards (cut short, a
file missing) are found, named and built again, with the rows of an uninterrupted run; a damaged
finished dataset is named and ``--overwrite`` rebuilds it; a ``state.json`` that does not match
its folder is refused; two ``teacher-logits`` on one dataset never race; an edited vectors file is
never served from a stale cache; Ctrl-C always ends a command with exit status 130.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinyaug.pipelines.bench.faults import PROGRAM, digest, leftovers
from tinyaug.pipelines.cli import main
from helpers import write_fault_world

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Toy SST-2 (60 rows), a tiny masked LM and vectors as files, a tiny teacher, and the
    reference outputs of uninterrupted runs."""
    root = write_fault_world(tmp_path_factory.mktemp("durability"), train_rows=60)
    result = CliRunner().invoke(main, augment_args(root, root / "reference"))
    assert result.exit_code == 0, result.output
    return root


def augment_args(world: Path, out: Path, *extra: str) -> list[str]:
    return ["augment", "--task", "sst2", "--data-dir", str(world / "glue"), "--mlm", str(world / "mlm"),
            "--vectors", str(world / "vectors.txt"), "-n", "4", "--shard-size", "20", "--device", "cpu",
            "--show", "0", "--out", str(out), *extra]


def teacher_args(world: Path, data: Path) -> list[str]:
    return ["teacher-logits", "--teacher", str(world / "teacher"), "--task", "sst2", "--device", "cpu",
            "--batch-size", "4", "--data", str(data)]


def _partial_augment(world: Path, out: Path, monkeypatch) -> Path:
    """``OUT.partial`` holding every shard, as a run killed just before assembling leaves it."""
    from tinyaug.pipelines.augmentation import build

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "assemble", killed)
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 130, result.output
    monkeypatch.undo()
    work = out.with_name(out.name + ".partial")
    assert sorted(p.name for p in (work / "shards").iterdir()) == ["00000", "00001", "00002"]
    return work


# ---------------------------------------------------------------- fsync


def test_files_and_folders_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    from tinyaug.pipelines.io import storage

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                         real_fsync(fd)))
    with storage.atomic_file(tmp_path / "a.json") as tmp:
        tmp.write_text("{}")
    assert synced[0].startswith(str(tmp_path / ".a.json.tmp-"))  # the data, before the rename
    assert synced[-1] == str(tmp_path)  # the rename itself
    synced.clear()
    with storage.atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "data.arrow").write_bytes(b"x")
    assert any(s.endswith("data.arrow") for s in synced)
    assert any(Path(s).name.startswith(".folder.tmp-") for s in synced)  # the folder's entries
    assert synced[-1] == str(tmp_path)


# ---------------------------------------------------------------- damaged augment shards


@pytest.mark.parametrize("damage", ["empty", "truncated", "missing", "stats"])
def test_a_damaged_shard_is_named_and_built_again(world, tmp_path, monkeypatch, damage):
    out = tmp_path / "out"
    work = _partial_augment(world, out, monkeypatch)
    shard = work / "shards" / "00001"
    arrow = next(shard.glob("*.arrow"))
    if damage == "empty":
        arrow.write_bytes(b"")
    elif damage == "truncated":
        data = arrow.read_bytes()
        arrow.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "missing":
        arrow.unlink()
    else:
        (shard / "stats.json").write_text("")
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 0, result.output
    assert f"shard {shard} is damaged" in result.output
    assert "Traceback" not in result.output
    assert digest(out) == digest(world / "reference")
    assert not leftovers(out)


def test_a_finished_dataset_with_a_truncated_file_is_named_and_overwrite_rebuilds_it(world, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(world / "reference", out)
    arrow = next(out.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:1000])
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "is damaged" in lines[0] and "--overwrite" in lines[0], result.output
    result = CliRunner().invoke(main, augment_args(world, out, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert digest(out) == digest(world / "reference")


@pytest.mark.parametrize("mismatch", ["twice", "missing", "extra"])
def test_a_state_json_that_does_not_match_the_folder_is_refused(world, tmp_path, mismatch):
    from tinyaug.errors import InputError
    from tinyaug.pipelines.augmentation.build import load_augmented

    data = tmp_path / "data"
    shutil.copytree(world / "reference", data)
    state = json.loads((data / "state.json").read_text())
    name = state["_data_files"][0]["filename"]
    if mismatch == "twice":
        state["_data_files"].append({"filename": name})
    elif mismatch == "missing":
        state["_data_files"].append({"filename": "data-00009-of-00010.arrow"})
    else:
        shutil.copy(data / name, data / "data-00001-of-00002.arrow")
    (data / "state.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match="do not match its state.json"):
        load_augmented(data)
    result = CliRunner().invoke(main, teacher_args(world, data))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "do not match its state.json" in lines[0], result.output


# ---------------------------------------------------------------- teacher logits


def test_a_damaged_teacher_logits_shard_is_computed_again(world, tmp_path, monkeypatch, caplog):
    from tinyaug.pipelines.distillation import teacher

    monkeypatch.setattr(teacher, "SHARD_BATCHES", 8)  # 32 rows a shard: several shards
    reference = tmp_path / "reference"
    shutil.copytree(world / "reference", reference)
    assert CliRunner().invoke(main, teacher_args(world, reference)).exit_code == 0
    data = tmp_path / "data"
    shutil.copytree(world / "reference", data)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(teacher, "_store", killed)
        assert CliRunner().invoke(main, teacher_args(world, data)).exit_code == 130
    work = data.with_name(data.name + ".teacher.partial")
    (work / "00000.npy").write_bytes(b"")
    shard = work / "00003.npy"
    shard.write_bytes(shard.read_bytes()[:100])
    result = CliRunner().invoke(main, teacher_args(world, data))
    assert result.exit_code == 0, result.output
    assert "00000.npy is damaged" in caplog.text and "00003.npy is damaged" in caplog.text
    assert digest(data) == digest(reference)
    assert not leftovers(data)


def test_a_second_teacher_logits_on_the_same_dataset_stops_at_once(world, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world / "reference", data)
    work = data.with_name(data.name + ".teacher.partial")
    work.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               f"f = open({str(work / 'run.lock')!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = digest(data)
        start = time.perf_counter()
        result = CliRunner().invoke(main, teacher_args(world, data))
        assert time.perf_counter() - start < 5  # before any model loads
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "another tinyaug teacher-logits run is writing" in lines[0], result.output
    assert digest(data) == before
    assert sorted(p.name for p in work.iterdir()) == ["run.lock"]


def test_a_failed_teacher_logits_leaves_no_work_folder(world, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world / "reference", data)
    args = teacher_args(world, data)
    args[args.index("--task") + 1] = "mrpc"  # the data has no MRPC columns: refused after the lock
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert not leftovers(data)


# ---------------------------------------------------------------- vectors cache


def test_vectors_edited_in_place_with_the_same_size_and_mtime_are_read_again(tmp_path, monkeypatch):
    from tinyaug.pipelines.io.vectors import load_vectors

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "vectors.txt"
    path.write_text("good 1.0 0.0\nfine 0.9 0.1\nbad 0.0 1.0\n")
    first = load_vectors(str(path))
    assert np.asarray(first.vectors)[first.words.index("fine")].tolist() == pytest.approx([0.9, 0.1])
    stat = path.stat()
    with path.open("r+b") as handle:  # in place, same size: "fine" moves next to "bad"
        handle.write(b"good 1.0 0.0\nfine 0.1 0.9\nbad 0.0 1.0\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    second = load_vectors(str(path))
    assert np.asarray(second.vectors)[second.words.index("fine")].tolist() == pytest.approx([0.1, 0.9])
    assert second.identifier != first.identifier
    third = load_vectors(str(path))  # unchanged since: served from the cache, same identity
    assert third.identifier == second.identifier


def test_the_vectors_cache_hashes_the_file_only_when_it_changed(tmp_path, monkeypatch):
    from tinyaug.pipelines.io import vectors

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "vectors.txt"
    path.write_text("good 1.0 0.0\nbad 0.0 1.0\n")
    hashed = []
    real = vectors.sha256_file
    monkeypatch.setattr(vectors, "sha256_file", lambda p: hashed.append(p) or real(p))
    vectors.load_vectors(str(path))
    vectors.load_vectors(str(path))
    assert len(hashed) == 1
    path.write_text("good 1.0 0.0\nbad 0.0 1.0\n")  # rewritten with the same bytes: hashed, same cache
    assert vectors.load_vectors(str(path)).identifier == vectors.load_vectors(str(path)).identifier
    assert len(hashed) == 2


# ---------------------------------------------------------------- interrupts


def test_an_interrupt_swallowed_by_a_library_del_still_ends_with_130():
    import click

    from tinyaug.pipelines.cli import INTERRUPTED, InterruptibleGroup

    finished = []

    class Resource:
        def __del__(self):  # the signal's handler runs here, and Python swallows what it raises
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass

    @click.group(cls=InterruptibleGroup)
    def group():
        pass

    @group.command()
    def work():
        resource = Resource()
        del resource
        finished.append(True)

    result = CliRunner().invoke(group, ["work"])
    assert finished  # the library swallowed it: the command body ran on
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines() == [INTERRUPTED]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_swallowed_interrupt_stops_the_shard_loop(world, tmp_path, monkeypatch):
    from tinyaug.pipelines.augmentation import shards

    real = shards.write_shard

    def write_then_swallow(*args, **kwargs):
        written = real(*args, **kwargs)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            pass  # a library that eats it
        return written

    monkeypatch.setattr(shards, "write_shard", write_then_swallow)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, augment_args(world, out))
    assert result.exit_code == 130, result.output
    assert [p.name for p in (out.with_name("out.partial") / "shards").iterdir()] == ["00000"]
    monkeypatch.undo()
    assert CliRunner().invoke(main, augment_args(world, out)).exit_code == 0
    assert digest(out) == digest(world / "reference")


def test_sigint_ends_augment_with_130_and_the_rerun_resumes(world, tmp_path):
    out = tmp_path / "out"
    args = augment_args(world, out)
    process = subprocess.Popen(PROGRAM + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shards_dir = out.with_name("out.partial") / "shards"
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and \
            not (shards_dir.is_dir() and any(not p.name.startswith(".") for p in shards_dir.iterdir())):
        time.sleep(0.01)  # until the first of the 3 shards is in place
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert stderr.strip().splitlines()[-1] == "Interrupted: rerun the same command to resume"
    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    assert "Resuming" in rerun.output
    assert digest(out) == digest(world / "reference")
    assert not leftovers(out)
