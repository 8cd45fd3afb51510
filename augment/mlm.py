"""Masked-LM candidates: one word masked at a time, batched across words and sentences.

For a query (sentence pieces, masked position) the model sees, in the default ``"masked"``
context, ``[CLS] the movie was [MASK] [SEP]``; in the reference's ``"pair"`` context it also
sees the original sentence as segment B: ``[CLS] the movie was [MASK] [SEP] the movie was
great [SEP]``. The top-K candidates are whole words of the vocabulary: word pieces
(``##ing``), special tokens, anything not alphabetic, single letters, stopwords, other
scripts (an ASCII word gets ASCII candidates) and the original word itself are filtered out
*before* the top-K, so K candidates are kept wherever the vocabulary allows.

Speed: identical masked contexts are computed once; contexts are batched by exact length, so
batches carry no padding at all; the prediction head runs only at the masked position (the
encoder's output at the other positions is never projected onto the vocabulary), and so does
the last encoder layer, but for its keys and values (BERT-family models,
``tinyaug.augment.last_layer``); no autograd.

Determinism: a context's scores do not depend on its batch (no padding), and candidates are
ranked on scores rounded to ``SCORE_DECIMALS`` with ties broken by token id, so float noise from
the backend (different batch sizes pick different kernels) cannot reorder them; two scores that
straddle a rounding boundary within float noise remain possible in principle.

Not here: loading models (``tinyaug.pipelines.io.models``) or deciding which words to mask.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Callable, Sequence

import torch

from tinyaug.augment.last_layer import LastLayerAtPositions
from tinyaug.augment.sources import Candidate, Query
from tinyaug.augment.recipe import CONTEXT_MODES, ContextMode
from tinyaug.augment.stopwords import STOPWORDS

logger = logging.getLogger(__name__)

# (input_ids (B, L), token_type_ids (B, L) or None, masked positions (P,), their rows (P,) or None:
# one per row) -> logits (P, vocab)
MaskedForward = Callable[[torch.Tensor, "torch.Tensor | None", torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def spread(positions: Sequence[int], masks: int) -> list[tuple[int, ...]]:
    """The masked contexts for a sentence's masked-LM words at ``positions`` (ascending), at most
    ``masks`` words masked in each: word ``i`` goes to context ``i % C``, so two words masked
    together are ``C`` words apart, never neighbours (``C`` is at least 2 when there are 2 words).

    >>> spread([0, 2, 3, 5, 7], 2)
    [(0, 5), (2, 7), (3,)]
    >>> spread([1, 4], 3), spread([1, 4], 1)
    ([(1,), (4,)], [(1,), (4,)])
    """
    if masks <= 1:
        return [(p,) for p in positions]
    count = max(-(-len(positions) // masks), min(len(positions), 2))
    return [tuple(positions[j::count]) for j in range(count)]

RANK_MARGIN = 4  # extra top-k entries fetched so that re-ranking near-ties stays exact
SCORE_DECIMALS = 4  # scores are compared at this precision; closer ones are ordered by id


def stable_rank_key(score: float, token_id: int) -> tuple[float, int]:
    """Sort key: higher score first, with scores that differ only in float noise (below
    ``10**-SCORE_DECIMALS``) treated as equal and ordered by id, so that the ranking does not
    depend on how a backend happened to sum (batch size, kernel choice)."""
    return (-round(score, SCORE_DECIMALS), token_id)

_WORD_START_MARKERS = ("Ġ", "▁")  # byte-level BPE and SentencePiece word-start markers


def vocab_words(tokenizer) -> list[str | None]:
    """For each token id, the whole word it stands for, or None if it is not a whole word.

    WordPiece: ``##``-continuations are not whole words. Byte-level BPE / SentencePiece: only
    tokens that start a word (``Ġgood``, ``▁good``) are. Special tokens never are.
    """
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    prefix = getattr(model, "continuing_subword_prefix", None) or "##"
    uses_markers = any(t and t[0] in _WORD_START_MARKERS for t in tokens[:2000] if t)
    words: list[str | None] = []
    for token_id, token in enumerate(tokens):
        if token is None or token_id in special:
            words.append(None)
        elif uses_markers:
            words.append(token[1:] if token[:1] in _WORD_START_MARKERS else None)
        else:
            words.append(None if token.startswith(prefix) else token)
    return words


def is_candidate_word(word: str | None, stopwords: frozenset[str] = STOPWORDS) -> bool:
    """A replacement must itself be a content word: alphabetic, two letters or more, no stopword."""
    return word is not None and len(word) > 1 and word.isalpha() and word.lower() not in stopwords


def candidate_mask(words: Sequence[str | None], stopwords: frozenset[str] = STOPWORDS) -> torch.Tensor:
    """Bool tensor over the vocabulary: True where the token may be offered as a replacement."""
    return torch.tensor([is_candidate_word(w, stopwords) for w in words], dtype=torch.bool)


def ascii_mask(words: Sequence[str | None]) -> torch.Tensor:
    """Bool tensor over the vocabulary: True for ASCII tokens (an ASCII word gets ASCII candidates)."""
    return torch.tensor([w is not None and w.isascii() for w in words], dtype=torch.bool)


def _output_size(model) -> int:
    """Rows of the output projection (a dynamically quantized Linear exposes ``weight()``)."""
    weight = getattr(model.get_output_embeddings(), "weight", None)
    weight = weight() if callable(weight) else weight
    return int(weight.shape[0]) if weight is not None else int(model.config.vocab_size)


def usable_positions(model, tokenizer) -> int:
    """How many tokens one input may hold: the position table, less RoBERTa-style models' offset
    (their positions start after the padding index), capped by the tokenizer's own maximum."""
    config = model.config
    positions = getattr(config, "max_position_embeddings", 512)
    if "roberta" in getattr(config, "model_type", "") or getattr(config, "model_type", "") in ("camembert", "longformer"):
        positions -= (config.pad_token_id or 0) + 1
    tokenizer_max = getattr(tokenizer, "model_max_length", None) or positions
    return int(min(positions, tokenizer_max if tokenizer_max < 1_000_000 else positions))


