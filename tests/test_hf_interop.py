"""tinyaug's datasets and exports train a plain Hugging Face ``Trainer`` as they are: the hub's
column names, nothing renamed, loaded the way users load files; files readable by other users."""

import os
import stat

import datasets
import numpy as np
import pytest
import torch
from transformers import (BertForSequenceClassification, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

from tinyaug.pipelines.augmentation.build import load_augmented
from tinyaug.pipelines.augmentation.export import export
from tinyaug.pipelines.experiment import toys as T
from tinyaug.tasks import get_task

from helpers import write_augmented

LOADERS = {"csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet"}


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
    root = tmp_path_factory.mktemp("interop")
    made = {}
    for task in ("sst2", "mrpc", "stsb"):
        T.write_glue_task(root / "glue", task, train_rows=12, dev_rows=4)
        made[task] = write_augmented(root / "glue", task, root / f"{task}-aug", variants=1)
    return made


def _train_a_few_steps(ds: datasets.Dataset, task: str, tmp_path) -> float:
    """What the Hugging Face course does: tokenize the standard columns, hand the rest to Trainer."""
    spec = get_task(task)
    tokenizer = T.tiny_tokenizer(tmp_path / "vocab")
    config = T.tiny_config(layers=1, labels=spec.label_names)

    def tokenize(batch):
        return tokenizer(*(batch[c] for c in spec.text_columns), truncation=True, max_length=32)

    encoded = ds.map(tokenize, batched=True)
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=2, per_device_train_batch_size=4,
                             report_to=[], save_strategy="no", disable_tqdm=True, use_cpu=True)
    trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=encoded,
                      data_collator=DataCollatorWithPadding(tokenizer))
    return trainer.train().training_loss


@pytest.mark.parametrize("task", ["sst2", "mrpc", "stsb"])
def test_the_saved_dataset_trains_a_plain_trainer(augmented, task, tmp_path):
    ds = load_augmented(augmented[task])
    assert ds.column_names[:len(get_task(task).text_columns) + 2] == [*get_task(task).text_columns, "label", "idx"]
    assert np.isfinite(_train_a_few_steps(ds, task, tmp_path))


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
@pytest.mark.parametrize("task", ["sst2", "mrpc", "stsb"])
def test_every_export_trains_a_plain_trainer(augmented, task, fmt, tmp_path):
    path = export(load_augmented(augmented[task]), fmt, tmp_path / f"train.{fmt}").path
    loaded = datasets.load_dataset(LOADERS[fmt], data_files=str(path), split="train")
    spec = get_task(task)
    if fmt in ("csv", "json"):
        # run_glue.py --train_file without --task_name: sentence1/sentence2 if present, else the
        # first two non-label columns, else one: it must find exactly the task's text columns
        others = [c for c in loaded.column_names if c != "label"]
        keys = ["sentence1", "sentence2"] if {"sentence1", "sentence2"} <= set(others) else others[:2]
        assert keys == list(spec.text_columns) and set(loaded.column_names) == {*spec.text_columns, "label"}
    dtype = loaded.features["label"].dtype
    assert dtype.startswith("float") if spec.is_regression else dtype.startswith("int")
    assert np.isfinite(_train_a_few_steps(loaded, task, tmp_path))


def test_provenance_is_kept_or_left_out_on_request(augmented, tmp_path):
    ds = load_augmented(augmented["mrpc"])
    with_it = export(ds, "csv", tmp_path / "a.csv", provenance=True)
    assert with_it.columns == ["sentence1", "sentence2", "label", "aug_example_id", "aug_variant", "aug_changes"]
    without = export(ds, "parquet", tmp_path / "b.parquet", provenance=False)
    assert without.columns == ["sentence1", "sentence2", "label", "idx"]
    back = datasets.load_dataset("csv", data_files=str(with_it.path), split="train")
    assert back["aug_variant"] == ds["aug_variant"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_are_readable_as_the_umask_allows(augmented, tmp_path, umask):
    """mkstemp/mkdtemp alone would make every output 0600/0700, unreadable to another user."""
    previous = os.umask(umask)
    try:
        T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
        out = write_augmented(tmp_path / "glue", "sst2", tmp_path / "out", variants=1)
        exported = export(load_augmented(out), "csv", tmp_path / "x.csv").path
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in out.iterdir())
    assert stat.S_IMODE(exported.stat().st_mode) == 0o666 & ~umask
