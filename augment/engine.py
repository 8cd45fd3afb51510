"""The augmentation engine: from examples (one or more texts each) to variants with provenance.

For a batch of examples it (1) splits each distinct text into words and WordPieces, (2) routes
every eligible word (TinyBERT's rule) to the masked LM or the word vectors, (3) asks each
source once for the whole batch, (4) draws variants per example from that example's own
generator, renders them span by span and drops duplicates. The original is variant 0.

Pairs: with ``pair_mode="each"`` (the default, as the reference minus its in-place bug) each
text column is varied in turn with the others left as they are, so an example yields up to
``1 + N * columns`` rows; with ``"all"`` every draw varies every column, up to ``1 + N`` rows.

Not here: reading or writing datasets (``tinyaug.pipelines.augmentation.build``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import copy
import dataclasses
import logging
import time
from typing import Any, Iterable, Iterator, Sequence

from tinyaug.augment.constraints import FETCH_FACTOR, CandidateFilter
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sampler import column_groups, draw_replacements, example_rng
from tinyaug.augment.sources import Candidate, CandidateSource, Query, route
from tinyaug.augment.words import Word, bert_normalizer, is_eligible, match_case, rewrite, split_words

logger = logging.getLogger(__name__)

# why an eligible word has no candidates
NO_CANDIDATES_UNKNOWN = "unknown_to_vectors"  # several pieces and not in the vectors
NO_CANDIDATES_BEYOND = "beyond_max_length"  # past what fits in the model's maximum length
NO_CANDIDATES_EMPTY = "empty_list"  # the source returned nothing after filtering
NO_CANDIDATES_FILTERED = "all_filtered"  # the recipe's constraints (similarity, antonyms) removed every one
NO_CANDIDATES_NO_PIECES = "no_word_pieces"  # the tokenizer produced no piece for the word


@dataclasses.dataclass(frozen=True, slots=True)
class Example:
    """One input row: a stable id (seeds its generator) and its text columns, in order."""

    id: int
    texts: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One edit of a variant: a span of the original text and what it holds now (``edits``)."""

    column: int  # index into the example's texts
    word_index: int  # index of the word among the text's words
    start: int  # character span of the word in the original text
    end: int
    original: str  # the original word as written
    replacement: str  # the replacement as written (cased like the original)
    source: str  # the source that proposed it: "mlm", "vectors", "wordnet", "random", "eda", ...
    rank: int  # rank of the candidate in its list (0 = best; -1 where a source does not rank)
    kind: str = "replace"  # "replace", "insert", "delete" or "swap" (``edits``)
    step: int = 0  # the composition step that made it (0 for a single method)

    def to_dict(self) -> dict[str, Any]:
        # its fields are scalars: no deep copy (``dataclasses.asdict`` costs 2% of a run, a row at a time)
        return {name: getattr(self, name) for name in _CHANGE_FIELDS}


_CHANGE_FIELDS = tuple(field.name for field in dataclasses.fields(Change))


@dataclasses.dataclass(frozen=True, slots=True)
class Variant:
    """One output row's texts; variant 0 is the original with no changes."""

    texts: tuple[str, ...]
    changes: tuple[Change, ...]


@dataclasses.dataclass
class TextPlan:
    """A text split into words, with each word's route and candidates (empty if none)."""

    text: str
    words: list[Word]
    routes: list[str | None]  # per word: "mlm", "vectors" or None (not eligible)
    candidates: list[tuple[Candidate, ...]]  # per word
    missing: dict[int, str]  # eligible word index -> why it has no candidates

    @property
    def eligible(self) -> int:
        return sum(r is not None for r in self.routes)


@dataclasses.dataclass
class Stats:
    """Counts that the dataset card reports; additive over batches and shards."""

    examples: int = 0
    rows_out: int = 0
    eligible_words: int = 0  # eligible word occurrences in the source texts
    routed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    no_candidates: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    no_candidate_words: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    replaced: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    variant_eligible_words: int = 0  # eligible words in the varied columns of variant rows
    edit_kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # kind -> edits
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # why a draw could not apply

    def add(self, other: "Stats") -> None:
        for f in dataclasses.fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, collections.Counter):
                mine.update(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))

    @property
    def replacement_rate(self) -> float:
        """Replaced words / eligible words, over the varied columns of variant rows."""
        return sum(self.replaced.values()) / self.variant_eligible_words if self.variant_eligible_words else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: dict(v) if isinstance(v := getattr(self, f.name), collections.Counter) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Stats":
        return cls(**{k: collections.Counter(v) if isinstance(v, dict) else v for k, v in data.items()})


@dataclasses.dataclass(frozen=True)
class _Routed:
    """Texts split, tokenized and routed, before any source is asked (see ``Augmenter.route_words``)."""

    distinct: list[str]
    mlm_queries: list[tuple[int, int, Query]]
    vector_queries: list[tuple[int, int, Query]]
    plans: list[TextPlan]
    seconds: float  # time it took (or, from a helper thread, time waited for it)


