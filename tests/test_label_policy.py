"""Label-aware augmentation: what the teacher makes of each variant (flips), policies that keep
the variants it agrees with, and exports that carry the teacher's labels."""

import json

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from tinyaug.distill.variants import LabelPolicy, flip_statistics, flips, teacher_predictions
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.build import load_augmented
from tinyaug.pipelines.augmentation.export import export
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.distillation import finetune, teacher_logits
from tinyaug.pipelines.experiment import toys as T

from helpers import write_augmented


def test_flips_and_their_rates_on_hand_built_rows():
    ids = np.array([0, 0, 0, 0, 1, 1, 1])
    variants = np.array([0, 1, 2, 3, 0, 1, 2])
    logits = np.array([[3, 0], [2, 1], [0, 2], [0, 5], [0, 1], [0, 4], [1, 0]], dtype=float)
    predicted, confidence = teacher_predictions(logits, regression=False)
    assert predicted.tolist() == [0, 0, 1, 1, 1, 1, 0]
    assert confidence[0] == pytest.approx(np.exp(3) / (np.exp(3) + 1))
    flipped = flips(ids, variants, predicted.astype(float))
    assert flipped.tolist() == [False, False, True, True, False, False, True]
    sources = np.array(["", "mlm", "mlm + vectors", "vectors", "", "mlm", "mlm"])
    kinds = np.array(["", "replace", "replace", "replace + swap", "", "replace", "replace"])
    replaced = np.array([0, 1, 2, 1, 0, 1, 5])
    gold = np.array([0, 0, 0, 0, 1, 1, 1])
    stats = flip_statistics(flipped, variants, sources, kinds, replaced, gold, ["negative", "positive"])
    assert stats["overall"] == {"variants": 5, "flipped": 3, "rate": 0.6}
    assert stats["by_source"]["mlm"] == {"variants": 3, "flipped": 1, "rate": 1 / 3}
    assert stats["by_source"]["vectors"]["rate"] == 1.0 and stats["by_source"]["mlm + vectors"]["rate"] == 1.0
    assert stats["by_kind"] == {"replace": {"variants": 4, "flipped": 2, "rate": 0.5},
                                "replace + swap": {"variants": 1, "flipped": 1, "rate": 1.0}}
    assert stats["by_label"] == {"negative": {"variants": 3, "flipped": 2, "rate": 2 / 3},
                                 "positive": {"variants": 2, "flipped": 1, "rate": 0.5}}
    assert stats["by_replaced_words"]["1"]["variants"] == 3 and stats["by_replaced_words"]["4+"]["flipped"] == 1


def test_regression_flips_when_the_score_moves_a_fifth_of_the_range():
    scores, _ = teacher_predictions(np.array([[3.0], [3.9], [1.5]]), regression=True)
    assert flips(np.array([0, 0, 0]), np.array([0, 1, 2]), scores, regression=True).tolist() == [False, False, True]


@pytest.mark.parametrize("keep,kept,dropped", [
    ("all", [1, 1, 1, 1, 1], {}),
    ("agreeing", [1, 1, 0, 1, 1], {"teacher disagrees with the original": 1}),
    ("confident:0.9", [1, 0, 1, 1, 0], {"teacher confidence below 0.9": 2}),
    ("agreeing+confident:0.9", [1, 0, 0, 1, 0], {"teacher disagrees with the original": 1,
                                                 "teacher confidence below 0.9": 2}),
])
def test_every_policy_keeps_the_originals_and_what_it_trusts(keep, kept, dropped):
    variants = np.array([0, 1, 2, 3, 4])
    flipped = np.array([False, False, True, False, False])
    confidence = np.array([0.5, 0.6, 0.95, 0.99, 0.7])  # the original's own confidence never matters
    mask, reasons = LabelPolicy.parse(keep).select(variants, flipped, confidence)
    assert mask.astype(int).tolist() == kept and reasons == dropped


