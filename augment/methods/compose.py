"""Composition: one method's variants edited further by others (``tinybert+eda:swap``).

The first step draws each example's variants as it would alone; every later step (a model-free
``WordMethod``) edits each of those variants once more, in the text columns the variant changed,
from a generator of its own (seed, example, step, variant). Each edit records the step that made
it (0 for the first), so provenance says which method did what; a word edited twice keeps the
later edit. A later step that cannot apply to a variant (a swap in a one-word text) leaves that
variant out and counts it. Variants that end up equal to the original or to each other are
dropped, as always, and the edit counts are those of the variants kept.

Not here: the methods themselves.
"""

from __future__ import annotations

import collections
from typing import Sequence

from tinyaug.augment.edits import TextState
from tinyaug.augment.engine import Example, Stats, Variant
from tinyaug.augment.collector import without_cycle_collection
from tinyaug.augment.methods.base import Method, WordMethod, draw_variant, step_rng
from tinyaug.augment.words import is_eligible


class Compose:
    """``first`` then each of ``later`` on every variant."""

    def __init__(self, first: Method, later: Sequence[WordMethod], seed: int) -> None:
        if not later:
            raise ValueError("a composition needs at least two steps")
        self.first = first
        self.later = list(later)
        self.seed = seed
        self.name = "+".join([first.name, *(step.name for step in later)])

    def augment(self, examples: Sequence[Example]) -> tuple[list[list[Variant]], Stats]:
        with without_cycle_collection():
            return self._augment(examples)

    def _augment(self, examples: Sequence[Example]) -> tuple[list[list[Variant]], Stats]:
        drawn, stats = self.first.augment(examples)
        # recounted below from the variants that survive every step
        stats.replaced, stats.edit_kinds = collections.Counter(), collections.Counter()
        stats.variant_eligible_words = 0
        out = []
        for example, variants in zip(examples, drawn):
            kept = self._further(example, variants, stats)
            stats.rows_out += len(kept) - len(variants)
            out.append(kept)
        return out, stats

    def _further(self, example: Example, variants: list[Variant], stats: Stats) -> list[Variant]:
        words = [self.later[0].words(text) for text in example.texts]
        eligible = [sum(is_eligible(w) for w in column) for column in words]
        kept = [variants[0]]
        seen = {example.texts}
        for v, variant in enumerate(variants[1:], start=1):
            columns = sorted({change.column for change in variant.changes})
            states = {c: TextState.from_changes(c, example.texts[c], words[c], variant.changes) for c in columns}

            def steps(v: int = v, states: dict = states) -> None:
                for s, method in enumerate(self.later, start=1):
                    rng = step_rng(self.seed, example.id, s, v)
                    for state in states.values():
                        method.draw(state, rng)

            draw_variant(kept, seen, example.texts, states, steps, stats, sum(eligible[c] for c in columns))
        return kept

