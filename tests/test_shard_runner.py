"""The shard runner and the executor interface: one resumable loop for augment and teacher-logits.

The runner on a trivial store (JSON shards): resume, out-of-order results, damaged shards, a run
key mismatch refused (unless nothing was built), a finished run's leftovers cleared but the shards
of a run killed before its result was written kept, the lock's bare folder removed, and never a
lock file another run holds. The local
executor with a trivial worker: results, progress counted once, identifiers checked. Then augment
and teacher-logits through the same runner: a run killed mid-way resumes to the uninterrupted
output, and a resume with other arguments is refused in one line, for both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import StopAfter, tiny_mlm, tiny_vectors, write_augmented
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError, OutputError, TinyaugError
from tinyaug.pipelines.augmentation.build import AugmentJob, BuildOptions, load_augmented, run
from tinyaug.pipelines.augmentation.methods import MethodModels
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.shard_runner import FINISHING_FILE, ShardJob, ShardRunner, run_lock, shard_jobs
from tinyaug.pipelines.io.storage import atomic_file
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.scale.executor import LocalExecutor


class JsonShards:
    """A trivial store: each shard a JSON list in ``WORK/NNNNN.json``."""

    def path(self, work: Path, job: ShardJob) -> Path:
        return work / f"{job.name}.json"

    def write(self, result, target: Path) -> None:
        with atomic_file(target) as tmp:
            tmp.write_text(json.dumps(result))

    def problem(self, job: ShardJob, path: Path) -> str | None:
        try:
            rows = json.loads(path.read_text())
        except ValueError:
            return "not JSON"
        return None if len(rows) == job.rows else f"{len(rows)} rows where {job.rows} were expected"


class Squares:
    """A picklable worker factory; its worker squares each row and says so in ``identifiers``."""

    def __init__(self, name: str = "squares") -> None:
        self.name = name

    def __call__(self):
        return SquareWorker(self.name)


class SquareWorker:
    def __init__(self, name: str) -> None:
        self.identifiers = {"worker": name}

    def __call__(self, rows, progress):
        if progress is not None and len(rows) > 1:
            progress(1)  # part of the shard, as a worker that can report does
        return [r * r for r in rows]


def rows_of(job: ShardJob) -> list[int]:
    return list(range(job.start, job.stop))


def squares_run(work: Path, key: dict, executor=None, total: int = 7, notify=None) -> list[int]:
    jobs = shard_jobs(total, 3)
    with run_lock(work, "busy"):
        runner = ShardRunner(work, key, jobs, JsonShards(), notify=notify)
        missing = runner.open()
        runner.write((executor or LocalExecutor()).map(Squares(), missing, rows_of))
        return runner.finish(work.with_name("out"), lambda paths: [r for p in paths for r in json.loads(p.read_text())])


def test_the_local_executor_runs_a_trivial_worker_and_counts_progress_once():
    heard: list[int] = []
    jobs = shard_jobs(7, 3)
    results = list(LocalExecutor().map(Squares(), jobs, rows_of, expected={"worker": "squares"}, progress=heard.append))
    assert results == [(jobs[0], [0, 1, 4]), (jobs[1], [9, 16, 25]), (jobs[2], [36])]
    assert heard == [1, 2, 1, 2, 1] and sum(heard) == 7  # the worker's part, then the rest of each shard
    with pytest.raises(TinyaugError, match="loaded worker 'squares', not 'cubes' as this process did"):
        list(LocalExecutor().map(Squares(), jobs, rows_of, expected={"worker": "cubes"}))


def test_the_runner_resumes_where_a_run_stopped_whatever_the_order(tmp_path):
    work = tmp_path / "out.partial"
    assert squares_run(tmp_path / "ref.partial", {"run": 1}) == [r * r for r in range(7)]
    with pytest.raises(KeyboardInterrupt):
        squares_run(work, {"run": 1}, StopAfter(1))
    assert sorted(p.name for p in work.iterdir()) == ["00000.json", "run.json", "run.lock"]
    heard: list[str] = []

    class Reversed(LocalExecutor):
        def map(self, factory, jobs, source, **options):
            yield from super().map(factory, list(reversed(jobs)), source, **options)

    assert squares_run(work, {"run": 1}, Reversed(), notify=heard.append) == [r * r for r in range(7)]
    assert heard == ["Resuming: 1 of 3 shards were already built"]
    assert not work.exists()


def test_the_runner_builds_a_damaged_shard_again(tmp_path):
    work = tmp_path / "out.partial"
    with pytest.raises(KeyboardInterrupt):
        squares_run(work, {"run": 1}, StopAfter(2))
    (work / "00001.json").write_text("[9, 16")
    heard: list[str] = []
    assert squares_run(work, {"run": 1}, notify=heard.append) == [r * r for r in range(7)]
    assert heard == [f"shard {work / '00001.json'} is damaged (not JSON): building it again",
                     "Resuming: 1 of 3 shards were already built"]


def test_the_runner_refuses_a_run_with_another_key_in_one_line(tmp_path):
    work = tmp_path / "out.partial"
    with pytest.raises(KeyboardInterrupt):
        squares_run(work, {"run": 1, "seed": 1}, StopAfter(1))
    with pytest.raises(InputError) as refused:
        squares_run(work, {"run": 1, "seed": 2})
    assert str(refused.value) == (f"{work} holds an interrupted run with other arguments or inputs (seed differs); "
                                  f"rerun with the same arguments to resume, or delete {work} to start over")
    assert (work / "00000.json").exists()  # kept for the resume
    (work / "run.json").write_text('{"ru')
    with pytest.raises(InputError, match="run.json is unreadable; delete .*out.partial to start over"):
        squares_run(work, {"run": 1, "seed": 1})


def test_a_run_with_another_key_starts_afresh_when_nothing_was_built(tmp_path):
    work = tmp_path / "out.partial"
    with pytest.raises(KeyboardInterrupt):
        squares_run(work, {"run": 1, "seed": 1}, StopAfter(0))  # failed before its first shard
    assert sorted(p.name for p in work.iterdir()) == ["run.json", "run.lock"]
    assert squares_run(work, {"run": 1, "seed": 2}) == [r * r for r in range(7)]


def killed_while_finishing(work: Path, target: Path, key: dict, write_result: bool) -> None:
    """A run of ``key`` killed in ``finish``: before its result is written, or after (before the clean-up)."""
    def assemble(paths):
        if write_result:
            target.mkdir()
            (target / "result.json").write_text("[]")
        raise KeyboardInterrupt

    with run_lock(work, "busy"), pytest.raises(KeyboardInterrupt):
        runner = ShardRunner(work, key, shard_jobs(4, 3), JsonShards())  # as squares_run
        runner.write(LocalExecutor().map(Squares(), runner.open(), rows_of))
        runner.finish(target, assemble)
    assert (work / FINISHING_FILE).exists()


def test_a_run_killed_after_writing_its_result_leaves_spent_shards_that_go(tmp_path):
    """Writing a result onto its own input changes the input's identity, hence the key: the rerun
    must not take the finished run's leftovers for an interrupted run of other arguments."""
    work = tmp_path / "out.partial"
    killed_while_finishing(work, tmp_path / "out", {"input": "before"}, write_result=True)
    assert squares_run(work, {"input": "after"}, total=4) == [0, 1, 4, 9]