@pytest.mark.parametrize("keep", ["sometimes", "confident:x", "confident:1.5"])
def test_bad_policies_are_one_clear_error(keep):
    with pytest.raises(InputError, match="--keep|confident"):
        LabelPolicy.parse(keep)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A toy SST-2 teacher's labels on rows that the real builder augmented."""
    root = tmp_path_factory.mktemp("policy")
    T.write_glue_task(root / "glue", "sst2", train_rows=48, dev_rows=16)
    T.save_tiny_model(root / "encoder", T.tiny_config(layers=2), encoder_only=True)
    finetune(root / "encoder", "sst2", root / "glue", root / "teacher", epochs=30, learning_rate=2e-3,
             batch_size=16, device="cpu", seed=0)
    data = write_augmented(root / "glue", "sst2", root / "aug", variants=4)
    teacher_logits(root / "teacher", data, "sst2", device="cpu")
    return root


def test_teacher_logits_stores_predictions_flips_and_a_card_section(labelled):
    ds = load_augmented(labelled / "aug")
    logits = np.asarray(ds["teacher_logits"])
    predicted, confidence = teacher_predictions(logits, regression=False)
    assert ds["teacher_label"] == predicted.tolist() and ds.features["teacher_label"] == ds.features["label"]
    assert np.allclose(ds["teacher_confidence"], confidence, atol=1e-6)
    expected = flips(np.asarray(ds["aug_example_id"]), np.asarray(ds["aug_variant"]), predicted.astype(float))
    assert ds["teacher_flip"] == expected.tolist() and 0 < sum(expected) < len(ds)  # toy variants do flip
    info = json.loads((labelled / "aug" / "teacher_logits.json").read_text())
    assert info["flips"]["overall"]["flipped"] == int(expected.sum())
    card = (labelled / "aug" / "README.md").read_text()
    assert "## What the teacher makes of the variants" in card and "| words edited: 1 |" in card and "| edit kind: replace |" in card


def test_filter_keeps_exactly_the_agreeing_rows_with_their_provenance(labelled, tmp_path):
    result = CliRunner().invoke(main, ["filter", str(labelled / "aug"), "--keep", "agreeing", "--out",
                                       str(tmp_path / "agreeing")])
    assert result.exit_code == 0, result.output
    source, kept = load_augmented(labelled / "aug"), load_augmented(tmp_path / "agreeing")
    expected = [row for row in source if row["aug_variant"] == 0 or not row["teacher_flip"]]
    assert kept.to_list() == expected  # same rows, same order, provenance and labels untouched
    flipped = sum(source["teacher_flip"])
    assert f"Kept {len(expected)} of {len(source)} rows (teacher disagrees with the original: {flipped})" in result.output
    policy = json.loads(kept.info.description)["tinyaug"]["label_policy"]
    assert policy["keep"] == "agreeing" and policy["dropped"] == {"teacher disagrees with the original": flipped}
    assert "## Label policy" in (tmp_path / "agreeing" / "README.md").read_text()
    assert load_augmented(labelled / "aug").to_list() == source.to_list()  # the unfiltered one stays


def test_teacher_labels_in_filters_and_exports(labelled, tmp_path):
    ds = load_augmented(labelled / "aug")
    variants = np.asarray(ds["aug_variant"]) > 0
    expected = np.where(variants, ds["teacher_label"], ds["label"]).tolist()
    path = export(ds, "csv", tmp_path / "t.csv", labels="teacher").path
    assert datasets.load_dataset("csv", data_files=str(path), split="train")["label"] == expected
    gold = export(ds, "csv", tmp_path / "g.csv").path
    assert datasets.load_dataset("csv", data_files=str(gold), split="train")["label"] == ds["label"]
    result = CliRunner().invoke(main, ["filter", str(labelled / "aug"), "--keep", "all", "--labels", "teacher",
                                       "--out", str(tmp_path / "relabelled")])
    assert result.exit_code == 0, result.output
    relabelled = load_augmented(tmp_path / "relabelled")
    assert relabelled["label"] == expected and relabelled.features["label"] == ds.features["label"]
    changed = int((np.asarray(expected) != np.asarray(ds["label"])).sum())
    assert f"{changed} variants relabelled by the teacher" in result.output


def test_policies_need_the_teachers_columns(tmp_path):
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
    data = write_augmented(tmp_path / "glue", "sst2", tmp_path / "aug", variants=1)
    result = CliRunner().invoke(main, ["filter", str(data), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "label the rows first with `tinyaug teacher-logits" in result.output
    result = CliRunner().invoke(main, ["export", str(data), "--labels", "teacher", "--to", str(tmp_path / "x.csv"),
                                       "--format", "csv"])
    assert result.exit_code == 1 and "no teacher_label" in result.output
