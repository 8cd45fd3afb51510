"""The Python API for notebooks: ``datasets.Dataset`` in, augmented ``datasets.Dataset`` out.

    >>> import datasets, tinyaug                                        # doctest: +SKIP
    >>> sst2 = datasets.load_dataset("nyu-mll/glue", "sst2", split="train[:100]")
    >>> aug = tinyaug.augment_dataset(sst2, task="sst2", recipe=tinyaug.Recipe(variants_per_example=4))
    >>> aug.column_names
    ['sentence', 'label', 'idx', 'aug_example_id', 'aug_variant', 'aug_changes']

It builds the job ``tinyaug augment`` builds (``build.AugmentJob``) and runs it with the same
``run`` (same shards, same per-example generators), so the rows equal the command line's for the
same rows, recipe and models, on this process or on Ray (``executor=``).

Not here: the command line (``cli.augment``).
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Sequence

import datasets

from tinyaug.augment.methods import Method, method_name, parse_method
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.build import AugmentJob, BuildOptions, load_augmented, run
from tinyaug.pipelines.augmentation.methods import MethodModels, ModelSpec, load_models, models_needed
from tinyaug.pipelines.io.models import DEFAULT_MLM, LoadedMLM, at_precision
from tinyaug.pipelines.io.onnx_runtime import backend_device, on_onnxruntime
from tinyaug.pipelines.io.tables import table_from_dataset
from tinyaug.pipelines.io import glue
from tinyaug.tasks import INDEX, TaskSpec, get_task
from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS, LoadedVectors, load_vectors


def _in_task_schema(dataset: datasets.Dataset, spec: TaskSpec) -> datasets.Dataset:
    """``dataset`` with the task's types, as the command line reads them: ``label`` the task's
    ``ClassLabel`` (float32 for STS-B), ``idx`` int32; an in-memory table often has int64 for both."""
    wanted = glue.task_features(spec)
    features = dataset.features.copy()
    changed = [c for c in (spec.label_column, INDEX) if c in features and features[c] != wanted[c]]
    if not changed:
        return dataset
    for column in changed:
        features[column] = wanted[column]
    try:
        return dataset.cast(features)
    except (ValueError, TypeError) as exc:
        names = f" (names {list(spec.label_names)})" if spec.label_names else ""
        raise InputError(f"column {spec.label_column!r} does not fit task {spec.name}'s labels{names}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}; "
                         "pass labels as class indices, or leave out task= and give text_columns") from None


def _callers_mlm(mlm: LoadedMLM, device: str, precision: str, backend: str) -> LoadedMLM:
    """A masked LM the caller loaded, run in ``precision`` by ``backend``. It stays theirs, usable
    after the call as it was: its weights are not released, and reduced precision (which converts
    in place) converts a copy."""
    backend_device(backend, device, precision)
    if backend == "onnxruntime":
        return on_onnxruntime(mlm, precision, release=False)
    return at_precision(mlm if precision == "fp32" else dataclasses.replace(mlm, model=copy.deepcopy(mlm.model)),
                        precision)


def augment_dataset(dataset: datasets.Dataset, *, task: str | None = None,
                    text_columns: Sequence[str] | None = None, label_column: str | None = None,
                    recipe: Recipe | None = None, mlm: str | LoadedMLM = DEFAULT_MLM,
                    vectors: str | LoadedVectors = EMBEDDED_VECTORS, device: str = "auto",
                    precision: str = "fp32", batch_size: int = 64, out: str | Path | None = None,
                    overwrite: bool = False, method: "str | Method | None" = None,
                    shard_size: int = 1000, executor: Any = None, backend: str = "torch") -> datasets.Dataset:
    """Augment ``dataset`` (TinyBERT-style by default) and return the augmented dataset.

    ``task``: a GLUE task whose hub schema ``dataset`` has (``sentence``, ``label``, ``idx``, ...);
    it sets ``text_columns`` and ``label_column``, and ``idx`` seeds each example, as in the
    command line. Otherwise give ``text_columns`` (and ``label_column`` if there is one).
    ``mlm`` / ``vectors``: a name or path as in ``tinyaug augment --mlm/--vectors``, or models
    already loaded (``load_masked_lm``, ``load_vectors``) to reuse across calls.
    ``out``: also keep the dataset (with its card) in this folder, resumable; without it the
    result is built in a temporary folder and returned in memory.
    ``method``: a method's name as ``tinyaug augment --method`` takes it (``"random"``,
    ``"tinybert+eda:swap"``; default ``recipe.method``, ``tinybert``), or a method object of your
    own (``tinyaug.augment.methods``; README, "Writing your own method"); only the models the
    method needs are loaded.
    ``executor``: where the shards are built (``tinyaug.pipelines.scale``: None or a
    ``LocalExecutor`` here, a ``RayExecutor`` on Ray actors, which load ``mlm`` / ``vectors`` by
    name: give names, not loaded models); ``shard_size``: examples per shard.
    ``backend``: ``"onnxruntime"`` runs the masked LM with ONNX Runtime (fp32 or int8, CPU), as
    ``--backend`` does.
    """
    if not isinstance(dataset, datasets.Dataset):
        raise InputError(f"augment_dataset takes a datasets.Dataset, not {type(dataset).__name__} "
                         "(for a DatasetDict, pass one split: dataset['train'])")
    spec = get_task(task) if task else None
    columns = tuple(text_columns) if text_columns else (spec.text_columns if spec else ())
    if not columns:
        raise InputError("say which columns hold the text: text_columns=('sentence',) or task='sst2'")
    label = label_column if label_column is not None else (spec.label_column if spec else None)
    if spec is not None:
        dataset = _in_task_schema(dataset, spec)
    table = table_from_dataset(dataset, columns, label, task=spec,
                               source=f"{task or 'a'} datasets.Dataset ({len(dataset)} rows)")
    custom = method if method is not None and not isinstance(method, str) else None
    own = getattr(custom, "recipe", None)  # a method built with its own recipe draws by that one
    if own is not None and recipe is not None and dataclasses.replace(recipe, method=own.method) != own:
        raise InputError("augment_dataset got recipe= and a method built with another recipe; pass one of them "
                         "(the method's recipe is the one its variants are drawn with)")
    recipe = own or recipe or Recipe()
    if custom is not None:
        recipe = dataclasses.replace(recipe, method=custom.name)
    elif method is not None:
        recipe = dataclasses.replace(recipe, method=method_name(parse_method(method)))
    needed = models_needed(recipe) if custom is None else set()
    named = ModelSpec(mlm, vectors, precision=precision, backend=backend) \
        if isinstance(mlm, str) and isinstance(vectors, str) else None
    loaded_mlm = None
    if "mlm" in needed:
        if isinstance(mlm, str):  # as the command line loads it (from the cached graph where it can)
            loaded_mlm = load_models(ModelSpec(mlm, EMBEDDED_VECTORS, precision=precision, backend=backend),
                                     device, {"mlm"}).mlm
        else:
            loaded_mlm = _callers_mlm(mlm, device, precision, backend)
    loaded_vectors = None
    if "vectors" in needed:
        loaded_vectors = vectors if isinstance(vectors, LoadedVectors) else load_vectors(vectors)
    options = BuildOptions(batch_size=batch_size, shard_size=shard_size, overwrite=overwrite)

    def job(target: str | Path) -> AugmentJob:
        return AugmentJob(table, Path(target), recipe, MethodModels(loaded_mlm, loaded_vectors), named, custom, options)

    if out is not None:
        run(job(out), executor)
        return load_augmented(out)
    with tempfile.TemporaryDirectory(prefix="tinyaug-") as tmp:
        run(job(Path(tmp) / "aug"), executor)
        return datasets.load_from_disk(str(Path(tmp) / "aug"), keep_in_memory=True)
