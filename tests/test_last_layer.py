"""The last encoder layer computed at the masked positions only equals the full forward."""

import pytest
import torch

from tinyaug.augment.last_layer import LastLayerAtPositions
from tinyaug.augment.mlm import MaskedLMSource, MaskedPositionLogits
from tinyaug.augment.sources import Query

TEXTS = ["the movie was great", "a charming surprise", "the cat sat and the dog barked loudly",
         "she said the plot was boring", "great"]


def _roberta(tokenizer):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(1)
    return RobertaForMaskedLM(RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3,
                                            num_attention_heads=4, intermediate_size=40,
                                            max_position_embeddings=40, pad_token_id=1)).eval()


def _bert(tokenizer, layers):
    from conftest import make_mlm

    return make_mlm(tokenizer, layers=layers, seed=3)


@pytest.mark.parametrize("layers", [1, 3])
def test_partial_last_layer_equals_the_full_encoder(tiny_tokenizer, layers):
    model = _bert(tiny_tokenizer, layers)
    runner = LastLayerAtPositions.of(model.bert)
    assert runner is not None
    ids = torch.tensor([[2, 10, 11, 4, 12, 3], [2, 13, 4, 15, 16, 3], [2, 4, 10, 11, 12, 3]])  # [CLS] ... [SEP]
    types = torch.tensor([[0, 0, 0, 0, 1, 1]] * 3)
    at = torch.tensor([3, 2, 1])
    with torch.inference_mode():
        full = model.bert(input_ids=ids, token_type_ids=types).last_hidden_state[torch.arange(3), at]
        partial = runner(ids, types, at)
    assert partial.shape == (3, 32)
    torch.testing.assert_close(partial, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("context", ["masked", "pair"])
@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_candidates_and_scores_equal_the_full_forward(tiny_tokenizer, context, kind):
    model = _bert(tiny_tokenizer, 3) if kind == "bert" else _roberta(tiny_tokenizer)
    queries = []
    for text in TEXTS:
        ids = tuple(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
        queries += [Query(tiny_tokenizer.convert_ids_to_tokens(i), ids, p) for p, i in enumerate(ids)]
    fast = MaskedLMSource(model, tiny_tokenizer, context=context, batch_size=8)
    assert fast.partial_last_layer
    plain = MaskedLMSource(model, tiny_tokenizer, context=context, batch_size=8)
    plain.forward = MaskedPositionLogits(model, whole=True)  # the whole model, logits at every position
    got, want = fast.candidates(queries, 6), plain.candidates(queries, 6)
    assert [[c.word for c in row] for row in got] == [[c.word for c in row] for row in want]
    for a, b in zip(got, want):
        assert [c.score for c in a] == pytest.approx([c.score for c in b], rel=1e-4, abs=1e-7)


def test_unknown_layer_kinds_run_the_whole_model(tiny_tokenizer):
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tiny_tokenizer), dim=16, n_layers=1, n_heads=2,
                                                   hidden_dim=20, max_position_embeddings=32)).eval()
    assert LastLayerAtPositions.of(model.distilbert) is None
    source = MaskedLMSource(model, tiny_tokenizer)
    assert not source.partial_last_layer
    ids = tuple(tiny_tokenizer("the movie was great", add_special_tokens=False)["input_ids"])
    assert len(source.candidates([Query("movie", ids, 1)], 3)[0]) == 3


def test_relative_positions_and_decoders_are_not_recognised(tiny_tokenizer):
    model = _bert(tiny_tokenizer, 2)
    model.bert.config.position_embedding_type = "relative_key"
    assert LastLayerAtPositions.of(model.bert) is None
    model.bert.config.position_embedding_type = "absolute"
    model.bert.config.is_decoder = True
    assert LastLayerAtPositions.of(model.bert) is None


def test_several_positions_per_row_equal_the_full_encoder(tiny_tokenizer):
    model = _bert(tiny_tokenizer, 3)
    runner = LastLayerAtPositions.of(model.bert)
    ids = torch.tensor([[2, 4, 11, 4, 12, 3], [2, 13, 4, 15, 16, 3]])
    rows, at = torch.tensor([0, 0, 1]), torch.tensor([1, 3, 2])  # two masked words in row 0
    with torch.inference_mode():
        full = model.bert(input_ids=ids).last_hidden_state[rows, at]
        partial = runner(ids, None, at, rows)
    torch.testing.assert_close(partial, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("masks", [2, 3])
def test_masks_per_context_fewer_contexts_same_answers_for_any_batch(tiny_tokenizer, masks):
    from tinyaug.augment.mlm import spread

    model = _bert(tiny_tokenizer, 3)
    queries = []
    for text in TEXTS:
        ids = tuple(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
        queries += [Query(tiny_tokenizer.convert_ids_to_tokens(i), ids, p) for p, i in enumerate(ids)]
    one = MaskedLMSource(model, tiny_tokenizer, batch_size=8)
    fast = MaskedLMSource(model, tiny_tokenizer, batch_size=8, masks_per_context=masks)
    plain = MaskedLMSource(model, tiny_tokenizer, batch_size=1, masks_per_context=masks)
    plain.forward = MaskedPositionLogits(model, whole=True)  # the whole model, logits at every position
    want, got, unbatched = one.candidates(queries, 5), fast.candidates(queries, 5), plain.candidates(queries, 5)
    words = lambda rows: [[c.word for c in row] for row in rows]  # noqa: E731
    assert words(got) == words(unbatched)  # batch size and the partial last layer change nothing
    assert fast.predictions_run == one.predictions_run == one.contexts_run == len({(q.pieces, q.position) for q in queries})
    expected = sum(len(spread(sorted({q.position for q in queries if q.pieces == p}), masks))
                   for p in {q.pieces for q in queries})
    assert fast.contexts_run == expected < one.contexts_run
    scores = lambda rows: [[round(c.score, 6) for c in row] for row in rows]  # noqa: E731
    assert scores(got) != scores(want)  # other words masked around a word change its scores
    for text in TEXTS:  # a sentence's words are masked together only when far enough apart
        for positions in spread(list(range(len(text.split()))), masks):
            assert all(b - a >= 2 for a, b in zip(positions, positions[1:])) or len(positions) == 1


def test_spread_never_masks_neighbours_together():
    from tinyaug.augment.mlm import spread

    assert spread([0, 2, 3, 5, 7], 2) == [(0, 5), (2, 7), (3,)]
    assert spread([1, 4], 3) == [(1,), (4,)] and spread([5], 4) == [(5,)] and spread([], 2) == []
    for n in range(1, 30):
        for masks in (1, 2, 3, 4):
            contexts = spread(list(range(n)), masks)
            assert sorted(p for c in contexts for p in c) == list(range(n))
            assert all(len(c) <= masks for c in contexts)
            assert all(b - a >= 2 for c in contexts for a, b in zip(c, c[1:]))
