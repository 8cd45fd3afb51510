"""The GLUE tasks as data: each task's TSV layout, text and label columns, and label names.

Light on purpose (no heavy imports): the command line reads the task list from here before any
model library loads.

Not here: reading or writing the files (``glue``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from tinyaug.errors import InputError


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One GLUE task's file layout and label scheme."""

    name: str  # "sst2"
    folder: str  # "SST-2": the folder name inside a GLUE data dir
    header: bool  # whether the TSV starts with a header line
    columns: tuple[str, ...]  # column names; for a headerless file these are ours
    text_columns: tuple[str, ...]
    label_column: str
    label_names: tuple[str, ...] | None  # None: a regression task (float label)
    label_encoding: Literal["index", "name", "float"]  # how the TSV writes a label
    train_file: str = "train.tsv"
    dev_files: tuple[str, ...] = ("dev.tsv",)
    bom: bool = False  # the official file starts with a UTF-8 byte-order mark
    dev_columns: tuple[str, ...] | None = None  # when dev has other columns than train
    hub_config: str = ""  # the config name of the ``nyu-mll/glue`` hub dataset

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    def split_file(self, split: str) -> str:
        """``"train"`` -> ``"train.tsv"``; ``"dev"`` -> the first dev file (MNLI: matched)."""
        if split == "train":
            return self.train_file
        if split == "dev":
            return self.dev_files[0]
        for name in self.dev_files:
            if split == Path(name).stem:
                return name
        known = ["train", "dev", *(Path(n).stem for n in self.dev_files)]
        raise InputError(f"task {self.name} has no split {split!r}; choose one of {', '.join(known)}")

    def columns_for(self, split: str) -> tuple[str, ...]:
        if split != "train" and self.dev_columns is not None:
            return self.dev_columns
        return self.columns


_MNLI_TRAIN = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
               "sentence1", "sentence2", "label1", "gold_label")
_MNLI_DEV = _MNLI_TRAIN[:-1] + ("label2", "label3", "label4", "label5", "gold_label")
_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
         "sentence1", "sentence2", "score")

TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("cola", "CoLA", header=False, columns=("source", "label", "author_label", "sentence"),
             text_columns=("sentence",), label_column="label",
             label_names=("unacceptable", "acceptable"), label_encoding="index", hub_config="cola"),
    TaskSpec("sst2", "SST-2", header=True, columns=("sentence", "label"),
             text_columns=("sentence",), label_column="label",
             label_names=("negative", "positive"), label_encoding="index", hub_config="sst2"),
    TaskSpec("mrpc", "MRPC", header=True,
             columns=("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
             text_columns=("#1 String", "#2 String"), label_column="Quality",
             label_names=("not_equivalent", "equivalent"), label_encoding="index", bom=True,
             hub_config="mrpc"),
    TaskSpec("stsb", "STS-B", header=True, columns=_STSB,
             text_columns=("sentence1", "sentence2"), label_column="score",
             label_names=None, label_encoding="float", hub_config="stsb"),
    TaskSpec("qqp", "QQP", header=True,
             columns=("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
             text_columns=("question1", "question2"), label_column="is_duplicate",
             label_names=("not_duplicate", "duplicate"), label_encoding="index", hub_config="qqp"),
    TaskSpec("mnli", "MNLI", header=True, columns=_MNLI_TRAIN, dev_columns=_MNLI_DEV,
             text_columns=("sentence1", "sentence2"), label_column="gold_label",
             label_names=("entailment", "neutral", "contradiction"), label_encoding="name",
             dev_files=("dev_matched.tsv", "dev_mismatched.tsv"), hub_config="mnli"),
    TaskSpec("qnli", "QNLI", header=True, columns=("index", "question", "sentence", "label"),
             text_columns=("question", "sentence"), label_column="label",
             label_names=("entailment", "not_entailment"), label_encoding="name", hub_config="qnli"),
    TaskSpec("rte", "RTE", header=True, columns=("index", "sentence1", "sentence2", "label"),
             text_columns=("sentence1", "sentence2"), label_column="label",
             label_names=("entailment", "not_entailment"), label_encoding="name", hub_config="rte"),
    TaskSpec("wnli", "WNLI", header=True, columns=("index", "sentence1", "sentence2", "label"),
             text_columns=("sentence1", "sentence2"), label_column="label",
             label_names=("not_entailment", "entailment"), label_encoding="index", hub_config="wnli"),
)}

_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli"}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name, case-insensitively (``"SST-2"``, ``"sst2"`` both work)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {', '.join(TASKS)} "
                         "(or give --text-columns for a table that is not GLUE)")
    return TASKS[key]

TASK_NAMES: tuple[str, ...] = tuple(TASKS)
