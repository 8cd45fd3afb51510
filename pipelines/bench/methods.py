"""``tinyaug bench-methods``: each augmentation method's rate on one slice, side by side.

Every method runs on the same SST-2 rows with the same recipe, in this process, on the threads
given (one by default: the rate of one core), after a warm-up on the first rows (WordNet read,
the vocabulary built, caches filled). The rate is source sentences per second through
``Method.augment`` (planning, sampling, rendering, provenance; not writing Arrow), on a first
pass and on a second pass over the same rows (``synonyms`` and ``eda`` then find every word's
WordNet look-up cached, as a long run does where words repeat; the rows must be the same), with
rows out and edits per variant beside it.

Not here: the masked LM's throughput against the machine (``run``), the engines (``engines``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from tinyaug.augment.engine import Example
from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.methods import MethodModels, build_method, models_needed

WARM_UP = 100  # rows run once before the clock starts


def bench_methods(texts: Sequence[str], methods: Sequence[str], recipe: Recipe, load_models: Any,
                  threads: int = 1) -> list[dict[str, Any]]:
    """One result per method: ``{"method", "sentences", "seconds", "sentences_per_s", "rows_out",
    "edits_per_variant", "threads"}``. ``load_models(needed)`` returns ``MethodModels`` with the
    masked LM and vectors in ``needed`` (``models_needed``) loaded."""
    import dataclasses

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    examples = [Example(i, (text,)) for i, text in enumerate(texts)]
    results = []
    try:
        for name in methods:
            chosen = dataclasses.replace(recipe, method=name)
            models: MethodModels = load_models(models_needed(chosen))
            method = build_method(chosen, models, batch_size=64)
            method.augment(examples[:WARM_UP])
            start = time.perf_counter()
            variants, stats = method.augment(examples)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            again, _ = method.augment(examples)  # every word's look-ups cached: a long run's steady state
            warm = time.perf_counter() - start
            assert again == variants, f"{name}: a second pass gave other rows"
            drawn = stats.rows_out - stats.examples
            results.append({"method": name, "sentences": len(examples), "seconds": round(seconds, 3),
                            "sentences_per_s": round(len(examples) / seconds, 1),
                            "warm_sentences_per_s": round(len(examples) / warm, 1), "rows_out": stats.rows_out,
                            "edits_per_variant": round(sum(stats.edit_kinds.values()) / drawn, 2) if drawn else 0.0,
                            "threads": threads})
    finally:
        torch.set_num_threads(before)
    return results


def format_methods(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of ``bench_methods``' results."""
    lines = ["| method | sentences | seconds | sentences/s | sentences/s, second pass | rows out | edits per variant |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['method']}` | {r['sentences']:,} | {r['seconds']:.2f} | {r['sentences_per_s']:,.0f} | "
              f"{r['warm_sentences_per_s']:,.0f} | {r['rows_out']:,} | {r['edits_per_variant']:.2f} |" for r in results]
    threads = results[0]["threads"] if results else 1
    return "\n".join(lines) + f"\n\n(one process, {threads} torch thread{'s' if threads != 1 else ''})"
