"""The file side of distillation: loading teachers, students, tokenizers and datasets, writing
datasets and JSON atomically, and failing fast (never hanging) on a hub name while offline.

Every problem becomes a one-line ``InputError`` / ``ModelLoadError`` that names what was
expected, what was found and the fix.

Not here: losses, training and metrics (``tinyaug.distill``); the commands (``distill_run``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                          PreTrainedModel, PreTrainedTokenizerBase)

from tinyaug.distill.labels import is_generic, label_permutation
from tinyaug.distill.student import set_task_labels
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.io.glue import TaskSpec, read_split, task_file
from tinyaug.pipelines.io.models import _first_line, from_pretrained

logger = logging.getLogger(__name__)

TEACHER_LOGITS_INFO = "teacher_logits.json"  # written inside a dataset dir beside the column


def load_tokenizer(name_or_path: str | Path, what: str = "tokenizer") -> PreTrainedTokenizerBase:
    return from_pretrained(AutoTokenizer.from_pretrained, name_or_path, what)


def load_task_model(name_or_path: str | Path, task: TaskSpec, who: str = "teacher",
                    ) -> tuple[PreTrainedModel, list[int]]:
    """A fine-tuned task model and the permutation putting its outputs in the task's label order.

    Refuses a model whose classification head was not in the checkpoint (it would be freshly
    random: the model was never fine-tuned) or does not fit the task.
    """
    model, info = from_pretrained(AutoModelForSequenceClassification.from_pretrained, name_or_path,
                                  who, output_loading_info=True, weights_only=True)
    prefix = model.base_model_prefix + "."
    head_missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(prefix))
    if head_missing:
        raise ModelLoadError(f"the {who} {name_or_path} has no trained classification head "
                             f"({', '.join(head_missing)} missing from its weights): it was never "
                             f"fine-tuned on {task.name}; make one with `tinyaug finetune "
                             f"{name_or_path} --task {task.name} --data-dir GLUE_DIR --out DIR`")
    encoder_missing = sorted(info.get("missing_keys", ()))
    if encoder_missing:
        raise ModelLoadError(f"the {who} {name_or_path} lacks weights {', '.join(encoder_missing[:3])}"
                             f"{' ...' if len(encoder_missing) > 3 else ''}; it is incomplete")
    permutation = label_permutation(model.config.id2label, task.label_names, who=f"{who} {name_or_path}")
    model.eval()
    return model, permutation


def load_student_dir(path: str | Path, task: TaskSpec) -> PreTrainedModel:
    """A student from a model directory, with the task's outputs in the task's label order.

    A directory with a head for this task (named labels) keeps it, rows re-ordered by name; a
    bare encoder, or one with another task's head, gets a fresh head.
    """
    config = from_pretrained(AutoConfig.from_pretrained, path, "student")
    keep_head = False
    permutation = None
    if not is_generic(config.id2label) or task.label_names is None:
        try:
            permutation = label_permutation(config.id2label, task.label_names, who=f"student {path}")
            keep_head = True
        except InputError as exc:
            logger.info("the student's own head does not fit %s (%s): it gets a fresh one", task.name, exc)
    if not keep_head:
        set_task_labels(config, task.label_names)
    model = from_pretrained(AutoModelForSequenceClassification.from_pretrained, path, "student",
                            config=config, ignore_mismatched_sizes=True, weights_only=True)
    head = getattr(model, "classifier", None)
    if keep_head and permutation is not None and isinstance(head, torch.nn.Linear) \
            and permutation != list(range(len(permutation))):
        with torch.no_grad():
            index = torch.as_tensor(permutation)
            head.weight.copy_(head.weight[index].clone())
            head.bias.copy_(head.bias[index].clone())
    set_task_labels(model.config, task.label_names)
    return model


def check_same_vocabulary(teacher_tokenizer: PreTrainedTokenizerBase, student_tokenizer: PreTrainedTokenizerBase,
                          teacher_model: PreTrainedModel, student_model: PreTrainedModel) -> None:
    """Both models must read the same token ids: same vocabulary and embedding rows."""
    t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    t_rows, s_rows = teacher_model.config.vocab_size, student_model.config.vocab_size
    if t_vocab != s_vocab or t_rows != s_rows:
        differ = sorted(set(t_vocab.items()) ^ set(s_vocab.items()), key=lambda kv: kv[1])
        example = f"; e.g. {differ[0][0]!r}" if differ else ""
        raise InputError(f"teacher and student vocabularies differ (teacher {len(t_vocab)} tokens / "
                         f"{t_rows} embedding rows, student {len(s_vocab)} / {s_rows}{example}); "
                         "distillation feeds both the same token ids: give the student as a size "
                         "(--student layers=4,hidden=312,heads=12,intermediate=1200) to build it with "
                         "the teacher's vocabulary, or use a student with the teacher's tokenizer")


# ---------------------------------------------------------------- datasets


def load_task_dataset(path: str | Path, task: TaskSpec) -> datasets.Dataset:
    """A dataset saved by ``tinyaug augment`` (or any ``save_to_disk`` dir) with the task's columns."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"--data {path}: no such directory; expected a dataset written by "
                         f"`tinyaug augment` (save_to_disk)")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise InputError(f"--data {path}: not a saved dataset ({_first_line(exc)}); expected a "
                         "directory written by `tinyaug augment` (save_to_disk)") from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputError(f"--data {path}: a DatasetDict without a 'train' split "
                             f"(found {', '.join(loaded)}); pass the split's own directory")
        loaded = loaded["train"]
    needed = [*task.text_columns, task.label_column]
    missing = [c for c in needed if c not in loaded.column_names]
    if missing:
        raise InputError(f"--data {path}: no column {', '.join(map(repr, missing))} for {task.name} "
                         f"(expected {', '.join(map(repr, needed))}, found "
                         f"{', '.join(map(repr, loaded.column_names))}); is --task right?")
    not_text = [c for c in task.text_columns if getattr(loaded.features[c], "dtype", None) not in ("string", "large_string")]
    if not_text:
        raise InputError(f"--data {path}: text column(s) {not_text} are not strings")
    if len(loaded) == 0:
        raise InputError(f"--data {path}: the dataset has no rows")
    return loaded


