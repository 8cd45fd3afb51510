"""Opening the files a user names: regular files only, read in bounded lines, with stated limits.

Every input file tinyaug reads from a user path (tables, GLUE files, vectors) goes through
``refuse_special`` before it is opened: a FIFO, a character or block device or a socket is
refused by ``os.stat`` alone (opening a FIFO with no writer, or reading ``/dev/urandom``, would
hang or exhaust memory). Text is then read one line at a time with ``bounded_lines``, never whole.

Limits (README, "Reliability: what is promised"):

- ``MAX_LINE_BYTES``: one line of a text input (64 MiB); a longer one is refused naming the line.
- ``MAX_FIELD_CHARS``: one CSV/TSV field (16 MiB characters), the ``csv`` module's field limit.

Not here: parsing (``tables``, ``glue``, ``vectors``).
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from tinyaug.errors import InputError

MAX_LINE_BYTES = 64 * 2**20
MAX_FIELD_CHARS = 16 * 2**20

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def refuse_special(path: str | Path, error: type[Exception] = InputError) -> None:
    """Raise ``error`` if ``path`` (links followed) is not a regular file or a folder; a path
    that does not exist is left to the caller, which knows what was expected there."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        return  # permission and similar errors surface, with their own message, at open
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise error(f"{path}: {kind}, not a regular file; tinyaug reads inputs only from regular files "
                "(save the data to a file and pass that)")


def sniff_encoding(head: bytes, path: str | Path) -> int:
    """The number of leading bytes to skip (a UTF-8 byte-order mark: 3, else 0); a UTF-16/32
    byte-order mark, or NUL bytes early on, is an ``InputError`` (inputs are UTF-8)."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise InputError(f"{path}: the file is {name} (byte-order mark); re-encode it as UTF-8")
    if head.startswith(codecs.BOM_UTF8):
        return 3
    return 0


def bounded_lines(handle: BinaryIO, path: str | Path, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` for each ``\\n``-ended line of ``handle`` (the line
    break kept, a UTF-8 byte-order mark at the start dropped), holding at most ``limit`` bytes
    of a line in memory; a longer line is an ``InputError`` naming it.

    ``b"a\\nb"`` -> ``(1, b"a\\n"), (2, b"b")``
    """
    limit = MAX_LINE_BYTES if limit is None else limit
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line[sniff_encoding(line[:4], path):]
        if len(line) > limit:
            raise InputError(f"{path}, line {number}: longer than {limit // 2**20} MiB "
                             "(the limit for one line); split the text or check that this is a text file")
        yield number, line
