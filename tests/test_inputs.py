"""Inputs: every GLUE layout, tables, and each kind of bad input."""

import json
import time

import datasets
import numpy as np
import pytest

from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.models import load_masked_lm
from tinyaug.pipelines.io.vectors import load_vectors
from conftest import SAMPLE_GLUE


@pytest.mark.parametrize("task,split,rows,sample_rows", [
    ("cola", "train", 8551, 300), ("cola", "dev", 1043, 100), ("sst2", "train", 67349, 300),
    ("mrpc", "train", 3668, 200), ("mrpc", "dev", 408, 100), ("stsb", "train", 5749, 200),
    ("rte", "train", 2490, 200), ("wnli", "train", 635, 40), ("qnli", "dev", 5463, 40)])
def test_real_glue_files(glue_dir, task, split, rows, sample_rows):
    """The full GLUE files, or the package's sample of their rows (``glue_dir``)."""
    ds, bad = glue.read_split(glue_dir, task, split)
    assert len(ds) == (sample_rows if glue_dir == SAMPLE_GLUE else rows) and bad == []
    spec = glue.get_task(task)
    if spec.is_regression:
        assert ds.features["label"].dtype == "float32" and 0.0 <= min(ds["label"]) and max(ds["label"]) <= 5.0
    else:
        assert ds.features[spec.label_column].names == list(spec.label_names)
    assert ds["aug_example_id"][:3] == [0, 1, 2]
    if glue_dir != SAMPLE_GLUE:  # the sample keeps the file's index column of the rows it took
        assert ds["idx"][:3] == [0, 1, 2]
    assert ds.column_names == [*HUB_SCHEMA[task][0], "label", "idx", "aug_example_id"]


def test_mrpc_bom_and_cola_headerless(glue_dir):
    mrpc_file = (glue_dir / "MRPC" / "train.tsv").read_bytes()
    assert mrpc_file[:3] == b"\xef\xbb\xbf"
    first_pair = mrpc_file.decode("utf-8-sig").split("\n")[1].split("\t")  # Quality, #1 ID, #2 ID, #1 String, ...
    mrpc, _ = glue.read_split(glue_dir, "mrpc")
    assert mrpc.column_names == ["sentence1", "sentence2", "label", "idx", "aug_example_id"]
    kept, _ = glue.read_split(glue_dir, "mrpc", keep_source_columns=True)
    assert kept[0]["source_1_id"] == first_pair[1] and kept[0]["sentence1"] == mrpc[0]["sentence1"] == first_pair[3]
    cola, _ = glue.read_split(glue_dir, "cola")
    first_line = (glue_dir / "CoLA" / "train.tsv").read_text(encoding="utf-8").split("\n")[0].split("\t")
    assert cola[0]["sentence"] == first_line[3] and cola[0]["label"] == int(first_line[1])  # no header to skip
    if glue_dir != SAMPLE_GLUE:
        assert kept[0]["source_1_id"] == "702876"
        assert cola[0]["sentence"].startswith("Our friends won't buy this analysis")


MNLI_TRAIN = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
              "0\t31193\t31193n\tgovernment\t( ( a ) )\t( b )\t(ROOT a)\t(ROOT b)\tConceptually cream skimming has two "
              "basic dimensions.\tProduct and geography are what make cream skimming work. \tneutral\tneutral\n"
              "1\t101457\t101457e\ttelephone\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tyou know during the season\tYou lose "
              "the things.\tentailment\tentailment\n")
MNLI_DEV = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
            "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
            "0\t63735\t63735n\tslate\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe new rights are nice enough\tEveryone "
            "really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n")
QQP = ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
       "133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?\t"
       "Which level of prepration is enough for the exam jlpt5?\t0\n"
       "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n")
QNLI = ("index\tquestion\tsentence\tlabel\n"
        "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, it was darker.\tnot_entailment\n"
        "1\tWhich missile batteries often have individual launchers?\tThe missiles are \"often\" close.\tentailment\n")


