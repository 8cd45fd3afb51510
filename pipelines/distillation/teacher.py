"""``teacher_logits``: store what the teacher makes of every row of an augmented dataset.

Columns ``teacher_logits`` (float32, in the task's label order; one score for STS-B),
``teacher_label`` (the prediction, typed as ``label``), ``teacher_confidence`` (its probability)
and ``teacher_flip`` (the prediction differs from the one on the row's original), their
description ``teacher_logits.json`` with the flip rates (by source, label and number of replaced
words), and a refreshed dataset card, all written together, atomically (``io.storage``).

``TeacherLogitsJob`` says what to do; ``run(job, executor)`` does it (the command line and
``teacher_logits`` build the same job). The logits are computed in shards of ``SHARD_BATCHES``
batches by the shard runner augment uses too (``io.shard_runner``), each saved as it completes in
``TARGET.teacher.partial`` beside the output (``00000.npy``, ...), so an interrupted run resumes
where it stopped and one with other arguments is refused; the shards run here or on a Ray cluster
(the executor, ``pipelines.scale``), with the same logits either way: every shard is batched the
same. A resumed run checks each shard it finds and computes a damaged one again; a lock in that
folder keeps a second run on the same dataset out.

Not here: distillation (``distill``), which reads them in stage 2.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import datasets
import numpy as np
import pyarrow as pa

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.inference import predict_logits
from tinyaug.distill.metrics import compute_metrics
from tinyaug.distill.recipe import default_max_seq_length
from tinyaug.distill.variants import (
    REGRESSION_FLIP,
    flip_statistics,
    flips,
    teacher_predictions,
)
from tinyaug.pipelines.augmentation.card import render_card
from tinyaug.pipelines.distillation.loading import (
    load_task_dataset,
    load_task_model,
    load_tokenizer,
)
from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.models import model_fingerprint
from tinyaug.pipelines.io.onnx_runtime import backend_device, check_actor_device, classifier_on_onnxruntime
from tinyaug.pipelines.io.rows import column_values
from tinyaug.pipelines.io.schema import (
    CARD_FILE,
    CHANGES,
    EXAMPLE_ID,
    TEACHER_COLUMNS,
    TEACHER_CONFIDENCE,
    TEACHER_FLIP,
    TEACHER_LABEL,
    TEACHER_LOGITS,
    TEACHER_LOGITS_INFO,
    VARIANT,
    read_metadata,
    teacher_logits_feature,
    with_metadata,
)
from tinyaug.pipelines.io.outputs import TINYAUG_DATASET, check_output, is_tinyaug_dataset, real_path
from tinyaug.pipelines.io.shard_runner import ShardJob, ShardRunner, run_lock, shard_jobs
from tinyaug.pipelines.io.storage import atomic_file, save_dataset
from tinyaug.pipelines.scale.executor import Executor, LocalExecutor

SHARD_BATCHES = 64  # batches per shard of logits: the unit of resume and of work for an executor

logger = logging.getLogger(__name__)


def load_teacher(teacher: str | Path, task: str, max_length: int, batch_size: int,
                 device: str = "auto", backend: str = "torch") -> tuple[Callable[[pa.Table], np.ndarray], Any, dict[str, str]]:
    """The teacher as a function from rows (an Arrow table with the task's text columns) to logits
    in the task's label order, the model, and what identifies it (every engine must match it).
    ``backend`` ``onnxruntime``: computed by ONNX Runtime in fp32 on the CPU."""
    spec = get_task(task)
    target = backend_device(backend, device, "fp32")
    model, permutation = load_task_model(teacher, spec, "teacher")
    tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    collator = TextCollator(tokenizer, spec.text_columns, max_length)
    identifier = f"{teacher} ({model_fingerprint(str(teacher), model)})"
    forward = None
    if backend == "onnxruntime":
        forward, label = classifier_on_onnxruntime(model, identifier, tokenizer.model_input_names)
        identifier = f"{identifier} {label}"

    def predict(rows: pa.Table) -> np.ndarray:
        return predict_logits(model, collator, datasets.Dataset(rows), batch_size=batch_size, device=target,
                              permutation=permutation, forward=forward)

    return predict, model, {"teacher": identifier}


@dataclasses.dataclass(frozen=True)
class TeacherWorker:
    """Computes one shard's logits (float32, rows x labels) with a loaded teacher."""

    predict: Callable[[pa.Table], np.ndarray]
    identifiers: dict[str, str]

    def __call__(self, rows: pa.Table, progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.predict(rows)


@dataclasses.dataclass(frozen=True)
class TeacherWorkers:
    """A remote executor's worker factory (picklable): each worker loads the teacher on ``device``."""

    teacher: str
    task: str
    max_length: int
    batch_size: int
    device: str
    backend: str = "torch"

    def __post_init__(self) -> None:
        check_actor_device(self.backend, self.device)

    def __call__(self) -> TeacherWorker:
        predict, _, identifiers = load_teacher(self.teacher, self.task, self.max_length, self.batch_size, self.device,
                                               self.backend)
        return TeacherWorker(predict, identifiers)


class LogitShards:
    """How teacher-logits keeps its shards (``io.shard_runner.ShardStore``): one ``.npy`` file of
    float32 each, ``TARGET.teacher.partial/00000.npy``."""

    def path(self, work: Path, job: ShardJob) -> Path:
        return work / f"{job.name}.npy"

    def write(self, result: np.ndarray, target: Path) -> None:
        with atomic_file(target) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(result, dtype=np.float32), allow_pickle=False)

    def problem(self, job: ShardJob, path: Path) -> str | None:
        """Not ``job.rows`` rows of float32 (cut short by a power loss, say), or None."""
        try:
            shard = np.load(path, mmap_mode="r", allow_pickle=False)
            problem = None if shard.shape[:1] == (job.rows,) and shard.dtype == np.float32 else \
                f"shape {shard.shape} {shard.dtype} where {job.rows} rows of float32 were expected"
            del shard
        except (ValueError, OSError, EOFError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return problem


@dataclasses.dataclass(frozen=True)
class TeacherLogitsJob:
    """The teacher's logits on every row of the dataset ``data``, written to ``out`` (None: onto
    ``data``). ``max_seq_length`` None: the task's default."""

    teacher: str | Path
    data: str | Path
    task: str
    out: str | Path | None = None
    batch_size: int = 64
    max_seq_length: int | None = None
    device: str = "auto"  # where this process computes (a remote executor's workers use its device)
    overwrite: bool = False
    backend: str = "torch"  # or onnxruntime (fp32, CPU)


def run(job: TeacherLogitsJob, executor: Executor | None = None,
        progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Compute ``job``'s logits on ``executor`` (None: here; on Ray, this process loads the teacher
    on the CPU, only to name it) and store them (see the module docstring).
    ``progress("teacher logits", rows done, rows)`` hears each shard."""
    executor = executor or LocalExecutor()
    spec = get_task(job.task)
    max_length = job.max_seq_length or default_max_seq_length(spec.name)
    out = _check_out(job.teacher, job.data, job.out, job.overwrite)
    target = Path(out or job.data).resolve()
    work = target.with_name(target.name + ".teacher.partial")
    with run_lock(work, f"another tinyaug teacher-logits run is writing {target} right now; wait for it to finish, "
                        "or choose another --out"):
        ds = load_task_dataset(job.data, spec)
        predict, model, identifiers = load_teacher(job.teacher, job.task, max_length, job.batch_size,
                                                   "cpu" if executor.remote else job.device, job.backend)
        texts = ds.select_columns(list(spec.text_columns)).with_format("arrow")
        key = {**identifiers, "data": ds._fingerprint, "rows": len(ds), "max_seq_length": max_length,
               "batch_size": job.batch_size}
        runner = ShardRunner(work, key, shard_jobs(len(ds), job.batch_size * SHARD_BATCHES), LogitShards(),
                             what="shards of teacher logits")
        missing = runner.open()
        done = [len(ds) - sum(shard.rows for shard in missing)]

        def heard(rows: int) -> None:
            done[0] += rows
            if progress is not None:
                progress("teacher logits", done[0], len(ds))

        heard(0)
        factory: Any = TeacherWorkers(str(job.teacher), spec.name, max_length, job.batch_size, executor.device,
                                      job.backend) \
            if executor.remote else (lambda: TeacherWorker(predict, identifiers))
        runner.write(executor.map(factory, missing, lambda shard: texts[shard.start:shard.stop],
                                  expected=identifiers, progress=heard))
        return runner.finish(target, lambda shards: _store(
            ds, np.concatenate([np.load(path, allow_pickle=False) for path in shards]), spec, job.teacher, model,
            max_length, job.data, out))


def teacher_logits(teacher: str | Path, data: str | Path, task: str, *, out: str | Path | None = None,
                   batch_size: int = 64, max_seq_length: int | None = None,
                   device: str = "auto", overwrite: bool = False, executor: Executor | None = None,
                   progress: Callable[[str, int, int], None] | None = None, backend: str = "torch") -> dict[str, Any]:
    """Add the teacher's logits as column ``teacher_logits`` to the dataset at ``data`` (or write
    the result to ``out``), atomically: ``run(TeacherLogitsJob(...), executor)``. Logits are
    stored in the task's label order (aligned by label name with the teacher's ``id2label``);
    STS-B stores one score per row. ``executor``: None computes here; a ``RayExecutor`` on its
    actors. ``progress("teacher logits", rows done, rows)`` hears each shard."""
    job = TeacherLogitsJob(teacher, data, task, out, batch_size, max_seq_length, device, overwrite, backend)
    return run(job, executor, progress)


def _store(ds: datasets.Dataset, logits: np.ndarray, spec: Any, teacher: str | Path, model: Any,
           max_length: int, data: str | Path, out: str | Path | None) -> dict[str, Any]:
    """Add the teacher's columns to ``ds`` and save it (with the description and the card)."""
    agreement = compute_metrics(spec.name, logits, column_values(ds, spec.label_column))
    ds = ds.remove_columns([c for c in TEACHER_COLUMNS if c in ds.column_names])  # a rerun replaces them
    predicted, confidence = teacher_predictions(logits, spec.is_regression)
    ds = ds.add_column(TEACHER_LOGITS, logits.tolist(), feature=teacher_logits_feature())
    ds = ds.add_column(TEACHER_LABEL, predicted.tolist(), feature=ds.features[spec.label_column])
    ds = ds.add_column(TEACHER_CONFIDENCE, confidence.tolist(), feature=datasets.Value("float32"))
    info = {"column": TEACHER_LOGITS, "task": spec.name, "teacher": str(Path(teacher).resolve())
            if Path(teacher).exists() else str(teacher),
            "teacher_id2label": {str(k): v for k, v in model.config.id2label.items()},
            "label_order": list(spec.label_names) if spec.label_names else ["score"],
            "max_seq_length": max_length, "rows": len(ds),
            "agreement_with_labels": agreement}
    if EXAMPLE_ID in ds.column_names and VARIANT in ds.column_names:
        ids, variants = column_values(ds, EXAMPLE_ID), column_values(ds, VARIANT)
        flipped = flips(ids, variants, predicted.astype(np.float64), spec.is_regression)
        ds = ds.add_column(TEACHER_FLIP, flipped.tolist(), feature=datasets.Value("bool"))
        if CHANGES in ds.column_names:
            info["flips"] = flip_statistics(flipped, variants, *change_summary(ds), column_values(ds, spec.label_column),
                                            spec.label_names)
            if spec.is_regression:
                info["flips"]["definition"] = f"the teacher's score moves by {REGRESSION_FLIP} or more"
    ds = with_metadata(ds, TEACHER_LOGITS, info)
    files: dict[str, Any] = {TEACHER_LOGITS_INFO: info}
    metadata = read_metadata(ds)
    if metadata.get("recipe"):  # a dataset tinyaug augment made: its card gains the teacher's section
        files[CARD_FILE] = render_card(metadata)
    written = save_dataset(ds, out or data, files, carry_from=data)
    logger.info("wrote %d teacher logit rows to %s", len(ds), written)
    return {**info, "out": str(written)}


