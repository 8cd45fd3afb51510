"""Exports (TSV read back with quoting off, exact Parquet/JSONL round trips) and the CLI end to end."""

import csv
import json

import click
import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.augmentation.build import augment_table, load_augmented
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.augmentation.export import export
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.vectors import LoadedVectors


@pytest.fixture
def augmented(tmp_path, tiny_model, tiny_tokenizer, tiny_vectors):
    def make(task, body, folder="data", keep=False):
        spec = glue.get_task(task)
        (tmp_path / folder / spec.folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / spec.folder / "train.tsv").write_text(body, encoding="utf-8")
        table = load_input(task=task, data_dir=tmp_path / folder, keep_source_columns=keep)
        words, vectors = tiny_vectors
        out = tmp_path / f"{task}-{folder}-aug"
        augment_table(table, out, Recipe(variants_per_example=4, replace_prob=0.7),
                      LoadedMLM(tiny_model, tiny_tokenizer, "tiny"), LoadedVectors(words, vectors, "v", "t"))
        return load_augmented(out), tmp_path / folder / spec.folder / "train.tsv"
    return make


RTE = ('index\tsentence1\tsentence2\tlabel\n'
       '0\tthe movie was "great" , he said\tthe "film" was good\tentailment\n'
       "1\tshe said the plot was boring\tthe story's plot was awful\tnot_entailment\n")


def test_tsv_export_reads_back_with_quoting_off(augmented, tmp_path):
    ds, source = augmented("rte", RTE)
    report = export(ds, "tsv", f"{tmp_path / 'out'}/")  # a folder: train_aug.tsv inside
    assert report.path == tmp_path / "out" / "train_aug.tsv" and report.rows == len(ds)
    text = report.path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "index\tsentence1\tsentence2\tlabel"
    assert '"great"' in text and '"""' not in text  # quotes as they are, never csv-escaped
    with report.path.open(encoding="utf-8") as f:  # how GLUE processors read it
        lines = list(csv.reader(f, delimiter="\t", quotechar=None))
    assert [line[1:3] for line in lines[1:]] == [[r["sentence1"], r["sentence2"]] for r in ds]
    assert {line[3] for line in lines[1:]} == {"entailment", "not_entailment"}
    back, _ = glue.read_tsv(report.path, glue.get_task("rte"))  # our strict reader agrees too
    assert back["sentence1"] == ds["sentence1"] and back["label"] == ds["label"]


def test_cola_tsv_has_no_header_and_stsb_scores_stay_floats(augmented, tmp_path):
    cola = "gj04\t1\t\tthe movie was great .\ngj04\t0\t*\tthe cat sat the .\n"
    ds, _ = augmented("cola", cola, "c", keep=True)
    path = export(ds, "tsv", tmp_path / "cola.tsv").path
    assert path.read_text().splitlines()[0].startswith("gj04\t1\t\tthe movie")
    ds, _ = augmented("cola", cola, "c2")  # the hub schema only: the file's other columns are left empty
    report = export(ds, "tsv", tmp_path / "cola2.tsv")
    assert report.path.read_text().splitlines()[0] == "\t1\t\tthe movie was great ."
    assert report.columns_left_empty == ["source", "author_label"]
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    ds, _ = augmented("stsb", header + "0\tmain\tMSRvid\t2012\t0001\tnone\tnone\tthe movie was great\ta film\t3.800\n",
                      "s", keep=True)
    assert ds.features["label"].dtype == "float32" and set(ds["label"]) == {float(np.float32(3.8))}
    assert ds["source_old_index"][0] == "0001"
    path = export(ds, "tsv", tmp_path / "stsb.tsv").path
    assert path.read_text().splitlines()[1].endswith("\t3.8")  # float32's shortest text
    back, _ = glue.read_tsv(path, glue.get_task("stsb"), keep_source_columns=True)
    assert back["label"] == ds["label"] and back["source_old_index"] == ds["source_old_index"]


def test_tab_inside_a_field_is_an_error_unless_replaced(tmp_path):
    ds = datasets.Dataset.from_dict({"text": ["fine", "a\tb", "c\nd"], "aug_example_id": [0, 1, 2]})
    with pytest.raises(InputError, match=r"row 1 .*column 'text': a tab or line break.*--replace-breaks"):
        export(ds, "tsv", tmp_path / "x.tsv")
    assert not (tmp_path / "x.tsv").exists()  # nothing half-written
    report = export(ds, "tsv", tmp_path / "x.tsv", replace_breaks=True)
    assert report.fields_with_breaks_replaced == 2
    assert report.path.read_text().splitlines() == ["text", "fine", "a b", "c d"]


def test_parquet_and_jsonl_round_trip_exactly(augmented, tmp_path):
    ds, _ = augmented("rte", RTE)
    ds = ds.add_column("weight", [0.1 + i / 3 for i in range(len(ds))])
    expected = ds.to_list()
    parquet = export(ds, "parquet", tmp_path / "a.parquet").path
    assert datasets.Dataset.from_parquet(str(parquet)).to_list() == expected
    jsonl = export(ds, "jsonl", tmp_path / "a.jsonl").path
    assert [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()] == expected


