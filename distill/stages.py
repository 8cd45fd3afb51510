"""The two TinyBERT stages as modules with a loss, for ``transformers.Trainer`` to train.

Each stage is an ``nn.Module`` that holds the student, the frozen teacher (stage 2 may do
without it) and, in stage 1, the learned width projections, and whose ``forward`` returns
``{"loss": ...}``. The stock ``Trainer`` then trains it (``training.train_stage``): its optimiser
sees only the trainable parameters (student and projections), and mixed precision, DDP under
``torchrun`` / ``accelerate launch`` and gradient accumulation come from the Trainer unchanged.

Stage 1 reads attention scores through forward hooks on each mapped layer's ``query`` and
``key`` projections and recomputes ``q k^T / sqrt(d)`` (``losses.attention_scores``): the
models' ``output_attentions`` are post-softmax probabilities, and TinyBERT distils the scores.
This works with any attention implementation (eager, SDPA).

Not here: batching text (``collator``), the Trainer settings (``training``), the order of the
stages (``run``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from tinyaug.distill.arch import encoder_layers, query_key
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.losses import (attention_loss, attention_scores, hidden_loss,
                                    regression_loss, soft_cross_entropy)
from tinyaug.errors import InputError

logger = logging.getLogger(__name__)


class QueryKeyCapture:
    """Keeps the latest ``query`` / ``key`` projection outputs of chosen encoder layers."""

    def __init__(self, model: nn.Module, layers: Iterable[int], who: str = "model") -> None:
        modules = encoder_layers(model, who)
        self.heads: dict[int, int] = {}
        self._outputs: dict[tuple[int, str], torch.Tensor] = {}  # (layer, "q"|"k") -> (B, L, D)
        self._handles = []
        for index in sorted(set(layers)):
            query, key, heads = query_key(modules[index], who)
            self.heads[index] = heads
            self._handles.append(query.register_forward_hook(self._keep(index, "q")))
            self._handles.append(key.register_forward_hook(self._keep(index, "k")))

    def _keep(self, index: int, kind: str):
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            self._outputs[(index, kind)] = output
        return hook

    def scores(self, index: int) -> torch.Tensor:
        """(B, H, L, L) pre-softmax scores of layer ``index`` (0-based) from the last forward."""
        return attention_scores(self._outputs[(index, "q")], self._outputs[(index, "k")], self.heads[index])

    def clear(self) -> None:
        self._outputs.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.clear()


class _KeepTeacherInEval(nn.Module):
    """``Trainer`` calls ``model.train()``; the teacher must stay in eval mode (no dropout)."""

    teacher: nn.Module | None

    def train(self, mode: bool = True) -> "_KeepTeacherInEval":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class IntermediateDistiller(_KeepTeacherInEval):
    """Stage 1: attention-score MSE + hidden-state MSE between mapped layers.

    ``student``, ``teacher``: BERT-style models (task models or bare encoders; only their base
    models run). ``layer_map``: student layer m learns teacher layer g(m); the embedding output
    learns the teacher's embedding output. ``embedding_projection``: ``"separate"`` learns W_e for
    the embedding output and W_h for the layers (the paper), ``"shared"`` one matrix for both
    (the reference code). Losses are summed over layers, as in the paper.

    ``forward(input_ids, attention_mask, token_type_ids)`` -> ``{"loss", "attention_loss",
    "hidden_loss"}``, scalars.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, layer_map: LayerMap, *,
                 embedding_projection: str = "separate", attention_weight: float = 1.0,
                 hidden_weight: float = 1.0) -> None:
        super().__init__()
        self.student = student
        self.teacher = _freeze(teacher)
        s_layers, t_layers = encoder_layers(student, "student"), encoder_layers(teacher, "teacher")
        layer_map.check(len(s_layers), len(t_layers))
        self.layer_map = layer_map
        self.attention_weight, self.hidden_weight = attention_weight, hidden_weight
        s_width, t_width = student.config.hidden_size, teacher.config.hidden_size
        self.hidden_projection = nn.Linear(s_width, t_width)
        self.embedding_projection = nn.Linear(s_width, t_width) if embedding_projection == "separate" else None
        pairs = layer_map.attention_pairs()
        self._student_qk = self._teacher_qk = None
        if attention_weight > 0:
            self._student_qk = QueryKeyCapture(student, [s for s, _ in pairs], "student")
            self._teacher_qk = QueryKeyCapture(teacher, [t for _, t in pairs], "teacher")
            mismatch = [(s, t) for s, t in pairs
                        if self._student_qk.heads[s] != self._teacher_qk.heads[t]]
            if mismatch:
                s, t = mismatch[0]
                raise InputError(f"student layer {s + 1} has {self._student_qk.heads[s]} attention heads "
                                 f"but teacher layer {t + 1} has {self._teacher_qk.heads[t]}; "
                                 "TinyBERT compares attention head by head: give the student the "
                                 "teacher's head count (heads=N) or set the attention weight to 0")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        s_out = self.student.base_model(**inputs, output_hidden_states=True)
        with torch.no_grad():
            t_out = self.teacher.base_model(**inputs, output_hidden_states=True)
        zero = s_out.hidden_states[0].new_zeros(())
        att = zero
        if self._student_qk is not None:
            for s, t in self.layer_map.attention_pairs():
                att = att + attention_loss(self._student_qk.scores(s),
                                           self._teacher_qk.scores(t).detach(), attention_mask)
            self._student_qk.clear()
            self._teacher_qk.clear()
        hid = zero
        if self.hidden_weight > 0:
            for s, t in self.layer_map.hidden_pairs():
                projection = self.embedding_projection if (s == 0 and self.embedding_projection is not None) \
                    else self.hidden_projection
                hid = hid + hidden_loss(s_out.hidden_states[s], t_out.hidden_states[t].detach(),
                                        projection, attention_mask)
        loss = self.attention_weight * att + self.hidden_weight * hid
        return {"loss": loss, "attention_loss": att.detach(), "hidden_loss": hid.detach()}

    def remove_hooks(self) -> None:
        for capture in (self._student_qk, self._teacher_qk):
            if capture is not None:
                capture.remove()


