"""``random``: random vocabulary words at TinyBERT's positions and rate, the control method.

Every eligible word (alphabetic, Latin, not a stopword: the words TinyBERT would replace) is
replaced with probability ``p`` by a word drawn uniformly from a vocabulary (by default the most
frequent alphabetic words of the word vectors). It changes as many words as TinyBERT does, in
the same places, but with words chosen by no model, so an ablation can tell whether the masked
LM's choice matters or only the amount of change:

    >>> from tinyaug.augment.engine import Example
    >>> from tinyaug.augment.recipe import Recipe
    >>> method = RandomWords(Recipe(variants_per_example=2, replace_prob=1.0), ["car", "tree"])
    >>> variants, stats = method.augment([Example(0, ("the movie was great",))])
    >>> [change.source for change in variants[0][1].changes], stats.edit_kinds["replace"] >= 2
    (['random', 'random'], True)

Candidate constraints (a similarity floor, no antonyms) apply when given: up to ``K`` words are
drawn for a replaced word and the first that passes is used.

Not here: where the vocabulary comes from (``tinyaug.pipelines``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyaug.augment.constraints import CandidateFilter
from tinyaug.augment.methods.base import Substitution
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Candidate


class RandomWords(Substitution):
    name = "random"
    source = "random"

    def __init__(self, recipe: Recipe, vocabulary: Sequence[str], step: int = 0,
                 candidate_filter: CandidateFilter | None = None) -> None:
        super().__init__(recipe, step)
        if not vocabulary:
            raise ValueError("the random method needs a vocabulary of at least one word")
        self.vocabulary = list(vocabulary)
        self.candidate_filter = candidate_filter if candidate_filter is not None and candidate_filter.active else None

    def pick(self, words: list[str], rng: np.random.Generator, n: int) -> list[dict[int, tuple[str, int]]]:
        replace = rng.random((n, len(words))) < self.recipe.replace_prob  # (draw, word)
        picks = rng.integers(0, len(self.vocabulary), size=(n, len(words)))
        draws: list[dict[int, tuple[str, int]]] = [{} for _ in range(n)]
        for d, j in zip(*(axis.tolist() for axis in np.nonzero(replace))):
            word = self._pick(words[j], int(picks[d, j]), rng)
            if word is not None:
                draws[d][j] = (word, -1)
        return draws

    def _pick(self, original: str, pick: int, rng: np.random.Generator) -> str | None:
        size = len(self.vocabulary)
        if self.candidate_filter is None:
            word = self.vocabulary[pick]
            return self.vocabulary[(pick + 1) % size] if word == original and size > 1 else word
        extra = rng.integers(0, size, size=self.recipe.candidates_per_word - 1)
        drawn = [self.vocabulary[i] for i in (pick, *extra) if self.vocabulary[i] != original]
        kept = self.candidate_filter(original, [Candidate(w, 0.0, self.source, r) for r, w in enumerate(drawn)], 1)
        return kept[0].word if kept else None
