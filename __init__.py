"""tinyaug: TinyBERT-style data augmentation and task-specific distillation.

- ``tinyaug.augment``: the pure engine (words and offsets, candidate sources, routing, sampling).
- ``tinyaug.distill``: TinyBERT task-specific distillation (losses, layer map, the two-stage recipe).
- ``tinyaug.pipelines``: everything that touches files, models and the command line.

The Python API, for notebooks (README "Python API")::

    import tinyaug
    aug = tinyaug.augment_dataset(dataset, task="sst2", recipe=tinyaug.Recipe(variants_per_example=4))
    tinyaug.export(aug, "csv", "train_aug.csv")

The names load lazily, so ``import tinyaug`` (and the command line's start) stays light. The
repository root is this package (``pyproject.toml``: ``package-dir``); README "Layout".
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "augment_dataset": "tinyaug.pipelines.augmentation.api",
    "Recipe": "tinyaug.augment.recipe",
    "export": "tinyaug.pipelines.augmentation.export",
    "load_augmented": "tinyaug.pipelines.augmentation.build",
    "load_masked_lm": "tinyaug.pipelines.io.models",
    "load_vectors": "tinyaug.pipelines.io.vectors",
    "read_metadata": "tinyaug.pipelines.io.schema",
    "TinyaugError": "tinyaug.errors",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tinyaug' has no attribute {name!r}")
