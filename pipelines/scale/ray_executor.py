"""The Ray executor: shards built by a pool of actors on a Ray cluster (or a Ray instance
started here), behind the executor interface (``scale.executor``).

Each actor builds one worker with the run's factory (which loads its models once: a masked LM
and word vectors for ``augment``, a teacher for ``teacher-logits``), then takes one shard at a
time: the driver sends the shard's source rows through Ray's object store and gets its result
back the same way, and the shard runner writes it (``io.shard_runner``). So only the driver's
machine needs to see the output; the workers need the package and the models, not a shared file
system. Every actor must report the models the driver named (``executor.check_identifiers``),
when it starts and with every shard (a restarted actor loads them again, perhaps elsewhere).

Faults: an actor that dies mid-shard is restarted by Ray (it loads its models again) and the
shard is retried, up to ``max_retries`` times; shards are pure functions of their rows, so a
retried shard is the same shard. A driver that dies loses only the shards in flight: the same
command started again skips the shards already written.

Not here: which shards are missing, writing them, assembly (``io.shard_runner``); what a worker
does (``augmentation.shards``, ``distillation.teacher``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Iterator

from tinyaug.errors import TinyaugError
from tinyaug.pipelines.scale.executor import check_identifiers

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 512 * 2**20  # a Ray instance started here: shards are a few MB each


@dataclasses.dataclass(frozen=True)
class RaySettings:
    """Where and how wide to run. ``address``: a running cluster (``ray start --head`` prints it;
    ``RAY_ADDRESS`` is read when it is None); without either, a Ray instance starts on this machine
    for the run. ``actors``: how many [default: one per GPU of the cluster, else one per
    ``cpus_per_actor`` CPUs]. ``gpus_per_actor`` > 0 puts each actor on its own GPU share."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    max_retries: int = 3  # restarts of a dead actor, and retries of the shard it held

    @property
    def actor_device(self) -> str:
        """Where each actor runs its models: its GPU share, or the CPU."""
        return "cuda" if self.gpus_per_actor > 0 else "cpu"

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise TinyaugError(f"--actors {self.actors}: run at least one actor")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0 or self.max_retries < 0:
            raise TinyaugError("--cpus-per-actor must be above 0, and --gpus-per-actor and the retries at least 0")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TinyaugError("--engine ray needs Ray: pip install 'tinyaug[ray]' (or pip install ray)") from None
    return ray


RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


