"""``tinyaug experiment status``: where a running or stopped experiment stands, read-only.

What is done, what runs now (an attempt with no end), what is left and about how long it takes
at the pace of the student runs so far; with ``interim``, the summary of the runs finished so
far, marked as such: the pre-registered analysis is the one ``run()`` writes once every step is
done, and an interim look changes nothing in the plan.

Not here: running steps (``ablation``), the statistics (``summary``).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from tinyaug.errors import InputError
from tinyaug.pipelines.experiment.ablation import Experiment
from tinyaug.pipelines.experiment.plan import ATTEMPTS_FILE, PLAN_FILE, PLAN_HASH_FILE, STEPS_FILE, AblationPlan
from tinyaug.pipelines.io.storage import read_json


def experiment_status(out: str | Path, *, interim: bool = False) -> dict[str, Any]:
    """The state of the experiment in ``out`` (writes nothing): ``{"task", "plan_sha256",
    "steps": {"done", "running", "to_do"}, "student_runs": {"done", "planned"}, "minutes_spent",
    "minutes_left", ...}``, plus ``"summary"`` (interim) when asked and the teacher is done."""
    out = Path(out).resolve()
    stored = read_json(out / PLAN_FILE)
    if stored is None:
        raise InputError(f"{out}: no {PLAN_FILE}; give the --out folder of `tinyaug experiment ablation`")
    experiment = Experiment(AblationPlan.from_dict(stored), out, lambda argv: None)
    experiment.steps = read_json(out / STEPS_FILE) or {}
    experiment.plan_record = read_json(out / PLAN_HASH_FILE) or {}
    table = experiment.table()
    done = [s.name for s in table if s.result_file.is_file()]
    attempts = read_json(out / ATTEMPTS_FILE) or []
    running = [a for a in attempts if "ended" not in a and a["step"] not in done]
    students = [s for s in table if s.name[:2] in {f"{c}-" for c in experiment.plan.conditions}]
    per_student = [experiment.steps[s.name]["seconds"] for s in students if s.name in experiment.steps]
    pace = statistics.fmean(per_student) if per_student else None
    students_left = sum(not s.result_file.is_file() for s in students)
    found: dict[str, Any] = {
        "task": experiment.plan.task, "plan_sha256": experiment.plan_record.get("sha256"),
        "plan_written": experiment.plan_record.get("written"),
        "steps": {"done": len(done), "planned": len(table), "running": [a["step"] for a in running],
                  "to_do": [s.name for s in table if s.name not in done]},
        "student_runs": {"done": len(students) - students_left, "planned": len(students)},
        "minutes_spent": round(sum(s["seconds"] for s in experiment.steps.values()) / 60, 1),
        "minutes_per_student_run": None if pace is None else round(pace / 60, 1),
        "minutes_left": None if pace is None else round(students_left * pace / 60),  # data steps left: not counted
        "stopped_attempts": [a for a in attempts if a.get("outcome", "done") != "done"]}
    if interim and (experiment.teacher_dir / "finetune_results.json").is_file() and found["student_runs"]["done"]:
        summary = experiment.summary()
        summary["interim"] = {"student_runs_done": found["student_runs"]["done"],
                              "student_runs_planned": found["student_runs"]["planned"],
                              "note": "not the pre-registered analysis: that is the summary written when every "
                                      "step is done"}
        found["summary"] = summary
    return found


def status_lines(found: dict[str, Any]) -> list[str]:
    """The status as a few lines for the terminal."""
    steps, students = found["steps"], found["student_runs"]
    lines = [f"{found['task']}: plan {str(found['plan_sha256'])[:12]} (written {found['plan_written']}); "
             f"{steps['done']} of {steps['planned']} steps done, {students['done']} of {students['planned']} "
             f"student runs; {found['minutes_spent']} min of steps so far"]
    if steps["running"]:
        lines.append(f"running (or cut off, when no process runs it): {', '.join(steps['running'])}")
    if found["minutes_left"] is not None and steps["to_do"]:
        lines.append(f"left: {len(steps['to_do'])} steps, about {found['minutes_left']} min at "
                     f"{found['minutes_per_student_run']} min per student run")
    elif not steps["to_do"]:
        lines.append("every step is done: `tinyaug experiment ablation` with the same --out writes the summary")
    for attempt in found["stopped_attempts"]:
        lines.append(f"stopped: {attempt['step']} started {attempt['started']}: {attempt.get('outcome')}")
    return lines
