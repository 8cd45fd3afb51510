"""``tinyaug browse``: the data layer (filters, paging) without a browser, then the real app in
a real headless Chromium (Debian's, driven by Playwright; skipped with the reason when absent)."""

from __future__ import annotations

import shutil
import socket
import tempfile

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import tiny_mlm, tiny_vectors
from tinyaug.errors import InputError, TinyaugError
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.experiment import toys as T
from tinyaug.pipelines.io.schema import TEACHER_FLIP

pytest.importorskip("gradio")
from tinyaug.pipelines.browse.app import Models, build_app, check_port, launch, sentence_html  # noqa: E402
from tinyaug.pipelines.browse.data import DatasetBrowser, Filters  # noqa: E402
from tinyaug.pipelines.browse.render import page_html  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """30 toy SST-2 rows, 4 draws each, by a tiny masked LM that lacks the positive words (so
    those go to the word vectors): replacements from both sources."""
    import torch
    from transformers import BertForMaskedLM

    from tinyaug.augment.recipe import Recipe
    from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
    from tinyaug.pipelines.io.models import LoadedMLM
    from tinyaug.pipelines.io.tables import load_input

    root = tmp_path_factory.mktemp("browse")
    T.write_glue_task(root / "glue", "sst2", train_rows=30)
    words = [w for w in T.WORDS if w not in T.POSITIVE]
    tokenizer = T.tiny_tokenizer(root / "vocab", words)
    torch.manual_seed(0)
    model = BertForMaskedLM(T.tiny_config(vocab_size=len(words), layers=1, labels=None)).eval()
    augment_table(load_input(task="sst2", data_dir=root / "glue"), root / "aug", Recipe(variants_per_example=4),
                  LoadedMLM(model, tokenizer, "tiny-mlm without positive words"), tiny_vectors(), BuildOptions())
    return root / "aug"


@pytest.fixture(scope="module")
def models():
    with tempfile.TemporaryDirectory() as folder:
        mlm = tiny_mlm(folder)
    return Models(lambda: (mlm, tiny_vectors()))


def all_rows(browser, filters, size=7):
    first = browser.page(filters, 1, size)
    pages = [first] + [browser.page(filters, n, size) for n in range(2, first.pages + 1)]
    return pages, [row for page in pages for example in page.examples for row in example.rows]


def test_pages_cover_every_example_once_with_its_original_first(dataset):
    browser = DatasetBrowser(dataset)
    pages, _ = all_rows(browser, Filters())
    ids = [e.example_id for p in pages for e in p.examples]
    assert ids == sorted(set(ids)) and len(ids) == browser.examples == 30
    assert all(e.rows[0].variant == 0 and len(e.rows) - 1 == e.variants_total for p in pages for e in p.examples)
    assert sum(len(e.rows) for p in pages for e in p.examples) == len(browser.dataset)
    assert browser.page(Filters(), 99, 7).number == pages[-1].number  # clamped to the last page


def test_filters_by_source_label_changes_and_text(dataset):
    browser = DatasetBrowser(dataset)
    records = browser.dataset.to_list()
    for source in ("mlm", "vectors"):
        _, rows = all_rows(browser, Filters(source=source))
        expected = sum(any(c["source"] == source for c in r["aug_changes"]) for r in records)
        variants = [r for r in rows if r.variant > 0]
        assert expected and len(variants) == expected and all(any(c and c["source"] == source for _, c in r.segments["sentence"])
                                                 for r in variants)
    _, rows = all_rows(browser, Filters(label="positive"))
    assert rows and {r.label for r in rows} == {"positive"}
    _, rows = all_rows(browser, Filters(changed_only=True))
    assert all(any(c for _, c in r.segments["sentence"]) for r in rows if r.variant > 0)
    word = browser.dataset[1]["sentence"].split()[0]
    _, rows = all_rows(browser, Filters(search=word.upper()))
    assert all(word in "".join(p for p, _ in r.segments["sentence"]).lower() for r in rows if r.variant > 0)
    assert browser.page(Filters(search="no such text anywhere")).examples == []
    with pytest.raises(InputError, match="labels are negative, positive"):
        browser.page(Filters(label="neutral"))
    with pytest.raises(InputError, match="run tinyaug teacher-logits"):
        browser.page(Filters(flips_only=True))
    with pytest.raises(InputError, match="page size"):
        browser.page(Filters(), 1, 1000)


