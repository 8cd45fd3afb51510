"""Recall evaluation of a masked LM as tinyaug's candidate source.

Eligible words of GLUE dev sentences are masked one at a time, exactly as the augmenter masks
them: words, eligibility and routing come from ``tinyaug.augment.engine.Augmenter.plan``
(only words the augmenter sends to the masked LM, i.e. single-WordPiece, eligible words),
and candidates from ``tinyaug.augment.mlm.MaskedLMSource`` with its own vocabulary filter
(whole words, no ``##`` pieces, no special tokens, nothing non-alphabetic, no stopwords) but
*without* dropping the original word. The score is the fraction of masked words whose
original is the top candidate (top-1), or among the first 5 or 15.

The baseline ranks every word by its frequency in the GLUE *train* sentences (eligible words
that pass the same vocabulary filter) and offers the same list for every masked word.

Worked example: three masked words whose originals come 1st, 4th and nowhere in their
candidate lists give top-1 1/3, top-5 2/3, top-15 2/3.

Not here: loading models (``tinyaug.pipelines.io.models``) and the CLI (``cli.starter``).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tinyaug.augment.engine import Augmenter
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Candidate, Query
from tinyaug.augment.words import is_eligible, split_words
from tinyaug.errors import InputError

logger = logging.getLogger(__name__)

EVAL_TASKS = ("sst2", "mrpc", "rte", "cola", "stsb")
BASELINE_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")  # GLUE train, as the starter's corpus
CUTOFFS = (1, 5, 15)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """What is evaluated: which dev sets, how many words per task, the sampling seed."""

    tasks: tuple[str, ...] = EVAL_TASKS
    words_per_task: int = 500  # a fixed seeded sample per task (all words if fewer)
    seed: int = 0
    context: str = "masked"  # the MaskedLMSource context mode
    batch_size: int = 64
    examples: int = 12  # example candidate lists kept in the report

    def __post_init__(self) -> None:
        problems = []
        if not self.tasks:
            problems.append("no task given")
        if self.words_per_task < 1:
            problems.append(f"words_per_task must be >= 1, got {self.words_per_task}")
        if self.seed < 0:
            problems.append(f"seed must be >= 0, got {self.seed}")
        if problems:
            raise InputError("bad evaluation settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class MaskedWord:
    """One evaluation item: a dev text, the index of the masked word, and its query."""

    task: str
    text: str
    word_index: int
    start: int  # character span of the word in ``text``
    end: int
    query: Query

    def masked_text(self, mask: str = "[MASK]", width: int | None = None) -> str:
        """The text with the word replaced by ``mask``; with ``width``, at most ``width``
        characters each side (cut at a space, marked ``...``)."""
        left, right = self.text[:self.start], self.text[self.end:]
        if width is not None and len(left) > width:
            cut = left[-width:]
            left = "..." + (cut.split(" ", 1)[1] if " " in cut else cut)
        if width is not None and len(right) > width:
            right = right[:width].rsplit(" ", 1)[0] + "..."
        return left + mask + right


@dataclasses.dataclass
class Scores:
    """Recall of the original word at 1, 5 and 15 candidates, over ``words`` masked words."""

    words: int
    top1: float
    top5: float
    top15: float

    @classmethod
    def from_ranks(cls, ranks: Sequence[int | None]) -> "Scores":
        """``ranks``: 0-based rank of the original word, None when it is not among the candidates.

        >>> Scores.from_ranks([0, 3, None])
        Scores(words=3, top1=0.3333333333333333, top5=0.6666666666666666, top15=0.6666666666666666)
        """
        n = len(ranks)
        hit = lambda k: sum(r is not None and r < k for r in ranks) / n if n else 0.0  # noqa: E731
        return cls(n, hit(1), hit(5), hit(15))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EvalReport:
    """Per-task and overall recall of a model and of the unigram baseline, with examples."""

    model: str
    settings: EvalSettings
    tasks: dict[str, Scores]
    overall: Scores
    baseline_tasks: dict[str, Scores]
    baseline: Scores
    baseline_words: list[str]  # the baseline's candidate list (most frequent first)
    examples: list[dict[str, Any]]  # task, masked text, original, candidates

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, **self.overall.to_dict(), "settings": self.settings.to_dict(),
                "tasks": {t: s.to_dict() for t, s in self.tasks.items()},
                "baseline": {**self.baseline.to_dict(),
                             "tasks": {t: s.to_dict() for t, s in self.baseline_tasks.items()},
                             "candidates": self.baseline_words},
                "examples": self.examples}

    def format(self) -> str:
        """A plain-text table and the example lists."""
        s = self.settings
        lines = [f"masked LM: {self.model}   context: {s.context}   sample: {self.overall.words} words "
                 f"(up to {s.words_per_task} per task, seed {s.seed})",
                 "recall of the original word among the filtered candidates; baseline: GLUE-train unigram frequency",
                 "",
                 f"{'task':<8}{'words':>6}{'top1':>8}{'top5':>8}{'top15':>8}   {'base1':>7}{'base5':>7}{'base15':>7}"]
        rows = [(t, self.tasks[t], self.baseline_tasks[t]) for t in self.tasks]
        rows.append(("all", self.overall, self.baseline))
        for name, m, b in rows:
            lines.append(f"{name:<8}{m.words:>6}{m.top1:>8.1%}{m.top5:>8.1%}{m.top15:>8.1%}   "
                         f"{b.top1:>7.1%}{b.top5:>7.1%}{b.top15:>7.1%}")
        lines += ["", f"baseline candidates: {', '.join(self.baseline_words)}", "", "examples:"]
        for ex in self.examples:
            rank = ex["rank"]
            where = f"rank {rank + 1}" if rank is not None else "not in list"
            lines.append(f"  [{ex['task']}] {ex['masked']}")
            lines.append(f"      {ex['original']} ({where}): {', '.join(ex['candidates'])}")
        return "\n".join(lines)


class _NoVectors:
    name = "vectors"

    def candidates(self, queries: Sequence[Query], k: int) -> list[tuple[Candidate, ...]]:
        return [() for _ in queries]


def masked_words(texts: Sequence[str], task: str, tokenizer, source: MaskedLMSource) -> list[MaskedWord]:
    """Every word of ``texts`` (distinct, in order) that the augmenter would mask, in order."""
    augmenter = Augmenter(Recipe(), tokenizer, source, _NoVectors())  # type: ignore[arg-type]
    mlm_queries, _, plans = augmenter.route_words(list(dict.fromkeys(texts)))
    items = []
    for t, w, query in mlm_queries:
        word = plans[t].words[w]
        items.append(MaskedWord(task, plans[t].text, w, word.start, word.end, query))
    return items


def sample_words(items: Sequence[MaskedWord], n: int, seed: int, salt: int) -> list[MaskedWord]:
    """A seeded sample of ``n`` items without replacement, kept in their original order."""
    if len(items) <= n:
        return list(items)
    rng = np.random.default_rng([seed, salt])
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]


def unigram_baseline(texts: Sequence[str], allowed: set[str], k: int = max(CUTOFFS)) -> list[str]:
    """The ``k`` most frequent eligible words of ``texts`` that are in ``allowed`` (ties: a-z).

    >>> unigram_baseline(["The film, the FILM!", "a good film", "good"], {"film", "good"}, 2)
    ['film', 'good']
    """
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(w.norm for w in split_words(text) if is_eligible(w) and w.norm in allowed)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def _rank(candidates: Sequence[Candidate], word: str) -> int | None:
    word = word.lower()
    for i, c in enumerate(candidates):
        if c.word.lower() == word:
            return i
    return None


def _task_texts(glue_dir: Path, task_name: str, split: str) -> list[str]:
    from tinyaug.pipelines.io.glue import get_task, read_split

    task = get_task(task_name)
    ds, _ = read_split(Path(glue_dir), task, split, skip_bad_rows=True)
    return [t for col in task.text_columns for t in ds[col]]


def evaluate_mlm(model, tokenizer, glue_dir: Path, settings: EvalSettings = EvalSettings(),
                 model_name: str = "model", device: str | None = None) -> EvalReport:
    """Mask a fixed seeded sample of eligible words of each task's dev set; score the model."""
    source = MaskedLMSource(model, tokenizer, context=settings.context,  # type: ignore[arg-type]
                            batch_size=settings.batch_size, device=device)
    allowed_ids = source.allowed.nonzero().flatten().tolist()
    allowed = {source.words[i].lower() for i in allowed_ids if i < len(source.words) and source.words[i]}
    train_texts = []
    for name in BASELINE_TASKS:
        try:
            train_texts += _task_texts(glue_dir, name, "train")
        except InputError:
            logger.warning("baseline: no %s train split under %s; counted without it", name, glue_dir)
    if not train_texts:
        raise InputError(f"no GLUE train split under {glue_dir} for the unigram baseline; pass --data-dir "
                         "to the folder that holds CoLA/, SST-2/, ... with train.tsv files")
    baseline_words = unigram_baseline(train_texts, allowed)

    tasks: dict[str, Scores] = {}
    base_tasks: dict[str, Scores] = {}
    all_ranks: list[int | None] = []
    all_base: list[int | None] = []
    examples_pool: list[dict[str, Any]] = []
    for salt, name in enumerate(settings.tasks):
        items = sample_words(masked_words(_task_texts(glue_dir, name, "dev"), name, tokenizer, source),
                             settings.words_per_task, settings.seed, salt)
        if not items:
            raise InputError(f"{name} dev has no word the augmenter would mask; check {glue_dir}")
        ranked = source.ranked_words([it.query for it in items], max(CUTOFFS), drop_original=False)
        ranks = [_rank(cands, it.query.word) for it, cands in zip(items, ranked)]
        base = [baseline_words.index(it.query.word.lower()) if it.query.word.lower() in baseline_words
                else None for it in items]
        tasks[name], base_tasks[name] = Scores.from_ranks(ranks), Scores.from_ranks(base)
        all_ranks += ranks
        all_base += base
        examples_pool += [{"task": name, "masked": it.masked_text(width=70), "original": it.query.word,
                           "rank": r, "candidates": [c.word for c in cands]}
                          for it, cands, r in zip(items, ranked, ranks)]
        logger.info("%s: %d words, top-15 recall %.3f", name, len(items), tasks[name].top15)
    rng = np.random.default_rng([settings.seed, 999])
    picks = sorted(rng.choice(len(examples_pool), size=min(settings.examples, len(examples_pool)), replace=False))
    return EvalReport(model_name, settings, tasks, Scores.from_ranks(all_ranks), base_tasks,
                      Scores.from_ranks(all_base), baseline_words, [examples_pool[i] for i in picks])


