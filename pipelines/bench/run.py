"""The benchmark run: augmentation throughput, measured against the machine and the naive way.

One run augments a fixed, seeded slice of SST-2 and MRPC train with a bert-base-sized masked LM
(12 layers, 768 wide, the bert-base-uncased vocabulary; random weights built locally, since
timing does not need trained ones) and GloVe 6B 50d, through the real pipeline, and reports:

- sentences/s and masked predictions/s end to end, and for the masked-LM stage alone;
- the masked-LM stage's GFLOP/s, counted analytically from the model shape and the real token
  counts, next to the machine's dense fp32 matmul GFLOP/s measured in the same run;
- a naive mode on a subset (one masked sentence per forward, batch 1, logits at every position,
  one brute-force float64 vector scan with a full sort per word, as the reference does it),
  whether its candidate lists are identical, and the speed-up over it;
- each stage's share of the time, peak memory, the share of masked contexts saved by
  de-duplication, and for reduced-precision modes their speed and their agreement with fp32.

Not a test: the figures depend on the machine; tests check the optimisations' correctness.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tinyaug.augment.engine import Augmenter, Example, Stats, TextPlan
from tinyaug.augment.mlm import RANK_MARGIN, MaskedLMSource, MaskedPositionLogits
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Candidate, Query
from tinyaug.augment.vectors import VectorSource
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table
from tinyaug.pipelines.bench.machine import matmul_gflops, product_rate
from tinyaug.pipelines.io.tables import InputTable, load_input
from tinyaug.pipelines.io.cpu import cpu_info, describe as describe_cpu, kernel_cap
from tinyaug.pipelines.bench.modes import REFERENCE, copy_as, identical, label, other_modes, overlap, skip_reason
from tinyaug.pipelines.io.models import LoadedMLM, load_masked_lm, resolve_device
from tinyaug.pipelines.io.vectors import LoadedVectors, load_vectors

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BenchConfig:
    sst2_rows: int = 400
    mrpc_rows: int = 100
    naive_fraction: float = 0.08  # share of each slice (every k-th example) for the naive mode and agreement
    variants: int = 20
    batch_size: int = 64
    seed: int = 0
    data_dir: str | None = None  # a GLUE folder; None: $TINYAUG_GLUE_DIR, ../shared/glue, or the embedded sample
    mlm: str | None = None  # None: a random bert-base-sized model built locally
    precisions: tuple[str, ...] = ("fp32",)
    backends: tuple[str, ...] = ("torch",)  # each precision is measured with each backend
    masks_per_context: tuple[int, ...] = (1,)  # ... and each of these (Recipe.masks_per_context)
    device: str = "cpu"

    def __post_init__(self) -> None:  # one line here, not a division by zero later
        if not 0 < self.naive_fraction <= 1:
            raise InputError(f"--naive-fraction {self.naive_fraction}: above 0 and at most 1 (k = 1 / fraction)")
        if min(self.sst2_rows, self.mrpc_rows) < 0 or self.sst2_rows + self.mrpc_rows == 0:
            raise InputError(f"--sst2-rows {self.sst2_rows}, --mrpc-rows {self.mrpc_rows}: 0 or more, not both 0")


def bert_base_random(seed: int = 0) -> LoadedMLM:
    """A bert-base-uncased-shaped masked LM with random weights and the real WordPiece vocabulary
    (the tokenizer of the installed MiniLM package, which is bert-base-uncased's)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from tinyaug.pipelines.starter.base import base_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512)
    return LoadedMLM(BertForMaskedLM(config).eval(), tokenizer, f"random bert-base-uncased shape (12x768, seed {seed})")


def glue_dir(configured: str | None) -> Path | None:
    for candidate in (configured, os.environ.get("TINYAUG_GLUE_DIR"), "../shared/glue"):
        if candidate and (Path(candidate) / "SST-2" / "train.tsv").is_file():
            return Path(candidate)
    return None


def seeded_slice(task: str, rows: int, seed: int, data_dir: Path | None) -> InputTable:
    """``rows`` examples of ``task`` train, picked by a seeded generator, in file order."""
    table = load_input(task=task, data_dir=data_dir)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(table.dataset), size=min(rows, len(table.dataset)), replace=False))
    table.dataset = table.dataset.select(keep.tolist())
    table.fingerprint += f"|slice {rows} seed {seed}"
    return table


