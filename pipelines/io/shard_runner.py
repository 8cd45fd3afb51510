"""The resumable shard runner: the one loop behind ``augment`` and ``teacher-logits``.

A run splits its rows into shards (``ShardJob``, ``shard_jobs``) and works in a folder ``WORK``
beside its output (``OUT.partial`` for augment, ``DATA.teacher.partial`` for teacher-logits):

- ``run_lock``: ``WORK/run.lock``, held for the whole run, so a second run on the same output stops
  at once with one line; a work folder the lock created and nothing else filled goes with it.
- ``ShardRunner.open``: ``WORK/run.json`` holds the run key (everything that decides the output);
  a rerun with another key is refused in one line (rerun with the same arguments, or delete
  ``WORK``) while the folder holds shards that run could still use. Two cases start afresh
  instead: no shard was built, or that run had already written its result (``WORK/finishing``
  records the output as it was before ``finish`` wrote it; a kill before the clean-up leaves shards
  that are spent). Shards found damaged (``ShardStore.problem``) are named in one line and built
  again; the rest of the shards are missing, to be built.
- ``ShardRunner.write``: each shard's result as it arrives, in any order (from an executor,
  ``pipelines.scale.executor``), written atomically (``ShardStore.write``): a shard exists whole
  or not at all. An interrupt a library swallowed stops the run at the next shard, shards kept.
- ``ShardRunner.finish``: the caller's assembly of every shard into the output (which swaps it into
  place atomically, ``io.storage``), then ``WORK`` goes.

So a run killed at any moment and started again with the same arguments builds only what is
missing and ends with the output of an uninterrupted run.

Not here: what a shard holds and how it is built (``augmentation.shards``,
``distillation.teacher``), where shards are built (``pipelines.scale``), the output rule
(``io.outputs``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar

from tinyaug.errors import InputError
from tinyaug.pipelines.io.interrupts import check_interrupted
from tinyaug.pipelines.io.outputs import output_lock
from tinyaug.pipelines.io.storage import clear_stale, remove_tree, write_json

LOCK_FILE = "run.lock"  # held for the whole run
RUN_FILE = "run.json"  # the run key
FINISHING_FILE = "finishing"  # every shard is built: the result is being written (over what, JSON)

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """Shard ``index``: source rows ``start`` to ``stop`` (exclusive)."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    @property
    def rows(self) -> int:
        return self.stop - self.start


def shard_jobs(total: int, shard_size: int) -> list[ShardJob]:
    """The shards of ``total`` rows, ``shard_size`` rows each (the last one may be shorter).

    >>> [(j.start, j.stop) for j in shard_jobs(5, 2)]
    [(0, 2), (2, 4), (4, 5)]
    """
    return [ShardJob(i, lo, min(total, lo + shard_size)) for i, lo in enumerate(range(0, total, shard_size))]


@contextlib.contextmanager
def run_lock(work: Path, busy: str) -> Iterator[None]:
    """Hold ``WORK/run.lock`` for the block, or raise ``OutputError(busy)`` at once when another
    process holds it (the lock goes with the process if it dies). A work folder this call created
    that holds nothing but the lock when the block ends (a refusal, "already complete", a failure
    before the first shard, a finished run) goes, and so do the folders made for it, when empty:
    it would read as an interrupted run."""
    created = [folder for folder in (work, *work.parents) if not folder.exists()]  # deepest first
    with output_lock(work / LOCK_FILE, busy):  # refused: the folder is the holder's, left alone
        try:
            yield
        finally:  # while the lock is held: no other run can have taken it in between
            if work in created and work.is_dir() and {p.name for p in work.iterdir()} <= {LOCK_FILE}:
                (work / LOCK_FILE).unlink(missing_ok=True)
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty


class ShardStore(Protocol):
    """How one kind of shard is kept in the work folder."""

    def path(self, work: Path, job: ShardJob) -> Path:
        """Where shard ``job`` lives in ``work``."""

    def write(self, result: Any, target: Path) -> None:
        """Save one shard's result as ``target``, atomically."""

    def problem(self, job: ShardJob, path: Path) -> str | None:
        """What is wrong with the shard found at ``path``, or None when it is whole."""


