"""ONNX Runtime as a backend (``--backend onnxruntime``): the masked LM's, and the teacher's.

The graph ONNX Runtime runs is the one the PyTorch path runs, ``MaskedPositionLogits``
(``tinyaug.augment.mlm``: the last layer and the head at the masked position only), exported
once by ``torch.onnx`` with the batch and the length dynamic. ``fp32`` runs it as exported
(ONNX Runtime fuses GELU, LayerNorm and the residual adds at session start; its sums are ordered
differently from PyTorch's, so scores differ at float-noise level and candidate lists agree to
the figures in docs/throughput.md, not bit for bit). ``int8`` quantizes its products
dynamically (int8 weights with one scale per output channel, activations quantized per call)
with ``onnxruntime.quantization``. The loaded model's identifier names the backend, its version
and the mode, so cards and resumed runs tell the modes apart.

The graphs are exported, checked, quantized and cached on disk by
``tinyaug.pipelines.io.onnx_graphs``. The PyTorch weights are released once the session holds
its own, except a model the API's caller keeps.

The teacher of ``teacher-logits`` (a sequence classifier) is exported the same way, its graph
taking the padded batch (ids, attention mask, token types) and giving its logits
(``classifier_on_onnxruntime``).

Not here: loading the PyTorch models (``tinyaug.pipelines.io.models``, ``...distillation``),
candidate logic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io import onnx_graphs as graphs
from tinyaug.pipelines.io.models import weights_sample
from tinyaug.pipelines.io.onnx_graphs import require

if TYPE_CHECKING:
    from concurrent.futures import Future

    import torch

    from tinyaug.pipelines.io.models import LoadedMLM

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")
MODES = ("fp32", "int8")  # what ONNX Runtime's CPU build computes here


def check_backend(backend: str, device: torch.device, precision: str) -> None:
    """Raise, in one line with the fix, if ``backend`` cannot run ``precision`` on ``device`` here."""
    if backend not in BACKENDS:
        raise ModelLoadError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return
    require("onnxruntime")
    if device.type != "cpu":
        raise ModelLoadError(f"--backend onnxruntime runs on the CPU (the model would be on {device}); "
                             "pass --device cpu, or use --backend torch on a GPU")
    if precision not in MODES:
        raise ModelLoadError(f"--backend onnxruntime computes in {' or '.join(MODES)}, not {precision}; "
                             f"for {precision} use --backend torch")


def backend_device(backend: str, device: str | None, precision: str) -> torch.device:
    """The device ``--device`` names for ``backend``, checked (``check_backend``) before any model is
    read. ONNX Runtime's build here is the CPU's, so its ``auto`` is the CPU, never a GPU."""
    from tinyaug.pipelines.io.models import resolve_device

    auto = (device or "auto").strip().lower() == "auto"
    resolved = resolve_device("cpu" if backend == "onnxruntime" and auto else device)
    check_backend(backend, resolved, precision)
    return resolved


def check_actor_device(backend: str, device: str) -> None:
    """Refuse, before any actor starts, ``backend`` on Ray actors of ``device`` (``cpu``, or
    ``cuda`` when they have GPUs) if it cannot run there."""
    if backend == "onnxruntime" and device != "cpu":
        raise ModelLoadError("--backend onnxruntime runs on CPUs: leave out --gpus-per-actor, or use --backend torch "
                             "on GPU actors")


class OnnxMaskedForward:
    """``MaskedPositionLogits``' call, run by an ONNX Runtime session on the CPU."""

    def __init__(self, path: Path, *, partial_last_layer: bool, threads: int | None) -> None:
        self.session = graphs.open_session(path, threads)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.partial_last_layer = partial_last_layer

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, at: torch.Tensor,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
        import torch

        rows = rows if rows is not None else torch.arange(input_ids.shape[0])
        feeds = {"input_ids": input_ids.numpy(), "at": at.numpy(), "rows": rows.numpy()}
        if "token_type_ids" in self.inputs:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            feeds["token_type_ids"] = types.numpy()
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What the masked-LM source reads of a model that ONNX Runtime computes: its config (the
    positions it takes); no weights, no module."""

    config: Any

    def get_output_embeddings(self) -> None:
        return None  # the vocabulary size is the config's


def load_by_name(name: str, precision: str = "fp32", *, threads: int | None = None,
                 cache: Path | None = None) -> LoadedMLM:
    """The masked LM ``name`` (as ``--mlm`` takes it) computing through ONNX Runtime. When its
    graph is cached and its files identify it (the starter, a local folder), straight from the
    cache: PyTorch's model is neither imported nor read, which is most of a small run's start-up
    and half of its memory, and ONNX Runtime opens the graph in a second thread while this one
    reads the tokenizer (both take about 0.3 s for bert-base). Otherwise loaded, exported and
    cached (``on_onnxruntime``)."""
    import torch

    from tinyaug.pipelines.io.models import LoadedMLM, describe_masked_lm, identify_masked_lm, load_masked_lm

    check_backend("onnxruntime", torch.device("cpu"), precision)
    identified = identify_masked_lm(name)
    if identified is None:  # a hub name: identified by its weights once loaded
        return on_onnxruntime(load_masked_lm(name, "cpu"), precision, threads=threads, cache=cache)
    identifier, starter = identified
    identity = f"{identifier} | files"
    ort = require("onnxruntime")
    # whether the graph takes token types is the tokenizer's to say, and the tokenizer is what is
    # being read meanwhile: when one of the two keys is cached (nearly always: the model's files
    # rarely change their tokenizer), it is opened at once, and kept if the tokenizer agrees
    folders = {types: graphs.entry(graphs.graph_key(identity, precision, types), cache) for types in (True, False)}
    found = [types for types, folder in folders.items() if _complete(folder)]
    opening = _open_in_background(folders[found[0]], threads) if len(found) == 1 else None
    tokenizer, config = describe_masked_lm(name)
    with_types = "token_type_ids" in tokenizer.model_input_names
    if with_types in found:
        try:
            forward = opening.result() if opening is not None else _open_entry(folders[with_types], threads)
        except Exception as exc:  # damaged: the full path below rebuilds it
            logger.warning("the cached onnxruntime graph %s does not load (%s); building it again", folders[with_types], exc)
        else:
            return LoadedMLM(ModelDescription(config), tokenizer, f"{identifier} {_label(ort, precision)}", starter,
                             precision, "onnxruntime", forward)
    opening = None  # a session on the other key's graph: not held (with its weights) through the export below
    return on_onnxruntime(load_masked_lm(name, "cpu"), precision, threads=threads, cache=cache, identity=identity)


def _complete(folder: Path) -> bool:
    return (folder / graphs.MODEL_FILE).is_file() and (folder / graphs.ABOUT_FILE).is_file()


def _open_entry(folder: Path, threads: int | None) -> OnnxMaskedForward:
    about = json.loads((folder / graphs.ABOUT_FILE).read_text(encoding="utf-8"))
    return OnnxMaskedForward(folder / graphs.MODEL_FILE, threads=threads,
                             partial_last_layer=bool(about["partial_last_layer"]))


def _open_in_background(folder: Path, threads: int | None) -> Future[OnnxMaskedForward]:
    """``_open_entry`` in a second thread (ONNX Runtime releases the GIL while it loads and
    optimizes the graph); its errors are raised by ``result()``, or dropped with it when the
    caller does not want the session after all. The thread ends after its one job (at most the
    0.3 s of an open, which an exit in the meantime waits for)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="tinyaug-onnx-open")
    try:
        return pool.submit(_open_entry, folder, threads)
    finally:
        pool.shutdown(wait=False)


