"""``make_student`` and ``distill``: load the teacher, the student and the rows, run the TinyBERT
recipe (``tinyaug.distill.run``), save the student and score it on GLUE dev.

``distill`` writes ``OUT/`` (the student and its tokenizer), ``OUT/stage1/`` (the stage-1
student, when both stages run) and ``OUT/distill_results.json`` (settings, losses, teacher
check, dev metrics). ``make_student`` writes an untrained student and ``student_init.json``.

Not here: the stages and losses (``tinyaug.distill``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase
from transformers import set_seed

from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.metrics import primary_metric
from tinyaug.distill.recipe import DistillRecipe
from tinyaug.distill.run import TaskRows, distill_student, normalize_stage
from tinyaug.distill.student import (STUDENT_INITS, StudentSize, copy_teacher_layers, looks_like_size,
                                     student_config)
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.distill.validation import EarlyStopping
from tinyaug.pipelines.distillation.heldout import check_disjoint, keep_best_on, read_validation, validation_record
from tinyaug.pipelines.distillation.finetune import ProgressCallback, check_teacher, score_splits
from tinyaug.pipelines.distillation.loading import (check_dev_files, check_same_vocabulary, load_student_dir,
                                                    load_task_dataset, load_task_model, load_tokenizer,
                                                    read_dev_splits, save_model)
from tinyaug.pipelines.io.glue import TaskSpec, get_task
from tinyaug.pipelines.io.models import resolve_device
from tinyaug.pipelines.io.rows import column_values
from tinyaug.pipelines.io.schema import TEACHER_LOGITS, TEACHER_LOGITS_INFO, VARIANT
from tinyaug.pipelines.io.outputs import check_output, has_file, task_folder
from tinyaug.pipelines.io.storage import read_json, write_json

logger = logging.getLogger(__name__)

RESULTS_FILE = "distill_results.json"
STUDENT_INFO_FILE = "student_init.json"


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _make_student(student: str | Path, spec: TaskSpec, teacher: PreTrainedModel,
                  teacher_tokenizer: PreTrainedTokenizerBase, student_init: str, seed: int
                  ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    if student_init not in STUDENT_INITS:
        raise InputError(f"--student-init {student_init!r}: expected one of {', '.join(STUDENT_INITS)}")
    text = str(student)
    if looks_like_size(text) and not Path(text).exists():
        size = StudentSize.parse(text)
        config = student_config(teacher.config, size, spec.label_names)
        set_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config)
        return model, teacher_tokenizer, {"size": dataclasses.asdict(size), "init": student_init}
    if student_init != "random":
        raise InputError("--student-init teacher-layers builds a fresh student from a size "
                         "(--student layers=...); a student directory keeps its own weights")
    model = load_student_dir(text, spec)
    try:
        tokenizer = load_tokenizer(text, "student tokenizer")
    except ModelLoadError:
        logger.info("no tokenizer in %s: using the teacher's", text)
        tokenizer = teacher_tokenizer
    check_same_vocabulary(teacher_tokenizer, tokenizer, teacher, model)
    return model, tokenizer, {"directory": text, "init": "directory"}


def make_student(teacher: str | Path, student: str, task: str, out: str | Path, *,
                 student_init: str = "teacher-layers", layer_map: tuple[int, ...] | None = None,
                 seed: int = 42, overwrite: bool = False) -> dict[str, Any]:
    """Build a fresh student from a size (``"layers=2,hidden=384"``) and the teacher at ``teacher``,
    save it to ``out`` untrained (with ``student_init.json``), and return what was done.

    One saved student lets several runs (``finetune`` on hard labels, ``distill`` on other data)
    start from exactly the same weights. ``student_init="teacher-layers"`` copies the teacher's
    embeddings, the layers ``layer_map`` names (default: uniform) and its pooler and classifier.
    """
    out = check_output(out, command="make-student", what=f"a folder written by tinyaug make-student (with "
                       f"{STUDENT_INFO_FILE})", inputs=[("--teacher", teacher)], overwrite=overwrite,
                       replaceable=has_file(STUDENT_INFO_FILE))
    spec = get_task(task)
    if not looks_like_size(str(student)):
        raise InputError(f"--student {student!r}: expected a size such as layers=2,hidden=384")
    teacher_model, permutation = load_task_model(teacher, spec, "teacher")
    teacher_tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    model, tokenizer, source = _make_student(student, spec, teacher_model, teacher_tokenizer,
                                             "random", seed)
    if student_init == "teacher-layers":
        mapping = LayerMap.choose(layer_map, model.config.num_hidden_layers,
                                  teacher_model.config.num_hidden_layers)
        source.update(init="teacher-layers", layer_map=list(mapping.teacher_layers),
                      copied=copy_teacher_layers(model, teacher_model, mapping, permutation))
    elif student_init != "random":
        raise InputError(f"--student-init {student_init!r}: expected one of {', '.join(STUDENT_INITS)}")
    result = {"task": spec.name, "teacher": str(teacher), "student": source, "seed": seed,
              "student_parameters": _parameters(model), "teacher_parameters": _parameters(teacher_model),
              "out": str(out)}
    save_model(model, tokenizer, out)
    write_json(Path(out) / STUDENT_INFO_FILE, result)
    return result


def distill(teacher: str | Path, student: str | Path, data: str | Path, task: str, out: str | Path, *,
            stage: str | int = "both", data_dir: str | Path | None = None,
            recipe: DistillRecipe | None = None, student_init: str = "random",
            device: str = "auto", train_limit: int | None = None, teacher_check_rows: int = 1000,
            eval_batch_size: int = 64, progress: ProgressCallback | None = None, overwrite: bool = False,
            validation_rows: int | None = None, early_stopping: EarlyStopping = EarlyStopping(),
            **recipe_overrides: Any) -> dict[str, Any]:
    """TinyBERT task-specific distillation of ``teacher`` into ``student`` on the dataset at ``data``.

    ``student``: a model directory, or a size such as ``"layers=4,hidden=312,heads=12,
    intermediate=1200"`` built with the teacher's config and vocabulary (``student_init``
    ``"random"`` or ``"teacher-layers"``). ``stage``: ``1``, ``2`` or ``"both"``. ``data_dir``: a
    GLUE folder whose dev split(s) check the teacher before training and score the student after;
    without it the teacher is checked on the data's original rows and no dev metrics are made.
    ``recipe``: the settings, else ``DistillRecipe.for_task(task, **recipe_overrides)`` (e.g.
    ``stage1={"max_steps": 100}``, ``seed=1``, ``layer_map=(3, 6, 9, 12)``).
    ``train_limit``: use only the first N rows of ``data``. ``progress(what, done, total)`` hears
    each training step (``"stage 1"``, ``"stage 2"``) and scoring batch. ``validation_rows``:
    score stage 2 on the last N rows of ``data_dir``'s train file (which ``data`` must not hold:
    checked by ``idx``) every ``early_stopping.every`` steps, stop after ``early_stopping.patience``
    scores without improvement and keep the best weights, which dev then scores (``heldout``).
    """
    spec = get_task(task)
    stage = normalize_stage(stage)
    recipe = recipe or DistillRecipe.for_task(spec.name, **recipe_overrides)
    if recipe.task != spec.name:
        raise InputError(f"the recipe is for {recipe.task}, the task is {spec.name}")
    target = resolve_device(device)
    out = check_output(out, command="distill", what=f"a folder written by tinyaug distill (with {RESULTS_FILE})",
                       inputs=[("--teacher", teacher), ("--student", student), ("--data", data),
                               ("--data-dir", task_folder(data_dir, task))], overwrite=overwrite,
                       replaceable=has_file(RESULTS_FILE))
    if data_dir is not None:
        check_dev_files(data_dir, spec)
    elif validation_rows is not None:
        raise InputError("--validation-rows holds out rows of the GLUE train file: give --data-dir too")
    ds = load_task_dataset(data, spec)
    if train_limit is not None:
        ds = ds.select(range(min(train_limit, len(ds))))
    held_out = None
    if validation_rows is not None:
        held_out = read_validation(data_dir, spec, validation_rows)
        check_disjoint(ds, held_out, f"--data {data}")
    stored = TEACHER_LOGITS in ds.column_names
    run1, run2 = stage in ("1", "both"), stage in ("2", "both")
    teacher_model, permutation = load_task_model(teacher, spec, "teacher")
    teacher_tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    model, tokenizer, student_source = _make_student(student, spec, teacher_model, teacher_tokenizer,
                                                     student_init, recipe.seed)
    layer_map = None
    if run1 or student_init == "teacher-layers":
        layer_map = LayerMap.choose(recipe.layer_map, model.config.num_hidden_layers,
                                    teacher_model.config.num_hidden_layers)
    if student_init == "teacher-layers":
        student_source["copied"] = copy_teacher_layers(model, teacher_model, layer_map, permutation)
    if run2 and stored:
        _check_stored_logits(ds, spec, data, teacher, recipe.max_seq_length)
    dev = read_dev_splits(data_dir, spec) if data_dir is not None else None
    check = check_teacher(teacher_model, teacher_tokenizer, spec, permutation,
                          *_teacher_check_rows(ds, dev, spec, teacher_check_rows),
                          max_length=recipe.max_seq_length, batch_size=eval_batch_size, device=target,
                          progress=progress)

    result: dict[str, Any] = {
        "task": spec.name, "stage": stage, "teacher": str(teacher), "student": student_source,
        "data": str(data), "data_rows": len(ds), "used_stored_teacher_logits": bool(run2 and stored),
        "layer_map": list(layer_map.teacher_layers) if layer_map else None,
        "teacher_parameters": _parameters(teacher_model), "student_parameters": _parameters(model),
        "recipe": recipe.to_dict(), "device": str(target), "teacher_check": check}
    rows = TaskRows(ds, spec.text_columns, regression=spec.is_regression,
                    teacher_logits_column=TEACHER_LOGITS if stored else None)
    keep = None if held_out is None or not run2 else keep_best_on(
        model, tokenizer, spec, held_out, early_stopping, recipe.max_seq_length, "stage 2")
    with tempfile.TemporaryDirectory(prefix="tinyaug-distill-") as tmp:
        trained = distill_student(model, teacher_model, tokenizer, rows, recipe, layer_map=layer_map,
                                  teacher_permutation=permutation, stage=stage, work_dir=tmp,
                                  use_cpu=target.type == "cpu",
                                  after_stage1=lambda: save_model(model, tokenizer, out / "stage1"),
                                  progress=progress, early_stopping=keep)
    result["train"], result["main_process"] = trained["train"], trained["main_process"]
    if keep is not None:
        result["validation"] = validation_record(keep.record(), held_out)
    if not result["main_process"]:  # another rank of a multi-process run: rank 0 saves and scores
        return result
    save_model(model, tokenizer, out)
    if dev is not None:
        result["dev_predictions"] = {}
        result["dev_metrics"] = score_splits(model, tokenizer, spec, dev, permutation=None,
                                             max_length=recipe.max_seq_length, batch_size=eval_batch_size,
                                             device=target, progress=progress, predictions=result["dev_predictions"])
        metric = primary_metric(spec.name)
        for name, scores in result["dev_metrics"].items():
            logger.info("student %s on %s: %.4f", metric, name, scores[metric])
    else:
        result["dev_metrics"] = None
        logger.warning("no --data-dir: the student was not scored on GLUE dev")
    result["out"] = str(out)
    write_json(out / RESULTS_FILE, result)
    return result


def _teacher_check_rows(ds: datasets.Dataset, dev: dict[str, datasets.Dataset] | None, spec: TaskSpec,
                        limit: int) -> tuple[datasets.Dataset, str]:
    """The rows the teacher is checked on, and their name: GLUE dev when given, else the data's
    original rows (``aug_variant == 0``), at most ``limit`` of them."""
    if dev is not None:
        name = next(iter(dev))
        rows, source = dev[name], f"{name} ({spec.name})"
    else:
        rows, source = ds, "the data's rows (no --data-dir)"
        if VARIANT in ds.column_names:  # the original rows, not the augmented variants
            rows = ds.select(np.flatnonzero(column_values(ds, VARIANT) == 0))
            source = "the data's original rows (no --data-dir)"
    if limit and len(rows) > limit:
        rows = rows.select(range(limit))
    return rows, source


def _check_stored_logits(ds: datasets.Dataset, spec: TaskSpec, data: str | Path, teacher: str | Path,
                         max_length: int) -> None:
    width = len(ds[0][TEACHER_LOGITS])
    expected = len(spec.label_names) if spec.label_names else 1
    if width != expected:
        raise InputError(f"--data {data}: stored {TEACHER_LOGITS} have {width} values per row but "
                         f"{spec.name} needs {expected}; re-run `tinyaug teacher-logits` for this task")
    info = read_json(Path(data) / TEACHER_LOGITS_INFO) or {}
    made_by = info.get("teacher")
    given = str(Path(teacher).resolve()) if Path(teacher).exists() else str(teacher)
    if made_by and made_by != given:
        logger.warning("the stored %s were made by %s, not by --teacher %s; stage 2 uses the "
                       "stored ones (re-run `tinyaug teacher-logits` to change that)",
                       TEACHER_LOGITS, made_by, given)
    if info.get("max_seq_length") not in (None, max_length):
        logger.warning("the stored %s were computed at max length %s, stage 2 runs at %s",
                       TEACHER_LOGITS, info["max_seq_length"], max_length)
    logger.info("stage 2 uses the stored %s column (no teacher forward passes)", TEACHER_LOGITS)
