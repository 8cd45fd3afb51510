"""Augmentation methods on one protocol: edits, random, synonyms, EDA, composition, the registry.

Pure tests: fake vocabularies and synonym tables, no tokenizer, no model."""

import collections

import pytest

from tinyaug.augment.constraints import CandidateFilter
from tinyaug.augment.edits import TextState, render
from tinyaug.augment.engine import Change, Example
from tinyaug.augment.methods import MethodError, build_method, method_name, needs, parse_method
from tinyaug.augment.methods.eda import Eda
from tinyaug.augment.methods.random_words import RandomWords
from tinyaug.augment.methods.synonyms import Synonyms
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.words import split_words

VOCAB = ["car", "tree", "river", "stone", "cloud", "music", "paper", "glass"]
SYNONYMS = {"movie": ["film", "picture"], "good": ["fine", "nice", "bad"], "story": ["tale"], "funny": ["comic"]}
SENTENCES = ["the movie was good .", "A funny story , told well !", "good", "the cat sat on the mat",
             "He said \"GREAT movie\", twice."]


def examples(texts=SENTENCES):
    return [Example(i, (t,)) for i, t in enumerate(texts)]


def texts_of(variants):
    return [[v.texts for v in per_example] for per_example in variants]


def state(text):
    return TextState(0, text, split_words(text))


# --- edits ---------------------------------------------------------------------------------

def test_each_edit_kind_renders_and_keeps_the_rest_of_the_text():
    s = state('He said "GREAT movie", twice.')
    s.replace(3, "fine", source="x", rank=0, step=0)  # cased like GREAT
    s.swap(1, 7, source="eda", step=1)  # said <-> twice
    s.insert(0, "so", source="eda", step=1)
    assert s.render() == 'so He twice "FINE movie", said.'
    kinds = collections.Counter(c.kind for c in s.changes())
    assert kinds == {"replace": 1, "swap": 2, "insert": 1}
    assert render(s.text, s.changes()) == s.render()


@pytest.mark.parametrize("text, drop, expected", [
    ("the cat sat .", [1], "the sat ."),
    ("the cat sat", [2], "the cat"),  # the last word takes the space before it
    ("the cat sat", [1, 2], "the"),  # adjacent deletions never overlap
    ("the cat sat", [0, 1], "sat"),  # ... and the first word the space after it
    ("a, b, c", [0, 2], ",, c"),
])
def test_deletions_take_one_neighbouring_space(text, drop, expected):
    s = state(text)
    for index in drop:
        s.delete(index, source="eda", step=0)
    changes = s.changes()
    assert s.render() == expected
    spans = sorted((c.start, c.end) for c in changes)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_insertion_after_the_last_word_and_a_state_rebuilt_from_its_changes():
    s = state("good film")
    s.insert(2, "indeed", source="eda", step=0)
    s.replace(0, "fine", source="wordnet", rank=1, step=0)
    assert s.render() == "fine film indeed"
    again = TextState.from_changes(0, "good film", split_words("good film"), s.changes())
    assert again.render() == s.render() and again.changes() == s.changes()


# --- random --------------------------------------------------------------------------------

def test_random_replaces_eligible_words_only_at_the_recipe_rate():
    words = " ".join(["movie"] * 200 + ["the"] * 50)
    method = RandomWords(Recipe(variants_per_example=20, replace_prob=0.4), VOCAB)
    variants, stats = method.augment([Example(0, (words,))])
    changes = [c for v in variants[0][1:] for c in v.changes]
    assert {c.original for c in changes} == {"movie"}  # stopwords never
    assert {c.replacement for c in changes} <= set(VOCAB)
    assert 0.36 < stats.replacement_rate < 0.44  # 200 words x 20 draws: p = 0.4 within 4 points
    assert stats.edit_kinds == {"replace": len(changes)} and stats.replaced == {"random": len(changes)}


def test_random_rows_do_not_depend_on_batching():
    method = RandomWords(Recipe(variants_per_example=5, seed=3), VOCAB)
    together, _ = method.augment(examples())
    one_by_one = [method.augment([ex])[0][0] for ex in examples()]
    assert together == one_by_one
    other_seed, _ = RandomWords(Recipe(variants_per_example=5, seed=4), VOCAB).augment(examples())
    assert texts_of(other_seed) != texts_of(together)


def test_random_applies_the_candidate_constraints():
    antonyms = CandidateFilter(None, antonyms=lambda w: {"car"})
    method = RandomWords(Recipe(variants_per_example=30, replace_prob=1.0), ["car", "tree"], candidate_filter=antonyms)
    variants, _ = method.augment([Example(0, ("movie",))])
    assert {v.texts[0] for v in variants[0][1:]} == {"tree"}


# --- synonyms ------------------------------------------------------------------------------

def test_synonyms_come_from_the_lookup_with_their_rank_and_case():
    method = Synonyms(Recipe(variants_per_example=20, replace_prob=1.0, candidates_per_word=2), SYNONYMS.get)
    variants, stats = method.augment([Example(0, ("The MOVIE was good",))])
    seen = {(c.original, c.replacement, c.rank) for v in variants[0] for c in v.changes}
    assert seen == {("MOVIE", "FILM", 0), ("MOVIE", "PICTURE", 1), ("good", "fine", 0), ("good", "nice", 1)}
    assert stats.replaced.keys() == {"wordnet"}


def test_synonym_lists_pass_the_antonym_constraint():
    keep = CandidateFilter(None, antonyms=lambda w: {"bad"} if w == "good" else set())
    method = Synonyms(Recipe(variants_per_example=30, replace_prob=1.0), SYNONYMS.get, candidate_filter=keep)
    variants, _ = method.augment([Example(0, ("good",))])
    assert {v.texts[0] for v in variants[0][1:]} == {"fine", "nice"}


