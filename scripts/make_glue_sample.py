"""Write the embedded GLUE sample: a seeded sample of real rows, in the official file layout.

Usage: python scripts/make_glue_sample.py ../shared/glue resources/glue_sample

Rows keep their order in the source file; headers (and MRPC's byte-order mark) are copied.
"""

import random
import sys
from pathlib import Path

TASKS = {"SST-2": 300, "MRPC": 200, "RTE": 200, "CoLA": 300, "STS-B": 200}
DEV_ROWS = 100
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


if __name__ == "__main__":
    main(*sys.argv[1:])
