"""The GLUE tasks as data, in one place: each task's file layout, dataset schema and facts.

Everything tinyaug knows of a task is one ``TaskSpec`` entry in ``TASKS`` (a new task is one
entry): its TSV file layout and hub schema, its primary metric, the reference script's N, the
stage-1 epochs and sequence length of TinyBERT's recipe, the ablation's step budget, and whether
the package ships sample rows of it. The pure layers (``augment``, ``distill``) and the pipelines
read these facts from here.

Two views of one task's data:

- the **file layout** (``tsv_*``): the columns of GLUE's ``download_glue_data.py`` files, which
  the reader parses and the TSV export writes back (``#1 String``, ``Quality``, ``gold_label``);
- the **dataset schema**: the ``nyu-mll/glue`` hub dataset's column names, label names and
  dtypes, which every dataset tinyaug makes from a GLUE task uses, whatever the source
  (``sentence``; ``sentence1``/``sentence2``; ``question``/``sentence`` for QNLI;
  ``question1``/``question2`` for QQP; ``premise``/``hypothesis`` for MNLI; ``label`` as a
  ``ClassLabel``, float32 for STS-B; ``idx`` int32, the source row).

File columns that the hub lacks (MRPC's ids, MNLI's genre and parses, STS-B's source fields, ...)
are dropped, or kept on request as ``source_<name>`` (``#1 ID`` -> ``source_1_id``), names that
no text-column heuristic takes for text.

Light on purpose (no heavy imports): the command line reads the task list from here before any
model library loads.

Not here: reading or writing the files (``tinyaug.pipelines.io.glue``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import ClassVar, Literal

from tinyaug.errors import InputError


LABEL = "label"  # every GLUE dataset's label column, as on the hub
INDEX = "idx"  # int32: the source row, as on the hub


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One GLUE task: its file layout and its dataset schema."""

    name: str  # "sst2"
    folder: str  # "SST-2": the folder name inside a GLUE data dir
    header: bool  # whether the TSV starts with a header line
    tsv_columns: tuple[str, ...]  # the file's columns; for a headerless file these are ours
    tsv_text_columns: tuple[str, ...]  # "#1 String", "#2 String"
    tsv_label_column: str  # "Quality"
    text_columns: tuple[str, ...]  # the hub's names: "sentence1", "sentence2"
    label_names: tuple[str, ...] | None  # the hub's ClassLabel names; None: a regression task
    label_encoding: Literal["index", "name", "float"]  # how the TSV writes a label
    train_file: str = "train.tsv"
    dev_files: tuple[str, ...] = ("dev.tsv",)
    bom: bool = False  # the official file starts with a UTF-8 byte-order mark
    tsv_dev_columns: tuple[str, ...] | None = None  # when dev has other columns than train
    hub_config: str = ""  # the config name of the ``nyu-mll/glue`` hub dataset
    metric: str = "accuracy"  # the metric GLUE ranks the task by: accuracy, f1, mcc or pearson
    metrics: tuple[str, ...] = ("accuracy",)  # every metric GLUE reports for it, the ranking one first
    reference_n: int = 20  # variants per example in the reference augmentation script
    stage1_epochs: int = 20  # TinyBERT's intermediate-layer distillation epochs
    ablation_steps: int = 200  # ``tinyaug experiment ablation``'s steps per distillation stage
    in_sample: bool = False  # the package ships real train rows of it (resources/glue_sample)

    label_column: ClassVar[str] = LABEL

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def max_seq_length(self) -> int:
        """64 for single-sentence tasks, 128 for sentence pairs (the paper's values)."""
        return 64 if len(self.text_columns) == 1 else 128

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

    def tsv_columns_for(self, split: str) -> tuple[str, ...]:
        """The file's columns for ``split`` (MNLI dev has five label columns)."""
        if split != "train" and self.tsv_dev_columns is not None:
            return self.tsv_dev_columns
        return self.tsv_columns

    def dataset_column(self, tsv_column: str) -> str:
        """The dataset column a file column becomes: ``"#1 String"`` -> ``"sentence1"``,
        ``"Quality"`` -> ``"label"``, ``"#1 ID"`` -> ``"source_1_id"``."""
        if tsv_column in self.tsv_text_columns:
            return self.text_columns[self.tsv_text_columns.index(tsv_column)]
        if tsv_column == self.tsv_label_column:
            return LABEL
        return source_column(tsv_column)

    def source_columns(self, split: str = "train") -> tuple[str, ...]:
        """The file columns the hub lacks, for ``split``: ``("#1 ID", "#2 ID")`` for MRPC."""
        return tuple(c for c in self.tsv_columns_for(split)
                     if c not in self.tsv_text_columns and c != self.tsv_label_column)


