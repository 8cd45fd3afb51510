"""``transformers.Trainer`` settings and the call that trains one stage (or a fine-tuning run).

Not here: what is trained (``stages``), the order of the stages (``run``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Sequence

from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.recipe import StageSettings

logger = logging.getLogger(__name__)


class LossHistory(TrainerCallback):
    """Collects the Trainer's logged losses and sends them to ``logging`` instead of stdout."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.losses: list[tuple[int, float]] = []  # (step, mean loss since the last log)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 (Trainer API)
        if logs and "loss" in logs and state.is_world_process_zero:
            self.losses.append((state.global_step, float(logs["loss"])))
            logger.info("%s step %d/%d loss %.4f", self.name, state.global_step, state.max_steps,
                        logs["loss"])


class StepProgress(TrainerCallback):
    """Reports ``(name, steps done, total steps)`` after every optimiser step (main process only)."""

    def __init__(self, name: str, progress: Callable[[str, int, int], None]) -> None:
        self.name, self.progress = name, progress

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 (Trainer API)
        if state.is_world_process_zero:
            self.progress(self.name, state.global_step, state.max_steps)


def training_arguments(stage: StageSettings, *, output_dir: str, num_examples: int, seed: int,
                       precision: str = "fp32", use_cpu: bool = False,
                       find_unused_parameters: bool = False) -> TrainingArguments:
    """``TrainingArguments`` for one stage: quiet (no tqdm, no reports, no checkpoints), seeded,
    linear decay after warm-up, and the step budget applied when it ends the stage early.

    ``find_unused_parameters``: for DDP, when some trainable weights get no gradient (stage 1
    with a loss weight of 0 leaves parts of the last layer unused)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = max(1, math.ceil(num_examples / (stage.batch_size * world)))
    total = max(1, math.ceil(stage.epochs * per_epoch))
    max_steps = stage.max_steps if stage.max_steps is not None and stage.max_steps < total else -1
    steps = max_steps if max_steps > 0 else total
    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=stage.batch_size,
        num_train_epochs=stage.epochs, max_steps=max_steps, learning_rate=stage.learning_rate,
        # a whole number of steps: transformers 5 reads a float below 1 as a ratio, 4.x as 0 steps
        warmup_steps=math.ceil(stage.warmup_ratio * steps), weight_decay=stage.weight_decay,
        lr_scheduler_type="linear", seed=seed, data_seed=seed,
        fp16=precision == "fp16", bf16=precision == "bf16", use_cpu=use_cpu,
        report_to=[], disable_tqdm=True, save_strategy="no", logging_strategy="steps",
        logging_steps=max(1, steps // 20), remove_unused_columns=False, dataloader_num_workers=0,
        ddp_find_unused_parameters=find_unused_parameters)


def train_stage(module: nn.Module, dataset: Any, collator: TextCollator, args: TrainingArguments,
                name: str, progress: Callable[[str, int, int], None] | None = None,
                callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Train ``module`` (a distiller, or a task model taking ``labels``) with the stock Trainer.
    ``progress(name, step, total_steps)`` hears each step (for a progress display); ``callbacks``
    join the Trainer's (early stopping on validation: ``validation.KeepBest``).

    Returns ``{"steps", "epochs", "first_loss", "last_loss", "mean_loss", "seconds", "losses"}``;
    ``losses`` are the logged ``(step, loss)`` pairs.
    """
    history = LossHistory(name)
    trainer = Trainer(model=module, args=args, train_dataset=dataset, data_collator=collator,
                      callbacks=[history, *([StepProgress(name, progress)] if progress else []), *callbacks])
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    losses = history.losses
    return {"steps": int(output.global_step), "epochs": float(trainer.state.epoch or 0.0),
            "first_loss": losses[0][1] if losses else None,
            "last_loss": losses[-1][1] if losses else None,
            "mean_loss": float(output.training_loss), "seconds": round(seconds, 2),
            "losses": losses, "is_main_process": bool(trainer.args.should_save)}
