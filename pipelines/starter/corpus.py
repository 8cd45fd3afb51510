"""The starter's training corpus: GLUE *train* sentences (never a dev sentence) plus WordNet
glosses and examples, encoded, with whole-word masking.

Not here: the training loop (``train``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from tinyaug.errors import InputError
from tinyaug.pipelines.starter.recipe import (GLUE_TRAIN_TASKS, DEFAULT_WORDNET_DIR, StarterRecipe)

logger = logging.getLogger(__name__)


def _sst2_spans_dedupe(phrases: Sequence[str]) -> list[str]:
    """Keep the SST-2 phrases that are not a contiguous token span of a longer kept phrase.

    SST-2 train is ~67k phrases cut from ~7k sentences; the spans add little but repetition.
    ``["a b c", "b c", "c d"] -> ["a b c", "c d"]`` (order of first appearance kept).
    """
    order = sorted(range(len(phrases)), key=lambda i: (-len(phrases[i].split()), i))
    spans: set[tuple[str, ...]] = set()
    keep = []
    for i in order:
        toks = tuple(phrases[i].split())
        if toks in spans:
            continue
        keep.append(i)
        n = len(toks)
        for a in range(n):
            for b in range(a + 1, n + 1):
                spans.add(toks[a:b])
    return [phrases[i] for i in sorted(keep)]


def glue_train_sentences(glue_dir: Path, tasks: Sequence[str] = GLUE_TRAIN_TASKS,
                         sst2_dedupe: bool = True) -> dict[str, list[str]]:
    """Every text of the *train* split of each task (both sentences of a pair), by task."""
    from tinyaug.pipelines.io.glue import get_task, read_split

    out: dict[str, list[str]] = {}
    for name in tasks:
        task = get_task(name)
        ds, bad = read_split(Path(glue_dir), task, "train", skip_bad_rows=True)
        texts = [t for col in task.text_columns for t in ds[col]]
        if task.name == "sst2" and sst2_dedupe:
            texts = _sst2_spans_dedupe(texts)
        out[task.name] = texts
        logger.info("corpus: %s train, %d texts (%d bad rows skipped)", task.name, len(texts), len(bad))
    return out


_WN_QUOTED = re.compile(r'"([^"]+)"')


def wordnet_texts(wordnet_dir: Path = DEFAULT_WORDNET_DIR) -> list[str]:
    """WordNet 3.0 glosses and quoted examples, read from ``data.{noun,verb,adj,adv}``.

    A gloss line ``... | in an unjust manner; "she was wrongfully dismissed"`` gives
    ``["in an unjust manner", "she was wrongfully dismissed"]``.
    """
    texts: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = Path(wordnet_dir) / f"data.{pos}"
        if not path.is_file():
            raise InputError(f"{path}: no such file; install WordNet with "
                             "`apt-get install wordnet-base` or pass --no-wordnet")
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("  ") or " | " not in line:
                    continue  # licence header
                gloss = line.split(" | ", 1)[1].strip()
                examples = _WN_QUOTED.findall(gloss)
                definition = _WN_QUOTED.sub("", gloss).strip(" ;")
                texts.extend(t.strip() for t in [definition, *examples] if len(t.split()) >= 3)
    return texts


def build_corpus(recipe: StarterRecipe, glue_dir: Path, wordnet_dir: Path | None = DEFAULT_WORDNET_DIR
                 ) -> tuple[list[str], dict[str, int]]:
    """The training texts and a count of distinct texts per source.

    Exact duplicates are dropped (first source wins); then GLUE texts are repeated
    ``recipe.glue_repeats`` times (the copies follow the originals; batches are shuffled).
    """
    sources = glue_train_sentences(glue_dir, recipe.glue_tasks, recipe.sst2_dedupe)
    if recipe.wordnet:
        if wordnet_dir is None:
            raise InputError("the recipe uses WordNet but no WordNet folder was given; pass "
                             "--wordnet-dir or --no-wordnet")
        sources["wordnet"] = wordnet_texts(wordnet_dir)
    seen: set[str] = set()
    texts: list[str] = []
    counts: dict[str, int] = {}
    for name, items in sources.items():
        before = len(texts)
        for text in items:
            if text not in seen:
                seen.add(text)
                texts.append(text)
        counts[name] = len(texts) - before
    glue = sum(counts[name] for name in counts if name != "wordnet")
    texts = texts[:glue] * recipe.glue_repeats + texts[glue:]
    return texts, counts


def _stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@dataclasses.dataclass
class EncodedCorpus:
    """Token ids per text and, per text, the token span and selection weight of each word."""

    ids: list[np.ndarray]  # int32 [len], [CLS] ... [SEP]
    words: list[np.ndarray]  # int32 [n_words, 2]: token start, end (exclusive)
    weights: list[np.ndarray]  # float64 [n_words]: 1 for content words, other_word_weight else


def encode_corpus(texts: Sequence[str], tokenizer, recipe: StarterRecipe) -> EncodedCorpus:
    stop = _stopwords()
    ids_out, words_out, weights_out = [], [], []
    batch = 4096
    for start in range(0, len(texts), batch):
        enc = tokenizer(list(texts[start:start + batch]), truncation=True, max_length=recipe.max_length)
        for i, ids in enumerate(enc["input_ids"]):
            word_ids = enc.word_ids(i)
            spans: list[list[int]] = []
            last = None
            for pos, w in enumerate(word_ids):
                if w is None:
                    continue
                if w != last:
                    spans.append([pos, pos + 1])
                    last = w
                else:
                    spans[-1][1] = pos + 1
            if not spans:
                continue
            toks = tokenizer.convert_ids_to_tokens(ids)
            weights = []
            for a, b in spans:
                word = "".join(t[2:] if t.startswith("##") else t for t in toks[a:b])
                content = word.isalpha() and word not in stop
                weights.append(1.0 if content else recipe.other_word_weight)
            ids_out.append(np.asarray(ids, dtype=np.int32))
            words_out.append(np.asarray(spans, dtype=np.int32))
            weights_out.append(np.asarray(weights, dtype=np.float64))
    return EncodedCorpus(ids_out, words_out, weights_out)


def mask_sentence(ids: np.ndarray, spans: np.ndarray, weights: np.ndarray, rate: float,
                  mask_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Whole-word masking: ``max(1, round(rate * n_words))`` words drawn without replacement
    with probability proportional to ``weights``; every token of a drawn word becomes [MASK].

    Returns ``(masked_ids, labels)`` with label -100 where nothing is predicted.
    """
    n_words = len(spans)
    p = weights / weights.sum() if weights.sum() > 0 else None
    k = min(n_words, max(1, int(round(rate * n_words))))
    if p is not None:
        k = min(k, int(np.count_nonzero(p)))
    chosen = rng.choice(n_words, size=k, replace=False, p=p)
    masked = ids.copy()
    labels = np.full(len(ids), -100, dtype=np.int64)
    for w in chosen:
        a, b = spans[w]
        labels[a:b] = ids[a:b]
        masked[a:b] = mask_id
    return masked, labels