def test_a_run_killed_while_writing_its_result_keeps_its_shards_for_its_own_arguments(tmp_path):
    """Killed before the result exists, the shards are a whole run of those arguments: another key
    is refused (nothing thrown away), the same key finishes from them."""
    work = tmp_path / "out.partial"
    killed_while_finishing(work, tmp_path / "out", {"seed": 1}, write_result=False)
    with pytest.raises(InputError, match=r"interrupted run with other arguments or inputs \(seed differs\)"):
        squares_run(work, {"seed": 2}, total=4)
    heard: list[str] = []
    assert squares_run(work, {"seed": 1}, total=4, notify=heard.append) == [0, 1, 4, 9]
    assert heard == ["Resuming: 2 of 2 shards were already built"]


def test_the_run_lock_stops_a_second_run_and_removes_a_bare_folder_it_made(tmp_path):
    from helpers import lock_held_elsewhere

    work = tmp_path / "made" / "out.partial"
    with run_lock(work, "busy"):
        assert (work / "run.lock").exists()
    assert not (tmp_path / "made").exists()  # nothing but the lock: it and the folders made for it go
    with lock_held_elsewhere(tmp_path / "held.partial" / "run.lock"):
        with pytest.raises(OutputError, match="^busy$"):
            with run_lock(tmp_path / "held.partial", "busy"):
                pass
    assert (tmp_path / "held.partial" / "run.lock").exists()  # another's: kept


