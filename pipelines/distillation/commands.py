"""The distillation commands as plain functions: ``finetune``, ``teacher_logits``, ``distill``
and ``evaluate``. Each takes explicit arguments (epochs and a step budget included), does its
file I/O here, and returns a JSON-able result dict; the click commands only wrap them.

Where things are stored:
- ``finetune``: ``OUT/`` model (safetensors) + tokenizer, ``OUT/finetune_results.json``.
- ``teacher_logits``: column ``teacher_logits`` (list of float32, in the task's label order; one
  score for STS-B) added to the dataset, plus ``teacher_logits.json`` inside the dataset dir.
- ``distill``: ``OUT/`` final student + tokenizer, ``OUT/stage1/`` the stage-1 student when both
  stages run, ``OUT/distill_results.json`` (settings, losses, teacher check, dev metrics).
- ``evaluate``: the result dict, optionally also written as JSON.

Not here: losses, layer maps, the Trainer wiring, metrics (``tinyaug.distill``).
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

from tinyaug.distill.arch import head_parameters
from tinyaug.distill.inference import predict_logits
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.metrics import chance_report, compute_metrics, primary_metric
from tinyaug.distill.recipe import (FINETUNE_DEFAULTS, DistillRecipe, StageSettings,
                                    default_max_seq_length)
from tinyaug.distill.student import (STUDENT_INITS, StudentSize, copy_teacher_layers,
                                     looks_like_size, student_config)
from tinyaug.distill.trainer import (TEACHER_LOGITS, IntermediateDistiller, PredictionDistiller,
                                     TextCollator, frozen, train_stage, training_arguments)
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.distillation.loading import (TEACHER_LOGITS_INFO, check_dev_files,
                                          check_same_vocabulary, load_student_dir, load_task_dataset,
                                          load_task_model, load_tokenizer, read_dev_splits, read_json,
                                          save_dataset_atomically, save_model, with_metadata,
                                          write_json)
from tinyaug.pipelines.io.glue import TaskSpec, get_task, read_split
from tinyaug.pipelines.io.models import resolve_device

logger = logging.getLogger(__name__)

RESULTS_FILE = "distill_results.json"
FINETUNE_RESULTS_FILE = "finetune_results.json"
STAGES = ("1", "2", "both")


# ---------------------------------------------------------------- shared pieces


def _score(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
           splits: dict[str, datasets.Dataset], *, permutation: list[int] | None, max_length: int,
           batch_size: int, device: torch.device) -> dict[str, dict[str, float]]:
    """The task's metrics on each split: ``{"dev": {"accuracy": 0.91, "examples": 872}}``."""
    collator = TextCollator(tokenizer, task.text_columns, max_length)
    scores = {}
    for name, ds in splits.items():
        logits = predict_logits(model, collator, ds.select_columns(list(task.text_columns)),
                                batch_size=batch_size, device=device, permutation=permutation)
        metrics = compute_metrics(task.name, logits, np.asarray(ds[task.label_column]))
        scores[name] = {**metrics, "examples": len(ds)}
    return scores


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _check_teacher(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
                   permutation: list[int], rows: datasets.Dataset, source: str, *, max_length: int,
                   batch_size: int, device: torch.device) -> dict[str, Any]:
    """Score the teacher on ``rows`` and shout (log at WARNING) when it is near chance."""
    scores = _score(model, tokenizer, task, {source: rows}, permutation=permutation,
                    max_length=max_length, batch_size=batch_size, device=device)[source]
    report = {"source": source, **chance_report(task.name, scores, rows[task.label_column]),
              "metrics": scores}
    if report["near_chance"]:
        logger.warning("TEACHER NEAR CHANCE: its %s on %s (%d rows) is %.4f, chance level %.4f: "
                       "distilling from it will not teach the student %s; fine-tune it first "
                       "(`tinyaug finetune`) or check its label order", report["metric"], source,
                       len(rows), report["value"], report["chance"], task.name)
    else:
        logger.info("teacher %s on %s: %.4f (chance %.4f)", report["metric"], source,
                    report["value"], report["chance"])
    return report


def _normalize_stage(stage: str | int) -> str:
    text = str(stage).strip().lower()
    if text not in STAGES:
        raise InputError(f"--stage {stage!r}: expected 1, 2 or both")
    return text


# ---------------------------------------------------------------- finetune


