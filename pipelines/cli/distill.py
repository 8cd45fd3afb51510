"""Distillation commands: finetune, teacher-logits, make-student, distill, evaluate.

Each command parses options, calls one function of ``tinyaug.pipelines.distillation`` and prints
a short summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tinyaug.pipelines.cli.common import (POSITIVE, SEQ_LENGTH, device_option, engine_options, friendly_errors,
                                          glue_data_dir, ray_settings, task_option, validation_options)
from tinyaug.pipelines.cli.progress import Progress
from tinyaug.pipelines.io.onnx_runtime import BACKENDS

COMMANDS: list[click.Command] = []


def _register(fn: click.Command) -> click.Command:
    COMMANDS.append(fn)
    return fn


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    chosen = result.get("validation")
    if chosen and chosen.get("best_step") is not None:
        click.echo(f"validation ({chosen['rows']} held-out train rows): best {chosen['metric']} {chosen['best']:.4f} "
                   f"at step {chosen['best_step']} of {chosen['last_step']}"
                   f"{', stopped early' if chosen['stopped_early'] else ''}; those weights are kept and scored")
    for name, scores in (result.get("dev_metrics") or {}).items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "examples")
        click.echo(f"{name} ({scores.get('examples', '?')} examples): {shown}")


def _loss(value: float | None) -> str:
    """A loss as people read it: 4 significant digits (``0.6931471805599453`` -> ``0.6931``)."""
    return "n/a" if value is None else f"{value:.4g}"



@_register
@click.command("finetune")
@click.argument("model")
@task_option()
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path), callback=glue_data_dir,
              help="GLUE data folder holding <Task>/train.tsv and dev.tsv; 'sample': the rows the package ships.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the fine-tuned model, its tokenizer and finetune_results.json.")
@click.option("--overwrite", is_flag=True, help="Replace --out if an earlier finetune wrote it (it holds finetune_results.json).")
@click.option("--epochs", default=3.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--lr", "learning_rate", default=2e-5, show_default=True, type=float)
@click.option("--batch-size", default=32, show_default=True, type=POSITIVE)
@click.option("--warmup", "warmup_ratio", default=0.1, show_default=True, type=float,
              help="Fraction of steps with a rising learning rate.")
@click.option("--max-steps", type=POSITIVE, help="Step budget: stop after N steps if the epochs are not done.")
@click.option("--max-seq-length", type=SEQ_LENGTH, help="Default: 64 single-sentence tasks, 128 pairs.")
@click.option("--train-limit", type=POSITIVE, help="Train on the first N rows only.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@validation_options()
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@device_option()
@friendly_errors
def finetune_command(model: str, task: str, data_dir: Path, out: Path, epochs: float,
                     learning_rate: float, batch_size: int, warmup_ratio: float, max_steps: int | None,
                     max_seq_length: int | None, train_limit: int | None, seed: int, precision: str,
                     validation_rows: int | None, eval_every: int, patience: int,
                     as_json: bool, device: str, overwrite: bool) -> None:
    """Fine-tune MODEL (a directory or hub name) on a GLUE task to make a teacher.

    Example: tinyaug finetune ./bert-base-uncased --task sst2 --data-dir glue --out teachers/sst2
    """
    from tinyaug.distill.validation import EarlyStopping
    from tinyaug.pipelines.distillation import finetune

    with Progress() as progress:
        result = finetune(model, task, data_dir, out, epochs=epochs, learning_rate=learning_rate,
                          batch_size=batch_size, warmup_ratio=warmup_ratio, max_steps=max_steps,
                          max_seq_length=max_seq_length, train_limit=train_limit, seed=seed, device=device,
                          precision=precision, progress=progress, overwrite=overwrite,
                          validation_rows=validation_rows, early_stopping=EarlyStopping(eval_every, patience))
    if not result["main_process"]:
        return
    _show(result, as_json)
    if not as_json:
        click.echo(f"teacher saved to {out} ({result['train']['steps']} steps)")


@_register
@click.command("teacher-logits")
@click.option("--teacher", required=True, help="Fine-tuned teacher directory.")
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset directory written by `tinyaug augment` (or any save_to_disk dataset "
                   "with the task's columns).")
@task_option()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the dataset with the new column here instead of replacing --data.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it is a dataset tinyaug wrote.")
@click.option("--batch-size", default=64, show_default=True, type=POSITIVE)
@click.option("--max-seq-length", type=SEQ_LENGTH, help="Default: 64 single-sentence tasks, 128 pairs.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@device_option()
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="What runs the teacher: PyTorch, or ONNX Runtime in fp32 on the CPU (logits agree with "
                   "PyTorch's to float noise; needs pip install 'tinyaug[onnx]').")
@engine_options
@friendly_errors
def teacher_logits_command(teacher: str, data: Path, task: str, out: Path | None, overwrite: bool, batch_size: int,
                           max_seq_length: int | None, as_json: bool, device: str, backend: str, engine: str,
                           ray_address: str | None, actors: int | None, cpus_per_actor: float,
                           gpus_per_actor: float) -> None:
    """Store the teacher's logits as column teacher_logits of an augmented dataset.

    Stage 2 of `tinyaug distill` then reads them instead of running the teacher. Logits are in
    the task's label order (aligned by name with the teacher's id2label); STS-B stores one score.

    Example: tinyaug teacher-logits --teacher teachers/sst2 --data aug/sst2 --task sst2
    """
    settings = ray_settings(engine, ray_address, actors, cpus_per_actor, gpus_per_actor, backend)
    from tinyaug.pipelines.distillation.teacher import TeacherLogitsJob, run
    from tinyaug.pipelines.scale.ray_executor import executor_for

    executor = executor_for(settings)
    job = TeacherLogitsJob(teacher, data, task, out, batch_size, max_seq_length, device, overwrite, backend)
    with Progress(every=1) as progress:  # a line per shard of logits
        result = run(job, executor, progress)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        agree = ", ".join(f"{k} {v:.4f}" for k, v in result["agreement_with_labels"].items())
        click.echo(f"wrote {result['rows']} rows with {result['column']} to {result['out']} "
                   f"(teacher vs labels: {agree})")


@_register
@click.command("make-student")
@click.option("--teacher", required=True, help="Fine-tuned teacher directory.")
@click.option("--student", required=True, help="Size of the student, e.g. layers=2,hidden=384.")
@task_option()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the untrained student, its tokenizer and student_init.json.")
@click.option("--overwrite", is_flag=True, help="Replace --out if an earlier make-student wrote it (it holds student_init.json).")
@click.option("--student-init", type=click.Choice(["random", "teacher-layers"]), default="teacher-layers",
              show_default=True, help="Random weights, or the teacher's embeddings, mapped layers, "
                                      "pooler and classifier (widths must match).")
@click.option("--layer-map", help="Teacher layer per student layer, e.g. 3,6 (default: uniform).")
@click.option("--seed", default=42, show_default=True, type=int)
@friendly_errors
def make_student_command(teacher: str, student: str, task: str, out: Path, overwrite: bool, student_init: str,
                         layer_map: str | None, seed: int) -> None:
    """Save an untrained student, so that fine-tuning and distillation runs start from the same weights.

    Example: tinyaug make-student --teacher teachers/mrpc --student layers=2,hidden=384 --task mrpc --out students/init
    """
    from tinyaug.distill.layer_map import LayerMap
    from tinyaug.pipelines.distillation import make_student

    mapping = LayerMap.parse(layer_map).teacher_layers if layer_map else None
    result = make_student(teacher, student, task, out, student_init=student_init,
                  layer_map=mapping, seed=seed, overwrite=overwrite)
    click.echo(f"student ({result['student_parameters']:,} parameters, init {result['student']['init']}) "
               f"saved to {out}")


@_register
@click.command("distill")
@click.option("--teacher", required=True, help="Fine-tuned teacher directory.")
@click.option("--student", required=True,
              help="Student directory, or a size to build fresh with the teacher's vocabulary: "
                   "layers=4,hidden=312,heads=12,intermediate=1200.")
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Augmented dataset directory (from `tinyaug augment`).")
@task_option()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the student, its tokenizer and distill_results.json.")
@click.option("--overwrite", is_flag=True, help="Replace --out if an earlier distill wrote it (it holds distill_results.json).")
@click.option("--stage", type=click.Choice(["1", "2", "both"]), default="both", show_default=True,
              help="1: intermediate layers; 2: prediction layer; both: 1 then 2.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), callback=glue_data_dir,
              help="GLUE data folder: its dev split checks the teacher first and scores the student "
                   "('sample': the rows the package ships).")
@click.option("--student-init", type=click.Choice(["random", "teacher-layers"]), default="random",
              show_default=True, help="For a size: random weights, or the teacher's embeddings and "
                                      "mapped layers (widths must match).")
@click.option("--layer-map", help="Teacher layer per student layer, e.g. 3,6,9,12 (default: uniform).")
@click.option("--embedding-projection", type=click.Choice(["separate", "shared"]), default="separate",
              show_default=True, help="separate: W_e and W_h (paper); shared: one (reference code).")
@click.option("--attention-weight", default=1.0, show_default=True, type=float)
@click.option("--hidden-weight", default=1.0, show_default=True, type=float)
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--max-seq-length", type=SEQ_LENGTH, help="Default: 64 single-sentence tasks, 128 pairs.")
@click.option("--stage1-epochs", type=float, help="Default: task preset (20; 10 MNLI/QQP/QNLI; 50 CoLA).")
@click.option("--stage1-lr", type=float, help="Default 5e-5.")
@click.option("--stage1-batch-size", type=POSITIVE, help="Default 32.")
@click.option("--stage1-warmup", type=float, help="Default 0.1.")
@click.option("--stage1-max-steps", type=POSITIVE, help="Step budget for stage 1.")
@click.option("--stage2-epochs", type=float, help="Default 3.")
@click.option("--stage2-lr", type=float, help="Default 3e-5.")
@click.option("--stage2-batch-size", type=POSITIVE, help="Default 32.")
@click.option("--stage2-warmup", type=float, help="Default 0.1.")
@click.option("--stage2-max-steps", type=POSITIVE, help="Step budget for stage 2.")
@click.option("--train-limit", type=POSITIVE, help="Use the first N rows of --data only.")
@click.option("--teacher-check-rows", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Rows used to check the teacher is better than chance before training.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@validation_options()
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@device_option()
@friendly_errors
def distill_command(teacher: str, student: str, data: Path, task: str, out: Path, overwrite: bool, stage: str,
                    data_dir: Path | None, student_init: str, layer_map: str | None,
                    embedding_projection: str, attention_weight: float, hidden_weight: float,
                    temperature: float, max_seq_length: int | None, train_limit: int | None,
                    teacher_check_rows: int, seed: int, precision: str, validation_rows: int | None,
                    eval_every: int, patience: int, as_json: bool, device: str, **stage_options: Any) -> None:
    """TinyBERT task-specific distillation of a teacher into a student on augmented data.

    Example: tinyaug distill --teacher teachers/sst2 --student layers=4,hidden=312,heads=12,intermediate=1200 --data aug/sst2 --task sst2 --data-dir glue --out students/sst2
    """
    from tinyaug.distill.layer_map import LayerMap
    from tinyaug.distill.validation import EarlyStopping
    from tinyaug.pipelines.distillation import distill

    stages: dict[str, dict[str, Any]] = {"stage1": {}, "stage2": {}}
    names = {"epochs": "epochs", "lr": "learning_rate", "batch_size": "batch_size",
             "warmup": "warmup_ratio", "max_steps": "max_steps"}
    for key, value in stage_options.items():
        which, _, option = key.partition("_")
        stages[which][names[option]] = value
    overrides = {"layer_map": LayerMap.parse(layer_map).teacher_layers if layer_map else None}
    with Progress() as progress:
        result = distill(teacher, student, data, task, out, stage=stage, data_dir=data_dir,
                         student_init=student_init, device=device, train_limit=train_limit,
                         teacher_check_rows=teacher_check_rows, seed=seed, precision=precision,
                         embedding_projection=embedding_projection, attention_weight=attention_weight,
                         hidden_weight=hidden_weight, temperature=temperature,
                         max_seq_length=max_seq_length, progress=progress, overwrite=overwrite,
                         validation_rows=validation_rows, early_stopping=EarlyStopping(eval_every, patience),
                         **stages, **overrides)
    if not result["main_process"]:  # another rank of a torchrun / accelerate launch run
        return
    if as_json:
        _show(result, True)
        return
    check = result["teacher_check"]
    click.echo(f"teacher {check['metric']} {check['value']:.4f} on {check['source']} "
               f"(chance {check['chance']:.4f}){': NEAR CHANCE' if check['near_chance'] else ''}")
    for name, stats in result["train"].items():
        click.echo(f"{name}: {stats['steps']} steps, loss {_loss(stats['first_loss'])} -> {_loss(stats['last_loss'])}")
    _show(result, False)
    click.echo(f"student saved to {out}")


@_register
@click.command("evaluate")
@click.argument("model_dir")
@task_option()
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path), callback=glue_data_dir,
              help="GLUE data folder holding <Task>/dev.tsv (MNLI: dev_matched/dev_mismatched); 'sample': "
                   "the rows the package ships.")
@click.option("--batch-size", default=64, show_default=True, type=POSITIVE)
@click.option("--max-seq-length", type=SEQ_LENGTH, help="Default: 64 single-sentence tasks, 128 pairs.")
@click.option("--limit", type=POSITIVE, help="Score the first N dev rows only.")
@click.option("--out", "out_json", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the result to this JSON file.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it is an earlier evaluate result.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@device_option()
@friendly_errors
def evaluate_command(model_dir: str, task: str, data_dir: Path, batch_size: int,
                     max_seq_length: int | None, limit: int | None, out_json: Path | None, overwrite: bool,
                     as_json: bool, device: str) -> None:
    """Score MODEL_DIR on GLUE dev with the task's official metric(s).

    Example: tinyaug evaluate students/sst2 --task sst2 --data-dir glue
    """
    from tinyaug.pipelines.distillation import evaluate

    with Progress() as progress:
        result = evaluate(model_dir, task, data_dir, batch_size=batch_size, max_seq_length=max_seq_length,
                          device=device, limit=limit, out_json=out_json, progress=progress,
                          overwrite=overwrite)
    _show(result, as_json)