def iter_batches(corpus: EncodedCorpus, recipe: StarterRecipe, mask_id: int, pad_id: int,
                 rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
    """Endless seeded batches: each epoch shuffled, then sorted by length inside pools of 50
    batches (little padding), then the batch order shuffled."""
    n = len(corpus.ids)
    pool = recipe.batch_size * 50
    while True:
        order = rng.permutation(n)
        batches = []
        for s in range(0, n, pool):
            chunk = sorted(order[s:s + pool], key=lambda i: len(corpus.ids[i]))
            batches += [chunk[j:j + recipe.batch_size] for j in range(0, len(chunk), recipe.batch_size)]
        for b in rng.permutation(len(batches)):
            members = batches[b]
            width = max(len(corpus.ids[i]) for i in members)
            input_ids = np.full((len(members), width), pad_id, dtype=np.int64)
            labels = np.full((len(members), width), -100, dtype=np.int64)
            attention = np.zeros((len(members), width), dtype=np.int64)
            for row, i in enumerate(members):
                m, lab = mask_sentence(corpus.ids[i], corpus.words[i], corpus.weights[i],
                                       recipe.mask_rate, mask_id, rng)
                input_ids[row, :len(m)] = m
                labels[row, :len(m)] = lab
                attention[row, :len(m)] = 1
            yield {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels),
                   "attention_mask": torch.from_numpy(attention)}