def mlm_flops(config: Any, tokens: int, squared_lengths: int, head_positions: int, *,
              partial_last_layer: bool = False) -> float:
    """Forward FLOPs of a BERT masked LM for the contexts run: per token and layer, the Q, K, V and
    output projections (4 d^2 multiply-adds) and the feed-forward (2 d f); per context and layer,
    attention scores and mixing (2 L^2 d); the head (d^2 + d V) at ``head_positions`` positions
    (one per context when only the masked position is projected, every token otherwise). With
    ``partial_last_layer`` the last layer computes keys and values (2 d^2) at every token and the
    rest (2 d^2 + 2 d f, attention 2 L d) at ``head_positions`` positions only. Two FLOPs per
    multiply-add."""
    d, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    vocab = config.vocab_size
    per_token = 4 * d * d + 2 * d * f
    head = head_positions * (d * d + d * vocab)
    if not partial_last_layer:
        return 2.0 * (tokens * layers * per_token + layers * 2 * d * squared_lengths + head)
    full = (layers - 1) * (tokens * per_token + 2 * d * squared_lengths)
    last = tokens * 2 * d * d + head_positions * (2 * d * d + 2 * d * f) + 2 * d * tokens
    return 2.0 * (full + last + head)


class NaiveMLMSource(MaskedLMSource):
    """The reference's way: one masked sentence per forward, logits at every position, no reuse,
    gradients tracked (the reference runs its forwards without ``no_grad``)."""

    def ranked_words(self, queries: Sequence[Query], k: int, *, drop_original: bool = True
                     ) -> list[tuple[Candidate, ...]]:
        self.forward = MaskedPositionLogits(self.model, whole=True)
        out = []
        for q in queries:
            out.extend(super().ranked_words([q], k, drop_original=drop_original))
        return out

    def _predict(self, batch: Sequence[tuple[tuple[int, ...], int, bool]], k: int) -> list[list[tuple[int, float]]]:
        with torch.enable_grad():
            return MaskedLMSource._predict.__wrapped__(self, batch, k)  # without inference_mode


class NaiveVectorSource(VectorSource):
    """The reference's way: per word, a float64 dot product with every row and a full sort."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray, **kwargs: Any) -> None:
        super().__init__(words, vectors, **kwargs)
        self.pool64 = self.pool.astype(np.float64)

    def candidates(self, queries: Sequence[Query], k: int) -> list[tuple[Candidate, ...]]:
        out = []
        for q in queries:
            row = self.lookup(q.word)
            if row is None:
                out.append(())
                continue
            query = np.asarray(self.vectors[row], dtype=np.float64)
            scores = self.pool64 @ (query / (np.linalg.norm(query) or 1.0))
            self.exclude_self(q.word, scores)
            if q.word.isascii():
                scores[~self.pool_ascii] = -np.inf
            order = np.argsort(-scores, kind="stable")  # the reference's full sort
            out.append(self.rank(scores, order[:2 * k + RANK_MARGIN], k))
        return out


def _examples(table: InputTable, fraction: float) -> list[Example]:
    """Every k-th example of the slice (k = 1 / fraction), so a subset has the slice's mix."""
    step = max(1, round(1 / fraction))
    ds = table.dataset.select(range(0, len(table.dataset), step))
    return [Example(int(r["aug_example_id"]), tuple(r[c] for c in table.text_columns)) for r in ds]


def _candidate_words(plans: Sequence[TextPlan], mlm_only: bool = False) -> list[list[tuple[str, ...] | None]]:
    """Per text, per word: the candidate words (what two modes must agree on); ``mlm_only``: None
    for words the masked LM does not answer (not eligible, or routed to the vectors), which no
    other masked-LM mode could change."""
    return [[tuple(c.word for c in cands) if not mlm_only or route == "mlm" else None
             for cands, route in zip(plan.candidates, plan.routes)] for plan in plans]


def _plan(augmenter: Augmenter, examples: list[Example]) -> list[TextPlan]:
    return augmenter.plan([t for ex in examples for t in ex.texts])


