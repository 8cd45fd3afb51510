"""Commands that read a dataset, given one tinyaug did not write, odd ``aug_`` columns, missing
texts or labels out of range: one line and nothing written, or work on the columns that are
there; and none of them writes into its input folder (no ``cache-*.arrow``). Also the bench's
ranges and the hub input's empty texts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import tiny_mlm, tiny_vectors, write_augmented
from tinyaug.errors import InputError
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.experiment import toys as T

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
STUDENT = "layers=1,hidden=16,heads=2,intermediate=20"
ODD_MESSAGE = "column 'aug_variant' holds text, not integers"
SENTENCES = ["the movie was great", "a bad film", "it was fine", "a good story"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, *parts: str) -> str:
    """The command failed with one ``Error:`` line holding ``parts`` and no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and not isinstance(result.exception, (KeyError, TypeError, ValueError))
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def save(folder: Path, columns: dict) -> Path:
    features = None
    if "label" in columns and all(isinstance(v, int) and 0 <= v < 2 for v in columns["label"]):
        features = datasets.Features({c: datasets.Value("string") for c in columns if c != "label"})
        features["label"] = datasets.ClassLabel(names=["negative", "positive"])
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    glue = T.write_glue_task(root / "glue", "sst2", train_rows=16, dev_rows=8)
    teacher = T.save_tiny_model(root / "teacher", T.tiny_config())
    aug = write_augmented(glue, "sst2", root / "aug", variants=2)
    labelled = invoke("teacher-logits", "--teacher", teacher, "--data", aug, "--task", "sst2", "--device", "cpu")
    assert labelled.exit_code == 0, labelled.output
    n = len(SENTENCES)
    return {
        "root": root, "glue": glue, "teacher": teacher, "aug": aug,
        "plain": save(root / "plain", {"sentence": SENTENCES, "label": [1, 0, 1, 1]}),
        "odd": save(root / "odd", {"sentence": SENTENCES, "label": [1, 0, 1, 1], "aug_example_id": list(range(n)),
                                   "aug_variant": ["x"] * n, "aug_changes": ["y"] * n}),
        "empty": save(root / "empty", {"sentence": ["the movie was great", None, "a bad film", " "],
                                       "label": [1, 0, 0, 1]}),
        "labels": save(root / "labels", {"sentence": SENTENCES, "label": [1, 0, 7, -1]}),
    }


def test_inspect_and_browse_refuse_a_dataset_tinyaug_did_not_write(work):
    from tinyaug.pipelines.browse.data import DatasetBrowser

    refused(invoke("inspect", work["plain"], "--no-pager"), "no aug_example_id, aug_variant, aug_changes columns",
            "not a dataset written by tinyaug augment", "tinyaug augment --input")
    refused(invoke("inspect", work["odd"], "--no-pager"), ODD_MESSAGE, "'aug_changes' holds text",
            "not written by tinyaug")
    for name, message in (("plain", "no aug_example_id"), ("odd", ODD_MESSAGE)):
        with pytest.raises(InputError, match=message):
            DatasetBrowser(work[name])