def _split_encoder_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(encoder, head) when the head can be applied to selected positions only."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    for name in ("cls", "lm_head"):  # BERT-like, RoBERTa-like
        head = getattr(model, name, None)
        if base is not None and head is not None:
            return base, head
    return None


class MaskedPositionLogits(torch.nn.Module):
    """A masked LM reduced to what candidates need: ``(input_ids (B, L), token_type_ids (B, L) or
    None, at (P,), rows (P,) or None)`` -> the vocabulary logits at position ``at[i]`` of row
    ``rows[i]``, ``(P, vocab)`` (``rows`` None: one position per row).

    BERT-family models run their last layer at ``at`` only (``LastLayerAtPositions``); other models
    with a separable head project only the ``at`` rows; anything else runs whole. Inputs carry no
    padding (exact-length batches). ``whole=True`` runs the whole model, logits at every position
    (the reference's way, kept for comparisons). This module is also what an inference runtime
    exports (``tinyaug.pipelines.io.onnx_runtime``), so both compute the same graph.
    """

    def __init__(self, model: torch.nn.Module, *, whole: bool = False) -> None:
        super().__init__()
        self.model = model
        self._split = None if whole else _split_encoder_and_head(model)
        # the last layer at the masked position only (None: the model is not of a known kind)
        self._partial = LastLayerAtPositions.of(self._split[0]) if self._split is not None else None

    @property
    def partial_last_layer(self) -> bool:
        """Whether the last encoder layer runs at the masked positions only (keys and values aside)."""
        return self._partial is not None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, at: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        if self._partial is not None:
            return self._split[1](self._partial(input_ids, token_type_ids, at, rows))
        if rows is None:
            rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        inputs = {"input_ids": input_ids, **({"token_type_ids": token_type_ids} if token_type_ids is not None else {})}
        if self._split is not None:
            encoder, head = self._split
            return head(encoder(**inputs).last_hidden_state[rows, at])
        return self.model(**inputs).logits[rows, at]


