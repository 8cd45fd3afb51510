"""What a teacher makes of augmented variants, and which variants to keep: pure, on arrays.

An augmented variant copies its original's gold label, but replacing words can change what the
text says ("the movie was great" -> "the movie was bad"). The teacher's prediction on each
variant tells: a variant *flips* when the teacher's prediction differs from its prediction on
the original (regression: when its score moves by ``REGRESSION_FLIP`` or more, a fifth of
STS-B's 0-5 range).

    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [1.5, 0.1], [0.0, 3.0], [0.2, 0.1]])
    >>> predicted, confidence = teacher_predictions(logits, regression=False)
    >>> predicted.tolist(), np.round(confidence, 2).tolist()
    ([0, 0, 1, 0], [0.88, 0.8, 0.95, 0.52])
    >>> flips(np.array([7, 7, 7, 8]), np.array([0, 1, 2, 0]), predicted.astype(float)).tolist()
    [False, False, True, False]

A ``LabelPolicy`` then keeps the originals and the variants it trusts, and says which label the
kept variants carry:

    >>> policy = LabelPolicy.parse("agreeing+confident:0.9", labels="teacher")
    >>> keep, dropped = policy.select(np.array([0, 1, 2, 1]), np.array([False, False, True, False]),
    ...                               np.array([0.6, 0.8, 0.95, 0.99]))
    >>> keep.tolist(), dropped
    ([True, False, False, True], {'teacher disagrees with the original': 1, 'teacher confidence below 0.9': 1})

Not here: reading the rows and the teacher's logits (``tinyaug.pipelines``).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Sequence

import numpy as np

from tinyaug.errors import InputError

REGRESSION_FLIP = 1.0  # STS-B: a variant whose teacher score moves this far from the original's flips
LABEL_SOURCES = ("gold", "teacher")
DISAGREES = "teacher disagrees with the original"


def teacher_predictions(logits: np.ndarray, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, confidence)`` per row of ``logits`` (rows, classes): the arg-max class and
    its softmax probability; for regression (rows, 1), the score and NaN."""
    logits = np.asarray(logits, dtype=np.float64)
    if regression:
        return logits[:, 0], np.full(len(logits), np.nan)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities.argmax(axis=1), probabilities.max(axis=1)


def flips(example_ids: np.ndarray, variants: np.ndarray, predictions: np.ndarray,
          regression: bool = False) -> np.ndarray:
    """Per row, whether the prediction differs from the one on its example's original (variant 0).
    Originals never flip; a row whose original is absent does not either."""
    originals = {int(e): p for e, v, p in zip(example_ids, variants, predictions) if v == 0}
    reference = np.array([originals.get(int(e), np.nan) for e in example_ids], dtype=np.float64)
    found = ~np.isnan(reference) & (np.asarray(variants) > 0)
    moved = np.abs(predictions - reference) >= REGRESSION_FLIP if regression else predictions != reference
    return found & moved


def _rate(flipped: np.ndarray) -> dict[str, Any]:
    return {"variants": int(flipped.size), "flipped": int(flipped.sum()),
            "rate": float(flipped.mean()) if flipped.size else None}


def flip_statistics(flipped: np.ndarray, variants: np.ndarray, sources: np.ndarray, kinds: np.ndarray,
                    edits: np.ndarray, labels: np.ndarray | None = None,
                    label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Flip rates over the variants: overall, by the sources of their edits, by the kinds of their
    edits, by gold label (classification) and by the number of edits.

    ``sources`` and ``kinds`` hold, per row, the names of its edits' sources / kinds joined by
    ``" + "`` in sorted order (``"mlm"``, ``"mlm + vectors"``, ``"replace + swap"``): each distinct
    combination is a group, whatever the method, so a new source needs no change here."""
    is_variant = np.asarray(variants) > 0
    flipped = np.asarray(flipped)[is_variant]
    sources, kinds = np.asarray(sources, dtype=object)[is_variant], np.asarray(kinds, dtype=object)[is_variant]
    edits = np.asarray(edits)[is_variant]
    counts = np.minimum(edits, 4)
    stats: dict[str, Any] = {
        "overall": _rate(flipped),
        "by_source": {name: _rate(flipped[sources == name]) for name in sorted(set(sources)) if name},
        "by_kind": {name: _rate(flipped[kinds == name]) for name in sorted(set(kinds)) if name},
        "by_replaced_words": {("4+" if n == 4 else str(n)): _rate(flipped[counts == n])
                              for n in range(1, 5) if (counts == n).any()},
    }
    if labels is not None and label_names is not None:
        labels = np.asarray(labels)[is_variant]
        stats["by_label"] = {name: _rate(flipped[labels == i]) for i, name in enumerate(label_names)
                             if (labels == i).any()}
    return stats


@dataclasses.dataclass(frozen=True)
class LabelPolicy:
    """Which variants to keep and which label they carry (originals always stay, gold-labelled).

    ``agreeing``: drop variants whose teacher prediction differs from the original's.
    ``min_confidence``: drop variants the teacher predicts with a lower probability.
    ``labels``: ``"gold"`` (the copied label) or ``"teacher"`` (the teacher's prediction).
    """

    agreeing: bool = False
    min_confidence: float | None = None
    labels: str = "gold"

    def __post_init__(self) -> None:
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"confident:{self.min_confidence}: a probability between 0 and 1 is expected")
        if self.labels not in LABEL_SOURCES:
            raise InputError(f"--labels {self.labels!r}: choose gold or teacher")

    @classmethod
    def parse(cls, keep: str, labels: str = "gold") -> "LabelPolicy":
        """``"all"``, ``"agreeing"``, ``"confident:0.8"``, or both joined by ``+``."""
        agreeing, confidence = False, None
        for part in (p.strip().lower() for p in keep.split("+")):
            if part == "agreeing":
                agreeing = True
            elif part.startswith("confident:"):
                try:
                    confidence = float(part.partition(":")[2])
                except ValueError:
                    raise InputError(f"--keep {keep!r}: confident:P needs a probability, e.g. confident:0.8") from None
            elif part != "all":
                raise InputError(f"--keep {keep!r}: choose all, agreeing, confident:P, or agreeing+confident:P")
        return cls(agreeing, confidence, labels)

    def describe(self) -> str:
        parts = (["agreeing"] if self.agreeing else []) + \
            ([f"confident:{self.min_confidence:g}"] if self.min_confidence is not None else [])
        return "+".join(parts) or "all"

    def select(self, variants: np.ndarray, flipped: np.ndarray, confidence: np.ndarray
               ) -> tuple[np.ndarray, dict[str, int]]:
        """``(keep mask, {reason: rows dropped})``; a row dropped for two reasons counts once, under
        the first."""
        keep = np.ones(len(variants), dtype=bool)
        dropped: dict[str, int] = collections.Counter()
        is_variant = np.asarray(variants) > 0
        if self.agreeing:
            out = is_variant & keep & np.asarray(flipped, dtype=bool)
            dropped[DISAGREES] += int(out.sum())
            keep &= ~out
        if self.min_confidence is not None:
            low = np.asarray(confidence, dtype=np.float64) < self.min_confidence  # NaN (regression) is never low
            out = is_variant & keep & low
            dropped[f"teacher confidence below {self.min_confidence:g}"] += int(out.sum())
            keep &= ~out
        return keep, dict(dropped)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": self.describe(), **dataclasses.asdict(self)}
