"""``tinyaug experiment``: the augmentation ablation (``ablation``) and its combined report
(``report``); see ``tinyaug.pipelines.experiment.ablation``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tinyaug.pipelines.cli.common import comma_ints, device_option, friendly_errors, task_option, validation_options

COMMANDS: list[click.Command] = []

@click.group("experiment")
def experiment_group() -> None:
    """Experiments that measure what augmentation does for distillation.

    Example: tinyaug experiment ablation --task cola --quick --out runs/quick
    """


COMMANDS.append(experiment_group)


@experiment_group.command("ablation")
@task_option()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="GLUE data folder holding <Task>/train.tsv and dev.tsv (not with --quick).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Experiment folder; rerunning with the same --out resumes.")
@click.option("--quick", is_flag=True, help="Tiny teacher, student and data built in --out: every step "
                                            "end to end in about a minute (a smoke test, not evidence).")
@click.option("--seeds", default="1,2,3", show_default=True, help="Seeds per condition.")
@click.option("--variants", "-n", type=click.IntRange(min=1), help="Augmented variants per row [default: 4].")
@click.option("--steps", type=click.IntRange(min=1),
              help="Steps per distillation stage ((a) gets twice as many) [default: per task]; with "
                   "--validation-rows, stage 2's (and (a)'s) most.")
@click.option("--stage1-steps", type=click.IntRange(min=1), help="Stage 1's steps, when not --steps.")
@click.option("--augment-seeds", default="0", show_default=True,
              help="Augmentation seeds: (c), (d) and (r) run once per augmentation seed and training seed.")
@click.option("--unseen-rows", type=click.IntRange(min=0), default=0, show_default=True,
              help="Add arm (u): the students' rows plus the next N training rows (the teacher's), "
                   "teacher-labelled (needs --student-rows).")
@validation_options("Hold out the last N train rows: every training run (the teacher's too) is scored on "
                    "them, stopped early and kept at its best; dev reports once.")
@click.option("--teacher-patience", type=click.IntRange(min=0),
              help="The teacher's --patience, when not the students' (0: it trains all its epochs and keeps "
                   "its best checkpoint).")
@click.option("--train-limit", type=click.IntRange(min=1), help="Train the teacher on the first N training rows.")
@click.option("--student-rows", type=click.IntRange(min=1),
              help="Augment and train the students on the first N training rows only (the small-data "
                   "regime) [default: the teacher's rows].")
@click.option("--student", help="Student size [default: layers=2,heads=12; width from the teacher].")
@click.option("--teacher-epochs", type=click.FloatRange(min=0, min_open=True), help="Teacher fine-tuning epochs [default: 3].")
@click.option("--max-seq-length", type=click.IntRange(min=8), help="Default: 64 single sentences, 128 pairs.")
@click.option("--threads", type=click.IntRange(min=1), help="torch intra-op threads (e.g. 1 to run two "
                                                            "tasks side by side on 2 cores).")
@click.option("--keep-models", is_flag=True, help="Keep every student's weights (default: results only).")
@device_option()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@friendly_errors
def ablation_command(task: str, data_dir: Path | None, out: Path, quick: bool, seeds: str, variants: int | None,
                     steps: int | None, stage1_steps: int | None, augment_seeds: str, unseen_rows: int,
                     validation_rows: int | None, eval_every: int, patience: int, teacher_patience: int | None,
                     train_limit: int | None, student_rows: int | None, student: str | None,
                     teacher_epochs: float | None, max_seq_length: int | None, threads: int | None,
                     keep_models: bool, device: str, as_json: bool) -> None:
    """Conditions (a) fine-tune, (b) distill, (c) distill on augmented rows, (d) distill on the
    augmented rows the teacher agrees with, (r) on random-word variants, (u) on real unseen rows:
    same student, same step budget or stopping rule, several seeds; dev metrics with paired
    intervals, flip rates, a table and a plot in --out.

    Example: tinyaug experiment ablation --task mrpc --data-dir ../shared/glue --out experiments/mrpc
    """
    import torch

    from tinyaug.pipelines.cli.common import command_runner
    from tinyaug.pipelines.experiment import AblationPlan, Experiment, quick_plan, summary_markdown
    from tinyaug.pipelines.experiment.ablation import check_experiment_out

    check_experiment_out(out, None if quick else data_dir, task)  # before --quick builds its inputs in it
    if threads:
        torch.set_num_threads(threads)
    overrides = {"seeds": comma_ints(seeds, "--seeds"), "variants": variants, "train_limit": train_limit,
                 "student_rows": student_rows, "student": student,
                 "teacher_epochs": teacher_epochs, "max_seq_length": max_seq_length,
                 "stage1_steps": stage1_steps or steps, "stage2_steps": steps,
                 "augment_seeds": comma_ints(augment_seeds, "--augment-seeds"), "unseen_rows": unseen_rows,
                 "validation_rows": validation_rows, "eval_every": eval_every, "patience": patience,
                 "teacher_patience": teacher_patience}
    if quick:
        if data_dir is not None:
            raise click.UsageError("--quick builds its own tiny data; leave out --data-dir")
        plan = quick_plan(task, out, **overrides)
    else:
        if data_dir is None:
            raise click.UsageError("--data-dir is required (or --quick)")
        plan = AblationPlan.for_task(task, data_dir=str(data_dir.resolve()), **overrides)
    run_command = command_runner(click.get_current_context().find_root().command)  # the tinyaug group
    summary = Experiment(plan, out, run_command, device=device, keep_models=keep_models,
                         echo=lambda line: click.echo(line, err=True)).run()
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(summary_markdown([summary]), nl=False)
    click.echo(f"\n{summary['total_minutes']} min of steps; summary, commands and plot in {out}")


@experiment_group.command("status")
@click.argument("experiment", type=click.Path(file_okay=False, path_type=Path))
@click.option("--interim", is_flag=True, help="Also the table of the runs finished so far (marked interim: the "
                                               "pre-registered analysis is the summary written at the end).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@friendly_errors
def status_command(experiment: Path, interim: bool, as_json: bool) -> None:
    """Where an experiment stands: steps done, running and left, time so far and about how much
    is left; it reads the folder and writes nothing.

    Example: tinyaug experiment status experiments/sst2 --interim
    """
    from tinyaug.pipelines.experiment.status import experiment_status, status_lines
    from tinyaug.pipelines.experiment.summary import summary_markdown

    found = experiment_status(experiment, interim=interim)
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    click.echo("\n".join(status_lines(found)))
    if "summary" in found:
        note = found["summary"]["interim"]
        click.echo(f"\nINTERIM, {note['student_runs_done']} of {note['student_runs_planned']} student runs "
                   f"({note['note']}):\n")
        click.echo(summary_markdown([found["summary"]]), nl=False)


@experiment_group.command("report")
@click.argument("experiments", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--plot", "png", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG here.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Write the table here.")
@friendly_errors
def report_command(experiments: tuple[Path, ...], png: Path | None, markdown: Path | None) -> None:
    """One table (and plot) for several finished experiments, e.g. MRPC and CoLA side by side.

    Example: tinyaug experiment report experiments/mrpc experiments/cola --plot ablation.png
    """
    from tinyaug.pipelines.experiment import report, summary_markdown

    summaries = report(list(experiments), png, markdown)
    click.echo(summary_markdown(summaries), nl=False)
