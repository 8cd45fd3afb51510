"""The dataset builder: determinism across batching and sharding, resume, provenance."""

import json

import datasets
import pytest

from tinyaug.augment.recipe import Recipe, RecipeError
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table, load_augmented, read_metadata
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.vectors import LoadedVectors
from tinyaug.pipelines.scale.executor import LocalExecutor

SENTENCES = ["the movie was great", "a charming surprise , quite funny", "the cat sat and the dog barked loudly",
             "he said the plot was boring", "the movie was great", "Unbelievable actors , awful story !",
             "she said \"GREAT film\" twice", "the house and the car", "good", "the road home was nice"]


@pytest.fixture
def loaded(tiny_model, tiny_tokenizer, tiny_vectors):
    words, vectors = tiny_vectors
    return LoadedMLM(tiny_model, tiny_tokenizer, "tiny-mlm"), LoadedVectors(words, vectors, "tiny-vectors", "test")


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": s, "label": i % 2, "note": f"n{i}"}) + "\n"
                            for i, s in enumerate(SENTENCES)))
    return load_input(input_path=path, text_columns=("text",), label_column="label")


def run(table, out, loaded, recipe=Recipe(variants_per_example=6), executor=None, **options):
    mlm, vectors = loaded
    return augment_table(table, out, recipe, mlm, vectors, BuildOptions(**options), executor=executor)


def rows(path):
    return load_augmented(path).to_list()


def test_same_rows_whatever_the_batch_size(table, loaded, tmp_path):
    run(table, tmp_path / "b1", loaded, batch_size=1, examples_per_batch=1)
    run(table, tmp_path / "b64", loaded, batch_size=64, examples_per_batch=256)
    assert rows(tmp_path / "b1") == rows(tmp_path / "b64")
    assert len(rows(tmp_path / "b1")) > 2 * len(SENTENCES)


def test_masks_per_context_same_rows_whatever_the_batch_size_and_recorded(table, loaded, tmp_path):
    recipe = Recipe(variants_per_example=6, masks_per_context=2)
    run(table, tmp_path / "b1", loaded, recipe, batch_size=1, examples_per_batch=1)
    run(table, tmp_path / "b64", loaded, recipe, batch_size=64, examples_per_batch=256)
    assert rows(tmp_path / "b1") == rows(tmp_path / "b64")
    assert read_metadata(load_augmented(tmp_path / "b1"))["recipe"]["masks_per_context"] == 2
    assert "masks_per_context" not in Recipe().to_dict()  # older records keep their resume key
    with pytest.raises(RecipeError, match="masks_per_context"):
        Recipe(masks_per_context=0)


def test_same_rows_whatever_the_shards_and_their_order(table, loaded, tmp_path):
    run(table, tmp_path / "one", loaded, shard_size=100)
    run(table, tmp_path / "three", loaded, shard_size=4)  # 4 + 4 + 2 examples
    assert rows(tmp_path / "one") == rows(tmp_path / "three")
    run(table, tmp_path / "reversed", loaded, shard_size=4, executor=Reversed())
    assert rows(tmp_path / "reversed") == rows(tmp_path / "one")


class Reversed(LocalExecutor):
    """An executor whose shards complete last first, as a cluster's may."""

    def map(self, factory, jobs, source, **options):
        yield from super().map(factory, list(reversed(jobs)), source, **options)


def test_assembly_joins_shards_into_few_files_with_the_same_rows(table, loaded, tmp_path, monkeypatch):
    run(table, tmp_path / "one", loaded, shard_size=100)
    run(table, tmp_path / "three", loaded, shard_size=4)
    assert [p.name for p in (tmp_path / "three").glob("*.arrow")] == ["data-00000-of-00001.arrow"]
    monkeypatch.setattr("tinyaug.pipelines.augmentation.assemble.OUTPUT_FILE_BYTES", 1)  # a file per shard file
    run(table, tmp_path / "split", loaded, shard_size=4)
    assert len(list((tmp_path / "split").glob("*.arrow"))) == 3
    assert rows(tmp_path / "split") == rows(tmp_path / "three") == rows(tmp_path / "one")
    assert read_metadata(load_augmented(tmp_path / "split"))["rows_out"] == len(rows(tmp_path / "one"))