def test_a_refused_run_leaves_the_lock_another_run_took_meanwhile(tmp_path, monkeypatch):
    """The folder did not exist when this run looked, another run made it and took the lock: the
    refused run must not remove that run's lock file (a third run could then take a lock too)."""
    import contextlib

    from helpers import lock_held_elsewhere
    from tinyaug.pipelines.io import shard_runner

    work = tmp_path / "made" / "out.partial"
    real = shard_runner.output_lock
    with contextlib.ExitStack() as others:
        def taken_meanwhile(lock_file, busy):
            others.enter_context(lock_held_elsewhere(lock_file))
            return real(lock_file, busy)

        monkeypatch.setattr(shard_runner, "output_lock", taken_meanwhile)
        with pytest.raises(OutputError, match="^busy$"):
            with run_lock(work, "busy"):
                pass
        assert (work / "run.lock").exists()


def test_a_lock_on_a_file_its_holder_removed_is_taken_again(tmp_path, monkeypatch):
    """The holder removed its work folder as it let go, after this run opened the lock file: that
    lock guards nothing any more, so the file now at the path is locked instead."""
    import fcntl

    from tinyaug.pipelines.io.outputs import output_lock

    lock = tmp_path / "w.partial" / "run.lock"
    real, opened = fcntl.flock, []

    def flock(handle, flags):
        if not opened:
            lock.unlink()
            lock.parent.rmdir()
        opened.append(handle.name)
        return real(handle, flags)

    monkeypatch.setattr(fcntl, "flock", flock)
    with output_lock(lock, "busy"):
        assert lock.exists() and len(opened) == 2


# ---------------------------------------------------------------- augment and teacher-logits


@pytest.fixture
def glue(tmp_path):
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=24)
    return tmp_path / "glue"


def augment_job(glue, out, tmp_path, seed=0, shard_size=5):
    table = load_input(task="sst2", data_dir=glue)
    models = MethodModels(tiny_mlm(tmp_path / "vocab"), tiny_vectors())
    return AugmentJob(table, out, Recipe(variants_per_example=3, seed=seed), models,
                      options=BuildOptions(shard_size=shard_size))


def test_augment_killed_mid_run_resumes_to_the_uninterrupted_rows(glue, tmp_path):
    run(augment_job(glue, tmp_path / "ref", tmp_path))
    with pytest.raises(KeyboardInterrupt):
        run(augment_job(glue, tmp_path / "o", tmp_path), StopAfter(2))
    assert sorted(p.name for p in (tmp_path / "o.partial" / "shards").iterdir()) == ["00000", "00001"]
    heard: list[str] = []
    report = run(augment_job(glue, tmp_path / "o", tmp_path), notify=heard.append)
    assert report.shards_resumed == 2 and report.shards_total == 5
    assert heard == ["Resuming: 2 of 5 shards were already built"]
    assert load_augmented(tmp_path / "o").to_list() == load_augmented(tmp_path / "ref").to_list()
    assert not (tmp_path / "o.partial").exists()


