"""Words with character offsets, eligibility, casing, and span-faithful rewriting.

Words are split exactly as BERT's basic tokenizer splits them (whitespace, punctuation, CJK
characters; accents stripped and lowercased for uncased models), using the normalizer and
pre-tokenizer of the ``tokenizers`` library, which report offsets into the *original* string:

    >>> [(w.text, w.norm, w.start, w.end) for w in split_words("Héllo, WORLD!")]
    [('Héllo', 'hello', 0, 5), (',', ',', 5, 6), ('WORLD', 'world', 7, 12), ('!', '!', 12, 13)]

A variant rewrites only the spans of replaced words; every other character of the original
(spacing, punctuation, quotes, casing) is kept:

    >>> text = 'He said "GREAT movie", twice.'
    >>> words = split_words(text)
    >>> rewrite(text, words, {3: "fine", 4: "film"})
    'He said "FINE film", twice.'

Not here: which words get candidates (``routing``) or how variants are drawn (``sampler``).
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from typing import Mapping, Sequence

from tokenizers import PreTokenizedString
from tokenizers.normalizers import BertNormalizer, Normalizer
from tokenizers.pre_tokenizers import BertPreTokenizer, PreTokenizer

from tinyaug.augment.stopwords import STOPWORDS


@dataclasses.dataclass(frozen=True, slots=True)
class Word:
    """One basic-tokenizer word: its original text, its normalized form and its span."""

    text: str  # exactly original[start:end]
    norm: str  # normalized form the model sees ("Héllo" -> "hello" for uncased models)
    start: int  # character offsets into the original string
    end: int


@functools.lru_cache(maxsize=None)
def bert_normalizer(lowercase: bool = True) -> Normalizer:
    """BERT's basic-tokenizer normalization: clean text, split CJK, strip accents if uncased."""
    return BertNormalizer(clean_text=True, handle_chinese_chars=True,
                          strip_accents=lowercase, lowercase=lowercase)


_BERT_PRE_TOKENIZER = BertPreTokenizer()


def split_words(text: str, normalizer: Normalizer | None = None,
                pre_tokenizer: PreTokenizer | None = None) -> list[Word]:
    """Split ``text`` into words with offsets into ``text``.

    ``normalizer`` and ``pre_tokenizer`` default to uncased BERT's; pass a fast tokenizer's
    ``backend_tokenizer.normalizer`` / ``.pre_tokenizer`` to split the way that model does.
    """
    normalizer = normalizer or bert_normalizer(True)
    pre = PreTokenizedString(text)
    pre.normalize(normalizer.normalize)
    (pre_tokenizer or _BERT_PRE_TOKENIZER).pre_tokenize(pre)
    return [Word(text[start:end], norm, start, end)
            for norm, (start, end), _ in pre.get_splits(offset_referential="original",
                                                       offset_type="char")]


def is_latin(text: str) -> bool:
    """Whether every character of ``text`` is a letter of the Latin script (ASCII or accented).

    >>> [is_latin(w) for w in ("movie", "café", "Straße", "фильм", "映画", "λόγος")]
    [True, True, True, False, False, False]
    """
    return all(ch.isascii() or unicodedata.name(ch, "").startswith("LATIN ") for ch in text)


def is_eligible(word: Word, stopwords: frozenset[str] = STOPWORDS) -> bool:
    """A word may be replaced when it is alphabetic, of the Latin script, and not a stopword.

    TinyBERT's rule is ASCII letters. Latin letters with accents ("café", "Straße") stay eligible
    here, and get candidates from the whole vocabulary, while an ASCII word gets only ASCII
    candidates (``mlm.ascii_mask``, ``vectors``). Words of other scripts (Cyrillic, Greek, CJK,
    ...) are not eligible: the English masked LMs and word vectors that TinyBERT uses would offer
    them English words.
    """
    return (word.text.isalpha() and word.norm.isalpha() and is_latin(word.text)
            and word.norm.lower() not in stopwords)


def casing(word: str) -> str:
    """The casing pattern of ``word``: ``"upper"``, ``"title"``, ``"lower"`` or ``"mixed"``.

    >>> [casing(w) for w in ("NASA", "Paris", "movie", "iPhone", "A")]
    ['upper', 'title', 'lower', 'mixed', 'title']
    """
    if len(word) > 1 and word.isupper():
        return "upper"
    if word[:1].isupper() and (len(word) == 1 or word[1:].islower()):
        return "title"
    if word.islower():
        return "lower"
    return "mixed"


def match_case(replacement: str, original: str) -> str:
    """Give ``replacement`` the casing pattern of ``original``; mixed case keeps the candidate's.

    >>> match_case("film", "MOVIE"), match_case("film", "Movie"), match_case("Film", "movie")
    ('FILM', 'Film', 'film')
    """
    pattern = casing(original)
    if pattern == "upper":
        return replacement.upper()
    if pattern == "title":
        return replacement[:1].upper() + replacement[1:].lower()
    if pattern == "lower":
        return replacement.lower()
    return replacement


def rewrite(text: str, words: Sequence[Word], replacements: Mapping[int, str]) -> str:
    """``text`` with word ``i`` replaced by ``replacements[i]`` (cased like the original word).

    Only the replaced spans change; everything between them is copied from ``text``.
    """
    if not replacements:
        return text
    parts: list[str] = []
    cursor = 0
    for index in sorted(replacements):
        word = words[index]
        parts.append(text[cursor:word.start])
        parts.append(match_case(replacements[index], word.text))
        cursor = word.end
    parts.append(text[cursor:])
    return "".join(parts)
