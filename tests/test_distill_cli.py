"""The distillation commands end to end through click, on a tiny GLUE folder and tiny models."""

import json

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from tinyaug.pipelines.experiment import toys as T

from helpers import write_augmented
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.cli.distill import COMMANDS

STUDENT = "layers=2,hidden=16,heads=2,intermediate=20"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_every_command_has_an_example():
    assert {c.name for c in COMMANDS} == {"finetune", "teacher-logits", "make-student", "distill", "evaluate"}
    for command in COMMANDS:
        result = invoke(command.name, "--help")
        assert result.exit_code == 0
        assert "Example: tinyaug " + command.name in result.output
        assert ("--device" in result.output) == (command.name != "make-student")  # it only copies weights


def test_make_student_needs_a_size_and_matching_widths(tmp_path):
    teacher = T.save_tiny_model(tmp_path / "teacher", T.tiny_config())
    not_a_size = invoke("make-student", "--teacher", teacher, "--student", str(teacher), "--task", "sst2",
                        "--out", tmp_path / "s")
    assert not_a_size.exit_code == 1 and "expected a size such as layers=2" in not_a_size.output
    too_wide = invoke("make-student", "--teacher", teacher, "--student", "layers=1,hidden=64", "--task", "sst2",
                      "--out", tmp_path / "s")
    assert too_wide.exit_code == 1 and "needs the teacher's widths" in too_wide.output
    fresh = invoke("make-student", "--teacher", teacher, "--student", "layers=1,hidden=64,heads=2",
                   "--student-init", "random", "--task", "sst2", "--out", tmp_path / "s")
    assert fresh.exit_code == 0, fresh.output
    assert "init random" in fresh.output and (tmp_path / "s" / "student_init.json").is_file()


def test_end_to_end(tmp_path):
    glue = T.write_glue_task(tmp_path / "glue", "sst2", train_rows=64, dev_rows=32)
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=4), encoder_only=True)

    r = invoke("finetune", tmp_path / "encoder", "--task", "sst2", "--data-dir", glue, "--out",
               tmp_path / "teacher", "--epochs", "30", "--lr", "2e-3", "--batch-size", "16",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "dev (32 examples): accuracy 1.0000"
    assert r.stdout.splitlines()[1] == f"teacher saved to {tmp_path / 'teacher'} (120 steps)"

    data = write_augmented(glue, "sst2", tmp_path / "aug", variants=2)
    r = invoke("teacher-logits", "--teacher", tmp_path / "teacher", "--data", data, "--task", "sst2",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    rows = datasets.load_from_disk(str(data))
    assert rows[0]["aug_variant"] == 0 and len(rows) > 64  # the 64 originals and their distinct variants
    agreement = float(np.mean(np.argmax(rows["teacher_logits"], axis=1) == np.asarray(rows["label"])))
    assert r.stdout.startswith(f"wrote {len(rows)} rows with teacher_logits to {data} "
                               f"(teacher vs labels: accuracy {agreement:.4f})")

    shown = invoke("inspect", data, "--example", "0", "--no-pager")
    probability = np.exp(rows[0]["teacher_logits"]) / np.exp(rows[0]["teacher_logits"]).sum()
    name = rows.features["label"].int2str(int(np.argmax(probability)))
    assert f"label: {rows.features['label'].int2str(rows[0]['label'])}  teacher: {name} {probability.max():.2f}" \
        in shown.stdout

    r = invoke("distill", "--teacher", tmp_path / "teacher", "--student", STUDENT, "--data", data,
               "--task", "sst2", "--out", tmp_path / "student", "--stage", "both", "--data-dir", glue,
               "--stage1-max-steps", "5", "--stage1-batch-size", "16", "--stage2-max-steps", "5",
               "--stage2-batch-size", "16", "--device", "cpu")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "teacher accuracy 1.0000 on dev (sst2) (chance 0.5000)"
    assert lines[1].startswith("stage1: 5 steps, loss ") and lines[2].startswith("stage2: 5 steps, loss ")
    assert lines[3].startswith("dev (32 examples): accuracy ")
    assert lines[4] == f"student saved to {tmp_path / 'student'}"
    results = json.loads((tmp_path / "student" / "distill_results.json").read_text())
    assert results["used_stored_teacher_logits"] and results["recipe"]["stage1"]["max_steps"] == 5

    r = invoke("evaluate", tmp_path / "student", "--task", "sst2", "--data-dir", glue, "--device", "cpu",
               "--out", tmp_path / "eval.json")
    assert r.exit_code == 0, r.output
    assert r.stdout == lines[3] + "\n"
    assert json.loads((tmp_path / "eval.json").read_text())["dev_metrics"] == results["dev_metrics"]


def test_bad_input_is_one_line_without_traceback(tmp_path):
    glue = T.write_glue_task(tmp_path / "glue", "sst2", train_rows=8, dev_rows=4)
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=2), encoder_only=True)
    data = write_augmented(glue, "sst2", tmp_path / "aug", variants=0)
    r = invoke("distill", "--teacher", tmp_path / "encoder", "--student", STUDENT, "--data", data,
               "--task", "sst2", "--out", tmp_path / "s", "--device", "cpu")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: the teacher ") and "never fine-tuned on sst2" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = invoke("evaluate", tmp_path / "nowhere", "--task", "sst2", "--data-dir", glue, "--device", "cpu")
    assert r.exit_code == 1 and "nowhere: no such directory" in r.stderr
    r = invoke("distill", "--teacher", tmp_path / "encoder", "--student", STUDENT, "--data", data,
               "--task", "sst2", "--out", tmp_path / "s", "--layer-map", "two,four")
    assert r.exit_code == 1 and "comma-separated" in r.stderr