def finetune(model: str | Path, task: str, data_dir: str | Path, out: str | Path, *,
             epochs: float = FINETUNE_DEFAULTS.epochs, learning_rate: float = FINETUNE_DEFAULTS.learning_rate,
             batch_size: int = FINETUNE_DEFAULTS.batch_size, warmup_ratio: float = FINETUNE_DEFAULTS.warmup_ratio,
             weight_decay: float = FINETUNE_DEFAULTS.weight_decay, max_steps: int | None = None,
             max_seq_length: int | None = None, train_limit: int | None = None, seed: int = 42,
             device: str = "auto", precision: str = "fp32", eval_batch_size: int = 64) -> dict[str, Any]:
    """Fine-tune ``model`` (a directory or hub name; a bare encoder is fine) on GLUE ``task`` to
    make a teacher. Trains on ``DATA_DIR/<Task>/train.tsv`` (first ``train_limit`` rows if set),
    saves to ``out`` and scores the dev split(s)."""
    spec = get_task(task)
    settings = StageSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                             warmup_ratio=warmup_ratio, weight_decay=weight_decay, max_steps=max_steps)
    problems = settings.problems("finetune")
    if problems:
        raise InputError("bad fine-tuning settings: " + "; ".join(problems))
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    check_dev_files(data_dir, spec)
    train, bad = read_split(Path(data_dir), spec, "train", skip_bad_rows=True, limit=train_limit)
    if len(train) == 0:
        raise InputError(f"{spec.name} train split under {data_dir} has no usable rows")
    set_seed(seed)
    net = load_student_dir(model, spec)
    tokenizer = load_tokenizer(model)
    collator = TextCollator(tokenizer, spec.text_columns, max_length, label_column=spec.label_column,
                            regression=spec.is_regression)
    columns = [*spec.text_columns, spec.label_column]
    with tempfile.TemporaryDirectory(prefix="tinyaug-finetune-") as tmp:
        args = training_arguments(settings, output_dir=tmp, num_examples=len(train), seed=seed,
                                  precision=precision, use_cpu=target.type == "cpu")
        stats = train_stage(net, train.select_columns(columns), collator, args, "finetune")
    result: dict[str, Any] = {"task": spec.name, "model": str(model), "out": str(out),
                              "train_rows": len(train), "bad_train_rows": len(bad),
                              "settings": {**dataclasses.asdict(settings), "max_seq_length": max_length,
                                           "seed": seed, "precision": precision},
                              "train": {k: v for k, v in stats.items() if k != "is_main_process"}}
    result["main_process"] = stats["is_main_process"]
    if not result["main_process"]:
        return result
    save_model(net, tokenizer, out)
    splits = read_dev_splits(data_dir, spec)
    result["dev_metrics"] = _score(net, tokenizer, spec, splits, permutation=None, max_length=max_length,
                                   batch_size=eval_batch_size, device=target)
    first = next(iter(splits))
    result["chance"] = chance_report(spec.name, result["dev_metrics"][first], splits[first][spec.label_column])
    write_json(Path(out) / FINETUNE_RESULTS_FILE, result)
    return result


# ---------------------------------------------------------------- teacher logits


def teacher_logits(teacher: str | Path, data: str | Path, task: str, *, out: str | Path | None = None,
                   batch_size: int = 64, max_seq_length: int | None = None,
                   device: str = "auto") -> dict[str, Any]:
    """Add the teacher's logits as column ``teacher_logits`` to the dataset at ``data`` (or write
    the result to ``out``), atomically. Logits are stored in the task's label order (aligned by
    label name with the teacher's ``id2label``); STS-B stores one score per row."""
    spec = get_task(task)
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    ds = load_task_dataset(data, spec)
    model, permutation = load_task_model(teacher, spec, "teacher")
    tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    collator = TextCollator(tokenizer, spec.text_columns, max_length)
    logits = predict_logits(model, collator, ds.select_columns(list(spec.text_columns)),
                            batch_size=batch_size, device=target, permutation=permutation)
    agreement = compute_metrics(spec.name, logits, np.asarray(ds[spec.label_column]))
    if TEACHER_LOGITS in ds.column_names:
        logger.info("replacing the existing %s column of %s", TEACHER_LOGITS, data)
        ds = ds.remove_columns(TEACHER_LOGITS)
    feature = getattr(datasets, "List", datasets.Sequence)(datasets.Value("float32"))
    ds = ds.add_column(TEACHER_LOGITS, logits.tolist(), feature=feature)
    info = {"column": TEACHER_LOGITS, "task": spec.name, "teacher": str(Path(teacher).resolve())
            if Path(teacher).exists() else str(teacher),
            "teacher_id2label": {str(k): v for k, v in model.config.id2label.items()},
            "label_order": list(spec.label_names) if spec.label_names else ["score"],
            "max_seq_length": max_length, "rows": len(ds),
            "agreement_with_labels": agreement}
    ds = with_metadata(ds, TEACHER_LOGITS, info)
    written = save_dataset_atomically(ds, out or data, {TEACHER_LOGITS_INFO: info}, carry_from=data)
    logger.info("wrote %d teacher logit rows to %s", len(ds), written)
    return {**info, "out": str(written)}


