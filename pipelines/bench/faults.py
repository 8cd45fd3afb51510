"""Kill-and-resume trials: run a ``tinyaug`` command, SIGKILL it at a random moment of its work,
run it again, and compare the output with an uninterrupted run's (``benchmarks/kill_resume.py``
and ``tests/test_faults.py`` use these).

Not here: what is promised about interrupted runs (README, "Reliability").
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import time
from pathlib import Path

PROGRAM = [sys.executable, "-c", "from tinyaug.pipelines.cli import main; main()"]


def digest(path: Path) -> str:
    """A digest of a file, or of a folder's files (names and bytes; ``state.json``, whose dataset
    fingerprint differs between runs, and ``datasets``' cache files are left out)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file.name == "state.json" or file.name.startswith("cache-"):
            continue
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def run(args: list[str], timeout: float = 3600) -> float:
    """Run ``tinyaug ARGS`` to the end (raising with its stderr if it fails); its wall clock."""
    start = time.perf_counter()
    result = subprocess.run(PROGRAM + args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"tinyaug {' '.join(args[:1])} failed: {result.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def work_seconds(args: list[str], started: Path, timeout: float = 3600) -> float:
    """Seconds from ``started`` appearing (the work began) to the end of an uninterrupted run."""
    process = subprocess.Popen(PROGRAM + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not started.exists() and process.poll() is None:
        time.sleep(0.01)
    start = time.perf_counter()
    _, stderr = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"tinyaug {' '.join(args[:1])} failed: {stderr.strip()[-500:]}")
    return time.perf_counter() - start


def run_killed(args: list[str], started: Path, seconds: float, rng: random.Random) -> bool:
    """Start ``tinyaug ARGS``, wait until ``started`` exists, then SIGKILL it after a random part
    of ``seconds``. True if the kill landed before the run finished."""
    process = subprocess.Popen(PROGRAM + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not started.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, seconds))
    finished = process.poll() is not None
    process.kill()
    process.wait()
    return not finished


def leftovers(out: Path) -> list[str]:
    """What lies beside ``out`` that belongs to it (work folders, temporary files), but ``out``."""
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name != out.name and p.name.startswith((f"{out.name}.", f".{out.name}.")))
