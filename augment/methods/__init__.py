"""Augmentation methods behind one protocol, chosen by name.

- ``tinybert`` (the default): TinyBERT's recipe, a masked LM's and word vectors' candidates
  (``tinyaug.augment.engine.Augmenter``);
- ``synonyms``: WordNet synonyms at TinyBERT's positions and rate (``synonyms``);
- ``eda``: EDA's four operations, ``eda:swap`` or ``eda:swap=0.2,delete=0.1`` for some (``eda``);
- ``random``: random vocabulary words at TinyBERT's positions and rate, the control (``random_words``);
- ``A+B+...``: a composition, B editing A's variants further (``compose``).

A method is one class in one module plus one line in ``METHODS`` below: its name, the resources
it needs (``tinybert``'s models, a ``vocabulary``, ``wordnet`` synonyms) for the pipelines to
load, and how to build it from the recipe, its options and those resources.

    >>> parse_method("tinybert+eda:swap=0.2")
    [('tinybert', {}), ('eda', {'swap': 0.2})]
    >>> sorted(needs(parse_method("random+eda:swap")))
    ['vocabulary']

Not here: loading the resources (``tinyaug.pipelines.augmentation.methods``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from tinyaug.augment.methods.base import Method, Skip, Substitution, WordMethod
from tinyaug.augment.methods.compose import Compose
from tinyaug.augment.methods.eda import DEFAULT_ALPHA, NEEDS_SYNONYMS, OPERATIONS, Eda
from tinyaug.augment.methods.random_words import RandomWords
from tinyaug.augment.methods.synonyms import Synonyms
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import TinyaugError

DEFAULT_METHOD = "tinybert"
Options = dict[str, float]
Resources = Mapping[str, Any]  # "tinybert": an Augmenter, "vocabulary": words, "wordnet": lookup, "filter": CandidateFilter


class MethodError(TinyaugError, ValueError):
    """An unknown method, an option a method does not take, or a composition that cannot be built."""


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    needs: Callable[[Options], set[str]]  # the resources it needs, given its options
    build: Callable[[Recipe, Options, Resources, int], Method]  # (recipe, options, resources, step)
    options: tuple[str, ...] = ()  # the option names it takes (values: a float, or none)
    default: float | None = None  # an option's value when given without one


def _tinybert(recipe: Recipe, options: Options, resources: Resources, step: int) -> Method:
    return resources["tinybert"]


def _eda_alphas(options: Options) -> Options:
    return {op: (value if value is not None else DEFAULT_ALPHA) for op, value in options.items()} or \
        {op: DEFAULT_ALPHA for op in OPERATIONS}


METHODS: dict[str, MethodInfo] = {
    "tinybert": MethodInfo(lambda o: {"tinybert"}, _tinybert),
    "synonyms": MethodInfo(lambda o: {"wordnet"}, lambda r, o, res, s: Synonyms(r, res["wordnet"], s, res.get("filter"))),
    "eda": MethodInfo(lambda o: {"wordnet"} if NEEDS_SYNONYMS & set(_eda_alphas(o)) else set(),
                      lambda r, o, res, s: Eda(r, _eda_alphas(o), res.get("wordnet"), s, res.get("filter")),
                      OPERATIONS, DEFAULT_ALPHA),
    "random": MethodInfo(lambda o: {"vocabulary"},
                         lambda r, o, res, s: RandomWords(r, res["vocabulary"], s, res.get("filter"))),
}


def parse_method(spec: str) -> list[tuple[str, Options]]:
    """``"tinybert+eda:swap=0.2,delete"`` -> ``[("tinybert", {}), ("eda", {"swap": 0.2, "delete": None})]``,
    checked against ``METHODS``: every problem in one line."""
    steps = []
    for part in (spec or "").split("+"):
        name, _, rest = part.strip().partition(":")
        name = name.strip().lower()
        if name not in METHODS:
            raise MethodError(f"unknown method {name!r}; choose from {', '.join(METHODS)} "
                              f"(or several joined by +, e.g. tinybert+eda:swap)")
        options: Options = {}
        for item in filter(None, (i.strip() for i in rest.split(","))):
            key, equals, value = item.partition("=")
            if key not in METHODS[name].options:
                takes = f"takes {', '.join(METHODS[name].options)}" if METHODS[name].options else "takes no options"
                raise MethodError(f"method {name} has no option {key!r}: it {takes}")
            try:
                options[key] = float(value) if equals else None
            except ValueError:
                raise MethodError(f"{name}:{item}: {value!r} is not a number (e.g. {key}=0.1)") from None
            if options[key] is not None and not 0 < options[key] <= 1:
                raise MethodError(f"{name}:{item}: the rate must be in (0, 1]")
        steps.append((name, options))
    for name, _ in steps[1:]:
        if name == "tinybert":
            raise MethodError("tinybert can only be the first step of a composition (it plans a batch "
                              "through its models): write tinybert+OTHER")
    return steps


def needs(steps: list[tuple[str, Options]]) -> set[str]:
    """The resources a parsed method needs (the pipelines load only these)."""
    return set().union(*(METHODS[name].needs(options) for name, options in steps))


def build_method(steps: list[tuple[str, Options]], recipe: Recipe, resources: Resources) -> Method:
    """The method ``steps`` name, built from loaded ``resources``."""
    methods = [METHODS[name].build(recipe, options, resources, s) for s, (name, options) in enumerate(steps)]
    if len(methods) == 1:
        return methods[0]
    later = methods[1:]
    assert all(isinstance(m, WordMethod) for m in later)
    return Compose(methods[0], later, recipe.seed)  # type: ignore[arg-type]


def method_name(steps: list[tuple[str, Options]]) -> str:
    """The canonical spelling of a parsed method (recorded in the recipe, the run key and the
    card): options in the method's own order, exact values, defaults left out, so that spellings
    that draw the same rows are one name.

    >>> method_name(parse_method("eda:delete,swap=0.1")), method_name(parse_method("EDA:synonym,insert,swap,delete"))
    ('eda:swap,delete', 'eda')
    """
    def one(name: str, options: Options) -> str:
        order = METHODS[name].options
        default = METHODS[name].default
        chosen = {k: (None if v == default else v) for k, v in sorted(options.items(), key=lambda kv: order.index(kv[0]))}
        if not chosen or (set(chosen) == set(order) and all(v is None for v in chosen.values())):
            return name
        return name + ":" + ",".join(k if v is None else f"{k}={v!r}" for k, v in chosen.items())
    return "+".join(one(*step) for step in steps)


__all__ = ["DEFAULT_METHOD", "METHODS", "Method", "MethodError", "MethodInfo", "Skip", "Substitution", "WordMethod",
           "build_method", "method_name", "needs", "parse_method"]
