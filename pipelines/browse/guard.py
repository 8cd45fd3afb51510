"""What ``tinyaug browse`` lets in: no uploads and no file routes, bounded request bodies, Gradio's
files in a private temporary folder that goes when the app stops, a password if asked for.

The app only shows a dataset and takes a few short inputs, so Gradio's routes that store or serve
files (``/gradio_api/upload``, ``file=``, ``proxy=``, screen recordings, ...) are refused before
Gradio sees the request: a local process, or anyone on the network with ``--host 0.0.0.0``,
cannot park files on this machine through it. ``Guard`` is plain ASGI middleware, handed to the
FastAPI app Gradio builds (``launch(app_kwargs={"middleware": ...})``).

Not here: the app's views (``app``), the command line (``cli.browse``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from tinyaug.errors import InputError

MAX_BODY_BYTES = 256 * 1024  # the largest request the app needs is two sentences of 2,000 characters
# Routes that take or hand out files, under Gradio's /gradio_api prefix or not.
REFUSED = re.compile(r"/(upload|upload_progress|process_recording|vibe-edit|undo-vibe-edit|vibe-code|run-history"
                     r"|monitoring|stream)(/|$)|/(file=|proxy=|file/)")
TEMP_VARIABLE = "GRADIO_TEMP_DIR"  # where Gradio keeps uploaded and cached files

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class Guard:
    """ASGI middleware: 403 for the file routes, 413 for a body over ``max_body`` bytes (declared,
    or counted as it arrives)."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if REFUSED.search(scope.get("path", "")):
            await _reply(send, 403, "tinyaug browse takes no uploads and serves no files")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_body):
            await _reply(send, 413, f"request bodies are limited to {self.max_body} bytes")
            return
        from starlette.exceptions import HTTPException

        seen, started = 0, False

        async def bounded() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if seen > self.max_body:  # a body without a length, or longer than it said
                raise HTTPException(413, f"request bodies are limited to {self.max_body} bytes")
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, tracked)
        except HTTPException as exc:
            if started or exc.status_code != 413:
                raise
            await _reply(send, 413, str(exc.detail))


async def _reply(send: Send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def private_temp_dir() -> Iterator[Path]:
    """Point Gradio's file cache at a fresh folder of our own (mode 0700) while the app lives;
    remove it, and restore the variable, when it stops. Set it before building the app: Gradio's
    components read it when they are made."""
    folder = Path(tempfile.mkdtemp(prefix="tinyaug-browse-"))
    before = os.environ.get(TEMP_VARIABLE)
    os.environ[TEMP_VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(TEMP_VARIABLE, None)
        else:
            os.environ[TEMP_VARIABLE] = before
        shutil.rmtree(folder, ignore_errors=True)


def parse_auth(text: str) -> tuple[str, str]:
    """``"USER:PASSWORD"`` -> ``("USER", "PASSWORD")``; the password may hold colons.

    >>> parse_auth("ada:s3cret:x")
    ('ada', 's3cret:x')
    """
    user, colon, password = text.partition(":")
    if not colon or not user.strip() or not password:
        raise InputError("--auth takes USER:PASSWORD, both non-empty (e.g. --auth ada:s3cret, or set "
                         "TINYAUG_BROWSE_AUTH to keep the password out of the process list)")
    return user.strip(), password


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_warning(host: str, auth: tuple[str, str] | None) -> str | None:
    """One line when ``host`` opens the app to the network, else None."""
    if is_loopback(host):
        return None
    if auth is None:
        return (f"Warning: --host {host} opens tinyaug browse to your network with no password: anyone who can "
                "reach this machine can use it (add --auth USER:PASSWORD, or keep the default 127.0.0.1)")
    return (f"Warning: --host {host} opens tinyaug browse to your network; --auth asks for a password, "
            "but over plain HTTP (use it on networks you trust)")
