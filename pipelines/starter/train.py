"""Training the starter masked LM: a seeded masked-LM run on CPU, the loss computed only at
masked positions (the 30k-way output layer would otherwise cost as much as the encoder).

Not here: the corpus (``corpus``), writing the result (``artifact``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from tinyaug.pipelines.starter.recipe import (DEFAULT_WORDNET_DIR, StarterRecipe)
from tinyaug.pipelines.starter.base import build_base_mlm, load_tokenizer
from tinyaug.pipelines.starter.corpus import build_corpus, encode_corpus, iter_batches

logger = logging.getLogger(__name__)


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
                  on_log: Callable[[dict[str, float]], None] | None = None,
                  progress: Callable[[str, int, int], None] | None = None):
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
        if progress is not None:  # ("training the starter", steps done, steps): the command's bar
            progress("training the starter", step + 1, recipe.steps)
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
