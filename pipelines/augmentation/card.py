"""The dataset card (README.md) written beside every augmented dataset."""

from __future__ import annotations

from typing import Any

from tinyaug.augment.engine import (NO_CANDIDATES_BEYOND, NO_CANDIDATES_EMPTY, NO_CANDIDATES_FILTERED,
                                    NO_CANDIDATES_NO_PIECES, NO_CANDIDATES_UNKNOWN)

_REASONS = {
    NO_CANDIDATES_UNKNOWN: "several WordPieces and unknown to the vectors",
    NO_CANDIDATES_BEYOND: "masked-LM words beyond the model's maximum length (left untouched)",
    NO_CANDIDATES_EMPTY: "the masked LM offered no whole word after filtering",
    NO_CANDIDATES_NO_PIECES: "the tokenizer produced no word piece for it",
    NO_CANDIDATES_FILTERED: "the recipe's constraints (similarity, antonyms) removed every candidate",
}


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _constraints(recipe: dict[str, Any]) -> str:
    found = []
    if recipe.get("min_similarity") is not None:
        found.append(f"word-vector similarity >= {recipe['min_similarity']}")
    if recipe.get("exclude_antonyms"):
        found.append("no WordNet antonyms")
    return ", ".join(found) or "none (TinyBERT's)"


def mlm_description(metadata: dict[str, Any]) -> str:
    starter = metadata.get("mlm_starter")
    if not starter:
        return f"`{metadata['mlm']}`"
    return f"`{metadata['mlm']}`. {starter['summary']}"


