"""What every command shares: the error decorator, logging, and the options several commands take.

This module, like every command module, imports only click and light tinyaug modules at import
time, so that ``tinyaug --help`` and each command's ``--help`` answer without loading torch,
transformers or datasets; a command loads them when it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import gc
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import click

from tinyaug.errors import TinyaugError
from tinyaug.augment.collector import without_cycle_collection
from tinyaug.augment.recipe import CONTEXT_MODES
from tinyaug.pipelines.io.models import DEFAULT_MLM, PRECISIONS
from tinyaug.pipelines.io.onnx_runtime import BACKENDS, check_actor_device
from tinyaug.tasks import TASK_NAMES, get_task
from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS, FORMATS as VECTOR_FORMATS

POSITIVE = click.IntRange(min=1)  # counts, sizes and budgets: 0 or less is never meant
SEQ_LENGTH = click.IntRange(8, 4096)  # model positions: [CLS], [SEP] and a few words at least

_NOISY_LIBRARIES = ("transformers", "datasets", "huggingface_hub", "gensim", "accelerate")


def setup_logging(verbose: int) -> None:
    """One set-up for every command: WARNING by default, INFO with -v, DEBUG with -vv; the
    libraries' own chatter stays at WARNING below -vv."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tinyaug").setLevel(level)
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(level if verbose >= 2 else max(level, logging.WARNING))


def show_progress(enabled: bool = True) -> None:
    """Progress lines of tinyaug's own long jobs (training, building the starter) at INFO."""
    logger = logging.getLogger("tinyaug")
    if enabled and logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


def quiet_libraries() -> None:
    """No progress bars, and transformers' load reports ("newly initialised ...", expected when a
    head starts fresh) only with -vv. Called when a command runs, not at import."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    if logging.getLogger("tinyaug").getEffectiveLevel() > logging.DEBUG:
        transformers.utils.logging.set_verbosity_error()


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space, or write somewhere else",
    errno.EDQUOT: "the disk quota is used up: free some space, or write somewhere else",
    errno.EACCES: "permission denied: check the permissions, or choose another path",
    errno.EPERM: "operation not permitted: check the permissions, or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ELOOP: "too many levels of symbolic links (a link loop?): fix the link, or choose another path",
    errno.ENAMETOOLONG: "the name is too long for the file system: choose a shorter path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EEXIST: "something is already there: remove it, or choose another path",
    errno.EISDIR: "a folder where a file was expected: name a file",
    errno.ENOENT: "no such file or folder",
}


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation: the path, what went wrong, and the fix."""
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    hint = _OS_HINTS.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    detail = f" ({exc.strerror})" if exc.strerror and exc.errno in _OS_HINTS else ""
    first = f"{where}: {hint}{detail}" if where else f"{hint}{detail}"
    return first.splitlines()[0]


# the commands that load models or data before their first progress line, and what they load
SLOW_STARTS = {"augment": "the input and the models", "finetune": "the model and the data",
               "teacher-logits": "the teacher and the data", "distill": "the teacher, the student and the data",
               "evaluate": "the model and the dev set", "make-student": "the teacher",
               "experiment": "the libraries", "browse": "the app", "build-mlm": "the base model and the corpus",
               "eval-mlm": "the model and the held-out text"}
# the benchmarks measure for minutes and print their table at the end: their line says so, and ticks
MEASURING = ("bench", "bench-methods", "bench-engines")


def announce_start() -> None:
    """On a terminal, a line at once, ticking every second, for a command that loads models or data
    before it can show progress (imports and loading take seconds: nothing sits silent); it ends
    at the command's first other output; ``-q`` silences it."""
    from tinyaug.pipelines.cli.progress import quiet, start_heartbeat

    ctx = click.get_current_context(silent=True)
    name = ctx.info_name if ctx is not None else None
    if not quiet() and sys.stderr.isatty():
        if name in SLOW_STARTS:
            start_heartbeat(f"tinyaug {name}: loading {SLOW_STARTS[name]} ...")
        elif name in MEASURING:
            start_heartbeat(f"tinyaug {name}: measuring (the table comes at the end) ...")


@dataclasses.dataclass
class ProcessState:
    """What ``start_up`` may do in this process."""

    owned: bool = False  # the ``tinyaug`` program runs here (``tinyaug.pipelines.cli.run``), not a caller's code
    commands: int = 0  # commands begun in this process (``friendly_errors``), inner ones included


PROCESS = ProcessState()


