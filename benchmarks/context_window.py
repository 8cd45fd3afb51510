"""Measure a context window around the masked word against the whole sentence, on long GLUE text.

A way to compute less that the throughput issue suggests: the masked LM sees only the W pieces
around the masked word (centred, shifted to stay inside the sentence) instead of the whole
sentence. For the masked-LM words of a seeded sample of RTE dev premises (the longest GLUE
sentences here) the script reports, per window, the share of the whole-sentence top-K kept, the
share of identical lists, the tokens fed to the model and the time, as a markdown table (docs/
throughput.md quotes it). Only a measurement: tinyaug has no such option (it kept less agreement
per unit of speed than ``--masks-per-context``).

Usage: python benchmarks/context_window.py [--mlm starter] [--data-dir ../shared/glue] [--sentences 120]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyaug.augment.engine import Augmenter
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Query
from tinyaug.augment.vectors import VectorSource
from tinyaug.pipelines.io.models import load_masked_lm
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.vectors import load_vectors


def windowed(query: Query, window: int | None) -> Query:
    """``query`` with only the ``window`` pieces around its word (the whole sentence when shorter).

    >>> windowed(Query("d", tuple(range(10)), 3), 4)
    Query(word='d', pieces=(1, 2, 3, 4), position=2, sentence_positions=())
    >>> windowed(Query("j", tuple(range(10)), 9), 4).position
    3
    """
    if window is None or len(query.pieces) <= window:
        return query
    start = min(max(0, query.position - window // 2), len(query.pieces) - window)
    return Query(query.word, query.pieces[start:start + window], query.position - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlm", default="starter")
    parser.add_argument("--data-dir", default="../shared/glue")
    parser.add_argument("--sentences", type=int, default=120, help="RTE dev premises")
    parser.add_argument("--windows", default="16,24,32,48,64", help="pieces around the masked word")
    parser.add_argument("-k", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_masked_lm(args.mlm, "cpu")
    vectors = load_vectors()
    table = load_input(task="rte", data_dir=args.data_dir, split="dev")
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(table.dataset), size=min(args.sentences, len(table.dataset)), replace=False)
    texts = [table.dataset[int(r)]["sentence1"] for r in sorted(rows.tolist())]
    source = MaskedLMSource(loaded.model, loaded.tokenizer, batch_size=64)
    router = Augmenter(Recipe(), loaded.tokenizer, source, VectorSource(vectors.words, vectors.vectors))
    queries = [q for *_, q in router.route_words(texts)[0]]

    def run(window: int | None, masks: int = 1) -> tuple[list, float, int]:
        asked = [windowed(q, window) for q in queries]
        source.masks_per_context = masks
        tokens, start = source.tokens_run, time.perf_counter()
        found = source.candidates(asked, args.k)
        return found, time.perf_counter() - start, source.tokens_run - tokens

    whole, whole_s, whole_tokens = run(None)
    print(f"masked LM: {loaded.identifier}; {len(queries)} masked-LM words from {len(texts)} RTE dev premises "
          f"({np.mean([len(q.pieces) for q in queries]):.0f} pieces on average per word's sentence); K={args.k}\n")
    print("| window (pieces) | top-K kept | identical lists | tokens, share of whole | seconds | speed-up |")
    print("|---|---|---|---|---|---|")
    print(f"| whole sentence | 100% | 100% | 1.00 | {whole_s:.1f} | 1x |")
    rows = [(str(w), run(w)) for w in (int(w) for w in args.windows.split(","))]
    rows.append(("whole sentence, two words masked per context (`--masks-per-context 2`, for comparison)", run(None, 2)))
    for label, (found, seconds, tokens) in rows:
        kept = sum(len({c.word for c in a} & {c.word for c in b}) for a, b in zip(whole, found))
        kept /= max(1, sum(len(a) for a in whole))
        same = np.mean([[c.word for c in a] == [c.word for c in b] for a, b in zip(whole, found)])
        print(f"| {label} | {100 * kept:.1f}% | {100 * same:.1f}% | {tokens / whole_tokens:.2f} | {seconds:.1f} | "
              f"{whole_s / seconds:.2f}x |")


if __name__ == "__main__":
    main()