def test_filter_and_export_say_what_a_plain_or_odd_dataset_lacks(work, tmp_path):
    refused(invoke("filter", work["plain"], "--out", tmp_path / "f"), "no aug_variant column",
            "not a dataset written by tinyaug augment")
    refused(invoke("filter", work["odd"], "--out", tmp_path / "f"), ODD_MESSAGE)
    refused(invoke("export", work["odd"], "--format", "jsonl", "--to", tmp_path / "odd.jsonl"), ODD_MESSAGE)
    refused(invoke("export", work["plain"], "--labels", "teacher", "--format", "jsonl", "--to", tmp_path / "t.jsonl"),
            "no aug_variant column")
    assert not (tmp_path / "f").exists() and not list(tmp_path.glob("*.jsonl"))
    done = invoke("export", work["plain"], "--format", "jsonl", "--to", tmp_path / "plain.jsonl")
    assert done.exit_code == 0, done.output  # a plain dataset exports as it is
    rows = [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert [r["sentence"] for r in rows] == SENTENCES


def test_teacher_logits_labels_a_plain_dataset_and_refuses_odd_columns(work, tmp_path):
    done = invoke("teacher-logits", "--teacher", work["teacher"], "--data", work["plain"], "--task", "sst2",
                  "--out", tmp_path / "plain-t", "--device", "cpu")
    assert done.exit_code == 0, done.output
    labelled = datasets.load_from_disk(str(tmp_path / "plain-t"))
    assert len(labelled["teacher_logits"]) == 4 and "teacher_flip" not in labelled.column_names  # no variants
    refused(invoke("teacher-logits", "--teacher", work["teacher"], "--data", work["odd"], "--task", "sst2",
                   "--out", tmp_path / "odd-t", "--device", "cpu"), "--data", ODD_MESSAGE)
    assert not (tmp_path / "odd-t").exists()


def test_missing_or_empty_texts_are_refused_with_the_count_and_first_row(work, tmp_path):
    before = files(work["empty"])
    message = "2 row(s) with a missing or empty text in column 'sentence' (first: row 1"
    refused(invoke("teacher-logits", "--teacher", work["teacher"], "--data", work["empty"], "--task", "sst2",
                   "--device", "cpu"), message)
    refused(invoke("distill", "--teacher", work["teacher"], "--student", STUDENT, "--data", work["empty"],
                   "--task", "sst2", "--out", tmp_path / "s", "--device", "cpu"), message)
    assert files(work["empty"]) == before and not (tmp_path / "s").exists()


def test_labels_outside_the_teachers_range_are_refused_before_training(work, tmp_path):
    line = refused(invoke("distill", "--teacher", work["teacher"], "--student", STUDENT, "--data", work["labels"],
                          "--task", "sst2", "--out", tmp_path / "s", "--device", "cpu", "--stage1-max-steps", "1",
                          "--stage2-max-steps", "1"),
                   "column 'label' has 2 label(s)", "class index 0..1", "row 2: 7, row 3: -1")
    assert "negative, positive" in line and not (tmp_path / "s").exists()
    refused(invoke("teacher-logits", "--teacher", work["teacher"], "--data", work["labels"], "--task", "sst2",
                   "--out", tmp_path / "t", "--device", "cpu"), "row 2: 7")


def test_no_command_writes_into_the_dataset_it_reads(work, tmp_path):
    source = tmp_path / "aug"
    shutil.copytree(work["aug"], source)
    before = files(source)
    ds = datasets.load_from_disk(str(source))
    variants = np.asarray(ds["aug_variant"]) > 0
    threshold = float(np.median(np.asarray(ds["teacher_confidence"])[variants]))
    steps = [
        ("filter", source, "--keep", f"confident:{threshold}", "--labels", "teacher", "--out", tmp_path / "f"),
        ("export", source, "--labels", "teacher", "--format", "jsonl", "--to", tmp_path / "x.jsonl"),
        ("inspect", source, "--no-pager"),
        ("teacher-logits", "--teacher", work["teacher"], "--data", source, "--task", "sst2", "--out", tmp_path / "t",
         "--device", "cpu"),
        ("distill", "--teacher", work["teacher"], "--student", STUDENT, "--data", source, "--task", "sst2",
         "--out", tmp_path / "s", "--device", "cpu", "--stage1-max-steps", "1", "--stage2-max-steps", "1",
         "--stage1-batch-size", "8", "--stage2-batch-size", "8"),
    ]
    for args in steps:
        result = invoke(*args)
        assert result.exit_code == 0, (args[0], result.output)
        assert files(source) == before, f"{args[0]} wrote into its input: {set(files(source)) - set(before)}"
    kept = datasets.load_from_disk(str(tmp_path / "f"))
    assert 0 < len(kept) < len(ds)  # rows were dropped: the selection the old code flattened beside the source


def test_bench_refuses_a_naive_fraction_of_zero_and_an_empty_slice(monkeypatch):
    from tinyaug.pipelines.bench.run import BenchConfig

    monkeypatch.setattr("tinyaug.pipelines.bench.run.run_bench", lambda *a, **k: pytest.fail("bench ran"))
    result = invoke("bench", "--naive-fraction", "0")
    assert result.exit_code == 2 and "--naive-fraction" in result.output and "Traceback" not in result.output
    with pytest.raises(InputError, match="--naive-fraction 0: above 0 and at most 1"):
        BenchConfig(naive_fraction=0)
    with pytest.raises(InputError, match="not both 0"):
        BenchConfig(sst2_rows=0, mrpc_rows=0)


def test_bench_times_one_task_when_the_other_has_no_rows(tiny_dir, monkeypatch):
    from tinyaug.pipelines.bench.run import BenchConfig, run_bench

    monkeypatch.setattr("tinyaug.pipelines.bench.run.matmul_gflops", lambda: 100.0)  # not what is tested here
    monkeypatch.setattr("tinyaug.pipelines.bench.run.load_vectors", tiny_vectors)
    result = run_bench(BenchConfig(sst2_rows=0, mrpc_rows=2, naive_fraction=1.0, variants=1, mlm=str(tiny_dir),
                                   data_dir=str(REPO / "resources" / "glue_sample")))
    assert result["examples"] == 2 and result["sentences"] == 4 and result["naive_examples"] == 2


def test_hub_rows_with_empty_texts_are_skipped_and_counted_in_the_card(monkeypatch, tmp_path):
    from tinyaug.augment.recipe import Recipe
    from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
    from tinyaug.pipelines.io import glue
    from tinyaug.pipelines.io.tables import load_input

    rows = {"sentence": ["the movie was great", None, "", "a bad film"], "label": [1, 0, 1, 0], "idx": [0, 1, 2, 3]}
    hub = datasets.Dataset.from_dict({**rows, "aug_example_id": [0, 1, 2, 3]})
    monkeypatch.setattr(glue, "load_hub_split", lambda task, split="train": hub)
    table = load_input(task="sst2", from_hub=True)
    assert list(table.dataset["sentence"]) == ["the movie was great", "a bad film"]
    assert list(table.dataset["aug_example_id"]) == [0, 3]
    assert [s.line for s in table.skipped] == [2, 3] and "empty text in column 'sentence'" in str(table.skipped[0])
    report = augment_table(table, tmp_path / "aug", Recipe(variants_per_example=1), tiny_mlm(tmp_path / "vocab"),
                           tiny_vectors(), BuildOptions())
    assert report.rows_in == 2
    assert "| rows skipped as bad input | 2 |" in (tmp_path / "aug" / "README.md").read_text()
