"""HTML for ``tinyaug browse``: a page of examples, and a sentence's routes and candidates.

Every text is escaped; an edited word is a ``<mark class="aug-word aug-SOURCE">`` coloured by its
source (one colour per source found in the data: the masked LM blue, the vectors orange, others
from a palette), whose tooltip says what it replaced and how (source, kind, rank: 1-based here,
stored 0-based), and whose ``data-*`` attributes let a click ask for the word's full candidate
list (``app``); a deleted word shows struck through. Pure functions: views in, strings out.
"""

from __future__ import annotations

import zlib
from html import escape
from typing import Any, Sequence

from tinyaug.pipelines.browse.data import ExampleView, Page

SOURCE_NAMES = {"mlm": "masked LM", "vectors": "word vectors", "wordnet": "WordNet", "random": "random words",
                "eda": "EDA"}
# (background, underline) per source: the two TinyBERT sources keep their colours, any other source
# (a method of the user's too) gets one from the palette by its name, the same on every page
_KNOWN_COLOURS = {"mlm": ("#cfe3ff", "#2f6fd6"), "vectors": ("#ffe2c2", "#d97a00")}
_PALETTE = [("#d7f5d0", "#2e9d3a"), ("#f3d6f5", "#a13bb0"), ("#fff3b0", "#b59300"), ("#d2f3f3", "#168a8a"),
            ("#f8d4d4", "#c23b3b"), ("#e2e2e2", "#666666")]

CSS = """
.aug-word { border-radius: 3px; padding: 0 2px; cursor: pointer; }
.aug-deleted { text-decoration: line-through; opacity: 0.7; }
.aug-rank { font-size: 0.7em; vertical-align: super; color: #555; }
.aug-example { border: 1px solid #ddd; border-radius: 6px; margin: 8px 0; padding: 6px 10px; }
.aug-example table { width: 100%; border-collapse: collapse; }
.aug-example td { padding: 2px 6px; vertical-align: top; border-top: 1px solid #f0f0f0; }
.aug-meta { color: #555; font-size: 0.85em; white-space: nowrap; }
.aug-flip { color: #b00020; font-weight: bold; }
.aug-original td { background: #f7f7f7; }
.aug-legend mark { margin-right: 8px; }
.aug-candidates td, .aug-candidates th { padding: 2px 8px; text-align: left; }
"""

LEGEND = ('<div class="aug-legend">{sources} small number: candidate rank (1 = the source\'s top candidate); '
          'hover a word for what it replaced, click it for its candidates</div>')


def colour(source: str) -> str:
    """The inline style of ``source``'s marks.

    >>> colour("mlm")
    'background: #cfe3ff; border-bottom: 2px solid #2f6fd6;'
    """
    background, line = _KNOWN_COLOURS.get(source) or _PALETTE[zlib.crc32(source.encode("utf-8")) % len(_PALETTE)]
    return f"background: {background}; border-bottom: 2px solid {line};"


def legend(sources: Sequence[str]) -> str:
    """The legend for the sources in view (every source of a page, in name order)."""
    marks = "".join(f'<mark class="aug-word aug-{escape(s)}" style="{colour(s)}">{escape(SOURCE_NAMES.get(s, s))}</mark>'
                    for s in sorted(set(sources)))
    return LEGEND.format(sources=marks)


def _shown(rank: Any) -> Any:
    """A stored 0-based rank as people count: ``0`` -> ``1`` (the source's top candidate)."""
    return rank + 1 if isinstance(rank, int) else rank


def segments_html(segments: Sequence[tuple[str, dict | None]], example_id: int | None = None,
                  column: str = "") -> str:
    out = []
    for piece, change in segments:
        if change is None:
            out.append(escape(piece))
            continue
        source, kind = change.get("source", ""), change.get("kind") or "replace"
        rank = change.get("rank")
        ranked = isinstance(rank, int) and rank >= 0
        how = ", ".join([SOURCE_NAMES.get(source, source), *([kind] if kind != "replace" else []),
                         *([f"rank {_shown(rank)}"] if ranked else [])])
        tip = f"{change.get('original', '')} \u2192 {change.get('replacement', '')} ({how})"
        data = (f' data-example="{example_id}" data-column="{escape(column)}" data-word="{change.get("word_index")}"'
                if example_id is not None else "")
        shown = escape(piece) if piece else f'<span class="aug-deleted">{escape(change.get("original", ""))}</span>'
        badge = f'<span class="aug-rank">{_shown(rank)}</span>' if ranked else ""
        out.append(f'<mark class="aug-word aug-{escape(source)}" style="{colour(source)}" title="{escape(tip)}"{data}>'
                   f'{shown}{badge}</mark>')
    return "".join(out)