def _label(ort: Any, precision: str) -> str:
    return f"[onnxruntime {ort.__version__} {'int8 per-channel' if precision == 'int8' else 'fp32'}]"


def on_onnxruntime(loaded: LoadedMLM, precision: str = "fp32", *, threads: int | None = None,
                   cache: Path | None = None, release: bool = True, identity: str | None = None) -> LoadedMLM:
    """``loaded`` computing through ONNX Runtime in ``precision`` (``MODES``), from the cached graph
    or a new export. Its PyTorch weights are released (the model stays as a description), unless
    ``release`` is False: a model the caller loaded and keeps using (the API's ``mlm=LoadedMLM``).
    ``identity``: what keys the cache (default: the identifier and a sample of the weights; a
    model loaded by name from files that identify it: ``load_by_name``'s)."""
    from tinyaug.augment.mlm import MaskedPositionLogits

    check_backend("onnxruntime", next(loaded.model.parameters()).device, precision)
    if loaded.precision != "fp32" or loaded.forward is not None:
        raise ModelLoadError(f"{loaded.identifier} is not a plain fp32 PyTorch model; load it again for onnxruntime")
    ort = require("onnxruntime")
    with_types = "token_type_ids" in loaded.tokenizer.model_input_names
    graph = MaskedPositionLogits(loaded.model).eval()
    identity = identity or f"{loaded.identifier} | weights {weights_sample(loaded.model)}"
    about = json.dumps({"partial_last_layer": graph.partial_last_layer})

    def start(path: Path) -> OnnxMaskedForward:
        return OnnxMaskedForward(path, partial_last_layer=graph.partial_last_layer, threads=threads)

    def export(folder: Path) -> None:
        graphs.export_masked(graph, folder / graphs.MODEL_FILE, with_types)
        (folder / graphs.ABOUT_FILE).write_text(about, encoding="utf-8")

    def quantized(folder: Path) -> None:  # from an fp32 graph that ONNX Runtime loads
        fp32 = graphs.opened(graphs.graph_key(identity, "fp32", with_types), cache, export, start)[0]
        graphs.quantize(fp32, folder / graphs.MODEL_FILE)
        (folder / graphs.ABOUT_FILE).write_text(about, encoding="utf-8")

    forward = graphs.opened(graphs.graph_key(identity, precision, with_types), cache,
                            quantized if precision == "int8" else export, start)[1]
    if release:
        loaded.model.to("meta")  # the session holds its own copy of the weights
    return dataclasses.replace(loaded, forward=forward, precision=precision, backend="onnxruntime",
                               identifier=f"{loaded.identifier} {_label(ort, precision)}")


