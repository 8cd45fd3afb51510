"""How often does an interrupted run resume to the same rows? N random kills on a real slice.

Runs `tinyaug augment` on the first ROWS SST-2 train examples (the embedded starter masked LM,
GloVe 6B 50d) once uninterrupted; then N times: start the same command in a fresh folder,
SIGKILL it at a uniformly random moment of its work, run it again to the end, and compare the
result with the uninterrupted one (file bytes). With --teacher, the same for `tinyaug
teacher-logits` in place on copies of the augmented dataset.

    python benchmarks/kill_resume.py --runs 10 --rows 200 [--teacher runs/exp/sst2/teacher]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from tinyaug.pipelines.bench.faults import digest, leftovers, run, run_killed, work_seconds

GLUE = Path(__file__).resolve().parents[2] / "shared" / "glue"


def trials(name: str, args_for, started_for, prepare, runs: int, rng: random.Random, workdir: Path) -> dict:
    reference = workdir / f"{name}-reference"
    prepare(reference)
    seconds = work_seconds(args_for(reference), started_for(reference))
    expected = digest(reference)
    killed = identical = clean = 0
    for trial in range(runs):
        out = workdir / f"{name}-{trial}"
        prepare(out)
        killed += run_killed(args_for(out), started_for(out), seconds, rng)
        run(args_for(out))
        identical += digest(out) == expected
        clean += not leftovers(out)
    return {"command": name, "runs": runs, "work_seconds": seconds, "killed_mid_run": killed,
            "identical": identical, "nothing_left_behind": clean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=GLUE)
    parser.add_argument("--teacher", type=Path, help="a fine-tuned SST-2 teacher: also kill teacher-logits")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinyaug-kills-") as tmp:
        workdir = Path(tmp)

        def augment_args(out: Path) -> list[str]:
            return ["augment", "--task", "sst2", "--data-dir", str(args.data_dir), "--limit", str(args.rows),
                    "-n", "8", "--shard-size", str(max(1, args.rows // 10)), "--show", "0", "--out", str(out)]

        results = [trials("augment", augment_args, lambda out: out.with_name(out.name + ".partial"),
                          lambda out: None, args.runs, rng, workdir)]
        if args.teacher:
            source = workdir / "aug"
            run(augment_args(source))
            logits_args = ["teacher-logits", "--teacher", str(args.teacher), "--task", "sst2", "--batch-size", "16"]
            results.append(trials("teacher-logits", lambda out: logits_args + ["--data", str(out)],
                                  lambda out: out.with_name(out.name + ".teacher.partial"),
                                  lambda out: shutil.copytree(source, out), args.runs, rng, workdir))
    print(f"{args.rows} SST-2 rows, seed {args.seed}, {(time.perf_counter() - started) / 60:.1f} min")
    print("| command | runs | work s (uninterrupted) | killed mid-run | resumed identical | nothing left behind |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['command']} | {r['runs']} | {r['work_seconds']:.1f} | {r['killed_mid_run']} | "
              f"{r['identical']} | {r['nothing_left_behind']} |")


if __name__ == "__main__":
    main()
