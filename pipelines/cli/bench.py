"""``tinyaug bench``: the throughput benchmark (see ``tinyaug.pipelines.bench.run``)."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from tinyaug.pipelines.cli.common import POSITIVE, comma_ints, device_option, friendly_errors
from tinyaug.pipelines.io.cpu import KERNEL_CAPS, cpu_info, kernel_cap
from tinyaug.pipelines.io.models import PRECISIONS
from tinyaug.pipelines.io.onnx_runtime import BACKENDS


@click.command("bench")
@click.option("--sst2-rows", type=click.IntRange(min=0), default=400, show_default=True, help="SST-2 train examples in the slice.")
@click.option("--mrpc-rows", type=click.IntRange(min=0), default=100, show_default=True, help="MRPC train examples in the slice.")
@click.option("--naive-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.08, show_default=True,
              help="Share of the slice run in the naive mode (every k-th example); above 0, at most 1.")
@click.option("-n", "--variants", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=64, show_default=True, help="Masked contexts per forward.")
@click.option("--precision", "precisions", default="fp32", show_default=True,
              help="Comma-separated: fp32 plus any of bf16, int8 (dynamic, CPU) or fp16 (GPU) to compare "
                   "against it.")
@click.option("--backend", "backends", default="torch", show_default=True,
              help="Comma-separated: torch and/or onnxruntime; each precision is measured with each backend "
                   "against PyTorch fp32.")
@click.option("--masks-per-context", "masks", default="1", show_default=True,
              help="Comma-separated: words masked together per context (1, 2, ...); each is measured "
                   "with each backend and precision.")
@click.option("--mlm", help="Time this masked LM instead of a random bert-base-sized one.")
@click.option("--data-dir", help="GLUE folder [default: $TINYAUG_GLUE_DIR, ../shared/glue, else the embedded sample].")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option("cpu")
@click.option("--kernels", type=click.Choice(["native", *KERNEL_CAPS]), default="native", show_default=True,
              help="avx2: run in a process whose kernel libraries (ATen, MKL, oneDNN, fbgemm) are capped at "
                   "AVX2, to measure an AVX2-only CPU's code paths on a newer x86 CPU (its caches and "
                   "memory stay this machine's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@friendly_errors
def bench_command(sst2_rows, mrpc_rows, naive_fraction, variants, batch_size, precisions, backends, masks, mlm, data_dir, seed,
                  device, kernels, as_json):
    """Measure augmentation throughput against the machine's matmul peak and the naive way.

    Example: tinyaug bench --precision fp32,bf16,int8 --backend torch,onnxruntime
    """
    chosen = tuple(p.strip() for p in precisions.split(","))
    unknown = [p for p in chosen if p not in PRECISIONS]
    if unknown:
        raise click.BadParameter(f"unknown precision {', '.join(unknown)}; choose from {', '.join(PRECISIONS)}")
    if any(m < 1 for m in comma_ints(masks, "--masks-per-context")):
        raise click.BadParameter(f"{masks!r}: each value 1 or more", param_hint="--masks-per-context")
    runners = tuple(b.strip() for b in backends.split(","))
    unknown = [b for b in runners if b not in BACKENDS]
    if unknown:
        raise click.BadParameter(f"unknown backend {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    if kernels != "native" and kernel_cap() != kernels:  # the caps are read once per process: start one
        if kernels not in cpu_info()["flags"]:
            raise click.ClickException(f"--kernels {kernels} caps an x86 CPU that has {kernels.upper()} or more; this "
                                       f"one ({cpu_info()['model']}) has not: run without --kernels")
        options = {"--sst2-rows": sst2_rows, "--mrpc-rows": mrpc_rows, "--naive-fraction": naive_fraction,
                   "--variants": variants, "--batch-size": batch_size, "--precision": precisions, "--backend": backends, "--masks-per-context": masks, "--mlm": mlm,
                   "--data-dir": data_dir, "--seed": seed, "--device": device}
        argv = [a for name, value in options.items() if value is not None for a in (name, str(value))]
        env = dict(os.environ, **KERNEL_CAPS[kernels])
        code = subprocess.call([sys.executable, "-m", "tinyaug.pipelines.cli", "bench", *argv,
                                *(["--json"] if as_json else [])], env=env)
        raise SystemExit(code)

    from tinyaug.pipelines.bench.run import BenchConfig, format_table, run_bench, to_json

    config = BenchConfig(sst2_rows=sst2_rows, mrpc_rows=mrpc_rows, naive_fraction=naive_fraction, variants=variants,
                         batch_size=batch_size, seed=seed, data_dir=data_dir, mlm=mlm, precisions=chosen,
                         backends=runners, masks_per_context=comma_ints(masks, "--masks-per-context"), device=device)
    from tinyaug.pipelines.cli.progress import Progress

    with Progress(unit="rows") as shown:  # rows augmented over the bench's runs (fp32, then each reduced precision)
        result = run_bench(config, progress=lambda rows: shown.advance("bench: rows augmented", rows, None))
    click.echo(to_json(result) if as_json else format_table(result))


COMMANDS = [bench_command]


@click.command("bench-engines")
@click.option("--sst2-rows", type=POSITIVE, default=200, show_default=True, help="SST-2 train examples in the slice.")
@click.option("--shard-size", type=POSITIVE, default=25, show_default=True, help="Examples per shard.")
@click.option("--actors", default="1,2", show_default=True, help="Comma-separated actor counts for the Ray runs.")
@click.option("-n", "--variants", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--mlm", default="starter", show_default=True, help="Masked LM (a name or folder every actor loads).")
@click.option("--vectors", default="glove-6b-50d", show_default=True)
@click.option("--data-dir", help="GLUE folder [default: $TINYAUG_GLUE_DIR, ../shared/glue, else the embedded sample].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@friendly_errors
def bench_engines_command(sst2_rows, shard_size, actors, variants, mlm, vectors, data_dir, as_json):
    """Augment one slice with the local engine and with Ray (1, 2, ... actors on a Ray instance
    started here): sentences per second, actor start-up, Ray's overhead per shard, same rows.

    Example: tinyaug bench-engines --sst2-rows 200 --actors 1,2
    """
    import json

    from tinyaug.augment.recipe import Recipe
    from tinyaug.pipelines.bench.engines import bench_engines, format_engines
    from tinyaug.pipelines.bench.run import glue_dir, seeded_slice
    from tinyaug.pipelines.cli.common import comma_ints
    from tinyaug.pipelines.scale.ray_executor import import_ray

    import_ray()
    table = seeded_slice("sst2", sst2_rows, 0, glue_dir(data_dir))
    result = bench_engines(table, Recipe(variants_per_example=variants), mlm, vectors,
                           comma_ints(actors, "--actors"), shard_size)
    click.echo(json.dumps(result, indent=2) if as_json else format_engines(result))


COMMANDS.append(bench_engines_command)


@click.command("bench-methods")
@click.option("--sst2-rows", type=POSITIVE, default=4000, show_default=True, help="SST-2 train sentences in the slice.")
@click.option("--methods", default="random,synonyms,eda", show_default=True,
              help="Comma-separated methods (tinybert and compositions too: they load the masked LM).")
@click.option("-n", "--variants", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--mlm", default="starter", show_default=True, help="The masked LM of methods that use one.")
@click.option("--vectors", default="glove-6b-50d", show_default=True)
@click.option("--threads", type=POSITIVE, default=1, show_default=True, help="Torch threads (1: one core's rate).")
@click.option("--data-dir", help="GLUE folder [default: $TINYAUG_GLUE_DIR, ../shared/glue, else the embedded sample].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@friendly_errors
def bench_methods_command(sst2_rows, methods, variants, mlm, vectors, threads, data_dir, as_json):
    """Each augmentation method's sentences per second on one SST-2 slice, side by side.

    Example: tinyaug bench-methods --methods random,synonyms,eda,tinybert
    """
    import json

    from tinyaug.augment.methods import method_name, parse_method
    from tinyaug.augment.recipe import Recipe
    from tinyaug.pipelines.augmentation.methods import MethodModels, check_resources
    from tinyaug.pipelines.bench.methods import bench_methods, format_methods
    from tinyaug.pipelines.bench.run import glue_dir, seeded_slice
    from tinyaug.pipelines.io.models import load_masked_lm
    from tinyaug.pipelines.io.vectors import load_vectors

    names = [method_name(parse_method(name)) for name in methods.split(",") if name.strip()]
    recipe = Recipe(variants_per_example=variants)
    for name in names:
        check_resources(Recipe(method=name))
    table = seeded_slice("sst2", sst2_rows, 0, glue_dir(data_dir))
    texts = table.dataset["sentence"]

    def load_models(needed: set) -> MethodModels:
        return MethodModels(load_masked_lm(mlm, "cpu") if "mlm" in needed else None,
                            load_vectors(vectors) if "vectors" in needed else None)

    result = bench_methods(texts, names, recipe, load_models, threads)
    click.echo(json.dumps(result, indent=2) if as_json else format_methods(result))


COMMANDS.append(bench_methods_command)