def test_a_failed_assembly_keeps_the_old_dataset_and_the_shards(table, loaded, tmp_path, monkeypatch):
    run(table, tmp_path / "o", loaded, Recipe(variants_per_example=2))
    before = rows(tmp_path / "o")
    monkeypatch.setattr("tinyaug.pipelines.augmentation.assemble._join_arrow_files",
                        lambda *a: (_ for _ in ()).throw(OSError("No space left on device")))
    with pytest.raises(OSError, match="No space"):
        run(table, tmp_path / "o", loaded, Recipe(variants_per_example=5), overwrite=True, shard_size=4)
    assert rows(tmp_path / "o") == before and len(list((tmp_path / "o.partial" / "shards").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "o", "o.partial"]
    (tmp_path / ".o.tmp-4194303-left-by-a-kill").mkdir()
    monkeypatch.undo()
    run(table, tmp_path / "o", loaded, Recipe(variants_per_example=5), overwrite=True, shard_size=4)
    assert len(rows(tmp_path / "o")) > len(before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "o"]


def test_resume_after_interruption_gives_the_uninterrupted_rows(table, loaded, tmp_path):
    run(table, tmp_path / "full", loaded, shard_size=3)
    seen = []

    def die_in_second_shard(n):
        seen.append(n)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mlm, vectors = loaded
        augment_table(table, tmp_path / "cut", Recipe(variants_per_example=6), mlm, vectors,
                      BuildOptions(shard_size=3, examples_per_batch=1), progress=die_in_second_shard)
    assert not (tmp_path / "cut").exists()  # never a partial dataset that looks complete
    assert [p.name for p in (tmp_path / "cut.partial" / "shards").iterdir() if not p.name.startswith(".")] == ["00000"]
    report = run(table, tmp_path / "cut", loaded, shard_size=3)
    assert report.shards_resumed == 1 and not report.already_complete
    assert rows(tmp_path / "cut") == rows(tmp_path / "full")
    assert not (tmp_path / "cut.partial").exists()
    assert read_metadata(load_augmented(tmp_path / "cut"))["stats"] == read_metadata(load_augmented(tmp_path / "full"))["stats"]


def test_resume_with_other_arguments_is_refused(table, loaded, tmp_path):
    heard: list[int] = []

    def die_in_second_shard(n):
        heard.append(n)
        if len(heard) == 2:  # the first shard is written
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mlm, vectors = loaded
        augment_table(table, tmp_path / "o", Recipe(variants_per_example=6), mlm, vectors,
                      BuildOptions(shard_size=3), progress=die_in_second_shard)
    with pytest.raises(TinyaugError, match="other arguments.*recipe"):
        run(table, tmp_path / "o", loaded, Recipe(variants_per_example=7), shard_size=3)
    assert (tmp_path / "o.partial" / "shards" / "00000").is_dir()  # kept for the resume


def test_existing_output_needs_overwrite(table, loaded, tmp_path):
    run(table, tmp_path / "o", loaded)
    assert run(table, tmp_path / "o", loaded).already_complete  # same arguments: nothing to redo
    with pytest.raises(TinyaugError, match="already exists.*--overwrite"):
        run(table, tmp_path / "o", loaded, Recipe(variants_per_example=3))
    run(table, tmp_path / "o", loaded, Recipe(variants_per_example=2), overwrite=True)
    assert read_metadata(load_augmented(tmp_path / "o"))["recipe"]["variants_per_example"] == 2


def test_rows_carry_provenance_and_copied_columns(table, loaded, tmp_path):
    run(table, tmp_path / "o", loaded)
    ds = load_augmented(tmp_path / "o")
    assert isinstance(ds.features["label"], datasets.ClassLabel) or ds.features["label"].dtype == "int64"
    source = {i: s for i, s in enumerate(SENTENCES)}
    by_example = {}
    for row in ds:
        original = source[row["aug_example_id"]]
        assert row["note"] == f"n{row['aug_example_id']}" and row["label"] == row["aug_example_id"] % 2
        by_example.setdefault(row["aug_example_id"], []).append(row)
        if row["aug_variant"] == 0:
            assert row["text"] == original and row["aug_changes"] == []
            continue
        assert row["aug_changes"] and row["text"] != original
        for ch in row["aug_changes"]:
            assert original[ch["start"]:ch["end"]] == ch["original"]
            assert ch["source"] in ("mlm", "vectors") and 0 <= ch["rank"] < 15
    for example_rows in by_example.values():
        texts = [r["text"] for r in example_rows]
        assert len(texts) == len(set(texts))  # duplicates dropped
        assert [r["aug_variant"] for r in example_rows] == list(range(len(example_rows)))
    meta = read_metadata(ds)
    assert meta["recipe"] == Recipe(variants_per_example=6).to_dict()
    assert meta["mlm"] == "tiny-mlm" and meta["vectors"] == "tiny-vectors"
    card = (tmp_path / "o" / "README.md").read_text()
    assert f"{len(ds)} rows from {len(SENTENCES)}" in card and "edit rate" in card


def test_limit_keeps_example_rows(table, loaded, tmp_path, ):
    run(table, tmp_path / "all", loaded)
    small = load_input(input_path=table.source, text_columns=("text",), label_column="label", limit=4)
    run(small, tmp_path / "four", loaded)
    full = [r for r in rows(tmp_path / "all") if r["aug_example_id"] < 4]
    assert rows(tmp_path / "four") == full


def test_probability_zero_and_one(table, loaded, tmp_path):
    run(table, tmp_path / "p0", loaded, Recipe(replace_prob=0.0))
    assert all(r["aug_variant"] == 0 for r in rows(tmp_path / "p0"))
    run(table, tmp_path / "p1", loaded, Recipe(replace_prob=1.0, variants_per_example=3))
    changed_words = {}
    for row in rows(tmp_path / "p1"):
        if row["aug_variant"]:  # with p=1 every word that has candidates is replaced in every variant
            positions = tuple(ch["word_index"] for ch in row["aug_changes"])
            assert changed_words.setdefault(row["aug_example_id"], positions) == positions
    assert changed_words


def test_long_sentences_are_augmented_where_they_fit(tiny_tokenizer, tiny_vectors, tmp_path):
    from conftest import make_mlm

    words, vectors = tiny_vectors
    mlm = LoadedMLM(make_mlm(tiny_tokenizer, max_positions=16), tiny_tokenizer, "short-mlm")
    long_text = " ".join(["the movie was great"] * 10)  # 40 pieces, the model holds 16 positions
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"text": long_text}) + "\n")
    table = load_input(input_path=path, text_columns=("text",))
    report = augment_table(table, tmp_path / "o", Recipe(replace_prob=1.0, variants_per_example=3),
                           mlm, LoadedVectors(words, vectors, "v", "t"))
    assert report.stats.no_candidates["beyond_max_length"] > 0
    fits = len("the movie was great " * 3 + "the movie")  # 14 pieces: 16 positions less [CLS], [SEP]
    changed = [ch for row in rows(tmp_path / "o") for ch in row["aug_changes"]]
    assert changed and max(ch["end"] for ch in changed) == fits
    for row in rows(tmp_path / "o"):
        assert row["text"].endswith(long_text[fits:])


