"""tinyaug: TinyBERT-style data augmentation and task-specific distillation.

Layout:
- ``tinyaug.augment``: the pure engine (words and offsets, candidate sources, routing, sampling).
- ``tinyaug.distill``: TinyBERT task-specific distillation (losses, layer map, two-stage recipe).
- ``tinyaug.pipelines``: everything that touches files, models and the command line.
"""

__version__ = "0.1.0"
