"""How often the teacher changes its mind on augmented variants, per candidate option.

Augments the same slice of a GLUE task once per option set (the baseline, a minimum word-vector
similarity, no WordNet antonyms, the reference's pair context, fewer replaced words), labels
every variant with the same fine-tuned teacher (``tinyaug teacher-logits``), and prints one
Markdown table: flip rate overall and by source, replacement rate, and the share of eligible
words left without candidates. Every step is a ``tinyaug`` command line, run in-process.

Usage (the teacher from an ablation run, e.g. runs/exp/sst2/teacher):

    python benchmarks/flip_rates.py --task sst2 --teacher runs/exp/sst2/teacher \\
        --data-dir ../shared/glue --limit 500 -n 8 --out runs/flips-sst2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyaug.pipelines.cli import run_command

OPTIONS = {
    "baseline (TinyBERT)": [],
    "similarity >= 0.5": ["--min-similarity", "0.5"],
    "similarity >= 0.7": ["--min-similarity", "0.7"],
    "no antonyms": ["--exclude-antonyms"],
    "similarity >= 0.5, no antonyms": ["--min-similarity", "0.5", "--exclude-antonyms"],
    "p = 0.2 (fewer replaced words)": ["-p", "0.2"],
    "pair context (reference)": ["--context", "pair"],
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("-n", "--variants", type=int, default=8)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--options", help="Comma-separated names of OPTIONS to run [default: all].")
    args = parser.parse_args()
    chosen = [o.strip() for o in args.options.split(",")] if args.options else list(OPTIONS)
    rows = ["| option | variants | flip rate | flips, mlm / vectors / mlm + vectors | "
            "replacement rate | eligible words with no candidates | minutes |", "|---|---|---|---|---|---|---|"]
    for name in chosen:
        folder = args.out / "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        started = time.perf_counter()
        if not (folder / "teacher_logits.json").is_file():
            run_command(["augment", "--task", args.task, "--data-dir", args.data_dir, "--limit", args.limit,
                         "-n", args.variants, "--out", folder, "--overwrite", "--show", 0, *OPTIONS[name]])
            run_command(["teacher-logits", "--teacher", args.teacher, "--data", folder, "--task", args.task])
        info = json.loads((folder / "teacher_logits.json").read_text())
        meta = json.loads(json.loads((folder / "dataset_info.json").read_text())["description"])["tinyaug"]
        stats, flips = meta["stats"], info["flips"]
        replaced = sum(stats["replaced"].values())
        rate = replaced / stats["variant_eligible_words"] if stats.get("variant_eligible_words") else None
        missing = sum(stats["no_candidates"].values()) / stats["eligible_words"] if stats["eligible_words"] else None
        by_source = " / ".join(_pct((flips["by_source"].get(s) or {}).get("rate"))
                               for s in ("mlm", "vectors", "mlm + vectors"))
        rows.append(f"| {name} | {flips['overall']['variants']:,} | {_pct(flips['overall']['rate'])} | {by_source} | "
                    f"{_pct(rate)} | {_pct(missing)} | {(time.perf_counter() - started) / 60:.1f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
