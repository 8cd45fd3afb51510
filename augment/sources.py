"""The candidate protocol shared by every source, and TinyBERT's routing rule.

A source answers a batch of ``Query`` objects with one candidate list each. The masked-LM
source reads the sentence's pieces and the masked position; the word-vector source reads only
the word. Routing decides which source a word goes to, from its WordPiece split alone:

    >>> route(1), route(3), route(0)
    ('mlm', 'vectors', None)

Not here: the sources themselves (``mlm``, ``vectors``) and sampling.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol, Sequence

SourceName = Literal["mlm", "vectors"]


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A replacement for one word: the word, its score, where it came from and its rank."""

    word: str
    score: float  # masked LM: probability of the token; vectors: cosine similarity
    source: SourceName
    rank: int  # 0 = best candidate after filtering


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One word to find candidates for.

    ``pieces`` are the token ids of the whole sentence (no special tokens) and ``position`` the
    index of the word's single piece among them; the vector source ignores both.
    """

    word: str  # normalized word, e.g. "movie"
    pieces: tuple[int, ...] = ()
    position: int = -1
    # the positions of every masked-LM word of its sentence, which ``masks_per_context`` > 1 masks
    # in groups (``mlm.spread``); () : those asked with the same pieces in the same call
    sentence_positions: tuple[int, ...] = ()


class CandidateSource(Protocol):
    """Anything that turns queries into ranked candidate lists."""

    name: SourceName

    def candidates(self, queries: Sequence[Query], k: int) -> list[tuple[Candidate, ...]]:
        """Up to ``k`` candidates per query, best first, never the query word itself."""
        ...


def route(piece_count: int, is_unknown: bool = False) -> SourceName | None:
    """TinyBERT's rule: a word of one WordPiece goes to the masked LM, of several to the vectors.

    A word the tokenizer maps to its unknown token is not a real single piece: it goes to the
    vectors too (the reference would mask ``[UNK]`` and ask the model to predict it).
    """
    if piece_count == 1 and not is_unknown:
        return "mlm"
    if piece_count >= 1:
        return "vectors"
    return None
