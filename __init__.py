"""tinyaug: TinyBERT-style data augmentation and task-specific distillation.

- ``tinyaug.augment``: the pure engine (words and offsets, candidate sources, routing, sampling).
- ``tinyaug.distill``: TinyBERT task-specific distillation (losses, layer map, the two-stage recipe).
- ``tinyaug.pipelines``: everything that touches files, models and the command line.

The repository root is this package (``pyproject.toml``: ``package-dir``); README "Layout".
"""

__version__ = "0.1.0"