class OnnxClassifier:
    """A sequence classifier's ``model(**batch).logits``, run by an ONNX Runtime session."""

    def __init__(self, path: Path, *, threads: int | None) -> None:
        self.session = graphs.open_session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        import torch

        feeds = {name: batch[name].numpy() for name in self.inputs}
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])


def classifier_on_onnxruntime(model: torch.nn.Module, identifier: str, input_names: list[str], *,
                              threads: int | None = None, cache: Path | None = None) -> tuple[OnnxClassifier, str]:
    """A fp32 ONNX Runtime runner for the sequence classifier ``model`` (identified by
    ``identifier``; ``input_names``: what its tokenizer gives, of input_ids, attention_mask,
    token_type_ids), and the label to add to its identifier. Its PyTorch weights are released."""
    check_backend("onnxruntime", next(model.parameters()).device, "fp32")
    ort = require("onnxruntime")
    with_types = "token_type_ids" in input_names
    identity = f"{identifier} | weights {weights_sample(model)}"
    key = graphs.graph_key(identity, "classifier fp32", with_types)

    def export(folder: Path) -> None:
        graphs.export_classifier(model.eval(), folder / graphs.MODEL_FILE, with_types)

    runner = graphs.opened(key, cache, export, lambda path: OnnxClassifier(path, threads=threads))[1]
    model.to("meta")
    return runner, _label(ort, "fp32")