def _plan_and_sample(augmenter: Augmenter, examples: list[Example]) -> list[TextPlan]:
    """What ``Augmenter.augment`` does (candidates, then each example's variants), keeping the plans."""
    plans = _plan(augmenter, examples)
    stats, position = Stats(), 0
    for ex in examples:
        augmenter.sample(ex, plans[position:position + len(ex.texts)], stats)
        position += len(ex.texts)
    return plans


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_bench(cfg: BenchConfig, progress=None) -> dict[str, Any]:
    """Run every measurement and return the figures (see the module docstring)."""
    torch.manual_seed(cfg.seed)
    data_folder = glue_dir(cfg.data_dir)
    tables = [seeded_slice(task, rows, cfg.seed, data_folder)  # a task given 0 rows is left out
              for task, rows in (("sst2", cfg.sst2_rows), ("mrpc", cfg.mrpc_rows)) if rows]
    device = resolve_device(cfg.device)
    modes = other_modes(cfg.backends, cfg.precisions, cfg.masks_per_context)
    skipped = {mode: skip_reason(mode, device) for mode in modes}  # before minutes of fp32 work, not after
    loaded = load_masked_lm(cfg.mlm, cfg.device) if cfg.mlm else bert_base_random(cfg.seed)
    loaded.model.to(device)
    start = time.perf_counter()
    vectors = load_vectors()
    vectors_load_s = time.perf_counter() - start
    recipe = Recipe(variants_per_example=cfg.variants)
    result: dict[str, Any] = {
        "model": loaded.identifier, "vectors": vectors.identifier, "threads": torch.get_num_threads(),
        "device": cfg.device, "batch_size": cfg.batch_size, "variants": cfg.variants,
        "data": str(data_folder) if data_folder else "embedded sample", "vectors_load_s": vectors_load_s,
        "matmul_gflops": matmul_gflops(), "cpu": cpu_info(), "kernel_cap": kernel_cap(),
    }
    fast = _run_pipeline(tables, recipe, loaded, vectors, cfg, progress)
    result.update(fast)
    result["peak_rss_mb"] = _peak_rss_mb()

    # naive mode on a subset with the same mix; its candidate lists must be those of the fast mode
    subset = [ex for table in tables for ex in _examples(table, cfg.naive_fraction)]
    subset_sentences = sum(len(ex.texts) for ex in subset)

    def make_fast(m: LoadedMLM, masks: int = 1) -> Augmenter:
        return Augmenter(recipe, m.tokenizer, MaskedLMSource(m.model, m.tokenizer, batch_size=cfg.batch_size, forward=m.forward,
                                                             masks_per_context=masks), VectorSource(vectors.words, vectors.vectors))

    reference = make_fast(loaded)
    reference_plans = _plan(reference, subset)
    reference_lists, reference_mlm = _candidate_words(reference_plans), _candidate_words(reference_plans, mlm_only=True)
    # The subset's sentences need not cost what the slice's do on average (MRPC sentences are longer
    # than SST-2's and have more words to mask): compare the two modes on equal work, measured as
    # the fast mode's FLOPs for the same sentences.
    ref = reference.mlm
    subset_flops = mlm_flops(loaded.model.config, ref.tokens_run, ref.squared_lengths_run, ref.contexts_run,
                             partial_last_layer=ref.partial_last_layer)
    subset_cost = (subset_flops / subset_sentences) / (result["mlm_flops"] / result["sentences"]) \
        if result["mlm_flops"] else 1.0
    naive = Augmenter(recipe, loaded.tokenizer, NaiveMLMSource(loaded.model, loaded.tokenizer, batch_size=1),
                      NaiveVectorSource(vectors.words, vectors.vectors))
    start = time.perf_counter()
    naive_plans = _plan_and_sample(naive, subset)  # no writing: the naive mode is not charged for I/O
    naive_seconds = time.perf_counter() - start
    naive_rate = subset_sentences / naive_seconds
    naive_rate_equal_work = naive_rate * subset_cost  # on sentences of the slice's average cost
    source = naive.mlm
    naive_flops = mlm_flops(loaded.model.config, source.tokens_run, source.squared_lengths_run, source.tokens_run)
    naive_gflops = naive_flops / 1e9 / source.forward_seconds if source.forward_seconds else 0.0
    # The speed-up fp32 could reach at best: the fast path's masked-LM FLOPs for the subset at 100%
    # of the matmul rate and nothing else costing any time, against the naive mode as measured.
    ideal_seconds = subset_flops / 1e9 / result["matmul_gflops"]
    result.update({
        "naive_examples": len(subset), "naive_sentences_per_s": naive_rate,
        "naive_subset_cost_per_sentence": subset_cost,
        "naive_identical_candidates": _candidate_words(naive_plans) == reference_lists,
        "speedup_vs_naive": result["sentences_per_s"] / naive_rate_equal_work,
        "naive_mlm_gflops": naive_gflops,
        "naive_mlm_percent_of_peak": naive_gflops / result["matmul_gflops"] * 100,
        "naive_flops_per_fast_flop": naive_flops / subset_flops if subset_flops else None,
        "fp32_speedup_ceiling": naive_seconds / ideal_seconds if ideal_seconds else None,
    })
    precisions = {}
    fp32_products = None
    for mode in modes:
        (backend, precision, masks), name = mode, label(mode)
        if skipped[mode]:
            precisions[name] = {"skipped": skipped[mode]}
            continue
        other = copy_as(loaded, mode) if mode[:2] != REFERENCE[:2] else loaded
        lists = _candidate_words(_plan(make_fast(other, masks), subset), mlm_only=True)
        run = _run_pipeline(tables, dataclasses.replace(recipe, masks_per_context=masks), other, vectors, cfg, progress)
        precisions[name] = {"sentences_per_s": run["sentences_per_s"], "mlm_sentences_per_s": run["mlm_sentences_per_s"],
                            "speedup_vs_naive": run["sentences_per_s"] / naive_rate_equal_work,
                            "speedup_vs_fp32": run["sentences_per_s"] / result["sentences_per_s"],
                            "top15_overlap_with_fp32": overlap(reference_mlm, lists),
                            "identical_lists_with_fp32": identical(reference_mlm, lists)}
        if device.type == "cpu" and backend == "torch" and precision != "fp32":  # what its products deliver here, and what that allows
            fp32_products = fp32_products or product_rate("fp32")
            rate = product_rate(precision)
            precisions[name].update({
                "product_gops": rate, "product_speedup_over_fp32": rate / fp32_products,
                "speedup_ceiling": naive_seconds / (subset_flops / 1e9 / rate) if subset_flops else None})
    result["precisions"] = precisions
    return result


