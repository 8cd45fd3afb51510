"""WordNet antonyms and synonyms, read through nltk from Debian's WordNet 3.0 files (optional).

Debian's ``wordnet-base`` package puts WordNet's database in ``/usr/share/wordnet``. nltk's
reader also wants a ``lexnames`` file, which no Debian package ships, refuses a symlink into that folder, and reads
only below its data roots; so the files are copied once into
``$TINYAUG_CACHE/nltk_data/corpora/wordnet/`` with a ``lexnames`` generated from the package's
own man page (``lexnames.5WN``), and that root is added to ``nltk.data.path``.

Not here: how antonyms filter candidates (``tinyaug.augment.constraints``), how synonyms are
sampled (``tinyaug.augment.methods``).
"""

from __future__ import annotations

import functools
import gzip
import re
import shutil
import warnings
from pathlib import Path
from typing import Callable

from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io.storage import atomic_directory
from tinyaug.pipelines.io.vectors import cache_dir

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
_FILES = ("data.adj", "data.adv", "data.noun", "data.verb", "index.adj", "index.adv", "index.noun",
          "index.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc", "index.sense")
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
WORDNET_ID = "WordNet 3.0 (Debian wordnet-base, read by nltk)"


def _lexnames() -> str:
    """WordNet's ``lexnames`` table (number, file name, syntactic category), from the man page."""
    text = gzip.open(_MAN_PAGE, "rt", encoding="utf-8").read() if _MAN_PAGE.is_file() else ""
    rows = re.findall(r"^(\d\d)\t(\w+\.\w+)\s*\t", text, flags=re.M)
    if len(rows) < 45:
        raise ModelLoadError(f"cannot read WordNet's lexicographer file list from {_MAN_PAGE}; install "
                             "Debian's wordnet-base (apt-get install wordnet-base)")
    return "".join(f"{number}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for number, name in rows)


def nltk_wordnet_dir(wordnet_dir: Path = DEFAULT_WORDNET_DIR) -> Path:
    """A folder nltk's ``WordNetCorpusReader`` reads: WordNet's files and a ``lexnames``."""
    if not (wordnet_dir / "data.noun").is_file():
        raise ModelLoadError(f"WordNet is not installed in {wordnet_dir}; the synonyms and eda methods and "
                             "--exclude-antonyms need it: apt-get install wordnet-base wordnet-sense-index "
                             "(or choose another method / leave the option out)")
    target = cache_dir() / "nltk_data" / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        with atomic_directory(target) as tmp:
            for name in _FILES:
                if (wordnet_dir / name).is_file():
                    shutil.copyfile(wordnet_dir / name, tmp / name)
            (tmp / "lexnames").write_text(_lexnames(), encoding="utf-8")
    return target


def _reader(wordnet_dir: Path) -> "object":
    """nltk's reader over WordNet's files as copied into this cache (one reader per copy)."""
    return _open_reader(nltk_wordnet_dir(Path(wordnet_dir)))


@functools.lru_cache(maxsize=2)
def _open_reader(folder: Path) -> "object":
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(folder.parent.parent)  # nltk reads only below its data roots: add ours
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": not used here
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(folder), None)


@functools.lru_cache(maxsize=2)
def load_antonyms(wordnet_dir: Path = DEFAULT_WORDNET_DIR) -> Callable[[str], frozenset[str]]:
    """``word -> frozenset of its WordNet antonyms`` (every sense and part of speech, lower case,
    single words only), each word looked up once.

    >>> antonyms = load_antonyms()                          # doctest: +SKIP
    >>> sorted(antonyms("good"))[:3]                        # doctest: +SKIP
    ['bad', 'badness', 'evil']
    """
    reader = _reader(Path(wordnet_dir))

    @functools.lru_cache(maxsize=None)
    def antonyms(word: str) -> frozenset[str]:
        found = set()
        for lemma in reader.lemmas(word.lower()):
            for antonym in lemma.antonyms():
                name = antonym.name().lower()
                if "_" not in name:
                    found.add(name)
        return frozenset(found)

    return antonyms


def load_synonyms(wordnet_dir: Path | None = None) -> Callable[[str], tuple[str, ...]]:
    """``word -> its WordNet synonyms``, most common senses first (each part of speech's first
    sense, then each one's second, ...; WordNet orders senses by frequency), lower case, single
    words only, the word itself left out. Every part of speech: nltk's tagger needs a model
    download, so there is no part-of-speech agreement offline.

    >>> synonyms = load_synonyms()                          # doctest: +SKIP
    >>> synonyms("movie")[:3]                               # doctest: +SKIP
    ('film', 'picture', 'flick')
    """
    return _synonyms(Path(wordnet_dir or DEFAULT_WORDNET_DIR))


@functools.lru_cache(maxsize=2)
def _synonyms(wordnet_dir: Path) -> Callable[[str], tuple[str, ...]]:
    reader = _reader(wordnet_dir)

    @functools.lru_cache(maxsize=None)
    def synonyms(word: str) -> tuple[str, ...]:
        word = word.lower()
        senses = [(rank, order, synset) for order, pos in enumerate("nvasr")  # each part of speech's
                  for rank, synset in enumerate(reader.synsets(word, pos))]    # first senses first
        found = (lemma.name().lower() for *_, synset in sorted(senses, key=lambda s: s[:2]) for lemma in synset.lemmas())
        return tuple(dict.fromkeys(name for name in found if name != word and name.isalpha()))

    return synonyms