def test_recipe_reports_every_problem_at_once():
    with pytest.raises(RecipeError) as info:
        Recipe(variants_per_example=-1, replace_prob=2, mlm_context="both")
    message = str(info.value)
    assert "variants_per_example" in message and "replace_prob" in message and "mlm_context" in message


def test_kill_after_assembly_before_cleanup_is_finished_by_a_rerun(table, loaded, tmp_path, monkeypatch):
    from tinyaug.pipelines.io import shard_runner

    real_remove = shard_runner.remove_tree
    monkeypatch.setattr(shard_runner, "remove_tree", lambda path: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(table, tmp_path / "o", loaded, shard_size=4)
    assert (tmp_path / "o").exists() and (tmp_path / "o.partial").exists()
    monkeypatch.setattr(shard_runner, "remove_tree", real_remove)
    report = run(table, tmp_path / "o", loaded, shard_size=4)
    assert report.already_complete and not (tmp_path / "o.partial").exists()
    run(table, tmp_path / "ref", loaded, shard_size=4)
    assert rows(tmp_path / "o") == rows(tmp_path / "ref")


def test_unreadable_run_file_is_a_clear_error(table, loaded, tmp_path):
    (tmp_path / "o.partial").mkdir()
    (tmp_path / "o.partial" / "run.json").write_text('{"tiny')
    with pytest.raises(TinyaugError, match=r"run.json is unreadable; delete .*o.partial to start over"):
        run(table, tmp_path / "o", loaded)


def test_overwrite_replaces_only_tinyaug_datasets(table, loaded, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TinyaugError, match="is not a dataset written by tinyaug .augment, filter or teacher-logits., "
                       "the only thing tinyaug augment replaces: remove it yourself"):
        run(table, precious, loaded, overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert run(table, tmp_path / "empty", loaded, overwrite=True).rows_out


def pair_table(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"a": a, "b": b, "label": 1}) + "\n" for a, b in
                            [("the movie was great", "the film was good"), ("a charming story", "the cat sat")]))
    return load_input(input_path=path, text_columns=("a", "b"), label_column="label")


