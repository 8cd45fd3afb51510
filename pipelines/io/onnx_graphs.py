"""The graphs ONNX Runtime runs (``tinyaug.pipelines.io.onnx_runtime``): exported from PyTorch
by ``torch.onnx`` with the batch, the length and the predictions dynamic, checked against
PyTorch on a second shape before they are kept, quantized, and cached on disk.

Cache: ``$TINYAUG_CACHE/onnx/<key>/`` (beside the vectors cache), keyed by the model's
identity, the mode, the input names and the versions of onnxruntime, torch and this exporter;
built in a temporary folder, flushed and renamed into place (``tinyaug.pipelines.io.storage``),
so an interrupted export leaves nothing half-written and racing processes keep one copy; an
entry ONNX Runtime cannot load is built again. A model torch.onnx cannot export, or exports
with a size fixed that should vary, is refused in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
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

logger = logging.getLogger(__name__)
T = TypeVar("T")

EXPORT_VERSION = 4  # bump when the exported graph changes (2: rows of the masked positions; 3: checked; 4: key.json)
INSTALL = "pip install 'tinyaug[onnx]'"
MODEL_FILE = "model.onnx"
ABOUT_FILE = "about.json"  # what the session cannot tell: whether the graph runs the last layer partially
KEY_FILE = "key.json"  # what the entry was built from (GraphKey.about)


def require(package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModelLoadError(f"--backend onnxruntime needs the {package} package, which is not installed: "
                             f"{INSTALL}") from None


def open_session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime session on the graph at ``path``: the CPU's, ``threads`` threads per operator
    (None: as many as PyTorch's)."""
    import torch

    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its optimizer's notes are not the user's business
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclasses.dataclass(frozen=True)
class GraphKey:
    """What a cached graph is built from (JSON: model, mode, input names, versions); ``name``,
    its digest, is the entry's folder. Written into the entry as ``key.json``."""

    about: str

    @property
    def name(self) -> str:
        return hashlib.sha256(self.about.encode()).hexdigest()[:24]


def graph_key(identifier: str, mode: str, with_types: bool) -> GraphKey:
    about = {"model": identifier, "mode": mode, "token_type_ids": with_types, **current_versions()}
    return GraphKey(json.dumps(about, sort_keys=True))


def current_versions() -> dict[str, Any]:
    """The versions a graph must have been built with to be used here: torch's, the exporter's
    and onnxruntime's (None when it is not installed)."""
    import torch

    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    return {"torch": torch.__version__, "export": EXPORT_VERSION,
            "onnxruntime": getattr(onnxruntime, "__version__", None)}


@dataclasses.dataclass(frozen=True)
class CachedGraph:
    """An entry of the graph cache, as ``tinyaug cache`` lists it."""

    path: Path
    size: int  # bytes
    about: dict[str, Any] | None  # None: built before entries recorded it
    stale: bool  # built with other versions than this installation's: never used here again


def cached_graphs(cache: Path | None = None) -> list[CachedGraph]:
    """Every graph in the cache (not a writer's temporary folder), each with its size and whether
    this installation can still use it."""
    root = graphs_root(cache)
    if not root.is_dir():
        return []
    current = current_versions()
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            about = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            about = None
        stale = not isinstance(about, dict) or any(about.get(k) != v for k, v in current.items())
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        found.append(CachedGraph(folder, size, about if isinstance(about, dict) else None, stale))
    return found


def graphs_root(cache: Path | None = None) -> Path:
    """Where the graphs live: ``onnx/`` in ``cache`` (default: $TINYAUG_CACHE, beside the vectors')."""
    return (cache or cache_dir()) / "onnx"


def entry(key: GraphKey | str, cache: Path | None) -> Path:
    """The folder of cache entry ``key``."""
    return graphs_root(cache) / (key if isinstance(key, str) else key.name)


def cached(key: GraphKey | str, cache: Path | None, build: Callable[[Path], None]) -> Path:
    """The model file of cache entry ``key``, built by ``build(folder)`` if it is not there yet: in
    a temporary sibling named with this process's id (a killed writer's is cleared by the next
    writer of the entry), with the umask's permissions, flushed to the disk, then renamed into
    place; when another process renamed its copy first, that one is kept."""
    folder = entry(key, cache)
    root = folder.parent
    if (folder / MODEL_FILE).is_file():
        return folder / MODEL_FILE
    logger.info("building the onnxruntime graph in %s (once per model and mode)", folder)
    building = None
    try:
        building = temporary_sibling(folder, directory=True)
        build(building)
        gc.collect()  # the exporter's traced graphs are garbage in cycles: gone before a start-up freezes what it loaded
        if isinstance(key, GraphKey):
            (building / KEY_FILE).write_text(key.about, encoding="utf-8")
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


def opened(key: GraphKey | str, cache: Path | None, build: Callable[[Path], None],
           start: Callable[[Path], T]) -> tuple[Path, T]:
    """Cache entry ``key`` (``cached``) and ``start(its model file)``, ONNX Runtime's session on
    it. An entry found in the cache that ONNX Runtime cannot load (its files damaged since they
    were written) is built once more."""
    for _ in range(2):
        found = (entry(key, cache) / MODEL_FILE).is_file()
        path = cached(key, cache, build)
        try:
            return path, start(path)
        except (TinyaugError, MemoryError):
            raise
        except Exception as exc:  # ONNX Runtime's errors derive from Exception alone
            if not found:  # just built: building it again would not help
                raise ModelLoadError(f"ONNX Runtime cannot load {path} ({first_line(exc)}); use --backend torch") \
                    from None
            logger.warning("ONNX Runtime cannot load %s (%s); building it again", path, first_line(exc))
            try:
                remove_tree(path.parent)
            except OSError as error:
                raise ModelLoadError(f"cannot remove the damaged onnxruntime graph {path.parent} ({error}); "
                                     "delete it, or set TINYAUG_CACHE to a writable folder") from None
    raise ModelLoadError(f"ONNX Runtime cannot load the graphs in {path.parent}; delete it and run again")


