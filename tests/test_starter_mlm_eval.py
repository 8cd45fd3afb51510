"""The masked-LM recall evaluation, on a tiny in-test model whose ranking is known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tinyaug.pipelines.starter import evaluate as mlm_eval

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "was", "is", ".", ",", "##s",
         "movie", "great", "film", "good", "story", "bad", "actor", "plot", "funny", "boring"]
# the tiny model's logits are its output bias alone: this order, whatever the context
ORDER = ["movie", "great", "film", "good", "story", "bad", "actor", "plot", "funny", "boring"]
DEV = ["the movie was great .", "a good story .", "the actor was funny .", "the plot was boring ."]
TRAIN = ["the film was good .", "a good film .", "the story was bad ."]


def _fixed_order_mlm(folder: Path) -> Path:
    """A saved BertForMaskedLM + fast tokenizer whose logits are the same at every position."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True)
    model = BertForMaskedLM(BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=20,
                                       max_position_embeddings=32)).eval()
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.zero_()  # tied decoder: logits = bias
        bias = torch.full((len(VOCAB),), -5.0)
        for rank, word in enumerate(ORDER):
            bias[VOCAB.index(word)] = 10.0 - rank
        bias[VOCAB.index("the")] = 20.0  # a stopword on top: the filter must drop it
        bias[VOCAB.index("##s")] = 19.0  # a word piece: dropped too
        model.cls.predictions.bias.copy_(bias)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _glue_fixture(folder: Path) -> Path:
    sst2 = folder / "SST-2"
    sst2.mkdir(parents=True)
    for name, rows in (("train.tsv", TRAIN), ("dev.tsv", DEV)):
        (sst2 / name).write_text("sentence\tlabel\n" + "".join(f"{r}\t1\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture
def tiny(tmp_path):
    return _fixed_order_mlm(tmp_path / "mlm"), _glue_fixture(tmp_path / "glue")


def test_scores_from_ranks_by_hand():
    s = mlm_eval.Scores.from_ranks([0, 3, 14, 15, None])
    assert (s.words, s.top1, s.top5, s.top15) == (5, 0.2, 0.4, 0.6)
    assert mlm_eval.Scores.from_ranks([]).top15 == 0.0


def test_unigram_baseline_counts_eligible_allowed_words():
    allowed = {"film", "good", "story", "bad", "the"}
    # "the" is a stopword (never eligible); ties are broken alphabetically
    assert mlm_eval.unigram_baseline(TRAIN, allowed) == ["film", "good", "bad", "story"]


def test_sample_words_is_seeded_and_ordered():
    items = list(range(100))
    a = mlm_eval.sample_words(items, 10, seed=0, salt=1)
    assert a == mlm_eval.sample_words(items, 10, seed=0, salt=1) == sorted(a)
    assert a != mlm_eval.sample_words(items, 10, seed=0, salt=2)
    assert mlm_eval.sample_words(items[:5], 10, seed=0, salt=1) == items[:5]


def test_evaluate_hand_checked_recall(tiny):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    mlm_dir, glue = tiny
    model = AutoModelForMaskedLM.from_pretrained(str(mlm_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(mlm_dir))
    settings = mlm_eval.EvalSettings(tasks=("sst2",), examples=3)
    report = mlm_eval.evaluate_mlm(model, tokenizer, glue, settings, "tiny")
    # masked words: movie great | good story | actor funny | plot boring  (the/a/was: stopwords)
    # their ranks in ORDER: 0 1 | 3 4 | 6 8 | 7 9 -> top1 1/8, top5 4/8, top15 8/8
    assert report.overall.to_dict() == {"words": 8, "top1": 0.125, "top5": 0.5, "top15": 1.0}
    # baseline list from train: film 2, good 2, bad 1, story 1 -> good (rank 1), story (rank 3)
    assert report.baseline_words == ["film", "good", "bad", "story"]
    assert report.baseline.to_dict() == {"words": 8, "top1": 0.0, "top5": 0.25, "top15": 0.25}
    ex = report.examples[0]
    assert ex["candidates"][:3] == ["movie", "great", "film"]  # no "the", no "##s"
    assert "[MASK]" in ex["masked"]
    text = report.format()
    assert "sst2" in text and "12.5%" in text and "50.0%" in text


def test_eval_command_json(tiny):
    from tinyaug.pipelines.cli import main

    mlm_dir, glue = tiny
    result = CliRunner().invoke(main, ["eval-mlm", "--mlm", str(mlm_dir), "--data-dir", str(glue),
                                       "--tasks", "sst2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["words"], data["top1"], data["top5"], data["top15"]) == (8, 0.125, 0.5, 1.0)
    assert data["tasks"]["sst2"]["top15"] == 1.0
    assert data["baseline"]["top5"] == 0.25


def test_eval_command_errors_are_one_line(tiny, tmp_path):
    from tinyaug.pipelines.cli import main

    mlm_dir, _ = tiny
    result = CliRunner().invoke(main, ["eval-mlm", "--mlm", str(mlm_dir), "--data-dir",
                                       str(tmp_path / "nowhere"), "--tasks", "sst2"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output


def test_commands_have_examples():
    from tinyaug.pipelines.cli.starter import COMMANDS

    assert {c.name for c in COMMANDS} == {"build-mlm", "export-mlm", "eval-mlm"}
    for command in COMMANDS:
        assert "Example: tinyaug " + command.name in command.help


def test_load_for_eval_knows_starter_artifact_folders():
    from tinyaug.pipelines.starter.base import base_model_dir
    from tinyaug.pipelines.starter.recipe import BASE_PACKAGE, RESOURCE_DIR, STARTER_MLM_ID

    try:
        base_model_dir()
    except Exception:
        pytest.skip(f"{BASE_PACKAGE} is not installed")
    model, tokenizer, name = mlm_eval.load_for_eval(str(RESOURCE_DIR), "cpu")
    assert name.startswith(STARTER_MLM_ID)
    assert tokenizer.mask_token == "[MASK]" and not model.training
