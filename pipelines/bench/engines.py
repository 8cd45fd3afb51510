"""The executor benchmark (``tinyaug bench-engines``, after ``--engine``): the same slice augmented
by the local executor and by the Ray executor with 1, 2, ... actors, on a Ray instance started on
this machine.

Every run gets the machine's cores: the local executor its torch threads, the Ray actors an equal
share each (one actor: all of them, so that the per-shard overhead compares like with like).
Reports sentences per second end to end (dataset written), the start-up (for an actor: process,
imports, models and augmenter; for the local executor, whose models are already loaded: the
augmenter) and Ray's overhead per shard: the one-actor run's time after start-up less the local
executor's, per shard.
Rows are compared too: every run must give the local executor's table.

Not here: the masked-LM throughput against the matmul peak (``run``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.build import AugmentJob, BuildOptions, load_augmented, run
from tinyaug.pipelines.augmentation.methods import MethodModels, ModelSpec, build_augmenter
from tinyaug.pipelines.io.tables import InputTable


def bench_engines(table: InputTable, recipe: Recipe, mlm: str, vectors: str, actor_counts: Sequence[int],
                  shard_size: int, batch_size: int = 64) -> dict[str, Any]:
    """Time ``table`` through each executor (models named by ``mlm`` / ``vectors``, loaded on the CPU)."""
    import ray
    import torch

    from tinyaug.pipelines.io.models import load_masked_lm
    from tinyaug.pipelines.io.vectors import load_vectors
    from tinyaug.pipelines.scale.ray_executor import LOCAL_OBJECT_STORE_BYTES, RayExecutor, RaySettings

    loaded_mlm, loaded_vectors = load_masked_lm(mlm, "cpu"), load_vectors(vectors)
    sentences = len(table.dataset) * len(table.text_columns)
    shards = -(-len(table.dataset) // shard_size)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tinyaug-bench-") as tmp:
        def timed(name: str, executor: Any = None, method: Any = None) -> float:
            job = AugmentJob(table, Path(tmp) / name, recipe, MethodModels(loaded_mlm, loaded_vectors),
                             ModelSpec(mlm, vectors), method, BuildOptions(shard_size=shard_size, batch_size=batch_size))
            start = time.perf_counter()
            run(job, executor)
            return time.perf_counter() - start

        start = time.perf_counter()
        # the local start-up: the augmenter (vector index, candidate filter), as in an actor
        augmenter = build_augmenter(recipe, loaded_mlm, loaded_vectors, batch_size)
        local_startup = time.perf_counter() - start
        local_seconds = timed("local", method=augmenter)
        local_seconds += local_startup
        local = load_augmented(Path(tmp) / "local").data.table
        runs.append({"engine": "local", "actors": None, "seconds": local_seconds,
                     "sentences_per_second": sentences / local_seconds, "startup_seconds": local_startup,
                     "sentences_per_second_after_startup": sentences / (local_seconds - local_startup),
                     "identical_rows": True})
        cores = max(max(actor_counts), torch.get_num_threads())  # the local executor's threads
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        try:
            for actors in actor_counts:
                ready: list[float] = []
                settings = RaySettings(actors=actors, cpus_per_actor=cores / actors)  # all cores, as the local run
                executor = RayExecutor(settings, on_start=lambda infos: ready.append(time.perf_counter()))
                start = time.perf_counter()
                seconds = timed(f"ray{actors}", executor)
                startup = ready[0] - start if ready else None
                rows = load_augmented(Path(tmp) / f"ray{actors}").data.table
                runs.append({"engine": "ray", "actors": actors, "seconds": seconds,
                             "sentences_per_second": sentences / seconds, "startup_seconds": startup,
                             "sentences_per_second_after_startup": sentences / (seconds - startup) if startup else None,
                             "identical_rows": rows.equals(local)})
        finally:
            ray.shutdown()
    one = next((r for r in runs if r["actors"] == 1), None)
    overhead = ((one["seconds"] - one["startup_seconds"]) - (local_seconds - local_startup)) / shards if one else None
    return {"sentences": sentences, "rows_in": len(table.dataset), "shards": shards, "shard_size": shard_size,
            "mlm": loaded_mlm.identifier, "runs": runs, "ray_overhead_seconds_per_shard": overhead}


def format_engines(result: dict[str, Any]) -> str:
    lines = [f"{result['rows_in']} examples ({result['sentences']} sentences) in {result['shards']} shards of "
             f"{result['shard_size']}; masked LM {result['mlm']}",
             "| engine | actors | wall clock s | sentences/s | actor start-up s | sentences/s after start-up | "
             "same rows |", "|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        startup, after = r["startup_seconds"], r.get("sentences_per_second_after_startup")
        lines.append(f"| {r['engine']} | {r['actors'] or '-'} | {r['seconds']:.1f} | {r['sentences_per_second']:.1f} | "
                     f"{_fixed(startup)} | {_fixed(after)} | {'yes' if r['identical_rows'] else 'NO'} |")
    if result["ray_overhead_seconds_per_shard"] is not None:
        lines.append(f"Ray overhead per shard (1 actor, after start-up, against the local engine): "
                     f"{result['ray_overhead_seconds_per_shard']:.2f} s")
    return "\n".join(lines)


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
