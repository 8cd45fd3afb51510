"""Test helpers: augmented datasets written by the real builder from tiny models built here.

``write_augmented`` runs ``augment_table`` (the code behind ``tinyaug augment``) on a GLUE-layout
folder of ``toys`` sentences, with a tiny random masked LM over the toys vocabulary and tiny
seeded word vectors, so that distillation tests run on rows exactly as ``augment`` writes them
(provenance columns included) in well under a second.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import BertForMaskedLM

from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.build import BuildOptions, LocalEngine, augment_table
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.vectors import LoadedVectors


def tiny_mlm(directory: str | Path, seed: int = 0) -> LoadedMLM:
    """A random 1-layer masked LM over ``toys.WORDS`` (every toys word is one WordPiece)."""
    tokenizer = T.tiny_tokenizer(directory)
    torch.manual_seed(seed)
    model = BertForMaskedLM(T.tiny_config(layers=1, labels=None)).eval()
    return LoadedMLM(model, tokenizer, f"tiny-mlm seed {seed}")


def tiny_vectors(seed: int = 0) -> LoadedVectors:
    words = [w for w in T.WORDS if w.isalpha()]
    vectors = np.random.default_rng(seed).standard_normal((len(words), 8)).astype(np.float32)
    return LoadedVectors(words, vectors, f"tiny-vectors seed {seed}", "test")


def write_augmented(data_dir: str | Path, task: str, out: str | Path, variants: int = 2,
                    seed: int = 0) -> Path:
    """Augment the train split of ``task`` under ``data_dir`` into ``out`` with ``variants``
    draws per example (per text column for pairs)."""
    out = Path(out)
    table = load_input(task=task, data_dir=data_dir)
    with tempfile.TemporaryDirectory() as vocab_dir:
        mlm = tiny_mlm(vocab_dir, seed)
    augment_table(table, out, Recipe(variants_per_example=variants, seed=seed), mlm, tiny_vectors(seed),
                  BuildOptions())
    return out


class StopAfter(LocalEngine):
    """The local engine, interrupted (KeyboardInterrupt) once it has handed over ``shards`` shards."""

    def __init__(self, shards: int) -> None:
        super().__init__()
        self.shards = shards

    def augment(self, work, jobs, source, progress):
        for number, result in enumerate(super().augment(work, jobs, source, progress)):
            if number == self.shards:
                raise KeyboardInterrupt
            yield result
