"""TinyBERT task-specific distillation: pure code on tensors and models, no file I/O.

- ``losses``: attention-score, hidden-state, soft cross-entropy and regression losses.
- ``layer_map``: ``LayerMap``, which teacher layer each student layer learns (g(m) = m * k).
- ``labels``: aligning a model's outputs with a task's labels by name.
- ``recipe``: ``DistillRecipe`` and ``StageSettings``, the paper's per-task presets.
- ``run``: the recipe, top to bottom: stage 1, then stage 2 (``distill_student``).
- ``stages``: the two stages as modules with a loss; ``training``: the ``transformers.Trainer``
  settings and call; ``collator``: text to padded batches.
- ``student``: student sizes, configs, and initialisation from teacher layers.
- ``metrics``: GLUE's official dev metrics and a chance-level check.
- ``variants``: what the teacher makes of augmented variants (flips) and label policies.
- ``inference``: batched prediction.

Loading and saving models and datasets live in ``tinyaug.pipelines.distillation``.
"""

from tinyaug.distill.labels import label_permutation
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.losses import (attention_loss, attention_scores, hidden_loss, regression_loss,
                                    soft_cross_entropy)
from tinyaug.distill.metrics import chance_report, compute_metrics, primary_metric
from tinyaug.distill.recipe import DistillRecipe, StageSettings

__all__ = ["LayerMap", "DistillRecipe", "StageSettings", "attention_scores", "attention_loss",
           "hidden_loss", "soft_cross_entropy", "regression_loss", "label_permutation",
           "compute_metrics", "primary_metric", "chance_report"]