def dev_split_names(task: TaskSpec) -> list[str]:
    """``["dev"]``, or for MNLI ``["dev_matched", "dev_mismatched"]``, kept apart."""
    return [Path(n).stem for n in task.dev_files] if len(task.dev_files) > 1 else ["dev"]


def check_dev_files(data_dir: str | Path, task: TaskSpec) -> None:
    """Fail before any training when a dev file is missing (``InputError`` from ``task_file``)."""
    for split in dev_split_names(task):
        task_file(Path(data_dir), task, split)


def read_dev_splits(data_dir: str | Path, task: TaskSpec, limit: int | None = None
                    ) -> dict[str, datasets.Dataset]:
    out = {}
    for split in dev_split_names(task):
        ds, bad = read_split(Path(data_dir), task, split, skip_bad_rows=True, limit=limit)
        if bad:
            logger.warning("%s %s: skipped %d bad rows", task.name, split, len(bad))
        out[split] = ds
    return out


def save_dataset_atomically(dataset: datasets.Dataset, target: str | Path,
                            extra_files: dict[str, Any] | None = None,
                            carry_from: str | Path | None = None) -> Path:
    """``save_to_disk`` into ``TARGET.saving`` beside ``target``, then swap it into place (not
    ``TARGET.partial``: that is the work folder of an augment run building ``target``).

    ``extra_files``: ``{name: json-able}`` written into the directory before the swap, so the
    column and its description appear together or not at all. ``carry_from``: a dataset
    directory whose other files (the augmentation card ``README.md``, ...) are copied over.
    """
    target = Path(target)
    partial = target.with_name(target.name + ".saving")
    old = target.with_name(target.name + ".old")
    for stale in (partial, old):
        if stale.exists():
            shutil.rmtree(stale)
    dataset.save_to_disk(str(partial))
    if carry_from is not None:
        for item in Path(carry_from).iterdir():
            if item.is_file() and not (partial / item.name).exists() \
                    and not item.name.endswith(".arrow") and item.name not in (extra_files or {}):
                shutil.copy2(item, partial / item.name)
    for name, content in (extra_files or {}).items():
        (partial / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    if target.exists():
        target.rename(old)
    partial.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


def with_metadata(dataset: datasets.Dataset, key: str, value: Any) -> datasets.Dataset:
    """Record ``value`` under ``{"tinyaug": {key: ...}}`` in the dataset's description, where
    ``tinyaug augment`` keeps its recipe (a description that is not JSON is left alone)."""
    text = dataset.info.description or ""
    try:
        meta = json.loads(text) if text.strip() else {}
    except ValueError:
        return dataset
    if not isinstance(meta, dict):
        return dataset
    meta.setdefault("tinyaug", {})[key] = value
    dataset.info.description = json.dumps(meta)
    return dataset


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> Any | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: str | Path) -> Path:
    """``save_pretrained`` (safetensors) with the tokenizer beside it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))  # safetensors: the default since transformers 4.35, the only format in 5
    tokenizer.save_pretrained(str(out))
    return out