def test_pair_mode_each_varies_one_column_and_keeps_the_other_original(loaded, tmp_path):
    table = pair_table(tmp_path)
    run(table, tmp_path / "each", loaded, Recipe(variants_per_example=5, replace_prob=0.8))
    originals = {r["aug_example_id"]: r for r in rows(tmp_path / "each") if r["aug_variant"] == 0}
    varied = {"a": 0, "b": 0}
    for row in rows(tmp_path / "each"):
        if row["aug_variant"]:
            columns = {ch["column"] for ch in row["aug_changes"]}
            assert len(columns) == 1
            other = "b" if columns == {"a"} else "a"
            assert row[other] == originals[row["aug_example_id"]][other]  # the reference's in-place bug is gone
            varied[columns.pop()] += 1
    assert varied["a"] and varied["b"]
    run(table, tmp_path / "all", loaded, Recipe(variants_per_example=5, replace_prob=0.8, pair_mode="all"))
    both = [r for r in rows(tmp_path / "all") if {ch["column"] for ch in r["aug_changes"]} == {"a", "b"}]
    assert both and all(len([r for r in rows(tmp_path / "all") if r["aug_example_id"] == i]) <= 6 for i in (0, 1))


def test_the_local_engine_imports_neither_ray_nor_gradio(tmp_path):
    """Ray and Gradio are optional extras: a local augmentation must run without them."""
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from helpers import write_augmented
from tinyaug.pipelines.experiment import toys as T
T.write_glue_task({str(tmp_path)!r} + '/glue', 'sst2', train_rows=8)
write_augmented({str(tmp_path)!r} + '/glue', 'sst2', {str(tmp_path)!r} + '/aug')
import tinyaug.pipelines.cli
print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'gradio')))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_columns_are_read_through_arrow_never_row_by_row(monkeypatch):
    """``column_values`` (the example ids behind ``--show`` and ``inspect``, labels, variants):
    the rows the dataset shows, in order, without walking its rows in Python (seconds on a
    million rows)."""
    import numpy as np

    from tinyaug.pipelines.augmentation.inspect import example_rows, first_examples
    from tinyaug.pipelines.io.rows import column_array, column_values
    from tinyaug.pipelines.io.schema import EXAMPLE_ID

    ds = datasets.Dataset.from_dict({EXAMPLE_ID: [0, 0, 1, 1, 1, 2], "label": [1, 1, 0, 0, 0, 1],
                                     "text": list("abcdef")})
    shown = ds.select([5, 2, 3, 0])  # an indices mapping: the rows in this order

    def row_by_row(*args, **kwargs):
        raise AssertionError("a column was read row by row")

    monkeypatch.setattr(datasets.arrow_dataset.Column, "__iter__", row_by_row)
    monkeypatch.setattr(datasets.arrow_dataset.Column, "__array__", row_by_row, raising=False)
    assert column_values(shown, EXAMPLE_ID).tolist() == [2, 1, 1, 0]
    assert column_values(shown, "label", np.float64).dtype == np.float64
    values = column_values(shown, EXAMPLE_ID)
    values[0] = 7  # a copy: the caller may write into it
    assert column_values(shown, EXAMPLE_ID)[0] == 2
    assert [column_array(rows, "text").to_pylist() for rows in first_examples(shown, 2)] == [["f"], ["c", "d"]]
    assert column_array(example_rows(shown, 0), "text").to_pylist() == ["a"]
