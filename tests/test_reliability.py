"""Nothing a user owns is lost, and every failure is one line: file errors, locks, leftovers,
out-of-range options, unsafe model files."""

import errno
import os
import stat
import sys

import pytest
import torch
from click.testing import CliRunner

from tinyaug.pipelines.cli import main
from tinyaug.pipelines.cli.common import describe_os_error
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.storage import atomic_file, clear_stale

from helpers import lock_held_elsewhere, write_augmented

needs_unprivileged = pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the modes say")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *fragments):
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("code,hint", [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
                                       (errno.ELOOP, "link loop"), (errno.ENAMETOOLONG, "too long"),
                                       (errno.ENOTDIR, "is a file, not a folder")])
def test_file_errors_become_one_line_with_the_path_and_the_fix(code, hint):
    line = describe_os_error(OSError(code, os.strerror(code), "/data/out"))
    assert line.startswith("/data/out: ") and hint in line and "\n" not in line


def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
    data = write_augmented(tmp_path / "glue", "sst2", tmp_path / "aug", variants=1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.parquet"))

    monkeypatch.setattr("datasets.Dataset.to_parquet", full)
    one_line_error(invoke("export", data, "--format", "parquet", "--to", tmp_path / "x.parquet"), "the disk is full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug", "glue"]  # no temporary file left


def test_export_under_a_file_is_one_line(tmp_path):
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
    data = write_augmented(tmp_path / "glue", "sst2", tmp_path / "aug", variants=1)
    (tmp_path / "file").write_text("mine")
    one_line_error(invoke("export", data, "--to", tmp_path / "file" / "out.tsv"), "file")
    assert (tmp_path / "file").read_text() == "mine"


@needs_unprivileged
def test_an_unreadable_input_is_one_line(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text\nhello world\n")
    path.chmod(0)
    one_line_error(invoke("augment", "--input", path, "--text-columns", "text"), "permission denied")


def test_a_killed_writers_temporary_files_are_cleared_by_the_next_writer(tmp_path):
    target = tmp_path / "train_aug.tsv"
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    stale = [tmp_path / f".train_aug.tsv.tmp-{dead}-abc", tmp_path / f".train_aug.tsv.trash-{dead}"]
    stale[0].write_text("half")
    stale[1].mkdir()
    live = tmp_path / f".train_aug.tsv.tmp-{os.getppid()}-xyz"  # a running process's: kept
    live.write_text("in progress")
    with atomic_file(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and not any(p.exists() for p in stale) and live.exists()
    assert clear_stale(target) == []


def test_a_second_augment_on_the_same_out_stops_at_once(tmp_path):
    """Another process holds OUT's run lock (as a running augment does): a second run on the same
    OUT says so in one line instead of racing it; another OUT is fine."""
    import subprocess
    import textwrap

    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
    target = tmp_path / "busy"
    args = ["augment", "--task", "sst2", "--data-dir", tmp_path / "glue", "-n", "1", "--device", "cpu",
            "--show", "0", "--limit", "1", "--mlm", "starter"]
    (tmp_path / "busy.partial" / "shards").mkdir(parents=True)
    with lock_held_elsewhere(tmp_path / "busy.partial" / "run.lock"):
        one_line_error(invoke(*args, "--out", target), "another tinyaug run is writing", str(target))
        assert invoke(*args, "--out", tmp_path / "other").exit_code == 0
    assert invoke(*args, "--out", target).exit_code == 0  # the lock died with its process


def test_teacher_logits_never_replaces_a_users_folder(tmp_path):
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=8, dev_rows=4)
    data = write_augmented(tmp_path / "glue", "sst2", tmp_path / "aug", variants=1)
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    result = invoke("teacher-logits", "--teacher", tmp_path / "nowhere", "--data", data, "--task", "sst2", "--out", mine)
    one_line_error(result, "is not a dataset", "remove it yourself")
    assert (mine / "thesis.txt").read_text() == "years of work"
    again = invoke("teacher-logits", "--teacher", tmp_path / "nowhere", "--data", data, "--task", "sst2",
                   "--out", data.parent / "glue")
    one_line_error(again, "is not a dataset")


@pytest.mark.parametrize("args,fragment", [
    (["teacher-logits", "--teacher", "t", "--data", ".", "--task", "sst2", "--batch-size", "0"], "0 is not in the range x>=1"),
    (["teacher-logits", "--teacher", "t", "--data", ".", "--task", "sst2", "--max-seq-length", "0"], "8<=x<=4096"),
    (["finetune", "m", "--task", "sst2", "--data-dir", ".", "--out", "o", "--max-seq-length", "-1"], "8<=x<=4096"),
    (["evaluate", "m", "--task", "sst2", "--data-dir", ".", "--limit", "0"], "x>=1"),
    (["evaluate", "m", "--task", "sst2", "--data-dir", ".", "--limit", "-1"], "x>=1"),
    (["evaluate", "m", "--task", "sst2", "--data-dir", ".", "--batch-size", "0"], "x>=1"),
    (["eval-mlm", "--batch-size", "0"], "x>=1"),
    (["inspect", ""], "give a sentence to inspect"),
    (["inspect", "word " * 3000], "characters; inspect takes up to 10,000"),
    (["augment", "--task", "sst2", "--worker", "1/0"], "--worker I/N was removed"),
    (["augment", "--task", "sst2", "--actors", "2"], "--actors only apply with --engine ray"),
    (["augment", "--task", "sst2", "--engine", "ray", "--gpus-per-actor", "1", "--backend", "onnxruntime"],
     "--backend onnxruntime runs on CPUs: leave out --gpus-per-actor"),
    (["teacher-logits", "--teacher", "t", "--data", ".", "--task", "sst2", "--engine", "ray", "--gpus-per-actor",
      "0.5", "--backend", "onnxruntime"], "--backend onnxruntime runs on CPUs: leave out --gpus-per-actor"),
])
def test_out_of_range_options_are_one_line(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray starts, or failing fast if not
    one_line_error(invoke(*args), fragment)


def test_a_student_size_beyond_reason_is_refused_before_any_allocation(tmp_path):
    from tinyaug.distill.student import StudentSize
    from tinyaug.errors import InputError

    with pytest.raises(InputError, match="hidden=100000000 is beyond any BERT-style student"):
        StudentSize.parse("layers=1,hidden=100000000,heads=2,intermediate=10")


def test_stsb_scores_outside_0_to_5_are_bad_rows(tmp_path):
    folder = tmp_path / "STS-B"
    folder.mkdir()
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    for score in ("nan", "17.5"):
        (folder / "train.tsv").write_text(header + f"0\tg\tf\t2012\t1\ts\ts\ta b\tc d\t{score}\n")
        one_line_error(invoke("augment", "--task", "stsb", "--data-dir", tmp_path), "line 2", "between 0 and 5")


def test_a_glue_file_that_is_a_folder_is_named(tmp_path):
    (tmp_path / "SST-2" / "train.tsv").mkdir(parents=True)
    one_line_error(invoke("augment", "--task", "sst2", "--data-dir", tmp_path), "train.tsv is a folder")


def test_a_pickled_model_file_is_refused_with_the_safe_fix(tmp_path):
    """A .bin whose unpickling would run code: refused, and the message says to convert to
    safetensors, never to turn the check off."""
    folder = tmp_path / "evil"
    T.save_tiny_model(folder, T.tiny_config(layers=1), encoder_only=True)
    (folder / "model.safetensors").unlink()
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {ran}",))

    torch.save({"weights": Payload()}, folder / "pytorch_model.bin")
    T.write_glue_task(tmp_path / "glue", "sst2", train_rows=4, dev_rows=2)
    result = invoke("evaluate", folder, "--task", "sst2", "--data-dir", tmp_path / "glue", "--device", "cpu")
    one_line_error(result, "safetensors")
    assert "weights_only=False" not in result.output and not ran.exists()


def test_saved_models_are_readable_by_others(tmp_path):
    from tinyaug.pipelines.distillation.loading import save_model

    model = T.tiny_config(layers=1)
    from transformers import BertForSequenceClassification

    previous = os.umask(0o022)
    try:
        save_model(BertForSequenceClassification(model), T.tiny_tokenizer(tmp_path / "vocab"), tmp_path / "m")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m" / "model.safetensors").stat().st_mode) == 0o644
