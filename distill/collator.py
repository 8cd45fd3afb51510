"""Rows of raw text to a padded batch, tokenised on the fly (datasets stay free of cache files)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import PreTrainedTokenizerBase


class TextCollator:
    """Rows of raw text -> a padded batch; tokenising here keeps datasets free of cache files.

    ``text_columns``: one column, or two for a pair task. Optional extra columns become
    ``labels`` (``label_column``: long, or float for regression) and ``teacher_logits``.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, text_columns: Sequence[str],
                 max_length: int, *, label_column: str | None = None, regression: bool = False,
                 teacher_column: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.text_columns = tuple(text_columns)
        self.max_length = max_length
        self.label_column = label_column
        self.regression = regression
        self.teacher_column = teacher_column

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        texts = [[row[c] for row in rows] for c in self.text_columns]
        batch = dict(self.tokenizer(*texts, truncation=True, max_length=self.max_length,
                                    padding=True, return_tensors="pt"))
        if self.label_column is not None:
            dtype = torch.float32 if self.regression else torch.long
            batch["labels"] = torch.tensor([row[self.label_column] for row in rows], dtype=dtype)
        if self.teacher_column is not None:
            batch["teacher_logits"] = torch.tensor([row[self.teacher_column] for row in rows],
                                                   dtype=torch.float32)
        return batch