class ShardRunner:
    """One resumable run in ``work`` (locked by the caller, ``run_lock``): its ``key``, its
    ``jobs`` and how a shard is kept (``store``). ``notify`` hears the resume and every damaged
    shard (default: a warning in the log); ``what`` names the shards in those lines."""

    def __init__(self, work: Path, key: dict, jobs: list[ShardJob], store: ShardStore, *,
                 notify: Callable[[str], None] | None = None, what: str = "shards") -> None:
        self.work, self.key, self.jobs, self.store = work, key, jobs, store
        self.notify = notify or logger.warning
        self.what = what
        self.missing: list[ShardJob] = list(jobs)
        self.resumed = 0  # shards an earlier run built

    def open(self) -> list[ShardJob]:
        """Check or write the run key, drop the damaged shards; the shards still to build."""
        clear_stale(self.work)  # a kill while the work folder was being removed left .WORK.trash-N
        self._check_key()
        self.missing = []
        for job in self.jobs:
            path = self.store.path(self.work, job)
            if not path.exists() and not path.is_symlink():
                self.missing.append(job)
                continue
            problem = self.store.problem(job, path)
            if problem is not None:
                self.notify(f"shard {path} is damaged ({problem}): building it again")
                remove_tree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
                self.missing.append(job)
        self.resumed = len(self.jobs) - len(self.missing)
        if self.resumed:
            self.notify(f"Resuming: {self.resumed} of {len(self.jobs)} {self.what} were already built")
        return self.missing

    def _check_key(self) -> None:
        run_file = self.work / RUN_FILE
        if run_file.is_file():
            try:
                previous = json.loads(run_file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{run_file} is unreadable; delete {self.work} to start over") from exc
            if previous == self.key:
                return
            if self._result_written():
                logger.info("%s: a finished run's leftovers, cleared", self.work)
            elif self._any_built():  # with nothing built, nothing is lost: start afresh
                changed = sorted(k for k in {**previous, **self.key} if previous.get(k) != self.key.get(k))
                raise InputError(f"{self.work} holds an interrupted run with other arguments or inputs "
                                 f"({', '.join(changed)} {'differ' if len(changed) > 1 else 'differs'}); rerun "
                                 f"with the same arguments to resume, or delete {self.work} to start over")
        run_file.unlink(missing_ok=True)  # first: a kill while clearing never leaves shards under a run key
        for path in self.work.iterdir() if self.work.is_dir() else ():
            if path.name != LOCK_FILE:
                remove_tree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        self.work.mkdir(parents=True, exist_ok=True)
        write_json(run_file, self.key)

    def _any_built(self) -> bool:
        """Whether the earlier run left any shard (its files; a killed writer's temporary ``.name``
        ones do not count), whatever its shard size: only then is another key refused."""
        return any(not path.is_dir() and not any(part.startswith(".") for part in path.relative_to(self.work).parts)
                   and path.name not in (RUN_FILE, LOCK_FILE, FINISHING_FILE) for path in self.work.rglob("*"))

    def _result_written(self) -> bool:
        """Whether the run that left ``WORK`` got as far as writing its result: ``WORK/finishing``
        records the target's identity before ``finish`` wrote it, and the target has changed since
        (its shards are then spent). A kill before the result was written keeps the shards."""
        try:
            marker = json.loads((self.work / FINISHING_FILE).read_text(encoding="utf-8"))
            return _identity(Path(marker["target"])) != marker["before"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def write(self, results: Iterable[tuple[ShardJob, Any]]) -> None:
        """Write each shard's result as it arrives (an executor's ``map``), in any order. On an
        interrupt or a failed write the results are closed at once (a Ray executor's actors go)."""
        try:
            for job, result in results:
                self.store.write(result, self.store.path(self.work, job))
                logger.info("wrote shard %d/%d", job.index + 1, len(self.jobs))
                check_interrupted()  # an interrupt a library swallowed stops here, the shard saved
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def paths(self) -> list[Path]:
        """Every shard's path, in order (all of them exist once ``write`` has taken the missing)."""
        return [self.store.path(self.work, job) for job in self.jobs]

    def finish(self, target: Path, assemble: Callable[[list[Path]], T]) -> T:
        """``assemble(shard paths)`` writes the output ``target`` (atomically); then the work
        folder goes. ``WORK/finishing`` records ``target`` as it was before: after a kill between
        the two, the rerun sees the result written and does not mistake the leftovers for an
        interrupted run of other arguments (a result written onto its own input changes that
        input's identity, hence the key); after a kill before the result was written, the shards
        are still those of a run that may be resumed."""
        missing = [path for path in self.paths() if not path.exists()]
        if missing:
            raise InputError(f"{len(missing)} shards are missing in {self.work} (first: {missing[0].name}); "
                             "rerun the same command to build them")
        write_json(self.work / FINISHING_FILE, {"target": str(target), "before": _identity(target)})
        clear_stale(target)
        result = assemble(self.paths())
        remove_tree(self.work)
        return result


def _identity(path: Path) -> list[int] | None:
    """What tells a file or folder from the one written in its place: device, inode, mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_dev, stat.st_ino, stat.st_mtime_ns]
