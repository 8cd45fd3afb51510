"""Running a task model over a dataset of raw text, batch by batch, without gradients.

Not here: training (``run``, ``training``), metrics (``metrics``), files.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from tinyaug.distill.collator import TextCollator

logger = logging.getLogger(__name__)


class TaskLogits(nn.Module):
    """``model(...).logits`` from positional inputs (what an exporter traces:
    ``tinyaug.pipelines.io.onnx_runtime``); ``token_type_ids`` None for models without them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        types = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **types).logits


@torch.no_grad()
def predict_logits(model: nn.Module, collator: TextCollator, dataset: Any, *, batch_size: int = 64,
                   device: torch.device | str = "cpu",
                   permutation: Sequence[int] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   forward: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None) -> np.ndarray:
    """Logits of ``model`` for every row of ``dataset`` (anything sliceable into column dicts).

    Returns (N, C) float32, columns re-ordered by ``permutation`` (model output index of each
    task label) when given. Batches are padded to their own longest row, so the result does not
    depend on ``batch_size`` beyond floating-point noise. ``progress(rows done, rows)`` hears
    each batch. ``forward(batch)``: another runner of the same model (an inference runtime's),
    used instead of ``model``, which then only describes it.
    """
    if forward is None:
        model.eval()
        model.to(device)
    chunks = []
    for start in range(0, len(dataset), batch_size):
        columns = dataset[start:start + batch_size]
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        batch = {k: v.to(device) for k, v in collator(rows).items() if k not in ("labels", "teacher_logits")}
        logits = (forward(batch) if forward is not None else model(**batch).logits).float()
        if permutation is not None:
            logits = logits[:, list(permutation)]
        chunks.append(logits.cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, len(dataset)), len(dataset))
        if start and start % (batch_size * 100) == 0:
            logger.info("predicted %d/%d rows", start, len(dataset))
    width = getattr(getattr(model, "config", None), "num_labels", 1)
    if not chunks:
        return np.zeros((0, len(permutation) if permutation is not None else width), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