def first_line(exc: BaseException) -> str:
    """An exception's first line without terminal colours (the exporter's messages carry them)."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def exporting(model: torch.nn.Module) -> Iterator[None]:
    """torch.onnx quiet (its notes, and the graph it prints when it fails), and a model it cannot
    export refused in one line: such models run on ``--backend torch``."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), quiet("torch"):
        warnings.simplefilter("ignore")
        try:
            yield
        except (OSError, TinyaugError):
            raise
        except Exception as exc:
            while exc.__cause__ is not None:  # what torch.export tripped on, under the exporter's wrapping
                exc = exc.__cause__  # type: ignore[assignment]
            raise ModelLoadError(f"torch.onnx cannot export {type(model).__name__} for --backend onnxruntime "
                                 f"({first_line(exc)}); use --backend torch") from None


def export_masked(graph: torch.nn.Module, path: Path, with_types: bool) -> None:
    """``MaskedPositionLogits`` ``graph`` as ONNX at ``path`` (weights in ``path.data`` beside it),
    the batch, the length and the predictions dynamic."""
    import torch

    def example(batch: int, length: int, at: list[int], rows: list[int]) -> dict[str, Any]:
        ids = torch.randint(1000, 2000, (batch, length)) % graph.model.config.vocab_size
        return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids) if with_types else None,
                "at": torch.tensor(at), "rows": torch.tensor(rows)}

    batch, length, asked = torch.export.Dim("batch"), torch.export.Dim("length"), torch.export.Dim("predictions")
    shapes = ({0: batch, 1: length}, {0: batch, 1: length} if with_types else None, {0: asked}, {0: asked})
    _export(graph, graph.model, example(3, 7, [1, 2, 3, 5], [0, 1, 2, 2]), shapes, path,  # two words in row 2
            second=example(2, 5, [1, 3, 4], [0, 0, 1]))  # shorter: within any length the export took


def export_classifier(model: torch.nn.Module, path: Path, with_types: bool) -> None:
    """Sequence classifier ``model``'s logits (``TaskLogits``) as ONNX at ``path``, from the padded
    batch (ids, attention mask, token types if ``with_types``), the batch and the length dynamic."""
    import torch

    from tinyaug.distill.inference import TaskLogits

    def example(batch: int, length: int, padded: int) -> dict[str, Any]:
        ids = torch.randint(1000, 2000, (batch, length)) % model.config.vocab_size
        mask = torch.ones_like(ids)
        mask[0, length - padded:] = 0  # a padded row, as batches have them
        types = {"token_type_ids": torch.zeros_like(ids)} if with_types else {}
        return {"input_ids": ids, "attention_mask": mask, **types}

    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    shapes = tuple({0: batch, 1: length} for _ in range(3 if with_types else 2))
    _export(TaskLogits(model).eval(), model, example(3, 7, 2), shapes, path, second=example(2, 5, 1))


def _export(module: torch.nn.Module, model: torch.nn.Module, example: dict[str, Any], shapes: tuple, path: Path, *,
            second: dict[str, Any]) -> None:
    """``module(*example.values())`` exported to ``path`` (the inputs named by ``example``'s keys,
    None for one left out; ``shapes``: their dynamic dimensions), and checked on ``second``, a
    batch and length other than the export's: an exporter that fixed a size it should have left
    dynamic (or traced a branch of one shape) gives other logits there, and is refused."""
    import numpy as np
    import torch

    require("onnxscript")  # the exporter's own dependency
    names = [name for name, value in example.items() if value is not None]
    with exporting(model):
        program = torch.onnx.export(module, tuple(example.values()), None, input_names=names, output_names=["logits"],
                                    dynamic_shapes=shapes, dynamo=True, verbose=False, report=False)
        program.save(str(path), external_data=True)
    with torch.no_grad():
        want = module(*second.values()).numpy()
    try:
        session = open_session(path, 1)
    except (TinyaugError, MemoryError):
        raise
    except Exception as exc:  # ONNX Runtime's errors derive from Exception alone
        raise ModelLoadError(f"ONNX Runtime cannot load the graph torch.onnx exported for {type(model).__name__} "
                             f"({first_line(exc)}); use --backend torch") from None
    refused = f"torch.onnx exported {type(model).__name__} as a graph that"
    try:
        got = session.run(["logits"], {name: second[name].numpy() for name in names})[0]
    except MemoryError:
        raise
    except Exception as exc:  # a size the exporter fixed
        raise ModelLoadError(f"{refused} fails on a second batch and length ({first_line(exc)}); use --backend torch") \
            from None
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-3):
        raise ModelLoadError(f"{refused} gives other logits than PyTorch on a second batch and length; "
                             "use --backend torch")


def quantize(fp32: Path, path: Path) -> None:
    """Dynamic int8 of the fp32 graph: int8 weights, one scale per output channel."""
    require("onnx")  # onnxruntime's quantization tools read and write the graph with it
    quantization = require("onnxruntime.quantization")
    with warnings.catch_warnings(), quiet("root"):
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(str(fp32), str(path), per_channel=True,
                                      weight_type=quantization.QuantType.QInt8)


@contextlib.contextmanager
def quiet(name: str):
    """Silence a library's logger below errors for the duration (the exporter's progress notes)."""
    log = logging.getLogger(name if name != "root" else None)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
