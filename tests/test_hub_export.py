"""``tinyaug export --format hub``: a folder ``datasets.load_dataset(FOLDER)`` loads with the saved
dataset's features and rows, Parquet under data/, and a README whose YAML the Hub reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import pytest
import yaml
from click.testing import CliRunner

from helpers import tiny_mlm, tiny_vectors
from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.io.tables import load_input, sample_dir


def augmented(task: str, out: Path, split: str = "train", rows: int = 10, variants: int = 2) -> Path:
    """Real rows of the package's GLUE sample, augmented by tiny models."""
    table = load_input(task=task, data_dir=sample_dir(), split=split, limit=rows)
    with tempfile.TemporaryDirectory() as vocab:
        mlm = tiny_mlm(vocab)
    augment_table(table, out, Recipe(variants_per_example=variants, seed=1), mlm, tiny_vectors(), BuildOptions())
    return out


def export(*args) -> str:
    result = CliRunner().invoke(main, ["export", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def header(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.parametrize("task, label", [("sst2", datasets.ClassLabel(names=["negative", "positive"])),
                                         ("stsb", datasets.Value("float32"))])
def test_load_dataset_reads_the_folder_with_the_saved_features(task, label, tmp_path):
    data = augmented(task, tmp_path / "aug")
    output = export(data, "--format", "hub", "--to", tmp_path / "hub")
    assert output.startswith("Wrote a Hub dataset folder (train ")
    assert (tmp_path / "hub" / "data" / "train-00000-of-00001.parquet").is_file()
    loaded = datasets.load_dataset(str(tmp_path / "hub"))
    saved = datasets.load_from_disk(str(data))
    assert list(loaded) == ["train"]
    assert loaded["train"].features == saved.features and saved.features["label"] == label
    assert loaded["train"].to_list() == saved.to_list()
    meta = header(tmp_path / "hub")
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert datasets.Features._from_yaml_list(meta["dataset_info"]["features"]) == saved.features
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(saved)
    assert meta["license"] == "other" and meta["task_categories"] == ["text-classification"]
    assert meta["source_datasets"] == ["extended|nyu-mll/glue"] and "tinyaug" in meta["tags"]
    card = (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
    assert "## Recipe" in card and "## Statistics" in card and "huggingface-cli upload" in card


def test_an_mrpc_slice_with_a_validation_split(tmp_path):
    train = augmented("mrpc", tmp_path / "train", rows=6)
    dev = augmented("mrpc", tmp_path / "dev", split="dev", rows=4, variants=0)  # originals, with provenance
    export(train, "--format", "hub", "--validation", dev, "--to", tmp_path / "hub")
    loaded = datasets.load_dataset(str(tmp_path / "hub"))
    assert sorted(loaded) == ["train", "validation"]
    for split, folder in (("train", train), ("validation", dev)):
        saved = datasets.load_from_disk(str(folder))
        assert loaded[split].features == saved.features and loaded[split].to_list() == saved.to_list()
    assert loaded["validation"].features["label"].names == ["not_equivalent", "equivalent"]
    assert {"split": "validation", "path": "data/validation-*"} in header(tmp_path / "hub")["configs"][0]["data_files"]


def test_hub_export_refusals_are_one_line(tmp_path):
    data = augmented("sst2", tmp_path / "aug", rows=4)
    other = augmented("mrpc", tmp_path / "other", rows=3)
    export(data, "--format", "hub", "--to", tmp_path / "hub")
    runner = CliRunner()
    again = runner.invoke(main, ["export", str(data), "--format", "hub", "--to", str(tmp_path / "hub")])
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    assert runner.invoke(main, ["export", str(data), "--format", "hub", "--to", str(tmp_path / "hub"),
                                "--overwrite"]).exit_code == 0
    mixed = runner.invoke(main, ["export", str(data), "--format", "hub", "--validation", str(other),
                                 "--to", str(tmp_path / "mixed")])
    assert mixed.exit_code == 1 and mixed.output.startswith("Error: --validation: its columns differ")
    assert not (tmp_path / "mixed").exists()
    wrong = runner.invoke(main, ["export", str(data), "--format", "csv", "--validation", str(other)])
    assert wrong.exit_code == 2 and "--validation goes with --format hub" in wrong.output
