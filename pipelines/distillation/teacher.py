"""``teacher_logits``: store what the teacher makes of every row of an augmented dataset.

Columns ``teacher_logits`` (float32, in the task's label order; one score for STS-B),
``teacher_label`` (the prediction, typed as ``label``), ``teacher_confidence`` (its probability)
and ``teacher_flip`` (the prediction differs from the one on the row's original), their
description ``teacher_logits.json`` with the flip rates (by source, label and number of replaced
words), and a refreshed dataset card, all written together, atomically (``io.storage``).

The logits are computed in shards of ``SHARD_BATCHES`` batches, each saved as it completes in
``TARGET.teacher.partial`` beside the output, so an interrupted run resumes where it stopped; the
shards run here or on a Ray cluster (``engine``, see ``pipelines.scale``), with the same logits
either way: every shard is batched the same. A resumed run checks each shard it finds and computes
a damaged one again; a lock in that folder keeps a second run on the same dataset out.

Not here: distillation (``distill``), which reads them in stage 2.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

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
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.card import render_card
from tinyaug.pipelines.augmentation.shards import shard_jobs
from tinyaug.pipelines.distillation.loading import (
    load_task_dataset,
    load_task_model,
    load_tokenizer,
)
from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.models import model_fingerprint, resolve_device
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
from tinyaug.pipelines.io.outputs import TINYAUG_DATASET, check_output, is_tinyaug_dataset, output_lock, real_path
from tinyaug.pipelines.io.interrupts import check_interrupted
from tinyaug.pipelines.io.storage import atomic_file, read_json, remove_tree, save_dataset, write_json

SHARD_BATCHES = 64  # batches per shard of logits: the unit of resume and of work for an engine
LOCK_FILE = "run.lock"  # in the work folder: one run per dataset at a time

logger = logging.getLogger(__name__)


def load_teacher(teacher: str | Path, task: str, max_length: int, batch_size: int,
                 device: str = "auto") -> tuple[Callable[[pa.Table], np.ndarray], Any, dict[str, str]]:
    """The teacher as a function from rows (an Arrow table with the task's text columns) to logits
    in the task's label order, the model, and what identifies it (every engine must match it)."""
    spec = get_task(task)
    target = resolve_device(device)
    model, permutation = load_task_model(teacher, spec, "teacher")
    tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    collator = TextCollator(tokenizer, spec.text_columns, max_length)

    def predict(rows: pa.Table) -> np.ndarray:
        return predict_logits(model, collator, datasets.Dataset(rows), batch_size=batch_size, device=target,
                              permutation=permutation)

    return predict, model, {"teacher": f"{teacher} ({model_fingerprint(str(teacher), model)})"}


def teacher_logits(teacher: str | Path, data: str | Path, task: str, *, out: str | Path | None = None,
                   batch_size: int = 64, max_seq_length: int | None = None,
                   device: str = "auto", overwrite: bool = False, engine: Any = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Add the teacher's logits as column ``teacher_logits`` to the dataset at ``data`` (or write
    the result to ``out``), atomically. Logits are stored in the task's label order (aligned by
    label name with the teacher's ``id2label``); STS-B stores one score per row. ``engine``: None
    computes here; a ``RayEngine`` on its actors (this process then loads the teacher on the CPU,
    only to name it). ``progress("teacher logits", rows done, rows)`` hears each shard."""
    spec = get_task(task)
    max_length = max_seq_length or default_max_seq_length(spec.name)
    out = _check_out(teacher, data, out, overwrite)
    target = Path(out or data).resolve()
    work = target.with_name(target.name + ".teacher.partial")
    with _run_lock(work, target):
        ds = load_task_dataset(data, spec)
        predict, model, identifiers = load_teacher(teacher, task, max_length, batch_size,
                                                   "cpu" if engine is not None else device)
        texts = ds.select_columns(list(spec.text_columns)).with_format("arrow")
        key = {**identifiers, "data": ds._fingerprint, "rows": len(ds), "max_seq_length": max_length,
               "batch_size": batch_size}
        with _logit_shards(work, key):
            jobs = shard_jobs(len(ds), batch_size * SHARD_BATCHES)
            todo = [job for job in jobs if not _shard_whole(work / f"{job.name}.npy", job.stop - job.start)]
            if len(todo) < len(jobs):
                logger.warning("resuming: %d of %d shards of logits were already computed", len(jobs) - len(todo), len(jobs))
            done_rows = len(ds) - sum(job.stop - job.start for job in todo)
            if progress is not None:
                progress("teacher logits", done_rows, len(ds))
            source = lambda job: texts[job.start:job.stop]  # noqa: E731
            results = (engine.teacher_logits(str(teacher), spec.name, max_length, batch_size, identifiers, todo, source)
                       if engine is not None else ((job, predict(source(job))) for job in todo))
            for job, shard_logits in results:
                with atomic_file(work / f"{job.name}.npy") as tmp, open(tmp, "wb") as handle:
                    np.save(handle, np.asarray(shard_logits, dtype=np.float32), allow_pickle=False)
                logger.info("teacher logits: shard %d/%d", job.index + 1, len(jobs))
                check_interrupted()  # an interrupt a library swallowed stops here, the shard saved
                done_rows += job.stop - job.start
                if progress is not None:
                    progress("teacher logits", done_rows, len(ds))
            logits = np.concatenate([np.load(work / f"{job.name}.npy", allow_pickle=False) for job in jobs])
            result = _store(ds, logits, spec, teacher, model, max_length, data, out)
    return result


@contextlib.contextmanager
def _run_lock(work: Path, target: Path) -> Iterator[None]:
    """Hold ``TARGET.teacher.partial/run.lock`` for the whole run (taken before anything loads): a
    second run on the same dataset stops at once with one line and touches nothing. A work folder
    this run created and left holding only the lock (it failed before its first shard) goes."""
    created = not work.exists()
    with output_lock(work / LOCK_FILE, f"another tinyaug teacher-logits run is writing {target} right now; "
                                       "wait for it to finish, or choose another --out"):
        try:
            yield
        except BaseException:
            if created and work.is_dir() and [p.name for p in work.iterdir()] == [LOCK_FILE]:
                remove_tree(work)
            raise


@contextlib.contextmanager
def _logit_shards(work: Path, key: dict) -> Iterator[Path]:
    """The folder ``TARGET.teacher.partial`` of logit shards for ``key`` (locked by the caller):
    emptied when it holds another run's shards (or a ``run.json`` cut short), removed once the
    dataset with the logits is written."""
    try:
        previous = read_json(work / "run.json")
    except (ValueError, OSError):  # cut short by a power loss: start afresh
        previous = None
    if previous != key:
        for path in work.iterdir():
            if path.name != LOCK_FILE:
                remove_tree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        write_json(work / "run.json", key)
    yield work
    remove_tree(work)


def _shard_whole(path: Path, rows: int) -> bool:
    """Whether the logits shard ``path`` exists whole (``rows`` rows of float32); a damaged one (cut
    short by a power loss, say) is named in a warning and removed, to be computed again."""
    if not path.exists() and not path.is_symlink():
        return False
    try:
        shard = np.load(path, mmap_mode="r", allow_pickle=False)
        problem = None if shard.shape[:1] == (rows,) and shard.dtype == np.float32 else \
            f"shape {shard.shape} {shard.dtype} where {rows} rows of float32 were expected"
        del shard
    except (ValueError, OSError, EOFError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem is None:
        return True
    logger.warning("teacher logits shard %s is damaged (%s): computing it again", path, problem)
    path.unlink()
    return False


def _store(ds: datasets.Dataset, logits: np.ndarray, spec: Any, teacher: str | Path, model: Any,
           max_length: int, data: str | Path, out: str | Path | None) -> dict[str, Any]:
    """Add the teacher's columns to ``ds`` and save it (with the description and the card)."""
    agreement = compute_metrics(spec.name, logits, np.asarray(ds[spec.label_column]))
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
        ids, variants = np.asarray(ds[EXAMPLE_ID]), np.asarray(ds[VARIANT])
        flipped = flips(ids, variants, predicted.astype(np.float64), spec.is_regression)
        ds = ds.add_column(TEACHER_FLIP, flipped.tolist(), feature=datasets.Value("bool"))
        if CHANGES in ds.column_names:
            info["flips"] = flip_statistics(flipped, variants, *change_summary(ds), np.asarray(ds[spec.label_column]),
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
