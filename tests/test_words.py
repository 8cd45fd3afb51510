"""Words, offsets, eligibility and casing."""

import doctest

import pytest
from hypothesis import given, settings, strategies as st

import tinyaug.augment.recipe
import tinyaug.augment.sampler
import tinyaug.augment.sources
import tinyaug.augment.vectors
import tinyaug.augment.words
from tinyaug.augment.words import casing, is_eligible, match_case, rewrite, split_words


MODULES_WITH_EXAMPLES = ["tinyaug.augment.words", "tinyaug.augment.sources", "tinyaug.augment.sampler",
                         "tinyaug.augment.vectors", "tinyaug.augment.recipe", "tinyaug.augment.constraints",
                         "tinyaug.distill.variants", "tinyaug.distill.layer_map", "tinyaug.tasks",
                         "tinyaug.pipelines.augmentation.inspect"]


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples(name):
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


def test_split_like_bert_basic_tokenizer():
    text = "Héllo,  WORLD! It's a \"quoted\" naïve café 東京 test."
    words = split_words(text)
    assert [w.norm for w in words] == ["hello", ",", "world", "!", "it", "'", "s", "a", '"', "quoted", '"',
                                       "naive", "cafe", "東", "京", "test", "."]
    assert all(text[w.start:w.end] == w.text for w in words)
    assert words[0].text == "Héllo" and words[11].text == "naïve"


def test_eligibility_is_alphabetic_and_not_stopword():
    words = {w.text: is_eligible(w) for w in split_words("The movie's 2 plots: un-believable and Great!")}
    assert words == {"The": False, "movie": True, "'": False, "s": False, "2": False, "plots": True, ":": False,
                     "un": True, "-": False, "believable": True, "and": False, "Great": True, "!": False}


@pytest.mark.parametrize("original,candidate,expected", [
    ("movie", "Film", "film"), ("Movie", "film", "Film"), ("MOVIE", "film", "FILM"),
    ("A", "one", "One"), ("iPhone", "phone", "phone"), ("McDonald", "Burger", "Burger")])
def test_match_case(original, candidate, expected):
    assert match_case(candidate, original) == expected


def test_rewrite_touches_only_replaced_spans():
    text = '  He said "GREAT movie",\ttwice.  '
    words = split_words(text)
    index = {w.text: i for i, w in enumerate(words)}
    out = rewrite(text, words, {index["GREAT"]: "fine", index["movie"]: "picture"})
    assert out == '  He said "FINE picture",\ttwice.  '
    assert rewrite(text, words, {}) == text


word_chars = st.sampled_from(list("abcXYZéü") + [" ", "  ", "\t", ",", ".", '"', "'", "-", "7"])


@settings(max_examples=200, deadline=None)
@given(st.lists(word_chars, min_size=1, max_size=40).map("".join), st.data())
def test_offsets_and_untouched_characters_survive(text, data):
    words = split_words(text)
    for w in words:
        assert text[w.start:w.end] == w.text
    eligible = [i for i, w in enumerate(words) if is_eligible(w)]
    chosen = data.draw(st.lists(st.sampled_from(eligible), unique=True) if eligible else st.just([]))
    out = rewrite(text, words, {i: "zed" for i in chosen})
    # removing the replaced spans from both strings leaves identical text
    cursor, kept = 0, []
    for i in sorted(chosen):
        kept.append(text[cursor:words[i].start])
        cursor = words[i].end
    kept.append(text[cursor:])
    replaced = [match_case("zed", words[i].text) for i in sorted(chosen)]
    expected = kept[0] + "".join(r + k for r, k in zip(replaced, kept[1:]))
    assert out == expected
    for i in chosen:
        pattern = casing(words[i].text)
        assert casing(match_case("zed", words[i].text)) == (pattern if pattern != "mixed" else "lower")


def test_eligibility_is_latin_script_only():
    """Accented Latin words stay eligible; other scripts are not (English models would offer
    English words for them)."""
    words = {w.text: is_eligible(w) for w in split_words("café Straße naïve фильм 映画 λόγος movie")}
    assert words == {"café": True, "Straße": True, "naïve": True, "фильм": False, "映": False, "画": False,
                     "λόγος": False, "movie": True}
