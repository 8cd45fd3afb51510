"""Shared fixtures: tiny models and vectors built in-test, never downloaded."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = Path(os.environ.get("TINYAUG_GLUE_DIR", REPO.parent / "shared" / "glue"))
SAMPLE_GLUE = REPO / "resources" / "glue_sample"  # real rows of every layout, shipped with the package

WORDS = """the a was is and of to in it movie film picture great good bad fine nice awful
charming surprise cat dog sat barked loudly quite story actor actors plot funny boring he she said
un ##believ ##able ##ing ##s ##ly , . " ' ! ? - $ 1 2 x v é café naive house home car road""".split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


import datasets  # noqa: E402

import transformers  # noqa: E402

datasets.disable_progress_bars()
transformers.utils.logging.disable_progress_bar()


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core machine train faster with one intra-op thread (no
    oversubscription stalls); use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_vocab(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    return path


def make_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    write_vocab(folder)
    return BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True)


def make_mlm(tokenizer, layers: int = 2, seed: int = 0, max_positions: int = 64):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=max_positions)
    return BertForMaskedLM(config).eval()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A saved tiny masked LM (random weights) with its tokenizer: loads like any local model."""
    folder = tmp_path_factory.mktemp("tiny-mlm")
    tokenizer = make_tokenizer(folder)
    make_mlm(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_dir))


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from transformers import AutoModelForMaskedLM

    return AutoModelForMaskedLM.from_pretrained(str(tiny_dir)).eval()


@pytest.fixture(scope="session")
def tiny_vectors():
    """Word vectors placed so that the nearest neighbours are known by construction."""
    words = ["movie", "film", "picture", "the", "unbelievable", "incredible", "amazing", "car", "road",
             "house", "home", "naïve", "café", "great", "good"]
    rng = np.random.default_rng(0)
    base = {"movie": [1, 0, 0, 0], "car": [0, 1, 0, 0], "unbelievable": [0, 0, 1, 0], "house": [0, 0, 0, 1]}
    vectors = []
    for w in words:
        if w in base:
            vectors.append(base[w])
        elif w in ("film", "picture", "the"):
            vectors.append([1, 0.1 * (1 + ["film", "picture", "the"].index(w)), 0, 0])
        elif w in ("incredible", "amazing"):
            vectors.append([0, 0, 1, 0.1 * (1 + ["incredible", "amazing"].index(w))])
        elif w == "road":
            vectors.append([0, 1, 0.2, 0])
        elif w == "home":
            vectors.append([0, 0, 0.1, 1])
        else:
            vectors.append(list(rng.normal(size=4)))
    return words, np.asarray(vectors, dtype=np.float32)


def glue_folder() -> Path:
    """The full GLUE files when present (``../shared/glue`` or ``TINYAUG_GLUE_DIR``), else the
    package's own sample of real rows (``resources/glue_sample``): tests never skip for want of GLUE."""
    return SHARED_GLUE if (SHARED_GLUE / "SST-2" / "train.tsv").is_file() else SAMPLE_GLUE


@pytest.fixture
def glue_dir() -> Path:
    return glue_folder()
