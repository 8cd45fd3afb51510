"""The Ray engine: shards built by actors on a Ray cluster (or a Ray instance started here).

Each actor loads its models once (a masked LM and word vectors for ``augment``, a teacher for
``teacher-logits``), then takes one shard at a time: the driver sends the shard's source rows
through Ray's object store and gets its result back the same way, and the builder writes it
(``augmentation.build``, ``distillation.teacher``). So only the driver's machine needs to see
``--out``; the workers need the package and the models, not a shared file system.

Faults: an actor that dies mid-shard is restarted by Ray (it loads its models again) and the
shard is retried, up to ``max_retries`` times; shards are pure functions of their rows, so a
retried shard is the same shard. A driver that dies loses only the shards in flight: the same
command started again skips the shards already written.

Not here: which shards are missing, writing them, assembly (the builders).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Iterator, Sequence

from tinyaug.errors import TinyaugError

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 512 * 2**20  # a Ray instance started here: shards are a few MB each


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What an augmentation actor loads: the command line's model options."""

    mlm: str
    vectors: str
    vectors_format: str = "auto"
    trust_pickle: bool = False
    precision: str = "fp32"


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


class _AugmentActor:
    """Loads the method's models once (``methods.models_needed``); augments one shard per call."""

    def __init__(self, spec: ModelSpec, recipe: Any, text_columns: tuple[str, ...], features: Any,
                 batch_size: int, examples_per_batch: int, threads: int, device: str) -> None:
        import torch

        from tinyaug.pipelines.augmentation.methods import MethodModels, build_method, models_needed
        from tinyaug.pipelines.io.models import at_precision, load_masked_lm
        from tinyaug.pipelines.io.vectors import load_vectors

        torch.set_num_threads(threads)
        needed = models_needed(recipe)  # only what the method needs, as the driver loaded
        mlm = at_precision(load_masked_lm(spec.mlm, device), spec.precision) if "mlm" in needed else None
        vectors = load_vectors(spec.vectors, spec.vectors_format, allow_pickle=spec.trust_pickle) \
            if "vectors" in needed else None
        models = MethodModels(mlm, vectors)
        self.identifiers = models.identifiers()
        self.augmenter = build_method(recipe, models, batch_size)
        self.args = (text_columns, features, examples_per_batch)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.identifiers}

    def run(self, job: Any, source: Any) -> tuple[Any, Any, dict]:
        from tinyaug.pipelines.augmentation.shards import augment_shard

        text_columns, features, examples_per_batch = self.args
        table, stats = augment_shard(source, text_columns, self.augmenter, features, examples_per_batch)
        return job, table, stats.to_dict()


class _TeacherActor:
    """Loads the teacher once; computes one shard's logits per call."""

    def __init__(self, teacher: str, task: str, max_length: int, batch_size: int, threads: int,
                 device: str) -> None:
        import torch

        from tinyaug.pipelines.distillation.teacher import load_teacher

        torch.set_num_threads(threads)
        self.predict, _, self.identifiers = load_teacher(teacher, task, max_length, batch_size, device)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.identifiers}

    def run(self, job: Any, source: Any) -> tuple[Any, Any]:
        return job, self.predict(source)


class RayEngine:
    """Shards on Ray actors, handed back as each completes (see the module docstring).

    ``on_start(actors)`` hears each actor's ``ready()`` answer (its process id and what it loaded)
    and ``on_submit(info, job)`` each shard sent: hooks for progress displays and fault tests.
    """

    def __init__(self, settings: RaySettings = RaySettings(), spec: ModelSpec | None = None,
                 on_start: Callable[[list[dict]], None] | None = None,
                 on_submit: Callable[[dict, Any], None] | None = None) -> None:
        self.settings, self.spec = settings, spec
        self.on_start, self.on_submit = on_start, on_submit

    def augment(self, work: Any, jobs: list, source: Callable[[Any], Any],
                progress: Callable[[int], None] | None) -> Iterator[tuple[Any, Any, Any]]:
        from tinyaug.augment.engine import Stats

        if self.spec is None:
            raise TinyaugError("the Ray engine needs the model options (ModelSpec) to load models in its actors")
        from tinyaug.pipelines.augmentation.methods import MethodModels

        expected = MethodModels(work.mlm, work.vectors).identifiers()
        args = (self.spec, work.recipe, work.text_columns, work.features, work.batch_size, work.examples_per_batch)
        for job, table, stats in self._pool(_AugmentActor, args, expected, jobs, source):
            if progress:
                progress(job.stop - job.start)
            yield job, table, Stats.from_dict(stats)

    def teacher_logits(self, teacher: str, task: str, max_length: int, batch_size: int, expected: dict,
                       jobs: list, source: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
        yield from self._pool(_TeacherActor, (teacher, task, max_length, batch_size), expected, jobs, source)

    def _pool(self, actor_class: type, args: Sequence, expected: dict, jobs: list,
              source: Callable[[Any], Any]) -> Iterator[tuple]:
        """Run ``jobs`` on a pool of ``actor_class`` actors, one shard in flight per actor."""
        if not jobs:
            return
        ray = import_ray()
        started = connect(self.settings)
        settings = self.settings
        device = "cuda" if settings.gpus_per_actor > 0 else "cpu"
        threads = max(1, int(settings.cpus_per_actor))
        remote = ray.remote(num_cpus=settings.cpus_per_actor, num_gpus=settings.gpus_per_actor,
                            max_restarts=settings.max_retries, max_task_retries=settings.max_retries)(actor_class)
        actors = [remote.remote(*args, threads, device) for _ in range(actor_count(settings, len(jobs)))]
        try:
            infos = _gather(ray, [actor.ready.remote() for actor in actors], "loading the models in a Ray actor")
            for info in infos:
                _check_same_models(info, expected)
            if self.on_start:
                self.on_start(infos)
            queue, pending = list(jobs), {}

            def submit(actor: Any, info: dict) -> None:
                job = queue.pop(0)
                pending[actor.run.remote(job, ray.put(source(job)))] = (actor, info, job)
                if self.on_submit:
                    self.on_submit(info, job)

            for actor, info in zip(actors, infos):
                if queue:
                    submit(actor, info)
            while pending:
                [done], _ = ray.wait(list(pending), num_returns=1)
                actor, info, job = pending.pop(done)
                yield _gather(ray, done, f"shard {job.index}")
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


def _check_same_models(info: dict, expected: dict) -> None:
    """Every actor must have loaded the models the run key names, or rows would differ by node."""
    for what, identifier in expected.items():
        if info.get(what) != identifier:
            raise TinyaugError(f"a Ray actor (pid {info.get('pid')}) loaded {what} {info.get(what)!r}, not "
                               f"{identifier!r} as this process did; give every node the same model files "
                               "(or a hub name) so that every shard is built with the same models")
