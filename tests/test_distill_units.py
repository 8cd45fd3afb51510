"""Pure parts of tinyaug.distill against values worked out by hand: losses, layer map, label
alignment, metrics, recipe presets."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinyaug.distill.labels import is_generic, label_permutation
from tinyaug.distill.layer_map import LayerMap
from tinyaug.distill.losses import (attention_loss, attention_scores, hidden_loss, regression_loss,
                                    soft_cross_entropy)
from tinyaug.distill.metrics import chance_level, chance_report, compute_metrics, primary_metric
from tinyaug.distill.recipe import DistillRecipe, StageSettings
from tinyaug.distill.student import StudentSize, looks_like_size
from tinyaug.errors import InputError


# ---------------------------------------------------------------- losses


def test_attention_scores_by_hand():
    q = k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B=1, L=2, D=2)
    one_head = attention_scores(q, k, num_heads=1)
    assert one_head.shape == (1, 1, 2, 2)
    assert torch.allclose(one_head[0, 0], torch.eye(2) / math.sqrt(2))
    two_heads = attention_scores(q, k, num_heads=2)  # head width 1: scale 1
    assert torch.allclose(two_heads[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert torch.allclose(two_heads[0, 1], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))


def test_attention_scores_match_bert_eager_pre_softmax():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertSelfAttention

    torch.manual_seed(0)
    layer = BertSelfAttention(BertConfig(hidden_size=8, num_attention_heads=2)).eval()
    h = torch.randn(2, 5, 8)
    q = layer.query(h).view(2, 5, 2, 4).transpose(1, 2)
    k = layer.key(h).view(2, 5, 2, 4).transpose(1, 2)
    expected = q @ k.transpose(-1, -2) * layer.scaling
    assert torch.allclose(attention_scores(layer.query(h), layer.key(h), 2), expected, atol=1e-6)


def test_attention_loss_counts_only_real_query_key_pairs():
    student = torch.tensor([[[[1.0, 9.0], [9.0, 9.0]], [[2.0, 9.0], [9.0, 9.0]]]])  # (1, 2, 2, 2)
    teacher = torch.tensor([[[[3.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[1, 0]])
    # only (0, 0) of each head is real: ((1 - 3)^2 + (2 - 2)^2) / (1 pair * 2 heads) = 2
    assert attention_loss(student, teacher, mask).item() == pytest.approx(2.0)
    # without a mask it is the plain MSE over all 8 entries
    assert attention_loss(student, teacher).item() == pytest.approx(F.mse_loss(student, teacher).item())


def test_attention_loss_does_not_depend_on_padding_amount():
    # the same real 2x2 block, padded to length 2 and to length 4: same loss (the reference's differs)
    torch.manual_seed(0)
    s, t = torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2)
    padded_s, padded_t = torch.full((1, 2, 4, 4), 7.0), torch.full((1, 2, 4, 4), -3.0)
    padded_s[..., :2, :2], padded_t[..., :2, :2] = s, t
    short = attention_loss(s, t, torch.tensor([[1, 1]]))
    long = attention_loss(padded_s, padded_t, torch.tensor([[1, 1, 0, 0]]))
    assert long.item() == pytest.approx(short.item(), rel=1e-6)


def test_hidden_loss_with_padding_and_projection():
    student = torch.tensor([[[2.0], [7.0]]])  # (B=1, L=2, Ds=1)
    mask = torch.tensor([[1, 0]])
    assert hidden_loss(student, torch.zeros(1, 2, 1), None, mask).item() == pytest.approx(4.0)
    projection = torch.nn.Linear(1, 2)
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[1.0], [2.0]]))
        projection.bias.zero_()
    teacher = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (1, 2, Dt=2)
    # projected student [[2, 4], [7, 14]]: ((2-1)^2 + (4-1)^2 + 7^2 + 14^2) / (2 tokens * 2) = 63.75
    assert hidden_loss(student, teacher, projection, torch.tensor([[1, 1]])).item() == pytest.approx(63.75)
    # the padded token drops out: (1 + 9) / 2 = 5
    assert hidden_loss(student, teacher, projection, mask).item() == pytest.approx(5.0)


def test_soft_cross_entropy_by_hand_with_temperature():
    uniform = torch.zeros(1, 2)
    assert soft_cross_entropy(uniform, uniform).item() == pytest.approx(math.log(2))
    z = torch.tensor([[0.0, 2 * math.log(3)]])
    # T=1: p = softmax(z) = (1/10, 9/10); CE(p, p) is p's entropy
    entropy_t1 = 0.1 * math.log(10) + 0.9 * math.log(10 / 9)
    assert soft_cross_entropy(z, z).item() == pytest.approx(entropy_t1, rel=1e-6)
    # T=2: z / 2 = (0, ln 3), p = (1/4, 3/4)
    entropy_t2 = 0.25 * math.log(4) + 0.75 * math.log(4 / 3)
    assert soft_cross_entropy(z, z, temperature=2.0).item() == pytest.approx(entropy_t2, rel=1e-6)
    # student uniform against teacher (1/4, 3/4) at T=2: -(1/4 + 3/4) log(1/2) = log 2, mean over a batch
    batch_s = torch.cat([uniform, z])
    batch_t = torch.cat([z, z])
    expected = (math.log(2) + entropy_t2) / 2
    assert soft_cross_entropy(batch_s, batch_t, temperature=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError):
        soft_cross_entropy(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError):
        soft_cross_entropy(torch.zeros(2, 2), torch.zeros(2, 2), temperature=0)


def test_regression_loss_by_hand():
    assert regression_loss(torch.tensor([[1.0], [2.0]]), torch.tensor([2.0, 4.0])).item() == pytest.approx(2.5)


# ---------------------------------------------------------------- layer map


def test_uniform_layer_map_4_of_12():
    m = LayerMap.uniform(4, 12)
    assert m.teacher_layers == (3, 6, 9, 12)
    assert m.attention_pairs() == [(0, 2), (1, 5), (2, 8), (3, 11)]  # the reference's i*k + k - 1
    assert m.hidden_pairs() == [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]  # the reference's i*k
    assert m.hidden_pairs(include_embeddings=False)[0] == (1, 3)


def test_uniform_layer_map_6_of_12():
    m = LayerMap.uniform(6, 12)
    assert m.teacher_layers == (2, 4, 6, 8, 10, 12)
    assert m.attention_pairs()[-1] == (5, 11)
    assert m.hidden_pairs()[:3] == [(0, 0), (1, 2), (2, 4)]


def test_explicit_layer_maps_and_their_errors():
    assert LayerMap.parse("3,6,9,12") == LayerMap((3, 6, 9, 12))
    assert LayerMap.parse("0, 1, 2") == LayerMap((1, 2))
    LayerMap((1, 4)).check(student_layers=2, teacher_layers=4)
    with pytest.raises(InputError, match=r"teacher layers \[9\] do not exist \(the teacher has 4\)"):
        LayerMap((1, 9)).check(student_layers=2, teacher_layers=4)
    with pytest.raises(InputError, match="names 3 student layers but the student has 2"):
        LayerMap((1, 2, 3)).check(student_layers=2, teacher_layers=4)
    with pytest.raises(InputError, match="numbered from 1"):
        LayerMap((0, 2))
    with pytest.raises(InputError, match="comma-separated"):
        LayerMap.parse("three,six")
    with pytest.raises(InputError, match="more layers"):
        LayerMap.uniform(6, 4)


def test_layer_map_is_frozen():
    with pytest.raises(Exception):
        LayerMap((3, 6)).teacher_layers = (1, 2)  # type: ignore[misc]


# ---------------------------------------------------------------- labels


def test_label_alignment_by_name_with_permuted_id2label():
    mnli = ("entailment", "neutral", "contradiction")
    permuted = {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"}
    perm = label_permutation(permuted, mnli)
    assert perm == [1, 2, 0]
    logits = torch.tensor([[10.0, 20.0, 30.0]])  # contradiction 10, entailment 20, neutral 30
    assert logits[:, perm].tolist() == [[20.0, 30.0, 10.0]]
    assert label_permutation({0: "Not Entailment", 1: "entailment"}, ("entailment", "not_entailment")) == [1, 0]


def test_label_alignment_generic_names_and_errors(caplog):
    assert is_generic({0: "LABEL_0", 1: "LABEL_1"}) and is_generic({0: "0", 1: "1"})
    assert not is_generic({0: "LABEL_1", 1: "LABEL_0"})
    with caplog.at_level("WARNING"):
        assert label_permutation({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive")) == [0, 1]
    assert "unnamed" in caplog.text
    with pytest.raises(InputError, match="has 2 outputs .* but the task has 3 labels"):
        label_permutation({0: "a", 1: "b"}, ("entailment", "neutral", "contradiction"))
    with pytest.raises(InputError, match="do not match the task's"):
        label_permutation({0: "negative", 1: "positive"}, ("entailment", "not_entailment"))
    assert label_permutation({0: "score"}, None) == [0]
    with pytest.raises(InputError, match="regression task needs 1"):
        label_permutation({0: "negative", 1: "positive"}, None)


# ---------------------------------------------------------------- metrics


def test_matthews_correlation_cola():
    # TP 2, FP 1, TN 1, FN 0: (2*1 - 1*0) / sqrt(3 * 2 * 2 * 1)
    got = compute_metrics("cola", np.array([1, 1, 1, 0]), np.array([1, 1, 0, 0]))
    assert got == {"mcc": pytest.approx(2 / math.sqrt(12))}


def test_pearson_and_spearman_stsb():
    got = compute_metrics("stsb", np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([2.0, 4.0, 9.0, 6.0]))
    # dx = (-1.5, -.5, .5, 1.5), dy = (-3.25, -1.25, 3.75, .75): 8.5 / sqrt(5 * 26.75)
    assert got["pearson"] == pytest.approx(8.5 / math.sqrt(5 * 26.75))
    # rank differences (0, 0, -1, 1): 1 - 6 * 2 / (4 * 15) = 0.8
    assert got["spearman"] == pytest.approx(0.8)
    assert compute_metrics("stsb", np.ones(3), np.array([1.0, 2.0, 3.0])) == {"pearson": 0.0, "spearman": 0.0}


def test_f1_and_accuracy_mrpc_qqp():
    # TP 2, FP 1, FN 1: F1 = 4 / 6; accuracy 2 / 4
    for task in ("mrpc", "qqp"):
        got = compute_metrics(task, np.array([1, 1, 1, 0]), np.array([1, 0, 1, 1]))
        assert got == {"f1": pytest.approx(2 / 3), "accuracy": pytest.approx(0.5)}


def test_accuracy_from_logits_elsewhere():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert compute_metrics("sst2", logits, np.array([1, 1, 1])) == {"accuracy": pytest.approx(2 / 3)}
    assert compute_metrics("mnli", np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0])) == {"accuracy": 0.75}


def test_chance_levels():
    assert primary_metric("cola") == "mcc" and primary_metric("rte") == "accuracy"
    assert chance_level("sst2", np.array([1, 1, 0])) == pytest.approx(2 / 3)
    # all-positive guess with 1/2 positives: precision 1/2, recall 1 -> F1 2/3
    assert chance_level("mrpc", np.array([1, 0, 1, 0])) == pytest.approx(2 / 3)
    assert chance_level("cola", np.array([1, 0])) == 0.0
    report = chance_report("sst2", {"accuracy": 0.51}, [0, 1, 0, 1])
    assert report["near_chance"] and report["chance"] == 0.5
    assert not chance_report("sst2", {"accuracy": 0.9}, [0, 1, 0, 1])["near_chance"]


# ---------------------------------------------------------------- recipe and student size


def test_presets_follow_the_paper():
    cola, mnli, sst2, rte = (DistillRecipe.for_task(t) for t in ("cola", "mnli", "sst2", "rte"))
    assert (cola.stage1.epochs, mnli.stage1.epochs, sst2.stage1.epochs) == (50, 10, 20)
    assert sst2.stage1.learning_rate == 5e-5 and sst2.stage1.batch_size == 32
    assert sst2.stage2.epochs == 3 and sst2.stage2.learning_rate == 3e-5
    assert (cola.max_seq_length, sst2.max_seq_length, rte.max_seq_length) == (64, 64, 128)
    changed = DistillRecipe.for_task("cola", stage2={"learning_rate": 1e-5, "epochs": None}, seed=7)
    assert changed.stage2.learning_rate == 1e-5 and changed.stage2.epochs == 3 and changed.stage1.epochs == 50
    assert DistillRecipe.from_dict(changed.to_dict()) == changed


def test_recipe_reports_all_problems_at_once():
    with pytest.raises(InputError) as info:
        DistillRecipe.for_task("sst2", stage1={"learning_rate": -1, "batch_size": 0}, temperature=0,
                               embedding_projection="both")
    message = str(info.value)
    for part in ("stage 1 learning rate", "stage 1 batch size", "temperature", "embedding projection"):
        assert part in message
    assert StageSettings(epochs=1, learning_rate=1e-5, batch_size=8).problems("x") == []


def test_student_size_spec():
    assert StudentSize.parse("layers=4,hidden=312,heads=12,intermediate=1200") == StudentSize(4, 312, 12, 1200)
    assert StudentSize.parse("num_hidden_layers=2") == StudentSize(layers=2)
    assert looks_like_size("layers=4,hidden=312") and not looks_like_size("models/student")
    with pytest.raises(InputError, match="'width=3' is not KEY=NUMBER"):
        StudentSize.parse("layers=4,width=3")


def test_teacher_on_variants_by_hand():
    from tinyaug.distill.metrics import teacher_on_variants

    ids, variants = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 2, 0, 1, 1])  # example 2 has no original
    logits = np.array([[0, 1], [1, 0], [0, 2], [3, 1], [2, 0], [0, 9]], dtype=np.float32)  # argmax 1 0 1 0 0 1
    found = teacher_on_variants(ids, variants, logits)
    assert found == {"variants": 3, "changed_prediction": pytest.approx(1 / 3),
                     "classes_original": [0.5, 0.5], "classes_variants": [pytest.approx(2 / 3), pytest.approx(1 / 3)]}
    scores = teacher_on_variants(ids, variants, logits[:, :1], regression=True)
    assert scores == {"variants": 3, "mean_abs_score_change": pytest.approx((1 + 0 + 1) / 3)}


def test_warm_up_is_a_whole_number_of_steps_every_transformers_version_reads():
    """transformers 5 reads ``warmup_steps`` below 1 as a ratio and 4.x as a step count (0):
    tinyaug passes the 10% as whole steps."""
    from tinyaug.distill.recipe import StageSettings
    from tinyaug.distill.training import training_arguments

    args = training_arguments(StageSettings(epochs=2, learning_rate=1e-3, batch_size=8, warmup_ratio=0.1),
                              output_dir="unused", num_examples=100, seed=0, use_cpu=True)
    assert args.warmup_steps == 3  # 2 epochs x 13 batches = 26 steps; 10% rounded up
    capped = training_arguments(StageSettings(epochs=2, learning_rate=1e-3, batch_size=8, max_steps=10),
                                output_dir="unused", num_examples=100, seed=0, use_cpu=True)
    assert capped.warmup_steps == 1 and capped.max_steps == 10
