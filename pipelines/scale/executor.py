"""Executors: where a run's shards are built. One interface, two implementations.

An executor takes a worker factory and a list of shards and hands back each shard's result as
it completes, in any order (``Executor.map``); the shard runner (``io.shard_runner``) writes
each as it arrives. The factory is called once per worker process to build its worker (it loads
the models there); the worker is then called once per shard with the shard's source rows:

    >>> class Double:                           # a factory: picklable, builds a worker
    ...     def __call__(self):
    ...         return lambda rows, progress: [2 * r for r in rows]
    >>> from tinyaug.pipelines.io.shard_runner import shard_jobs
    >>> jobs = shard_jobs(5, 2)
    >>> [(job.index, out) for job, out in LocalExecutor().map(Double(), jobs, lambda j: list(range(j.start, j.stop)))]
    [(0, [0, 2]), (1, [4, 6]), (2, [8])]

- ``LocalExecutor`` (``--engine local``): one worker in this process, shards one after another;
  the factory need not be picklable (it may hold models already loaded here, or a method object).
- ``RayExecutor`` (``--engine ray``, ``scale.ray_executor``): one worker per Ray actor; the factory
  travels pickled and loads its own models, named, on the actor's device.

A worker may carry ``identifiers`` (what it loaded: model names and fingerprints); every worker's
must equal ``expected`` (what the run key names), or rows would differ by machine.

Not here: which shards are missing and writing them (``io.shard_runner``), what a worker does
(``augmentation.shards``, ``distillation.teacher``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

from tinyaug.errors import TinyaugError
from tinyaug.pipelines.io.shard_runner import ShardJob

Progress = Callable[[int], None]  # hears units of work done (rows)


class Worker(Protocol):
    """Builds one shard: its source rows in, its result out; ``progress(rows)`` as it goes, if it can."""

    def __call__(self, rows: Any, progress: Progress | None) -> Any: ...


class WorkerFactory(Protocol):
    """Builds a worker, once per worker process (loading its models there)."""

    def __call__(self) -> Worker: ...


class Executor(Protocol):
    """Runs shards through workers. ``remote``: the workers live in other processes (the factory
    is pickled, and loads its models on ``device``); else in this one."""

    remote: bool
    device: str

    def map(self, factory: WorkerFactory, jobs: list[ShardJob], source: Callable[[ShardJob], Any], *,
            expected: dict[str, str] | None = None,
            progress: Progress | None = None) -> Iterator[tuple[ShardJob, Any]]:
        """``(job, worker(source(job)))`` for every job, each as it completes, in any order.
        ``progress`` hears every job's rows once in all: from the worker as it goes where it runs
        in this process, the rest when its result arrives."""


def check_identifiers(found: dict[str, Any], expected: dict[str, str] | None, where: str) -> None:
    """Every worker must have loaded what the run key names, or rows would differ by machine."""
    for what, identifier in (expected or {}).items():
        if found.get(what) != identifier:
            raise TinyaugError(f"{where} loaded {what} {found.get(what)!r}, not {identifier!r} as this process did; "
                               "give every node the same model files (or a hub name) so that every shard is built "
                               "with the same models")


class LocalExecutor:
    """Every shard in this process, one after another, by one worker built on the first shard."""

    remote = False
    device = "cpu"  # unused: a local worker uses what its factory holds

    def __init__(self) -> None:
        self.worker: Worker | None = None  # the last worker built (its timings, say)

    def map(self, factory: WorkerFactory, jobs: list[ShardJob], source: Callable[[ShardJob], Any], *,
            expected: dict[str, str] | None = None,
            progress: Progress | None = None) -> Iterator[tuple[ShardJob, Any]]:
        worker = None
        for job in jobs:
            if worker is None:
                worker = self.worker = factory()
                check_identifiers(getattr(worker, "identifiers", {}), expected, "this process's worker")
            counted = [0]

            def heard(rows: int) -> None:
                counted[0] += rows
                if progress is not None:
                    progress(rows)

            result = worker(source(job), heard)
            if progress is not None and counted[0] < job.rows:
                progress(job.rows - counted[0])
            yield job, result