def source_column(tsv_column: str) -> str:
    """The dataset name of a file column the hub lacks.

    >>> [source_column(c) for c in ("#1 ID", "promptID", "genre", "sentence1_parse")]
    ['source_1_id', 'source_promptid', 'source_genre', 'source_sentence1_parse']
    """
    return "source_" + re.sub(r"[^0-9a-z]+", "_", tsv_column.lower()).strip("_")


_MNLI_TRAIN = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
               "sentence1", "sentence2", "label1", "gold_label")
_MNLI_DEV = _MNLI_TRAIN[:-1] + ("label2", "label3", "label4", "label5", "gold_label")
_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
         "sentence1", "sentence2", "score")
_PAIR = ("sentence1", "sentence2")

TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("cola", "CoLA", header=False, tsv_columns=("source", "label", "author_label", "sentence"),
             tsv_text_columns=("sentence",), tsv_label_column="label", text_columns=("sentence",),
             label_names=("unacceptable", "acceptable"), label_encoding="index", hub_config="cola",
             metric="mcc", metrics=("mcc",), reference_n=30, stage1_epochs=50, ablation_steps=300, in_sample=True),
    TaskSpec("sst2", "SST-2", header=True, tsv_columns=("sentence", "label"),
             tsv_text_columns=("sentence",), tsv_label_column="label", text_columns=("sentence",),
             label_names=("negative", "positive"), label_encoding="index", hub_config="sst2",
             reference_n=20, ablation_steps=300, in_sample=True),
    TaskSpec("mrpc", "MRPC", header=True, tsv_columns=("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
             tsv_text_columns=("#1 String", "#2 String"), tsv_label_column="Quality", text_columns=_PAIR,
             label_names=("not_equivalent", "equivalent"), label_encoding="index", bom=True, hub_config="mrpc",
             metric="f1", metrics=("f1", "accuracy"), reference_n=30, ablation_steps=150, in_sample=True),
    TaskSpec("stsb", "STS-B", header=True, tsv_columns=_STSB,
             tsv_text_columns=_PAIR, tsv_label_column="score", text_columns=_PAIR,
             label_names=None, label_encoding="float", hub_config="stsb",
             metric="pearson", metrics=("pearson", "spearman"), reference_n=30, ablation_steps=200, in_sample=True),
    TaskSpec("qqp", "QQP", header=True, tsv_columns=("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
             tsv_text_columns=("question1", "question2"), tsv_label_column="is_duplicate",
             text_columns=("question1", "question2"),
             label_names=("not_duplicate", "duplicate"), label_encoding="index", hub_config="qqp",
             metric="f1", metrics=("f1", "accuracy"), reference_n=10, stage1_epochs=10, ablation_steps=200),
    TaskSpec("mnli", "MNLI", header=True, tsv_columns=_MNLI_TRAIN, tsv_dev_columns=_MNLI_DEV,
             tsv_text_columns=_PAIR, tsv_label_column="gold_label", text_columns=("premise", "hypothesis"),
             label_names=("entailment", "neutral", "contradiction"), label_encoding="name",
             dev_files=("dev_matched.tsv", "dev_mismatched.tsv"), hub_config="mnli",
             reference_n=10, stage1_epochs=10, ablation_steps=200),
    TaskSpec("qnli", "QNLI", header=True, tsv_columns=("index", "question", "sentence", "label"),
             tsv_text_columns=("question", "sentence"), tsv_label_column="label",
             text_columns=("question", "sentence"),
             label_names=("entailment", "not_entailment"), label_encoding="name", hub_config="qnli",
             reference_n=20, stage1_epochs=10, ablation_steps=200),
    TaskSpec("rte", "RTE", header=True, tsv_columns=("index", "sentence1", "sentence2", "label"),
             tsv_text_columns=_PAIR, tsv_label_column="label", text_columns=_PAIR,
             label_names=("entailment", "not_entailment"), label_encoding="name", hub_config="rte",
             reference_n=30, ablation_steps=120, in_sample=True),
    TaskSpec("wnli", "WNLI", header=True, tsv_columns=("index", "sentence1", "sentence2", "label"),
             tsv_text_columns=_PAIR, tsv_label_column="label", text_columns=_PAIR,
             label_names=("not_entailment", "entailment"), label_encoding="index", hub_config="wnli",
             reference_n=20, ablation_steps=40, in_sample=True),
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