# ---------------------------------------------------------------- distill


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


STUDENT_INFO_FILE = "student_init.json"


def make_student(teacher: str | Path, student: str, task: str, out: str | Path, *,
                 student_init: str = "teacher-layers", layer_map: tuple[int, ...] | None = None,
                 seed: int = 42) -> dict[str, Any]:
    """Build a fresh student from a size (``"layers=2,hidden=384"``) and the teacher at ``teacher``,
    save it to ``out`` untrained (with ``student_init.json``), and return what was done.

    One saved student lets several runs (``finetune`` on hard labels, ``distill`` on other data)
    start from exactly the same weights. ``student_init="teacher-layers"`` copies the teacher's
    embeddings, the layers ``layer_map`` names (default: uniform) and its pooler and classifier.
    """
    spec = get_task(task)
    if not looks_like_size(str(student)):
        raise InputError(f"--student {student!r}: expected a size such as layers=2,hidden=384")
    teacher_model, permutation = load_task_model(teacher, spec, "teacher")
    teacher_tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    model, tokenizer, source = _make_student(student, spec, teacher_model, teacher_tokenizer,
                                             "random", seed)
    if student_init == "teacher-layers":
        n_student, n_teacher = model.config.num_hidden_layers, teacher_model.config.num_hidden_layers
        mapping = LayerMap(layer_map) if layer_map else LayerMap.uniform(n_student, n_teacher)
        mapping.check(n_student, n_teacher)
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
            eval_batch_size: int = 64, **recipe_overrides: Any) -> dict[str, Any]:
    """TinyBERT task-specific distillation of ``teacher`` into ``student`` on the dataset at ``data``.

    ``student``: a model directory, or a size such as ``"layers=4,hidden=312,heads=12,
    intermediate=1200"`` built with the teacher's config and vocabulary (``student_init``
    ``"random"`` or ``"teacher-layers"``). ``stage``: ``1``, ``2`` or ``"both"``. ``data_dir``: a
    GLUE folder whose dev split(s) check the teacher before training and score the student after;
    without it the teacher is checked on the data's original rows and no dev metrics are made.
    ``recipe``: the settings, else ``DistillRecipe.for_task(task, **recipe_overrides)`` (e.g.
    ``stage1={"max_steps": 100}``, ``seed=1``, ``layer_map=(3, 6, 9, 12)``).
    ``train_limit``: use only the first N rows of ``data``.
    """
    spec = get_task(task)
    stage = _normalize_stage(stage)
    recipe = recipe or DistillRecipe.for_task(spec.name, **recipe_overrides)
    if recipe.task != spec.name:
        raise InputError(f"the recipe is for {recipe.task}, the task is {spec.name}")
    target = resolve_device(device)
    out = Path(out)
    if data_dir is not None:
        check_dev_files(data_dir, spec)
    ds = load_task_dataset(data, spec)
    if train_limit is not None:
        ds = ds.select(range(min(train_limit, len(ds))))
    stored = TEACHER_LOGITS in ds.column_names
    run1, run2 = stage in ("1", "both"), stage in ("2", "both")
    teacher_model, permutation = load_task_model(teacher, spec, "teacher")
    teacher_tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    model, tokenizer, student_source = _make_student(student, spec, teacher_model, teacher_tokenizer,
                                                     student_init, recipe.seed)
    n_student, n_teacher = model.config.num_hidden_layers, teacher_model.config.num_hidden_layers
    layer_map = None
    if run1 or student_init == "teacher-layers":
        layer_map = LayerMap(recipe.layer_map) if recipe.layer_map else LayerMap.uniform(n_student, n_teacher)
        layer_map.check(n_student, n_teacher)
    if student_init == "teacher-layers":
        copied = copy_teacher_layers(model, teacher_model, layer_map, permutation)
        student_source["copied"] = copied
    if run2 and stored:
        _check_stored_logits(ds, spec, data, teacher, recipe.max_seq_length)
    stage1_module = None
    if run1:
        set_seed(recipe.seed)
        stage1_module = IntermediateDistiller(model, teacher_model, layer_map,
                                              embedding_projection=recipe.embedding_projection,
                                              attention_weight=recipe.attention_weight,
                                              hidden_weight=recipe.hidden_weight)

    if data_dir is not None:
        dev = read_dev_splits(data_dir, spec)
        name = next(iter(dev))
        rows, source = dev[name], f"{name} ({spec.name})"
    else:
        rows, source = ds, "the data's rows (no --data-dir)"
        if "aug_variant" in ds.column_names:  # the original rows, not the augmented variants
            rows = ds.select(np.flatnonzero(np.asarray(ds["aug_variant"]) == 0))
            source = "the data's original rows (no --data-dir)"
    if teacher_check_rows and len(rows) > teacher_check_rows:
        rows = rows.select(range(teacher_check_rows))
    check = _check_teacher(teacher_model, teacher_tokenizer, spec, permutation, rows, source,
                           max_length=recipe.max_seq_length, batch_size=eval_batch_size, device=target)

    result: dict[str, Any] = {
        "task": spec.name, "stage": stage, "teacher": str(teacher), "student": student_source,
        "data": str(data), "data_rows": len(ds), "used_stored_teacher_logits": bool(run2 and stored),
        "layer_map": list(layer_map.teacher_layers) if layer_map else None,
        "teacher_parameters": _parameters(teacher_model), "student_parameters": _parameters(model),
        "recipe": recipe.to_dict(), "device": str(target), "teacher_check": check, "train": {}}
    text_columns = list(spec.text_columns)
    main = True
    with tempfile.TemporaryDirectory(prefix="tinyaug-distill-") as tmp:
        if run1:
            collator = TextCollator(tokenizer, text_columns, recipe.max_seq_length)
            args = training_arguments(recipe.stage1, output_dir=tmp, num_examples=len(ds),
                                      seed=recipe.seed, precision=recipe.precision,
                                      use_cpu=target.type == "cpu",
                                      find_unused_parameters=0 in (recipe.attention_weight, recipe.hidden_weight))
            with frozen(head_parameters(model)):
                stats = train_stage(stage1_module, ds.select_columns(text_columns), collator, args,
                                    "stage 1")
            stage1_module.remove_hooks()
            main = stats.pop("is_main_process")
            result["train"]["stage1"] = stats
            if main and run2:
                save_model(model, tokenizer, out / "stage1")
        if run2:
            collator = TextCollator(tokenizer, text_columns, recipe.max_seq_length,
                                    teacher_column=TEACHER_LOGITS if stored else None)
            module = PredictionDistiller(model, None if stored else teacher_model,
                                         teacher_permutation=permutation, temperature=recipe.temperature,
                                         regression=spec.is_regression)
            columns = text_columns + ([TEACHER_LOGITS] if stored else [])
            args = training_arguments(recipe.stage2, output_dir=tmp, num_examples=len(ds),
                                      seed=recipe.seed, precision=recipe.precision,
                                      use_cpu=target.type == "cpu")
            stats = train_stage(module, ds.select_columns(columns), collator, args, "stage 2")
            main = stats.pop("is_main_process")
            result["train"]["stage2"] = stats
    result["main_process"] = main
    if not main:  # another rank of a multi-process run: rank 0 saves and scores
        return result
    save_model(model, tokenizer, out)
    if data_dir is not None:
        result["dev_metrics"] = _score(model, tokenizer, spec, dev, permutation=None,
                                       max_length=recipe.max_seq_length, batch_size=eval_batch_size,
                                       device=target)
        metric = primary_metric(spec.name)
        for name, scores in result["dev_metrics"].items():
            logger.info("student %s on %s: %.4f", metric, name, scores[metric])
    else:
        result["dev_metrics"] = None
        logger.warning("no --data-dir: the student was not scored on GLUE dev")
    result["out"] = str(out)
    write_json(out / RESULTS_FILE, result)
    return result


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


