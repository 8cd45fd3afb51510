"""Loading masked LMs and tokenizers: local directories, hub names, and the embedded starter.

A local directory is loaded directly. Anything else is a hub name: it is looked up in the local
Hugging Face cache first, and only if it is not there is the hub contacted, after a quick
reachability check, so an offline machine gets a clear error at once instead of a minute of
retries. Weights load through safetensors, or ``torch.load(weights_only=True)`` for legacy
``.bin`` files (transformers' default); nothing is unpickled. No model's own code runs: every
load passes ``trust_remote_code=False``, and a folder whose config asks for its own code
(``auto_map``) is refused before transformers could ask "run the custom code? [y/N]". A masked LM
whose head is missing from its weights (an encoder saved without it) is refused too.

Not here: the candidate logic (``tinyaug.augment.mlm``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io.network import HUB_PROBE_TIMEOUT, hub_reachable  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # torch loads when a model does: the command line imports this module for its names
    import torch

logger = logging.getLogger(__name__)

STARTER_MLM = "starter"  # the embedded offline masked LM (see data/README.md)
DEFAULT_MLM = STARTER_MLM


def looks_like_path(name: str) -> bool:
    """A name that can only be a path (a hub name is ``name`` or ``org/name``)."""
    return (name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _refused_pickle(exc: BaseException) -> bool:
    """Whether loading failed because a weights file needed a full unpickle (``weights_only``)."""
    import pickle

    while exc is not None:
        text = str(exc).lower()
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "weights only" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def from_pretrained(loader: Callable[..., Any], name_or_path: str | Path, what: str = "model", *, offline_hint: str = "",
                    **kwargs: Any) -> Any:
    """Call ``loader(name_or_path, ...)`` (a ``from_pretrained``) with offline-safe error handling.

    A directory is loaded directly. Anything else is taken as a hub name: first from the local
    cache only; if it is not cached, a quick socket probe decides between downloading and an
    immediate ``ModelLoadError`` (transformers itself retries for ~20 s when DNS fails).
    """
    name_or_path = str(name_or_path)
    kwargs["trust_remote_code"] = False  # never a model's own code, and never transformers' [y/N] prompt
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is a file; {what} wants a model directory "
                                 "(config.json, weights, tokenizer files)")
        refuse_custom_code(path, what)
        try:
            return loader(str(path), **kwargs)
        except Exception as exc:  # corrupt weights raise SafetensorError, bad configs many kinds
            _raise_if_custom_code(exc, path, what)
            if _refused_pickle(exc):
                raise ModelLoadError(
                    f"{path}: its weights are a pickle (pytorch_model.bin) holding more than tensors, and tinyaug "
                    "never unpickles a file, since that can run code; convert the model to safetensors with a tool "
                    "you trust (model.save_pretrained(DIR, safe_serialization=True)) and pass that folder") from None
            raise ModelLoadError(f"{path}: cannot load the {what} from this directory ({_first_line(exc)}); "
                                 "expected a directory written by save_pretrained (config.json, weights, "
                                 "tokenizer files)") from exc
    if looks_like_path(name_or_path):
        raise ModelLoadError(f"{name_or_path}: no such directory; pass the path of a saved {what} "
                             "(a folder with config.json) or a hub name such as bert-base-uncased")
    try:
        return loader(name_or_path, local_files_only=True, **kwargs)
    except OSError:
        pass  # not in the local cache
    except ValueError as exc:
        _raise_if_custom_code(exc, name_or_path, what)
        raise
    if not hub_reachable():
        hint = f", {offline_hint}" if offline_hint else ""
        raise ModelLoadError(
            f"{what} {name_or_path!r} is not a local directory nor in the Hugging Face cache, and tinyaug "
            "cannot reach the Hugging Face hub (offline?); pass a local model directory (one written by "
            f"save_pretrained){hint}")
    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        _raise_if_custom_code(exc, name_or_path, what)
        raise ModelLoadError(f"cannot load {what} {name_or_path!r} from the hub ({_first_line(exc)})") from exc


CUSTOM_CODE_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json")


def _custom_code_message(where: str | Path, what: str) -> str:
    return (f"{where}: this {what} needs its own Python code (auto_map / trust_remote_code), and tinyaug "
            "never runs a model's own code; use a model of a standard transformers architecture "
            "(BERT, RoBERTa, DistilBERT, ...) saved with save_pretrained")


def refuse_custom_code(folder: Path, what: str = "model") -> None:
    """Raise ``ModelLoadError`` if the model folder asks for its own code: an ``auto_map`` in its
    config or tokenizer config (transformers would otherwise ask "run the custom code? [y/N]")."""
    import json

    for name in CUSTOM_CODE_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # transformers' own load reports an unreadable file
        if isinstance(config, dict) and config.get("auto_map"):
            raise ModelLoadError(_custom_code_message(file, what))


def _raise_if_custom_code(exc: BaseException, where: str | Path, what: str) -> None:
    """Turn transformers' refusal under ``trust_remote_code=False`` into the one-line refusal."""
    text = str(exc)
    if "trust_remote_code" in text or "custom code" in text:
        raise ModelLoadError(_custom_code_message(where, what)) from None