@pytest.fixture
def fixture_glue(tmp_path):
    for folder, name, text in [("MNLI", "train.tsv", MNLI_TRAIN), ("MNLI", "dev_matched.tsv", MNLI_DEV),
                               ("MNLI", "dev_mismatched.tsv", MNLI_DEV), ("QQP", "train.tsv", QQP),
                               ("QNLI", "train.tsv", QNLI)]:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_text(text, encoding="utf-8")
    return tmp_path


# The nyu-mll/glue schema, written out by hand from the hub's dataset card: text columns, label names.
HUB_SCHEMA = {
    "cola": (["sentence"], ["unacceptable", "acceptable"]),
    "sst2": (["sentence"], ["negative", "positive"]),
    "mrpc": (["sentence1", "sentence2"], ["not_equivalent", "equivalent"]),
    "qqp": (["question1", "question2"], ["not_duplicate", "duplicate"]),
    "stsb": (["sentence1", "sentence2"], None),
    "mnli": (["premise", "hypothesis"], ["entailment", "neutral", "contradiction"]),
    "qnli": (["question", "sentence"], ["entailment", "not_entailment"]),
    "rte": (["sentence1", "sentence2"], ["entailment", "not_entailment"]),
    "wnli": (["sentence1", "sentence2"], ["not_entailment", "entailment"]),
}


@pytest.mark.parametrize("task", sorted(HUB_SCHEMA))
def test_every_task_reads_into_the_hub_schema(task, tmp_path):
    """Fixture files of all nine tasks (each in its official layout) give the hub's columns,
    dtypes and label names; the file's other columns only on request, as source_<name>."""
    from tinyaug.pipelines.experiment.toys import write_glue_task

    text, names = HUB_SCHEMA[task]
    write_glue_task(tmp_path, task, train_rows=6, dev_rows=3)
    for split in ("train", "dev"):
        ds, _ = glue.read_split(tmp_path, task, split)
        assert ds.column_names == [*text, "label", "idx", "aug_example_id"]
        assert all(ds.features[c].dtype == "string" for c in text)
        assert ds.features["idx"].dtype == "int32"
        if names is None:
            assert ds.features["label"].dtype == "float32"
        else:
            assert ds.features["label"].names == names
    kept, _ = glue.read_split(tmp_path, task, keep_source_columns=True)
    extra = [c for c in kept.column_names if c not in ds.column_names]
    assert all(c.startswith("source_") for c in extra)
    assert len(extra) == len(glue.get_task(task).tsv_columns) - len(text) - 1


def test_tsv_and_hub_inputs_give_the_same_dataset(glue_dir, monkeypatch):
    """The hub's MRPC (here a stand-in in the hub's exact schema, since the hub is offline) and
    the TSV give the same rows, columns and features."""
    import datasets

    tsv = load_input(task="mrpc", data_dir=glue_dir, limit=20).dataset
    hub_features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                      "label": datasets.ClassLabel(names=["not_equivalent", "equivalent"]),
                                      "idx": datasets.Value("int32")})
    hub = datasets.Dataset.from_dict({c: tsv[c] for c in hub_features}, features=hub_features)
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: asked.append((args, kwargs)) or hub)
    from_hub = load_input(task="mrpc", from_hub=True, limit=20).dataset
    assert asked == [(("nyu-mll/glue", "mrpc"), {"split": "train"})]
    assert from_hub.features == tsv.features and from_hub.data.table.equals(tsv.data.table)