class PredictionDistiller(_KeepTeacherInEval):
    """Stage 2: the student's logits learn the teacher's (soft cross-entropy, or MSE for STS-B).

    Teacher logits come from the batch (``teacher_logits``, (B, C), already in the task's label
    order) when the dataset stores them, else from a live call to ``teacher`` whose outputs are
    re-ordered with ``teacher_permutation`` (``labels.label_permutation``).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, *,
                 teacher_permutation: Sequence[int] | None = None, temperature: float = 1.0,
                 regression: bool = False) -> None:
        super().__init__()
        self.student = student
        self.teacher = _freeze(teacher) if teacher is not None else None
        self.permutation = list(teacher_permutation) if teacher_permutation is not None else None
        self.temperature = temperature
        self.regression = regression

    def teacher_outputs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.teacher is None:
            raise InputError("stage 2 needs either stored teacher logits in the data "
                             "(run `tinyaug teacher-logits`) or a teacher model")
        with torch.no_grad():
            logits = self.teacher(**inputs).logits
        return logits[:, self.permutation] if self.permutation is not None else logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                teacher_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        student_logits = self.student(**inputs).logits
        if teacher_logits is None:
            teacher_logits = self.teacher_outputs(inputs)
        teacher_logits = teacher_logits.to(student_logits.dtype)
        if self.regression:
            loss = regression_loss(student_logits, teacher_logits)
        else:
            loss = soft_cross_entropy(student_logits, teacher_logits, self.temperature)
        return {"loss": loss, "logits": student_logits}


@contextlib.contextmanager
def frozen(parameters: Iterable[nn.Parameter]) -> Iterator[None]:
    """Temporarily exclude ``parameters`` from training (stage 1 leaves the head alone)."""
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
