"""Edits: a variant is its original plus span edits, and the state a method edits a text in.

Every method speaks one form. An edit (``engine.Change``) is a character span of the *original*
text, what it held and what it holds now, its kind (``replace``, ``insert``, ``delete``,
``swap``), the source that proposed it with its rank, and the composition step that made it.
Spans never overlap, so the variant is the original with each span rewritten:

    >>> from tinyaug.augment.words import split_words
    >>> text = "the cat sat on the mat ."
    >>> state = TextState(0, text, split_words(text))
    >>> state.replace(1, "dog", source="random", rank=-1, step=0)
    >>> state.delete(2, source="eda", step=1)
    >>> state.insert(5, "red", source="eda", step=1)
    >>> state.render()
    'the dog on the red mat .'
    >>> [(c.kind, c.original, c.replacement) for c in state.changes()]
    [('replace', 'cat', 'dog'), ('delete', ' sat', ''), ('insert', '', 'red ')]
    >>> render(text, state.changes()) == state.render()
    True

Swaps exchange what two words hold; a word touched by two steps keeps the last edit's
provenance. Not here: which words a method edits (``methods``).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from tinyaug.augment.engine import Change
from tinyaug.augment.stopwords import STOPWORDS
from tinyaug.augment.words import Word, is_eligible, match_case

KINDS = ("replace", "insert", "delete", "swap")


@dataclasses.dataclass
class _Slot:
    word: Word  # the original word (its span in the original text)
    text: str  # what it holds now; "" once deleted
    kind: str = ""  # the last edit's kind ("" untouched)
    source: str = ""
    rank: int = -1
    step: int = 0
    inserted: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)  # before it: (word, source, step)


class TextState:
    """One text column of a variant being edited: the original's words, and what the edits made of
    those they touched (kept sparse: a draw touches a few words of many)."""

    def __init__(self, column: int, text: str, words: Sequence[Word], eligible: Sequence[bool] | None = None) -> None:
        self.column = column
        self.text = text
        self.words = words
        self.slots: dict[int, _Slot] = {}  # word index -> what the edits made of it
        self.tail: list[tuple[str, str, int]] = []  # insertions after the last word
        # per word: may a method replace what it holds now (TinyBERT's rule, kept up to date by the edits)
        self.eligible = list(eligible) if eligible is not None else [is_eligible(w) for w in self.words]

    @classmethod
    def from_changes(cls, column: int, text: str, words: Sequence[Word], changes: Iterable[Change]) -> "TextState":
        """The state a variant's ``changes`` (of this column) describe, for a further step to edit."""
        state = cls(column, text, words)
        for change in changes:
            if change.column != column:
                continue
            if change.kind == "insert":
                state.insert(change.word_index, change.replacement.strip(), source=change.source, step=change.step)
                continue
            slot = state._slot(change.word_index)
            slot.text = "" if change.kind == "delete" else change.replacement
            state.eligible[change.word_index] = bool(slot.text) and _eligible_text(slot.text)
            slot.kind, slot.source, slot.rank, slot.step = change.kind, change.source, change.rank, change.step
        return state

    def _slot(self, index: int) -> _Slot:
        slot = self.slots.get(index)
        if slot is None:
            slot = self.slots[index] = _Slot(self.words[index], self.words[index].text)
        return slot

    def live(self) -> list[int]:
        """Indices of the words still present (not deleted)."""
        if not self.slots:
            return list(range(len(self.words)))
        return [i for i in range(len(self.words)) if i not in self.slots or self.slots[i].text]

    def current(self, index: int) -> str:
        slot = self.slots.get(index)
        return self.words[index].text if slot is None else slot.text

    def replace(self, index: int, word: str, *, source: str, rank: int, step: int, cased: bool = True) -> None:
        slot = self._slot(index)
        slot.text = match_case(word, slot.word.text) if cased else word
        slot.kind, slot.source, slot.rank, slot.step = "replace", source, rank, step
        self.eligible[index] = _eligible_text(slot.text)

    def delete(self, index: int, *, source: str, step: int) -> None:
        slot = self._slot(index)
        slot.text, slot.kind, slot.source, slot.rank, slot.step = "", "delete", source, -1, step
        self.eligible[index] = False

    def insert(self, index: int, word: str, *, source: str, step: int) -> None:
        """Insert ``word`` before word ``index`` (``len(words)``: after the last word)."""
        (self.tail if index >= len(self.words) else self._slot(index).inserted).append((word, source, step))

    def swap(self, a: int, b: int, *, source: str, step: int) -> None:
        first, second = self._slot(a), self._slot(b)
        first.text, second.text = second.text, first.text
        self.eligible[a], self.eligible[b] = self.eligible[b], self.eligible[a]
        for slot in (first, second):
            slot.kind, slot.source, slot.rank, slot.step = "swap", source, -1, step

    def changes(self) -> list[Change]:
        """The edits against the original, in text order, with non-overlapping spans."""
        out: list[Change] = []
        claimed = 0  # characters before this are covered by an earlier edit
        for i in sorted(self.slots):
            slot = self.slots[i]
            word = slot.word
            deleted = not slot.text
            attached = word.start > 0 and not self.text[word.start - 1].isspace()  # "twice|." : no space to use
            for n, (new, source, step) in enumerate(slot.inserted):
                # a space on the side that has none; words inserted before a deleted word take its place
                last = n == len(slot.inserted) - 1
                spaced = " " + new if attached and n == 0 else new
                spaced += "" if (attached and last) or (deleted and last) else " "
                out.append(Change(self.column, i, word.start, word.start, "", spaced, source, -1, "insert", step))
            if slot.text == word.text and slot.kind in ("", "replace", "swap"):
                continue
            if deleted:  # a deletion takes the spaces before it (else those after it), once
                start, end = word.start, word.end
                preceding = len(self.text[:start]) - len(self.text[:start].rstrip())
                following = len(self.text[end:]) - len(self.text[end:].lstrip())
                if slot.inserted:  # its insertions stand where it stood, between the same spaces
                    pass
                elif preceding and start - preceding >= claimed:
                    start -= preceding
                elif following and end + following < len(self.text):
                    end += following
                out.append(Change(self.column, i, start, end, self.text[start:end], "", slot.source, -1, "delete", slot.step))
                claimed = end
                continue
            out.append(Change(self.column, i, word.start, word.end, word.text, slot.text, slot.source, slot.rank,
                              slot.kind, slot.step))
            claimed = word.end
        end = self.words[-1].end if self.words else len(self.text)
        for new, source, step in self.tail:
            out.append(Change(self.column, len(self.words), end, end, "", " " + new, source, -1, "insert", step))
        return out

    def render(self) -> str:
        return render(self.text, self.changes())


def _eligible_text(text: str) -> bool:
    if text.isascii():  # the common case, without the Latin-script check
        return text.isalpha() and text.lower() not in STOPWORDS
    return is_eligible(Word(text, text.lower(), 0, 0))


def render(text: str, changes: Iterable[Change]) -> str:
    """``text`` with each change's span rewritten (insertions before a replacement at the same
    position; changes of other columns must be filtered out by the caller)."""
    parts: list[str] = []
    cursor = 0
    for change in sorted(changes, key=lambda c: (c.start, c.end)):
        parts.append(text[cursor:change.start])
        parts.append(change.replacement)
        cursor = max(cursor, change.end)
    parts.append(text[cursor:])
    return "".join(parts)
