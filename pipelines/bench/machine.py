"""What the machine's matrix products deliver, per precision: the yardstick the benchmark holds
the masked LM against.

- ``matmul_gflops``: dense fp32 products (``torch.mm``), the best of a few transformer shapes.
- ``product_rate(precision)``: the same shapes through what the masked LM runs in that precision:
  ``Linear`` layers in bf16, or dynamically quantized to int8 (per-channel weights, activations
  quantized per call, on ``int8_engine()``); GOP/s, one multiply-add counting two.

The ratio of a reduced precision's rate to fp32's bounds what it can gain: on an AVX2-only CPU
int8 products compute at most twice as many multiply-adds per cycle as fp32 FMAs (``vpmaddubsw``
and ``vpmaddwd`` share the FMA ports), where AVX-512 VNNI and AMX reach several times that.

Not here: the masked LM's own FLOP count (``run.mlm_flops``).
"""

from __future__ import annotations

import time

import torch

from tinyaug.pipelines.io.models import quantize_int8

SHAPES = ((2048, 768, 3072), (2048, 3072, 768), (4096, 4096, 4096))  # (rows, in, out)
LINEAR_SHAPES = ((1536, 768, 768), (1536, 768, 3072), (1536, 3072, 768))  # a packed batch of bert-base


def _rate(run, flops: float, seconds: float) -> float:
    run()  # warm-up: kernels chosen, weights packed
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        runs += 1
    return flops * runs / (time.perf_counter() - start) / 1e9


def matmul_gflops(seconds: float = 1.5) -> float:
    """The best dense fp32 matmul rate over a few transformer-like shapes, GFLOP/s."""
    best = 0.0
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        best = max(best, _rate(lambda: torch.mm(a, b), 2 * m * k * n, seconds / len(SHAPES)))
    return best


def _linear(precision: str, k: int, n: int) -> torch.nn.Module:
    layer = torch.nn.Sequential(torch.nn.Linear(k, n)).eval()
    if precision == "bf16":
        return layer.to(torch.bfloat16)
    return quantize_int8(layer) if precision == "int8" else layer


@torch.inference_mode()
def product_rate(precision: str, seconds: float = 1.5) -> float:
    """The best rate of the masked LM's ``Linear`` products in ``precision`` (fp32, bf16 or int8)
    over bert-base's three shapes at a batch of 1,536 tokens, GFLOP/s (GOP/s for int8)."""
    best = 0.0
    for m, k, n in LINEAR_SHAPES:
        layer = _linear(precision, k, n)
        x = torch.randn(m, k, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
        best = max(best, _rate(lambda: layer(x), 2 * m * k * n, seconds / len(LINEAR_SHAPES)))
    return best
