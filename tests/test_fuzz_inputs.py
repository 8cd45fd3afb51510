"""Property-based fuzzing of the input readers (CSV, TSV, JSON Lines, Parquet, GLUE files,
``save_to_disk`` folders): whatever the bytes, encoding, delimiter, quoting, size or schema, a read
ends in rows equal to an independent reader's (``csv``, ``json``, ``pyarrow`` directly), or in one
``TinyaugError``; never another exception, never a hang. Where the independent reader sees a clean
table (unique column names, non-empty text, finite labels, UTF-8), the read must succeed.

``TINYAUG_FUZZ_EXAMPLES`` raises the number of examples per test (default: a CI-sized few dozen).
"""

import csv
import io
import json
import math
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import time_limit
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.tables import load_input

EXAMPLES = int(os.environ.get("TINYAUG_FUZZ_EXAMPLES", "30"))
fuzz = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize=not os.environ.get("TINYAUG_FUZZ_EXAMPLES"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)

# text with what breaks readers: delimiters, quotes, line breaks of every kind, NUL, BOMs, wide characters
TEXT = st.text(alphabet=st.sampled_from(list("ab é,;\t\"'\r\n\x00\ufeff\u2028\x85\\{}[]:0") + ["😀", "\ud800"]),
               max_size=12)
