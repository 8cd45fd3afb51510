"""Progress of the commands a person waits on, in one style: a tqdm bar with rate and time left
on a terminal, and, when stderr is not a terminal (a log file, a CI job), one plain line each time
a unit of work is done (a shard, every N steps) and at the end. ``tinyaug -q`` silences both.

The library reports progress through callbacks and never prints: augment's ``run(progress=...)``
counts rows (``advance``); the training and scoring functions of ``pipelines.distillation`` report
``(what, done, total)`` (``__call__``), e.g. ``("stage 1", 40, 400)``. A ``Progress`` renders
both, one bar per ``what``.

Not here: logging (``common.setup_logging``), what is being measured.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from typing import IO, Any, Callable

import click

QUIET_KEY = "tinyaug.quiet"  # in the click context's meta, set by ``tinyaug -q``
LOG_LINE_SECONDS = 60.0  # in a log, a line at least this often, even between units
UNKNOWN_TOTAL_EVERY = 1000  # in a log, a line per this many units when the total is not known
ROW_WORK = ("scoring", "teacher logits", "Augmenting")  # work counted in rows; the rest in training steps


def quiet() -> bool:
    """Whether ``tinyaug -q`` asked for no progress output."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET_KEY))


def tenths(total: int) -> int:
    """A line every tenth of the work: ``tenths(400)`` -> 40, ``tenths(7)`` -> 1."""
    return max(1, math.ceil(total / 10))


def _duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``, ``3725`` -> ``"1h02m"``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _LogLines:
    """The non-terminal display of one piece of work: a line per ``every`` units and at the end."""

    def __init__(self, what: str, total: int | None, unit: str, every: int, stream: IO[str]) -> None:
        self.what, self.total, self.unit, self.every, self.stream = what, total, unit, max(1, every), stream
        self.start = self.last_time = time.monotonic()
        self.first: int | None = None  # the position of the first report (a resumed run starts part-way)
        self.shown = -1

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        crossed = self.shown < 0 or done // self.every > self.shown // self.every  # the first report, or a unit done
        finished = self.total is not None and done >= self.total
        if done == self.shown or not (crossed or finished or now - self.last_time >= LOG_LINE_SECONDS):
            return
        self.shown, self.last_time = done, now
        line = f"{self.what}: {done}" + (f"/{self.total}" if self.total is not None else "") + f" {self.unit}"
        if self.total:
            line += f" ({100 * done / self.total:.0f}%)"
        elapsed, gained = now - self.start, done - self.first
        if elapsed > 0 and gained > 0:
            rate = gained / elapsed
            line += f", {rate:.0f} {self.unit}/s" if rate >= 100 else f", {rate:.2g} {self.unit}/s"
            if self.total is not None and done < self.total:
                line += f", about {_duration((self.total - done) / rate)} left"
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class Progress:
    """Renders progress reports (see the module docstring); use as a context manager.

    ``unit``: what is counted (default: rows for ``ROW_WORK``, else steps). ``every``: the units
    between log lines, or a function of the total (default: a line every tenth of the work).
    ``enabled=None``: on unless ``tinyaug -q``.
    """

    def __init__(self, unit: str | None = None, every: int | Callable[[int], int] = tenths,
                 stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.unit, self.every = unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet() if enabled is None else enabled
        self._what: str | None = None
        self._display: Any = None
        self._done = 0

    def _open(self, what: str, total: int | None) -> None:
        self.close()
        stop_heartbeat()  # from here on the bar (or the log lines) say that work goes on
        self._what, self._done = what, 0
        unit = self.unit or ("rows" if what.startswith(ROW_WORK) else "steps")
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._display = tqdm(total=total, desc=what, unit=f" {unit}", file=self.stream,
                                 dynamic_ncols=True, leave=True)
        else:
            every = (self.every(total) if total is not None else UNKNOWN_TOTAL_EVERY) if callable(self.every) else self.every
            self._display = _LogLines(what, total, unit, every, self.stream)

    def __call__(self, what: str, done: int, total: int | None) -> None:
        """``done`` of ``total`` units of ``what`` are done."""
        if not self.enabled:
            return
        if what != self._what:
            self._open(what, total)
        self._done = done
        if isinstance(self._display, _LogLines):
            self._display.update(done)
        else:
            self._display.update(done - self._display.n)

    def advance(self, what: str, count: int, total: int | None) -> None:
        """``count`` more units of ``what`` are done (augment's ``run(progress=...)``)."""
        self(what, (self._done if what == self._what else 0) + count, total)

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
        self._display, self._what = None, None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Heartbeat:
    """On a terminal, a line that ticks once a second (``loading ... 3s``) from a command's start
    until its first progress bar: any other output ends the ticking line, and after two silent
    seconds a new one starts below it. So no command sits silent while libraries import, models
    load or a corpus is read, and nothing is written into the middle of another line."""

    SILENCE = 2.0  # seconds without output before the ticking resumes

    def __init__(self, message: str, stream: IO[str]) -> None:
        self.message, self.stream = message, stream
        self.start = self.last_write = time.monotonic()
        self.stopped = threading.Event()
        self.lock = threading.RLock()
        self.ticking = True  # our line is the terminal's current line
        self.at_line_start = True  # the last other output ended its line
        heartbeat = self

        class _Guard:  # stderr while the heartbeat runs: other output ends the ticking line first
            def write(self, text: str) -> int:
                return heartbeat.write(text)

            def __getattr__(self, name: str) -> Any:
                if name == "buffer":  # no binary side door: every write comes through ``write``
                    raise AttributeError(name)
                return getattr(heartbeat.stream, name)

        stream.write(message)
        stream.flush()
        guard = _Guard()
        self.previous = sys.stderr  # put back when the heartbeat stops
        sys.stderr = guard  # type: ignore[assignment]
        # log lines (build-mlm's steps, a warning) go through the guard too
        self.handlers = [h for h in logging.getLogger().handlers
                         if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is stream]
        for handler in self.handlers:
            handler.stream = guard  # type: ignore[assignment]
        self.thread = threading.Thread(target=self._tick, name="tinyaug-heartbeat", daemon=True)
        self.thread.start()

    def write(self, text: str) -> int:
        with self.lock:
            if self.ticking:
                self.stream.write("\n")
                self.ticking = False
            if text:
                self.last_write = time.monotonic()
                self.at_line_start = text.endswith("\n")
            return self.stream.write(text)

    def _tick(self) -> None:
        while not self.stopped.wait(1.0):
            with self.lock:
                if self.stopped.is_set():
                    return
                now = time.monotonic()
                if not self.ticking and self.at_line_start and now - self.last_write >= self.SILENCE:
                    self.ticking = True  # a new ticking line below the last output
                    self.stream.write(self.message)
                if self.ticking:
                    self.stream.write(f"\r{self.message} {now - self.start:.0f}s")
                    self.stream.flush()

    def stop(self) -> None:
        with self.lock:
            if self.stopped.is_set():
                return
            self.stopped.set()
            sys.stderr = self.previous
            for handler in self.handlers:
                handler.stream = self.stream
            if self.ticking:
                self.stream.write("\n")
            self.stream.flush()


_heartbeat: _Heartbeat | None = None


def start_heartbeat(message: str) -> None:
    """Start the ticking line (see ``_Heartbeat``); the caller checked that stderr is a terminal."""
    global _heartbeat
    stop_heartbeat()
    _heartbeat = _Heartbeat(message, sys.stderr)


def stop_heartbeat() -> None:
    """End the ticking line, if one is ticking (a command's end, its first output)."""
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