# ---------------------------------------------------------------- evaluate


def evaluate(model_dir: str | Path, task: str, data_dir: str | Path, *, batch_size: int = 64,
             max_seq_length: int | None = None, device: str = "auto", limit: int | None = None,
             out_json: str | Path | None = None) -> dict[str, Any]:
    """Score a fine-tuned model on GLUE dev with the task's official metric(s); MNLI matched and
    mismatched apart. Outputs are aligned with the task's labels by name."""
    spec = get_task(task)
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    check_dev_files(data_dir, spec)
    model, permutation = load_task_model(model_dir, spec, "model")
    tokenizer = load_tokenizer(model_dir)
    splits = read_dev_splits(data_dir, spec, limit=limit)
    scores = _score(model, tokenizer, spec, splits, permutation=permutation, max_length=max_length,
                    batch_size=batch_size, device=target)
    first = next(iter(splits))
    result = {"task": spec.name, "model": str(model_dir), "metric": primary_metric(spec.name),
              "dev_metrics": scores, "max_seq_length": max_length,
              "chance": chance_report(spec.name, scores[first], splits[first][spec.label_column])}
    if out_json is not None:
        write_json(out_json, result)
    return result


__all__ = ["finetune", "teacher_logits", "make_student", "distill", "evaluate"]