@pytest.fixture
def runner():
    return CliRunner()


def test_cli_end_to_end_on_real_glue_slice(runner, glue_dir, tiny_dir, tmp_path):
    out = tmp_path / "mrpc-aug"
    result = runner.invoke(main, ["augment", "--task", "mrpc", "--data-dir", str(glue_dir), "--limit", "6",
                                  "--mlm", str(tiny_dir), "-n", "4", "--seed", "3", "--out", str(out),
                                  "--device", "cpu", "--show", "1"])
    assert result.exit_code == 0, result.output
    assert f"from 6 to {out}" in result.output and "variant 1 (label: " in result.output
    ds = load_augmented(out)
    assert set(ds["aug_example_id"]) == set(range(6)) and ds.features["label"].names == ["not_equivalent", "equivalent"]
    again = runner.invoke(main, ["augment", "--task", "mrpc", "--data-dir", str(glue_dir), "--limit", "6",
                                 "--mlm", str(tiny_dir), "-n", "4", "--seed", "3", "--out", str(out)])
    assert again.exit_code == 0 and "already complete with these arguments" in again.output
    other = runner.invoke(main, ["augment", "--task", "mrpc", "--data-dir", str(glue_dir), "--limit", "6",
                                 "--mlm", str(tiny_dir), "-n", "5", "--seed", "3", "--out", str(out)])
    assert other.exit_code == 1 and "already exists; pass --overwrite" in other.output

    shown = runner.invoke(main, ["inspect", str(out), "--example", "2", "--no-pager"])
    assert shown.exit_code == 0 and "example 2 variant 0" in shown.output
    label = ds.features["label"].int2str(ds[[i for i, e in enumerate(ds["aug_example_id"]) if e == 2][0]]["label"])
    assert f"example 2 variant 0  label: {label}\n" in click.unstyle(shown.output)

    exported = runner.invoke(main, ["export", str(out), "--format", "tsv", "--to", f"{tmp_path / 'glue'}/"])
    assert exported.exit_code == 0, exported.output
    lines = (tmp_path / "glue" / "train_aug.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String" and len(lines) == len(ds) + 1


def test_cli_inspect_sentence(runner, tiny_dir):
    result = runner.invoke(main, ["inspect", "The Unbelievable movie was great", "--mlm", str(tiny_dir), "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "Unbelievable  vectors" in result.output and "movie  mlm" in result.output
    assert "distinct variants (seed 0)" in result.output


@pytest.mark.parametrize("args,message", [
    (["augment", "--task", "nope"], "unknown task 'nope'"),
    (["augment", "--task", "sst2", "--mlm", "/no/such/model"], "Error: /no/such/model: no such directory"),
    (["augment", "--task", "sst2", "-p", "1.5", "--mlm", "x"], "1.5 is not in the range 0<=x<=1"),
    (["augment", "--task", "sst2", "--batch-size", "0", "--mlm", "x"], "0 is not in the range x>=1"),
    (["augment", "--input", "missing.csv", "--text-columns", "a"], "Error: missing.csv: no such file"),
    (["export", "."], "Error: .: not a dataset written by tinyaug augment"),
])
def test_cli_errors_are_one_line(runner, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a clean exit, never an exception
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1, result.output


def test_every_command_has_help_with_an_example(runner):
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name
        for sub in getattr(command, "commands", {}):  # a group's own commands too
            result = runner.invoke(main, [name, sub, "--help"])
            assert result.exit_code == 0 and f"Example: tinyaug {name} {sub}" in result.output, sub


def test_tsv_export_of_a_hub_style_dataset_fills_missing_layout_columns(tmp_path):
    ds = datasets.Dataset.from_dict({"sentence1": ["a b"], "sentence2": ["c d"], "label": [1], "idx": [0],
                                     "aug_example_id": [0]})
    ds.info.description = json.dumps({"tinyaug": {"task": "mrpc", "label_column": "label"}})
    report = export(ds, "tsv", tmp_path / "x.tsv")
    assert report.columns_left_empty == ["#1 ID", "#2 ID"]
    assert report.path.read_text().splitlines() == ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t\t\ta b\tc d"]


def test_default_run_uses_the_starter_model_and_says_so(runner, tmp_path):
    from tinyaug.pipelines.starter.artifact import read_manifest

    out = tmp_path / "sst2-aug"
    result = runner.invoke(main, ["augment", "--task", "sst2", "--limit", "3", "-n", "2", "--out", str(out),
                                  "--device", "cpu"])
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    recall = read_manifest()["evaluation"]["overall"]["top15"]
    assert "tinyaug-starter-mlm" in card and "NOT BERT-base" in card and f"{recall:.1%}" in card
    assert "Masked LM: tinyaug-starter-mlm" in result.output or "tinyaug-starter-mlm" in result.output
