"""What this machine's processor can do, as far as tinyaug's precisions care: its model name,
the instruction sets behind bf16 and int8 arithmetic, and PyTorch's CPU kernel level.

bf16 is native with AVX-512 BF16 or AMX on x86 (and the BF16 extension on Arm); elsewhere
PyTorch emulates it, many times slower than fp32, which ``models.check_precision`` refuses with
a pointer to int8.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                  "amx_int8", "avx_vnni", "asimd", "asimddp", "bf16", "i8mm", "sve")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """``model``, the relevant ``flags`` present, and ``torch_capability`` (e.g. AVX512, AVX2)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware") and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        capability = "unknown"
    return {"model": model, "flags": [f for f in RELEVANT_FLAGS if f in flags], "torch_capability": capability,
            "cores": _cores()}


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Environment variables that cap each CPU kernel library of PyTorch at an instruction set, read
# when the library first runs: a process started with them runs the code paths a CPU of that kind
# would (on this CPU's caches, memory and clock).
KERNEL_CAPS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                        "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}}


def kernel_cap(environ: dict[str, str] | None = None) -> str | None:
    """The name of the cap in ``KERNEL_CAPS`` this process runs under, or None."""
    import os

    environ = os.environ if environ is None else environ
    for name, variables in KERNEL_CAPS.items():
        if all(environ.get(key, "").upper() == value.upper() for key, value in variables.items()):
            return name
    return None


def native_bf16(info: dict[str, Any] | None = None) -> bool:
    """True when the CPU computes in bf16 itself (not emulated), and no kernel cap forbids it."""
    if info is None and kernel_cap() is not None:  # every cap in KERNEL_CAPS is below bf16 arithmetic
        return False
    return any(flag in (info or cpu_info())["flags"] for flag in NATIVE_BF16_FLAGS)


def describe(info: dict[str, Any] | None = None) -> str:
    info = info or cpu_info()
    return (f"{info['model']}, {info['cores']} cores; PyTorch kernels {info['torch_capability']}; "
            f"flags {' '.join(info['flags']) or 'none of note'}")