def render_card(metadata: dict[str, Any]) -> str:
    """Markdown: what the set is, how it was made (recipe, models) and its statistics."""
    recipe = metadata["recipe"]
    stats = metadata["stats"]
    replaced = stats.get("replaced", {})
    total_replaced = sum(replaced.values())
    eligible = stats.get("eligible_words", 0)
    missing = stats.get("no_candidates", {})
    rate = total_replaced / stats["variant_eligible_words"] if stats.get("variant_eligible_words") else 0.0
    method = metadata.get("method") or recipe.get("method", "tinybert")
    lines = [
        "---", "tags: [tinyaug, data-augmentation, knowledge-distillation]", "---", "",
        f"# Augmented {metadata['task'] or 'table'}: "
        f"{(metadata.get('label_policy') or metadata)['rows_out']} rows from {metadata['rows_in']}",
        "",
        f"Made by tinyaug {metadata['tinyaug_version']} from `{metadata['input']}` (text columns: "
        f"{', '.join(f'`{c}`' for c in metadata['text_columns'])}; label column: "
        f"`{metadata['label_column']}`). Each row keeps every column of its source row; the method "
        f"`{method}` rewrites only the edited spans of the text columns. Provenance columns: "
        "`aug_example_id` (source row), `aug_variant` (0 = the original), `aug_changes` (each edit with its "
        "kind, position, source, candidate rank and step).",
        "",
        "## Recipe", "",
        "| setting | value |", "|---|---|",
        f"| method | `{method}` |",
        f"| variants per example (N) | {recipe['variants_per_example']} |",
        f"| candidates per word (K) | {recipe['candidates_per_word']} |",
        f"| replacement probability (p) | {recipe['replace_prob']} |",
        f"| seed | {recipe['seed']} |",
        f"| masked-LM context | {recipe['mlm_context']} |",
        f"| pair mode | {recipe['pair_mode']} |",
        f"| max length | {recipe['max_length'] or 'the model maximum'} |",
        f"| candidate constraints | {_constraints(recipe)} |",
    ]
    if recipe.get("masks_per_context", 1) != 1:
        lines.append(f"| words masked per context | up to {recipe['masks_per_context']} (faster; candidates differ "
                     "from one word per context: README, Throughput) |")
    if metadata.get("mlm"):
        lines.append(f"| masked LM | {mlm_description(metadata)} |")
    if metadata.get("vectors"):
        lines.append(f"| word vectors | `{metadata['vectors']}` |")
    routed = stats.get("routed", {})
    lines += [
        "",
        "## Statistics", "",
        "| | value |", "|---|---|",
        f"| rows in | {metadata['rows_in']} |",
        f"| rows out | {metadata['rows_out']} ({metadata['rows_out'] / max(1, metadata['rows_in']):.1f} per row in) |",
        f"| rows skipped as bad input | {len(metadata.get('skipped_rows', []))} |",
        f"| eligible words in the source texts | {eligible} |",
        "| eligible words by source | " + (" / ".join(f"{name} {n}" for name, n in sorted(routed.items())) or "none")
        + " |",
        f"| edit rate (edits / eligible words, over the varied columns of variants) | {100 * rate:.1f}% |",
    ]
    lines += [f"| edits from {name} | {n} ({_pct(n, total_replaced)}) |" for name, n in sorted(replaced.items())]
    lines += [f"| edits of kind {kind} | {n} |" for kind, n in sorted(stats.get("edit_kinds", {}).items())]
    lines += [f"| draws skipped: {why} | {n} |" for why, n in sorted(stats.get("skipped", {}).items())]
    lines += [
        f"| eligible words with no candidates | {sum(missing.values())} ({_pct(sum(missing.values()), eligible)}) |",
    ]
    for reason, count in sorted(missing.items()):
        lines.append(f"| - {_REASONS.get(reason, reason)} | {count} |")
    top_missing = sorted(stats.get("no_candidate_words", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    if top_missing:
        lines += ["", "Most frequent words with no candidates: " + ", ".join(f"{w} ({n})" for w, n in top_missing) + "."]
    skipped = metadata.get("skipped_rows", [])
    if skipped:
        lines += ["", "## Skipped rows", ""] + [f"- {s}" for s in skipped[:50]]
        if len(skipped) > 50:
            lines.append(f"- ... and {len(skipped) - 50} more")
    lines += _teacher_section(metadata) + _policy_section(metadata)
    lines += ["", "Load with `datasets.load_from_disk(PATH)`; export with "
              "`tinyaug export PATH --format tsv|parquet|jsonl|csv|json`.", ""]
    return "\n".join(lines)


def _rate_row(name: str, rate: dict[str, Any]) -> str:
    shown = "n/a" if rate["rate"] is None else f"{100 * rate['rate']:.1f}%"
    return f"| {name} | {rate['variants']} | {rate['flipped']} | {shown} |"


def _teacher_section(metadata: dict[str, Any]) -> list[str]:
    """What the teacher makes of the variants (``tinyaug teacher-logits``): flip rates."""
    teacher = metadata.get("teacher_logits") or {}
    found = teacher.get("flips")
    if not found:
        return []
    definition = found.get("definition", "the teacher predicts another class than on the original")
    lines = ["", "## What the teacher makes of the variants", "",
             f"Teacher `{teacher.get('teacher')}`. A variant *flips* when {definition}: its copied label is then "
             "probably wrong (filter with `tinyaug filter`, or export the teacher's labels with "
             "`tinyaug export --labels teacher`).", "",
             "| variants | count | flipped | flip rate |", "|---|---|---|---|", _rate_row("all", found["overall"])]
    for group, title in (("by_source", "edited by"), ("by_kind", "edit kind"), ("by_label", "gold label"),
                         ("by_replaced_words", "words edited")):
        for name, rate in (found.get(group) or {}).items():
            lines.append(_rate_row(f"{title}: {name}", rate))
    return lines


def _policy_section(metadata: dict[str, Any]) -> list[str]:
    """The label policy a ``tinyaug filter`` applied: what it kept, dropped and relabelled."""
    policy = metadata.get("label_policy")
    if not policy:
        return []
    lines = ["", "## Label policy", "",
             f"Made by `tinyaug filter` from `{policy['source']}`, which stays as it was: keep `{policy['keep']}`, "
             f"labels: `{policy['labels']}`. {policy['rows_in']} rows in, {policy['rows_out']} kept "
             f"(originals always stay).", ""]
    lines += [f"- dropped, {reason}: {count}" for reason, count in policy["dropped"].items()] or ["- nothing dropped"]
    if policy["labels"] == "teacher":
        lines.append(f"- variants relabelled with the teacher's prediction: {policy['relabelled']}")
    return lines