@dataclasses.dataclass
class LoadedMLM:
    model: torch.nn.Module
    tokenizer: Any
    identifier: str  # what the dataset card records
    starter: dict[str, Any] | None = None  # the starter model's manifest, when it is the one used
    precision: str = "fp32"  # see ``at_precision``
    backend: str = "torch"  # or "onnxruntime" (``tinyaug.pipelines.io.onnx_runtime``)
    forward: Any = None  # the backend's ``MaskedForward`` (None: PyTorch runs ``model``)


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None -> cuda if available else cpu; otherwise the named device, checked."""
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]+)?", name):  # not meta, xla, ...: devices that run a model here
        raise ModelLoadError(f"--device {device!r}: expected cpu, cuda, cuda:N, mps or auto")
    resolved = torch.device(name)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: no CUDA device is visible here; use --device cpu or auto")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ModelLoadError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                             "(cuda:0 ...); choose one of them or auto")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"--device {device}: no Apple MPS device is available here; use --device cpu or auto")
    return resolved


def _starter_identity() -> tuple[str, dict[str, Any]]:
    """The embedded starter's identifier and what its card says about it (no weights read)."""
    from tinyaug.pipelines.starter.artifact import read_manifest, starter_summary
    from tinyaug.pipelines.starter.recipe import STARTER_MLM_ID

    manifest = read_manifest()
    about = {"id": manifest["id"], "tensors_sha256": manifest["tensors"]["sha256"], "base": manifest["base"],
             "recall": (manifest.get("evaluation") or {}).get("overall"), "summary": starter_summary(manifest)}
    return f"{STARTER_MLM_ID} (tensors sha256 {manifest['tensors']['sha256'][:12]})", about


def _mlm_tokenizer(name_or_path: str, hint: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, name_or_path, "masked LM", offline_hint=hint)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name_or_path}: tinyaug needs a fast tokenizer (tokenizer.json); "
                             "save one with AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(DIR)")
    if tokenizer.mask_token_id is None:
        raise ModelLoadError(f"{name_or_path}: the tokenizer has no mask token; pass a masked language model")
    return tokenizer


def identify_masked_lm(name_or_path: str) -> tuple[str, dict[str, Any] | None] | None:
    """``(identifier, starter card)`` of a masked LM whose files identify it (the embedded starter,
    a local folder), from those files alone: no weights, no tokenizer, no transformers. None for a
    hub name (its revision is known once it is loaded)."""
    if name_or_path == STARTER_MLM:
        return _starter_identity()
    if not Path(name_or_path).expanduser().is_dir():
        return None
    return f"{name_or_path} ({model_fingerprint(name_or_path, None)})", None


def describe_masked_lm(name_or_path: str) -> tuple[Any, Any]:
    """``(tokenizer, config)`` of a masked LM that ``identify_masked_lm`` identifies, read without
    its weights or its model code."""
    from transformers import AutoConfig

    if name_or_path == STARTER_MLM:
        from tinyaug.pipelines.starter.base import base_model_dir, load_tokenizer

        return load_tokenizer(), AutoConfig.from_pretrained(str(base_model_dir()))
    tokenizer = _mlm_tokenizer(name_or_path, "")
    return tokenizer, from_pretrained(AutoConfig.from_pretrained, name_or_path, "masked LM")


def load_masked_lm(name_or_path: str = DEFAULT_MLM, device: str | None = "auto") -> LoadedMLM:
    """A masked LM and its fast tokenizer, in eval mode on ``device``."""
    from transformers import AutoModelForMaskedLM

    target = resolve_device(device)
    if name_or_path == STARTER_MLM:
        from tinyaug.pipelines.starter.artifact import load_starter_mlm

        model, tokenizer = load_starter_mlm(device=str(target))
        identifier, about = _starter_identity()
        return LoadedMLM(model.eval(), tokenizer, identifier, about)
    hint = f"or leave out --mlm for the embedded starter model ({STARTER_MLM})"
    tokenizer = _mlm_tokenizer(name_or_path, hint)
    model, info = from_pretrained(AutoModelForMaskedLM.from_pretrained, name_or_path, "masked LM",
                                  offline_hint=hint, output_loading_info=True)
    refuse_untrained_head(name_or_path, model, info)
    return LoadedMLM(model.to(target).eval(), tokenizer, f"{name_or_path} ({model_fingerprint(name_or_path, model)})")


def refuse_untrained_head(name_or_path: str, model: torch.nn.Module, info: dict[str, Any]) -> None:
    """Raise if weights of the masked LM were not in the checkpoint (transformers would start them
    at random: a sentence encoder saved without its masked-LM head proposes random words)."""
    missing = sorted(info.get("missing_keys", ()))
    if not missing:
        return
    prefix = getattr(model, "base_model_prefix", "") + "."
    head = [k for k in missing if not k.startswith(prefix)]
    shown = head or missing
    listed = f"{', '.join(shown[:3])}{' ...' if len(shown) > 3 else ''}"
    if head:
        raise ModelLoadError(f"{name_or_path}: no masked-LM head in its weights ({listed} missing), so it would "
                             "propose random words; pass a masked language model (saved from e.g. "
                             "BertForMaskedLM), not an encoder saved without its head")
    raise ModelLoadError(f"{name_or_path}: the masked LM lacks weights {listed}; it is incomplete: pass a "
                         "complete masked language model")


