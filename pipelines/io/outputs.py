"""The one rule for what a command may write, and where (README, "Outputs: what tinyaug will and
won't replace").

Every command that writes checks its target with ``check_output`` before it loads anything:

- a new path, or an empty folder, is written;
- an existing file or folder that the same command wrote (its ``replaceable`` predicate) is
  replaced only with ``--overwrite``; anything else is refused, and that message never suggests
  ``--overwrite``, which would refuse it too;
- an output is never one of the command's inputs or inside one, and an existing output never
  holds one (real paths compared, links followed), ``--overwrite`` or not; of a GLUE
  ``--data-dir`` the input is the task's folder (``task_folder``);
- a symbolic link is written through: the rules apply to the path it points at, which is what
  gets written; the link stays a link.

Also here: what "written by tinyaug" means for a dataset folder (``is_tinyaug_dataset``) or a
model folder (``has_file``), cheap identities of files and folders (``path_identity``, for
"already complete" checks that load nothing) and the lock a run holds on its output
(``output_lock``). Light: no heavy library is imported at module level.

Not here: how outputs are written (``storage``), what goes into them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tinyaug.errors import OutputError

Inputs = Iterable[tuple[str, "str | Path | None"]]  # (option, path): ("--data", "runs/aug"), ...

_HELD_LOCKS: set[str] = set()  # lock files this process holds (a lock is re-entrant within a process)


def real_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded and every symbolic link followed (``os.path.realpath``)."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _shown(target: str | Path, resolved: Path) -> str:
    return f"{target} (a link to {resolved})" if Path(target).is_symlink() else str(target)


def check_inputs(target: str | Path, inputs: Inputs, *, option: str = "--out") -> Path:
    """The real path of ``target``; an ``OutputError`` if it is one of ``inputs``, lies inside one,
    or exists and holds one. Inputs that are not paths (hub names, sizes) are skipped."""
    resolved = real_path(target)
    for name, path in inputs:
        if path is None or not Path(os.path.expanduser(str(path))).exists():
            continue
        source = real_path(path)
        if _within(resolved, source):
            where = "is" if resolved == source else "lies inside"
            raise OutputError(f"{option} {_shown(target, resolved)} {where} the input {name} {path}; an output "
                              f"never replaces or enters an input: choose another {option}")
        if resolved.exists() and _within(source, resolved):
            raise OutputError(f"{option} {_shown(target, resolved)} holds the input {name} {path}; replacing it "
                              f"would delete the input: choose another {option}")
    return resolved


def check_output(target: str | Path, *, command: str, what: str, option: str = "--out", inputs: Inputs = (),
                 overwrite: bool = False, kind: str = "folder",
                 replaceable: Callable[[Path], bool] | None = None) -> Path:
    """Check that ``command`` may write ``target`` (see the module docstring) and return the path
    to write: ``target`` with links followed. ``kind``: "folder" or "file". ``replaceable``: does
    this path hold what ``command`` writes (``what`` names it in the refusal)?"""
    if kind not in ("folder", "file"):
        raise ValueError(f"kind {kind!r}: expected folder or file")
    resolved = check_inputs(target, inputs, option=option)
    shown = _shown(target, resolved)
    if not resolved.exists():
        return resolved
    if kind == "folder" and not resolved.is_dir():
        raise OutputError(f"{option} {shown} is a file; tinyaug {command} writes a folder there: "
                          f"choose another {option}")
    if kind == "file" and resolved.is_dir():
        raise OutputError(f"{option} {shown} is a folder; tinyaug {command} writes a file there: name a file, "
                          f"or choose another {option}")
    if kind == "folder" and not any(resolved.iterdir()):
        return resolved  # an empty folder: nothing to lose
    if replaceable is not None and replaceable(resolved):
        if overwrite:
            return resolved
        raise OutputError(f"{option} {shown} already exists; pass --overwrite to replace it, "
                          f"or choose another {option}")
    raise OutputError(f"{option} {shown} exists and is not {what}, the only thing tinyaug {command} replaces: "
                      f"remove it yourself, or choose another {option}")


TINYAUG_DATASET = "a dataset written by tinyaug (augment, filter or teacher-logits)"  # what is_tinyaug_dataset accepts


def is_tinyaug_dataset(path: Path) -> bool:
    """A ``save_to_disk`` folder whose metadata is tinyaug's (what ``augment``, ``filter`` and
    ``teacher-logits`` write); read from ``dataset_info.json`` without loading the dataset."""
    from tinyaug.pipelines.io.schema import METADATA_KEY

    info_file = path / "dataset_info.json"
    if not (path / "state.json").is_file() or not info_file.is_file():
        return False
    try:
        description = json.loads(info_file.read_text(encoding="utf-8")).get("description") or "{}"
        return bool(json.loads(description).get(METADATA_KEY))
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return False


def has_file(name: str) -> Callable[[Path], bool]:
    """A predicate: does the folder hold the file ``name`` (a command's results file, e.g.
    ``finetune_results.json``, the mark of a folder that command wrote)?"""
    return lambda path: (path / name).is_file()


def task_folder(data_dir: str | Path | None, task: str | None) -> Path | None:
    """What a command reads under a GLUE ``--data-dir``: the task's folder (``DIR/SST-2``), or
    ``DIR`` itself when it is that folder. The input an output may not enter (a new folder beside
    the task folders, such as ``DIR/runs``, is fine)."""
    if data_dir is None:
        return None
    if task is None:
        return Path(data_dir)
    from tinyaug.tasks import get_task

    folder = Path(data_dir) / get_task(task).folder
    return folder if folder.is_dir() else Path(data_dir)


def path_identity(path: str | Path) -> str:
    """A cheap identity of a file or folder: its real path, and the size and modification time of
    each file (in a folder, of every file below it); it changes when any of them changes."""
    root = real_path(path)
    digest = hashlib.sha256(str(root).encode())
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(root) if file != root else ''}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def output_lock(lock_file: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created, with its folder) for the block, or raise
    ``OutputError(busy)`` at once when another process holds it. The lock goes with the process if
    it dies; taken again by the same process, it is simply held. The holder may delete the file
    (with its folder) before it lets go: a lock on a file no longer at ``lock_file`` is not
    taken, the one now there is."""
    import fcntl

    key = os.path.realpath(lock_file)
    if key in _HELD_LOCKS:
        yield
        return
    while True:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OutputError(busy) from None
        try:  # the holder may have removed the file (its work folder) as it let go: lock the one there now
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(lock_file)):
                break
        except FileNotFoundError:
            pass
        handle.close()
    with handle:
        _HELD_LOCKS.add(key)
        try:
            yield
        finally:
            _HELD_LOCKS.discard(key)
