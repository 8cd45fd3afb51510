"""Distillation with tiny models built in-test: stage 1 learns, stage 2 stored logits equal live
teacher calls, labels align by name, outputs reload, bad input gets one-line errors."""

import copy
import json
import time

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

from tinyaug.distill.inference import predict_logits
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.recipe import StageSettings
from tinyaug.distill.collator import TextCollator
from tinyaug.distill.stages import IntermediateDistiller, PredictionDistiller, frozen
from tinyaug.distill.training import train_stage, training_arguments
from tinyaug.pipelines.io.schema import TEACHER_LOGITS
from tinyaug.distill.arch import head_parameters
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.distillation import loading as distill_io
from tinyaug.pipelines.io.models import from_pretrained
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.distillation import distill, evaluate, finetune, teacher_logits
from tinyaug.pipelines.io.glue import get_task, read_split

from helpers import write_augmented

MNLI = ("entailment", "neutral", "contradiction")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def glue(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    T.write_glue_task(root, "sst2", train_rows=64, dev_rows=32)
    T.write_glue_task(root, "mnli", train_rows=16, dev_rows=12)
    return root


@pytest.fixture(scope="module")
def teacher(glue, tmp_path_factory):
    """A 4-layer, 32-wide SST-2 teacher fine-tuned until it is far above chance."""
    base = tmp_path_factory.mktemp("models")
    T.save_tiny_model(base / "encoder", T.tiny_config(layers=4), encoder_only=True)
    result = finetune(base / "encoder", "sst2", glue, base / "teacher", epochs=30, learning_rate=2e-3,
                      batch_size=16, device="cpu", seed=0)
    assert result["dev_metrics"]["dev"]["accuracy"] >= 0.9
    return base / "teacher"


@pytest.fixture(scope="module")
def augmented(glue, tmp_path_factory):
    return write_augmented(glue, "sst2", tmp_path_factory.mktemp("aug") / "sst2", variants=2)


def _models(teacher_dir):
    teacher_model = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    config = T.tiny_config(layers=2, hidden=16, heads=2, intermediate=20, dropout=0.0)
    torch.manual_seed(1)
    return teacher_model, BertForSequenceClassification(config), tokenizer


def test_finetune_writes_a_teacher(teacher):
    result = json.loads((teacher / "finetune_results.json").read_text())
    assert result["task"] == "sst2" and result["train"]["steps"] == 120
    assert result["chance"]["near_chance"] is False
    assert (teacher / "model.safetensors").is_file() and (teacher / "tokenizer.json").is_file()


def test_stage1_lowers_the_intermediate_loss(teacher, glue, tmp_path):
    teacher_model, student, tokenizer = _models(teacher)
    module = IntermediateDistiller(student, teacher_model, LayerMap.uniform(2, 4))
    train, _ = read_split(glue, "sst2", "train")
    collator = TextCollator(tokenizer, ["sentence"], 64)
    batch = collator([train[i] for i in range(32)])
    module.eval()
    with torch.no_grad():
        before = module(**batch)
    args = training_arguments(StageSettings(epochs=20, learning_rate=3e-3, batch_size=16, warmup_ratio=0.0),
                              output_dir=str(tmp_path), num_examples=len(train), seed=0, use_cpu=True)
    with frozen(head_parameters(student)):
        stats = train_stage(module, train.select_columns(["sentence"]), collator, args, "stage 1")
    assert all(p.requires_grad for p in student.parameters())  # the head is released again
    module.eval()
    with torch.no_grad():
        after = module(**batch)
    assert stats["steps"] == 80
    assert after["loss"] < 0.5 * before["loss"]
    assert after["attention_loss"] < before["attention_loss"]
    assert after["hidden_loss"] < before["hidden_loss"]
    module.remove_hooks()


def test_stage1_shared_and_separate_projections(teacher):
    teacher_model, student, _ = _models(teacher)
    separate = IntermediateDistiller(student, teacher_model, LayerMap((2, 4)))
    shared = IntermediateDistiller(student, teacher_model, LayerMap((2, 4)), embedding_projection="shared")
    assert separate.embedding_projection is not None and shared.embedding_projection is None
    trainable = {n for n, p in separate.named_parameters() if p.requires_grad}
    assert not any(n.startswith("teacher.") for n in trainable)
    assert {"hidden_projection.weight", "embedding_projection.weight"} <= trainable
    separate.remove_hooks()
    shared.remove_hooks()


def test_stage1_head_count_mismatch_is_a_clear_error(teacher):
    teacher_model, _, _ = _models(teacher)
    student = BertForSequenceClassification(T.tiny_config(layers=2, hidden=16, heads=4, intermediate=20))
    with pytest.raises(InputError, match="has 4 attention heads but teacher layer 2 has 2"):
        IntermediateDistiller(student, teacher_model, LayerMap((2, 4)))
    IntermediateDistiller(student, teacher_model, LayerMap((2, 4)), attention_weight=0.0)


def test_stage2_stored_logits_equal_live_teacher(teacher, glue, tmp_path):
    teacher_model, student, tokenizer = _models(teacher)
    train, _ = read_split(glue, "sst2", "train")
    collator = TextCollator(tokenizer, ["sentence"], 64)
    logits = predict_logits(teacher_model, collator, train.select_columns(["sentence"]), batch_size=64)
    stored = train.add_column(TEACHER_LOGITS, logits.tolist())
    # one batch, eval mode: the two losses agree
    live_module = PredictionDistiller(copy.deepcopy(student), teacher_model, teacher_permutation=[0, 1])
    stored_module = PredictionDistiller(copy.deepcopy(student), None)
    rows = [stored[i] for i in range(16)]
    live_batch = collator(rows)
    stored_batch = TextCollator(tokenizer, ["sentence"], 64, teacher_column=TEACHER_LOGITS)(rows)
    live_module.eval(), stored_module.eval()
    with torch.no_grad():
        live_loss = live_module(**live_batch)["loss"]
        stored_loss = stored_module(**stored_batch)["loss"]
    assert stored_loss.item() == pytest.approx(live_loss.item(), abs=1e-6)
    # whole Trainer runs with the same seed: same logged losses and the same trained student
    settings = StageSettings(epochs=1, learning_rate=1e-3, batch_size=16, max_steps=4)
    runs = []
    for module, data, coll in ((live_module, train.select_columns(["sentence"]), collator),
                               (stored_module, stored.select_columns(["sentence", TEACHER_LOGITS]),
                                TextCollator(tokenizer, ["sentence"], 64, teacher_column=TEACHER_LOGITS))):
        args = training_arguments(settings, output_dir=str(tmp_path), num_examples=len(data), seed=3, use_cpu=True)
        runs.append(train_stage(module, data, coll, args, "stage 2"))
    assert runs[0]["steps"] == runs[1]["steps"] == 4
    assert [l for _, l in runs[0]["losses"]] == pytest.approx([l for _, l in runs[1]["losses"]], abs=1e-5)
    for a, b in zip(live_module.student.parameters(), stored_module.student.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
    assert live_module.teacher.training is False  # Trainer's model.train() left the teacher in eval


def test_teacher_logits_align_by_label_name(teacher, augmented, tmp_path):
    # the same teacher with its classes stored in the other order and named accordingly
    model = AutoModelForSequenceClassification.from_pretrained(teacher)
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight.flip(0).clone())
        model.classifier.bias.copy_(model.classifier.bias.flip(0).clone())
    model.config.id2label, model.config.label2id = {0: "POSITIVE", 1: "NEGATIVE"}, {"POSITIVE": 0, "NEGATIVE": 1}
    flipped = tmp_path / "flipped"
    distill_io.save_model(model, AutoTokenizer.from_pretrained(teacher), flipped)
    a = teacher_logits(teacher, augmented, "sst2", out=tmp_path / "a", device="cpu")
    b = teacher_logits(flipped, augmented, "sst2", out=tmp_path / "b", device="cpu")
    la = np.array(distill_io.load_task_dataset(a["out"], get_task("sst2"))[TEACHER_LOGITS])
    lb = np.array(distill_io.load_task_dataset(b["out"], get_task("sst2"))[TEACHER_LOGITS])
    rows = len(distill_io.load_task_dataset(augmented, get_task("sst2")))
    assert la.shape == (rows, 2) and rows > 64 and np.allclose(la, lb, atol=1e-5)
    ds = distill_io.load_task_dataset(augmented, get_task("sst2"))
    originals = np.asarray(ds["aug_variant"]) == 0  # variants may flip the label: "good" -> "bad"
    assert np.mean(la[originals].argmax(1) == np.asarray(ds["label"])[originals]) >= 0.9
    assert a["agreement_with_labels"] == b["agreement_with_labels"]
    assert b["label_order"] == ["negative", "positive"]
    info = json.loads((tmp_path / "a" / "teacher_logits.json").read_text())
    assert info["rows"] == rows and info["max_seq_length"] == 64


def test_teacher_logits_in_place_is_atomic_and_repeatable(teacher, glue, tmp_path):
    data = write_augmented(glue, "sst2", tmp_path / "aug", variants=1)
    teacher_logits(teacher, data, "sst2", device="cpu")
    teacher_logits(teacher, data, "sst2", device="cpu")  # replaces the column, no duplicate
    ds = distill_io.load_task_dataset(data, get_task("sst2"))
    assert ds.column_names.count(TEACHER_LOGITS) == 1 and "aug_changes" in ds.column_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug"]  # no .saving / .old left behind


def test_distill_both_stages_and_reload(teacher, augmented, glue, tmp_path):
    data = tmp_path / "aug"
    teacher_logits(teacher, augmented, "sst2", out=data, device="cpu")
    out = tmp_path / "student"
    result = distill(teacher, "layers=2,hidden=16,heads=2,intermediate=20", data, "sst2", out,
                     data_dir=glue, device="cpu", stage1={"epochs": 3, "batch_size": 16},
                     stage2={"epochs": 3, "batch_size": 16, "learning_rate": 2e-3})
    assert result["used_stored_teacher_logits"] is True
    assert result["layer_map"] == [2, 4] and result["teacher_check"]["near_chance"] is False
    steps = 3 * -(-result["data_rows"] // 16)  # 3 epochs of batches of 16
    assert result["train"]["stage1"]["steps"] == steps and result["train"]["stage2"]["steps"] == steps
    saved = json.loads((out / "distill_results.json").read_text())
    assert saved["recipe"]["stage1"]["learning_rate"] == 5e-5 and saved["dev_metrics"]["dev"]["examples"] == 32
    reloaded = AutoModelForSequenceClassification.from_pretrained(out)
    assert reloaded.config.num_hidden_layers == 2 and reloaded.config.hidden_size == 16
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
    assert (out / "stage1" / "config.json").is_file() and (out / "tokenizer.json").is_file()
    again = evaluate(out, "sst2", glue, device="cpu")
    assert again["dev_metrics"] == saved["dev_metrics"]


def test_distill_is_deterministic_given_a_seed(teacher, augmented, tmp_path):
    runs = [distill(teacher, "layers=2,hidden=16,heads=2,intermediate=20", augmented, "sst2",
                    tmp_path / f"s{i}", stage="both", device="cpu", train_limit=48,
                    stage1={"max_steps": 3, "batch_size": 16}, stage2={"max_steps": 3, "batch_size": 16})
            for i in range(2)]
    for stage in ("stage1", "stage2"):
        assert runs[0]["train"][stage]["losses"] == runs[1]["train"][stage]["losses"]
    a = (tmp_path / "s0" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "s1" / "model.safetensors").read_bytes()
    assert runs[0]["dev_metrics"] is None and runs[0]["teacher_check"]["source"].startswith("the data's original rows")


def test_student_from_teacher_layers(teacher, augmented, tmp_path):
    result = distill(teacher, "layers=2", augmented, "sst2", tmp_path / "s", stage="1", device="cpu",
                     student_init="teacher-layers", train_limit=16, stage1={"max_steps": 1, "batch_size": 16})
    assert result["student"]["copied"] == ["embeddings", "layers 2,4", "pooler", "classifier"]
    with pytest.raises(InputError, match="needs the teacher's widths"):
        distill(teacher, "layers=2,hidden=16", augmented, "sst2", tmp_path / "t", device="cpu",
                student_init="teacher-layers")


def test_evaluate_keeps_mnli_matched_and_mismatched_apart(glue, tmp_path):
    T.save_tiny_model(tmp_path / "m", T.tiny_config(labels=("contradiction", "entailment", "neutral")))
    result = evaluate(tmp_path / "m", "mnli", glue, device="cpu")
    assert set(result["dev_metrics"]) == {"dev_matched", "dev_mismatched"}
    assert result["dev_metrics"]["dev_matched"]["examples"] == 12


# ---------------------------------------------------------------- bad input


def test_dataset_without_the_task_columns(teacher, augmented, tmp_path):
    with pytest.raises(InputError, match=r"no column 'sentence1', 'sentence2' for mrpc"):
        distill(teacher, "layers=2", augmented, "mrpc", tmp_path / "s", device="cpu")


def test_teacher_and_student_with_different_vocabularies(teacher, augmented, tmp_path):
    other = tmp_path / "other"
    words = T.WORDS[:-3] + ["zebra", "yak", "xylophone"]
    torch.manual_seed(0)
    BertForSequenceClassification(T.tiny_config(len(words), layers=2)).save_pretrained(other)
    T.tiny_tokenizer(other, words).save_pretrained(other)
    with pytest.raises(InputError, match="teacher and student vocabularies differ"):
        distill(teacher, other, augmented, "sst2", tmp_path / "s", device="cpu")


def test_layer_map_naming_missing_layers(teacher, augmented, tmp_path):
    with pytest.raises(InputError, match=r"teacher layers \[7\] do not exist \(the teacher has 4\)"):
        distill(teacher, "layers=2", augmented, "sst2", tmp_path / "s", device="cpu", layer_map=(2, 7))


def test_teacher_that_was_never_fine_tuned(augmented, tmp_path):
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=2), encoder_only=True)
    with pytest.raises(ModelLoadError, match="no trained classification head .*never fine-tuned on sst2"):
        distill(tmp_path / "encoder", "layers=1", augmented, "sst2", tmp_path / "s", device="cpu")


