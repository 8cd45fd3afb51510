"""The ablation's results: per-condition means and spreads, comparisons, the Markdown table and
the plot (pure, but for the plot and ``report``, which read and write files).

Not here: running the steps (``ablation``).
"""

from __future__ import annotations

import logging
import re
import statistics
import textwrap
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from tinyaug.errors import InputError
from tinyaug.pipelines.experiment.plan import CONDITIONS, SUMMARY_JSON, TEACHER_MODEL
from tinyaug.pipelines.io.storage import read_json

logger = logging.getLogger(__name__)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


RunKey = int | str  # a training seed (1), or a run label: "seed1", "aug0-seed1"


def run_seeds(key: RunKey) -> tuple[int | None, int]:
    """``(augmentation seed or None, training seed)`` of a run key: ``1`` and ``"seed1"`` ->
    ``(None, 1)``; ``"aug0-seed1"`` -> ``(0, 1)``."""
    if isinstance(key, int):
        return None, key
    found = re.fullmatch(r"(?:aug(\d+)-)?seed(\d+)", key)
    if found is None:
        raise ValueError(f"run key {key!r}: expected seedN or augK-seedN")
    return (None if found[1] is None else int(found[1])), int(found[2])


def run_pairs(first: Iterable[RunKey], second: Iterable[RunKey]) -> list[tuple[RunKey, RunKey]]:
    """The runs of two conditions that pair up: the same training seed, and the same augmentation
    seed where both have one (a run of (b) pairs with each augmentation seed's run of (c))."""
    seconds = list(second)
    pairs = []
    for a in sorted(first, key=run_seeds):
        aug_a, seed_a = run_seeds(a)
        for b in sorted(seconds, key=run_seeds):
            aug_b, seed_b = run_seeds(b)
            if seed_a == seed_b and (aug_a is None or aug_b is None or aug_a == aug_b):
                pairs.append((a, b))
    return pairs


def summarize(task: str, metric: str, teacher: dict[str, float],
              runs: dict[str, dict[RunKey, dict[str, float]]],
              predictions: dict[str, dict[RunKey, dict[str, list]]] | None = None) -> dict[str, Any]:
    """Per condition: the per-run dev metrics, mean and spread of each, and the share of the
    teacher's primary metric kept. ``runs``: ``{"a": {"seed1": {"accuracy": .8, ...}}, "c":
    {"aug0-seed1": {...}}, ...}`` (a bare training seed as key works too).
    ``predictions`` (``{"a": {"seed1": {"predicted": [...], "gold": [...]}}}``): per-example dev
    predictions, from which each comparison gets a paired bootstrap interval (``statistics``)."""
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
        keys = sorted(by_seed, key=run_seeds)
        conditions[condition] = {"label": CONDITIONS[condition], "seeds": keys,
                                 "per_seed": {str(s): by_seed[s] for s in keys},
                                 "metrics": stats, "teacher_fraction": kept}
    comparisons = {}
    for better, worse in PAIRS:
        if better in conditions and worse in conditions:
            comparisons[f"{better}-{worse}"] = compare(runs[better], runs[worse], metric)
    return {"task": task, "metric": metric, "teacher": teacher, "conditions": conditions,
            "spread_comparisons": comparisons, "comparisons": paired_comparisons(metric, predictions or {})}


PAIRS = (("c", "b"), ("c", "r"), ("c", "u"), ("d", "b"), ("d", "c"), ("r", "b"), ("u", "b"), ("b", "a"), ("d", "a"))


def paired_comparisons(metric: str, predictions: dict[str, dict[int, dict[str, list]]]) -> list[dict[str, Any]]:
    """For each pair of conditions run with the same seeds on the same dev examples: ``{"better",
    "worse", "metric", "diff", "ci95", "p_above_zero", "seeds"}``, ``better`` minus ``worse`` with
    a 95% paired bootstrap interval over the dev examples and the seeds (``statistics``); for
    accuracy, McNemar's exact test on the first common seed too."""
    from tinyaug.pipelines.experiment.statistics import mcnemar, paired_bootstrap

    out = []
    for better, worse in PAIRS:
        pairs = run_pairs(predictions.get(better, {}), predictions.get(worse, {}))
        if not pairs:
            continue
        gold = np.asarray(predictions[better][pairs[0][0]]["gold"])
        a = np.asarray([predictions[better][x]["predicted"] for x, _ in pairs])
        b = np.asarray([predictions[worse][y]["predicted"] for _, y in pairs])
        found = paired_bootstrap(metric, gold, a, b)
        seeds = [x if x == y else f"{x}/{y}" for x, y in pairs]
        low, high = found["ci95"]
        verdict = "better" if low > 0 else "worse" if high < 0 else "not shown"  # the pre-registered rule
        row = {"better": better, "worse": worse, "metric": metric, "diff": found["diff"], "ci95": found["ci95"],
               "verdict": verdict, "p_above_zero": found["p_above_zero"], "seeds": seeds}
        if metric == "accuracy":
            row["mcnemar_first_seed"] = mcnemar(gold, a[0], b[0])
        out.append(row)
    return out


