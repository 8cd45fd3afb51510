"""The Ray executor on a local Ray instance (2 CPUs, no dashboard): the same rows as the local
executor with 1, 2 and 3 actors, a killed actor retried, an actor out of retries (then the run
resumed on the local executor), actors with other models refused, a killed driver resumed, teacher
logits, and the executor interface with a trivial picklable worker."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from tinyaug.augment.recipe import Recipe  # noqa: E402
from tinyaug.errors import TinyaugError  # noqa: E402
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table, load_augmented  # noqa: E402
from tinyaug.pipelines.io.models import load_masked_lm  # noqa: E402
from tinyaug.pipelines.io.tables import load_input  # noqa: E402
from tinyaug.pipelines.io.vectors import load_vectors  # noqa: E402
from tinyaug.pipelines.augmentation.methods import ModelSpec  # noqa: E402
from tinyaug.pipelines.scale.ray_executor import RayExecutor, RaySettings  # noqa: E402
from conftest import glue_folder  # noqa: E402

GLUE = glue_folder()  # the full GLUE files, or the package's sample of their rows
RECIPE = Recipe(variants_per_example=3, seed=5)


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random 1-layer masked LM and random vectors over the words of the GLUE slices the tests
    use, saved as files, as actors load them: (spec, loaded masked LM, loaded vectors)."""
    import re

    import torch
    from transformers import BertForMaskedLM

    from tinyaug.pipelines.experiment import toys as T

    folder = tmp_path_factory.mktemp("models")
    words = sorted({w for task in ("sst2", "mrpc") for row in glue_table(task, 24).dataset.to_list()
                    for column in ("sentence", "sentence1", "sentence2") if column in row
                    for w in re.findall(r"[a-z]+", row[column].lower())})
    tokenizer = T.tiny_tokenizer(folder / "mlm", T.SPECIAL + words)
    torch.manual_seed(0)
    BertForMaskedLM(T.tiny_config(vocab_size=len(tokenizer), layers=1, labels=None)).save_pretrained(folder / "mlm")
    tokenizer.save_pretrained(folder / "mlm")
    vectors = np.random.default_rng(0).standard_normal((len(words), 8))
    lines = [f"{word} " + " ".join(f"{x:.6f}" for x in vector) for word, vector in zip(words, vectors)]
    (folder / "vectors.txt").write_text("\n".join(lines) + "\n")
    spec = ModelSpec(str(folder / "mlm"), str(folder / "vectors.txt"))
    return spec, load_masked_lm(spec.mlm, "cpu"), load_vectors(spec.vectors)


def glue_table(task: str, rows: int):
    return load_input(task=task, data_dir=GLUE, limit=rows)


def build(table, out, models, executor=None, shard_size=4, recipe=RECIPE, spec=None):
    named, mlm, vectors = models
    return augment_table(table, out, recipe, mlm, vectors, BuildOptions(shard_size=shard_size), executor=executor,
                         spec=spec or named)


def arrow(path):
    return load_augmented(path).data.table


@pytest.mark.parametrize("task,rows", [("sst2", 14), ("mrpc", 6)])
def test_same_rows_as_the_local_executor_whatever_the_number_of_actors(cluster, models, tmp_path, task, rows):
    table = glue_table(task, rows)
    build(table, tmp_path / "local", models)
    local = arrow(tmp_path / "local")
    assert local.num_rows > rows
    for actors in (1, 2, 3):
        executor = RayExecutor(RaySettings(actors=actors, cpus_per_actor=0.5))
        report = build(table, tmp_path / f"ray{actors}", models, executor, shard_size=2 if task == "mrpc" else 4)
        assert report.shards_total >= actors
        assert arrow(tmp_path / f"ray{actors}").equals(local), f"{actors} actors"
        assert report.metadata["stats"] == build(table, tmp_path / "local", models).metadata["stats"]