def _run_pipeline(tables: list[InputTable], recipe: Recipe, loaded: LoadedMLM, vectors: LoadedVectors,
                  cfg: BenchConfig, progress) -> dict[str, Any]:
    """The real pipeline over the slices, with its stage timings and the model's counters."""
    timings: dict[str, float] = {}
    counters = {"contexts_seen": 0, "contexts_run": 0, "predictions_run": 0, "tokens_run": 0,
                "squared_lengths_run": 0, "forward_seconds": 0.0}
    partial = False
    sentences = examples = rows = 0
    work = Path(tempfile.mkdtemp(prefix="tinyaug-bench-"))
    start = time.perf_counter()
    try:
        for table in tables:
            report = augment_table(table, work / table.task.name, recipe, loaded, vectors,
                                   BuildOptions(batch_size=cfg.batch_size), progress=progress)
            for stage, seconds in report.augmenter.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            source = report.augmenter.mlm
            for name in counters:
                counters[name] += getattr(source, name)
            partial = source.partial_last_layer
            sentences += report.rows_in * len(table.text_columns)
            examples += report.rows_in
            rows += report.rows_out
    finally:
        wall = time.perf_counter() - start
        shutil.rmtree(work, ignore_errors=True)
    flops = mlm_flops(loaded.model.config, counters["tokens_run"], counters["squared_lengths_run"],
                      counters["predictions_run"], partial_last_layer=partial)
    overlapped = timings.pop("split_overlapped", 0.0)  # in the helper thread, beside the models
    timings["other"] = max(0.0, wall - sum(timings.values()))
    return {
        "examples": examples, "sentences": sentences, "rows_out": rows, "seconds": wall,
        "sentences_per_s": sentences / wall, "masked_predictions_per_s": counters["contexts_seen"] / wall,
        "mlm_seconds": timings.get("mlm", 0.0), "mlm_forward_seconds": counters["forward_seconds"],
        "mlm_sentences_per_s": sentences / timings["mlm"] if timings.get("mlm") else 0.0,
        "mlm_predictions_per_s": counters["contexts_run"] / counters["forward_seconds"] if counters["forward_seconds"] else 0.0,
        "mlm_gflops": flops / 1e9 / counters["forward_seconds"] if counters["forward_seconds"] else 0.0,
        "dedup_saved_share": 1 - counters["contexts_run"] / counters["contexts_seen"] if counters["contexts_seen"] else 0.0,
        "time_share": {k: v / wall for k, v in sorted(timings.items())},
        "split_overlapped_share": overlapped / wall, "mlm_flops": flops,
        "vector_time_share": timings.get("vectors", 0.0) / wall,
        "contexts_seen": counters["contexts_seen"], "contexts_run": counters["contexts_run"],
        "tokens_run": counters["tokens_run"], "partial_last_layer": partial,
    }