PRECISIONS = ("fp32", "bf16", "fp16", "int8")


def check_precision(precision: str, device: torch.device) -> None:
    """Raise, with the fix, if ``precision`` cannot run on ``device``, or would be emulated there
    (``EmulatedPrecision``: bf16 on a CPU without AVX-512 BF16 or AMX, or on a GPU without it)."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise ModelLoadError("--precision fp16 needs a GPU (--device cuda); on the CPU use bf16 or int8")
    if precision == "int8" and device.type != "cpu":
        raise ModelLoadError(f"--precision int8 runs on the CPU only (the model is on {device}); "
                             "pass --device cpu, or on a GPU use fp16 or bf16")
    if precision == "bf16" and device.type == "cpu":
        from tinyaug.pipelines.io.cpu import cpu_info, native_bf16

        if not native_bf16():
            raise EmulatedPrecision(f"--precision bf16: this CPU ({cpu_info()['model']}) has no bf16 arithmetic "
                                    "(AVX-512 BF16 or AMX), so it would be emulated, many times slower than fp32; "
                                    "use --precision int8 (fast here, close to fp32) or fp32")
    if precision == "bf16" and device.type == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise EmulatedPrecision(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 "
                                    "arithmetic; use --precision fp16")


class EmulatedPrecision(ModelLoadError):
    """A precision the device would only emulate (slower than fp32)."""


def int8_engine() -> str:
    """The quantized engine for dynamic int8: oneDNN's kernels where the CPU has AMX tiles and
    oneDNN may use them (on the benchmark 1.4 times as fast end to end as the default x86/fbgemm
    engine, at the same agreement with fp32), PyTorch's default elsewhere (on AVX2, fbgemm's
    kernels are as fast as oneDNN's on large products and faster on small ones)."""
    import os

    import torch

    allowed = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()  # oneDNN's own cap on its kernels
    if "onednn" in torch.backends.quantized.supported_engines and ("AMX" in allowed or allowed == "ALL") and \
            getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return "onednn"
    return torch.backends.quantized.engine


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its Linear layers dynamically quantized in place: int8 weights with one scale
    per output channel, packed for ``int8_engine()`` (they keep it); activations quantized per call."""
    import warnings

    import torch

    previous = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = int8_engine()
        with warnings.catch_warnings():  # the eager dynamic-quantization API warns that it is deprecated
            warnings.simplefilter("ignore")
            per_channel = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            return torch.ao.quantization.quantize_dynamic(model, per_channel, dtype=torch.qint8, inplace=True)
    finally:
        torch.backends.quantized.engine = previous


def at_precision(loaded: LoadedMLM, precision: str) -> LoadedMLM:
    """``loaded`` with its masked LM in ``precision`` (its model is converted in place).

    ``fp32`` leaves it as it is. ``bf16`` and ``fp16`` cast weights and activations (fp16 on a
    GPU only). ``int8`` quantizes the Linear layers dynamically (int8 weights with one scale per
    output channel, activations quantized per call; CPU only) for ``int8_engine()``, which the
    identifier names. Per-channel scales keep 1 to 1.4 points more of fp32's top-15 candidates
    than one scale per matrix did (94.0% against 92.6-93.2% on the benchmark slice, fbgemm and
    oneDNN alike) at the same speed. Reduced
    precision changes the scores, and a context's scores then depend on which contexts share its
    batch; the identifier names the precision, so cards and resumed runs tell them apart.
    """
    import torch

    check_precision(precision, next(loaded.model.parameters()).device)
    if precision == "fp32":
        return loaded
    if loaded.precision != "fp32" or loaded.forward is not None:
        raise ModelLoadError(f"{loaded.identifier} is already in {loaded.precision}; start from the fp32 model")
    model, label = loaded.model, precision
    if precision == "int8":
        label = f"int8 {int8_engine()} per-channel"
        model = quantize_int8(model)
    else:
        model = model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
    return dataclasses.replace(loaded, model=model.eval(), identifier=f"{loaded.identifier} [{label}]",
                               precision=precision)


def model_fingerprint(name_or_path: str, model: torch.nn.Module) -> str:
    """Tells two models of the same name apart: the hub revision, or for a local folder a hash of
    its config and the sizes and modification times of its weight files."""
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return f"revision {getattr(model.config, '_commit_hash', None) or 'unknown'}"
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.name == "config.json":
            digest.update(file.read_bytes())
        elif file.suffix in (".safetensors", ".bin"):
            stat = file.stat()
            digest.update(f"{file.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return f"local {digest.hexdigest()[:12]}"


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
