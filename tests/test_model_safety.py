"""Model folders that would run their own code, or miss their masked-LM head, are refused in one
line before anything runs: no "run the custom code? [y/N]" prompt, no code of the folder's
executed, no random head proposing words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyaug.pipelines.cli import main
from tinyaug.pipelines.experiment import toys as T

MODELING = '''
from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification


class XConfig(BertConfig):
    model_type = "x-custom"


class XForMaskedLM(BertForMaskedLM):
    config_class = XConfig


class XForSequenceClassification(BertForSequenceClassification):
    config_class = XConfig
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Toy SST-2, vectors, and a tiny model folder whose config asks for its own code."""
    import numpy as np

    root = tmp_path_factory.mktemp("safety")
    T.write_glue_task(root / "glue", "sst2", train_rows=8, dev_rows=4)
    T.save_tiny_model(root / "custom", T.tiny_config())
    config = json.loads((root / "custom" / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_x.XConfig", "AutoModelForMaskedLM": "modeling_x.XForMaskedLM",
                          "AutoModelForSequenceClassification": "modeling_x.XForSequenceClassification"}
    config["model_type"] = "x-custom"
    (root / "custom" / "config.json").write_text(json.dumps(config))
    (root / "custom" / "modeling_x.py").write_text(MODELING.format(marker=str(root / "marker")))
    words = [w for w in T.WORDS if w.isalpha()]
    vectors = np.random.default_rng(0).standard_normal((len(words), 8))
    (root / "vectors.txt").write_text("".join(f"{w} " + " ".join(f"{x:.5f}" for x in v) + "\n"
                                              for w, v in zip(words, vectors)))
    return root


def _refused(result, folder: Path, marker: Path) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(folder) in lines[0] and "never runs a model's own code" in lines[0]
    assert "[y/N]" not in result.output
    assert not marker.exists()


def test_custom_code_mlm_is_refused_without_prompt(world, tmp_path):
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", str(world / "glue"),
                                       "--mlm", str(world / "custom"), "--vectors", str(world / "vectors.txt"),
                                       "--device", "cpu", "--out", str(tmp_path / "out")], input=None)
    _refused(result, world / "custom", world / "marker")
    assert not (tmp_path / "out").exists()


def test_custom_code_teacher_is_refused_without_prompt(world, tmp_path):
    data = tmp_path / "data"
    from tinyaug.pipelines.io.glue import get_task, read_split

    ds, _ = read_split(world / "glue", get_task("sst2"), "train")
    ds.save_to_disk(str(data))
    result = CliRunner().invoke(main, ["teacher-logits", "--teacher", str(world / "custom"), "--data", str(data),
                                       "--task", "sst2", "--device", "cpu"], input=None)
    _refused(result, world / "custom", world / "marker")


def test_custom_code_model_is_refused_by_finetune(world, tmp_path):
    result = CliRunner().invoke(main, ["finetune", str(world / "custom"), "--task", "sst2", "--data-dir",
                                       str(world / "glue"), "--out", str(tmp_path / "ft")], input=None)
    _refused(result, world / "custom", world / "marker")
    assert not (tmp_path / "ft").exists()


def test_every_load_passes_trust_remote_code_false(monkeypatch, tmp_path):
    from tinyaug.pipelines.io import models

    seen = {}

    def loader(name, **kwargs):
        seen.update(kwargs)
        return "loaded"

    (tmp_path / "config.json").write_text("{}")
    assert models.from_pretrained(loader, tmp_path) == "loaded"
    assert seen["trust_remote_code"] is False


def test_hub_model_needing_remote_code_is_refused(monkeypatch):
    from tinyaug.errors import ModelLoadError
    from tinyaug.pipelines.io import models

    def loader(name, **kwargs):
        assert kwargs["trust_remote_code"] is False
        raise ValueError("The repository org/x contains custom code which must be executed to correctly load the "
                         "model. Please pass the argument `trust_remote_code=True` to allow custom code to be run.")

    with pytest.raises(ModelLoadError, match="never runs a model's own code"):
        models.from_pretrained(loader, "org/x")


def test_encoder_without_masked_lm_head_is_refused(world, tmp_path):
    import torch
    from transformers import BertModel

    folder = tmp_path / "encoder"
    tokenizer = T.tiny_tokenizer(folder)
    torch.manual_seed(0)
    BertModel(T.tiny_config(labels=None)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", str(world / "glue"),
                                       "--mlm", str(folder), "--vectors", str(world / "vectors.txt"),
                                       "--device", "cpu", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "no masked-LM head" in lines[0], result.output
    assert "cls.predictions" in lines[0]
    assert not (tmp_path / "out").exists()