LABEL_TEXT = st.sampled_from(["pos", "neg", "0", "1", "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "x,y"])
NAMES = st.sampled_from(["text", "label", "id", "t2", "é x", ""])

def read(path: Path, text: str, label: str | None):
    """``(dataset, None)`` or ``(None, TinyaugError)``; any other exception fails the test."""
    with time_limit(20):
        try:
            return load_input(input_path=path, text_columns=(text,), label_column=label).dataset, None
        except TinyaugError as exc:
            assert "\n" not in str(exc).strip(), str(exc)  # one line
            return None, exc


def finite_label(value) -> bool:
    """The promise, stated independently: a label is non-empty and not a non-finite number."""
    if value is None or isinstance(value, (list, dict)) or (isinstance(value, str) and not value.strip()):
        return False
    try:
        return math.isfinite(float(value))
    except (ValueError, OverflowError):
        return True


def labels_of(ds: datasets.Dataset, column: str) -> list:
    feature = ds.features[column]
    values = ds[column]
    return [feature.names[v] for v in values] if isinstance(feature, datasets.ClassLabel) else values


def check(ds, error, clean: bool, texts: list, labels: list | None, text: str, label: str | None) -> None:
    if clean:
        assert error is None, f"a clean table was refused: {error}"
    if ds is not None:
        assert ds[text] == texts
        if label is not None:
            assert labels_of(ds, label) == labels
        assert ds["aug_example_id"] == list(range(len(texts)))


@st.composite
def delimited_tables(draw):
    header = draw(st.lists(NAMES, min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(st.one_of(TEXT, LABEL_TEXT), min_size=len(header), max_size=len(header)),
                         max_size=6))
    if draw(st.booleans()) and rows:  # now and then a row with a field too many or too few
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    return header, rows


@given(table=delimited_tables(), tsv=st.booleans(), quote_all=st.booleans(),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
       label_pick=st.booleans(), line_end=st.sampled_from(["\n", "\r\n"]))
@fuzz
def test_delimited_files(table, tsv, quote_all, encoding, label_pick, line_end):
    header, rows = table
    if tsv:  # GLUE-style TSV: quoting off, so a field cannot hold a tab or a line break
        rows = [[f.replace("\t", " ").replace("\r", " ").replace("\n", " ") for f in row] for row in rows]
        body = line_end.join("\t".join(r) for r in [header, *rows]) + line_end
    else:
        out = io.StringIO(newline="")
        csv.writer(out, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator=line_end
                   ).writerows([header, *rows])
        body = out.getvalue()
    try:
        data = body.encode(encoding)
    except UnicodeEncodeError:
        data = body.encode("utf-8", errors="surrogatepass")
        encoding = "bytes"
    text, label = header[0], ("label" if label_pick and "label" in header[1:] else None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("t.tsv" if tsv else "t.csv")
        path.write_bytes(data)
        ds, error = read(path, text, label)
    if encoding == "utf-16" or "\ud800" in body:
        assert ds is None, "bytes that are not UTF-8 were read"
    if encoding == "utf-16" or "\ud800" in body or (encoding == "latin-1" and not body.isascii()):
        return  # not UTF-8: one TinyaugError (or, for latin-1 bytes that happen to be UTF-8, rows)
    # the reference: the csv module on the text as it was written
    ref = list(csv.reader(io.StringIO(body, newline=""), delimiter="\t" if tsv else ",",
                          quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL))
    ref_header, ref_rows = ref[0], ref[1:]
    shaped = text in ref_header and len(set(ref_header)) == len(ref_header) and all(len(r) == len(ref_header) for r in ref_rows)
    records = [dict(zip(ref_header, r)) for r in ref_rows] if shaped else []
    clean = (shaped and bool(records) and all(r[text].strip() for r in records)
             and (label is None or all(finite_label(r[label]) for r in records)))
    assert ds is None or clean, "a table with duplicate names, ragged rows, empty text or bad labels was read"
    check(ds, error, clean, [r[text] for r in records], [r[label] for r in records] if label else None,
          text, label)


def fits(value) -> bool:
    """Arrow holds integers in 64 bits."""
    return not isinstance(value, int) or -2**63 <= value < 2**63


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                        TEXT, LABEL_TEXT, st.lists(st.integers(0, 3), max_size=3),
                        st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2))


@given(rows=st.lists(st.fixed_dictionaries({"text": st.one_of(TEXT, st.sampled_from(["fine film", "dull"]))},
                                            optional={"label": JSON_VALUES, "extra": JSON_VALUES}), max_size=6),
       label_pick=st.booleans(), noise=st.lists(st.sampled_from(["", "{", "[1]", '{"text": "a", "text": "b"}', "\xff"]),
                                                max_size=2))
@fuzz
def test_json_lines(rows, label_pick, noise):
    label = "label" if label_pick else None
    lines = [json.dumps(r) for r in rows] + noise
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", errors="surrogatepass"))
        ds, error = read(path, "text", label)
    ref = [json.loads(line) for line in "\n".join(lines).split("\n") if line.strip()] if not noise else None
    if ref is None:
        return  # noise lines are bad rows: TinyaugError or (with a blank line only) the rows
    kinds = {type(r.get("label")) for r in ref}
    other = ("extra",) if label else ("extra", "label")  # columns passed through: one kind of value each
    extra_kinds = [{type(r[c]) for r in ref if r.get(c) is not None} for c in other]
    clean = (ref and all(r["text"].strip() for r in ref) and "\\ud800" not in "".join(lines)  # half a character
             and (label is None or (all(finite_label(r.get("label")) for r in ref) and len(kinds) == 1))
             and all(len(k) <= 1 and not k & {list, dict} for k in extra_kinds)
             and all(fits(r.get("label")) and fits(r.get("extra")) for r in ref))
    if ds is not None and label:
        assert all(finite_label(r.get(label)) for r in ref), "a missing or non-finite label was read"
    if ds is not None or clean:
        check(ds, error, bool(clean), [r["text"] for r in ref],
              [r.get("label") for r in ref] if label else None, "text", label)


ARROW_TYPES = [pa.int32(), pa.float64(), pa.string(), pa.list_(pa.string()), pa.map_(pa.string(), pa.int64()),
               pa.struct([("a", pa.int8())]), pa.dictionary(pa.int32(), pa.string()), pa.timestamp("s"),
               pa.decimal128(5, 2), pa.binary(), pa.null()]


@given(texts=st.lists(st.one_of(st.none(), TEXT.filter(lambda t: "\ud800" not in t)), min_size=1, max_size=6),
       label_kind=st.sampled_from(["none", "int", "float", "string"]), extra=st.sampled_from(range(len(ARROW_TYPES))),
       duplicate=st.booleans(), data=st.data())
@fuzz
def test_parquet(texts, label_kind, extra, duplicate, data):
    n = len(texts)
    columns = {"text": pa.array(texts, pa.string())}
    if label_kind == "int":
        columns["label"] = pa.array(data.draw(st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=n, max_size=n)))
    elif label_kind == "float":
        columns["label"] = pa.array(data.draw(st.lists(st.floats(), min_size=n, max_size=n)), pa.float64())
    elif label_kind == "string":
        columns["label"] = pa.array(data.draw(st.lists(LABEL_TEXT, min_size=n, max_size=n)))
    columns["extra"] = pa.nulls(n, ARROW_TYPES[extra])
    table = pa.Table.from_arrays(list(columns.values()), names=[*columns][:-1] + ["text" if duplicate else "extra"])
    label = "label" if label_kind != "none" else None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.parquet"
        pq.write_table(table, path)
        ds, error = read(path, "text", label)
        ref = pq.ParquetFile(path).read(columns=["text", *([label] if label else [])]).to_pylist() if not duplicate else None
    if ref is None:
        assert error is not None and "appears 2 times" in str(error)
        return
    clean = all(r["text"] is not None and r["text"].strip() for r in ref) and (
        label is None or all(finite_label(r[label]) for r in ref))
    assert ds is None or clean, "empty text or a missing or non-finite label was read"
    check(ds, error, bool(clean), [r["text"] for r in ref], [r[label] for r in ref] if label else None, "text", label)


