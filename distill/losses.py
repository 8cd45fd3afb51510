"""TinyBERT's distillation losses as pure functions on tensors.

Shapes use: B batch, L sequence length, H attention heads, D hidden width (``Ds`` student,
``Dt`` teacher), C classes.

Two deliberate departures from the reference implementation, both about padding:
- ``attention_loss`` averages over the (query, key) pairs where *both* tokens are real. The
  reference zeroes key columns whose masked score is <= -100 in both models, but still counts
  them (and every padded query row) in the mean, so a batch's loss shrinks as its padding grows.
- ``hidden_loss`` averages over real tokens only, for the same reason.
With no padding both equal the reference's plain MSE.

Not here: which layers are compared (``layer_map``), how scores are captured from a model
(``trainer``), loss weights and the training loop (``recipe``, ``trainer``).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def attention_scores(query: torch.Tensor, key: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Pre-softmax attention scores ``q k^T / sqrt(d_head)`` of one self-attention layer.

    ``query``, ``key``: (B, L, D) outputs of the layer's query and key projections.
    Returns (B, H, L, L), without the attention mask added: padding is handled by the losses.

    Example: D=2, H=1, q = k = [[[1, 0], [0, 1]]] -> [[[[0.7071, 0], [0, 0.7071]]]].
    """
    batch, length, width = query.shape
    if width % num_heads:
        raise ValueError(f"width {width} is not a multiple of {num_heads} heads")
    head = width // num_heads
    q = query.view(batch, length, num_heads, head).transpose(1, 2)  # (B, H, L, d)
    k = key.view(batch, key.shape[1], num_heads, head).transpose(1, 2)
    return torch.matmul(q, k.transpose(-1, -2)) * head ** -0.5


def _pair_mask(attention_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(B, L) 0/1 -> (B, 1, L, L) float, 1 where query and key are both real tokens."""
    if attention_mask is None:
        return torch.ones_like(like[:, :1])
    m = attention_mask.to(like.dtype)
    return m[:, None, :, None] * m[:, None, None, :]


def attention_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between pre-softmax attention scores, over real (query, key) pairs.

    ``student_scores``, ``teacher_scores``: (B, H, L, L), same H (TinyBERT compares head by head).
    ``attention_mask``: (B, L), 1 for real tokens and 0 for padding; None means no padding.
    Returns a scalar: sum of squared differences over pairs whose query and key are both real,
    divided by (number of such pairs * H).

    Example: B=1, H=1, L=2, mask [1, 0]: only entry (0, 0) counts, so student [[1, 9], [9, 9]]
    against teacher [[3, 0], [0, 0]] gives (1 - 3)^2 / 1 = 4.
    """
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(f"attention shapes differ: student {tuple(student_scores.shape)}, "
                         f"teacher {tuple(teacher_scores.shape)}")
    mask = _pair_mask(attention_mask, student_scores)
    squared = (student_scores - teacher_scores).pow(2) * mask
    count = mask.sum() * student_scores.shape[1]
    return squared.sum() / count.clamp(min=1)


def hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between hidden states, the student's mapped to the teacher's width.

    ``student_hidden``: (B, L, Ds); ``teacher_hidden``: (B, L, Dt).
    ``projection``: maps (B, L, Ds) -> (B, L, Dt), TinyBERT's learned ``W_h`` (or ``W_e`` for the
    embedding output); None when the widths are already equal and no projection is wanted.
    ``attention_mask``: (B, L), 1 for real tokens; None means no padding.
    Returns a scalar: squared error summed over real tokens and the Dt features, divided by
    (real tokens * Dt).

    Example: Ds=Dt=1, identity projection, mask [1, 0]: student [[[2], [7]]] against teacher
    [[[0], [0]]] gives 2^2 / 1 = 4 (the padded 7 is ignored).
    """
    projected = projection(student_hidden) if projection is not None else student_hidden
    if projected.shape != teacher_hidden.shape:
        raise ValueError(f"hidden shapes differ after projection: student {tuple(projected.shape)}, "
                         f"teacher {tuple(teacher_hidden.shape)}")
    if attention_mask is None:
        return F.mse_loss(projected, teacher_hidden)
    mask = attention_mask.to(projected.dtype)[:, :, None]  # (B, L, 1)
    squared = (projected - teacher_hidden).pow(2) * mask
    return squared.sum() / (mask.sum() * projected.shape[-1]).clamp(min=1)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    """TinyBERT's prediction-layer loss: ``-sum_c softmax(z_t / T)_c * log_softmax(z_s / T)_c``.

    ``student_logits``, ``teacher_logits``: (B, C). Returns the mean over the batch of the
    per-example cross-entropy (summed over classes). The reference divides by C as well (it
    takes ``.mean()`` over B * C entries), which only rescales the learning rate; no T^2 factor,
    as in the paper (TinyBERT uses T = 1).

    Example: C=2, teacher [0, 0] (uniform), student [0, 0], T=1 -> log 2 = 0.6931.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit shapes differ: student {tuple(student_logits.shape)}, "
                         f"teacher {tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    targets = F.softmax(teacher_logits / temperature, dim=-1)
    log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    return -(targets * log_probs).sum(dim=-1).mean()


def regression_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's predicted scores (STS-B).

    ``student_scores``, ``teacher_scores``: (B,) or (B, 1). Returns a scalar.

    Example: student [1, 2], teacher [2, 4] -> (1 + 4) / 2 = 2.5.
    """
    return F.mse_loss(student_scores.reshape(-1), teacher_scores.reshape(-1).to(student_scores.dtype))