def test_augment_refuses_to_resume_with_another_seed(glue, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(augment_job(glue, tmp_path / "o", tmp_path), StopAfter(1))
    with pytest.raises(InputError, match=r"o.partial holds an interrupted run with other arguments or inputs "
                                         r"\(recipe differs\)"):
        run(augment_job(glue, tmp_path / "o", tmp_path, seed=1))


def test_a_job_with_a_method_object_runs_here_only(glue, tmp_path):
    from tinyaug.pipelines.scale.executor import LocalExecutor

    class Remote(LocalExecutor):
        remote = True

    job = augment_job(glue, tmp_path / "o", tmp_path)
    job.method = object()  # type: ignore[assignment]
    with pytest.raises(TinyaugError, match="a method object runs in this process only"):
        run(job, Remote())


@pytest.fixture
def teacher_world(glue, tmp_path):
    teacher = T.save_tiny_model(tmp_path / "teacher", T.tiny_config(labels=("negative", "positive")))
    write_augmented(glue, "sst2", tmp_path / "aug", variants=3)
    return teacher, tmp_path / "aug"


def test_teacher_logits_killed_mid_run_resumes_to_the_uninterrupted_logits(teacher_world, tmp_path, monkeypatch,
                                                                           caplog):
    from tinyaug.pipelines.distillation import teacher as module

    teacher, data = teacher_world
    monkeypatch.setattr(module, "SHARD_BATCHES", 2)  # 8 rows a shard with batch size 4
    job = module.TeacherLogitsJob(teacher, data, "sst2", out=tmp_path / "ref", batch_size=4, device="cpu")
    reference = module.run(job)
    killed = module.TeacherLogitsJob(teacher, data, "sst2", out=tmp_path / "o", batch_size=4, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        module.run(killed, StopAfter(3))
    work = tmp_path / "o.teacher.partial"
    assert sorted(p.name for p in work.glob("*.npy")) == ["00000.npy", "00001.npy", "00002.npy"]
    heard: list[tuple] = []
    result = module.run(killed, progress=lambda *a: heard.append(a))
    assert heard[0] == ("teacher logits", 24, result["rows"]) and heard[-1][1] == result["rows"]
    assert "Resuming: 3 of" in caplog.text
    a, b = (np.asarray(load_augmented(tmp_path / d)["teacher_logits"]) for d in ("ref", "o"))
    assert np.array_equal(a, b) and result["rows"] == reference["rows"]
    assert not work.exists()


def test_teacher_logits_refuses_to_resume_with_another_batch_size(teacher_world, tmp_path, monkeypatch):
    from tinyaug.pipelines.distillation import teacher as module

    teacher, data = teacher_world
    monkeypatch.setattr(module, "SHARD_BATCHES", 2)
    job = module.TeacherLogitsJob(teacher, data, "sst2", out=tmp_path / "o", batch_size=4, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        module.run(job, StopAfter(1))
    other = module.TeacherLogitsJob(teacher, data, "sst2", out=tmp_path / "o", batch_size=8, device="cpu")
    with pytest.raises(InputError, match=r"o.teacher.partial holds an interrupted run with other arguments or "
                                         r"inputs \(batch_size differs\)"):
        module.run(other)
    assert module.run(job)["rows"] > 24  # the same arguments resume


def test_teacher_logits_onto_its_own_data_killed_after_writing_is_finished_by_a_rerun(teacher_world, tmp_path,
                                                                                       monkeypatch):
    """Written onto ``--data`` itself, the result changes the data's fingerprint (part of the key):
    a kill after the swap, before the clean-up, must not make the rerun refuse."""
    from tinyaug.pipelines.distillation import teacher as module
    from tinyaug.pipelines.io import shard_runner

    teacher, data = teacher_world
    real_remove = shard_runner.remove_tree
    monkeypatch.setattr(shard_runner, "remove_tree", lambda path: (_ for _ in ()).throw(KeyboardInterrupt))
    job = module.TeacherLogitsJob(teacher, data, "sst2", batch_size=4, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        module.run(job)
    first = np.asarray(load_augmented(data)["teacher_logits"])
    monkeypatch.setattr(shard_runner, "remove_tree", real_remove)
    module.run(job)
    assert np.array_equal(np.asarray(load_augmented(data)["teacher_logits"]), first)
    assert not data.with_name(data.name + ".teacher.partial").exists()
