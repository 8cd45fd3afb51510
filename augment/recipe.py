"""The recipe: every knob that changes which rows come out, validated once.

A recipe is stored in each output dataset's metadata, so any dataset says how it was made:

    >>> Recipe(variants_per_example=5, seed=3).to_dict()["variants_per_example"]
    5
    >>> Recipe.from_dict(Recipe().to_dict()) == Recipe()
    True

Not here: model and vector identifiers (the pipeline records those beside the recipe).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from tinyaug.errors import TinyaugError
from tinyaug.tasks import TASKS

ContextMode = Literal["masked", "pair"]
CONTEXT_MODES: tuple[ContextMode, ...] = ("masked", "pair")

PairMode = Literal["each", "all"]
PAIR_MODES: tuple[PairMode, ...] = ("each", "all")

# N per task in the reference script (the paper says N=20 for every task; ``tinyaug.tasks``)
REFERENCE_VARIANTS = {name: task.reference_n for name, task in TASKS.items()}


_LATER_DEFAULTS = {"min_similarity": None, "exclude_antonyms": False, "method": "tinybert", "masks_per_context": 1}


class RecipeError(TinyaugError, ValueError):
    """One or more recipe values are out of range; the message lists them all."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to augment: the paper's defaults (N=20, K=15, p=0.4)."""

    variants_per_example: int = 20  # N: draws per example (per text column in pair mode "each")
    candidates_per_word: int = 15  # K: candidates kept per word
    replace_prob: float = 0.4  # p: chance that an eligible word is replaced in a draw
    seed: int = 0  # with the example id, seeds each example's generator
    mlm_context: ContextMode = "masked"  # "masked" sentence, or the reference's "pair"
    pair_mode: PairMode = "each"  # "each": vary one text column at a time; "all": all at once
    max_length: int | None = None  # model positions per masked context; None: the model's max
    min_similarity: float | None = None  # keep candidates at least this similar (word vectors) to the word
    exclude_antonyms: bool = False  # drop candidates that are WordNet antonyms of the word
    method: str = "tinybert"  # the augmentation method, by name (``tinyaug.augment.methods``)
    masks_per_context: int = 1  # words of a sentence masked together in one masked-LM context (1: the paper's)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.variants_per_example, int) or self.variants_per_example < 0:
            problems.append(f"variants_per_example must be an integer >= 0, got {self.variants_per_example!r}")
        if not isinstance(self.candidates_per_word, int) or self.candidates_per_word < 1:
            problems.append(f"candidates_per_word must be an integer >= 1, got {self.candidates_per_word!r}")
        if not 0.0 <= float(self.replace_prob) <= 1.0:
            problems.append(f"replace_prob must be between 0 and 1, got {self.replace_prob!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.mlm_context not in CONTEXT_MODES:
            problems.append(f"mlm_context must be one of {', '.join(CONTEXT_MODES)}, got {self.mlm_context!r}")
        if self.min_similarity is not None and not -1.0 <= float(self.min_similarity) <= 1.0:
            problems.append(f"min_similarity must be a cosine between -1 and 1, got {self.min_similarity!r}")
        if self.pair_mode not in PAIR_MODES:
            problems.append(f"pair_mode must be one of {', '.join(PAIR_MODES)}, got {self.pair_mode!r}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 8):
            problems.append(f"max_length must be an integer >= 8, got {self.max_length!r}")
        if not isinstance(self.masks_per_context, int) or self.masks_per_context < 1:
            problems.append(f"masks_per_context must be an integer >= 1, got {self.masks_per_context!r}")
        if not isinstance(self.method, str) or not self.method.strip():
            problems.append(f"method must be a method's name, e.g. tinybert, got {self.method!r}")
        if problems:
            raise RecipeError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Every field; the candidate constraints and the method only when not the defaults, so that
        a recipe without them has the same record (and the same resume key) as before they existed."""
        data = dataclasses.asdict(self)
        for name in _LATER_DEFAULTS:
            if data[name] == _LATER_DEFAULTS[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"unknown recipe fields: {', '.join(unknown)}")
        return cls(**data)
