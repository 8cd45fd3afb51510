"""The starter masked LM: recipe, corpus, masking, loss, the stored artifact and its checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.starter.artifact import export_starter_mlm, load_starter_mlm, probe_logits, read_manifest, starter_summary, trained_tensors, verify_artifact, write_artifact
from tinyaug.pipelines.starter.base import base_model_dir, build_base_mlm
from tinyaug.pipelines.starter.corpus import EncodedCorpus, _sst2_spans_dedupe, iter_batches, mask_sentence, wordnet_texts
from tinyaug.pipelines.starter.recipe import BASE_PACKAGE, MANIFEST_FILE, PROBE_TEXT, RESOURCE_DIR, STARTER_MLM_ID, StarterRecipe, TENSORS_FILE
from tinyaug.pipelines.starter.train import masked_lm_loss


def _base_installed() -> bool:
    try:
        base_model_dir()
        return True
    except ModelLoadError:
        return False


needs_base = pytest.mark.skipif(not _base_installed(), reason=f"{BASE_PACKAGE} is not installed")


# ---- recipe ---------------------------------------------------------------------------------


def test_recipe_round_trip_and_prefixes():
    recipe = StarterRecipe(train_layers=(4, 5), steps=10)
    assert StarterRecipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert recipe.trained_prefixes() == ("bert.encoder.layer.4.", "bert.encoder.layer.5.",
                                         "cls.predictions.transform.", "cls.predictions.bias")


def test_recipe_reports_every_problem_at_once():
    with pytest.raises(InputError) as info:
        StarterRecipe(train_layers=(6,), mask_rate=1.5, steps=0, glue_tasks=("qqp",))
    message = str(info.value)
    for part in ("train_layers", "mask_rate", "steps", "qqp"):
        assert part in message
    with pytest.raises(InputError, match="unknown starter recipe fields"):
        StarterRecipe.from_dict({"steps": 3, "epochs": 2})


# ---- corpus ---------------------------------------------------------------------------------


def test_sst2_spans_dedupe_keeps_phrases_not_inside_longer_ones():
    phrases = ["b c", "a b c", "c d", "a b c", "d"]
    assert _sst2_spans_dedupe(phrases) == ["a b c", "c d"]


def test_wordnet_texts_split_gloss_and_examples(tmp_path):
    head = "  1 This software and database is being provided to you, the LICENSEE\n"
    line = ('00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived to have its '
            'own distinct existence; "the entity was seen at night"; "ok"  \n')
    (tmp_path / "data.noun").write_text(head + line, encoding="utf-8")
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text(head, encoding="utf-8")
    # examples of fewer than 3 words ("ok") are dropped
    assert wordnet_texts(tmp_path) == ["that which is perceived to have its own distinct existence",
                                          "the entity was seen at night"]
    (tmp_path / "data.adv").unlink()
    with pytest.raises(InputError, match="wordnet-base"):
        wordnet_texts(tmp_path)


# ---- masking and loss ---------------------------------------------------------------------


def test_mask_sentence_masks_whole_words_with_weight():
    # [CLS] un ##believ ##able movie , [SEP]: words "unbelievable" (3 pieces), "movie", ","
    ids = np.array([2, 10, 11, 12, 20, 30, 3], dtype=np.int32)
    spans = np.array([[1, 4], [4, 5], [5, 6]], dtype=np.int32)
    rng = np.random.default_rng(0)
    masked, labels = mask_sentence(ids, spans, np.array([1.0, 0.0, 0.0]), 0.15, mask_id=4, rng=rng)
    # one word (max(1, round(0.15 * 3))); weight only on the first: all three of its pieces
    assert masked.tolist() == [2, 4, 4, 4, 20, 30, 3]
    assert labels.tolist() == [-100, 10, 11, 12, -100, -100, -100]
    masked, labels = mask_sentence(ids, spans, np.array([0.0, 1.0, 0.0]), 0.9, mask_id=4, rng=rng)
    # rate 0.9 asks for 3 words but only one has weight: exactly that one is masked
    assert masked.tolist() == [2, 10, 11, 12, 4, 30, 3]


def test_masked_only_loss_equals_full_logits_loss():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=20)).eval()
    ids = torch.tensor([[2, 7, 4, 9, 3, 0], [2, 4, 8, 4, 11, 3]])
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 1], labels[1, 3] = 15, 16, 17
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}
    loss, logits, picked = masked_lm_loss(model, batch)
    full = model(input_ids=ids, attention_mask=batch["attention_mask"],
                 token_type_ids=torch.zeros_like(ids), labels=labels)
    assert picked.tolist() == [15, 16, 17]
    assert logits.shape == (3, 40)
    torch.testing.assert_close(loss, full.loss)


def test_iter_batches_is_seeded_and_pads():
    corpus = EncodedCorpus(
        ids=[np.array([2, 10 + i, 11, 3][: 3 + i % 2], dtype=np.int32) for i in range(10)],
        words=[np.array([[1, 2], [2, 3]][: 1 + i % 2], dtype=np.int32) for i in range(10)],
        weights=[np.ones(1 + i % 2) for i in range(10)])
    recipe = StarterRecipe(batch_size=4)
    runs = []
    for _ in range(2):
        batches = iter_batches(corpus, recipe, 4, 0, np.random.default_rng(1))
        runs.append([next(batches) for _ in range(3)])  # one epoch: 10 texts in 4 + 4 + 2
    for a, b in zip(*runs):
        assert torch.equal(a["input_ids"], b["input_ids"])
    assert sorted(b["input_ids"].shape[0] for b in runs[0]) == [2, 4, 4]
    for b in runs[0]:
        assert ((b["labels"] != -100) == (b["input_ids"] == 4)).all()  # labels exactly at [MASK]s
        assert (b["attention_mask"] == (b["input_ids"] != 0).long()).all()


# ---- artifact -----------------------------------------------------------------------------


@needs_base
def test_stored_artifact_reproduces_its_probe_logits():
    manifest = read_manifest()
    assert manifest["id"] == STARTER_MLM_ID
    assert manifest["base"]["package"] == BASE_PACKAGE
    model, tokenizer = load_starter_mlm()
    probe = probe_logits(model, tokenizer, manifest["probe"]["text"])
    assert probe["top_ids"] == manifest["probe"]["top_ids"]
    np.testing.assert_allclose(probe["top_logits"], manifest["probe"]["top_logits"], atol=2e-3)


def test_stored_artifact_was_made_by_the_default_recipe():
    # `tinyaug build-mlm` without options must rebuild what is stored
    assert StarterRecipe.from_dict(read_manifest()["recipe"]) == StarterRecipe()
    assert read_manifest()["training"]["steps"] == StarterRecipe().steps


@needs_base
def test_write_and_load_round_trip(tmp_path):
    # no training: a recipe that "trained" layer 5 and the head; perturb them so the check has teeth
    recipe = StarterRecipe(train_layers=(5,), steps=1)
    model = build_base_mlm(seed=3)
    with torch.no_grad():
        model.bert.encoder.layer[5].output.dense.bias.add_(0.5)
        model.cls.predictions.bias.normal_()
    manifest = write_artifact(model, recipe, {"steps": 0}, tmp_path)
    assert set(manifest["tensors"]) >= {"sha256", "bytes", "file"}
    from safetensors import safe_open

    with safe_open(str(tmp_path / TENSORS_FILE), "pt") as handle:
        names = set(handle.keys())
        assert all(handle.get_tensor(n).dtype == torch.float16 for n in names)
    assert names == {n for n in model.state_dict() if n.startswith(recipe.trained_prefixes())
                     and n != "cls.predictions.decoder.weight"}
    loaded, tokenizer = load_starter_mlm(artifact_dir=tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    enc = tokenizer("a [MASK] movie", return_tensors="pt")
    with torch.no_grad():
        for name, value in trained_tensors(model, recipe).items():  # the model as stored: fp16
            model.state_dict()[name].copy_(value.float())
        model.eval()
        torch.testing.assert_close(loaded(**enc).logits, model(**enc).logits)


@pytest.fixture
def artifact_copy(tmp_path) -> Path:
    if not (RESOURCE_DIR / MANIFEST_FILE).is_file():
        pytest.fail(f"the stored artifact is missing from {RESOURCE_DIR}")
    target = tmp_path / "starter"
    shutil.copytree(RESOURCE_DIR, target)
    return target


def test_corrupted_artifact_is_refused(artifact_copy):
    path = artifact_copy / TENSORS_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"tensors.safetensors is corrupted: its sha256 .*tinyaug build-mlm"):
        load_starter_mlm(artifact_dir=artifact_copy)


def test_missing_artifact_files_are_named(artifact_copy):
    (artifact_copy / TENSORS_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"tensors.safetensors is missing.*reinstall tinyaug"):
        verify_artifact(artifact_copy)
    (artifact_copy / MANIFEST_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"manifest.json is missing"):
        load_starter_mlm(artifact_dir=artifact_copy)


def test_broken_manifest_is_named(artifact_copy):
    (artifact_copy / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_manifest(artifact_copy)


def test_summary_says_it_is_not_bert_base(artifact_copy):
    manifest = read_manifest(artifact_copy)
    manifest["evaluation"] = {"overall": {"words": 2500, "top1": 0.1, "top5": 0.2, "top15": 0.3}}
    text = starter_summary(manifest)
    assert "NOT BERT-base" in text and "30.0%" in text and STARTER_MLM_ID in text


@needs_base
def test_export_loads_with_auto_classes(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out = export_starter_mlm(tmp_path / "export")
    model = AutoModelForMaskedLM.from_pretrained(str(out)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    mine, _ = load_starter_mlm()
    enc = tokenizer(PROBE_TEXT, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, mine(**enc).logits)
    with pytest.raises(InputError, match="not empty"):
        export_starter_mlm(out)