def load_for_eval(mlm: str, device: str | None = "cpu"):
    """``(model, tokenizer, identifier)`` for ``--mlm``: ``starter``, a starter artifact folder
    (``manifest.json`` + tensors), a model folder, or a hub name."""
    from tinyaug.pipelines.starter.artifact import load_starter_mlm
    from tinyaug.pipelines.starter.recipe import MANIFEST_FILE, STARTER_MLM_ID
    from tinyaug.pipelines.io.models import load_masked_lm, resolve_device

    path = Path(mlm).expanduser()
    if path.is_dir() and (path / MANIFEST_FILE).is_file() and not (path / "config.json").is_file():
        target = str(resolve_device(device))
        model, tokenizer = load_starter_mlm(device=target, artifact_dir=path)
        return model, tokenizer, f"{STARTER_MLM_ID} ({path})"
    loaded = load_masked_lm(mlm, device=device)
    return loaded.model, loaded.tokenizer, loaded.identifier


def run_eval(mlm: str, glue_dir: Path, settings: EvalSettings = EvalSettings(),
             device: str | None = "cpu") -> EvalReport:
    """Load ``mlm`` (see ``load_for_eval``) and evaluate it on the dev sets under ``glue_dir``."""
    model, tokenizer, name = load_for_eval(mlm, device)
    return evaluate_mlm(model, tokenizer, glue_dir, settings, name)


def record_in_manifest(report: EvalReport, artifact_dir: Path | None = None) -> None:
    """Store the report's figures (without the examples' full lists) under the starter
    manifest's ``evaluation`` key; the tensors and their checksum are untouched."""
    from tinyaug.pipelines.starter.artifact import read_manifest, write_manifest
    from tinyaug.pipelines.starter.recipe import RESOURCE_DIR

    manifest = read_manifest(artifact_dir)
    data = report.to_dict()
    manifest["evaluation"] = {
        "command": "tinyaug eval-mlm",
        "settings": data["settings"],
        "overall": report.overall.to_dict(),
        "tasks": data["tasks"],
        "baseline": {k: v for k, v in data["baseline"].items() if k != "candidates"},
        "examples": [{k: ex[k] for k in ("masked", "original", "candidates")} for ex in report.examples[:4]],
    }
    write_manifest(manifest, artifact_dir or RESOURCE_DIR)
