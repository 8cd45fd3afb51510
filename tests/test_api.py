"""The Python API: ``tinyaug.augment_dataset`` gives the command line's rows."""

import datasets
import pytest
from click.testing import CliRunner

import tinyaug
from tinyaug.errors import InputError
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.io.glue import read_split


def _cli(args):
    result = CliRunner().invoke(main, ["augment", *map(str, args), "--device", "cpu", "--show", "0"])
    assert result.exit_code == 0, result.output
    return tinyaug.load_augmented(args[args.index("--out") + 1])


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_the_api_gives_the_command_lines_rows(task, glue_dir, tiny_dir, tmp_path):
    cli = _cli(["--task", task, "--data-dir", glue_dir, "--limit", 8, "--mlm", tiny_dir, "-n", 3, "--seed", 5,
                "--out", tmp_path / "cli"])
    hub_style, _ = read_split(glue_dir, task, limit=8)  # what load_dataset("nyu-mll/glue", task) gives
    api = tinyaug.augment_dataset(hub_style.remove_columns("aug_example_id"), task=task, mlm=str(tiny_dir),
                                  recipe=tinyaug.Recipe(variants_per_example=3, seed=5), device="cpu")
    assert api.features == cli.features and api.data.table.equals(cli.data.table)
    assert tinyaug.read_metadata(api)["recipe"] == tinyaug.read_metadata(cli)["recipe"]


def test_a_plain_table_through_the_api_and_the_cli(tmp_path, tiny_dir):
    rows = datasets.Dataset.from_dict({"review": ["the movie was great", "a dull and boring film"],
                                       "stars": ["good", "bad"]})
    rows.to_parquet(str(tmp_path / "reviews.parquet"))
    cli = _cli(["--input", tmp_path / "reviews.parquet", "--text-columns", "review", "--label-column", "stars",
                "--mlm", tiny_dir, "-n", 4, "--out", tmp_path / "cli"])
    api = tinyaug.augment_dataset(rows, text_columns=["review"], label_column="stars", mlm=str(tiny_dir),
                                  recipe=tinyaug.Recipe(variants_per_example=4), device="cpu",
                                  out=tmp_path / "kept")
    assert api.data.table.equals(cli.data.table) and (tmp_path / "kept" / "README.md").is_file()


def test_the_api_says_what_it_needs(tiny_dir):
    with pytest.raises(InputError, match="say which columns hold the text"):
        tinyaug.augment_dataset(datasets.Dataset.from_dict({"a": ["x"]}))
    with pytest.raises(InputError, match=r"no column 'sentence', 'label'; the columns are 'a'"):
        tinyaug.augment_dataset(datasets.Dataset.from_dict({"a": ["x"]}), task="sst2", mlm=str(tiny_dir))
    with pytest.raises(InputError, match="pass one split"):
        tinyaug.augment_dataset(datasets.DatasetDict({"train": datasets.Dataset.from_dict({"a": ["x"]})}))


def test_the_api_takes_the_backend_and_masks_per_context_as_the_cli_does(glue_dir, tiny_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    cli = _cli(["--task", "sst2", "--data-dir", glue_dir, "--limit", 8, "--mlm", tiny_dir, "-n", 3,
                "--backend", "onnxruntime", "--masks-per-context", 2, "--out", tmp_path / "cli"])
    hub_style, _ = read_split(glue_dir, "sst2", limit=8)
    api = tinyaug.augment_dataset(hub_style.remove_columns("aug_example_id"), task="sst2", mlm=str(tiny_dir),
                                  recipe=tinyaug.Recipe(variants_per_example=3, masks_per_context=2), backend="onnxruntime")
    assert api.data.table.equals(cli.data.table)
    assert "[onnxruntime" in tinyaug.read_metadata(api)["mlm"]


def test_a_callers_loaded_model_stays_usable_after_an_onnxruntime_run(glue_dir, tiny_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    hub_style, _ = read_split(glue_dir, "sst2", limit=6)
    ds, recipe = hub_style.remove_columns("aug_example_id"), tinyaug.Recipe(variants_per_example=3)
    loaded = tinyaug.load_masked_lm(str(tiny_dir), "cpu")  # loaded once, to reuse across calls
    on_ort = tinyaug.augment_dataset(ds, task="sst2", mlm=loaded, recipe=recipe, backend="onnxruntime")
    assert next(loaded.model.parameters()).device.type == "cpu"  # the caller's model is not released
    for backend in ("torch", "onnxruntime"):  # the same object again, on either backend
        again = tinyaug.augment_dataset(ds, task="sst2", mlm=loaded, recipe=recipe, backend=backend)
        assert again["sentence"] == on_ort["sentence"]


def test_a_callers_loaded_model_stays_fp32_after_a_reduced_precision_run(glue_dir, tiny_dir):
    import torch

    hub_style, _ = read_split(glue_dir, "sst2", limit=6)
    ds, recipe = hub_style.remove_columns("aug_example_id"), tinyaug.Recipe(variants_per_example=3)
    loaded = tinyaug.load_masked_lm(str(tiny_dir), "cpu")
    fp32 = tinyaug.augment_dataset(ds, task="sst2", mlm=loaded, recipe=recipe, device="cpu")
    tinyaug.augment_dataset(ds, task="sst2", mlm=loaded, recipe=recipe, device="cpu", precision="int8")
    assert all(type(m) is torch.nn.Linear for m in loaded.model.modules() if "Linear" in type(m).__name__)
    again = tinyaug.augment_dataset(ds, task="sst2", mlm=loaded, recipe=recipe, device="cpu")
    assert again.data.table.equals(fp32.data.table)  # still the fp32 model its identifier names
