"""The ablation experiment: its pure summary, and ``--quick`` end to end (every step, the
embedded default augmentation models included), resume and refusal of changed settings."""

from __future__ import annotations

import json
import math
import shutil

import datasets
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from tinyaug.pipelines.cli import main
from tinyaug.errors import InputError
from tinyaug.pipelines.experiment import AblationPlan, compare, mean_and_spread, summarize, summary_markdown

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- pure parts


def test_mean_and_spread_is_the_sample_standard_deviation():
    assert mean_and_spread([0.5]) == (0.5, 0.0)
    mean, spread = mean_and_spread([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and spread == pytest.approx(0.2)


def test_summarize_compares_conditions_against_the_seed_spread():
    runs = {"a": {1: {"mcc": 0.10, "examples": 9}, 2: {"mcc": 0.14, "examples": 9}},
            "b": {1: {"mcc": 0.20, "examples": 9}, 2: {"mcc": 0.22, "examples": 9}},
            "c": {1: {"mcc": 0.21, "examples": 9}, 2: {"mcc": 0.23, "examples": 9}}}
    summary = summarize("cola", "mcc", {"mcc": 0.40}, runs)
    b = summary["conditions"]["b"]
    assert b["metrics"]["mcc"]["mean"] == pytest.approx(0.21)
    assert b["metrics"]["mcc"]["std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert b["teacher_fraction"] == pytest.approx(0.21 / 0.40)
    assert "examples" not in b["metrics"]
    b_minus_a, c_minus_b = summary["spread_comparisons"]["b-a"], summary["spread_comparisons"]["c-b"]
    assert b_minus_a["difference"] == pytest.approx(0.09) and b_minus_a["verdict"] == "beyond"
    assert c_minus_b["difference"] == pytest.approx(0.01) and c_minus_b["verdict"] == "within"
    assert c_minus_b["same_seed_differences"] == pytest.approx([0.01, 0.01])
    assert c_minus_b["same_seed_std"] == pytest.approx(0.0, abs=1e-12)
    table = summary_markdown([summary])
    assert "| cola | (b) distilled, original rows | 2 | mcc 21.0 ± 1.4 | 52% |" in table
    assert "(c) - (b) = +1.0 points, within the seed spread (sum of stds 2.8); same-seed differences +1.0 ± 0.0" in table
    assert "(b) - (a) = +9.0 points, beyond the seed spread" in table


def test_a_loss_beyond_the_spread_is_called_beyond_and_one_seed_gets_no_verdict():
    worse = compare({1: {"f1": 0.60}, 2: {"f1": 0.62}}, {1: {"f1": 0.80}, 2: {"f1": 0.82}}, "f1")
    assert worse["difference"] == pytest.approx(-0.20) and worse["verdict"] == "beyond"
    single = compare({1: {"f1": 0.9}}, {1: {"f1": 0.1}}, "f1")
    assert single["verdict"] is None and single["combined_std"] == 0
    summary = summarize("mrpc", "f1", {"f1": 0.0}, {"b": {1: {"f1": 0.1}}, "c": {1: {"f1": 0.9}}})
    assert summary["conditions"]["c"]["teacher_fraction"] is None
    table = summary_markdown([summary])
    assert "too few seeds to compare with the spread" in table and "| n/a |" in table
    assert "| mrpc | (c) distilled, augmented rows | 1 | f1 90.0 | n/a |" in table  # no spread for one seed
    assert "(c) - (b) = +80.0 points, too few seeds to compare with the spread\n" in table


def test_the_report_gives_each_tasks_wall_clock():
    summary = summarize("mrpc", "f1", {"f1": 0.9}, {"b": {1: {"f1": 0.1}}, "c": {1: {"f1": 0.9}}})
    summary["wall_clock_seconds"] = {"teacher": {"seconds": 600.0}, "augment0": {"seconds": 30.0},
                                     "teacher-logits0": {"seconds": 30.0}, "b-seed1": {"seconds": 300.0},
                                     "c-aug0-seed1": {"seconds": 420.0}}
    assert ("- mrpc: wall-clock 23.0 minutes of steps: teacher 10.0, data 1.0, 2 student runs 12.0 (5.0-7.0 each)\n"
            in summary_markdown([summary]))


def test_plan_checks_and_differences():
    plan = AblationPlan.for_task("MRPC", data_dir="glue", seeds=[1, 2])
    assert plan.task == "mrpc" and plan.seeds == (1, 2) and plan.stage1_steps == plan.stage2_steps
    assert plan.differences(plan.to_dict()) == []
    assert plan.differences({**plan.to_dict(), "seeds": [7]}) == []  # more seeds may be added
    assert plan.differences({**plan.to_dict(), "variants": 9}) == ["variants: 9 there, 4 now"]
    assert plan.differences({k: v for k, v in plan.to_dict().items() if k != "warmup_ratio"}) == []  # older plan.json
    with pytest.raises(InputError, match="seeds must be distinct"):
        AblationPlan.for_task("mrpc", data_dir="glue", seeds=[1, 1])
    with pytest.raises(InputError, match="variants must be >= 1"):
        AblationPlan.for_task("mrpc", data_dir="glue", variants=0)
    # everything is checked before the first step, not after the teacher has trained
    with pytest.raises(InputError, match="keeps the teacher's widths"):
        AblationPlan.for_task("mrpc", data_dir="glue", student="layers=2,hidden=128")
    with pytest.raises(InputError, match="teacher_epochs must be > 0"):
        AblationPlan.for_task("mrpc", data_dir="glue", teacher_epochs=0)
    with pytest.raises(InputError, match="data_dir is empty"):
        AblationPlan.for_task("mrpc")


# ---------------------------------------------------------------- --quick end to end


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment") / "cola"
    result = invoke("experiment", "ablation", "--task", "cola", "--quick", "--out", str(out), "--json",
                    "--seeds", "1,2", "--augment-seeds", "0,1", "--student-rows", "32", "--unseen-rows", "8",
                    "--validation-rows", "8", "--eval-every", "10", "--patience", "3")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_quick_runs_every_step_of_every_condition(quick_run):
    out, summary = quick_run
    assert set(summary["conditions"]) == {"a", "b", "c", "d", "r", "u"}
    for name, condition in summary["conditions"].items():  # every augmentation seed with every training seed
        assert condition["seeds"] == (["aug0-seed1", "aug0-seed2", "aug1-seed1", "aug1-seed2"] if name in "cdr"
                                      else ["seed1", "seed2"])
    # the tiny teacher really learned its task, so the students were taught something
    assert summary["teacher"]["mcc"] > 0.5
    steps = json.loads((out / "steps.json").read_text())
    assert {"teacher", "original-rows", "unseen", "unseen-logits", "student-init"} <= set(steps)
    assert {f"{name}{k}" for name in ("augment", "teacher-logits", "agreeing-rows", "random", "random-logits")
            for k in (0, 1)} <= set(steps)
    assert {f"{c}-seed{s}" for c in "abu" for s in (1, 2)} | {f"{c}-aug{k}-seed{s}" for c in "cdr" for k in (0, 1)
                                                             for s in (1, 2)} <= set(steps)
    attempts = json.loads((out / "attempts.json").read_text())  # every step that started, and how it ended
    assert len(attempts) == len(steps) and {a["outcome"] for a in attempts} == {"done"}
    assert summary["attempts"] == {"started": len(steps), "done": len(steps), "not_done": []}
    commands = (out / "commands.sh").read_text()
    for command in ("tinyaug finetune", "tinyaug augment", "tinyaug teacher-logits",
                    "tinyaug filter", "tinyaug make-student", "tinyaug distill"):
        assert command in commands
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(c) distilled, augmented rows | 4 |" in (out / "summary.md").read_text()


def test_quick_conditions_use_the_right_rows_and_the_same_student(quick_run):
    out, summary = quick_run
    aug, orig = datasets.load_from_disk(str(out / "aug0")), datasets.load_from_disk(str(out / "orig"))
    assert max(aug["aug_variant"]) == 2 and set(orig["aug_variant"]) == {0}
    assert len(orig) == 32 and len(aug) > len(orig)
    assert orig["teacher_logits"] == [row["teacher_logits"] for row in aug if row["aug_variant"] == 0]
    other = datasets.load_from_disk(str(out / "aug1"))  # the second augmentation seed: same rows, other variants
    assert set(other["aug_example_id"]) == set(aug["aug_example_id"]) and other["sentence"] != aug["sentence"]
    distill_b = json.loads((out / "runs" / "b-seed1" / "distill_results.json").read_text())
    distill_c = json.loads((out / "runs" / "c-aug0-seed1" / "distill_results.json").read_text())
    assert distill_b["data_rows"] == len(orig) and distill_c["data_rows"] == len(aug)
    assert distill_b["student"] == distill_c["student"] == {"directory": str(out / "student-init"), "init": "directory"}
    assert distill_b["recipe"] == distill_c["recipe"]  # only the data differs between (b) and (c)
    orig_info = json.loads((out / "orig" / "teacher_logits.json").read_text())
    agreeing = datasets.load_from_disk(str(out / "agreeing0"))
    assert len(agreeing) == len(orig) + sum(not r["teacher_flip"] for r in aug if r["aug_variant"] > 0)
    assert orig_info["rows"] == len(orig)
    assert summary["rows"] == {"original": len(orig), "augmented": len(aug), "agreeing": len(agreeing), "unseen": 40}
    assert summary["rows_per_augment_seed"]["1"] == {"augmented": len(other), "random": len(other),
                                                     "agreeing": len(datasets.load_from_disk(str(out / "agreeing1")))}
    distill_d = json.loads((out / "runs" / "d-aug0-seed1" / "distill_results.json").read_text())
    assert distill_d["data_rows"] == len(agreeing) and distill_d["recipe"] == distill_c["recipe"]
    # (r), the control: the same rows and recipe, random words where augment replaces words
    random_rows = datasets.load_from_disk(str(out / "random0"))
    assert random_rows["aug_example_id"][:1] == [0] and set(random_rows["aug_example_id"]) == set(aug["aug_example_id"])
    assert {c["source"] for row in random_rows for c in row["aug_changes"]} == {"random"}
    assert [r for r in random_rows if r["aug_variant"] == 0] == [
        {k: v for k, v in r.items() if k in random_rows.column_names} for r in aug if r["aug_variant"] == 0]
    distill_r = json.loads((out / "runs" / "r-aug0-seed1" / "distill_results.json").read_text())
    assert distill_r["data_rows"] == len(random_rows) and distill_r["recipe"] == distill_c["recipe"]
    # (u): the students' 32 rows and the next 8 real rows, labelled by the same teacher
    unseen = datasets.load_from_disk(str(out / "unseen"))
    assert unseen["idx"] == list(range(40)) and set(unseen["aug_variant"]) == {0}
    assert unseen["teacher_logits"][:32] == orig["teacher_logits"]
    distill_u = json.loads((out / "runs" / "u-seed1" / "distill_results.json").read_text())
    assert distill_u["data_rows"] == 40 and distill_u["recipe"] == distill_c["recipe"]
    assert "c-r" in summary["spread_comparisons"] and "r-b" in summary["spread_comparisons"]
    assert summary["flips"]["overall"]["variants"] == len(aug) - len(orig)
    finetune_a = json.loads((out / "runs" / "a-seed1" / "finetune_results.json").read_text())
    assert finetune_a["settings"]["max_steps"] == 2 * 6  # (a) gets both stages' step budget
    assert distill_c["train"]["stage1"]["steps"] == 6 and distill_c["train"]["stage2"]["steps"] <= 6
    # held-out validation rows (the last 8 of train, idx 40-47) chose every checkpoint, the teacher's too
    teacher = json.loads((out / "teacher" / "finetune_results.json").read_text())
    for result in (teacher, finetune_a, distill_b, distill_c, distill_d, distill_r, distill_u):
        assert result["validation"]["rows"] == 8 and result["validation"]["first_idx"] == 40
        history = result["validation"]["history"]  # scored every 10 steps and at the last one
        assert all(step % 10 == 0 or step == result["validation"]["last_step"] for step, _ in history)
        assert result["validation"]["best"] == max(v for _, v in history)
    assert [step for step, _ in finetune_a["validation"]["history"]] == [10, 12]
    assert teacher["train_rows"] == 40 and max(unseen["idx"]) < 40
    assert set(summary["validation_choices"]) == {f"{c}-{r}" for c, row in summary["conditions"].items()
                                                  for r in row["seeds"]}
    # weights are dropped after scoring unless --keep-models
    assert not list((out / "runs").glob("*/*.safetensors"))
    # what the teacher makes of the variants, counted from the stored rows
    found = summary["teacher_on_variants"]
    prediction = {(r["aug_example_id"], r["aug_variant"]): int(np.argmax(r["teacher_logits"])) for r in aug}
    changed = [p != prediction[(i, 0)] for (i, v), p in prediction.items() if v > 0]
    assert found["variants"] == len(aug) - len(orig) == len(changed)
    assert found["changed_prediction"] == pytest.approx(np.mean(changed))
    assert found["label_names"] == ["unacceptable", "acceptable"]
    assert "the teacher changes its prediction on" in (out / "summary.md").read_text()
    assert summary["chance_level"] == 0.0  # CoLA's MCC of a constant guess
    assert "a constant guess (the best single label) scores mcc 0.0" in (out / "summary.md").read_text()


def test_student_init_copies_the_teachers_mapped_layers(quick_run):
    out, _ = quick_run
    info = json.loads((out / "student-init" / "student_init.json").read_text())
    assert info["student"]["init"] == "teacher-layers" and info["student"]["layer_map"] == [2]
    student = load_file(str(out / "student-init" / "model.safetensors"))
    teacher = load_file(str(out / "teacher" / "model.safetensors"))
    key = "bert.encoder.layer.{}.attention.self.query.weight"
    assert torch.equal(student[key.format(0)], teacher[key.format(1)])
    assert torch.equal(student["classifier.weight"], teacher["classifier.weight"])


def test_rerun_resumes_and_changed_settings_are_refused(quick_run):
    out, summary = quick_run
    steps_before = (out / "steps.json").read_text()
    again = invoke("experiment", "ablation", "--task", "cola", "--quick", "--out", str(out), "--seeds", "1,2",
                   "--augment-seeds", "0,1", "--student-rows", "32", "--unseen-rows", "8", "--validation-rows", "8",
                   "--eval-every", "10", "--patience", "3")
    assert again.exit_code == 0
    assert "[run ]" not in again.stderr and (out / "steps.json").read_text() == steps_before

    # an interruption during one run: its result file was never written
    (out / "runs" / "c-aug1-seed2" / "distill_results.json").unlink()
    options = ["--seeds", "1,2", "--augment-seeds", "0,1", "--student-rows", "32", "--unseen-rows", "8",
               "--validation-rows", "8", "--eval-every", "10", "--patience", "3"]
    resumed = invoke("experiment", "ablation", "--task", "cola", "--quick", "--out", str(out), *options)
    assert [line.split(":")[0] for line in resumed.stderr.splitlines() if line.startswith("[run ]")] == [
        "[run ] c-aug1-seed2"]
    assert json.loads((out / "summary.json").read_text())["conditions"]["c"]["per_seed"] == summary["conditions"]["c"]["per_seed"]

    changed = invoke("experiment", "ablation", "--task", "cola", "--quick", "--out", str(out), *options, "--variants", "3")
    assert changed.exit_code == 1
    assert "holds an experiment with other settings (variants: 2 there, 3 now)" in changed.output
    assert "Traceback" not in changed.output


def test_report_combines_experiments(quick_run, tmp_path):
    out, _ = quick_run
    result = invoke("experiment", "report", str(out), str(out), "--plot", str(tmp_path / "both.png"),
                    "--markdown", str(tmp_path / "both.md"))
    assert result.exit_code == 0
    assert result.stdout.count("| cola (6+at most 6 steps) | teacher") == 2  # the task and its step budget
    assert (tmp_path / "both.png").stat().st_size > 0
    missing = invoke("experiment", "report", str(tmp_path))
    assert missing.exit_code == 1 and "no summary.json" in missing.output


def test_ablation_needs_data_dir_without_quick(tmp_path):
    result = invoke("experiment", "ablation", "--task", "mrpc", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "--data-dir is required" in result.output


def test_a_step_is_redone_when_a_step_it_depends_on_ran_again(tmp_path):
    from tinyaug.pipelines.experiment.ablation import Experiment
    from tinyaug.pipelines.experiment.steps import Step

    ran = []
    experiment = Experiment(AblationPlan.for_task("cola", data_dir="glue"), tmp_path, ran.append,
                            echo=lambda line: None)
    experiment._open()
    done = tmp_path / "done"
    done.write_text("")
    experiment._run_step(Step.command("teacher", done, ["finetune", "x"]))
    experiment._run_step(Step.command("a-seed1", done, ["finetune", "y"], after=("teacher",)))
    assert ran == []  # both finished earlier
    experiment._run_step(Step.command("teacher", tmp_path / "missing", ["finetune", "x"]))
    experiment._run_step(Step.command("a-seed1", done, ["finetune", "y"], after=("teacher",)))
    experiment._run_step(Step.command("augment", done, ["augment"], after=("student-init",)))
    assert ran == [["finetune", "x"], ["finetune", "y"]]
    assert set(json.loads((tmp_path / "steps.json").read_text())) == {"teacher", "a-seed1"}


def test_every_step_is_one_command_line_that_the_cli_parses(tmp_path):
    """The table is the single source: each step runs exactly the line commands.sh lists, and
    every such line is a valid tinyaug command."""
    import shlex

    from tinyaug.pipelines.cli import main
    from tinyaug.pipelines.experiment.ablation import Experiment

    plan = AblationPlan.for_task("mrpc", data_dir="glue", seeds=(1, 2), train_limit=100, max_seq_length=64)
    table = Experiment(plan, tmp_path, lambda argv: None, echo=lambda line: None).table()
    (tmp_path / "aug0").mkdir()  # filter's DATASET must exist for click to parse the line
    assert [s.name for s in table][:8] == ["teacher", "augment0", "teacher-logits0", "agreeing-rows0", "random0",
                                          "random-logits0", "original-rows", "student-init"]
    assert [s.name for s in table][8:] == [f"{c}-{'aug0-' if c in 'cdr' else ''}seed{s}" for s in (1, 2)
                                           for c in "abcdr"]
    for step in table:
        if step.argv is None:
            assert step.command_line.startswith("# ")
            continue
        assert shlex.split(step.command_line) == ["tinyaug", *step.argv]
        command = main.get_command(None, step.argv[0])
        context = command.make_context(step.argv[0], list(step.argv[1:]))  # raises on an unknown option
        assert context.params.get("device", "auto") == "auto"  # make-student has no --device
    distill = next(s for s in table if s.name == "c-aug0-seed2")
    params = main.get_command(None, "distill").make_context("distill", list(distill.argv[1:])).params
    assert params["stage1_max_steps"] == plan.stage1_steps and params["seed"] == 2
    assert params["data"].name == "aug0" and params["max_seq_length"] == 64
    assert params["validation_rows"] is None  # no held-out rows unless the plan has them


def test_the_small_data_regime_gives_the_students_fewer_rows_than_the_teacher(tmp_path):
    from tinyaug.pipelines.experiment.ablation import Experiment

    plan = AblationPlan.for_task("sst2", data_dir="glue", seeds=(1,), train_limit=6000, student_rows=500)
    steps = {s.name: s.argv for s in Experiment(plan, tmp_path, lambda argv: None, echo=lambda line: None).table()}

    def option(name, flag):
        return steps[name][steps[name].index(flag) + 1]

    assert option("teacher", "--train-limit") == "6000"
    assert option("augment0", "--limit") == "500" and option("a-seed1", "--train-limit") == "500"
    assert option("d-aug0-seed1", "--data") == str(tmp_path / "agreeing0")
    assert steps["agreeing-rows0"][:4] == ("filter", str(tmp_path / "aug0"), "--keep", "agreeing")


def test_the_plan_holds_out_validation_rows_and_adds_unseen_rows_and_augmentation_seeds(tmp_path):
    """With validation rows every training run (teacher, (a), every distillation) carries the same
    stopping rule; (u) augments nothing (-n 0) over the students' rows plus the unseen ones; (c),
    (d) and (r) run per augmentation seed, each from its own augmented folder."""
    from tinyaug.pipelines.experiment.ablation import Experiment

    plan = AblationPlan.for_task("sst2", data_dir="glue", seeds=(1, 2), augment_seeds=(0, 5), train_limit=6000,
                                 student_rows=500, unseen_rows=5500, validation_rows=500, eval_every=25, patience=4)
    table = Experiment(plan, tmp_path, lambda argv: None, echo=lambda line: None).table()
    steps = {s.name: s.argv for s in table}
    rule = ("--validation-rows", "500", "--eval-every", "25", "--patience", "4")
    trained = [name for name, argv in steps.items() if argv and argv[0] in ("finetune", "distill")]
    assert len(trained) == 1 + 3 * 2 + 3 * 2 * 2  # the teacher, (a)(b)(u) per seed, (c)(d)(r) per seed pair
    for name in trained:
        argv = " ".join(steps[name])
        assert " ".join(rule) in argv, name
    unseen = steps["unseen"]
    assert unseen[unseen.index("-n") + 1] == "0" and unseen[unseen.index("--limit") + 1] == "6000"
    assert steps["augment5"][steps["augment5"].index("--seed") + 1] == "5"
    assert steps["random5"][steps["random5"].index("--method") + 1] == "random"
    data = {name: argv[argv.index("--data") + 1] for name, argv in steps.items() if argv and argv[0] == "distill"}
    assert data["c-aug5-seed2"] == str(tmp_path / "aug5") and data["r-aug5-seed1"] == str(tmp_path / "random5")
    assert data["u-seed2"] == str(tmp_path / "unseen") and data["b-seed1"] == str(tmp_path / "orig")
    # the teacher's own patience (0: all its epochs, the best checkpoint kept), the students' unchanged
    own = AblationPlan.for_task("sst2", data_dir="glue", seeds=(1,), validation_rows=500, teacher_patience=0)
    table = {s.name: " ".join(s.argv or ()) for s in Experiment(own, tmp_path, lambda argv: None,
                                                                echo=lambda line: None).table()}
    assert "--patience 0" in table["teacher"] and "--patience 3" in table["b-seed1"]
    with pytest.raises(InputError, match="exceed the teacher's train_limit"):
        AblationPlan.for_task("sst2", data_dir="glue", train_limit=1000, student_rows=500, unseen_rows=501)
    with pytest.raises(InputError, match="unseen_rows needs student_rows"):
        AblationPlan.for_task("sst2", data_dir="glue", unseen_rows=10)
    with pytest.raises(InputError, match="augment_seeds must be distinct"):
        AblationPlan.for_task("sst2", data_dir="glue", augment_seeds=(1, 1))
    # a plan.json from before augmentation seeds (augment_seed: 0) is the same plan as augment_seeds (0,)
    old = {k: v for k, v in AblationPlan.for_task("sst2", data_dir="glue").to_dict().items() if k != "augment_seeds"}
    assert AblationPlan.for_task("sst2", data_dir="glue").differences({**old, "augment_seed": 0}) == []


def test_quick_summary_has_paired_intervals_from_the_stored_dev_predictions(quick_run):
    """Every comparison of two conditions comes with a paired bootstrap interval computed from
    the per-example dev predictions each run stores (recomputed here from the files)."""
    from tinyaug.pipelines.experiment.statistics import paired_bootstrap

    out, summary = quick_run
    paired = {(row["better"], row["worse"]): row for row in summary["comparisons"]}
    assert {("c", "b"), ("c", "r"), ("b", "a")} <= set(paired)
    row = paired[("c", "r")]
    seeds = row["seeds"]
    assert seeds == ["aug0-seed1", "aug0-seed2", "aug1-seed1", "aug1-seed2"]  # (c) and (r) pair up per seed pair
    load = lambda c, s: json.loads((out / "runs" / f"{c}-{s}" / "distill_results.json").read_text())  # noqa: E731
    dev = {c: [load(c, s)["dev_predictions"]["dev"] for s in seeds] for c in ("c", "r")}
    gold = dev["c"][0]["gold"]
    again = paired_bootstrap(summary["metric"], np.asarray(gold), np.asarray([d["predicted"] for d in dev["c"]]),
                             np.asarray([d["predicted"] for d in dev["r"]]))
    assert row["diff"] == pytest.approx(again["diff"]) and row["ci95"] == pytest.approx(again["ci95"])
    assert row["ci95"][0] <= row["diff"] <= row["ci95"][1]
    metric = summary["metric"]
    assert row["diff"] == pytest.approx(np.mean([load("c", s)["dev_metrics"]["dev"][metric]
                                                 - load("r", s)["dev_metrics"]["dev"][metric] for s in seeds]))


def test_the_plan_is_hashed_before_any_result_and_cannot_change_after(quick_run, tmp_path):
    """``plan.sha256.json`` holds the sha256 of ``plan.json`` and when it was written; every step and
    the summary carry it; a plan with results refuses new seeds or an edited plan.json."""
    import hashlib

    from tinyaug.errors import InputError
    from tinyaug.pipelines.experiment.ablation import Experiment

    out, summary = quick_run
    record = json.loads((out / "plan.sha256.json").read_text())
    assert record["sha256"] == hashlib.sha256((out / "plan.json").read_bytes()).hexdigest()
    assert summary["plan_sha256"] == record["sha256"] and summary["plan_written"] == record["written"]
    assert summary["task"] and {row["better"] for row in summary["comparisons"]} <= set("abcdru")
    assert all({"better", "worse", "metric", "diff", "ci95"} <= set(row) for row in summary["comparisons"])
    steps = json.loads((out / "steps.json").read_text())
    assert steps and all(step["plan_sha256"] == record["sha256"] for step in steps.values())
    # another folder with the same plan's files: more seeds after results are refused
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    stored = json.loads((copy / "plan.json").read_text())
    plan = AblationPlan(**{**stored, "seeds": (*stored["seeds"], 99)})
    with pytest.raises(InputError, match="a new plan is a new --out"):
        Experiment(plan, copy, lambda argv: None, echo=lambda line: None)._open()
    # an edited plan.json (the same settings, other bytes) is found out by its hash
    (copy / "plan.json").write_text((copy / "plan.json").read_text() + "\n")
    same = AblationPlan(**json.loads((copy / "plan.json").read_text()))
    with pytest.raises(InputError, match="does not match the sha256"):
        Experiment(same, copy, lambda argv: None, echo=lambda line: None)._open()


def test_every_attempt_is_recorded_with_how_it_ended(tmp_path):
    """attempts.json keeps every step that started: done, interrupted, failed, or cut off (no end)."""
    from tinyaug.pipelines.experiment.ablation import Experiment
    from tinyaug.pipelines.experiment.steps import Step

    def run(argv):
        if argv[0] == "stop":
            raise KeyboardInterrupt
        if argv[0] == "fail":
            raise InputError("no such file")

    experiment = Experiment(AblationPlan.for_task("cola", data_dir="glue"), tmp_path, run, echo=lambda line: None)
    experiment._open()
    experiment._run_step(Step.command("teacher", tmp_path / "t.json", ["finetune"]))
    for name in ("stop", "fail"):
        with pytest.raises((KeyboardInterrupt, InputError)):
            experiment._run_step(Step.command(name, tmp_path / f"{name}.json", [name]))
    attempts = json.loads((tmp_path / "attempts.json").read_text())
    assert [(a["step"], a["outcome"]) for a in attempts] == [
        ("teacher", "done"), ("stop", "stopped: interrupted (Ctrl-C or SIGINT)"), ("fail", "failed: InputError: no such file")]
    assert all(a["plan_sha256"] == experiment.plan_record["sha256"] and a["ended"] >= a["started"] for a in attempts)


def test_status_reads_where_an_experiment_stands_and_writes_nothing(quick_run, tmp_path):
    out, summary = quick_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "runs" / "c-aug1-seed2" / "distill_results.json").unlink()  # a run cut off mid-way
    attempts = json.loads((copy / "attempts.json").read_text())
    attempts.append({"step": "c-aug1-seed2", "started": "2026-12-05T08:00:00", "plan_sha256": summary["plan_sha256"]})
    (copy / "attempts.json").write_text(json.dumps(attempts))
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*")}
    result = invoke("experiment", "status", str(copy), "--interim")
    assert result.exit_code == 0, result.output
    assert "32 of 33 steps done, 17 of 18 student runs" in result.stdout
    assert "running (or cut off, when no process runs it): c-aug1-seed2" in result.stdout
    assert "left: 1 steps, about" in result.stdout
    assert "INTERIM, 17 of 18 student runs (not the pre-registered analysis" in result.stdout
    assert "| cola (6+at most 6 steps) | (c) distilled, augmented rows | 3 |" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*")} == before  # read-only
    finished = json.loads(invoke("experiment", "status", str(out), "--json").stdout)
    assert finished["steps"]["to_do"] == [] and finished["steps"]["running"] == [] and "summary" not in finished
    missing = invoke("experiment", "status", str(tmp_path))
    assert missing.exit_code == 1 and "no plan.json" in missing.output