def test_fixture_layouts_mnli_qqp_qnli(fixture_glue):
    mnli, _ = glue.read_split(fixture_glue, "mnli")
    assert mnli["label"] == [1, 0] and mnli["hypothesis"][0].endswith("work. ")
    for split in ("dev_matched", "dev_mismatched", "dev"):
        dev, _ = glue.read_split(fixture_glue, "mnli", split, keep_source_columns=True)
        assert len(dev) == 1 and "source_label5" in dev.column_names and dev["source_genre"] == ["slate"]
    qqp, _ = glue.read_split(fixture_glue, "qqp")
    assert qqp["label"] == [0, 1] and qqp.features["label"].names == ["not_duplicate", "duplicate"]
    qnli, _ = glue.read_split(fixture_glue, "qnli")
    assert qnli["label"] == [1, 0] and qnli["sentence"][1] == 'The missiles are "often" close.'


def write(tmp_path, task, text, data: bytes | None = None):
    folder = tmp_path / glue.get_task(task).folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_bytes(data if data is not None else text.encode("utf-8"))
    return tmp_path


@pytest.mark.parametrize("body,message", [
    ("sentence\tlabel\ngood film\t1\nbad film\n", r"train.tsv, line 3: expected 2 tab-separated fields .* found 1"),
    ("sentence\tlabel\ngood film\t1\nbad film\t\n", r"line 3: missing label in column 'label'"),
    ("sentence\tlabel\n \t1\n", r"line 2: empty text in column 'sentence'"),
    ("sentence\tlabel\ngood\t7\n", r"line 2: column 'label': label '7' is not one of 0, 1"),
    ("text\tlabel\ngood\t1\n", r"line 1: header \['text', 'label'\] is not the GLUE SST-2"),
])
def test_bad_rows_name_file_and_line(tmp_path, body, message):
    folder = write(tmp_path, "sst2", body)
    with pytest.raises(InputError, match=message):
        load_input(task="sst2", data_dir=folder)


def test_non_utf8_bytes(tmp_path):
    folder = write(tmp_path, "sst2", "", b"sentence\tlabel\ngood\t1\ncaf\xe9 noir\t0\n")
    with pytest.raises(InputError, match=r"line 3: bytes that are not UTF-8 .*re-encode"):
        load_input(task="sst2", data_dir=folder)


def test_skip_bad_rows_counts_and_keeps_ids(tmp_path):
    folder = write(tmp_path, "sst2", "sentence\tlabel\ngood film\t1\nbroken\nfine film\t0\n\t1\n")
    table = load_input(task="sst2", data_dir=folder, skip_bad_rows=True)
    assert table.dataset["sentence"] == ["good film", "fine film"]
    assert table.dataset["aug_example_id"] == [0, 2]
    assert [b.line for b in table.skipped] == [3, 5]


def test_unknown_task_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="unknown task 'sst3'.*cola, sst2"):
        load_input(task="sst3")
    with pytest.raises(InputError, match=r"no train.tsv for rte under .*pass --data-dir"):
        load_input(task="rte", data_dir=tmp_path)


def test_tables_parquet_jsonl_csv_and_saved(tmp_path):
    rows = [{"review": 'a "quoted" film', "stars": "good", "id": 1}, {"review": "dull", "stars": "bad", "id": 2}]
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "t.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.csv").write_text('review,stars,id\n"a ""quoted"" film",good,1\ndull,bad,2\n')
    for name in ("t.parquet", "saved", "t.jsonl", "t.csv"):
        table = load_input(input_path=tmp_path / name, text_columns=("review",), label_column="stars")
        assert table.dataset["review"] == ['a "quoted" film', "dull"], name
        assert table.dataset.features["stars"].names == ["bad", "good"], name
        assert table.dataset["aug_example_id"] == [0, 1]


