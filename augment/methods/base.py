"""The method protocol, and the base of the methods that edit words one draw at a time.

A method turns a batch of examples into variants with provenance (``Method.augment``): TinyBERT's
recipe (``engine.Augmenter``, batched through a masked LM) and the model-free methods here
(``random``, ``synonyms``, ``eda``) alike, so the shard builder, the card and the viewers need not
know which one ran. A model-free method is a ``WordMethod``: it edits a ``TextState`` in one draw,
and this base draws ``N`` variants per example (per text column in pair mode ``each``) from the
example's own generator, renders them, drops duplicates and counts. The same ``draw`` serves as a
later step of a composition (``compose``).

Not here: which words each method edits (its own module), loading WordNet or a vocabulary
(``tinyaug.pipelines``).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from tinyaug.augment.collector import without_cycle_collection
from tinyaug.augment.edits import TextState, render
from tinyaug.augment.engine import Change, Example, Stats, Variant
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sampler import column_groups, example_rng
from tinyaug.augment.words import Word, bert_normalizer, is_eligible, match_case, split_words


class Method(Protocol):
    """Anything that turns examples into their variants (the original first) and statistics."""

    name: str

    def augment(self, examples: Sequence[Example]) -> tuple[list[list[Variant]], Stats]: ...


class Skip(Exception):
    """A draw that cannot apply to this text (say, a swap in a one-word sentence); counted."""


def step_rng(seed: int, example_id: int, step: int, variant: int) -> np.random.Generator:
    """The generator of one later step of a composition on one variant."""
    return np.random.default_rng(np.random.SeedSequence([seed, example_id, 1 + step, variant]))


class WordMethod:
    """Base of the model-free methods: subclasses set ``name``/``source`` and write ``draw``."""

    name = ""
    source = ""

    def __init__(self, recipe: Recipe, step: int = 0) -> None:
        self.recipe = recipe
        self.step = step
        self.normalizer = bert_normalizer(True)

    def words(self, text: str) -> list[Word]:
        return split_words(text, self.normalizer)

    def draw(self, state: TextState, rng: np.random.Generator) -> None:
        """Edit ``state`` once (raise ``Skip`` when the method cannot apply to it)."""
        raise NotImplementedError

    @staticmethod
    def eligible(state: TextState) -> list[int]:
        """TinyBERT's positions: live words that are alphabetic, Latin and not stopwords."""
        return [i for i, ok in enumerate(state.eligible) if ok]

    def count_example(self, stats: Stats, eligible: int) -> None:
        """One example more, with its eligible words (all routed to this method's source)."""
        stats.examples += 1
        stats.eligible_words += eligible
        stats.routed[self.source] += eligible

    def augment(self, examples: Sequence[Example]) -> tuple[list[list[Variant]], Stats]:
        stats = Stats()
        with without_cycle_collection():
            return [self.sample(example, stats) for example in examples], stats

    def sample(self, example: Example, stats: Stats) -> list[Variant]:
        recipe = self.recipe
        rng = example_rng(recipe.seed, example.id)
        words = [self.words(text) for text in example.texts]
        flags = [[is_eligible(w) for w in column] for column in words]
        eligible = [sum(column) for column in flags]
        self.count_example(stats, sum(eligible))
        groups = column_groups(len(example.texts), recipe.pair_mode)
        variants = [Variant(example.texts, ())]
        seen = {example.texts}
        for columns in groups:
            for _ in range(recipe.variants_per_example):
                states = {c: TextState(c, example.texts[c], words[c], flags[c]) for c in columns}
                draw_variant(variants, seen, example.texts, states, lambda: [self.draw(s, rng) for s in states.values()],
                             stats, sum(eligible[c] for c in columns))
        stats.rows_out += len(variants)
        return variants


def draw_variant(variants: list[Variant], seen: set, texts: tuple[str, ...], states: dict[int, TextState],
                 draw: Any, stats: Stats, eligible: int) -> None:
    """Run ``draw()`` (it edits ``states``), then keep and count the variant they describe (unless
    it repeats one); a draw that raises ``Skip`` is counted and leaves no variant."""
    try:
        draw()
    except Skip as reason:
        stats.skipped[str(reason)] += 1
        return
    variant = record(variants, seen, texts, states)
    if variant is not None:
        count(stats, variant, eligible)


def record(variants: list[Variant], seen: set, texts: tuple[str, ...],
           states: dict[int, TextState]) -> Variant | None:
    """Append the variant ``states`` describe, unless it repeats one already drawn (or the
    original); return it, or None."""
    new = list(texts)
    changes = []
    for c, state in sorted(states.items()):
        column_changes = state.changes()
        changes += column_changes
        new[c] = render(state.text, column_changes)
    return keep(variants, seen, tuple(new), changes)


def keep(variants: list[Variant], seen: set, texts: tuple[str, ...], changes: list[Change]) -> Variant | None:
    """Append the variant (``texts`` with its ``changes``) unless its texts were drawn already (or
    are the original's); return it, or None."""
    if texts in seen:
        return None
    seen.add(texts)
    variants.append(Variant(texts, tuple(changes)))
    return variants[-1]


def count(stats: Stats, variant: Variant, eligible: int) -> None:
    """Count a kept variant's edits (by source and by kind) and the eligible words it varied."""
    stats.replaced.update(change.source for change in variant.changes)
    stats.edit_kinds.update(change.kind for change in variant.changes)
    stats.variant_eligible_words += eligible


class Substitution(WordMethod):
    """A method that replaces eligible words, each with probability ``p`` in a draw (``random``,
    ``synonyms``): subclasses write ``pick``. Alone, all ``N`` draws of a text are picked at once
    and rendered span by span as TinyBERT's are; as a later step of a composition, ``draw`` edits a
    ``TextState``."""

    def pick(self, words: list[str], rng: np.random.Generator, n: int) -> list[dict[int, tuple[str, int]]]:
        """``n`` draws over ``words`` (lower case, the eligible ones): per draw, word index ->
        (replacement, rank)."""
        raise NotImplementedError

    def draw(self, state: TextState, rng: np.random.Generator) -> None:
        positions = self.eligible(state)
        chosen = self.pick([state.current(i).lower() for i in positions], rng, 1)[0]
        for j, (word, rank) in chosen.items():
            state.replace(positions[j], word, source=self.source, rank=rank, step=self.step)

    def sample(self, example: Example, stats: Stats) -> list[Variant]:
        recipe = self.recipe
        rng = example_rng(recipe.seed, example.id)
        words = [self.words(text) for text in example.texts]
        positions = [[i for i, w in enumerate(column) if is_eligible(w)] for column in words]
        self.count_example(stats, sum(map(len, positions)))
        groups = column_groups(len(example.texts), recipe.pair_mode)
        variants = [Variant(example.texts, ())]
        seen = {example.texts}
        n = recipe.variants_per_example
        for columns in groups:
            draws = {c: self.pick([words[c][i].norm.lower() for i in positions[c]], rng, n) for c in columns}
            for d in range(n):
                texts = list(example.texts)
                changes = []
                for c in columns:
                    column = [Change(c, i, words[c][i].start, words[c][i].end, words[c][i].text,
                                     match_case(w, words[c][i].text), self.source, rank, "replace", self.step)
                              for i, (w, rank) in sorted((positions[c][j], pair) for j, pair in draws[c][d].items())]
                    texts[c] = render(example.texts[c], column)
                    changes += column
                variant = keep(variants, seen, tuple(texts), changes)
                if variant is not None:
                    count(stats, variant, sum(len(positions[c]) for c in columns))
        stats.rows_out += len(variants)
        return variants
