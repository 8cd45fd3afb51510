"""Measure the two masked-LM contexts ("masked" alone vs the reference's "pair") on GLUE dev text.

For the eligible single-piece words of a seeded sample of dev sentences, both contexts give
top-K candidates; the script reports, per context:
- cost: tokens fed to the model and seconds;
- closeness in meaning: the mean GloVe cosine between the original word and its candidates,
  and the share of candidates among the original's 50 nearest GloVe neighbours;
- how much the two lists agree.
It prints a markdown table (the README quotes it).

Usage: python benchmarks/context_modes.py [--mlm starter] [--data-dir ../shared/glue] [--sentences 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyaug.augment.engine import Augmenter
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.vectors import VectorSource
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.models import load_masked_lm
from tinyaug.pipelines.io.vectors import load_vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlm", default="starter")
    parser.add_argument("--data-dir", default="../shared/glue")
    parser.add_argument("--sentences", type=int, default=300, help="per task (SST-2, MRPC)")
    parser.add_argument("-k", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_masked_lm(args.mlm, "cpu")
    vectors = load_vectors()
    glove = VectorSource(vectors.words, vectors.vectors)
    texts = []
    for task in ("sst2", "mrpc"):
        table = load_input(task=task, data_dir=args.data_dir, split="dev")
        rng = np.random.default_rng(args.seed)
        rows = rng.choice(len(table.dataset), size=min(args.sentences, len(table.dataset)), replace=False)
        for r in sorted(rows.tolist()):
            texts.extend(table.dataset[r][c] for c in table.text_columns)
    router = Augmenter(Recipe(), loaded.tokenizer, MaskedLMSource(loaded.model, loaded.tokenizer), glove)
    mlm_queries, _, _ = router.route_words(texts)
    queries = [q for *_, q in mlm_queries]
    neighbours = {q.word: {c.word for c in glove.candidates([q], 50)[0]} for q in queries}
    results = {}
    for context in ("masked", "pair"):
        source = MaskedLMSource(loaded.model, loaded.tokenizer, context=context, batch_size=64)
        start = time.perf_counter()
        found = source.candidates(queries, args.k)
        seconds = time.perf_counter() - start
        cosines, near = [], []
        for q, cands in zip(queries, found):
            row = glove.lookup(q.word)
            for c in cands:
                other = glove.lookup(c.word)
                if row is not None and other is not None:
                    a, b = vectors.vectors[row], vectors.vectors[other]
                    cosines.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
                near.append(c.word in neighbours[q.word])
        results[context] = (found, seconds, source.tokens_run, float(np.mean(cosines)), float(np.mean(near)))
    overlap = np.mean([len({c.word for c in a} & {c.word for c in b}) / max(1, len(a))
                       for a, b in zip(results["masked"][0], results["pair"][0])])
    print(f"masked LM: {loaded.identifier}; {len(queries)} masked words from {len(texts)} SST-2/MRPC dev sentences; K={args.k}\n")
    print("| context | tokens | seconds | mean GloVe cosine to the original | candidates among its 50 GloVe neighbours |")
    print("|---|---|---|---|---|")
    for context, (_, seconds, tokens, cosine, near) in results.items():
        print(f"| {context} | {tokens} | {seconds:.1f} | {cosine:.3f} | {100 * near:.1f}% |")
    print(f"\ntop-{args.k} overlap between the two contexts: {100 * overlap:.1f}%")
    for q, a, b in list(zip(queries, results["masked"][0], results["pair"][0]))[:: max(1, len(queries) // 6)][:6]:
        print(f"\n{q.word}:\n  masked: {', '.join(c.word for c in a[:8])}\n  pair:   {', '.join(c.word for c in b[:8])}")


if __name__ == "__main__":
    main()
