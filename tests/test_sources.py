"""Candidate sources and routing, against hand-worked lists."""

import numpy as np
from pathlib import Path

import pytest
import torch

from tinyaug.augment.engine import NO_CANDIDATES_BEYOND, NO_CANDIDATES_UNKNOWN, Augmenter
from tinyaug.augment.mlm import MaskedLMSource, MaskedPositionLogits, vocab_words
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Query, route
from tinyaug.augment.vectors import VectorSource

from conftest import make_mlm, make_tokenizer


def fixed_logit_mlm(tokenizer, scores: dict[str, float]):
    """A masked LM whose logits are the same at every position: ``scores`` (others -5)."""
    model = make_mlm(tokenizer)
    model.config.tie_word_embeddings = False
    decoder = model.cls.predictions.decoder
    decoder.weight = torch.nn.Parameter(torch.zeros_like(decoder.weight))
    bias = torch.full((len(tokenizer),), -5.0)
    for token, value in scores.items():
        bias[tokenizer.convert_tokens_to_ids(token)] = value
    model.cls.predictions.bias = torch.nn.Parameter(bias)
    decoder.bias = model.cls.predictions.bias
    return model


SCORES = {"##ing": 10, "[SEP]": 9, ",": 8, "great": 7, "the": 6, "movie": 5, "x": 4.5, "café": 4.2,
          "good": 4, "film": 3, "bad": 2}


def query(tokenizer, text, word):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return Query(word, tuple(ids), ids.index(tokenizer.convert_tokens_to_ids(word)))


def test_mlm_candidates_are_filtered_before_top_k(tmp_path):
    tok = make_tokenizer(tmp_path)
    source = MaskedLMSource(fixed_logit_mlm(tok, SCORES), tok)
    q = query(tok, "the movie was great", "movie")
    # drops ##ing (piece), [SEP] (special), "," (punctuation), the (stopword), movie (original),
    # x (single letter), café (not ASCII for an ASCII word); K=3 still gives 3 candidates
    assert [c.word for c in source.candidates([q], 3)[0]] == ["great", "good", "film"]
    assert [c.rank for c in source.candidates([q], 3)[0]] == [0, 1, 2]
    assert [c.word for c in source.ranked_words([q], 3, drop_original=False)[0]] == ["great", "movie", "good"]
    probs = torch.softmax(fixed_logit_mlm(tok, SCORES).cls.predictions.bias.detach(), -1)
    assert source.candidates([q], 1)[0][0].score == pytest.approx(float(probs[tok.convert_tokens_to_ids("great")]))


def test_vocab_words_mark_pieces_and_specials(tmp_path):
    tok = make_tokenizer(tmp_path)
    words = vocab_words(tok)
    assert words[tok.convert_tokens_to_ids("##ing")] is None
    assert words[tok.convert_tokens_to_ids("[MASK]")] is None
    assert words[tok.convert_tokens_to_ids("movie")] == "movie"


def test_contexts_masked_and_pair(tmp_path):
    tok = make_tokenizer(tmp_path)
    model = make_mlm(tok)
    ids = tok("the movie was great", add_special_tokens=False)["input_ids"]
    cls, sep, mask = tok.cls_token_id, tok.sep_token_id, tok.mask_token_id
    masked = MaskedLMSource(model, tok, context="masked").build_context(ids, 1)
    assert masked == ([cls, ids[0], mask, *ids[2:], sep], [0] * 6)
    pair = MaskedLMSource(model, tok, context="pair").build_context(ids, 1)
    assert pair == ([cls, ids[0], mask, *ids[2:], sep, *ids, sep], [0] * 6 + [1] * 5)


def test_route_rule():
    assert route(1) == "mlm"
    assert route(2) == "vectors" and route(5) == "vectors"
    assert route(1, is_unknown=True) == "vectors"
    assert route(0) is None


