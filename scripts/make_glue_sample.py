"""Write the embedded GLUE sample: a seeded sample of real rows, in the official file layout.

Usage: python scripts/make_glue_sample.py ../shared/glue resources/glue_sample

Rows keep their order in the source file; headers (and MRPC's byte-order mark) are copied.
"""

import random
import sys
from pathlib import Path

TASKS = {"SST-2": 300, "MRPC": 200, "RTE": 200, "CoLA": 300, "STS-B": 200}
DEV_ROWS = 100
# a few rows of two more layouts (an index column, QNLI's dev only), so the tests that read real
# GLUE files run on the sample; `augment` does not offer these tasks without --data-dir
TEST_ROWS = {"WNLI": {"train.tsv": 40, "dev.tsv": 20}, "QNLI": {"dev.tsv": 40}}
HEADERLESS = {"CoLA"}


def sample(source: Path, target: Path, rows: int, seed: int) -> None:
    lines = source.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    header = [] if source.parent.name in HEADERLESS else lines[:1]
    data = lines[len(header):]
    keep = sorted(random.Random(seed).sample(range(len(data)), min(rows, len(data))))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\n".join(header + [data[i] for i in keep]) + b"\n")


def main(glue_dir: str, out_dir: str) -> None:
    for folder, rows in TASKS.items():
        sample(Path(glue_dir) / folder / "train.tsv", Path(out_dir) / folder / "train.tsv", rows, seed=13)
        sample(Path(glue_dir) / folder / "dev.tsv", Path(out_dir) / folder / "dev.tsv", DEV_ROWS, seed=13)
    for folder, files in TEST_ROWS.items():
        for name, rows in files.items():
            sample(Path(glue_dir) / folder / name, Path(out_dir) / folder / name, rows, seed=13)


if __name__ == "__main__":
    main(*sys.argv[1:])