def test_table_missing_column_and_bad_json(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(InputError, match=r"no column 'review'; the columns are 'text'"):
        load_input(input_path=tmp_path / "t.jsonl", text_columns=("review",))
    with pytest.raises(InputError, match=r"t.jsonl, line 2: not valid JSON"):
        load_input(input_path=tmp_path / "t.jsonl", text_columns=("text",))
    (tmp_path / "t.csv").write_text("text,label\nfine,1\ntoo,many,fields\n")
    with pytest.raises(InputError, match=r"t.csv, line 3: expected 2 fields"):
        load_input(input_path=tmp_path / "t.csv", text_columns=("text",), label_column="label")


def test_model_path_missing_and_hub_offline_fail_fast(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="no such directory"):
        load_masked_lm(str(tmp_path / "nope" / "model"), "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub .*local model directory.*embedded starter"):
        load_masked_lm("some-org/some-missing-model", "cpu")
    assert time.monotonic() - start < 10


def test_vectors_wrong_format_or_dimension(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    (tmp_path / "v.txt").write_text("movie 0.1 0.2 0.3\nfilm 0.1 0.2\n")
    with pytest.raises(ModelLoadError, match=r"v.txt, line 2: 2 values where the file's vectors have 3"):
        load_vectors(str(tmp_path / "v.txt"))
    (tmp_path / "w.txt").write_text("movie 0.1 0.2 0.3\nfilm 0.1 0.2 zz\n")
    with pytest.raises(ModelLoadError, match=r"w.txt, line 2: a value is not a number"):
        load_vectors(str(tmp_path / "w.txt"))
    (tmp_path / "ok.txt").write_text("movie 0.1 0.2 0.3\nfilm 0.1 0.2 0.4\n")
    with pytest.raises(ModelLoadError, match="dimension 3, expected 50"):
        load_vectors(str(tmp_path / "ok.txt"), expected_dim=50)
    with pytest.raises(ModelLoadError, match="no such vectors file"):
        load_vectors(str(tmp_path / "missing.txt"))


def test_vector_formats_load_the_same_and_cache(tmp_path, monkeypatch):
    from gensim.models import KeyedVectors

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["movie", "film"], [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    kv.save_word2vec_format(str(tmp_path / "v.w2v"), binary=False)
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    (tmp_path / "v.glove").write_text("movie 0.1 0.2 0.3\nfilm 0.4 0.5 0.6\n")
    kv.save(str(tmp_path / "v.kv"))
    for name in ("v.w2v", "v.bin", "v.glove"):
        loaded = load_vectors(str(tmp_path / name))
        assert loaded.words == ["movie", "film"] and np.allclose(loaded.vectors, kv.vectors)
        again = load_vectors(str(tmp_path / name))  # from the memory-mapped cache
        assert again.words == loaded.words and (again.vectors == loaded.vectors).all()
    with pytest.raises(ModelLoadError, match="pickle.*--trust-pickle"):
        load_vectors(str(tmp_path / "v.kv"))
    assert load_vectors(str(tmp_path / "v.kv"), allow_pickle=True).words == ["movie", "film"]


def test_embedded_glove():
    loaded = load_vectors()
    assert len(loaded.words) == 400_000 and loaded.vectors.shape == (400_000, 50)


def test_jsonl_rows_may_differ_from_the_first(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "fine film", "label": 1}\n{"text": "dull", "label": 0, "extra": "x"}\n'
                    '{"label": 1}\n')
    with pytest.raises(InputError, match=r"t.jsonl, line 3: no column 'text'"):
        load_input(input_path=path, text_columns=("text",), label_column="label")
    table = load_input(input_path=path, text_columns=("text",), label_column="label", skip_bad_rows=True)
    assert table.dataset["extra"] == [None, "x"] and [b.line for b in table.skipped] == [3]
    path.write_text('{"text": "fine", "label": 1}\n{"text": "dull", "label": "pos"}\n')
    with pytest.raises(InputError, match="mixes int and str labels"):
        load_input(input_path=path, text_columns=("text",), label_column="label")


def test_unicode_line_separators_stay_inside_fields(tmp_path):
    (tmp_path / "t.tsv").write_text("text\tlabel\nhello\u2028world\t1\nnext\x85line\t0\n", encoding="utf-8")
    table = load_input(input_path=tmp_path / "t.tsv", text_columns=("text",), label_column="label")
    assert table.dataset["text"] == ["hello\u2028world", "next\x85line"]
