"""Test helpers: augmented datasets written by the real builder from tiny models built here.

``write_augmented`` runs ``augment_table`` (the code behind ``tinyaug augment``) on a GLUE-layout
folder of ``toys`` sentences, with a tiny random masked LM over the toys vocabulary and tiny
seeded word vectors, so that distillation tests run on rows exactly as ``augment`` writes them
(provenance columns included) in well under a second.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from transformers import BertForMaskedLM

from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.vectors import LoadedVectors
from tinyaug.pipelines.scale.executor import LocalExecutor


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


class StopAfter(LocalExecutor):
    """The local executor, interrupted (KeyboardInterrupt) once it has handed over ``shards`` shards."""

    def __init__(self, shards: int) -> None:
        super().__init__()
        self.shards = shards

    def map(self, factory, jobs, source, **options):
        for number, result in enumerate(super().map(factory, jobs, source, **options)):
            if number == self.shards:
                raise KeyboardInterrupt
            yield result


def write_fault_world(root: Path, train_rows: int) -> Path:
    """What the fault tests run real commands on, as files: a toy SST-2 GLUE folder
    (``train_rows`` rows), a 1-layer random masked LM, seeded vectors over its words, a tiny
    teacher. Returns ``root``."""
    T.write_glue_task(root / "glue", "sst2", train_rows=train_rows)
    tokenizer = T.tiny_tokenizer(root / "mlm")
    torch.manual_seed(0)
    BertForMaskedLM(T.tiny_config(layers=1, labels=None)).save_pretrained(root / "mlm")
    tokenizer.save_pretrained(root / "mlm")
    words = [w for w in T.WORDS if w.isalpha()]
    vectors = np.random.default_rng(0).standard_normal((len(words), 8))
    (root / "vectors.txt").write_text("".join(f"{w} " + " ".join(f"{x:.5f}" for x in v) + "\n"
                                              for w, v in zip(words, vectors)))
    T.save_tiny_model(root / "teacher", T.tiny_config())
    return root


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail with ``TimeoutError`` (instead of hanging CI) when the body runs longer than ``seconds``:
    a blocking read cannot escape it (hypothesis's deadline judges an example only after it returns)."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def lock_held_elsewhere(lock: Path) -> Iterator[None]:
    """Another process holds ``lock`` (an exclusive ``flock``, its folder made) for the body's time."""
    import subprocess
    import sys
    import textwrap

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, time
        os.makedirs({str(lock.parent)!r}, exist_ok=True)
        handle = open({str(lock)!r}, 'w')
        fcntl.flock(handle, fcntl.LOCK_EX)
        print('held', flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