class _TokenNotice(logging.Filter):
    """Drops Ray's (2.5x) notice that token authentication is on, which a local instance has by
    default and which Ray repeated on every run; its other warnings (token authentication off,
    say) still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


_TOKEN_NOTICE = _TokenNotice()


def connect(settings: RaySettings) -> bool:
    """Join the cluster at ``settings.address`` / ``RAY_ADDRESS``, or start a local instance.
    Returns True when this call started Ray (the caller then shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    logging.getLogger(RAY_TOKEN_LOGGER).addFilter(_TOKEN_NOTICE)  # once: a filter is added only once
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyaugError(f"cannot start or reach {where} ({first}); check --ray-address / RAY_ADDRESS "
                           "(`ray status` on the head node shows it)") from None
    return True


def actor_count(settings: RaySettings, jobs: int) -> int:
    ray = import_ray()
    if settings.actors is not None:
        wanted = settings.actors
    else:
        resources = ray.cluster_resources()
        if settings.gpus_per_actor > 0:
            wanted = int(resources.get("GPU", 0) // settings.gpus_per_actor)
        else:
            wanted = int(resources.get("CPU", 1) // settings.cpus_per_actor)
    return max(1, min(wanted, jobs))


class _WorkerActor:
    """One worker, built once by its factory (loading its models here); one shard per call."""

    def __init__(self, factory: Any, threads: int) -> None:
        try:
            import torch
        except ImportError:  # a worker without torch: nothing to size
            pass
        else:
            torch.set_num_threads(threads)
        self.worker = factory()

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **getattr(self.worker, "identifiers", {})}

    def run(self, rows: Any) -> tuple[dict[str, Any], Any]:
        """What this worker loaded, and the shard's result: an actor Ray restarted (on another node,
        say) loaded its models again, so every result says what built it."""
        return self.ready(), self.worker(rows, None)


class RayExecutor:
    """Shards on a pool of Ray actors, one shard in flight per actor, handed back as each completes
    (see the module docstring). ``device``: where the actors load their models.

    ``on_start(actors)`` hears each actor's ``ready()`` answer (its process id and what it loaded)
    and ``on_submit(info, job)`` each shard sent: hooks for progress displays and fault tests.
    """

    remote = True

    def __init__(self, settings: RaySettings = RaySettings(),
                 on_start: Callable[[list[dict]], None] | None = None,
                 on_submit: Callable[[dict, Any], None] | None = None) -> None:
        self.settings = settings
        self.on_start, self.on_submit = on_start, on_submit
        self.device = settings.actor_device

    def map(self, factory: Any, jobs: list, source: Callable[[Any], Any], *, expected: dict | None = None,
            progress: Callable[[int], None] | None = None) -> Iterator[tuple[Any, Any]]:
        if not jobs:
            return
        ray = import_ray()
        started = connect(self.settings)
        settings = self.settings
        remote = ray.remote(num_cpus=settings.cpus_per_actor, num_gpus=settings.gpus_per_actor,
                            max_restarts=settings.max_retries, max_task_retries=settings.max_retries)(_WorkerActor)
        threads = max(1, int(settings.cpus_per_actor))
        actors = [remote.remote(factory, threads) for _ in range(actor_count(settings, len(jobs)))]
        try:
            infos = _gather(ray, [actor.ready.remote() for actor in actors], "loading the models in a Ray actor")
            for info in infos:
                check_identifiers(info, expected, f"a Ray actor (pid {info.get('pid')})")
            if self.on_start:
                self.on_start(infos)
            queue, pending = list(jobs), {}

            def submit(actor: Any, info: dict) -> None:
                job = queue.pop(0)
                pending[actor.run.remote(ray.put(source(job)))] = (actor, info, job)
                if self.on_submit:
                    self.on_submit(info, job)

            for actor, info in zip(actors, infos):
                if queue:
                    submit(actor, info)
            while pending:
                [done], _ = ray.wait(list(pending), num_returns=1)
                actor, info, job = pending.pop(done)
                built_by, result = _gather(ray, done, f"shard {job.index}")
                check_identifiers(built_by, expected, f"a Ray actor (pid {built_by.get('pid')}, shard {job.index})")
                if progress is not None:
                    progress(job.rows)
                yield job, result
                if queue:
                    submit(actor, info)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()


def _gather(ray: Any, refs: Any, what: str) -> Any:
    """``ray.get`` whose failures (an actor out of retries, an error inside one) become one line."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
        if isinstance(cause, TinyaugError):
            raise TinyaugError(f"{what}: {cause}") from None
        message = str(cause or exc).strip().splitlines()
        raise TinyaugError(f"{what} failed in a Ray actor: {message[-1] if message else type(exc).__name__}; "
                           "the shards written so far are kept: rerun the same command to resume") from None
    except ray.exceptions.RayActorError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if "creation task" in str(exc) and lines:  # the actor's __init__ raised: loading its models failed
            cause = lines[-1].split("Error: ", 1)[-1] if "Error: " in lines[-1] else lines[-1]
            raise TinyaugError(f"{what}: a Ray actor could not start ({cause})") from None
        raise TinyaugError(f"{what}: a Ray actor died more often than it may be restarted "
                           f"({type(exc).__name__}); the shards written so far are kept: rerun the same "
                           "command to resume") from None


def executor_for(settings: RaySettings | None, on_start: Callable[[list[dict]], None] | None = None) -> Any:
    """The executor ``--engine`` names: a ``LocalExecutor`` without Ray settings (``--engine local``),
    else a ``RayExecutor`` (Ray itself is imported only when it runs)."""
    from tinyaug.pipelines.scale.executor import LocalExecutor

    return LocalExecutor() if settings is None else RayExecutor(settings, on_start=on_start)