@contextlib.contextmanager
def start_up() -> Iterator[None]:
    """Python's cyclic collector paused while a command imports its libraries and loads its
    models: they make hundreds of thousands of objects that live as long as the process, and the
    collector would walk them again and again as they are made. What was loaded is then frozen,
    so that no later collection walks it either (a 1-row run: 2.85 -> 2.70 s; pausing alone gains
    nothing, the first collection after it pays the walk back).

    Frozen only in the ``tinyaug`` program's own process and during its first command: a caller's
    objects and freezes (tests, scripts, ``run_command``) are not ours to change, and a command run
    inside another (the experiment's steps) would freeze the garbage of the steps before it. The
    process ends with the command, so nothing is unfrozen."""
    with without_cycle_collection():
        try:
            yield
        finally:
            if PROCESS.owned and PROCESS.commands == 1:
                gc.freeze()


def friendly_errors(func: Callable) -> Callable:
    """The one error decorator: a ``TinyaugError``, or a failed file operation (full disk,
    permissions, a link loop, ...), becomes a one-line ``Error: ...`` (exit code 1, no
    traceback). The libraries are quieted before the command body runs."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tinyaug.pipelines.cli.progress import stop_heartbeat

        PROCESS.commands += 1
        try:
            with start_up():
                announce_start()
                quiet_libraries()
            return func(*args, **kwargs)
        except TinyaugError as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except OSError as exc:
            raise click.ClickException(describe_os_error(exc)) from None
        finally:
            stop_heartbeat()

    return wrapper


class TaskName(click.ParamType):
    """A GLUE task name, case-insensitive, with GLUE's spellings (``SST-2``, ``MNLI-m``) accepted;
    converted to the short name (``sst2``)."""

    name = "task"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(TASK_NAMES) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return get_task(str(value)).name
        except TinyaugError as exc:
            self.fail(str(exc), param, ctx)


def task_option(required: bool = True, help: str = "GLUE task.") -> Callable:
    return click.option("--task", required=required, type=TaskName(), help=help)


def device_option(default: str = "auto") -> Callable:
    return click.option("--device", default=default, show_default=True,
                        help="cpu, cuda, cuda:N, mps, or auto (CUDA when visible); nothing else.")


def model_options(func: Callable) -> Callable:
    """Options shared by the commands that build candidates (``augment``, ``inspect``)."""
    return apply(func, [
        click.option("--mlm", default=DEFAULT_MLM, show_default=True,
                     help="Masked LM: a hub name (bert-base-uncased), a local model folder, or 'starter' "
                          "for the embedded offline model."),
        click.option("--vectors", default=EMBEDDED_VECTORS, show_default=True,
                     help="Word vectors: a GloVe/word2vec text or binary file, a gensim .kv file, or "
                          "glove-6b-50d (embedded)."),
        click.option("--vectors-format", type=click.Choice(VECTOR_FORMATS), default="auto", show_default=True),
        click.option("--trust-pickle", is_flag=True,
                     help="Allow loading gensim's native (pickle) vector format."),
        click.option("-k", "--candidates", "k", type=click.IntRange(min=1), default=15, show_default=True,
                     help="Candidates per word (K)."),
        click.option("-p", "--replace-prob", "p", type=click.FloatRange(0, 1), default=0.4, show_default=True,
                     help="Chance that an eligible word is replaced in a variant (p)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True),
        click.option("--min-similarity", type=click.FloatRange(-1, 1), default=None,
                     help="Keep only candidates whose word vector is at least this similar (cosine) to "
                          "the replaced word's [default: no constraint].")
        ,
        click.option("--exclude-antonyms", is_flag=True,
                     help="Drop candidates that are WordNet antonyms of the replaced word (needs Debian's "
                          "wordnet-base).")
        ,
        click.option("--context", type=click.Choice(CONTEXT_MODES), default="masked", show_default=True,
                     help="Masked-LM input: the masked sentence alone, or the reference's pair "
                          "(masked sentence + original as segment B)."),
        click.option("--max-length", type=click.IntRange(min=8), default=None,
                     help="Model positions per masked context [default: the model's maximum]; words "
                          "beyond it are left untouched."),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Masked contexts per model forward."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N, mps or auto."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                     help="Masked-LM arithmetic: fp32 (exact, the same rows whatever the batch size), or "
                          "faster bf16, int8 (CPU) or fp16 (GPU), whose candidates differ a little from "
                          "fp32's and depend on --batch-size (see README, Throughput)."),
        click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
                     help="What runs the masked LM: PyTorch, or ONNX Runtime on the CPU (fp32 or int8; faster, "
                          "candidates agree with PyTorch's to float noise; needs pip install 'tinyaug[onnx]')."),
        click.option("--masks-per-context", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Mask up to this many words of a sentence (never neighbours) in one masked-LM "
                          "context: fewer forwards, candidates that differ a little from one word per "
                          "context (see README, Throughput)."),
    ])


SAMPLE_DATA_DIR = "sample"  # --data-dir sample: the GLUE rows the package ships (resources/glue_sample)


def glue_data_dir(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--data-dir``'s callback: the name ``sample`` is the package's own GLUE sample folder."""
    if value is not None and str(value) == SAMPLE_DATA_DIR and not Path(SAMPLE_DATA_DIR).exists():
        from tinyaug.pipelines.io.tables import sample_dir

        return sample_dir()
    return value


