"""Early stopping on held-out train rows (``--validation-rows``): the rule, the best weights kept,
the rows held out of training, overlap refused, and scoring that leaves training untouched."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from tinyaug.distill.validation import EarlyStopping, KeepBest
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.experiment.toys import save_tiny_model, tiny_config, write_glue_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


class _State:
    def __init__(self, step: int, max_steps: int) -> None:
        self.global_step, self.max_steps = step, max_steps


class _Control:
    should_training_stop = False


def test_the_rule_stops_after_patience_and_puts_the_best_weights_back():
    model = nn.Linear(2, 1)
    scores = iter([0.5, 0.7, 0.6, 0.7, 0.65, 0.9])  # best 0.7 at step 20; 3 scores without a better one
    weights = {}

    def score(m):
        weights[len(weights)] = m.weight.detach().clone()
        return next(scores)

    keep = KeepBest(model, score, EarlyStopping(every=10, patience=3), "accuracy")
    control = _Control()
    for step in range(1, 101):
        with torch.no_grad():
            model.weight.add_(1.0)  # every step changes the weights
        keep.on_step_end(None, _State(step, 100), control)
        if control.should_training_stop:
            break
    keep.on_train_end(None, _State(step, 100), control)
    assert step == 50 and keep.stopped_early
    record = keep.record()
    assert record["history"] == [[10, 0.5], [20, 0.7], [30, 0.6], [40, 0.7], [50, 0.65]]
    assert record["best_step"] == 20 and record["best"] == 0.7 and record["last_step"] == 50
    assert torch.equal(model.weight, weights[1])  # the weights scored at step 20
    assert EarlyStopping(every=0, patience=-1).problems() == [
        "--eval-every must be >= 1, got 0", "--patience must be >= 0 (0: never stop early), got -1"]


def test_the_last_step_is_scored_and_a_run_without_a_stop_is_not_called_early():
    model = nn.Linear(2, 1)
    keep = KeepBest(model, lambda m: 0.5, EarlyStopping(every=10, patience=5), "f1")
    control = _Control()
    for step in range(1, 26):
        keep.on_step_end(None, _State(step, 25), control)
    keep.on_train_end(None, _State(25, 25), control)
    assert [s for s, _ in keep.record()["history"]] == [10, 20, 25] and not keep.stopped_early


def test_patience_zero_never_stops_and_still_keeps_the_best():
    model = nn.Linear(2, 1)
    scores = iter([0.0, 0.0, 0.0, 0.0, 0.2, 0.1])  # a teacher stuck at a constant guess, then learning
    keep = KeepBest(model, lambda m: next(scores), EarlyStopping(every=10, patience=0), "mcc")
    control = _Control()
    for step in range(1, 61):
        keep.on_step_end(None, _State(step, 60), control)
        assert not control.should_training_stop
    keep.on_train_end(None, _State(60, 60), control)
    assert keep.record()["best_step"] == 50 and keep.record()["last_step"] == 60


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    write_glue_task(root / "glue", "sst2", train_rows=80, dev_rows=16, seed=0)
    save_tiny_model(root / "encoder", tiny_config(layers=2, labels=None), encoder_only=True)
    return root


def _finetune(world, out, *extra):
    result = invoke("finetune", world / "encoder", "--task", "sst2", "--data-dir", world / "glue", "--out", out,
                    "--epochs", 20, "--lr", "2e-3", "--batch-size", 8, "--max-steps", 40, "--device", "cpu",
                    "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_finetune_holds_out_the_last_rows_keeps_the_best_weights_and_dev_scores_them(world, tmp_path):
    from tinyaug.distill.collator import TextCollator
    from tinyaug.distill.validation import ValidationScore
    from tinyaug.pipelines.distillation.loading import load_student_dir, load_tokenizer
    from tinyaug.pipelines.io.glue import get_task, read_split

    result = _finetune(world, tmp_path / "t", "--validation-rows", 20, "--eval-every", 5, "--patience", 2)
    chosen = result["validation"]
    assert result["train_rows"] == 60 and chosen["rows"] == 20 and chosen["first_idx"] == 60
    assert chosen["best"] == max(v for _, v in chosen["history"])
    # the saved weights are the best-scoring ones: scored again on the held-out rows they give the best
    spec = get_task("sst2")
    train, _ = read_split(world / "glue", spec, "train")
    held_out = train.select(range(60, 80))
    model, tokenizer = load_student_dir(str(tmp_path / "t"), spec), load_tokenizer(str(tmp_path / "t"))
    score = ValidationScore("sst2", held_out, TextCollator(tokenizer, spec.text_columns, 64), ["sentence"], "label")
    assert score(model) == pytest.approx(chosen["best"])


def test_scoring_on_validation_does_not_change_the_training_run(world, tmp_path):
    """No early stop (patience above the run's scores): the losses are those of a run without
    validation on the same rows, step for step."""
    plain = _finetune(world, tmp_path / "plain", "--train-limit", 60)
    scored = _finetune(world, tmp_path / "scored", "--train-limit", 60, "--validation-rows", 20, "--eval-every", 10,
                       "--patience", 100)
    assert scored["train"]["losses"] == plain["train"]["losses"] and scored["train"]["steps"] == 40
    assert not scored["validation"]["stopped_early"]


def test_overlap_with_the_validation_rows_is_refused_in_one_line(world, tmp_path):
    reach = invoke("finetune", world / "encoder", "--task", "sst2", "--data-dir", world / "glue", "--out",
                   tmp_path / "t", "--train-limit", 70, "--validation-rows", 20)
    assert reach.exit_code == 1 and "--train-limit 70 reaches into the validation rows" in reach.output
    assert "give --train-limit 60 or less" in reach.output and "Traceback" not in reach.output
    too_many = invoke("finetune", world / "encoder", "--task", "sst2", "--data-dir", world / "glue", "--out",
                      tmp_path / "t", "--validation-rows", 80)
    assert too_many.exit_code == 1 and "has only 80 usable rows" in too_many.output
    # distill: the data's source rows (idx, kept by every variant) must not be validation rows
    teacher = tmp_path / "teacher"
    _finetune(world, teacher, "--train-limit", 60)
    for out, limit in (("all", 80), ("first", 60)):
        assert invoke("augment", "--task", "sst2", "--data-dir", world / "glue", "--split", "train", "-n", 1,
                      "--limit", limit, "--out", tmp_path / out, "--show", 0).exit_code == 0
    common = ["distill", "--teacher", teacher, "--student", "layers=1", "--student-init", "teacher-layers",
              "--task", "sst2", "--stage1-max-steps", 2, "--stage2-max-steps", 6, "--validation-rows", 20]
    glue = ["--data-dir", world / "glue"]
    overlap = invoke(*common, *glue, "--data", tmp_path / "all", "--out", tmp_path / "s")
    assert overlap.exit_code == 1 and "20 of its source rows (idx 60, ...) are validation rows" in overlap.output
    no_dir = invoke(*common, "--data", tmp_path / "first", "--out", tmp_path / "s")
    assert no_dir.exit_code == 1 and "give --data-dir too" in no_dir.output
    fine = invoke(*common, *glue, "--data", tmp_path / "first", "--out", tmp_path / "s", "--eval-every", 2, "--json")
    assert fine.exit_code == 0, fine.output
    result = json.loads(fine.stdout)
    assert result["validation"]["rows"] == 20 and result["validation"]["first_idx"] == 60
    assert [s for s, _ in result["validation"]["history"]][:2] == [2, 4]  # stage 2 scored; stage 1 is not
    assert result["train"]["stage2"]["validation"]["best"] == result["validation"]["best"]
