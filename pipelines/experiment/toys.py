"""Tiny, offline stand-ins for ``--quick`` smoke runs of the experiment (and for the tests).

A 35-word WordPiece vocabulary, tiny BERT configs, and GLUE-layout folders whose labels follow
from the words (a "good" sentence is positive), so that a two-layer model learns a task in a
few dozen steps on a CPU. Nothing here touches the network.

Not here: anything the real commands need; test-only helpers (``tests/helpers.py``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from tinyaug.distill.student import set_task_labels
from tinyaug.pipelines.io.glue import TaskSpec, format_label, get_task

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["good", "great", "fine", "nice", "happy"]
NEGATIVE = ["bad", "awful", "poor", "sad", "dull"]
FILLER = ["the", "a", "movie", "film", "plot", "was", "is", "very", "quite", "story", "and",
          "cast", "ending", "music", "really", "so", "acting", "it", "this", "."]
WORDS = SPECIAL + POSITIVE + NEGATIVE + FILLER


def write_vocab(directory: str | Path, words: Sequence[str] = WORDS) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return path


def tiny_tokenizer(directory: str | Path, words: Sequence[str] = WORDS) -> BertTokenizerFast:
    """A WordPiece tokenizer over ``words``, its vocab.txt written into ``directory``.

    Loaded with ``from_pretrained(directory)``: transformers 5 ignores ``vocab_file=`` in the
    constructor and silently builds a tokenizer that maps every word to [UNK].
    """
    write_vocab(directory, words)
    return BertTokenizerFast.from_pretrained(str(directory), do_lower_case=True)


def tiny_config(vocab_size: int = len(WORDS), *, layers: int = 2, hidden: int = 32, heads: int = 2,
                intermediate: int = 37, labels: Sequence[str] | None = ("negative", "positive"),
                dropout: float = 0.1) -> BertConfig:
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=128, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    set_task_labels(config, labels)
    return config


def save_tiny_model(directory: str | Path, config: BertConfig, seed: int = 0,
                    encoder_only: bool = False) -> Path:
    """A randomly initialised tiny model (or bare encoder) with its tokenizer, in ``directory``."""
    import torch
    from transformers import BertModel

    directory = Path(directory)
    torch.manual_seed(seed)
    model = BertModel(config) if encoder_only else BertForSequenceClassification(config)
    model.save_pretrained(str(directory))
    tiny_tokenizer(directory).save_pretrained(str(directory))
    return directory


def _sentence(rng: random.Random, polarity: int) -> str:
    word = rng.choice(POSITIVE if polarity else NEGATIVE)
    filler = rng.sample(FILLER[:-1], 3)
    return " ".join([filler[0], filler[1], word, filler[2]]) + " ."


def _row(task: TaskSpec, rng: random.Random, index: int, split: str) -> dict[str, str]:
    a, b = rng.randint(0, 1), rng.randint(0, 1)
    values = {c: str(index) for c in task.tsv_columns_for(split)}
    texts = [_sentence(rng, a), _sentence(rng, b)]
    for column, text in zip(task.tsv_text_columns, texts):
        values[column] = text
    if task.name == "stsb":
        label: int | float = 5.0 if a == b else 0.5
    elif task.name == "mnli":
        label = 0 if a == b else 2
    elif len(task.text_columns) == 1:
        label = a
    else:
        label = int(a == b)
        if task.label_names and task.label_names[0] == "entailment":  # QNLI, RTE: 0 = entailment
            label = 1 - label
    values[task.tsv_label_column] = format_label(task, label)
    return values


def write_glue_task(data_dir: str | Path, task: str, *, train_rows: int = 64, dev_rows: int = 32,
                    seed: int = 0) -> Path:
    """A GLUE-layout folder ``DATA_DIR/<Task>/`` (train.tsv and the dev file(s)) for ``task``."""
    spec = get_task(task)
    folder = Path(data_dir) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = [("train", spec.train_file, train_rows)]
    files += [(Path(name).stem if len(spec.dev_files) > 1 else "dev", name, dev_rows) for name in spec.dev_files]
    for split, name, count in files:
        columns = spec.tsv_columns_for(split)
        lines = ["\t".join(columns)] if spec.header else []
        for i in range(count):
            values = _row(spec, rng, i, split)
            lines.append("\t".join(values[c] for c in columns))
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(data_dir)
