"""The TinyBERT task-specific recipe, top to bottom: stage 1, then stage 2.

    teacher (fine-tuned) ──┐
                           ├─ stage 1: the student's attention scores and hidden states learn
    student (small) ───────┘  the teacher's, layer m from teacher layer g(m) (classifier frozen)
                           └─ stage 2: the student's logits learn the teacher's (soft
                              cross-entropy; MSE for STS-B), from stored logits or a live teacher

``distill_student`` takes models and rows that are already loaded and trains the student in
place; it opens no file. Each stage is a module with a loss (``stages``) trained by the stock
``transformers.Trainer`` (``training``), so mixed precision and DDP come with it.

Not here: loading and saving models and datasets, the teacher check, dev scores
(``tinyaug.pipelines.distillation``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from torch import nn
from transformers import PreTrainedTokenizerBase, set_seed

from tinyaug.distill.arch import head_parameters
from tinyaug.distill.collator import TextCollator
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.recipe import DistillRecipe
from tinyaug.distill.stages import IntermediateDistiller, PredictionDistiller, frozen
from tinyaug.distill.training import train_stage, training_arguments
from tinyaug.distill.validation import KeepBest
from tinyaug.errors import InputError

STAGES = ("1", "2", "both")


def normalize_stage(stage: str | int) -> str:
    """``1``, ``"2"``, ``"both"`` -> ``"1"``, ``"2"``, ``"both"``; anything else is refused."""
    text = str(stage).strip().lower()
    if text not in STAGES:
        raise InputError(f"--stage {stage!r}: expected 1, 2 or both")
    return text


@dataclasses.dataclass
class TaskRows:
    """The rows to distil on and how to read them."""

    rows: Any  # a datasets.Dataset (or anything ``Trainer`` takes) with the text columns
    text_columns: Sequence[str]  # one column, or two for a pair task
    regression: bool = False  # STS-B: one score, MSE in stage 2
    teacher_logits_column: str | None = None  # stored teacher logits (task order) for stage 2


def distill_student(student: nn.Module, teacher: nn.Module, tokenizer: PreTrainedTokenizerBase,
                    task: TaskRows, recipe: DistillRecipe, *, layer_map: LayerMap | None,
                    teacher_permutation: Sequence[int], stage: str = "both", work_dir: str,
                    use_cpu: bool = False, after_stage1: Callable[[], None] | None = None,
                    progress: Callable[[str, int, int], None] | None = None,
                    early_stopping: KeepBest | None = None) -> dict[str, Any]:
    """Train ``student`` (in place) from ``teacher`` on ``task.rows`` with ``recipe``.

    ``layer_map``: which teacher layer each student layer learns (needed for stage 1).
    ``teacher_permutation``: puts the live teacher's outputs in the task's label order.
    ``after_stage1``: called on the main process between the stages (the caller saves the
    stage-1 student there). ``progress(stage, step, total_steps)`` hears each training step.
    ``early_stopping`` (``validation.KeepBest`` on the student: held-out rows and a rule): stage 2
    is scored on them as it trains, stopped early by the rule, and ends with its best-scoring
    weights (stage 1, whose student has no trained classifier yet, runs its whole budget); its
    record is in ``train["stage2"]["validation"]``.
    Returns ``{"train": {"stage1": stats, "stage2": stats},
    "main_process": bool}`` with ``train_stage``'s statistics.
    """
    stage = normalize_stage(stage)
    run1, run2 = stage in ("1", "both"), stage in ("2", "both")
    columns = list(task.text_columns)
    train: dict[str, Any] = {}
    main = True

    if run1:  # stage 1: intermediate layers (embeddings, attention scores, hidden states)
        if layer_map is None:
            raise InputError("stage 1 needs a layer map (LayerMap.choose)")
        set_seed(recipe.seed)  # the width projections start from the recipe's seed
        module = IntermediateDistiller(student, teacher, layer_map,
                                       embedding_projection=recipe.embedding_projection,
                                       attention_weight=recipe.attention_weight,
                                       hidden_weight=recipe.hidden_weight)
        args = training_arguments(recipe.stage1, output_dir=work_dir, num_examples=len(task.rows),
                                  seed=recipe.seed, precision=recipe.precision, use_cpu=use_cpu,
                                  find_unused_parameters=0 in (recipe.attention_weight, recipe.hidden_weight))
        collator = TextCollator(tokenizer, columns, recipe.max_seq_length)
        with frozen(head_parameters(student)):  # the classifier learns in stage 2 only
            stats = train_stage(module, task.rows.select_columns(columns), collator, args, "stage 1", progress)
        module.remove_hooks()
        main = stats.pop("is_main_process")
        train["stage1"] = stats
        if main and run2 and after_stage1 is not None:
            after_stage1()

    if run2:  # stage 2: the prediction layer learns the teacher's logits
        stored = task.teacher_logits_column
        module = PredictionDistiller(student, None if stored else teacher,
                                     teacher_permutation=teacher_permutation,
                                     temperature=recipe.temperature, regression=task.regression)
        args = training_arguments(recipe.stage2, output_dir=work_dir, num_examples=len(task.rows),
                                  seed=recipe.seed, precision=recipe.precision, use_cpu=use_cpu)
        collator = TextCollator(tokenizer, columns, recipe.max_seq_length, teacher_column=stored)
        stats = train_stage(module, task.rows.select_columns(columns + ([stored] if stored else [])),
                            collator, args, "stage 2", progress, callbacks=[early_stopping] if early_stopping else [])
        main = stats.pop("is_main_process")
        if early_stopping is not None:
            stats["validation"] = early_stopping.record()
        train["stage2"] = stats

    return {"train": train, "main_process": main}
