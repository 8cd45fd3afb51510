"""Constraints on candidates that keep a word's meaning more often (options of the recipe).

TinyBERT keeps any of a masked LM's top predictions, and a masked LM predicts what fits the
*context*, not what means the same: for "the movie was [MASK]" it offers "bad" as readily as
"great". Two filters, each off by default:

- **Minimum word-vector similarity** (TextAttack's embedding constraint): a candidate stays only
  if the cosine of its vector and the replaced word's vector is at least ``min_similarity``. A
  candidate the vectors do not know is dropped (nothing vouches for it); a replaced word the
  vectors do not know keeps its candidates (nothing to compare with). GloVe puts antonyms near
  each other ("good"/"bad" 0.80 in 6B 50d), so this alone does not stop polarity flips.
- **No antonyms**: a candidate that is a WordNet antonym of the replaced word is dropped
  (``antonyms`` is any word -> set-of-antonyms function; the pipelines read WordNet through nltk).

    >>> import numpy as np
    >>> from tinyaug.augment.sources import Candidate
    >>> words, vectors = ["good", "great", "bad", "car"], np.array([[1, 0], [.9, .1], [.8, .2], [0, 1.]])
    >>> keep = CandidateFilter(0.95, words, vectors, antonyms=lambda w: {"bad"} if w == "good" else set())
    >>> [c.word for c in keep("good", [Candidate(w, 0.1, "mlm", r) for r, w in enumerate(["bad", "car", "great"])], 2)]
    ['great']

Not here: where the vectors and WordNet come from (``tinyaug.pipelines.io``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Collection, Sequence

import numpy as np

from tinyaug.augment.sources import Candidate

FETCH_FACTOR = 3  # with a filter on, ask the sources for 3K candidates, keep the best K that pass


class CandidateFilter:
    """Keeps the candidates that pass the constraints, re-ranked from 0, at most ``k``."""

    def __init__(self, min_similarity: float | None, words: Sequence[str] | None = None,
                 vectors: np.ndarray | None = None,
                 antonyms: Callable[[str], Collection[str]] | None = None) -> None:
        if min_similarity is not None and (words is None or vectors is None):
            raise ValueError("a minimum similarity needs word vectors")
        self.min_similarity = min_similarity
        self.antonyms = antonyms
        self._row: dict[str, int] = {}
        self._unit = np.zeros((0, 0), dtype=np.float32)
        if min_similarity is not None:
            assert words is not None and vectors is not None
            self._row = {w: i for i, w in reversed(list(enumerate(words)))}  # the first (most frequent) wins
            matrix = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self._unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)

    @property
    def active(self) -> bool:
        return self.min_similarity is not None or self.antonyms is not None

    def similarity(self, a: str, b: str) -> float | None:
        """Cosine of two words' vectors (lower-cased), or None when either is unknown."""
        i, j = self._row.get(a.lower()), self._row.get(b.lower())
        if i is None or j is None:
            return None
        return float(self._unit[i] @ self._unit[j])

    def passes(self, word: str, candidate: str) -> bool:
        if self.antonyms is not None and candidate.lower() in self.antonyms(word.lower()):
            return False
        if self.min_similarity is not None and word.lower() in self._row:
            similarity = self.similarity(word, candidate)
            return similarity is not None and similarity >= self.min_similarity
        return True

    def __call__(self, word: str, candidates: Sequence[Candidate], k: int) -> tuple[Candidate, ...]:
        kept = [c for c in candidates if self.passes(word, c.word)][:k]
        return tuple(dataclasses.replace(c, rank=rank) for rank, c in enumerate(kept))
