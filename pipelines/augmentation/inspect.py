"""Looking at augmentations: a variant's text cut at its replaced words, the rows of one example,
and one sentence's words, routes, candidates and sampled variants.

The functions return plain data (segments, rows, plans); the command line styles them.

Not here: terminal colours and paging (``cli``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

import datasets
import numpy as np

from tinyaug.augment.engine import Augmenter, Example, Stats, TextPlan, Variant
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.build import load_augmented
from tinyaug.pipelines.io.rows import column_values
from tinyaug.pipelines.io.schema import EXAMPLE_ID, PROVENANCE_COLUMNS, TEACHER_LOGITS, check_columns, read_metadata


def change_segments(text: str, changes: list[dict[str, Any]], column: str) -> list[tuple[str, dict | None]]:
    """``text`` (a variant of ``column``) cut into ``(piece, change)`` pairs, ``change`` None for
    unchanged text. Offsets in ``changes`` are into the original, so each is shifted by the
    length differences of the replacements before it.

    >>> change_segments("a fine film", [{"column": "s", "start": 2, "end": 6, "replacement": "fine"}], "s")
    [('a ', None), ('fine', {'column': 's', 'start': 2, 'end': 6, 'replacement': 'fine'}), (' film', None)]
    """
    segments: list[tuple[str, dict | None]] = []
    position = shift = 0
    for change in sorted((c for c in changes if c["column"] == column), key=lambda c: c["start"]):
        start = change["start"] + shift
        end = start + len(change["replacement"])
        if start > position:
            segments.append((text[position:start], None))
        segments.append((text[start:end], change))
        position = end
        shift += len(change["replacement"]) - (change["end"] - change["start"])
    if position < len(text):
        segments.append((text[position:], None))
    return segments


def open_augmented(path: str | Path, command: str = "inspect") -> datasets.Dataset:
    """The dataset at ``path``, refused in one line unless it has tinyaug's provenance columns
    with their types (``command`` shows variants against their originals: it needs them)."""
    ds = load_augmented(path)
    check_columns(ds, str(path), need=PROVENANCE_COLUMNS,
                  purpose=f"{command} shows augmented variants against their originals; a plain dataset has "
                          f"none: augment it first (tinyaug augment --input {path} --text-columns ...)")
    return ds


def text_columns(ds: datasets.Dataset) -> list[str]:
    """The columns augmentation rewrote (from the metadata; else the first two string columns)."""
    meta = read_metadata(ds)
    if meta.get("text_columns"):
        return list(meta["text_columns"])
    return [c for c, f in ds.features.items() if getattr(f, "dtype", None) == "string"][:2]


def _example_ids(ds: datasets.Dataset) -> np.ndarray:
    return column_values(ds, EXAMPLE_ID, np.int64)


def example_rows(ds: datasets.Dataset, example_id: int) -> datasets.Dataset:
    """The rows (original and variants) of source example ``example_id``."""
    ids = _example_ids(ds)
    rows = ds.select(np.flatnonzero(ids == example_id))
    if len(rows) == 0:
        if len(ids) == 0:
            raise InputError(f"--example {example_id}: the dataset has no rows")
        count = len(np.unique(ids))
        gaps = "" if int(ids.max()) - int(ids.min()) + 1 == count else f" with gaps ({count} examples)"
        raise InputError(f"--example {example_id}: no such example; example ids ({EXAMPLE_ID}) run from "
                         f"{int(ids.min())} to {int(ids.max())}{gaps}")
    return rows


def first_examples(ds: datasets.Dataset, count: int) -> Iterator[datasets.Dataset]:
    """The rows of the first ``count`` source examples, one dataset each."""
    seen: list[int] = []
    for example_id in _example_ids(ds):
        if int(example_id) not in seen:
            seen.append(int(example_id))
            if len(seen) == count:
                break
    for example_id in seen:
        yield example_rows(ds, example_id)


def label_text(ds: datasets.Dataset, row: dict[str, Any]) -> str | None:
    """The row's label as its name (``"positive"``), a score (``"3.80"``), or None without one."""
    column = read_metadata(ds).get("label_column")
    if not column or column not in row or row[column] is None:
        return None
    feature = ds.features[column]
    if isinstance(feature, datasets.ClassLabel):
        return feature.int2str(int(row[column]))
    value = row[column]
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def teacher_text(ds: datasets.Dataset, row: dict[str, Any]) -> str | None:
    """The teacher's prediction for the row, where ``teacher-logits`` stored it: the class name
    with its probability (``"negative 0.91"``), or the score for regression."""
    logits = row.get(TEACHER_LOGITS)
    if logits is None:
        return None
    if len(logits) == 1:
        return f"{logits[0]:.2f}"
    probabilities = np.exp(np.asarray(logits, dtype=np.float64) - max(logits))
    probabilities /= probabilities.sum()
    best = int(probabilities.argmax())
    column = read_metadata(ds).get("label_column")
    feature = ds.features.get(column) if column else None
    name = feature.int2str(best) if isinstance(feature, datasets.ClassLabel) else str(best)
    return f"{name} {probabilities[best]:.2f}"


def describe(path: Path, ds: datasets.Dataset) -> str:
    """One line on a dataset: rows, models and recipe."""
    meta = read_metadata(ds)
    return (f"{path}: {len(ds)} rows; masked LM {meta.get('mlm')}; vectors {meta.get('vectors')}; "
            f"recipe {meta.get('recipe')}")


@dataclasses.dataclass
class SentenceReport:
    """What the augmenter does with one sentence."""

    plan: TextPlan  # words, routes, candidates, and why a word has none
    variants: list[Variant]  # the original first, then the distinct sampled variants


def inspect_sentence(augmenter: Augmenter, text: str) -> SentenceReport:
    """Plan ``text`` once and sample its variants from that plan (no second model pass)."""
    plan = augmenter.plan([text])[0]
    return SentenceReport(plan, augmenter.sample(Example(0, (text,)), [plan], Stats()))


def variant_changes(variant: Variant, column: str = "text") -> list[dict[str, Any]]:
    """A sampled variant's changes as the dataset stores them (``aug_changes`` records)."""
    return [{**c.to_dict(), "column": column} for c in variant.changes]


__all__ = ["change_segments", "open_augmented", "text_columns", "example_rows", "first_examples", "describe",
           "label_text", "teacher_text",
           "SentenceReport", "inspect_sentence", "variant_changes"]


def describe_change(change: dict[str, Any]) -> str:
    """One edit for people: ranks 1-based (stored 0-based), the kind where it is not a replacement.

    >>> describe_change({"original": "good", "replacement": "fine", "source": "mlm", "rank": 0})
    'good->fine (mlm #1)'
    >>> describe_change({"original": "", "replacement": "very ", "source": "eda", "rank": -1, "kind": "insert", "step": 1})
    '+very (eda insert, step 2)'
    """
    kind = change.get("kind") or "replace"
    original, replacement = change["original"].strip(), change["replacement"].strip()
    text = {"insert": f"+{replacement}", "delete": f"-{original}"}.get(kind, f"{original}->{replacement}")
    details = [change["source"] + (f" #{change['rank'] + 1}" if change.get("rank", -1) >= 0 else "")]
    if kind != "replace":
        details[0] += f" {kind}"
    if change.get("step"):
        details.append(f"step {change['step'] + 1}")
    return f"{text} ({', '.join(details)})"