@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"]),
       prefix=st.sampled_from([b"", b"text,label\n", b"text\tlabel\n", b"\xef\xbb\xbf", b"\xff\xfe", b"PAR1"]))
@fuzz
def test_random_bytes(data, suffix, prefix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"t{suffix}"
        path.write_bytes(prefix + data)
        read(path, "text", None)
        read(path, "text", "label")


@given(sentences=st.lists(TEXT, max_size=6), labels=st.data(), bom=st.booleans(), crlf=st.booleans(),
       utf16=st.booleans(), noise=st.binary(max_size=20))
@fuzz
def test_glue_files(sentences, labels, bom, crlf, utf16, noise):
    sentences = [s.replace("\n", " ").replace("\r", " ") for s in sentences]
    values = labels.draw(st.lists(st.sampled_from(["0", "1", "2", "", "x"]), min_size=len(sentences), max_size=len(sentences)))
    end = "\r\n" if crlf else "\n"
    body = end.join(["sentence\tlabel", *(f"{s}\t{v}" for s, v in zip(sentences, values))]) + end
    raw = body.encode("utf-16" if utf16 else "utf-8", errors="surrogatepass")
    raw = (b"\xef\xbb\xbf" if bom and not utf16 else b"") + raw + noise
    task = glue.get_task("sst2")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "SST-2").mkdir()
        (Path(folder) / "SST-2" / "train.tsv").write_bytes(raw)
        with time_limit(20):
            try:
                ds, _ = glue.read_split(Path(folder), task)
            except TinyaugError as exc:
                ds, error = None, exc
            else:
                error = None
    clean = (not utf16 and not noise and "\ud800" not in body
             and all(s.count("\t") == 0 and s.strip() for s in sentences) and all(v in ("0", "1") for v in values))
    assert (ds is not None) == clean, error
    if clean:
        assert ds["sentence"] == sentences and ds["label"] == [int(v) for v in values]
    if utf16:
        assert ds is None


@given(columns=st.dictionaries(st.sampled_from(["extra", "id", "é"]), st.sampled_from(range(4)), max_size=2),
       texts=st.lists(TEXT.filter(lambda t: "\ud800" not in t), min_size=1, max_size=4))
@settings(parent=fuzz, max_examples=max(5, EXAMPLES // 3))
def test_save_to_disk_folders(columns, texts):
    n = len(texts)
    odd = [lambda: [[i] * i for i in range(n)], lambda: [{"a": None} for _ in range(n)],
           lambda: [None] * n, lambda: [b"\x00\xff"] * n]
    ds = datasets.Dataset.from_dict({"text": texts, **{c: odd[k]() for c, k in columns.items()}})
    with tempfile.TemporaryDirectory() as folder:
        ds.save_to_disk(str(Path(folder) / "saved"))
        read_back, error = read(Path(folder) / "saved", "text", None)
        check(read_back, error, all(t.strip() for t in texts), texts, None, "text", None)