def test_vectors_hand_placed_neighbours(tiny_vectors):
    words, vectors = tiny_vectors
    src = VectorSource(words, vectors)
    got = src.candidates([Query("movie"), Query("unbelievable"), Query("zebra"), Query("car")], k=2)
    assert [c.word for c in got[0]] == ["film", "picture"]  # "the" is closer but a stopword
    assert [c.word for c in got[1]] == ["incredible", "amazing"]
    assert got[2] == ()
    assert [c.word for c in got[3]] == ["road", "picture"]  # cos 0.98, then 0.2/1.02
    assert got[0][0].score == pytest.approx(1 / np.sqrt(1.01), rel=1e-5)
    assert all(c.source == "vectors" for c in got[0])


def test_vectors_batched_equals_one_at_a_time(tiny_vectors):
    words, vectors = tiny_vectors
    queries = [Query(w) for w in words + ["zebra", "MOVIE"]]
    batched = VectorSource(words, vectors, chunk_size=64).candidates(queries, 3)
    single = [VectorSource(words, vectors, chunk_size=1).candidates([q], 3)[0] for q in queries]
    assert batched == single


def test_broken_rows_of_a_vector_file_never_crowd_out_real_neighbours():
    words = ["movie", "film", "cinema", "car", "road"] + [f"junk{c}" for c in "abcdefgh"]
    vectors = np.array([[1, 0], [.9, .1], [.7, .3], [0, 1], [.1, .9]] + [[np.nan, 1]] * 7 + [[np.inf, 0]],
                       dtype=np.float32)
    got = VectorSource(words, vectors).candidates([Query("movie"), Query("junka")], k=2)
    assert [c.word for c in got[0]] == ["film", "cinema"]
    assert got[1] == ()  # a broken query row has no neighbours


def test_routing_in_the_engine(tmp_path, tiny_vectors):
    tok = make_tokenizer(tmp_path)
    words, vectors = tiny_vectors
    augmenter = Augmenter(Recipe(candidates_per_word=2), tok, MaskedLMSource(fixed_logit_mlm(tok, SCORES), tok),
                          VectorSource(words, vectors))
    plan = augmenter.plan(["The Unbelievable movie, zebra!"])[0]
    by_word = {w.text: i for i, w in enumerate(plan.words)}
    assert plan.routes[by_word["The"]] is None
    assert plan.routes[by_word["Unbelievable"]] == "vectors"  # un ##believ ##able
    assert [c.word for c in plan.candidates[by_word["Unbelievable"]]] == ["incredible", "amazing"]
    assert plan.routes[by_word["movie"]] == "mlm"
    assert [c.word for c in plan.candidates[by_word["movie"]]] == ["great", "good"]
    assert plan.routes[by_word["zebra"]] == "vectors"  # [UNK]: not a real single piece
    assert plan.candidates[by_word["zebra"]] == ()
    assert plan.missing == {by_word["zebra"]: NO_CANDIDATES_UNKNOWN}


def _queries(tok, texts):
    out = []
    for text in texts:
        ids = tuple(tok(text, add_special_tokens=False)["input_ids"])
        for pos, token in enumerate(tok.convert_ids_to_tokens(list(ids))):
            if token.isalpha():
                out.append(Query(token, ids, pos))
    return out


TEXTS = ["the movie was great", "a charming surprise", "the cat sat and the dog barked loudly",
         "the movie was great", "she said the plot was boring", "great"]


@pytest.mark.parametrize("context", ["masked", "pair"])
def test_mlm_batched_equals_one_at_a_time(tiny_tokenizer, tiny_model, context):
    queries = _queries(tiny_tokenizer, TEXTS)
    batched = MaskedLMSource(tiny_model, tiny_tokenizer, context=context, batch_size=64).candidates(queries, 5)
    single = [MaskedLMSource(tiny_model, tiny_tokenizer, context=context, batch_size=1).candidates([q], 5)[0]
              for q in queries]
    assert [[(c.word, c.rank) for c in row] for row in batched] == [[(c.word, c.rank) for c in row] for row in single]
    for a, b in zip(batched, single):
        assert [c.score for c in a] == pytest.approx([c.score for c in b], rel=1e-4, abs=1e-7)