def test_missing_dev_files_fail_before_training(teacher, augmented, glue, tmp_path):
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_text((glue / "SST-2" / "train.tsv").read_text())
    with pytest.raises(InputError, match="no dev.tsv for sst2"):
        distill(teacher, "layers=2", augmented, "sst2", tmp_path / "s", data_dir=tmp_path, device="cpu")
    assert not (tmp_path / "s").exists()


def test_near_chance_teacher_is_reported_loudly(augmented, glue, tmp_path, caplog):
    T.save_tiny_model(tmp_path / "random", T.tiny_config(layers=2))  # has a head, learned nothing
    with caplog.at_level("WARNING"):
        result = distill(tmp_path / "random", "layers=1", augmented, "sst2", tmp_path / "s", stage="2",
                         data_dir=glue, device="cpu", train_limit=16, stage2={"max_steps": 1})
    assert result["teacher_check"]["near_chance"] is True
    assert "TEACHER NEAR CHANCE" in caplog.text


def test_hub_name_while_offline_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"cannot reach the Hugging Face hub \(offline\?\); pass a local model directory"):
        from_pretrained(AutoModelForSequenceClassification.from_pretrained, "some-org/no-such-model")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("tinyaug.pipelines.io.models.hub_reachable", lambda timeout=2.5: False)
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub"):
        distill_io.load_tokenizer("bert-base-uncased-not-cached")
    assert time.perf_counter() - start < 10
    with pytest.raises(ModelLoadError, match="no such directory"):
        distill_io.load_tokenizer("./no/such/dir")


