"""Loading masked LMs and tokenizers: local directories, hub names, and the embedded starter.

A local directory is loaded directly. Anything else is a hub name: it is looked up in the local
Hugging Face cache first, and only if it is not there is the hub contacted, after a quick
reachability check, so an offline machine gets a clear error at once instead of a minute of
retries. Weights load through safetensors, or ``torch.load(weights_only=True)`` for legacy
``.bin`` files (transformers' default); nothing is unpickled.

Not here: the candidate logic (``tinyaug.augment.mlm``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch

from tinyaug.errors import ModelLoadError

logger = logging.getLogger(__name__)

STARTER_MLM = "starter"  # the embedded offline masked LM (see data/README.md)
DEFAULT_MLM = STARTER_MLM


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def from_pretrained(loader: Callable[..., Any], name_or_path: str, what: str, **kwargs: Any) -> Any:
    """Call ``loader(name_or_path, ...)`` (a ``from_pretrained``) with offline-safe error handling."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is a file; {what} wants a model directory "
                                 "(config.json, weights, tokenizer files)")
        try:
            return loader(str(path), **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{path}: cannot load {what} from this directory ({_first_line(exc)})") from exc
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelLoadError(f"{name_or_path}: no such directory; pass the path of a saved {what} "
                             "(a folder with config.json) or a hub name such as bert-base-uncased")
    try:
        return loader(name_or_path, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass  # not in the local cache
    if not hub_reachable():
        raise ModelLoadError(
            f"{what} {name_or_path!r} is not a local directory nor in the Hugging Face cache, and the "
            "hub cannot be reached (offline?); pass a local model directory (one that "
            "AutoModelForMaskedLM.from_pretrained loads), or run without --mlm for the embedded starter model")
    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {what} {name_or_path!r} from the hub ({_first_line(exc)})") from exc


@dataclasses.dataclass
class LoadedMLM:
    model: torch.nn.Module
    tokenizer: Any
    identifier: str  # what the dataset card records
    starter: dict[str, Any] | None = None  # the starter model's manifest, when it is the one used


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None -> cuda if available else cpu; otherwise the named device, checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but no CUDA device is available; use --device cpu")
    return resolved


def load_masked_lm(name_or_path: str = DEFAULT_MLM, device: str | None = "auto") -> LoadedMLM:
    """A masked LM and its fast tokenizer, in eval mode on ``device``."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    target = resolve_device(device)
    if name_or_path == STARTER_MLM:
        from tinyaug.pipelines import starter_mlm

        model, tokenizer = starter_mlm.load_starter_mlm(device=str(target))
        manifest = starter_mlm.read_manifest()
        return LoadedMLM(model.eval(), tokenizer, starter_mlm.STARTER_MLM_ID, manifest)
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, name_or_path, "masked LM")
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name_or_path}: tinyaug needs a fast tokenizer (tokenizer.json); "
                             "save one with AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(DIR)")
    if tokenizer.mask_token_id is None:
        raise ModelLoadError(f"{name_or_path}: the tokenizer has no mask token; pass a masked language model")
    model = from_pretrained(AutoModelForMaskedLM.from_pretrained, name_or_path, "masked LM")
    return LoadedMLM(model.to(target).eval(), tokenizer, str(name_or_path))
