"""The experiment's data helpers: the original rows of an augmented set, a filter's label
policy, what the teacher makes of the variants, and dropping a finished run's weights.

Not here: the steps (``ablation``), the summary (``summary``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.schema import TEACHER_LOGITS_INFO
from tinyaug.pipelines.io.storage import read_json


def original_rows(aug: Path, orig: Path, task: str) -> None:
    """The rows of ``aug`` with ``aug_variant == 0``, their stored teacher logits kept."""
    import datasets
    import numpy as np

    from tinyaug.distill.metrics import compute_metrics
    from tinyaug.pipelines.io.rows import column_values
    from tinyaug.pipelines.io.schema import TEACHER_LOGITS
    from tinyaug.pipelines.io.storage import save_dataset

    spec = get_task(task)
    ds = datasets.load_from_disk(str(aug))
    keep = np.flatnonzero(column_values(ds, "aug_variant") == 0)
    rows = ds.select(keep).flatten_indices()
    agreement = compute_metrics(spec.name, np.asarray(rows[TEACHER_LOGITS], dtype=np.float32),
                                column_values(rows, spec.label_column))
    info = {**read_json(aug / TEACHER_LOGITS_INFO), "rows": len(rows), "selected_from": str(aug),
            "agreement_with_labels": agreement}
    save_dataset(rows, orig, {TEACHER_LOGITS_INFO: info})


def label_policy(folder: Path) -> dict[str, Any]:
    """The ``label_policy`` record of a filtered dataset ({} when there is none)."""
    import datasets

    from tinyaug.pipelines.io.schema import read_metadata

    if not (folder / "state.json").is_file():
        return {}
    return read_metadata(datasets.load_from_disk(str(folder))).get("label_policy", {})


def teacher_on_variants_of(aug: Path, task: str) -> dict[str, Any]:
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


def drop_weights(run: Path) -> None:
    """Keep a finished run's results and config, not its weights (tens of MB per run)."""
    for pattern in ("*.safetensors", "*.bin"):
        for path in run.glob(pattern):
            path.unlink()
    shutil.rmtree(run / "stage1", ignore_errors=True)
