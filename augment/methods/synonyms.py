"""``synonyms``: WordNet synonyms at TinyBERT's positions and rate.

Every eligible word with synonyms is replaced with probability ``p`` by one of its first ``K``
synonyms, picked uniformly (TextAttack's ``WordNetAugmenter``, nlpaug's ``SynonymAug``, with
TinyBERT's sampling). ``lookup`` is any word -> ranked synonyms function; the pipelines read
Debian's WordNet through nltk (every part of speech: nltk's tagger needs a model download, so no
part-of-speech agreement offline):

    >>> from tinyaug.augment.engine import Example
    >>> from tinyaug.augment.recipe import Recipe
    >>> method = Synonyms(Recipe(variants_per_example=1, replace_prob=1.0), {"film": ["movie"]}.get)
    >>> method.augment([Example(0, ("a Film",))])[0][0][1].texts
    ('a Movie',)

The candidate constraints (similarity floor, antonyms) filter the synonym lists when given.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tinyaug.augment.constraints import FETCH_FACTOR, CandidateFilter
from tinyaug.augment.methods.base import Substitution
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sampler import draw_replacements
from tinyaug.augment.sources import Candidate

SynonymLookup = Callable[[str], "Sequence[str] | None"]


class Synonyms(Substitution):
    name = "synonyms"
    source = "wordnet"

    def __init__(self, recipe: Recipe, lookup: SynonymLookup, step: int = 0,
                 candidate_filter: CandidateFilter | None = None) -> None:
        super().__init__(recipe, step)
        self.lookup = lookup
        self.candidate_filter = candidate_filter if candidate_filter is not None and candidate_filter.active else None
        self._cache: dict[str, tuple[Candidate, ...]] = {}

    def candidates(self, word: str) -> tuple[Candidate, ...]:
        """The ranked synonyms of ``word`` (lowercase), at most ``K``, after the constraints."""
        if word not in self._cache:
            k = self.recipe.candidates_per_word
            found = [w for w in dict.fromkeys(self.lookup(word) or ()) if w != word and w.isalpha()]
            listed = [Candidate(w, 0.0, self.source, r) for r, w in enumerate(found[:k * FETCH_FACTOR])]
            kept = self.candidate_filter(word, listed, k) if self.candidate_filter else tuple(listed[:k])
            self._cache[word] = tuple(kept)
        return self._cache[word]

    def pick(self, words: list[str], rng: np.random.Generator, n: int) -> list[dict[int, tuple[str, int]]]:
        draws = draw_replacements([self.candidates(word) for word in words], n, self.recipe.replace_prob, rng)
        return [{j: (c.word, c.rank) for j, c in chosen.items()} for chosen in draws]
