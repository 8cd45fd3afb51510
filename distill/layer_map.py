"""Which teacher layer each student layer learns from: TinyBERT's mapping function g(m).

Layers are numbered as in the paper: 0 is the embedding layer, 1..M the student's Transformer
layers, 1..N the teacher's. One rule covers both stage-1 losses: student layer m learns teacher
layer g(m), its attention scores from that layer's self-attention and its output hidden state
from that layer's output (``hidden_states[g(m)]`` of a Hugging Face model), and the embedding
output 0 learns the teacher's embedding output 0. Uniform mapping is g(m) = m * k, k = N / M:
for 4 of 12 that is 3, 6, 9, 12. This is also what the reference code computes, although it
phrases it with 0-based attention indices (i * k + k - 1).

The default map spreads any student depth M <= N evenly: g(m) = floor(m * N / M), the top layer
of the m-th of M equal slices of the teacher. It is the uniform map when M divides N, and for 4
of 6 it is 1, 3, 4, 6 (always increasing, and ending at the teacher's last layer N).

Not here: the losses, and reading layers out of models.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from tinyaug.errors import InputError


@dataclasses.dataclass(frozen=True)
class LayerMap:
    """``teacher_layers[m - 1]`` is the teacher layer (1-based) that student layer m learns."""

    teacher_layers: tuple[int, ...]  # (g(1), ..., g(M)); g(0) = 0 always

    def __post_init__(self) -> None:
        layers = tuple(self.teacher_layers)
        object.__setattr__(self, "teacher_layers", layers)
        if not layers:
            raise InputError("a layer map needs one teacher layer per student layer; got none")
        bad = [x for x in layers if not isinstance(x, int) or isinstance(x, bool) or x < 1]
        if bad:
            raise InputError(f"layer map {list(layers)}: teacher layers are numbered from 1 "
                             f"(0 is the embedding layer, always mapped to itself); found {bad}")

    @classmethod
    def uniform(cls, student_layers: int, teacher_layers: int) -> "LayerMap":
        """g(m) = floor(m * N / M), any M <= N. ``uniform(4, 12)`` -> (3, 6, 9, 12);
        ``uniform(6, 12)`` -> (2, 4, ..., 12); ``uniform(4, 6)`` -> (1, 3, 4, 6)."""
        if student_layers < 1 or teacher_layers < 1:
            raise InputError(f"layer counts must be >= 1; got student {student_layers}, "
                             f"teacher {teacher_layers}")
        if student_layers > teacher_layers:
            raise InputError(f"the student has more layers ({student_layers}) than the teacher "
                             f"({teacher_layers}); give an explicit --layer-map, e.g. "
                             f"{','.join(str(min(m, teacher_layers)) for m in range(1, student_layers + 1))}")
        # integer arithmetic: exact, and m * k when M divides N; steps of N / M >= 1 keep it increasing
        return cls(tuple(m * teacher_layers // student_layers for m in range(1, student_layers + 1)))

    @classmethod
    def choose(cls, explicit: Sequence[int] | None, student_layers: int, teacher_layers: int) -> "LayerMap":
        """``explicit`` (teacher layer per student layer) or else the uniform map, checked.

        >>> LayerMap.choose(None, 4, 12).teacher_layers
        (3, 6, 9, 12)
        """
        mapping = cls(tuple(explicit)) if explicit else cls.uniform(student_layers, teacher_layers)
        mapping.check(student_layers, teacher_layers)
        return mapping

    @classmethod
    def parse(cls, text: str) -> "LayerMap":
        """``"3,6,9,12"`` (one teacher layer per student layer), or ``"0,3,6,9,12"`` with the
        embedding layer written out."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise InputError(f"layer map {text!r}: expected comma-separated teacher layer numbers, "
                             "one per student layer, e.g. 3,6,9,12") from None
        if len(numbers) > 1 and numbers[0] == 0:
            numbers = numbers[1:]
        return cls(tuple(numbers))

    @property
    def student_layers(self) -> int:
        return len(self.teacher_layers)

    def check(self, student_layers: int, teacher_layers: int) -> None:
        """Raise ``InputError`` unless this map fits a student of M and a teacher of N layers."""
        problems = []
        if self.student_layers != student_layers:
            problems.append(f"it names {self.student_layers} student layers but the student has "
                            f"{student_layers}")
        beyond = [x for x in self.teacher_layers if x > teacher_layers]
        if beyond:
            problems.append(f"teacher layers {beyond} do not exist (the teacher has {teacher_layers})")
        if problems:
            raise InputError(f"layer map {','.join(map(str, self.teacher_layers))}: "
                             + "; ".join(problems) + "; fix --layer-map or leave it out for the "
                             "uniform map")

    def hidden_pairs(self, include_embeddings: bool = True) -> list[tuple[int, int]]:
        """(student, teacher) indices into ``hidden_states``: ``[(0, 0), (1, 3), ...]`` for 4 of 12."""
        pairs = [(m, g) for m, g in enumerate(self.teacher_layers, start=1)]
        return [(0, 0), *pairs] if include_embeddings else pairs

    def attention_pairs(self) -> list[tuple[int, int]]:
        """(student, teacher) 0-based layer indices: ``[(0, 2), (1, 5), (2, 8), (3, 11)]`` for 4 of 12."""
        return [(m - 1, g - 1) for m, g in enumerate(self.teacher_layers, start=1)]

    def __str__(self) -> str:
        return ",".join(map(str, self.teacher_layers))