def test_stsb_regression_pairs_end_to_end(tmp_path):
    glue = T.write_glue_task(tmp_path / "glue", "stsb", train_rows=32, dev_rows=16)
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=2), encoder_only=True)
    made = finetune(tmp_path / "encoder", "stsb", glue, tmp_path / "teacher", max_steps=4,
                    batch_size=16, learning_rate=1e-3, device="cpu")
    assert set(made["dev_metrics"]["dev"]) == {"pearson", "spearman", "examples"}
    data = write_augmented(glue, "stsb", tmp_path / "aug", variants=1)
    info = teacher_logits(tmp_path / "teacher", data, "stsb", device="cpu")
    assert info["label_order"] == ["score"]
    ds = distill_io.load_task_dataset(data, get_task("stsb"))
    assert len(ds[0][TEACHER_LOGITS]) == 1 and ds.features["label"].dtype == "float32"
    result = distill(tmp_path / "teacher", "layers=1,hidden=16,heads=2,intermediate=20", data, "stsb",
                     tmp_path / "student", data_dir=glue, device="cpu",
                     stage1={"max_steps": 2, "batch_size": 16}, stage2={"max_steps": 2, "batch_size": 16})
    assert result["used_stored_teacher_logits"] and result["recipe"]["max_seq_length"] == 128
    assert set(result["dev_metrics"]["dev"]) == {"pearson", "spearman", "examples"}
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    assert reloaded.config.num_labels == 1 and reloaded.config.problem_type == "regression"