def example_html(example: ExampleView, text_columns: Sequence[str]) -> str:
    rows = []
    for row in example.rows:
        texts = "<br>".join(segments_html(row.segments[c], example.example_id, c) for c in text_columns)
        meta = []
        if row.label is not None:
            meta.append(f"label {escape(row.label)}")
        if row.teacher is not None:
            meta.append(f"teacher {escape(row.teacher)}")
        if row.flip:
            meta.append('<span class="aug-flip" title="the teacher predicts differently than on the original">'
                        "flip</span>")
        name = "original" if row.variant == 0 else f"variant {row.variant}"
        css = ' class="aug-original"' if row.variant == 0 else ""
        rows.append(f'<tr{css}><td class="aug-meta">{name}</td><td>{texts}</td>'
                    f'<td class="aug-meta">{" · ".join(meta)}</td></tr>')
    shown = len(example.rows) - 1
    return (f'<div class="aug-example" data-example="{example.example_id}"><b>example {example.example_id}</b> '
            f'<span class="aug-meta">{shown} of {example.variants_total} variants shown</span>'
            f'<table>{"".join(rows)}</table></div>')


def page_html(page: Page, text_columns: Sequence[str]) -> str:
    sources = [change["source"] for example in page.examples for row in example.rows
               for pieces in row.segments.values() for _, change in pieces if change is not None]
    if not page.examples:
        return legend(sources) + "<p>No example matches these filters.</p>"
    return legend(sources) + "".join(example_html(e, text_columns) for e in page.examples)


def page_status(page: Page) -> str:
    return (f"page {page.number} of {page.pages} · {page.matching_examples:,} examples, "
            f"{page.matching_rows:,} variants match")


def candidates_html(word: str, route: str | None, candidates: Sequence[Any], missing: str | None = None) -> str:
    """One word's candidate list (``augment.sources.Candidate``s, best first)."""
    if route is None:
        return f"<p><b>{escape(word)}</b>: not replaced (not an eligible word).</p>"
    head = f"<p><b>{escape(word)}</b> \u2192 {SOURCE_NAMES.get(route, route)}"
    if not candidates:
        return head + f": no candidates ({escape(missing or '')})</p>"
    rows = "".join(f"<tr><td>{c.rank + 1}</td><td>{escape(c.word)}</td><td>{c.score:.3f}</td></tr>" for c in candidates)
    score = "probability" if route == "mlm" else "cosine similarity"
    return (head + f", {len(candidates)} candidates</p><table class=\"aug-candidates\"><tr><th>rank</th><th>word</th>"
            f"<th>{score}</th></tr>{rows}</table>")


def plan_html(plan: Any) -> str:
    """Every word of a planned sentence: its route and candidates with scores."""
    rows = []
    for index, word in enumerate(plan.words):
        route = plan.routes[index]
        if route is None:
            rows.append(f"<tr><td>{escape(word.text)}</td><td>-</td><td></td></tr>")
            continue
        listing = ", ".join(f"{escape(c.word)} <span class=\"aug-meta\">{c.score:.2f}</span>"
                            for c in plan.candidates[index]) or f"<i>no candidates ({escape(plan.missing.get(index, ''))})</i>"
        rows.append(f'<tr><td><b>{escape(word.text)}</b></td><td><mark class="aug-word aug-{route}" '
                    f'style="{colour(route)}">{SOURCE_NAMES[route]}</mark></td><td>{listing}</td></tr>')
    return ('<table class="aug-candidates"><tr><th>word</th><th>route</th><th>candidates (score)</th></tr>'
            + "".join(rows) + "</table>")