def test_flips_only_shows_the_rows_the_teacher_flipped(dataset, tmp_path):
    ds = datasets.load_from_disk(str(dataset))
    flipped = (np.arange(len(ds)) % 3 == 1) & (np.asarray(ds["aug_variant"]) > 0)
    ds.add_column(TEACHER_FLIP, flipped.tolist()).save_to_disk(str(tmp_path / "t"))
    shutil.copy(dataset / "README.md", tmp_path / "t" / "README.md")
    browser = DatasetBrowser(tmp_path / "t")
    _, rows = all_rows(browser, Filters(flips_only=True))
    variants = [r for r in rows if r.variant > 0]
    assert len(variants) == flipped.sum() and all(r.flip for r in variants)
    assert "flip</span>" in page_html(browser.page(Filters(flips_only=True)), browser.text_columns)


def test_text_is_escaped_in_the_html(dataset):
    browser = DatasetBrowser(dataset)
    page = browser.page()
    page.examples[0].rows[0].segments["sentence"] = [("<script>alert(1)</script>", None)]
    html = page_html(page, browser.text_columns)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_sentence_view_lists_routes_candidates_and_variants(models):
    html = sentence_html(models, "the movie was great", "", 4, 5, 0.5, 0)
    assert "<table" in html and "distinct variants" in html and "great" in html
    with pytest.raises(TinyaugError, match="at most 2000"):
        sentence_html(models, "a" * 3000, "", 4, 5, 0.5, 0)


def test_one_line_errors_for_a_folder_that_is_no_dataset_and_a_busy_port(tmp_path):
    (tmp_path / "notes").mkdir()
    result = CliRunner().invoke(main, ["browse", str(tmp_path / "notes")])
    assert result.exit_code != 0 and "not a dataset written by tinyaug augment" in result.output
    assert "Traceback" not in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TinyaugError, match=f"cannot listen on 127.0.0.1:{port}.*another --port"):
            check_port("127.0.0.1", port)


# -- the real app in a real browser

def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium found: apt-get install chromium (Debian), then rerun; .ci/run installs it")


@pytest.fixture(scope="module")
def served(dataset, models):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(DatasetBrowser(dataset), models)
    launch(app, "127.0.0.1", port, block=False)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        yield page
        browser.close()
    app.close()


REPLACED = "#aug-page mark.aug-word[data-example]"


def test_browser_dataset_view_highlights_filters_pages_and_shows_candidates(served):
    page = served
    page.wait_for_selector(REPLACED, timeout=60_000)
    first = page.locator(REPLACED).first
    assert "rank" in first.get_attribute("title") and first.inner_text().strip()
    assert "page 1 of 3" in page.inner_text("#aug-status")

    before = page.inner_text("#aug-status")
    page.locator("#aug-source input").click()
    page.get_by_role("option", name="vectors", exact=True).click()
    page.wait_for_function(f"document.querySelector('#aug-status').innerText != {before!r}", timeout=30_000)
    every_variant_has_vectors = """() => {
        const rows = Array.from(document.querySelectorAll('#aug-page tr:not(.aug-original)'));
        return rows.length > 0 && rows.every(row => row.querySelector('mark.aug-vectors'));
    }"""
    try:
        page.wait_for_function(every_variant_has_vectors, timeout=30_000)
    except Exception:
        raise AssertionError(page.evaluate("""Array.from(document.querySelectorAll('#aug-page tr:not(.aug-original)'))
            .filter(row => !row.querySelector('mark.aug-vectors')).slice(0, 2).map(row => row.outerHTML)""")) from None

    page.locator("#aug-next").click()
    page.wait_for_function("document.querySelector('#aug-status').innerText.includes('page 2 of')", timeout=30_000)
    shown = page.locator("#aug-page .aug-example").first.get_attribute("data-example")
    assert int(shown) > 0

    page.locator(REPLACED).first.click()
    page.wait_for_selector("#aug-candidates table", timeout=60_000)
    assert "rank" in page.inner_text("#aug-candidates")


def test_browser_sentence_view_shows_candidates(served):
    page = served
    page.get_by_role("tab", name="Sentence").click()
    page.locator("#aug-sentence textarea").fill("the movie was great and the acting was good")
    page.locator("#aug-run").click()
    page.wait_for_selector("#aug-sentence-result table", timeout=60_000)
    text = page.inner_text("#aug-sentence-result")
    assert "candidates" in text and "distinct variants" in text