def format_table(r: dict[str, Any]) -> str:
    """The figures as a readable table (markdown, so it can go into the README as it is)."""
    pct = r["mlm_gflops"] / r["matmul_gflops"] * 100 if r["matmul_gflops"] else 0.0
    lines = [
        f"model: {r['model']}; vectors: {r['vectors']}; {r['threads']} threads on {r['device']}; "
        f"batch {r['batch_size']}; N={r['variants']}; data: {r['data']}",
        f"CPU: {describe_cpu(r['cpu'])}" + (f"; kernels capped at {r['kernel_cap']} (--kernels)" if r.get("kernel_cap") else ""),
        "", "| measure | value |", "|---|---|",
        f"| examples / sentences / rows out | {r['examples']} / {r['sentences']} / {r['rows_out']} |",
        f"| end to end: sentences/s | {r['sentences_per_s']:.2f} |",
        f"| end to end: masked predictions/s | {r['masked_predictions_per_s']:.1f} |",
        f"| masked-LM stage: sentences/s | {r['mlm_sentences_per_s']:.2f} |",
        f"| masked-LM stage: predictions/s (forward) | {r['mlm_predictions_per_s']:.1f} |",
        f"| masked-LM stage: GFLOP/s | {r['mlm_gflops']:.1f} |",
        f"| dense fp32 matmul: GFLOP/s (this run) | {r['matmul_gflops']:.1f} |",
        f"| masked-LM stage: share of matmul peak | {pct:.0f}% |",
        f"| naive mode: sentences/s ({r['naive_examples']} of the examples) | {r['naive_sentences_per_s']:.3f} |",
        f"| naive subset: masked-LM work per sentence, relative to the slice's | "
        f"{r['naive_subset_cost_per_sentence']:.2f} |",
        f"| naive mode: identical candidate lists | {r['naive_identical_candidates']} |",
        f"| speed-up over naive on equal work (fp32) | {r['speedup_vs_naive']:.1f}x |",
        f"| naive mode: masked-LM GFLOP/s, share of matmul peak | {r['naive_mlm_gflops']:.1f}, "
        f"{r['naive_mlm_percent_of_peak']:.0f}% |",
        f"| naive mode: FLOPs per fast-mode FLOP (head at every position) | {_fixed(r['naive_flops_per_fast_flop'], 2)} |",
        f"| fp32 speed-up ceiling (fast masked LM at 100% of peak, all else free) | {_fixed(r['fp32_speedup_ceiling'], 1)}x |",
        f"| masked contexts saved by de-duplication | {100 * r['dedup_saved_share']:.1f}% |",
        f"| last layer at the masked position only | {r['partial_last_layer']} |",
        f"| peak memory (RSS) | {r['peak_rss_mb']:.0f} MB |",
        f"| vectors load time | {r['vectors_load_s']:.2f} s |",
    ]
    for stage, share in r["time_share"].items():
        lines.append(f"| time share: {stage} | {100 * share:.1f}% |")
    lines.append(f"| splitting and tokenizing in the helper thread (overlapped) | "
                 f"{100 * r['split_overlapped_share']:.1f}% of the time |")
    for name, p in r.get("precisions", {}).items():
        if "skipped" in p:
            lines.append(f"| {name}: skipped | {p['skipped']} |")
            continue
        lines.append(f"| {name}: sentences/s, speed-up over naive | {p['sentences_per_s']:.2f}, {p['speedup_vs_naive']:.1f}x |")
        lines.append(f"| {name}: times PyTorch fp32's sentences/s | {p['speedup_vs_fp32']:.2f}x |")
        lines.append(f"| {name}: top-15 overlap with fp32, identical lists (masked-LM words) | {100 * p['top15_overlap_with_fp32']:.1f}%, "
                     f"{100 * p['identical_lists_with_fp32']:.1f}% |")
        if "product_gops" in p:
            lines.append(f"| {name}: Linear products GOP/s, times fp32's on the same shapes | "
                         f"{p['product_gops']:.0f}, {p['product_speedup_over_fp32']:.2f}x |")
            lines.append(f"| {name}: speed-up ceiling (masked LM at that product rate, all else free) | "
                         f"{_fixed(p['speedup_ceiling'], 1)}x |")
    return "\n".join(lines)


def _fixed(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def to_json(r: dict[str, Any]) -> str:
    r = dict(r, mlm_percent_of_peak=r["mlm_gflops"] / r["matmul_gflops"] * 100 if r["matmul_gflops"] else 0.0)
    return json.dumps(r, indent=1, sort_keys=True)