def _check_out(teacher: str | Path, data: str | Path, out: str | Path | None, overwrite: bool) -> Path | None:
    """The folder to write (links followed), or None to write onto ``data`` (no ``--out``, or
    ``--out`` naming ``data`` itself). The rule is ``io.outputs``'."""
    if out is None or real_path(out) == real_path(data):
        return None
    return check_output(out, command="teacher-logits", what=TINYAUG_DATASET, overwrite=overwrite,
                        inputs=[("--data", data), ("--teacher", teacher)], replaceable=is_tinyaug_dataset)


def change_summary(ds: datasets.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, from ``aug_changes``: the sources of its edits and their kinds, each as a sorted
    ``" + "``-joined name (``"mlm + vectors"``; ``""`` for no edit), and how many edits it has (read
    column-wise; a dataset written before edits had kinds holds replacements only)."""
    import pyarrow.compute as pc

    changes = ds.with_format("arrow")[CHANGES]
    changes = changes.combine_chunks() if hasattr(changes, "combine_chunks") else changes
    edits = pc.list_value_length(changes).fill_null(0).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(changes).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(changes)
    fields = {flat.type.field(i).name for i in range(flat.type.num_fields)}
    columns = [pc.struct_field(flat, "source").to_pylist(),
               pc.struct_field(flat, "kind").to_pylist() if "kind" in fields else ["replace"] * len(flat)]
    groups = []
    for values in columns:
        per_row: list[set[str]] = [set() for _ in range(len(ds))]
        for row, value in zip(parents.tolist(), values):
            per_row[row].add(value)
        groups.append(np.array([" + ".join(sorted(found)) for found in per_row], dtype=object))
    return groups[0], groups[1], edits
