"""``eda``: Easy Data Augmentation's four operations (Wei and Zou, 2019).

Each draw applies one operation, chosen uniformly among those enabled, ``max(1, int(alpha * n))``
times on a text of ``n`` words (``alpha`` per operation, 0.1 each by default, as in the paper):

- ``synonym`` (SR): replace that many distinct eligible words by a WordNet synonym;
- ``insert`` (RI): insert a synonym of a random eligible word at a random position;
- ``swap`` (RS): exchange two random words;
- ``delete`` (RD): delete each word with probability ``alpha`` (at least one word stays).

The original text stays exact around the edits (spacing, punctuation, casing), unlike the
reference's lower-cased, punctuation-stripped rewrite. A swap needs two words and a synonym
operation a word with synonyms; a draw that cannot apply is skipped and counted:

    >>> from tinyaug.augment.engine import Example
    >>> from tinyaug.augment.recipe import Recipe
    >>> swap = Eda(Recipe(variants_per_example=3), {"swap": 0.1}, lambda word: None)
    >>> variants, stats = swap.augment([Example(0, ("good film",)), Example(1, ("fine",))])
    >>> [v.texts[0] for v in variants[0]], dict(stats.skipped)
    (['good film', 'film good'], {'swap needs two words': 3})
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from tinyaug.augment.edits import TextState
from tinyaug.augment.methods.base import Skip, WordMethod
from tinyaug.augment.methods.synonyms import SynonymLookup, Synonyms
from tinyaug.augment.recipe import Recipe

OPERATIONS = ("synonym", "insert", "swap", "delete")
DEFAULT_ALPHA = 0.1
NEEDS_SYNONYMS = frozenset({"synonym", "insert"})


class Eda(WordMethod):
    name = "eda"
    source = "eda"

    def __init__(self, recipe: Recipe, alphas: Mapping[str, float], lookup: SynonymLookup | None,
                 step: int = 0, candidate_filter: Any = None) -> None:
        super().__init__(recipe, step)
        unknown = sorted(set(alphas) - set(OPERATIONS))
        if unknown or not alphas:
            raise ValueError(f"eda operations are {', '.join(OPERATIONS)}; got {', '.join(unknown) or 'none'}")
        if any(not 0 < a <= 1 for a in alphas.values()):
            raise ValueError("each eda alpha must be in (0, 1]")
        if NEEDS_SYNONYMS & set(alphas) and lookup is None:
            raise ValueError("eda's synonym and insert operations need WordNet")
        self.alphas = {op: float(alphas[op]) for op in OPERATIONS if op in alphas}
        self.synonyms = Synonyms(recipe, lookup or (lambda word: None), step, candidate_filter)

    def draw(self, state: TextState, rng: np.random.Generator) -> None:
        operations = list(self.alphas)
        operation = operations[int(rng.integers(len(operations)))]
        words = ([i for i, word in enumerate(state.words) if word.text.isalpha()] if not state.slots
                 else [i for i in state.live() if state.current(i).isalpha()])
        alpha = self.alphas[operation]
        times = max(1, int(alpha * len(words)))
        getattr(self, f"_{operation}")(state, rng, words, times, alpha)

    def _synonyms_of(self, state: TextState, index: int) -> list[str]:
        return [c.word for c in self.synonyms.candidates(state.current(index).lower())]

    def _synonym(self, state: TextState, rng: np.random.Generator, words: list[int], times: int, alpha: float) -> None:
        replaced = 0
        for index in rng.permutation(self.eligible(state)).tolist():
            options = self._synonyms_of(state, index)
            if options:
                state.replace(index, options[int(rng.integers(len(options)))], source=self.source,
                              rank=-1, step=self.step)
                replaced += 1
                if replaced == times:
                    return
        if not replaced:
            raise Skip("no word has a synonym")

    def _insert(self, state: TextState, rng: np.random.Generator, words: list[int], times: int, alpha: float) -> None:
        eligible = self.eligible(state)
        with_synonyms = [i for i in eligible if self._synonyms_of(state, i)]
        if not with_synonyms:
            raise Skip("no word has a synonym")
        for _ in range(times):
            options = self._synonyms_of(state, with_synonyms[int(rng.integers(len(with_synonyms)))])
            word = options[int(rng.integers(len(options)))]
            state.insert(int(rng.integers(len(state.words) + 1)), word, source=self.source, step=self.step)

    def _swap(self, state: TextState, rng: np.random.Generator, words: list[int], times: int, alpha: float) -> None:
        if len(words) < 2:
            raise Skip("swap needs two words")
        for _ in range(times):  # two distinct words, uniformly
            a = int(rng.integers(len(words)))
            b = int(rng.integers(len(words) - 1))
            b += b >= a
            state.swap(words[a], words[b], source=self.source, step=self.step)

    def _delete(self, state: TextState, rng: np.random.Generator, words: list[int], times: int, alpha: float) -> None:
        if len(words) < 2:
            raise Skip("delete needs two words")
        drop = rng.random(len(words)) < alpha
        if drop.all():
            drop[int(rng.integers(len(words)))] = False
        for index, dropped in zip(words, drop):
            if dropped:
                state.delete(index, source=self.source, step=self.step)
