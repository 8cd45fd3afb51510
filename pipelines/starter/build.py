"""``build_starter``: train the starter masked LM, write its artifact, and measure it.

The one module that joins training (``train``), the artifact (``artifact``) and the evaluation
(``evaluate``), so that none of those imports another in a circle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable


from tinyaug.errors import InputError
from tinyaug.pipelines.starter.recipe import (STARTER_MLM_ID, RESOURCE_DIR, DEFAULT_WORDNET_DIR, StarterRecipe)
from tinyaug.pipelines.starter.train import train_starter
from tinyaug.pipelines.starter.artifact import write_artifact, read_manifest, load_starter_mlm

logger = logging.getLogger(__name__)


def build_starter(glue_dir: Path, wordnet_dir: Path | None = DEFAULT_WORDNET_DIR,
                  out_dir: Path = RESOURCE_DIR, recipe: StarterRecipe = StarterRecipe(),
                  evaluate: bool = True, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The whole recipe: train, write the artifact to ``out_dir``, evaluate it, record the figures.

    Returns the manifest; ``progress(what, done, total)`` hears each training step.
    """
    if not recipe.wordnet:
        wordnet_dir = None
    elif wordnet_dir is None or not (Path(wordnet_dir) / "data.noun").is_file():
        raise InputError(f"WordNet data files not found in {wordnet_dir}; install them with "
                         "`apt-get install wordnet-base` or pass --no-wordnet (a different recipe)")
    model, report = train_starter(recipe, glue_dir, wordnet_dir, progress=progress)
    manifest = write_artifact(model, recipe, report, out_dir)
    if evaluate:
        from tinyaug.pipelines.starter import evaluate as mlm_eval

        loaded, tokenizer = load_starter_mlm("cpu", out_dir)
        result = mlm_eval.evaluate_mlm(loaded, tokenizer, glue_dir, mlm_eval.EvalSettings(), STARTER_MLM_ID)
        mlm_eval.record_in_manifest(result, out_dir)
        manifest = read_manifest(out_dir)
    return manifest
