"""``tinyaug experiment ablation --quick``: the same experiment on a tiny teacher and tiny data
built in ``OUT/quick-inputs``, so every step (augmentation with the embedded default models
included) runs end to end in about a minute. A smoke test of the pipeline, not evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyaug.pipelines.experiment.toys import save_tiny_model, tiny_config, write_glue_task
from tinyaug.pipelines.experiment.plan import AblationPlan
from tinyaug.pipelines.io.glue import get_task

QUICK_SETTINGS = {"teacher_epochs": 20.0, "teacher_lr": 2e-3, "variants": 2, "student": "layers=1",
                  "stage1_steps": 6, "stage2_steps": 6, "stage1_lr": 1e-3, "stage2_lr": 1e-3,
                  "finetune_lr": 1e-3, "batch_size": 8, "max_seq_length": 32}


def quick_plan(task: str, out: str | Path, **overrides: Any) -> AblationPlan:
    """Write a tiny GLUE folder (48 train, 24 dev rows) and a tiny bare encoder under
    ``out/quick-inputs`` (once), and return the plan that uses them."""
    spec = get_task(task)
    inputs = Path(out).resolve() / "quick-inputs"
    data_dir, encoder = inputs / "glue", inputs / "encoder"
    if not (data_dir / spec.folder / spec.train_file).is_file():
        write_glue_task(data_dir, spec.name, train_rows=48, dev_rows=24, seed=0)
    if not (encoder / "config.json").is_file():
        save_tiny_model(encoder, tiny_config(layers=2, labels=None), encoder_only=True)
    settings = {**QUICK_SETTINGS, **{k: v for k, v in overrides.items() if v is not None}}
    return AblationPlan.for_task(spec.name, data_dir=str(data_dir), teacher_model=str(encoder), **settings)
