"""Build an augmentation method from its name: load what it needs, nothing more.

``tinyaug.augment.methods`` names the methods and the resources each needs; this module loads
those resources (the masked LM's engine for ``tinybert``, a vocabulary from the word vectors for
``random``, WordNet's synonyms for ``synonyms`` and ``eda``, and the candidate constraints every
method that proposes words shares) and builds the method. ``load_models`` loads the models a
method needs from their names (``ModelSpec``: the command line's model options); the command
line, the Python API and the Ray actors all load through it and call ``build_method`` with the
same arguments, so they build the same method.

Not here: the methods (``tinyaug.augment.methods``), loading the models (``tinyaug.pipelines.io``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tinyaug.augment.constraints import CandidateFilter
from tinyaug.augment.engine import Augmenter
from tinyaug.augment.methods import Method, build_method as build_from_resources, needs, parse_method
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.stopwords import STOPWORDS
from tinyaug.augment.vectors import VectorSource
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.vectors import LoadedVectors

VOCABULARY_SIZE = 20_000  # the random method's words: the vectors' most frequent plain words


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The models by name, as the command line's model options give them (picklable: a Ray
    actor loads its own from these)."""

    mlm: str
    vectors: str
    vectors_format: str = "auto"
    trust_pickle: bool = False
    precision: str = "fp32"
    backend: str = "torch"  # the masked LM's: torch or onnxruntime


@dataclasses.dataclass(frozen=True)
class MethodModels:
    """What the pipelines loaded for a method: ``None`` where the method does not need it."""

    mlm: LoadedMLM | None
    vectors: LoadedVectors | None

    def identifiers(self) -> dict[str, str]:
        """The run key's and the card's record of the models (only those loaded)."""
        out = {}
        if self.mlm is not None:
            out["mlm"] = self.mlm.identifier
        if self.vectors is not None:
            out["vectors"] = self.vectors.identifier
        return out


def models_needed(recipe: Recipe) -> set[str]:
    """Which of the masked LM and the word vectors ``recipe``'s method needs: ``tinybert`` both;
    ``random`` the vectors (its vocabulary); any method the vectors for ``--min-similarity``."""
    want = needs(parse_method(recipe.method))
    models = {"mlm", "vectors"} if "tinybert" in want else set()
    if "vocabulary" in want or recipe.min_similarity is not None:
        models.add("vectors")
    return models


def load_models(spec: ModelSpec, device: str, needed: set[str] | frozenset[str]) -> MethodModels:
    """The masked LM (on ``device``, at ``spec.precision``, run by ``spec.backend``) and the word
    vectors, each only if ``needed`` (``models_needed``), else None."""
    from tinyaug.pipelines.io.models import at_precision, load_masked_lm
    from tinyaug.pipelines.io.onnx_runtime import backend_device, load_by_name
    from tinyaug.pipelines.io.vectors import load_vectors

    mlm = None
    if "mlm" in needed:
        target = str(backend_device(spec.backend, device, spec.precision))  # before a model is read
        mlm = at_precision(load_masked_lm(spec.mlm, target), spec.precision) if spec.backend == "torch" \
            else load_by_name(spec.mlm, spec.precision)  # from the cached graph alone when it can
    vectors = load_vectors(spec.vectors, spec.vectors_format, allow_pickle=spec.trust_pickle) \
        if "vectors" in needed else None
    return MethodModels(mlm, vectors)


def check_resources(recipe: Recipe) -> None:
    """Fail now, in one line, if a resource the method needs that no model provides is missing
    (WordNet): before any input is read, model loaded or output written."""
    if "wordnet" in needs(parse_method(recipe.method)):
        from tinyaug.pipelines.io.wordnet import load_synonyms

        load_synonyms()


def vocabulary(words: list[str], size: int = VOCABULARY_SIZE) -> list[str]:
    """The first ``size`` plain words of a frequency-ordered list: ASCII letters, two or more,
    lower case, not stopwords.

    >>> vocabulary(["the", "movie", "a", "U.S.", "Film", "film", "good"], 2)
    ['movie', 'film']
    """
    out: list[str] = []
    for word in words:
        if len(word) > 1 and word.isascii() and word.isalpha() and word.islower() and word not in STOPWORDS:
            out.append(word)
            if len(out) == size:
                break
    return out


def candidate_filter(recipe: Recipe, vectors: LoadedVectors | None) -> CandidateFilter:
    """The recipe's candidate constraints (WordNet read only if the recipe asks)."""
    antonyms = None
    if recipe.exclude_antonyms:
        from tinyaug.pipelines.io.wordnet import load_antonyms

        antonyms = load_antonyms()
    words = vectors.words if vectors is not None else None
    matrix = vectors.vectors if vectors is not None else None
    return CandidateFilter(recipe.min_similarity, words, matrix, antonyms=antonyms)


def build_augmenter(recipe: Recipe, mlm: LoadedMLM, vectors: LoadedVectors, batch_size: int) -> Augmenter:
    """TinyBERT's engine for ``recipe`` over loaded models (the ``tinybert`` method)."""
    mlm_source = MaskedLMSource(mlm.model, mlm.tokenizer, context=recipe.mlm_context,
                                batch_size=batch_size, max_length=recipe.max_length, forward=mlm.forward,
                                masks_per_context=recipe.masks_per_context)
    return Augmenter(recipe, mlm.tokenizer, mlm_source, VectorSource(vectors.words, vectors.vectors),
                     candidate_filter(recipe, vectors))


def build_method(recipe: Recipe, models: MethodModels, batch_size: int) -> Method:
    """The method ``recipe.method`` names, over ``models``."""
    steps = parse_method(recipe.method)
    want = needs(steps)
    resources: dict[str, Any] = {"filter": candidate_filter(recipe, models.vectors)}
    if "tinybert" in want:
        assert models.mlm is not None and models.vectors is not None
        resources["tinybert"] = build_augmenter(recipe, models.mlm, models.vectors, batch_size)
    if "vocabulary" in want:
        assert models.vectors is not None
        resources["vocabulary"] = vocabulary(models.vectors.words)
    if "wordnet" in want:
        from tinyaug.pipelines.io.wordnet import load_synonyms

        resources["wordnet"] = load_synonyms()
    return build_from_resources(steps, recipe, resources)
