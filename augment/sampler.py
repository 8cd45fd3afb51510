"""Seeded sampling of replacements: which words change in each variant, and to what.

Each example draws from its own generator, seeded by (recipe seed, example id), so its rows
do not depend on batch size, process count, shard split or the order of examples:

    >>> from tinyaug.augment.sources import Candidate
    >>> good = (Candidate("fine", .5, "mlm", 0), Candidate("nice", .3, "mlm", 1))
    >>> draws = draw_replacements([good, (), good], n=3, p=0.5, rng=example_rng(0, 7))
    >>> draws == draw_replacements([good, (), good], n=3, p=0.5, rng=example_rng(0, 7))
    True
    >>> all(set(d) <= {0, 2} for d in draws)  # word 1 has no candidates
    True

Not here: rendering the text or dropping duplicate variants (``engine``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyaug.augment.sources import Candidate


def example_rng(seed: int, example_id: int) -> np.random.Generator:
    """The generator of one example: a function of (seed, example id) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, example_id]))


def column_groups(columns: int, pair_mode: str) -> list[list[int]]:
    """The text columns each draw varies: one at a time (pair mode ``each``) or all at once.

    >>> column_groups(2, "each"), column_groups(2, "all")
    ([[0], [1]], [[0, 1]])
    """
    return [[c] for c in range(columns)] if pair_mode == "each" else [list(range(columns))]


def draw_replacements(candidates: Sequence[Sequence[Candidate]], n: int, p: float,
                      rng: np.random.Generator) -> list[dict[int, Candidate]]:
    """``n`` draws; in each, every word with candidates is replaced with probability ``p`` by a
    uniform pick among its candidates. Returns, per draw, word index -> chosen candidate.

    The generator is consumed in a fixed pattern (two uniforms per word with candidates per
    draw), so the draws depend only on the candidate list lengths and the generator.
    """
    words = [i for i, c in enumerate(candidates) if c]
    replace = rng.random((n, len(words))) < p  # (draw, word)
    pick = rng.random((n, len(words)))  # (draw, word) -> uniform index below
    draws = []
    for d in range(n):
        chosen = {}
        for j, i in enumerate(words):
            if replace[d, j]:
                options = candidates[i]
                chosen[i] = options[min(int(pick[d, j] * len(options)), len(options) - 1)]
        draws.append(chosen)
    return draws