@pytest.mark.parametrize("method", ["random", pytest.param("synonyms+eda:swap", marks=pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.noun").is_file(), reason="Debian's wordnet-base is missing (.ci/run installs it)"))])
def test_every_method_builds_the_same_rows_on_ray_as_locally(cluster, models, tmp_path, method):
    recipe = dataclasses.replace(RECIPE, method=method)
    table = glue_table("sst2", 10)
    local = build(table, tmp_path / "local", models, recipe=recipe)
    executor = RayExecutor(RaySettings(actors=2, cpus_per_actor=0.5))
    remote = build(table, tmp_path / "ray", models, executor, shard_size=3, recipe=recipe)
    assert arrow(tmp_path / "ray").equals(arrow(tmp_path / "local"))
    assert remote.metadata["method"] == method and "mlm" not in remote.metadata["run_key"]
    assert {c["source"] for row in load_augmented(tmp_path / "ray") for c in row["aug_changes"]} \
        == set(local.stats.replaced)


def test_a_killed_actor_is_restarted_and_its_shard_retried(cluster, models, tmp_path):
    table = glue_table("sst2", 12)
    build(table, tmp_path / "local", models)
    killed = []

    def kill_first(info, job):
        if not killed:
            killed.append(info["pid"])
            os.kill(info["pid"], signal.SIGKILL)

    executor = RayExecutor(RaySettings(actors=2, cpus_per_actor=0.5), on_submit=kill_first)
    build(table, tmp_path / "ray", models, executor)
    assert killed and arrow(tmp_path / "ray").equals(arrow(tmp_path / "local"))


def test_an_actor_out_of_retries_stops_with_one_line_and_the_run_resumes_on_the_local_executor(cluster, models, tmp_path):
    table = glue_table("sst2", 12)

    def kill_all(info, job):
        if job.index > 0:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    pids: list[int] = []
    executor = RayExecutor(RaySettings(actors=1, cpus_per_actor=0.5, max_retries=0),
                           on_start=lambda infos: pids.extend(i["pid"] for i in infos), on_submit=kill_all)
    with pytest.raises(TinyaugError, match="died more often than it may be restarted.*rerun the same command"):
        build(table, tmp_path / "ray", models, executor)
    assert not (tmp_path / "ray").exists()
    assert [p.name for p in (tmp_path / "ray.partial" / "shards").iterdir()] == ["00000"]
    report = build(table, tmp_path / "ray", models)  # resumed on the other executor
    assert report.shards_resumed == 1
    build(table, tmp_path / "local", models)
    assert arrow(tmp_path / "ray").equals(arrow(tmp_path / "local"))


def test_actors_with_other_models_are_refused(cluster, models, tmp_path):
    spec, mlm, vectors = models
    lines = Path(spec.vectors).read_text().splitlines()
    (tmp_path / "other.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # the same words, in another order
    other = ModelSpec(spec.mlm, str(tmp_path / "other.txt"))
    with pytest.raises(TinyaugError, match="loaded vectors .* give every node the same model files"):
        build(glue_table("sst2", 4), tmp_path / "o", models, RayExecutor(RaySettings(actors=1, cpus_per_actor=0.5)),
              spec=other)


def test_a_killed_driver_resumes_with_identical_rows(cluster, models, tmp_path):
    """The command line on the test's Ray cluster (--ray-address), killed with SIGKILL once its
    first shard is written, then run again: it resumes and ends with the local executor's rows."""
    spec = models[0]
    out = tmp_path / "cli"
    command = [sys.executable, "-c", "from tinyaug.pipelines.cli import main; main()", "augment", "--task", "sst2", "--data-dir", str(GLUE),
               "--limit", "24", "--shard-size", "2", "-n", "3", "--seed", "5", "--mlm", spec.mlm,
               "--vectors", spec.vectors, "--device", "cpu", "--out", str(out), "--show", "0",
               "--engine", "ray", "--ray-address", cluster, "--actors", "1", "--cpus-per-actor", "0.5"]
    glue_table("sst2", 1)
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shards = out.with_name("cli.partial") / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and not (shards.is_dir() and any(not p.name.startswith(".") for p in shards.iterdir())):
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    written = [p for p in shards.iterdir() if not p.name.startswith(".")]
    assert 1 <= len(written) < 12 and not out.exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Resuming:" in again.stderr
    build(glue_table("sst2", 24), tmp_path / "local", models, shard_size=2)
    assert arrow(out).equals(arrow(tmp_path / "local"))
    assert not out.with_name("cli.partial").exists()


def test_teacher_logits_on_ray_equal_the_local_ones(cluster, tmp_path):
    from helpers import write_augmented
    from tinyaug.pipelines.distillation import teacher_logits
    from tinyaug.pipelines.experiment import toys as T

    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=40)
    teacher = T.save_tiny_model(tmp_path / "teacher", T.tiny_config(labels=("negative", "positive")))
    write_augmented(tmp_path / "glue", "sst2", tmp_path / "aug", variants=3)
    local = teacher_logits(teacher, tmp_path / "aug", "sst2", out=tmp_path / "local", batch_size=4)
    on_ray = teacher_logits(teacher, tmp_path / "aug", "sst2", out=tmp_path / "ray", batch_size=4,
                            executor=RayExecutor(RaySettings(actors=2, cpus_per_actor=0.5)))
    assert on_ray["rows"] == local["rows"] > 2 * 40
    a, b = (np.asarray(load_augmented(tmp_path / d)["teacher_logits"]) for d in ("local", "ray"))
    assert np.array_equal(a, b)
    assert not (tmp_path / "ray.teacher.partial").exists()


class Cubes:
    """A trivial worker factory, picklable (sent by value: the actors cannot import this module)."""

    def __call__(self):
        return lambda rows, progress: [r ** 3 for r in rows]


def test_the_ray_executor_runs_any_picklable_worker(cluster):
    from ray import cloudpickle

    from tinyaug.pipelines.io.shard_runner import shard_jobs

    jobs = shard_jobs(7, 2)
    heard: list[int] = []
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        executor = RayExecutor(RaySettings(actors=2, cpus_per_actor=0.5))
        results = dict(executor.map(Cubes(), jobs, lambda job: list(range(job.start, job.stop)), progress=heard.append))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert results == {job: [r ** 3 for r in range(job.start, job.stop)] for job in jobs}
    assert sorted(heard) == [1, 2, 2, 2]  # each shard's rows once, as its result arrives


@dataclasses.dataclass
class Counted:
    """A picklable worker factory whose worker names how many workers were built before it (a file
    counts them): an actor Ray restarts reports another worker, as one restarted on a node with
    other model files would."""

    counter: str

    def __call__(self):
        path = Path(self.counter)
        built = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(built))
        return CountedWorker({"worker": f"build {built}"})


@dataclasses.dataclass
class CountedWorker:
    identifiers: dict

    def __call__(self, rows, progress):
        return list(rows)


def test_a_restarted_actor_that_loaded_other_models_is_refused(cluster, tmp_path):
    from ray import cloudpickle

    from tinyaug.pipelines.io.shard_runner import shard_jobs

    def kill_first(info, job):
        if job.index == 0:
            os.kill(info["pid"], signal.SIGKILL)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        executor = RayExecutor(RaySettings(actors=1, cpus_per_actor=0.5), on_submit=kill_first)
        with pytest.raises(TinyaugError, match=r"shard 0\) loaded worker 'build 2', not 'build 1'"):
            list(executor.map(Counted(str(tmp_path / "built")), shard_jobs(4, 2), lambda job: [job.index],
                              expected={"worker": "build 1"}))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