def compare(first: dict[RunKey, dict[str, float]], second: dict[RunKey, dict[str, float]], metric: str
            ) -> dict[str, Any]:
    """``first`` minus ``second`` on ``metric``: the difference of the means, whether it exceeds
    the sum of the two seed spreads (``verdict`` "beyond" or "within"; None with fewer than two
    seeds each), and the same-seed differences (both conditions start from the same student)."""
    hi, lo = (mean_and_spread([scores[metric] for scores in runs.values()]) for runs in (first, second))
    gap, spread = hi[0] - lo[0], hi[1] + lo[1]
    enough = min(len(first), len(second)) >= 2
    paired = [first[x][metric] - second[y][metric] for x, y in run_pairs(first, second)]
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
        paired = summary.get("comparisons") if isinstance(summary.get("comparisons"), list) else []
        spread = None if paired else summary.get("spread_comparisons")  # the seed-spread ones: older summaries
        if spread is None and isinstance(summary.get("comparisons"), dict):  # a summary from before the paired ones
            spread = summary["comparisons"]
        for pair, comparison in (spread or {}).items():
            first, second = pair.split("-")
            verdict = ("too few seeds to compare with the spread" if comparison["verdict"] is None
                       else f"{comparison['verdict']} the seed spread (sum of stds {100 * comparison['combined_std']:.1f})")
            same_seed = ""
            if len(comparison["same_seed_differences"]) > 1:  # one pair has no spread to show
                same_seed = (f"; same-seed differences {100 * comparison['same_seed_mean']:+.1f} ± "
                             f"{100 * comparison['same_seed_std']:.1f}")
            notes.append(f"- {task} {summary['metric']}: ({first}) - ({second}) = "
                         f"{100 * comparison['difference']:+.1f} points, {verdict}{same_seed}")
        for row in paired:
            low, high = row["ci95"]
            verdict = {"better": f"({row['better']}) better", "worse": f"({row['better']}) worse"}.get(
                row.get("verdict"), "no difference shown")
            notes.append(f"- {task} {row['metric']}: ({row['better']}) - ({row['worse']}) = {100 * row['diff']:+.1f} "
                         f"points, 95% paired bootstrap interval [{100 * low:+.1f}, {100 * high:+.1f}] over dev "
                         f"examples and {len(row['seeds'])} run pair(s): {verdict}")
        chosen = summary.get("validation_choices") or {}
        if chosen:
            by_condition: dict[str, list[dict[str, Any]]] = {}
            for run, found in chosen.items():
                by_condition.setdefault(run.split("-")[0], []).append(found)
            shown = "; ".join(f"({c}) step {statistics.fmean(f['best_step'] for f in found):.0f} of "
                              f"{statistics.fmean(f['last_step'] for f in found):.0f}"
                              for c, found in sorted(by_condition.items()))
            notes.append(f"- {task}: checkpoints chosen on {summary['plan'].get('validation_rows')} held-out train "
                         f"rows, mean over runs (kept step of last step scored): {shown}")
        if summary.get("chance_level") is not None:
            notes.append(f"- {task}: a constant guess (the best single label) scores {summary['metric']} "
                         f"{100 * summary['chance_level']:.1f} on dev")
        if summary.get("teacher_on_variants"):
            notes.append(variants_note(task, summary["teacher_on_variants"]))
        if summary.get("wall_clock_seconds"):
            notes.append(wall_clock_note(task, summary["wall_clock_seconds"]))
        rows = summary.get("rows") or {}
        if rows.get("agreeing") is not None:
            notes.append(f"- {task}: rows per student data set: original {rows['original']:,}, augmented "
                         f"{rows['augmented']:,}, augmented and agreeing with the teacher {rows['agreeing']:,}")
    return "\n".join(lines + [""] + notes) + "\n"


def wall_clock_note(task: str, steps: dict[str, dict[str, Any]]) -> str:
    """The task's minutes of steps: the teacher, the data (augmentation, logits, rows, student
    build) and the student runs.

    >>> wall_clock_note("mrpc", {"teacher": {"seconds": 600}, "augment0": {"seconds": 60},
    ...                          "a-seed1": {"seconds": 300}, "c-aug0-seed1": {"seconds": 420}})
    '- mrpc: wall-clock 23.0 minutes of steps: teacher 10.0, data 1.0, 2 student runs 12.0 (5.0-7.0 each)'
    """
    student = [s["seconds"] / 60 for name, s in steps.items() if re.fullmatch(r"[a-z]-(aug[0-9]+-)?seed[0-9]+", name)]
    teacher = sum(s["seconds"] for name, s in steps.items() if name == "teacher") / 60
    total = sum(s["seconds"] for s in steps.values()) / 60
    runs = f", {len(student)} student runs {sum(student):.1f} ({min(student):.1f}-{max(student):.1f} each)" \
        if student else ""
    return (f"- {task}: wall-clock {total:.1f} minutes of steps: teacher {teacher:.1f}, "
            f"data {total - teacher - sum(student):.1f}{runs}")


def _task_label(summary: dict[str, Any], upper: bool = False) -> str:
    """``"mrpc (150+150 steps)"``: the task and its step budget per distillation stage."""
    plan = summary.get("plan", {})
    task = summary["task"].upper() if upper else summary["task"]
    if "stage1_steps" not in plan:
        return task
    most = "at most " if plan.get("validation_rows") else ""  # early stopping chose the step
    return f"{task} ({plan['stage1_steps']}+{most}{plan['stage2_steps']} steps)"


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
    colours = {"a": "#9e9e9e", "b": "#5b8def", "c": "#e8793a", "d": "#3aa655", "r": "#b07cc6", "u": "#c9b037"}
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
        ax.set_xticklabels([f"({c})\n" + textwrap.fill(row["label"].replace(",", ""), 13)
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