def validation_options(rows_help: str = "Hold out the last N rows of the train file, score on them as "
                       "training goes, stop early and keep the best weights (dev then scores them once).") -> Callable:
    """``--validation-rows``, ``--eval-every``, ``--patience``: early stopping on held-out train rows
    (``tinyaug.distill.validation``), for ``finetune``, ``distill`` and the experiment."""
    return lambda func: apply(func, [
        click.option("--validation-rows", type=POSITIVE, help=rows_help),
        click.option("--eval-every", default=50, show_default=True, type=POSITIVE,
                     help="With --validation-rows: score on them every N steps."),
        click.option("--patience", default=3, show_default=True, type=click.IntRange(min=0),
                     help="With --validation-rows: stop after this many scores without improvement (0: never "
                          "stop early, only keep the best)."),
    ])


def comma_ints(value: str, option: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``, or a usage error naming ``option``."""
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated whole numbers, e.g. 1,2,3",
                                 param_hint=option) from None


def apply(func: Callable, decorators: list[Callable]) -> Callable:
    """Apply ``decorators`` so that they read top to bottom as written above a function."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


ENGINES = ("local", "ray")


def engine_options(func: Callable) -> Callable:
    """``--engine`` and the Ray options, shared by ``augment`` and ``teacher-logits``."""
    return apply(func, [
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="local: build every shard in this process. ray: on the actors of a Ray cluster "
                          "(--ray-address / RAY_ADDRESS), or of a Ray instance started here; same rows."),
        click.option("--ray-address", help="--engine ray: the cluster's address, e.g. 10.0.0.5:6379 or auto "
                                           "[default: RAY_ADDRESS, else a Ray instance on this machine]."),
        click.option("--actors", type=POSITIVE, help="--engine ray: actors to run [default: one per GPU with "
                                                     "--gpus-per-actor, else one per --cpus-per-actor CPUs]."),
        click.option("--cpus-per-actor", type=click.FloatRange(min=0, min_open=True), default=1.0,
                     show_default=True, help="--engine ray: CPUs each actor reserves (and its torch threads)."),
        click.option("--gpus-per-actor", type=click.FloatRange(min=0), default=0.0, show_default=True,
                     help="--engine ray: GPUs each actor reserves (1: one actor per GPU; its models on cuda)."),
    ])


def ray_settings(engine: str, ray_address: str | None, actors: int | None, cpus_per_actor: float,
                 gpus_per_actor: float, backend: str = "torch") -> Any:
    """The Ray settings for ``--engine ray`` (None for the local engine, which takes no Ray option).
    ``backend``: the model's (ONNX Runtime's build here runs on CPUs alone, so not on GPU actors)."""
    if engine != "ray":
        given = [name for name, value in (("--ray-address", ray_address), ("--actors", actors),
                                          ("--gpus-per-actor", gpus_per_actor or None)) if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --engine ray")
        return None
    from tinyaug.pipelines.scale.ray_executor import RaySettings

    settings = RaySettings(address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor,
                           gpus_per_actor=gpus_per_actor)
    check_actor_device(backend, settings.actor_device)
    return settings


def command_runner(root: click.Group) -> Callable[[Sequence[str]], None]:
    """A function that runs one ``tinyaug`` command line of ``root`` in this process, as the shell
    would (its output on stderr, so a caller's stdout stays its own; this process's verbosity and
    ``-q`` passed on); a failure raises ``TinyaugError`` with the command's one-line message. The
    experiment runs its steps through it, with the group it finds in its click context (no import
    of the command-line package, which imports the experiment)."""
    import contextlib
    import sys

    from tinyaug.pipelines.cli.progress import quiet

    def run(argv: Sequence[str]) -> None:
        level = logging.getLogger("tinyaug").getEffectiveLevel()
        verbosity = ["-vv"] if level <= logging.DEBUG else ["-v"] if level <= logging.INFO else []
        try:
            with contextlib.redirect_stdout(sys.stderr):
                root.main([*verbosity, *(["-q"] if quiet() else []), *map(str, argv)], prog_name="tinyaug",
                          standalone_mode=False)
        except click.ClickException as exc:
            raise TinyaugError(f"`tinyaug {' '.join(map(str, argv))}` failed: {exc.format_message()}") from None

    return run
