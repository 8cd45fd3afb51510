"""Writing files and folders so that a reader never sees half of one.

One discipline for everything tinyaug writes (datasets, shards, exports, teacher logits, JSON,
the vector cache): write into a temporary sibling (``.NAME.tmp-XXXX``), then swap it into place.

- A new folder is renamed onto its name. A folder that replaces another is exchanged with it in
  one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``), so there is no moment when no dataset
  is in place; where the file system cannot exchange, the old one is renamed aside first and
  put back if the second rename fails.
- Files and folders get the permissions the process's umask gives (``mkstemp`` / ``mkdtemp``
  alone would make them 0600 / 0700, unreadable to a pipeline running as another user).
- A failure removes the temporary sibling and leaves the target as it was.
- Durable: the files and the folder are flushed to the disk (``fsync``) before the rename, and the
  parent folder after it, so a power loss leaves the old version or the new one, never a renamed
  file that is empty or cut short.
- ``data_files_problem`` says when a saved dataset's ``state.json`` does not match its folder.

Not here: what goes into the files (``schema``, the exports), resuming (the shard builder).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _open_permissions(path: Path, directory: bool) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def open_permissions(folder: Path) -> None:
    """Give the files in ``folder`` the permissions the umask gives (libraries that write through
    ``mkstemp``, safetensors among them, leave 0600)."""
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink():
            _open_permissions(path, directory=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clear_stale(target: Path) -> list[Path]:
    """Remove what killed writers left beside ``target``: temporary files and folders and
    half-deleted trash whose process (its id is in the name) is gone. Returns what it removed."""
    removed = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:tmp|trash|old)-(\d+)(?:-.*)?$")
    if not target.parent.is_dir():
        return removed
    for path in target.parent.iterdir():
        match = pattern.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def temporary_sibling(target: Path, directory: bool) -> Path:
    """An empty file or folder beside ``target`` (same file system), with umask permissions; its
    name carries this process's id, so that a later run can tell a killed writer's leftovers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(target)
    prefix = f".{target.name}.tmp-{os.getpid()}-"
    if directory:
        path = Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))
    else:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=prefix)
        os.close(fd)
        path = Path(name)
    _open_permissions(path, directory)
    return path


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to the disk (where the OS lets a folder be opened)."""
    try:
        flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
        fd = os.open(path, flags)
    except OSError:
        return  # a folder cannot be opened on some systems; nothing more can be done there
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):  # file systems without fsync
            raise
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and every folder in it, ``folder`` last."""
    for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
        if not path.is_symlink():
            fsync_path(path)
    fsync_path(folder)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False where the OS or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def remove_tree(path: Path) -> None:
    """Rename, then delete: a kill midway never leaves a half-deleted folder under its name."""
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def swap_into_place(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``; an existing ``target`` is replaced atomically and
    deleted afterwards."""
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{id(new)}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without an error it
    becomes ``target`` (replacing any folder there), otherwise it is removed."""
    target = Path(target)
    tmp = temporary_sibling(target, directory=True)
    try:
        yield tmp
        fsync_tree(tmp)
        swap_into_place(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; renamed onto ``target`` when the block ends
    without an error, removed otherwise."""
    target = Path(target)
    tmp = temporary_sibling(target, directory=False)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any | None:
    """The JSON in ``path``, or None when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def save_dataset(dataset: Any, target: str | Path, extra_files: dict[str, Any] | None = None,
                 carry_from: str | Path | None = None) -> Path:
    """``save_to_disk`` into ``target`` atomically (replacing a dataset there).

    ``extra_files``: ``{name: text or json-able}`` written into the folder before the swap, so a
    column and its description appear together or not at all. ``carry_from``: a dataset folder whose
    other small files (the card ``README.md``, ...) are copied over.
    """
    target = Path(target)
    with atomic_directory(target) as tmp:
        dataset.save_to_disk(str(tmp))
        if carry_from is not None:
            for item in Path(carry_from).iterdir():
                if item.is_file() and not (tmp / item.name).exists() \
                        and not item.name.endswith(".arrow") and item.name not in (extra_files or {}):
                    shutil.copy2(item, tmp / item.name)
        for name, content in (extra_files or {}).items():
            text = content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True) + "\n"
            (tmp / name).write_text(text, encoding="utf-8")
    return target


def data_files_problem(folder: Path) -> str | None:
    """What is wrong between a saved dataset's ``state.json`` and its Arrow files, or None: a file
    listed twice (every row would load twice), listed but absent or empty, or present but not listed
    (``datasets``' own ``cache-*.arrow`` files aside)."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        listed = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its state.json is unreadable ({type(exc).__name__}: {exc})"
    twice = sorted({name for name in listed if listed.count(name) > 1})
    if twice:
        return f"its state.json lists {', '.join(twice)} more than once"
    absent = [name for name in listed if not (folder / name).is_file()]
    if absent:
        return f"{', '.join(absent)}, listed in its state.json, is missing"
    empty = [name for name in listed if (folder / name).stat().st_size == 0]
    if empty:
        return f"{', '.join(empty)} is empty (0 bytes)"
    extra = sorted(p.name for p in folder.glob("*.arrow") if p.name not in listed and not p.name.startswith("cache-"))
    if extra:
        return f"it holds {', '.join(extra)}, which its state.json does not list"
    return None


def arrow_stream_rows(path: Path) -> int:
    """The rows in an Arrow IPC stream file (``datasets``' format), reading only the record batch
    headers of the memory-mapped file; ``ValueError`` if the file is empty or cut short."""
    import pyarrow as pa

    if path.stat().st_size == 0:
        raise ValueError(f"{path.name} is empty (0 bytes)")
    try:
        with pa.memory_map(str(path)) as source:
            return sum(batch.num_rows for batch in pa.ipc.open_stream(source))
    except (pa.ArrowException, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path.name} is cut short or damaged ({first})") from None
