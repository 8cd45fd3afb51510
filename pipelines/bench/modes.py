"""The bench's other modes: a backend, a precision and the words masked per context, measured
against PyTorch fp32 with one word per context.

A mode is ``(backend, precision, masks)``: ``("torch", "int8", 1)`` is PyTorch's dynamic int8,
``("onnxruntime", "fp32", 1)`` ONNX Runtime in fp32 (``tinyaug.pipelines.io.onnx_runtime``),
``("torch", "fp32", 2)`` two words of a sentence masked in each context (``Recipe.masks_per_context``).
PyTorch fp32 with one word per context is the bench's main run, which every mode's candidate lists
are compared with.

Not here: the runs themselves (``tinyaug.pipelines.bench.run``).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io.models import EmulatedPrecision, LoadedMLM, at_precision, check_precision
from tinyaug.pipelines.io.onnx_runtime import require, check_backend, on_onnxruntime

Mode = tuple[str, str, int]  # (backend, precision, words masked per context)
REFERENCE: Mode = ("torch", "fp32", 1)


def label(mode: Mode) -> str:
    """``int8`` for PyTorch's modes (as the bench always named them), ``onnxruntime int8`` else,
    with ``, 2 masks per context`` where more than one word is masked together."""
    backend, precision, masks = mode
    name = precision if backend == "torch" else f"{backend} {precision}"
    return name if masks == 1 else f"{name}, {masks} masks per context"


def other_modes(backends: tuple[str, ...], precisions: tuple[str, ...], masks: tuple[int, ...] = (1,)) -> list[Mode]:
    """Every (backend, precision, masks) asked for but the reference run."""
    return [(b, p, m) for m in masks for b in backends for p in precisions if (b, p, m) != REFERENCE]


def skip_reason(mode: Mode, device) -> str | None:
    """Why ``mode`` cannot be measured here (a precision the device would emulate, a backend that
    cannot run it or is not installed), or None."""
    backend, precision, _ = mode
    try:
        check_backend(backend, device, precision)
        if backend == "onnxruntime":  # the bench exports its model: say so now, not after the reference run
            for package in ("onnxscript", "onnx"):
                require(package)
        if backend == "torch":
            check_precision(precision, device)
    except EmulatedPrecision as exc:
        return str(exc)
    except ModelLoadError as exc:
        if backend == "torch":
            raise  # a PyTorch precision this device cannot run at all: the user's mistake, said at once
        return str(exc)
    return None


def copy_as(loaded: LoadedMLM, mode: Mode) -> LoadedMLM:
    """A copy of ``loaded`` run as ``mode`` (the fp32 PyTorch model stays for the other runs)."""
    backend, precision, _ = mode
    copied = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    return at_precision(copied, precision) if backend == "torch" else on_onnxruntime(copied, precision)


Lists = list[list["tuple[str, ...] | None"]]  # per text, per word: candidates, None where not compared


def overlap(a: Lists, b: Lists) -> float:
    """Mean share of a word's top-K candidate set (in ``a``) also in ``b``, over the words compared
    (not None) that have candidates in ``a``."""
    shares = [len(set(x) & set(y or ())) / len(x) for xs, ys in zip(a, b) for x, y in zip(xs, ys) if x]
    return float(np.mean(shares)) if shares else 1.0


def identical(a: Lists, b: Lists) -> float:
    """Share of the words compared (not None in ``a``) whose candidate list (words and order) is the
    same in ``a`` and ``b``."""
    same = [x == y for xs, ys in zip(a, b) for x, y in zip(xs, ys) if x is not None]
    return float(np.mean(same)) if same else 1.0
