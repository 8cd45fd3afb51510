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

Cache: ``$TINYAUG_CACHE/onnx/<key>/`` (beside the vectors cache), keyed by the model's
identifier, a sample of its weights (so two models that an API caller named alike, or a model
changed in memory, never share a graph), the mode, the model's input names and the versions of
onnxruntime, torch and this exporter; built in a temporary folder, flushed and renamed into
place (``tinyaug.pipelines.io.storage``'s discipline), so an interrupted export leaves nothing
half-written (a killed one's folder goes with the entry's next build), and two processes racing
keep one copy; an entry ONNX Runtime cannot load is built again. A model torch.onnx cannot export
is refused in one line (``--backend torch`` runs it). The PyTorch weights are released once the
session holds its own (the process then holds one copy of the model, not two), except a model
the API's caller keeps.

The teacher of ``teacher-logits`` (a sequence classifier) is exported the same way, its graph
taking the padded batch (ids, attention mask, token types) and giving its logits
(``classifier_on_onnxruntime``).

Not here: loading the PyTorch models (``tinyaug.pipelines.io.models``, ``...distillation``),
candidate logic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from tinyaug.errors import ModelLoadError, TinyaugError
from tinyaug.pipelines.io.storage import fsync_path, fsync_tree, remove_tree, temporary_sibling
from tinyaug.pipelines.io.vectors import cache_dir

if TYPE_CHECKING:
    import torch

    from tinyaug.pipelines.io.models import LoadedMLM

logger = logging.getLogger(__name__)
T = TypeVar("T")

BACKENDS = ("torch", "onnxruntime")
MODES = ("fp32", "int8")  # what ONNX Runtime's CPU build computes here
EXPORT_VERSION = 2  # bump when the exported graph changes (2: the rows of the masked positions)
INSTALL = "pip install 'tinyaug[onnx]'"
MODEL_FILE = "model.onnx"
ABOUT_FILE = "about.json"  # what the session cannot tell: whether the graph runs the last layer partially


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


def require(package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModelLoadError(f"--backend onnxruntime needs the {package} package, which is not installed: "
                             f"{INSTALL}") from None


class OnnxMaskedForward:
    """``MaskedPositionLogits``' call, run by an ONNX Runtime session on the CPU."""

    def __init__(self, path: Path, *, partial_last_layer: bool, threads: int) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its optimizer's notes are not the user's business
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.partial_last_layer = partial_last_layer

    def __call__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, at: torch.Tensor,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
        import torch

        rows = rows if rows is not None else torch.arange(input_ids.shape[0])
        feeds = {"input_ids": input_ids.numpy(), "at": at.numpy(), "rows": rows.numpy()}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = (token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)).numpy()
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
    and half of its memory. Otherwise loaded, exported and cached (``on_onnxruntime``)."""
    import torch

    from tinyaug.pipelines.io.models import LoadedMLM, describe_masked_lm, load_masked_lm

    check_backend("onnxruntime", torch.device("cpu"), precision)
    described = describe_masked_lm(name)
    if described is None:  # a hub name: identified by its weights once loaded
        return on_onnxruntime(load_masked_lm(name, "cpu"), precision, threads=threads, cache=cache)
    tokenizer, config, identifier, starter = described
    identity = f"{identifier} | files"
    ort = require("onnxruntime")
    folder = (cache or cache_dir()) / "onnx" / _key(identity, precision, "token_type_ids" in tokenizer.model_input_names,
                                                    ort.__version__)
    if (folder / MODEL_FILE).is_file() and (folder / ABOUT_FILE).is_file():
        try:
            about = json.loads((folder / ABOUT_FILE).read_text(encoding="utf-8"))
            forward = OnnxMaskedForward(folder / MODEL_FILE, partial_last_layer=bool(about["partial_last_layer"]),
                                        threads=threads or torch.get_num_threads())
        except Exception as exc:  # damaged: the full path below rebuilds it
            logger.warning("the cached onnxruntime graph %s does not load (%s); building it again", folder, exc)
        else:
            return LoadedMLM(ModelDescription(config), tokenizer, f"{identifier} {_label(ort, precision)}", starter,
                             precision, "onnxruntime", forward)
    return on_onnxruntime(load_masked_lm(name, "cpu"), precision, threads=threads, cache=cache, identity=identity)


def _label(ort: Any, precision: str) -> str:
    return f"[onnxruntime {ort.__version__} {'int8 per-channel' if precision == 'int8' else 'fp32'}]"


def on_onnxruntime(loaded: LoadedMLM, precision: str = "fp32", *, threads: int | None = None,
                   cache: Path | None = None, release: bool = True, identity: str | None = None) -> LoadedMLM:
    """``loaded`` computing through ONNX Runtime in ``precision`` (``MODES``), from the cached graph
    or a new export. Its PyTorch weights are released (the model stays as a description), unless
    ``release`` is False: a model the caller loaded and keeps using (the API's ``mlm=LoadedMLM``).
    ``identity``: what keys the cache (default: the identifier and a sample of the weights; a
    model loaded by name from files that identify it: ``load_by_name``'s)."""
    import torch

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
        return OnnxMaskedForward(path, partial_last_layer=graph.partial_last_layer,
                                 threads=threads or torch.get_num_threads())

    def export(folder: Path) -> None:
        _export(graph, folder / MODEL_FILE, with_types)
        (folder / ABOUT_FILE).write_text(about, encoding="utf-8")

    def quantize(folder: Path) -> None:  # from an fp32 graph that ONNX Runtime loads
        _quantize(_opened(_key(identity, "fp32", with_types, ort.__version__), cache, export, start)[0],
                  folder / MODEL_FILE)
        (folder / ABOUT_FILE).write_text(about, encoding="utf-8")

    forward = _opened(_key(identity, precision, with_types, ort.__version__), cache,
                      quantize if precision == "int8" else export, start)[1]
    if release:
        loaded.model.to("meta")  # the session holds its own copy of the weights
    return dataclasses.replace(loaded, forward=forward, precision=precision, backend="onnxruntime",
                               identifier=f"{loaded.identifier} {_label(ort, precision)}")


class OnnxClassifier:
    """A sequence classifier's ``model(**batch).logits``, run by an ONNX Runtime session."""

    def __init__(self, path: Path, *, threads: int) -> None:
        self.masked = OnnxMaskedForward(path, partial_last_layer=False, threads=threads)

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        import torch

        feeds = {name: batch[name].numpy() for name in self.masked.inputs}
        return torch.from_numpy(self.masked.session.run(["logits"], feeds)[0])


def classifier_on_onnxruntime(model: torch.nn.Module, identifier: str, input_names: list[str], *,
                              threads: int | None = None, cache: Path | None = None) -> tuple[OnnxClassifier, str]:
    """A fp32 ONNX Runtime runner for the sequence classifier ``model`` (identified by
    ``identifier``; ``input_names``: what its tokenizer gives, of input_ids, attention_mask,
    token_type_ids), and the label to add to its identifier. Its PyTorch weights are released."""
    import torch

    check_backend("onnxruntime", next(model.parameters()).device, "fp32")
    ort = require("onnxruntime")
    with_types = "token_type_ids" in input_names
    key = _key(f"{identifier} | weights {weights_sample(model)}", "classifier fp32", with_types, ort.__version__)
    runner = _opened(key, cache, lambda folder: _export_classifier(model.eval(), folder / MODEL_FILE, with_types),
                     lambda path: OnnxClassifier(path, threads=threads or torch.get_num_threads()))[1]
    model.to("meta")
    return runner, f"[onnxruntime {ort.__version__} fp32]"


def _export_classifier(model: torch.nn.Module, path: Path, with_types: bool) -> None:
    import torch

    from tinyaug.distill.inference import TaskLogits

    require("onnxscript")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    ids = torch.randint(1000, 2000, (3, 7)) % model.config.vocab_size
    example = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    example["attention_mask"][0, 5:] = 0  # padded rows, as batches have them
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]
    with _exporting(model):
        program = torch.onnx.export(TaskLogits(model).eval(), tuple(example[n] for n in names), None,
                                    input_names=names, output_names=["logits"], dynamo=True, verbose=False,
                                    dynamic_shapes=tuple({0: batch, 1: length} for _ in names), report=False)
        program.save(str(path), external_data=True)


def weights_sample(model: torch.nn.Module, points: int = 64) -> str:
    """A digest of every tensor's name, shape, dtype and ``points`` values spread over it: cheap
    (milliseconds for bert-base), and different for models that differ anywhere but in a few
    weights between the sampled ones."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        flat = tensor.detach().reshape(-1)
        count = min(points, flat.numel())
        picked = flat[torch.arange(count) * (flat.numel() - 1) // max(count - 1, 1)]  # exact integer positions
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(picked.float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _key(identifier: str, mode: str, with_types: bool, ort_version: str) -> str:
    import torch

    about = {"model": identifier, "mode": mode, "token_type_ids": with_types, "onnxruntime": ort_version,
             "torch": torch.__version__, "export": EXPORT_VERSION}
    return hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:24]


def _cached(key: str, cache: Path | None, build: Callable[[Path], None]) -> Path:
    """The model file of cache entry ``key``, built by ``build(folder)`` if it is not there yet: in
    a temporary sibling named with this process's id (a killed writer's is cleared by the next
    writer of the entry), with the umask's permissions, flushed to the disk, then renamed into
    place; when another process renamed its copy first, that one is kept."""
    root = (cache or cache_dir()) / "onnx"
    folder = root / key
    if (folder / MODEL_FILE).is_file():
        return folder / MODEL_FILE
    logger.info("building the onnxruntime graph in %s (once per model and mode)", folder)
    building = None
    try:
        building = temporary_sibling(folder, directory=True)
        build(building)
        fsync_tree(building)  # a power loss leaves no entry in place whose files are cut short
        if folder.exists() and not (folder / MODEL_FILE).is_file():
            remove_tree(folder)  # a damaged entry (no model file)
        try:
            os.replace(building, folder)
        except OSError:
            if not (folder / MODEL_FILE).is_file():
                raise
        fsync_path(root)
    except OSError as exc:
        raise ModelLoadError(f"cannot write the onnxruntime graph to {root} ({exc}); set TINYAUG_CACHE to a "
                             "writable folder") from None
    finally:
        if building is not None:
            shutil.rmtree(building, ignore_errors=True)
    return folder / MODEL_FILE


def _opened(key: str, cache: Path | None, build: Callable[[Path], None], start: Callable[[Path], T]) -> tuple[Path, T]:
    """Cache entry ``key`` (``_cached``) and ``start(its model file)``, ONNX Runtime's session on
    it. An entry found in the cache that ONNX Runtime cannot load (its files damaged since they
    were written) is built once more."""
    for _ in range(2):
        found = ((cache or cache_dir()) / "onnx" / key / MODEL_FILE).is_file()
        path = _cached(key, cache, build)
        try:
            return path, start(path)
        except (TinyaugError, MemoryError):
            raise
        except Exception as exc:  # ONNX Runtime's errors derive from Exception alone
            if not found:  # just built: building it again would not help
                raise ModelLoadError(f"ONNX Runtime cannot load {path} ({_first_line(exc)}); use --backend torch") \
                    from None
            logger.warning("ONNX Runtime cannot load %s (%s); building it again", path, _first_line(exc))
            try:
                remove_tree(path.parent)
            except OSError as error:
                raise ModelLoadError(f"cannot remove the damaged onnxruntime graph {path.parent} ({error}); "
                                     "delete it, or set TINYAUG_CACHE to a writable folder") from None
    raise ModelLoadError(f"ONNX Runtime cannot load the graphs in {path.parent}; delete it and run again")


def _first_line(exc: BaseException) -> str:
    """An exception's first line without terminal colours (the exporter's messages carry them)."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _exporting(model: torch.nn.Module) -> Iterator[None]:
    """torch.onnx quiet (its notes, and the graph it prints when it fails), and a model it cannot
    export refused in one line: such models run on ``--backend torch``."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), _quiet("torch"):
        warnings.simplefilter("ignore")
        try:
            yield
        except (OSError, TinyaugError):
            raise
        except Exception as exc:
            while exc.__cause__ is not None:  # what torch.export tripped on, under the exporter's wrapping
                exc = exc.__cause__  # type: ignore[assignment]
            raise ModelLoadError(f"torch.onnx cannot export {type(model).__name__} for --backend onnxruntime "
                                 f"({_first_line(exc)}); use --backend torch") from None


def _export(graph: torch.nn.Module, path: Path, with_types: bool) -> None:
    """``graph`` as ONNX at ``path`` (weights in ``path.data`` beside it), batch and length dynamic."""
    import torch

    require("onnxscript")  # the exporter's own dependency
    batch, length, asked = torch.export.Dim("batch"), torch.export.Dim("length"), torch.export.Dim("predictions")
    ids = torch.randint(1000, 2000, (3, 7)) % graph.model.config.vocab_size
    types = torch.zeros_like(ids) if with_types else None
    at, rows = torch.tensor([1, 2, 3, 5]), torch.tensor([0, 1, 2, 2])  # two masked words in the last row
    names = ["input_ids", *(["token_type_ids"] if with_types else []), "at", "rows"]
    shapes = ({0: batch, 1: length}, {0: batch, 1: length} if with_types else None, {0: asked}, {0: asked})
    with _exporting(graph.model):
        program = torch.onnx.export(graph, (ids, types, at, rows), None, input_names=names, output_names=["logits"],
                                    dynamic_shapes=shapes, dynamo=True, verbose=False, report=False)
        program.save(str(path), external_data=True)


def _quantize(fp32: Path, path: Path) -> None:
    """Dynamic int8 of the fp32 graph: int8 weights, one scale per output channel."""
    require("onnx")  # onnxruntime's quantization tools read and write the graph with it
    quantization = require("onnxruntime.quantization")
    with warnings.catch_warnings(), _quiet("root"):
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(str(fp32), str(path), per_channel=True,
                                      weight_type=quantization.QuantType.QInt8)


@contextlib.contextmanager
def _quiet(name: str):
    """Silence a library's logger below errors for the duration (the exporter's progress notes)."""
    log = logging.getLogger(name if name != "root" else None)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