def test_mlm_dedup_and_head_only_equal_plain(tiny_tokenizer, tiny_model):
    queries = _queries(tiny_tokenizer, TEXTS)
    source = MaskedLMSource(tiny_model, tiny_tokenizer, batch_size=4)
    deduped = source.candidates(queries, 5)
    assert source.contexts_run < source.contexts_seen  # "the movie was great" twice
    plain = MaskedLMSource(tiny_model, tiny_tokenizer, batch_size=4)
    plain.forward = MaskedPositionLogits(tiny_model, whole=True)  # full forward, logits at every position
    full = [plain.candidates([q], 5)[0] for q in queries]
    assert [[c.word for c in r] for r in deduped] == [[c.word for c in r] for r in full]


def test_mlm_words_beyond_max_length_are_refused(tiny_tokenizer, tiny_model):
    source = MaskedLMSource(tiny_model, tiny_tokenizer, max_length=8)
    assert source.piece_budget == 6 and source.fits(5) and not source.fits(6)
    assert MaskedLMSource(tiny_model, tiny_tokenizer, max_length=9, context="pair").piece_budget == 3


def test_pieces_align_with_words_when_pieces_include_the_space():
    from tinyaug.augment.engine import _pieces_per_word
    from tinyaug.augment.words import split_words

    words = split_words("the movie was great")
    # SentencePiece-style offsets: "▁movie" spans the space before the word
    metaspace = [(0, 3), (3, 9), (9, 13), (13, 15), (15, 19)]  # ▁the ▁movie ▁was ▁gr eat
    assert _pieces_per_word(words, metaspace) == [(0, 1), (1, 2), (2, 3), (3, 5)]
    wordpiece = [(0, 3), (4, 9), (10, 13), (14, 16), (16, 19)]
    assert _pieces_per_word(words, wordpiece) == [(0, 1), (1, 2), (2, 3), (3, 5)]


def test_cased_vectors_never_offer_the_word_itself():
    words = ["movie", "Movie", "MOVIE", "film", "Film", "cinema"]
    vectors = np.array([[1, 0], [1, 0.01], [1, 0.02], [1, 0.1], [1, 0.11], [1, 0.3]], dtype=np.float32)
    found = VectorSource(words, vectors).candidates([Query("movie")], k=3)[0]
    assert [c.word for c in found] == ["film", "cinema"]  # one spelling per word, none of "movie"


def test_near_ties_rank_by_id_not_by_float_noise():
    from tinyaug.augment.mlm import stable_rank_key

    assert sorted([stable_rank_key(0.30000004, 9), stable_rank_key(0.30000001, 4)]) == \
        [stable_rank_key(0.3, 4), stable_rank_key(0.3, 9)]
    assert stable_rank_key(0.5, 9) < stable_rank_key(0.3, 1)


def test_usable_positions_respect_roberta_offset_and_tokenizer_max(tiny_tokenizer):
    from transformers import RobertaConfig, RobertaForMaskedLM

    from tinyaug.augment.mlm import usable_positions

    roberta = RobertaForMaskedLM(RobertaConfig(vocab_size=len(tiny_tokenizer), hidden_size=16, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=20, max_position_embeddings=22,
                                               pad_token_id=1))
    assert usable_positions(roberta, tiny_tokenizer) == 20  # positions start after the padding index
    bert = make_mlm(tiny_tokenizer, max_positions=64)
    tiny_tokenizer_short = copy_with_max(tiny_tokenizer, 30)
    assert usable_positions(bert, tiny_tokenizer_short) == 30 and usable_positions(bert, tiny_tokenizer) == 64


def copy_with_max(tokenizer, limit):
    import copy

    other = copy.deepcopy(tokenizer)
    other.model_max_length = limit
    return other


