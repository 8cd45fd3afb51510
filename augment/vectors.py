"""Word-vector candidates: top-K cosine neighbours, batched over unique words and cached.

The neighbour pool is the first ``pool_size`` rows of the vectors (GloVe and word2vec files are
ordered by frequency, so this keeps rare junk out, as the reference's 100,000-row cut does),
filtered once to words that could replace a content word (alphabetic, not a stopword). Any
word the vectors know, in or beyond the pool, can be queried.

    >>> import numpy as np
    >>> src = VectorSource(["movie", "film", "the", "cinema", "car"],
    ...                    np.array([[1, 0], [.9, .1], [1, 0], [.7, .3], [0, 1]], "float32"))
    >>> [c.word for c in src.candidates([Query("movie")], k=2)[0]]
    ['film', 'cinema']

Not here: reading vector files (``tinyaug.pipelines.io.vectors``).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Sequence

import numpy as np
import torch

from tinyaug.augment.mlm import RANK_MARGIN, is_candidate_word, stable_rank_key
from tinyaug.augment.sources import Candidate, Query
from tinyaug.augment.stopwords import STOPWORDS

logger = logging.getLogger(__name__)


def _columns_by_spelling(lowered: list[str]) -> dict[str, int | list[int]]:
    """Lowercase word -> its column, or its columns where a spelling repeats (cased vectors:
    Movie, movie); either indexes a score row. Built by C loops with an int per word: a Python
    loop, or a list per word, costs 0.1 s on 100,000 words, a tenth of a small run's start-up.

    >>> _columns_by_spelling(["movie", "film", "movie"])
    {'movie': [0, 2], 'film': 1}
    """
    columns: dict[str, int | list[int]] = dict(zip(lowered, range(len(lowered))))
    if len(columns) < len(lowered):
        repeated = {word for word, count in Counter(lowered).items() if count > 1}
        for word in repeated:
            columns[word] = []
        for col, word in enumerate(lowered):
            if word in repeated:
                columns[word].append(col)
    return columns


class VectorSource:
    """Cosine nearest neighbours over a word-vector table."""

    name = "vectors"

    def __init__(self, words: Sequence[str], vectors: np.ndarray, *, pool_size: int = 100_000,
                 stopwords: frozenset[str] = STOPWORDS, chunk_size: int = 128) -> None:
        """``words[i]`` is the word of row ``vectors[i]`` (``vectors`` may be memory-mapped).
        ``chunk_size`` words are searched at once: the one large temporary is their score
        matrix, ``chunk_size * pool`` floats (50 MB for 128 words against a 100,000-word pool)."""
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words for {len(vectors)} vectors")
        self.words = list(words)
        self.vectors = vectors
        self.index = dict(zip(self.words, range(len(self.words))))  # word -> row (the last, if repeated)
        self.chunk_size = chunk_size
        pool = [i for i, w in enumerate(self.words[:pool_size]) if is_candidate_word(w, stopwords)]
        self.pool_rows = np.asarray(pool, dtype=np.int64)  # pool column -> row
        self.pool_ascii = np.array([self.words[row].isascii() for row in pool], dtype=bool)
        self.pool_spellings = _columns_by_spelling([self.words[row].lower() for row in pool])
        self.pool = self._normalized(np.asarray(vectors[:pool_size], dtype=np.float32)[self.pool_rows])
        self.cache: dict[str, tuple[Candidate, ...]] = {}  # word -> its top-k, for k below
        self._cached_k = -1

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @staticmethod
    def _normalized(matrix: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):  # an inf row becomes NaN, which the search never offers
            return matrix / np.where(norms == 0, 1, norms)

    def lookup(self, word: str) -> int | None:
        """The row of ``word``: exact, then lowercased (GloVe 6B is lowercase)."""
        row = self.index.get(word)
        return self.index.get(word.lower()) if row is None else row

    def candidates(self, queries: Sequence[Query], k: int) -> list[tuple[Candidate, ...]]:
        """Top-``k`` neighbours per query; a word the vectors do not know gets none."""
        if k != self._cached_k:
            self.cache.clear()
            self._cached_k = k
        todo = sorted({q.word for q in queries if q.word not in self.cache})
        known = [(w, row) for w in todo if (row := self.lookup(w)) is not None]
        for w in todo:
            self.cache.setdefault(w, ())
        for start in range(0, len(known), self.chunk_size):
            self._search(known[start:start + self.chunk_size], k)
        return [self.cache[q.word][:k] for q in queries]

    def _search(self, batch: list[tuple[str, int]], k: int) -> None:
        rows = np.array([row for _, row in batch])
        queries = self._normalized(np.asarray(self.vectors[rows], dtype=np.float32))
        scores = queries @ self.pool.T  # (batch, pool)
        ascii_query = np.array([word.isascii() for word, _ in batch])
        scores[np.isnan(scores)] = -np.inf  # a vector file's NaN/inf rows: never candidates (topk ranks NaN first)
        scores[np.ix_(ascii_query, ~self.pool_ascii)] = -np.inf  # an ASCII word gets ASCII candidates
        for i, (word, _) in enumerate(batch):
            self.exclude_self(word, scores[i])
        take = min(2 * k + RANK_MARGIN, scores.shape[1])  # room for casing duplicates and near-ties
        if take == 0:
            return
        # the top ``take`` columns per row, without the (batch, pool) index array argpartition would make
        top = torch.topk(torch.from_numpy(scores), take, dim=1, sorted=False).indices.numpy()
        for i, (word, _) in enumerate(batch):
            self.cache[word] = self.rank(scores[i], top[i], k)

    def exclude_self(self, word: str, scores: np.ndarray) -> None:
        """The word itself, in any casing, is never a candidate (cased vectors: Movie, MOVIE)."""
        scores[self.pool_spellings.get(word.lower(), [])] = -np.inf

    def rank(self, scores: np.ndarray, columns: Sequence[int], k: int) -> tuple[Candidate, ...]:
        """The top ``k`` of ``columns`` by score (noise-proof order, see ``stable_rank_key``),
        keeping one spelling per word."""
        ranked = sorted((stable_rank_key(float(scores[c]), int(c)), int(c)) for c in columns if np.isfinite(scores[c]))
        found, seen = [], set()
        for _, c in ranked:
            candidate = self.words[self.pool_rows[c]]
            if candidate.lower() not in seen:
                seen.add(candidate.lower())
                found.append((candidate, float(scores[c])))
        return tuple(Candidate(w, s, "vectors", rank) for rank, (w, s) in enumerate(found[:k]))
