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


@torch.no_grad()
def predict_logits(model: nn.Module, collator: TextCollator, dataset: Any, *, batch_size: int = 64,
                   device: torch.device | str = "cpu",
                   permutation: Sequence[int] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Logits of ``model`` for every row of ``dataset`` (anything sliceable into column dicts).

    Returns (N, C) float32, columns re-ordered by ``permutation`` (model output index of each
    task label) when given. Batches are padded to their own longest row, so the result does not
    depend on ``batch_size`` beyond floating-point noise. ``progress(rows done, rows)`` hears
    each batch.
    """
    model.eval()
    model.to(device)
    chunks = []
    for start in range(0, len(dataset), batch_size):
        columns = dataset[start:start + batch_size]
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        batch = {k: v.to(device) for k, v in collator(rows).items() if k not in ("labels", "teacher_logits")}
        logits = model(**batch).logits.float()
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