def test_long_inputs_fit_a_roberta_style_model(tiny_tokenizer):
    from transformers import RobertaConfig, RobertaForMaskedLM

    roberta = RobertaForMaskedLM(RobertaConfig(vocab_size=len(tiny_tokenizer), hidden_size=16, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=20, max_position_embeddings=22,
                                               pad_token_id=1)).eval()
    source = MaskedLMSource(roberta, tiny_tokenizer)
    ids = tuple(tiny_tokenizer(" ".join(["the movie was great"] * 10), add_special_tokens=False)["input_ids"])
    fitting = [Query("movie", ids, p) for p in range(len(ids)) if source.fits(p)]
    assert len(fitting) == 18 and len(source.candidates(fitting, 3)) == 18  # no index error


def _examples(texts):
    from tinyaug.augment.engine import Example

    return [Example(i, (text,)) for i, text in enumerate(texts)]


def test_stream_equals_augment_per_batch(tiny_tokenizer, tiny_model, tiny_vectors):
    words, vectors = tiny_vectors

    def augmenter():
        return Augmenter(Recipe(variants_per_example=4, candidates_per_word=3), tiny_tokenizer,
                         MaskedLMSource(tiny_model, tiny_tokenizer), VectorSource(words, vectors))

    batches = [_examples(TEXTS[:2]), _examples(TEXTS[2:5]), _examples(TEXTS[5:])]
    one_by_one = augmenter()
    expected = [one_by_one.augment(batch) for batch in batches]
    streamed = augmenter()
    got = list(streamed.augment_stream(iter(batches)))
    assert [v for v, _ in got] == [v for v, _ in expected]
    assert [s.to_dict() for _, s in got] == [s.to_dict() for _, s in expected]
    assert list(augmenter().augment_stream([])) == []


def test_stream_tokenizes_the_next_batch_while_the_model_works(tiny_tokenizer, tiny_model, tiny_vectors):
    """The masked LM, busy with batch 1, sees batch 2 being routed in the helper thread."""
    import threading

    words, vectors = tiny_vectors
    routed_threads, second_batch_routed = [], threading.Event()
    seen_during_model_work = []

    class WatchingAugmenter(Augmenter):
        def route_words(self, distinct, tokenizer=None):
            # the helper thread tokenizes with its own copy of the tokenizer
            routed_threads.append((threading.current_thread().name, tokenizer not in (None, self.tokenizer)))
            if distinct == [TEXTS[2]]:
                second_batch_routed.set()
            return super().route_words(distinct, tokenizer)

    class SlowSource(MaskedLMSource):
        def candidates(self, queries, k):
            seen_during_model_work.append(second_batch_routed.wait(timeout=10))
            return super().candidates(queries, k)

    augmenter = WatchingAugmenter(Recipe(), tiny_tokenizer, SlowSource(tiny_model, tiny_tokenizer),
                                  VectorSource(words, vectors))
    list(augmenter.augment_stream([_examples(TEXTS[:1]), _examples(TEXTS[2:3])]))
    assert seen_during_model_work[0] is True
    assert len(routed_threads) == 2
    assert all(name.startswith("tinyaug-split") and own_copy for name, own_copy in routed_threads)


def test_vector_words_beyond_the_masked_lm_budget_still_get_neighbours(tmp_path, tiny_vectors):
    """Only masked-LM words depend on the model's length budget; the reference gives every
    vector-routed word its GloVe neighbours, wherever it stands."""
    tok = make_tokenizer(tmp_path)
    words, vectors = tiny_vectors
    text = "the movie " * 6 + "Unbelievable movie"
    augmenter = Augmenter(Recipe(candidates_per_word=2), tok,
                          MaskedLMSource(fixed_logit_mlm(tok, SCORES), tok, max_length=8), VectorSource(words, vectors))
    plan = augmenter.plan([text])[0]
    last_movie, unbelievable = len(plan.words) - 1, len(plan.words) - 2
    assert plan.routes[unbelievable] == "vectors" and plan.routes[last_movie] == "mlm"
    assert [c.word for c in plan.candidates[unbelievable]] == ["incredible", "amazing"]
    assert last_movie in plan.missing and unbelievable not in plan.missing  # the masked LM cannot see it
    assert {plan.routes[w] for w in plan.missing} == {"mlm"} and set(plan.missing.values()) == {NO_CANDIDATES_BEYOND}


