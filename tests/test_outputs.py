"""Nothing a user owns is replaced: every command that writes refuses, in one line and before it
loads anything, an output that is one of its inputs (or inside one), a file or folder it did not
write (without advising --overwrite, which would refuse it too), and an existing output without
--overwrite; a link is written through; legitimate reruns with --overwrite still work."""

import importlib
import os

import pytest
from click.testing import CliRunner

from tinyaug.errors import OutputError
from tinyaug.pipelines.augmentation.build import load_augmented
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.outputs import check_output, path_identity

from helpers import lock_held_elsewhere, write_augmented

STUDENT = "layers=1,hidden=32,heads=2,intermediate=64"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, *fragments, overwrite_advice=False):
    """One ``Error:`` line holding ``fragments``; it advises --overwrite only when told to."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert ("--overwrite" in errors[0]) == overwrite_advice, errors[0]
    return errors[0]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def glue(tmp_path):
    return T.write_glue_task(tmp_path / "glue", "sst2", train_rows=6, dev_rows=4)


@pytest.fixture
def dataset(glue, tmp_path):
    return write_augmented(glue, "sst2", tmp_path / "runs" / "sst2-aug", variants=1)


@pytest.fixture
def no_loading(monkeypatch):
    """Every loader raises: a refusal that still comes was made before anything was loaded."""
    def boom(*args, **kwargs):
        raise AssertionError("loaded something before refusing")

    names = ("tinyaug.pipelines.augmentation.build.load_models", "tinyaug.pipelines.io.tables.load_input",
             "tinyaug.pipelines.augmentation.build.load_augmented",
             "tinyaug.pipelines.distillation.finetune.load_student_dir",
             "tinyaug.pipelines.distillation.finetune.read_split",
             "tinyaug.pipelines.distillation.finetune.load_task_model",
             "tinyaug.pipelines.distillation.distill.load_task_model",
             "tinyaug.pipelines.distillation.distill.load_task_dataset",
             "tinyaug.pipelines.distillation.teacher.load_task_dataset",
             "tinyaug.pipelines.augmentation.filter.load_augmented")
    # every module imported first, so that none copies a stand-in at its import (and keeps it)
    modules = {name: importlib.import_module(name.rpartition(".")[0]) for name in names}
    for name, module in modules.items():
        monkeypatch.setattr(module, name.rpartition(".")[2], boom)  # the module, not a same-named function


def users_folder(path, name="config.json", text='{"mine": true}'):
    path.mkdir(parents=True)
    (path / name).write_text(text)
    return path


# -- export


def test_export_onto_a_glue_file_is_refused_even_with_overwrite(dataset, glue, no_loading):
    train = glue / "SST-2" / "train.tsv"
    before = train.read_bytes()
    refused(invoke("export", dataset, "--to", train), "is not an earlier export", "remove it yourself")
    refused(invoke("export", dataset, "--to", train, "--overwrite"), "is not an earlier export", "remove it yourself")
    assert train.read_bytes() == before


def test_export_into_the_dataset_is_refused(dataset, no_loading):
    state = (dataset / "state.json").read_bytes()
    refused(invoke("export", dataset, "--format", "json", "--to", dataset / "state.json", "--overwrite"),
            "lies inside the input DATASET")
    refused(invoke("export", dataset, "--to", dataset / "new.tsv"), "lies inside the input DATASET")
    assert (dataset / "state.json").read_bytes() == state and not (dataset / "new.tsv").exists()


def test_a_second_export_to_the_same_default_target_needs_overwrite(glue, tmp_path):
    first = write_augmented(glue, "sst2", tmp_path / "runs" / "sst2-aug", variants=1, seed=0)
    second = write_augmented(glue, "sst2", tmp_path / "runs" / "sst2-aug2", variants=2, seed=1)
    assert invoke("export", first).exit_code == 0
    target = tmp_path / "runs" / "train_aug.tsv"
    exported = target.read_bytes()
    refused(invoke("export", second), str(target), "already exists; pass --overwrite", overwrite_advice=True)
    assert target.read_bytes() == exported
    again = invoke("export", second, "--overwrite")
    assert again.exit_code == 0, again.output
    assert len(target.read_text().splitlines()) == len(load_augmented(second)) + 1


def test_a_suffix_that_is_not_the_formats_is_refused(dataset, tmp_path, no_loading):
    refused(invoke("export", dataset, "--format", "csv", "--to", tmp_path / "x.parquet"),
            "--format csv writes a .csv file; name it x.csv, or pass --format parquet")
    refused(invoke("export", dataset, "--format", "tsv", "--to", tmp_path / "rows"), "name it rows.tsv")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "rows").exists()


def test_a_folder_target_keeps_the_default_name(dataset, tmp_path):
    (tmp_path / "out").mkdir()
    result = invoke("export", dataset, "--format", "csv", "--to", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "train_aug.csv").is_file()


def test_export_writes_through_a_link_and_keeps_it(dataset, glue, tmp_path):
    real = tmp_path / "exports" / "train_aug.tsv"
    real.parent.mkdir()
    real.write_text("an earlier export\n")
    link = tmp_path / "latest.tsv"
    link.symlink_to(real)
    refused(invoke("export", dataset, "--to", link), "a link to", "already exists", overwrite_advice=True)
    result = invoke("export", dataset, "--to", link, "--overwrite")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("sentence\tlabel\n")
    # a link to GLUE's own file: the rules apply to what it points at
    to_glue = tmp_path / "glue-train.tsv"
    to_glue.symlink_to(glue / "SST-2" / "train.tsv")
    before = (glue / "SST-2" / "train.tsv").read_bytes()
    refused(invoke("export", dataset, "--to", to_glue, "--overwrite"), "is not an earlier export")
    assert to_glue.is_symlink() and (glue / "SST-2" / "train.tsv").read_bytes() == before


# -- distillation commands: a model folder is an input, never an output


def test_distill_never_writes_over_the_teacher(dataset, glue, tmp_path, no_loading):
    teacher = users_folder(tmp_path / "teacher")
    (teacher / "model.safetensors").write_bytes(b"weights")
    before = snapshot(teacher)
    common = ["distill", "--teacher", teacher, "--student", STUDENT, "--data", dataset, "--task", "sst2"]
    refused(invoke(*common, "--out", teacher), "is the input --teacher")
    refused(invoke(*common, "--out", teacher, "--overwrite"), "is the input --teacher")
    refused(invoke(*common, "--out", dataset / "student"), "lies inside the input --data")
    refused(invoke(*common, "--out", glue / "SST-2", "--data-dir", glue), "is the input --data-dir")
    refused(invoke(*common, "--out", glue, "--data-dir", glue, "--overwrite"), "holds the input --data-dir")
    refused(invoke(*common, "--out", users_folder(tmp_path / "mine")), "is not a folder written by tinyaug distill",
            "remove it yourself")
    refused(invoke(*common, "--out", tmp_path / "mine", "--overwrite"), "distill_results.json")
    assert snapshot(teacher) == before


def test_finetune_never_rewrites_its_base_model(glue, tmp_path, no_loading):
    base = users_folder(tmp_path / "encoder")
    before = snapshot(base)
    refused(invoke("finetune", base, "--task", "sst2", "--data-dir", glue, "--out", base), "is the input MODEL")
    refused(invoke("finetune", base, "--task", "sst2", "--data-dir", glue, "--out", base, "--overwrite"),
            "is the input MODEL")
    other = users_folder(tmp_path / "other")
    refused(invoke("finetune", base, "--task", "sst2", "--data-dir", glue, "--out", other, "--overwrite"),
            "is not a folder written by tinyaug finetune (with finetune_results.json)")
    assert snapshot(base) == before


def test_make_student_never_replaces_a_users_folder(tmp_path, no_loading):
    teacher = users_folder(tmp_path / "teacher")
    mine = users_folder(tmp_path / "mine")
    common = ["make-student", "--teacher", teacher, "--student", STUDENT, "--task", "sst2"]
    refused(invoke(*common, "--out", mine), "is not a folder written by tinyaug make-student")
    refused(invoke(*common, "--out", mine, "--overwrite"), "student_init.json", "remove it yourself")
    refused(invoke(*common, "--out", teacher / "student"), "lies inside the input --teacher")
    assert (mine / "config.json").read_text() == '{"mine": true}' and not (teacher / "student").exists()


def test_teacher_logits_out_is_never_an_input(dataset, tmp_path, no_loading):
    teacher = users_folder(tmp_path / "teacher")
    refused(invoke("teacher-logits", "--teacher", teacher, "--data", dataset, "--task", "sst2", "--out", teacher,
                   "--overwrite"), "is the input --teacher")
    refused(invoke("teacher-logits", "--teacher", teacher, "--data", dataset, "--task", "sst2",
                   "--out", dataset / "sub"), "lies inside the input --data")


def test_evaluate_out_is_checked(tmp_path, glue, no_loading):
    model = users_folder(tmp_path / "model")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    common = ["evaluate", model, "--task", "sst2", "--data-dir", glue]
    refused(invoke(*common, "--out", model / "config.json", "--overwrite"), "lies inside the input MODEL_DIR")
    refused(invoke(*common, "--out", notes, "--overwrite"), "is not an earlier evaluate result")
    refused(invoke(*common, "--out", notes), "is not an earlier evaluate result")
    assert notes.read_text() == '{"mine": 1}'


def test_filter_out_is_never_its_dataset_nor_a_users_folder(dataset, tmp_path, no_loading):
    refused(invoke("filter", dataset, "--out", dataset, "--overwrite"), "is the input DATASET")
    mine = users_folder(tmp_path / "mine", "notes.txt", "keep")
    refused(invoke("filter", dataset, "--out", mine), "is not a dataset written by tinyaug", "remove it yourself")
    refused(invoke("filter", dataset, "--out", mine, "--overwrite"), "is not a dataset written by tinyaug")
    assert (mine / "notes.txt").read_text() == "keep"


def test_experiment_out_must_be_new_or_an_experiment(tmp_path):
    mine = users_folder(tmp_path / "mine", "notes.txt", "keep")
    refused(invoke("experiment", "ablation", "--task", "cola", "--quick", "--out", mine),
            "is not an experiment's folder (with plan.json)")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # --quick built nothing in it


# -- augment: refusals come before any model or row is loaded


def augment_args(glue, out, *extra):
    return ["augment", "--task", "sst2", "--data-dir", glue, "-n", "1", "--show", "0", "--device", "cpu",
            "--out", out, *extra]


def test_augment_refuses_a_users_folder_and_its_inputs_before_loading(glue, dataset, tmp_path, no_loading):
    mine = users_folder(tmp_path / "mine", "notes.txt", "keep")
    refused(invoke(*augment_args(glue, mine)), "is not a dataset written by tinyaug", "remove it yourself")
    refused(invoke(*augment_args(glue, mine, "--overwrite")), "is not a dataset written by tinyaug")
    refused(invoke(*augment_args(glue, glue / "SST-2" / "aug")), "lies inside the input --data-dir")
    before = snapshot(dataset)
    refused(invoke("augment", "--input", dataset, "--text-columns", "sentence", "--out", dataset, "--overwrite"),
            "is the input --input")
    assert snapshot(dataset) == before and not (tmp_path / "mine.partial").exists()


def test_a_failed_augment_leaves_no_work_folder(glue, tmp_path, monkeypatch):
    from tinyaug.errors import ModelLoadError

    def missing(*args, **kwargs):
        raise ModelLoadError("no such model")

    monkeypatch.setattr("tinyaug.pipelines.augmentation.build.load_models", missing)
    monkeypatch.chdir(tmp_path)
    refused(invoke("augment", "--task", "sst2", "--data-dir", glue), "no such model")
    assert not (tmp_path / "tinyaug-out").exists()  # neither the default folder nor sst2-aug.partial


def test_augment_stops_at_a_held_lock_before_loading(glue, tmp_path, no_loading):
    out = tmp_path / "busy"
    with lock_held_elsewhere(tmp_path / "busy.partial" / "run.lock"):
        refused(invoke(*augment_args(glue, out)), "another tinyaug run is writing")


def test_augment_already_complete_and_changed_arguments_are_told_before_loading(glue, tiny_dir, tmp_path,
                                                                                monkeypatch):
    out = tmp_path / "aug"
    args = augment_args(glue, out, "--mlm", tiny_dir)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert load_augmented(out).info.description and not (tmp_path / "aug.partial").exists()

    with monkeypatch.context() as patch:
        def boom(*a, **k):
            raise AssertionError("loaded a model or the input")

        patch.setattr("tinyaug.pipelines.augmentation.build.load_models", boom)
        patch.setattr("tinyaug.pipelines.io.tables.load_input", boom)
        again = invoke(*args)
        assert again.exit_code == 0 and "already complete with these arguments" in again.output
        refused(invoke(*args, "--seed", "7"), "already exists; pass --overwrite", overwrite_advice=True)
        assert not (tmp_path / "aug.partial").exists()  # no empty work folder left by a refusal

    # another request that may make the same rows (no bad row to skip): the full check after loading decides
    touched = invoke(*args, "--skip-bad-rows")
    assert touched.exit_code == 0 and "already complete with these arguments" in touched.output, touched.output
    rebuilt = invoke(*args, "--seed", "7", "--overwrite")
    assert rebuilt.exit_code == 0, rebuilt.output and "Wrote" in rebuilt.output


def test_augment_writes_through_a_link_to_a_folder(glue, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    write_augmented(glue, "sst2", link, variants=1)
    assert link.is_symlink() and load_augmented(real).num_rows == load_augmented(link).num_rows > 0


# -- the rule itself, and a legitimate rerun


def test_check_output_rules(tmp_path):
    def never(path):
        return False

    assert check_output(tmp_path / "new", command="x", what="y") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", command="x", what="y") == tmp_path / "empty"  # nothing to lose
    (tmp_path / "file").write_text("mine")
    with pytest.raises(OutputError, match="is a file; tinyaug x writes a folder"):
        check_output(tmp_path / "file", command="x", what="y", overwrite=True)
    with pytest.raises(OutputError, match="holds the input --data"):
        check_output(tmp_path, command="x", what="y", inputs=[("--data", tmp_path / "file")], overwrite=True,
                     replaceable=lambda path: True)
    before = path_identity(tmp_path / "file")
    os.utime(tmp_path / "file", ns=(0, 0))
    assert path_identity(tmp_path / "file") != before


def test_legitimate_reruns_with_overwrite_still_work(glue, dataset, tmp_path):
    T.save_tiny_model(tmp_path / "encoder", T.tiny_config(layers=2), encoder_only=True)
    teacher = tmp_path / "teacher"
    finetune = ["finetune", tmp_path / "encoder", "--task", "sst2", "--data-dir", glue, "--out", teacher,
                "--max-steps", "1", "--batch-size", "4", "--device", "cpu"]
    assert invoke(*finetune).exit_code == 0
    refused(invoke(*finetune), "already exists; pass --overwrite", overwrite_advice=True)
    result = invoke(*finetune, "--overwrite")
    assert result.exit_code == 0, result.output

    student = ["make-student", "--teacher", teacher, "--student", "layers=1", "--task", "sst2",
               "--out", tmp_path / "init"]
    assert invoke(*student).exit_code == 0
    refused(invoke(*student), "already exists; pass --overwrite", overwrite_advice=True)
    assert invoke(*student, "--overwrite").exit_code == 0

    distill = ["distill", "--teacher", teacher, "--student", tmp_path / "init", "--data", dataset, "--task", "sst2",
               "--out", tmp_path / "student", "--stage", "2", "--stage2-max-steps", "1", "--device", "cpu"]
    assert invoke(*distill).exit_code == 0
    refused(invoke(*distill), "already exists; pass --overwrite", overwrite_advice=True)
    result = invoke(*distill, "--overwrite")
    assert result.exit_code == 0, result.output

    evaluate = ["evaluate", tmp_path / "student", "--task", "sst2", "--data-dir", glue, "--device", "cpu",
                "--out", tmp_path / "eval.json"]
    assert invoke(*evaluate).exit_code == 0
    refused(invoke(*evaluate), "already exists; pass --overwrite", overwrite_advice=True)
    assert invoke(*evaluate, "--overwrite").exit_code == 0
