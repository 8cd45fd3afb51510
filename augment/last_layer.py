"""A BERT-style encoder whose last layer is computed only where it is read.

A masked LM's prediction for one masked word needs the last layer's output at one position.
Every earlier layer must run at every position (each position's keys and values feed the next
layer), but the last layer only needs keys and values at every position, and its query,
attention output, feed-forward and LayerNorms at the masked position alone. For a context of
``L`` tokens that replaces ``L`` rows of ``4 d^2 + 2 d f`` multiply-adds by ``L`` rows of
``2 d^2`` plus one full row: for bert-base (12 layers) about 7% of the encoder's work, for a
6-layer model about 14%.

Worked shapes: ``hidden (B, L, d)`` after layer n-1; ``rows, at (P,)`` the row and the masked
position of each of P predictions (several per row when a context masks several words);
``q (P, heads, 1, size)``, ``k, v (B, heads, L, size)`` taken at ``rows`` -> ``out (P, d)``.

The same arithmetic as the full layer (the same modules, applied to fewer rows), so scores agree
with the full forward to float noise, which the masked-LM source's rounded ranking absorbs.
Only post-LayerNorm BERT-family layers with absolute positions and no cross-attention are
recognised (BERT, RoBERTa and their copies); for anything else ``LastLayerAtPositions.of``
returns None and the caller runs the whole model.

Not here: choosing positions, the prediction head, batching (``tinyaug.augment.mlm``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LAYER_PARTS = ("attention", "intermediate", "output")
_ATTENTION_PARTS = ("query", "key", "value", "num_attention_heads", "attention_head_size")


class LastLayerAtPositions:
    """Run ``base`` (a ``BertModel``-like encoder) and return the last layer at one position per row."""

    def __init__(self, base: torch.nn.Module) -> None:
        self.embeddings = base.embeddings
        self.layers = list(base.encoder.layer[:-1])
        self.last = base.encoder.layer[-1]

    @classmethod
    def of(cls, base: torch.nn.Module) -> "LastLayerAtPositions | None":
        """The partial runner for ``base``, or None when its layers are not of the known kind."""
        config = getattr(base, "config", None)
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if config is None or getattr(base, "embeddings", None) is None or not layers:
            return None
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            return None
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            return None
        last = layers[-1]
        if not all(hasattr(last, part) for part in _LAYER_PARTS):
            return None
        attention = getattr(last.attention, "self", None)
        if attention is None or not all(hasattr(attention, part) for part in _ATTENTION_PARTS):
            return None
        if not all(hasattr(getattr(last.attention, "output", None), p) for p in ("dense", "LayerNorm")):
            return None
        return cls(base)

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                 at: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids (B, L)`` without padding (every row attends to every position), ``at (P,)``
        positions in rows ``rows (P,)`` (None: one per row, ``rows`` = 0..B-1) -> the last layer's
        output there, ``(P, d)``."""
        kwargs = {"input_ids": input_ids}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.embeddings(**kwargs)
        for layer in self.layers:
            out = layer(hidden, None)  # no mask: exact-length batches carry no padding
            hidden = out[0] if isinstance(out, tuple) else out
        return self._last(hidden, at, rows)

    def _last(self, hidden: torch.Tensor, at: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        attention = self.last.attention.self
        batch, length, _ = hidden.shape
        heads, size = attention.num_attention_heads, attention.attention_head_size
        k = attention.key(hidden).view(batch, length, heads, size).transpose(1, 2)
        v = attention.value(hidden).view(batch, length, heads, size).transpose(1, 2)
        if rows is None:
            rows = torch.arange(batch, device=hidden.device)
        else:  # several predictions per row: each reads its own row's keys and values
            k, v = k[rows], v[rows]
        predictions = at.shape[0]
        here = hidden[rows, at]  # (P, d)
        q = attention.query(here).view(predictions, heads, 1, size)
        mixed = F.scaled_dot_product_attention(q, k, v).reshape(predictions, heads * size)  # scale 1/sqrt(size)
        attended = self.last.attention.output(mixed, here)  # dense, residual, LayerNorm
        return self.last.output(self.last.intermediate(attended), attended)