def test_candidate_constraints_in_the_engine(tmp_path, tiny_vectors):
    """Antonyms and dissimilar words leave the list, the best K that pass stay (ranked from 0), and a
    word whose every candidate is filtered says so; without constraints nothing changes."""
    from tinyaug.augment.constraints import CandidateFilter
    from tinyaug.augment.engine import NO_CANDIDATES_FILTERED

    tok = make_tokenizer(tmp_path)
    words, vectors = tiny_vectors
    mlm = MaskedLMSource(fixed_logit_mlm(tok, SCORES), tok)
    text = "The movie was great"

    def plan(keep):
        augmenter = Augmenter(Recipe(candidates_per_word=2), tok, mlm, VectorSource(words, vectors), keep)
        planned = augmenter.plan([text])[0]
        return {w.text: [c.word for c in planned.candidates[i]] for i, w in enumerate(planned.words)}, planned

    plain, _ = plan(None)
    assert plain["great"] == ["movie", "good"]
    no_good, _ = plan(CandidateFilter(None, antonyms=lambda w: {"good"} if w == "great" else set()))
    assert no_good["great"] == ["movie", "film"] and no_good["movie"] == plain["movie"]
    class Everything:
        def __contains__(self, word):
            return True

    everything_out, planned = plan(CandidateFilter(None, antonyms=lambda w: Everything()))
    great = [w.text for w in planned.words].index("great")
    assert everything_out["great"] == [] and planned.missing[great] == NO_CANDIDATES_FILTERED
    similar, _ = plan(CandidateFilter(0.9, words, vectors))
    assert similar["movie"] == ["film"]  # the only candidate whose vector is near "movie"


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(),
                    reason="Debian's WordNet is not installed (apt-get install wordnet-base wordnet-sense-index)")
def test_wordnet_antonyms_through_nltk(tmp_path, monkeypatch):
    from tinyaug.pipelines.io.wordnet import load_antonyms

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path))
    load_antonyms.cache_clear()
    antonyms = load_antonyms()
    assert "bad" in antonyms("good") and "good" in antonyms("Bad") and "hate" in antonyms("love")
    assert antonyms("movie") == frozenset()
    assert (tmp_path / "nltk_data" / "corpora" / "wordnet" / "lexnames").read_text().startswith("00\tadj.all\t3\n")


def test_masks_per_context_a_sentence_is_masked_alike_whatever_is_planned_beside_it(tiny_tokenizer, tiny_model,
                                                                                    tiny_vectors):
    words, vectors = tiny_vectors
    composed, decomposed = "the na\u00efve actor was good", "the nai\u0308ve actor was good"
    # one sentence to the model; "naïve" is a word to replace only where its letters are composed
    assert tiny_tokenizer(composed)["input_ids"] == tiny_tokenizer(decomposed)["input_ids"]

    def plan(texts):
        source = MaskedLMSource(tiny_model, tiny_tokenizer, masks_per_context=2)
        return Augmenter(Recipe(masks_per_context=2), tiny_tokenizer, source, VectorSource(words, vectors)).plan(texts)

    alone, beside = plan([decomposed])[0], plan([composed, decomposed])[1]  # two examples in one batch, or not
    assert alone.routes == beside.routes == [None, None, "mlm", None, "mlm"]
    assert [[c.word for c in found] for found in beside.candidates] == \
        [[c.word for c in found] for found in alone.candidates]