class Augmenter:
    """Plans and samples variants for batches of examples.

    ``tokenizer`` is the masked LM's fast tokenizer (it decides the WordPiece routing);
    ``mlm`` and ``vectors`` are candidate sources (see ``sources.CandidateSource``). It is the
    ``tinybert`` method (``tinyaug.augment.methods``).
    """

    name = "tinybert"

    def __init__(self, recipe: Recipe, tokenizer, mlm: CandidateSource, vectors: CandidateSource,
                 candidate_filter: CandidateFilter | None = None) -> None:
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.mlm = mlm
        self.vectors = vectors
        self.candidate_filter = candidate_filter if candidate_filter is not None and candidate_filter.active else None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        lower = "lowercase=True" in repr(getattr(backend, "normalizer", "")) or backend is None
        self.normalizer = bert_normalizer(lower)
        self.unknown_id = tokenizer.unk_token_id
        self.timings: collections.Counter = collections.Counter()  # stage -> seconds spent

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start

    def fits(self, position: int) -> bool:
        fits = getattr(self.mlm, "fits", None)
        return fits(position) if fits is not None else True

    def plan(self, texts: Sequence[str]) -> list[TextPlan]:
        """Words, routes and candidates for each text (distinct texts are planned once)."""
        return self._ask_sources(texts, self._route(texts))

    def _route(self, texts: Sequence[str], tokenizer=None) -> _Routed:
        """Split, tokenize and route the distinct texts (no model work). A helper thread passes
        its own ``tokenizer`` copy: a fast tokenizer shared across threads can silently apply
        one thread's truncation settings to the other's texts."""
        distinct = list(dict.fromkeys(texts))
        start = time.perf_counter()
        mlm_queries, vector_queries, plans = self.route_words(distinct, tokenizer)
        return _Routed(distinct, mlm_queries, vector_queries, plans, time.perf_counter() - start)

    def _ask_sources(self, texts: Sequence[str], routed: _Routed) -> list[TextPlan]:
        self.timings["split"] += routed.seconds
        plans = routed.plans
        k = self.recipe.candidates_per_word
        keep = self.candidate_filter
        for stage, source, queries in (("mlm", self.mlm, routed.mlm_queries),
                                       ("vectors", self.vectors, routed.vector_queries)):
            if not queries:
                continue
            with self.timed(stage):
                found_lists = source.candidates([q for *_, q in queries], k * FETCH_FACTOR if keep else k)
            kept_lists = found_lists if keep is None else \
                [keep(q.word, found, k) for (*_, q), found in zip(queries, found_lists)]
            for (t, w, _), found, kept in zip(queries, found_lists, kept_lists):
                plans[t].candidates[w] = kept
                if not kept:
                    plans[t].missing[w] = (NO_CANDIDATES_FILTERED if found else NO_CANDIDATES_UNKNOWN
                                           if source is self.vectors else NO_CANDIDATES_EMPTY)
        by_text = dict(zip(routed.distinct, plans))
        return [by_text[text] for text in texts]

    def route_words(self, distinct: Sequence[str], tokenizer=None
                    ) -> tuple[list[tuple[int, int, Query]], list[tuple[int, int, Query]], list[TextPlan]]:
        """Split and tokenize each text and route its eligible words, without asking any source.

        Returns the masked-LM queries and the vector queries, each as (text index, word index,
        query), and one plan per text with routes filled in and candidates still empty. A word
        beyond the model's maximum length gets no query (its plan says why).
        """
        encoded = (tokenizer or self.tokenizer)(list(distinct), add_special_tokens=False,
                                                return_offsets_mapping=True)
        mlm_queries: list[tuple[int, int, Query]] = []  # (text, word, query)
        vector_queries: list[tuple[int, int, Query]] = []
        plans = []
        for t, text in enumerate(distinct):
            first_query = len(mlm_queries)
            words = split_words(text, self.normalizer)
            ids = tuple(encoded["input_ids"][t])
            spans = _pieces_per_word(words, encoded["offset_mapping"][t])
            routes: list[str | None] = [None] * len(words)
            missing: dict[int, str] = {}
            for w, word in enumerate(words):
                if not is_eligible(word):
                    continue
                first, last = spans[w]
                routes[w] = route(last - first, last - first == 1 and ids[first] == self.unknown_id) or "vectors"
                if last == first:
                    missing[w] = NO_CANDIDATES_NO_PIECES
                elif routes[w] == "vectors":  # the vectors need no model positions: no length budget
                    vector_queries.append((t, w, Query(word.norm.lower())))
                elif not self.fits(last - 1):
                    missing[w] = NO_CANDIDATES_BEYOND
                else:
                    mlm_queries.append((t, w, Query(word.norm, ids, first)))
            # a sentence's own words decide how they are masked together: not another text of the
            # same pieces planned beside it (the batch), whose eligible words may differ
            together = tuple(q.position for *_, q in mlm_queries[first_query:])
            mlm_queries[first_query:] = [(t, w, dataclasses.replace(q, sentence_positions=together))
                                         for t, w, q in mlm_queries[first_query:]]
            plans.append(TextPlan(text, words, routes, [()] * len(words), missing))
        return mlm_queries, vector_queries, plans

    def augment(self, examples: Sequence[Example]) -> tuple[list[list[Variant]], Stats]:
        """Variants for each example (the original first) and the batch's statistics."""
        return self._augment_routed(examples, self._route(_texts(examples)))

    def augment_stream(self, batches: Iterable[Sequence[Example]]) -> Iterator[tuple[list[list[Variant]], Stats]]:
        """``augment`` for each batch in turn, with tokenization off the models' critical path: the
        next batch is split, tokenized and routed in a helper thread (with its own copy of the
        tokenizer) while the current one is in the models. Torch and the Rust tokenizer release
        the GIL; the Python word splitting does not, so the overlap is partial. Results are
        exactly those of ``augment`` per batch. ``timings["split"]`` then counts only the time
        the models waited for the helper, ``timings["split_overlapped"]`` the rest of its time."""
        batches = iter(batches)
        tokenizer = copy.deepcopy(self.tokenizer)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tinyaug-split") as helper:
            def submit(batch: Sequence[Example] | None) -> concurrent.futures.Future | None:
                return helper.submit(self._route, _texts(batch), tokenizer) if batch is not None else None

            current = next(batches, None)
            pending = submit(current)
            while current is not None:
                start = time.perf_counter()
                routed = pending.result()
                waited = time.perf_counter() - start
                following = next(batches, None)
                pending = submit(following)
                self.timings["split_overlapped"] += max(0.0, routed.seconds - waited)
                yield self._augment_routed(current, dataclasses.replace(routed, seconds=waited))
                current = following

    def _augment_routed(self, examples: Sequence[Example], routed: _Routed) -> tuple[list[list[Variant]], Stats]:
        plans = iter(self._ask_sources(_texts(examples), routed))
        stats = Stats()
        out = []
        with self.timed("sampling"):
            for ex in examples:
                ex_plans = [next(plans) for _ in ex.texts]
                out.append(self.sample(ex, ex_plans, stats))
        return out, stats

    def sample(self, example: Example, plans: Sequence[TextPlan], stats: Stats) -> list[Variant]:
        """Draw the variants of one example from its own generator."""
        recipe = self.recipe
        rng = example_rng(recipe.seed, example.id)
        stats.examples += 1
        for plan in plans:
            stats.eligible_words += plan.eligible
            stats.routed.update(r for r in plan.routes if r is not None)
            stats.no_candidates.update(plan.missing.values())
            stats.no_candidate_words.update(plan.words[w].norm for w in plan.missing)
        groups = column_groups(len(plans), recipe.pair_mode)
        variants = [Variant(example.texts, ())]
        seen = {example.texts}
        for columns in groups:
            draws = [draw_replacements(plans[c].candidates, recipe.variants_per_example,
                                       recipe.replace_prob, rng) for c in columns]
            for d in range(recipe.variants_per_example):
                texts = list(example.texts)
                changes = []
                for c, column_draws in zip(columns, draws):
                    chosen = column_draws[d]
                    plan = plans[c]
                    texts[c] = rewrite(plan.text, plan.words, {w: cand.word for w, cand in chosen.items()})
                    changes += [Change(c, w, plan.words[w].start, plan.words[w].end, plan.words[w].text,
                                       match_case(cand.word, plan.words[w].text), cand.source, cand.rank)
                                for w, cand in sorted(chosen.items())]
                key = tuple(texts)
                if key in seen:
                    continue
                seen.add(key)
                variants.append(Variant(key, tuple(changes)))
                stats.replaced.update(ch.source for ch in changes)
                stats.edit_kinds["replace"] += len(changes)
                stats.variant_eligible_words += sum(plans[c].eligible for c in columns)
        stats.rows_out += len(variants)
        return variants


def _texts(examples: Sequence[Example]) -> list[str]:
    return [text for ex in examples for text in ex.texts]


def _pieces_per_word(words: Sequence[Word], offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each word, the [first, last) range of pieces whose character span overlaps the word.

    Overlap rather than containment, because SentencePiece-style pieces (``▁movie``) include
    the space before the word.
    """
    spans = []
    p = 0
    for word in words:
        while p < len(offsets) and offsets[p][1] <= word.start:
            p += 1
        first = p
        while p < len(offsets) and offsets[p][0] < word.end:
            p += 1
        spans.append((first, p))
    return spans