class MaskedLMSource:
    """Candidates from a Hugging Face masked LM and its fast tokenizer."""

    name = "mlm"

    def __init__(self, model, tokenizer, *, context: ContextMode = "masked", batch_size: int = 64,
                 max_length: int | None = None, device: str | torch.device | None = None,
                 stopwords: frozenset[str] = STOPWORDS, forward: MaskedForward | None = None,
                 masks_per_context: int = 1) -> None:
        if context not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token; is this a masked language model?")
        if forward is None:
            self.device = torch.device(device) if device is not None else next(model.parameters()).device
            self.model = model.to(self.device).eval()
            forward = MaskedPositionLogits(self.model)
        else:  # an inference runtime computes the logits; ``model`` only describes the model (config, sizes)
            self.device, self.model = torch.device("cpu"), model
        self.forward = forward
        self.masks_per_context = masks_per_context  # words masked together in one context (``spread``)
        self.tokenizer = tokenizer
        self.context = context
        self.batch_size = batch_size
        model_max = usable_positions(model, tokenizer)
        self.max_length = min(max_length or model_max, model_max)
        # pieces of the sentence that fit in one context (special tokens excluded)
        self.piece_budget = self.max_length - 2 if context == "masked" else (self.max_length - 3) // 2
        if self.piece_budget < 1:
            raise ValueError(f"max_length {self.max_length} leaves no room for a sentence")
        self.words = vocab_words(tokenizer)
        out_size = _output_size(model)  # may differ from len(tokenizer)
        self.allowed = self._fit(candidate_mask(self.words, stopwords), out_size)  # (vocab,)
        self.allowed_ascii = self.allowed & self._fit(ascii_mask(self.words), out_size)
        self.contexts_seen = 0  # masked contexts asked for
        self.contexts_run = 0  # ... and actually run through the model (after de-duplication)
        self.predictions_run = 0  # masked positions read (more than contexts_run with masks_per_context > 1)
        self.tokens_run = 0  # non-padding tokens fed to the model
        self.squared_lengths_run = 0  # sum of squared context lengths (attention cost)
        self.forward_seconds = 0.0  # time in model forwards and top-k (the masked-LM stage proper)

    @property
    def partial_last_layer(self) -> bool:
        """Whether the last encoder layer runs at the masked positions only (keys and values aside)."""
        return bool(getattr(self.forward, "partial_last_layer", False))

    def _fit(self, mask: torch.Tensor, size: int) -> torch.Tensor:
        fitted = torch.zeros(size, dtype=torch.bool)
        fitted[:min(size, len(mask))] = mask[:size]
        return fitted.to(self.device)

    def fits(self, position: int) -> bool:
        """Whether a word whose piece is at ``position`` fits in the model's maximum length."""
        return position < self.piece_budget

    def build_context(self, pieces: Sequence[int], positions: int | Sequence[int]) -> tuple[list[int], list[int]]:
        """Token ids and token-type ids of the context with the words at ``positions`` masked."""
        tok = self.tokenizer
        a = list(pieces[:self.piece_budget])
        for position in ([positions] if isinstance(positions, int) else positions):
            a[position] = tok.mask_token_id
        ids = [tok.cls_token_id, *a, tok.sep_token_id]
        types = [0] * len(ids)
        if self.context == "pair":
            b = list(pieces[:self.piece_budget])
            ids += [*b, tok.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def candidates(self, queries: Sequence[Query], k: int) -> list[tuple[Candidate, ...]]:
        """Top-``k`` filtered whole-word candidates per query, never the query word itself."""
        return self.ranked_words(queries, k, drop_original=True)

    def ranked_words(self, queries: Sequence[Query], k: int, *, drop_original: bool = True
                     ) -> list[tuple[Candidate, ...]]:
        """Like ``candidates``; with ``drop_original=False`` the original word may be among them
        (what a recall evaluation needs)."""
        keys = []
        for q in queries:
            if not self.fits(q.position):
                raise ValueError(f"position {q.position} is beyond the piece budget {self.piece_budget}")
            keys.append((tuple(q.pieces[:self.piece_budget]), q.position, q.word.isascii(), q.sentence_positions))
        contexts, masked_with = self._contexts(keys)
        # Contexts are batched by exact length: no padding, so a context's scores do not depend on
        # which other contexts share its batch (padding changes the matrix shapes and with them the
        # floating-point summation order).
        unique = sorted(contexts, key=lambda context: (-len(context[0]), context))
        self.contexts_seen += len(keys)
        self.contexts_run += len(unique)
        extra = 0 if not drop_original else 1  # room for the original word, dropped afterwards
        top: dict[tuple, list[tuple[int, float]]] = {}
        for _, group in itertools.groupby(unique, key=lambda context: len(context[0])):
            group = list(group)
            for start in range(0, len(group), self.batch_size):
                batch = [(context, contexts[context]) for context in group[start:start + self.batch_size]]
                for (context, asked), rows in zip(batch, self._predict(batch, k + extra)):
                    for (position, ascii_only), row in zip(asked, rows):
                        top[(context, position, ascii_only)] = row
        results = []
        for q, (pieces, position, ascii_only, _), masked in zip(queries, keys, masked_with):
            found = [(self.words[i], p) for i, p in top[((pieces, masked), position, ascii_only)]
                     if not (drop_original and self.words[i].lower() == q.word.lower())]
            results.append(tuple(Candidate(w, p, "mlm", rank) for rank, (w, p) in enumerate(found[:k])))
        return results

    def _contexts(self, keys: Sequence[tuple[tuple[int, ...], int, bool, tuple[int, ...]]]
                  ) -> tuple[dict[tuple[tuple[int, ...], tuple[int, ...]], list[tuple[int, bool]]], list[tuple[int, ...]]]:
        """The masked contexts that answer ``keys`` (pieces, position, ASCII only, sentence
        positions): each context (pieces, masked positions) with the predictions asked of it
        (position, ASCII only), and for each key the masked positions of its context. One word
        masked per context, or up to ``masks_per_context`` words of a sentence (``spread`` over its
        sentence positions, or where not given over those asked with the same pieces)."""
        sentences: dict[tuple[tuple[int, ...], tuple[int, ...]], set[int]] = {}
        for pieces, position, _, sentence in keys:
            sentences.setdefault((pieces, sentence), set(sentence)).add(position)
        masked_at = {}  # (pieces, sentence positions, position) -> the masked positions of its context
        for (pieces, sentence), positions in sentences.items():
            for masked in spread(sorted(positions), self.masks_per_context):
                masked_at.update({(pieces, sentence, position): masked for position in masked})
        contexts: dict[tuple[tuple[int, ...], tuple[int, ...]], set[tuple[int, bool]]] = {}
        masked_with = []
        for pieces, position, ascii_only, sentence in keys:
            masked_with.append(masked_at[(pieces, sentence, position)])
            contexts.setdefault((pieces, masked_with[-1]), set()).add((position, ascii_only))
        return {context: sorted(asked) for context, asked in contexts.items()}, masked_with

    @torch.inference_mode()
    def _predict(self, batch: Sequence[tuple[tuple[tuple[int, ...], tuple[int, ...]], list[tuple[int, bool]]]],
                 k: int) -> list[list[list[tuple[int, float]]]]:
        """For each ((pieces, masked positions), [(position, ascii only), ...]): for each asked
        position, the top-``k`` allowed token ids with their probability."""
        built = [self.build_context(pieces, positions) for (pieces, positions), _ in batch]
        # one length per batch (``ranked_words`` groups by it): no padding, no attention mask
        input_ids = torch.tensor([ids for ids, _ in built], dtype=torch.long, device=self.device)
        token_types = None
        if "token_type_ids" in self.tokenizer.model_input_names:
            token_types = torch.tensor([types for _, types in built], dtype=torch.long, device=self.device)
        self.tokens_run += input_ids.numel()
        self.squared_lengths_run += len(built) * input_ids.shape[1] ** 2
        started = time.perf_counter()
        asked = [(row, position, ascii_only) for row, (_, wanted) in enumerate(batch) for position, ascii_only in wanted]
        self.predictions_run += len(asked)
        masked_at = torch.tensor([position + 1 for _, position, _ in asked], device=self.device)  # +1 for [CLS]
        rows = None if len(asked) == len(batch) else torch.tensor([row for row, _, _ in asked], device=self.device)
        logits = self.forward(input_ids, token_types, masked_at, rows)
        logits = logits.float()
        probs = torch.softmax(logits, dim=-1)
        ascii_only = torch.tensor([a for *_, a in asked], device=self.device)[:, None]
        allowed = torch.where(ascii_only, self.allowed_ascii, self.allowed)  # (batch, vocab)
        logits = logits.masked_fill(~allowed, float("-inf"))
        take = min(k + RANK_MARGIN, int(self.allowed.sum()))
        values, ids = torch.topk(logits, take, dim=-1)
        picked = torch.gather(probs, 1, ids)
        out = []
        for row_ids, row_values, row_probs in zip(ids.tolist(), values.tolist(), picked.tolist()):
            ranked = sorted((stable_rank_key(v, i), i, p) for i, v, p in zip(row_ids, row_values, row_probs)
                            if v != float("-inf"))
            out.append([(i, p) for _, i, p in ranked[:k]])
        self.forward_seconds += time.perf_counter() - started
        per_context: list[list[list[tuple[int, float]]]] = [[] for _ in batch]
        for (row, _, _), found in zip(asked, out):
            per_context[row].append(found)
        return per_context
