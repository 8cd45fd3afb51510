"""Ctrl-C that always stops a command: a flag every SIGINT sets, and the places that read it.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside a
library's ``__del__`` or a weakref callback the exception is "ignored" (Python prints "Exception
ignored in ...") and the command would run on and exit 0, as if nobody had pressed Ctrl-C. So
``handle_interrupts`` (the command line wraps every command in it) installs a handler that sets
a flag before raising, and silences the "Exception ignored" report of an interrupt that was
swallowed; the long loops call ``check_interrupted`` at each shard, and the command line checks
the flag at its exit, so a swallowed interrupt still stops the command (at the next shard at the
latest) with exit status 130.

Not here: what the command line prints and its exit status (``pipelines.cli``); what an interrupted
run leaves behind (every writer cleans up its temporary files, ``storage``; shards stay for the
resume).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from types import FrameType
from typing import Any, Iterator

_interrupted = threading.Event()
_depth = 0  # nested ``handle_interrupts`` blocks: only the outermost installs and restores


def interrupted() -> bool:
    """Whether SIGINT arrived inside the current ``handle_interrupts`` block."""
    return _interrupted.is_set()


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt arrived (and was perhaps swallowed somewhere)."""
    if _interrupted.is_set():
        raise KeyboardInterrupt


def active() -> bool:
    """Whether a ``handle_interrupts`` block is running."""
    return _depth > 0


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def handle_interrupts() -> Iterator[None]:
    """For the block: SIGINT sets the flag and raises ``KeyboardInterrupt``; an interrupt that a
    ``__del__`` swallows is not reported as "Exception ignored" (the flag keeps it). Outside the
    main thread, where no signal handler can be set, the block runs as it is."""
    global _depth
    if _depth or threading.current_thread() is not threading.main_thread():
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    previous_handler = signal.getsignal(signal.SIGINT)
    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    _interrupted.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = hook
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