# --- eda -----------------------------------------------------------------------------------

@pytest.mark.parametrize("operation, kind", [("swap", "swap"), ("delete", "delete"), ("insert", "insert"),
                                             ("synonym", "replace")])
def test_each_eda_operation_makes_its_kind_of_edit(operation, kind):
    method = Eda(Recipe(variants_per_example=10), {operation: 0.1}, SYNONYMS.get)
    variants, stats = method.augment(examples(SENTENCES[:2]))
    assert set(stats.edit_kinds) == {kind}
    for per_example in variants:
        for v in per_example[1:]:
            assert render(per_example[0].texts[0], v.changes) == v.texts[0]


def test_eda_alpha_sets_how_many_operations_a_draw_makes():
    text = " ".join(["movie"] * 40)  # 40 words, alpha 0.1: 4 insertions per draw
    method = Eda(Recipe(variants_per_example=5), {"insert": 0.1}, SYNONYMS.get)
    variants, _ = method.augment([Example(0, (text,))])
    assert all(len(v.changes) == 4 for v in variants[0][1:])


def test_eda_deletion_keeps_a_word_and_skips_what_cannot_apply():
    method = Eda(Recipe(variants_per_example=50), {"delete": 1.0}, None)
    variants, stats = method.augment([Example(0, ("good film",)), Example(1, ("fine",))])
    assert {v.texts[0] for v in variants[0][1:]} == {"good", "film"}
    assert stats.skipped == {"delete needs two words": 50}


def test_eda_needs_wordnet_only_for_its_synonym_operations():
    assert needs(parse_method("eda:swap,delete")) == set()
    assert needs(parse_method("eda")) == {"wordnet"}
    with pytest.raises(ValueError, match="need WordNet"):
        Eda(Recipe(), {"insert": 0.1}, None)


# --- composition and the registry -------------------------------------------------------------

def test_a_composition_records_the_step_of_every_edit():
    steps = parse_method("random+eda:swap")
    method = build_method(steps, Recipe(variants_per_example=4, replace_prob=0.5), {"vocabulary": VOCAB})
    variants, stats = method.augment(examples())
    later = [c for per in variants for v in per[1:] for c in v.changes if c.step == 1]
    assert later and all(c.kind == "swap" and c.source == "eda" for c in later)
    assert any(c.step == 0 and c.source == "random" for per in variants for v in per for c in v.changes)
    assert stats.skipped["swap needs two words"] > 0  # "good" alone cannot be swapped
    assert sum(len(per) for per in variants) == stats.rows_out
    for ex, per in zip(examples(), variants):
        for v in per[1:]:
            assert render(ex.texts[0], v.changes) == v.texts[0]
    again, _ = method.augment(examples()[::-1])
    assert texts_of(again) == texts_of(variants)[::-1]  # order and batching do not matter


def test_method_names_parse_with_options_and_every_mistake_is_one_line():
    assert parse_method("EDA:swap=0.2,delete") == [("eda", {"swap": 0.2, "delete": None})]
    assert method_name(parse_method("tinybert + eda:swap=0.2")) == "tinybert+eda:swap=0.2"
    for spec, message in [("bert", "unknown method 'bert'; choose from tinybert, synonyms, eda, random"),
                          ("random:p=0.2", "method random has no option 'p': it takes no options"),
                          ("eda:shuffle", "method eda has no option 'shuffle': it takes synonym, insert, swap, delete"),
                          ("eda:swap=x", "is not a number"), ("eda:swap=2", "must be in (0, 1]"),
                          ("random+tinybert", "tinybert can only be the first step")]:
        with pytest.raises(MethodError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_method(spec)


@pytest.mark.parametrize("spec", ["eda:delete=0.5+eda:insert=0.5", "eda:insert=0.5+eda:delete=0.5", "random+eda",
                                  "eda+eda:swap", "synonyms+eda:delete=0.3", "eda:delete=0.6"])
def test_edits_never_garble_the_text(spec):
    """Checked without ``render`` (which builds the variants): spans in order and apart, each
    edit's ``original`` what the original holds there, no doubled or edge spaces, and every word
    of a variant a word of the original, the vocabulary or a synonym (no two words glued)."""
    method = build_method(parse_method(spec), Recipe(variants_per_example=15, replace_prob=0.5),
                          {"vocabulary": VOCAB, "wordnet": SYNONYMS.get})
    allowed_extra = set(VOCAB) | {w for words in SYNONYMS.values() for w in words}
    variants, _ = method.augment(examples())
    checked = 0
    for example, per_example in zip(examples(), variants):
        original = example.texts[0]
        allowed = {w.text.lower() for w in split_words(original)} | allowed_extra
        for variant in per_example[1:]:
            text = variant.texts[0]
            spans = [(c.start, c.end) for c in variant.changes]
            assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), variant
            assert all(original[c.start:c.end] == c.original for c in variant.changes)
            assert "  " not in text and text == text.strip(), (original, text)
            assert {w.text.lower() for w in split_words(text)} <= allowed, (original, text)
            checked += 1
    assert checked >= 5


def test_a_change_as_a_dict_is_every_field_in_order():
    import dataclasses

    from tinyaug.augment.engine import Change

    change = Change(1, 2, 3, 8, "great", "fine", "mlm", 4, kind="replace", step=1)
    assert change.to_dict() == dataclasses.asdict(change)
    assert list(change.to_dict()) == [field.name for field in dataclasses.fields(Change)]
