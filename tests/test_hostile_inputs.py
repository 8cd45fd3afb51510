"""Hostile inputs to ``tinyaug augment``: each ends in one ``Error:`` line that names the file (and
line, column or row) and the fix, a non-zero exit, and nothing written; never a traceback or a hang."""

import csv
import os
import socket

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from helpers import time_limit
from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.io.files import MAX_FIELD_CHARS, MAX_LINE_BYTES
from tinyaug.pipelines.io.models import resolve_device
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.vectors import load_vectors

def augment(tmp_path, tiny_dir, *args, seconds: int = 60):
    out = tmp_path / "out"
    with time_limit(seconds):
        result = CliRunner().invoke(main, ["augment", "--mlm", str(tiny_dir), "-n", "1", "--device", "cpu",
                                           "--show", "0", "--out", str(out), *map(str, args)])
    return result, out


def refused(result, out, *fragments):
    """One ``Error:`` line holding every fragment, exit != 0, no traceback, no OUT nor OUT.partial."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    return errors[0]


def test_a_fifo_with_no_writer_is_refused_without_opening_it(tmp_path, tiny_dir):
    fifo = tmp_path / "rows.tsv"
    os.mkfifo(fifo)
    result, out = augment(tmp_path, tiny_dir, "--input", fifo, "--text-columns", "text", seconds=30)
    refused(result, out, str(fifo), "a FIFO", "regular file")


@pytest.mark.parametrize("device,name", [("/dev/urandom", "u.jsonl"), ("/dev/zero", "z.csv"), ("/dev/null", "n.tsv")])
def test_character_devices_are_refused_before_any_read(tmp_path, tiny_dir, device, name):
    link = tmp_path / name
    link.symlink_to(device)
    result, out = augment(tmp_path, tiny_dir, "--input", link, "--text-columns", "text", seconds=30)
    refused(result, out, str(link), "a character device")


def test_a_socket_glue_file_and_vectors_fifo_are_refused(tmp_path):
    (tmp_path / "SST-2").mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "SST-2" / "train.tsv"))
        with time_limit(30), pytest.raises(InputError, match="train.tsv: a socket, not a regular file"):
            load_input(task="sst2", data_dir=tmp_path)
    finally:
        server.close()
    os.mkfifo(tmp_path / "v.txt")
    with time_limit(30), pytest.raises(ModelLoadError, match="v.txt: a FIFO"):
        load_vectors(str(tmp_path / "v.txt"))


def test_a_5_mb_single_line_and_a_200k_character_field_are_read(tmp_path):
    big = "word " * 1_000_000  # 5 MB on one line, one field
    (tmp_path / "one.tsv").write_text(f"text\tlabel\n{big}\t1", encoding="utf-8")
    table = load_input(input_path=tmp_path / "one.tsv", text_columns=("text",), label_column="label")
    assert table.dataset["text"] == [big]
    field = "x" * 200_000
    (tmp_path / "wide.csv").write_text(f'text,label\n"{field}",a\nshort,b\n', encoding="utf-8")
    table = load_input(input_path=tmp_path / "wide.csv", text_columns=("text",), label_column="label")
    assert table.dataset["text"] == [field, "short"]


def test_fields_and_lines_over_the_limits_name_the_line(tmp_path, monkeypatch):
    from tinyaug.pipelines.io import files, tables

    assert MAX_FIELD_CHARS >= 2**20 and MAX_LINE_BYTES >= MAX_FIELD_CHARS
    monkeypatch.setattr(tables, "MAX_FIELD_CHARS", 1000)  # the same code path as 16 MiB, in a test's time
    (tmp_path / "t.csv").write_text(f'text,label\nok,1\n"{"x" * 1500}",1\n', encoding="utf-8")
    try:
        with pytest.raises(InputError, match=r"t.csv, line 3: a field longer than 1,000 characters \(the limit for one field"):
            load_input(input_path=tmp_path / "t.csv", text_columns=("text",), label_column="label")
    finally:
        csv.field_size_limit(MAX_FIELD_CHARS)  # the limit is the csv module's, for the whole process
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    (tmp_path / "t.tsv").write_text(f"text\tlabel\nok\t1\n{'y' * 1500}\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t.tsv, line 3: longer than .*the limit for one line"):
        load_input(input_path=tmp_path / "t.tsv", text_columns=("text",), label_column="label")


def test_a_5_mb_single_line_tsv_through_the_cli(tmp_path, tiny_dir):
    """The reported case: a 5 MB line whose one field is the text; it reads (here it has no
    label, and is refused for its missing label column only after the field is read)."""
    (tmp_path / "one.tsv").write_text("text\n" + "a" * 5_000_000, encoding="utf-8")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "one.tsv", "--text-columns", "text",
                          "--label-column", "label")
    refused(result, out, "one.tsv", "no column 'label'")


def test_parquet_duplicate_columns_are_refused_by_name(tmp_path, tiny_dir):
    table = pa.Table.from_arrays([pa.array(["a fine film"]), pa.array(["12"])], names=["sentence", "sentence"])
    pq.write_table(table, tmp_path / "d.parquet")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "d.parquet", "--text-columns", "sentence")
    refused(result, out, "d.parquet", "'sentence' appears 2 times", "rename")


def test_csv_duplicate_columns_are_refused_not_guessed(tmp_path, tiny_dir):
    (tmp_path / "d.csv").write_text("sentence,label,sentence\na fine film,1,17\n", encoding="utf-8")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "d.csv", "--text-columns", "sentence")
    refused(result, out, "d.csv, line 1", "'sentence' appears 2 times")


def test_a_parquet_map_column_is_left_out_unless_selected(tmp_path, tiny_dir, caplog):
    table = pa.table({"text": ["a fine film", "a dull film"], "label": [1, 0],
                      "meta": pa.array([[("a", 1)], [("b", 2)]], type=pa.map_(pa.string(), pa.int64()))})
    pq.write_table(table, tmp_path / "m.parquet")
    loaded = load_input(input_path=tmp_path / "m.parquet", text_columns=("text",), label_column="label")
    assert loaded.dataset.column_names == ["text", "label", "aug_example_id"]
    assert "leaving out column 'meta'" in caplog.text
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "m.parquet", "--text-columns", "text",
                          "--label-column", "meta")
    refused(result, out, "m.parquet", "column 'meta'", "map<string, int64")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "m.parquet", "--text-columns", "text",
                          "--label-column", "label")
    assert result.exit_code == 0, result.output
    assert datasets.load_from_disk(str(out)).column_names[:2] == ["text", "label"]


def test_a_label_column_that_is_a_text_column_is_refused(tmp_path, tiny_dir):
    (tmp_path / "t.csv").write_text("text,label\na fine film,1\n", encoding="utf-8")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "t.csv", "--text-columns", "text",
                          "--label-column", "text")
    refused(result, out, "--label-column 'text' is also one of --text-columns")


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-inf", "Infinity", ""])
def test_non_finite_or_empty_labels_are_refused_with_the_line(tmp_path, tiny_dir, value):
    (tmp_path / "t.csv").write_text(f"text,label\na fine film,pos\na dull film,{value}\n", encoding="utf-8")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "t.csv", "--text-columns", "text",
                          "--label-column", "label")
    refused(result, out, "t.csv, line 3", "label")


def test_non_finite_labels_in_jsonl_and_parquet(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "fine", "label": 1.0}\n{"text": "dull", "label": NaN}\n')
    with pytest.raises(InputError, match=r"t.jsonl, line 2: label nan .* not a finite number"):
        load_input(input_path=tmp_path / "t.jsonl", text_columns=("text",), label_column="label")
    pq.write_table(pa.table({"text": ["fine", "dull"], "label": [0.5, float("inf")]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"row 2: label inf .* not a finite number"):
        load_input(input_path=tmp_path / "t.parquet", text_columns=("text",), label_column="label")
    table = load_input(input_path=tmp_path / "t.parquet", text_columns=("text",), label_column="label",
                       skip_bad_rows=True)
    assert table.dataset["label"] == [0.5] and len(table.skipped) == 1


@pytest.mark.parametrize("device", ["meta", "xla", "bogus", "cuda:x", "cpu:0:1"])
def test_devices_other_than_cpu_cuda_mps_auto_are_refused(tmp_path, tiny_dir, device):
    (tmp_path / "t.csv").write_text("text\na fine film\n", encoding="utf-8")
    result, out = augment(tmp_path, tiny_dir, "--input", tmp_path / "t.csv", "--text-columns", "text",
                          "--device", device)
    refused(result, out, f"--device {device!r}", "cpu, cuda, cuda:N, mps or auto")


def test_resolve_device_keeps_cpu_and_auto():
    assert str(resolve_device("cpu")) == "cpu" and str(resolve_device(" CPU ")) == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ModelLoadError, match="meta"):
        resolve_device("meta")


def test_utf16_and_odd_json_are_one_error_each(tmp_path):
    (tmp_path / "t.tsv").write_bytes("text\tlabel\nfine\t1\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"t.tsv: the file is UTF-16 .* re-encode it as UTF-8"):
        load_input(input_path=tmp_path / "t.tsv", text_columns=("text",))
    (tmp_path / "t.jsonl").write_text('{"text": "a", "text": "b"}\n' + "[" * 100_000 + "\n"
                                      + '{"text": "\\ud800 half"}\n{"text": "fine", "n": 1' + "0" * 5000 + "}\n")
    with pytest.raises(InputError) as caught:
        load_input(input_path=tmp_path / "t.jsonl", text_columns=("text",))
    assert "line 1: not usable JSON (the key 'text' appears twice" in str(caught.value)
    assert "(3 more bad rows)" in str(caught.value)
