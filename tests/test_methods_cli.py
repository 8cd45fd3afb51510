"""Methods end to end: ``tinyaug augment --method`` on GLUE slices and a plain table, the Python
API with a method by name and one of the user's, the card, inspect and browse; bad input in one
line with nothing written."""

from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from tinyaug.augment.edits import render
from tinyaug.augment.engine import Change
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.io.schema import read_metadata

WORDNET = Path("/usr/share/wordnet/data.noun").is_file()
needs_wordnet = pytest.mark.skipif(not WORDNET, reason="Debian's wordnet-base is missing (.ci/run installs it): "
                                                       "apt-get install wordnet-base wordnet-sense-index")


@pytest.fixture
def vectors_file(tmp_path, tiny_vectors):
    words, vectors = tiny_vectors
    path = tmp_path / "vectors.txt"
    extra = ["story", "plot", "actor", "river", "stone", "cloud", "music"]
    lines = [f"{w} {' '.join(f'{x:.3f}' for x in v)}" for w, v in zip(words, vectors)]
    lines += [f"{w} 0.1 0.2 0.3 {0.1 * i:.1f}" for i, w in enumerate(extra)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def augment(args, out):
    result = CliRunner().invoke(main, ["augment", *map(str, args), "--out", str(out), "--show", "1"])
    return result


def check_rows(out: Path, method: str):
    ds = datasets.load_from_disk(str(out))
    meta = read_metadata(ds)
    assert meta["method"] == method and meta["recipe"].get("method", "tinybert") == method
    columns = meta["text_columns"]
    originals = {}
    for row in ds:
        if row["aug_variant"] == 0:
            originals[row["aug_example_id"]] = row
            assert row["aug_changes"] == []
            continue
        original = originals[row["aug_example_id"]]
        assert row["aug_changes"], "a variant has at least one edit"
        for c, column in enumerate(columns):
            edits = [Change(c, e["word_index"], e["start"], e["end"], e["original"], e["replacement"], e["source"],
                            e["rank"], e["kind"], e["step"]) for e in row["aug_changes"] if e["column"] == column]
            assert render(original[column], edits) == row[column]  # provenance rebuilds every variant
    assert f"| method | `{method}` |" in (out / "README.md").read_text()
    return ds


METHODS = [("random", {"random"}, {"replace"}), ("eda:swap,delete", {"eda"}, {"swap", "delete"}),
           pytest.param("synonyms", {"wordnet"}, {"replace"}, marks=needs_wordnet),
           ("tinybert+eda:swap", {"mlm", "vectors", "eda"}, {"replace", "swap"})]


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
@pytest.mark.parametrize("method, sources, kinds", METHODS)
def test_every_method_on_glue_slices_with_provenance_and_seeded_reruns(task, method, sources, kinds, tmp_path,
                                                                       vectors_file, tiny_dir):
    args = ["--task", task, "--limit", 12, "-n", 4, "--method", method, "--vectors", vectors_file,
            "--mlm", tiny_dir, "--seed", 3]
    first = augment(args, tmp_path / "a")
    assert first.exit_code == 0, first.output
    ds = check_rows(tmp_path / "a", method)
    found = {e["source"] for row in ds for e in row["aug_changes"]}
    assert found <= sources and found, found
    assert {e["kind"] for row in ds for e in row["aug_changes"]} <= kinds
    again = augment([*args, "--shard-size", 5], tmp_path / "b")  # other shards, same rows
    assert again.exit_code == 0, again.output
    assert datasets.load_from_disk(str(tmp_path / "b")).to_list() == ds.to_list()


def test_a_plain_table_with_eda_and_what_inspect_and_browse_show(tmp_path, vectors_file):
    table = tmp_path / "reviews.csv"
    table.write_text("review,stars\nthe movie was a charming surprise and a good story,5\n"
                     "a boring plot with awful actors,1\nfine,3\n", encoding="utf-8")
    result = augment(["--input", table, "--text-columns", "review", "--label-column", "stars", "-n", 5,
                      "--method", "eda:swap"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "(eda swap)" in result.output
    ds = check_rows(tmp_path / "out", "eda:swap")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| draws skipped: swap needs two words | 5 |" in card  # "fine" alone cannot be swapped
    assert not [row for row in ds if row["aug_example_id"] == 2 and row["aug_variant"] > 0]
    listing = CliRunner().invoke(main, ["inspect", str(tmp_path / "out"), "--example", "0", "--no-pager"])
    assert listing.exit_code == 0 and "(eda swap)" in listing.output

    from tinyaug.pipelines.browse.data import DatasetBrowser, Filters
    from tinyaug.pipelines.browse.render import page_html

    browser = DatasetBrowser(tmp_path / "out")
    assert browser.sources == ["eda"]
    page = browser.page(Filters(source="eda"), 1, 10)
    html = page_html(page, browser.text_columns)
    assert 'class="aug-word aug-eda"' in html and "EDA</mark>" in html and "swap" in html


def test_the_api_takes_a_method_by_name_and_one_of_the_users(vectors_file):
    import tinyaug
    from tinyaug.augment.methods import Skip, WordMethod

    rows = datasets.Dataset.from_dict({"text": ["the movie was a charming surprise", "it was ."], "label": [1, 0]})
    named = tinyaug.augment_dataset(rows, text_columns=["text"], label_column="label", method="random",
                                    vectors=str(vectors_file), recipe=tinyaug.Recipe(variants_per_example=3))
    assert {e["source"] for row in named for e in row["aug_changes"]} == {"random"}

    class Shout(WordMethod):
        name = source = "shout"

        def draw(self, state, rng):
            words = self.eligible(state)
            if not words:
                raise Skip("no word to shout")
            i = words[rng.integers(len(words))]
            state.replace(i, state.current(i).upper(), source=self.source, rank=-1, step=self.step, cased=False)

    shouted = tinyaug.augment_dataset(rows, text_columns=["text"], label_column="label",
                                      method=Shout(tinyaug.Recipe(variants_per_example=4)))
    variants = [row["text"] for row in shouted if row["aug_variant"] > 0]
    assert variants and all(any(w.isupper() for w in v.split()) for v in variants)
    assert read_metadata(shouted)["stats"]["skipped"] == {"no word to shout": 4}


@pytest.mark.parametrize("method, message", [
    ("bert", "unknown method 'bert'; choose from tinybert, synonyms, eda, random"),
    ("random:p=0.3", "method random has no option 'p': it takes no options"),
    ("random+tinybert", "tinybert can only be the first step"),
])
def test_a_bad_method_is_one_line_and_nothing_is_written(method, message, tmp_path):
    result = augment(["--task", "sst2", "--limit", 3, "--method", method], tmp_path / "out")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_synonyms_without_wordnet_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    from tinyaug.pipelines.io import wordnet

    monkeypatch.setattr(wordnet, "DEFAULT_WORDNET_DIR", tmp_path / "no-wordnet")
    wordnet._synonyms.cache_clear()
    result = augment(["--task", "sst2", "--limit", 3, "--method", "synonyms"], tmp_path / "out")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "WordNet is not installed" in lines[0] and "apt-get install wordnet-base" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_bench_methods_reports_a_line_per_method_with_the_same_rows_twice(vectors_file):
    result = CliRunner().invoke(main, ["bench-methods", "--sst2-rows", "150", "--methods", "random,eda:swap",
                                       "--vectors", str(vectors_file), "-n", "4"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("| `")]
    assert [line.split("`")[1] for line in lines] == ["random", "eda:swap"]
    assert all(float(line.split("|")[4].replace(",", "")) > 0 for line in lines)


def test_a_method_object_draws_with_its_own_recipe_and_names_it_in_the_run(tmp_path):
    import tinyaug
    from tinyaug.augment.methods.eda import Eda
    from tinyaug.errors import InputError

    rows = datasets.Dataset.from_dict({"text": ["the movie was a charming surprise and a good story"], "label": [1]})
    swap = Eda(tinyaug.Recipe(variants_per_example=2, seed=1), {"swap": 0.1}, None)
    first = tinyaug.augment_dataset(rows, text_columns=["text"], label_column="label", method=swap, out=tmp_path / "o")
    assert read_metadata(first)["recipe"]["variants_per_example"] == 2 and len(first) == 3
    more = Eda(tinyaug.Recipe(variants_per_example=5, seed=7), {"swap": 0.1}, None)
    again = tinyaug.augment_dataset(rows, text_columns=["text"], label_column="label", method=more,
                                    out=tmp_path / "o", overwrite=True)  # another recipe: built anew, not "complete"
    assert read_metadata(again)["recipe"]["variants_per_example"] == 5 and len(again) == 6
    with pytest.raises(InputError, match="another recipe"):
        tinyaug.augment_dataset(rows, text_columns=["text"], label_column="label", method=more,
                                recipe=tinyaug.Recipe(variants_per_example=3))
