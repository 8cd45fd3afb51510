"""Finding the parts of a BERT-style encoder that TinyBERT distils.

Supported: models whose base model has ``embeddings`` and ``encoder.layer[i].attention.self``
with ``query`` / ``key`` projections (BERT, RoBERTa, XLM-R, ELECTRA, MiniLM checkpoints saved as
BERT). Anything else gets a clear error instead of an ``AttributeError`` deep in training.

Not here: loading models from disk.
"""

from __future__ import annotations

from torch import nn

from tinyaug.errors import InputError


def encoder_layers(model: nn.Module, who: str = "model") -> nn.ModuleList:
    """The Transformer layers of ``model`` (a task model or a bare encoder), in order."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(base, "embeddings"):
        raise InputError(f"the {who} ({type(model).__name__}) is not a BERT-style encoder "
                         "(embeddings + encoder.layer[i]); TinyBERT distillation supports BERT, "
                         "RoBERTa, ELECTRA and MiniLM-style models")
    return layers


def query_key(layer: nn.Module, who: str = "model") -> tuple[nn.Module, nn.Module, int]:
    """``(query, key, num_heads)`` of one encoder layer's self-attention."""
    attention = getattr(getattr(layer, "attention", None), "self", None)
    query, key = getattr(attention, "query", None), getattr(attention, "key", None)
    heads = getattr(attention, "num_attention_heads", None)
    if query is None or key is None or heads is None:
        raise InputError(f"the {who}'s layers ({type(layer).__name__}) have no "
                         "attention.self.query/key projections; TinyBERT's attention loss needs a "
                         "BERT-style self-attention (or set the attention weight to 0)")
    return query, key, int(heads)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters stage 1 does not train: everything outside embeddings and encoder layers
    (the pooler and the classifier)."""
    base = getattr(model, "base_model", model)
    keep = {id(p) for part in (base.embeddings, base.encoder) for p in part.parameters()}
    return [p for p in model.parameters() if id(p) not in keep]
