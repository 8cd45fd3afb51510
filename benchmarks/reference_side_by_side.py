"""Time the TinyBERT reference ``data_augmentation.py`` and ``tinyaug augment`` on the same SST-2 rows.

Each tool runs as its own process on the first ROWS rows of SST-2 train, at two row counts (say
20 and 200), with the same masked LM and GloVe file, N=20, K=15, p=0.4. For each run: wall-clock
seconds of the whole process (start-up, model and vector loading included), its CPU seconds,
peak memory and rows written; then the steady state, seconds per extra row
((t200 - t20) / 180), and the ratio tinyaug / reference. Printed as Markdown (``--json`` also
writes the figures).

The reference is not vendored: pass the TinyBERT folder of a checkout of
huawei-noah/Pretrained-Language-Model. It runs unmodified, through a small launcher that first
applies the compatibility shims this Python needs (``numpy.Inf``, gone in NumPy 2.0; stand-ins
for its download-only imports boto3, botocore, requests, tqdm if they are missing); the output
names the shims applied. Its loader reads ``config.json``, ``pytorch_model.bin`` (a state dict,
loaded with ``torch.load``) and ``vocab.txt`` from one folder; tinyaug reads the same folder
(``model.safetensors``, the tokenizer files). ``write-model`` writes such a folder: bert-base's
shape with random weights and the real bert-base-uncased WordPiece vocabulary (timing does not
need trained weights). The reference forces N=20 for SST-2 whatever ``--N`` says, so N is 20.
Both pick CUDA when they see it; ``--threads`` gives both the same CPU threads.

    python benchmarks/reference_side_by_side.py write-model runs/bert-base-random
    python benchmarks/reference_side_by_side.py write-glove runs/glove.6B.50d.txt
    python benchmarks/reference_side_by_side.py run --reference ../Pretrained-Language-Model/TinyBERT \\
        --model runs/bert-base-random --glove runs/glove.6B.50d.txt --rows 20,200 \\
        [--threads 1] [--tinyaug-arg="--batch-size 128"] [--json side-by-side.json] \\
        [--mode "fp32=" --mode "bf16=--precision bf16" --mode "ort int8=--backend onnxruntime --precision int8"]

Each ``--mode LABEL=ARGS`` is one tinyaug configuration timed against the same reference runs
(``--tinyaug-arg`` is added to every mode); without one, tinyaug runs with its defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

GLUE = Path(__file__).resolve().parents[2] / "shared" / "glue"
REFERENCE_N = 20  # data_augmentation.py's default_params["SST-2"], applied over --N
MODEL_FILES = {"reference": ("config.json", "pytorch_model.bin", "vocab.txt"),
               "tinyaug": ("config.json", "model.safetensors", "vocab.txt")}
# tinyaug options this script sets itself: passing them again would compare other settings
OWN_OPTIONS = ("--task", "--data-dir", "--input", "--limit", "--out", "--mlm", "--vectors", "-n", "--variants",
               "-k", "--candidates", "-p", "--replace-prob", "--reference-n", "--from-hub", "--split")

# Runs the reference's script unmodified after the shims this interpreter needs; argv[1] is the
# script, the rest its arguments. Writes what it applied (and its versions) to $SIDE_BY_SIDE_REPORT.
LAUNCHER = r"""
import importlib.util, json, os, runpy, sys, types
applied = []
import numpy
if not hasattr(numpy, "Inf"):
    numpy.Inf = numpy.inf
    applied.append("numpy.Inf = numpy.inf (removed in NumPy 2.0; used by _word_distance)")
missing = [name for name in ("boto3", "botocore", "requests", "tqdm") if importlib.util.find_spec(name) is None]
stubs = {"boto3": {}, "botocore": {}, "botocore.exceptions": {"ClientError": type("ClientError", (Exception,), {})},
         "requests": {}, "tqdm": {"tqdm": lambda *a, **k: None}}
for name, attrs in stubs.items():
    if name.split(".")[0] in missing:
        sys.modules[name] = module = types.ModuleType(name)
        module.__dict__.update(attrs)
if missing:
    applied.append("empty stand-ins for " + ", ".join(missing) + " (imported by transformer/file_utils.py, "
                   "used only to download models)")
import torch
with open(os.environ["SIDE_BY_SIDE_REPORT"], "w") as f:
    json.dump({"shims": applied, "python": sys.version.split()[0], "torch": torch.__version__,
               "numpy": numpy.__version__}, f)
script, sys.argv = sys.argv[1], sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
"""


# ---------------------------------------------------------------- the model folder and the vectors file

def write_model_folder(folder: Path, model: Any, tokenizer: Any) -> list[str]:
    """Write ``model`` (a transformers ``BertForMaskedLM``) where both tools read it: tinyaug's
    ``model.safetensors`` + tokenizer files, and the reference's ``pytorch_model.bin`` (the
    state dict; its module names are the reference's own, ``bert.encoder.layer.0...`` and
    ``cls.predictions...``). Both read ``config.json`` and ``vocab.txt``. Returns the file names."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise SystemExit(f"{folder}: not empty; write-model writes into a new or empty folder")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if not (folder / "vocab.txt").is_file():  # transformers 5 saves a fast tokenizer as tokenizer.json only
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])  # [(piece, id), ...]
        if [i for _, i in vocab] != list(range(len(vocab))):
            raise SystemExit("the tokenizer's ids are not 0..V-1: it cannot be written as a vocab.txt")
        (folder / "vocab.txt").write_text("".join(piece + "\n" for piece, _ in vocab), encoding="utf-8")
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    missing = [name for need in MODEL_FILES.values() for name in need if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"{folder}: {', '.join(missing)} not written (transformers' save_pretrained changed?)")
    return sorted(p.name for p in folder.iterdir())


def write_glove_text(path: Path, words: Sequence[str], vectors: Any, rows: int | None = None) -> int:
    """GloVe's text format, ``word v1 v2 ...`` per line, in the vectors' (frequency) order."""
    rows = len(words) if rows is None else min(rows, len(words))
    line = "%s " + " ".join(["%.6g"] * vectors.shape[1]) + "\n"
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(line % (words[i], *vectors[i].tolist()))
    return rows


# ---------------------------------------------------------------- the rows and the two commands

def write_rows(data_dir: Path, rows: int, out: Path) -> Path:
    """A GLUE folder ``out/SST-2/train.tsv``: the header and the first ``rows`` rows of
    ``data_dir/SST-2/train.tsv``, byte for byte (what both tools read). Returns ``out``."""
    lines = (data_dir / "SST-2" / "train.tsv").read_bytes().splitlines(keepends=True)
    if len(lines) - 1 < rows:
        raise SystemExit(f"{data_dir}/SST-2/train.tsv has {len(lines) - 1} rows, fewer than --rows {rows}")
    (out / "SST-2").mkdir(parents=True)
    (out / "SST-2" / "train.tsv").write_bytes(b"".join(lines[:rows + 1]))
    return out


def reference_command(args: argparse.Namespace, glue: Path) -> list[str]:
    return [args.reference_python, "-c", LAUNCHER, str(args.reference / "data_augmentation.py"),
            "--pretrained_bert_model", str(args.model), "--glove_embs", str(args.glove), "--glue_dir", str(glue),
            "--task_name", "SST-2", "--N", str(args.n), "--M", str(args.k), "--p", str(args.p)]


def tinyaug_command(args: argparse.Namespace, glue: Path, out: Path, mode: Sequence[str] = ()) -> list[str]:
    beside = Path(sys.executable).with_name("tinyaug")  # not a shim script (pyenv's costs ~0.1 s)
    executable = str(beside) if beside.is_file() else (shutil.which("tinyaug") or "tinyaug")
    return [executable, "-q", "augment", "--task", "sst2", "--data-dir", str(glue), "--mlm", str(args.model),
            "--vectors", str(args.glove), "-n", str(args.n), "-k", str(args.k), "-p", str(args.p),
            "--out", str(out), "--show", "0", *args.tinyaug_args, *mode]


def child_env(threads: int | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    if threads:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")})
    return env


def timed(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, float]:
    """Run ``command`` to its end: wall-clock, CPU (user + system) seconds and peak RSS of the
    process (``os.wait4``: its own figures, not every child's so far)."""
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise SystemExit(f"{Path(command[0]).name} exited with status {process.returncode}; the end of {log}:\n{tail}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def rows_out(tool: str, glue: Path, out: Path | None) -> int:
    if tool == "reference":  # its train_aug.tsv: the header, then one line per row
        with (glue / "SST-2" / "train_aug.tsv").open("rb") as f:
            return sum(1 for _ in f) - 1
    import datasets

    return datasets.load_from_disk(str(out)).num_rows


def best_of(kept: dict[str, Any] | None, figures: dict[str, Any]) -> dict[str, Any]:
    """The run with the shortest wall-clock of ``kept`` (the best so far, with every run's
    ``walls``) and ``figures`` (one more run): on shared CPUs a run is only ever slowed down.

    >>> best_of(best_of(None, {"wall_s": 3.0, "cpu_s": 5.0}), {"wall_s": 2.0, "cpu_s": 4.0})
    {'wall_s': 2.0, 'cpu_s': 4.0, 'walls': [3.0, 2.0]}
    """
    walls = [*(kept or {}).get("walls", []), figures["wall_s"]]
    best = figures if kept is None or figures["wall_s"] < kept["wall_s"] else kept
    return {**{k: v for k, v in best.items() if k != "walls"}, "walls": walls}


def read_through(*paths: Path) -> None:
    """Read files once so that neither tool's first run pays for the disk."""
    for path in paths:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


# ---------------------------------------------------------------- the run

def check_inputs(args: argparse.Namespace) -> None:
    """Every missing input at once, each with what it should hold."""
    problems = []
    if not (args.reference / "data_augmentation.py").is_file() or not (args.reference / "transformer").is_dir():
        problems.append(f"--reference {args.reference}: no data_augmentation.py and transformer/ there "
                        "(pass the TinyBERT folder of huawei-noah/Pretrained-Language-Model)")
    for tool, names in MODEL_FILES.items():
        absent = [n for n in names if not (args.model / n).is_file()]
        if absent:
            problems.append(f"--model {args.model}: {tool} needs {', '.join(absent)} (write one with write-model)")
    if not args.glove.is_file():
        problems.append(f"--glove {args.glove}: no such file (write one with write-glove)")
    if not (args.data_dir / "SST-2" / "train.tsv").is_file():
        problems.append(f"--data-dir {args.data_dir}: no SST-2/train.tsv (a GLUE data folder)")
    if problems:
        raise SystemExit("\n".join(problems))


def summarise(runs: dict[str, dict[int, dict[str, float]]], rows: tuple[int, int]) -> dict[str, Any]:
    """Steady state per tool ((t_hi - t_lo) / (hi - lo), wall and CPU) and each tinyaug mode /
    reference (``ratio_over_reference``; ``ratio_tinyaug_over_reference``: the mode named
    ``tinyaug``, the one run without ``--mode``).

    ``{"reference": {20: {"wall_s": 10, "cpu_s": 9}, 200: {"wall_s": 100, "cpu_s": 90}}, "tinyaug":
    {20: {"wall_s": 5, ...}, 200: {"wall_s": 14, ...}}}`` -> reference 0.5 s per row, tinyaug
    0.05, ratio 0.1."""
    lo, hi = rows
    steady = {tool: {f"steady_{key}_per_row": (by[hi][key] - by[lo][key]) / (hi - lo) for key in ("wall_s", "cpu_s")}
              for tool, by in runs.items()}
    ratios = {}
    for tool in runs:
        if tool == "reference":
            continue
        ratio = {f"whole_wall_s_{n}_rows": runs[tool][n]["wall_s"] / runs["reference"][n]["wall_s"] for n in rows}
        for key in ("steady_wall_s_per_row", "steady_cpu_s_per_row"):
            ratio[key] = steady[tool][key] / steady["reference"][key] if steady["reference"][key] > 0 else None
        ratios[tool] = ratio
    out: dict[str, Any] = {"steady": steady, "ratio_over_reference": ratios}
    if "tinyaug" in ratios:
        out["ratio_tinyaug_over_reference"] = ratios["tinyaug"]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinyaug.pipelines.io.cpu import cpu_info, describe
    from tinyaug.pipelines.io.vectors import load_vectors

    check_inputs(args)
    work = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    try:
        env = child_env(args.threads)
        read_through(args.model / "pytorch_model.bin", args.model / "model.safetensors", args.glove)
        start = time.perf_counter()  # tinyaug parses a vectors file once, then memory-maps its cache
        load_vectors(str(args.glove))
        cache_s = time.perf_counter() - start
        runs: dict[str, dict[int, dict[str, Any]]] = {"reference": {}, **{tool: {} for tool in args.modes}}
        report = work / "reference.json"
        glues = {n: write_rows(args.data_dir, n, work / f"glue-{n}") for n in args.rows}
        warm = write_rows(args.data_dir, 1, work / "glue-warm-up")
        for number, (tool, mode) in enumerate(args.modes.items()):  # builds a mode's onnxruntime graph if not cached
            print(f"{tool}, 1 row, warm-up (not timed) ...", file=sys.stderr, flush=True)
            timed(tinyaug_command(args, warm, work / f"warm-up{number}", mode), env, work, work / f"warm-up{number}.log")
        for repeat in range(args.repeat):  # each repetition runs every tool once: drift touches all alike
            for n, glue in glues.items():
                commands = [("reference", reference_command(args, glue), dict(env, SIDE_BY_SIDE_REPORT=str(report)), None)]
                for number, (tool, mode) in enumerate(args.modes.items()):
                    out = work / f"tinyaug{number}-{n}"
                    shutil.rmtree(out, ignore_errors=True)  # a finished output would make the next run a no-op
                    commands.append((tool, tinyaug_command(args, glue, out, mode), env, out))
                for tool, command, tool_env, out in commands:
                    print(f"{tool}, {n} rows, run {repeat + 1} of {args.repeat} ...", file=sys.stderr, flush=True)
                    figures = timed(command, tool_env, work, work / f"{tool.replace(' ', '_')}-{n}-{repeat + 1}.log")
                    figures.update(rows_in=n, rows_out=rows_out(tool, glue, out))
                    runs[tool][n] = best_of(runs[tool].get(n), figures)
        config = json.loads((args.model / "config.json").read_text())
        import torch

        return {
            "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "machine": describe(),
            "threads": args.threads or f"default ({torch.get_num_threads()} torch threads)", "repeat": args.repeat,
            "settings": {"task": "SST-2", "rows": list(args.rows), "N": args.n, "K": args.k, "p": args.p,
                         "data": str(args.data_dir / "SST-2" / "train.tsv"), "glove": str(args.glove),
                         "model": str(args.model), "model_shape": {k: config.get(k) for k in
                                                                   ("num_hidden_layers", "hidden_size", "vocab_size")}},
            "reference": {"script": str(args.reference / "data_augmentation.py"),
                          "sha256": hashlib.sha256((args.reference / "data_augmentation.py").read_bytes()).hexdigest(),
                          **json.loads(report.read_text())},
            "tinyaug": {"version": _version("tinyaug"), "python": sys.version.split()[0], "torch": torch.__version__,
                        "extra_args": args.tinyaug_args, "modes": args.modes, "vectors_cache_s": cache_s},
            "runs": {tool: {str(n): figures for n, figures in by.items()} for tool, by in runs.items()},
            **summarise(runs, args.rows),
        }
    finally:
        if args.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def markdown(r: dict[str, Any]) -> str:
    s, ref, tiny, lo, hi = r["settings"], r["reference"], r["tinyaug"], *r["settings"]["rows"]
    shape = s["model_shape"]
    extra = " ".join(shlex.quote(a) for a in tiny["extra_args"])
    repeat = r.get("repeat", 1)
    runs = "one run" if repeat == 1 else f"the shortest of {repeat} interleaved runs (every run's time in the JSON)"
    lines = [
        f"## TinyBERT reference vs tinyaug augment, SST-2 ({r['date']})", "",
        f"- Machine: {r['machine']}; threads: {r['threads']}; {runs} of each tool at each row count.",
        f"- Rows: the first {lo} and {hi} rows of `{s['data']}`, the same file for both; "
        f"N={s['N']} (the reference forces 20 for SST-2), K={s['K']}, p={s['p']}.",
        f"- Masked LM: `{s['model']}` ({shape['num_hidden_layers']} layers x {shape['hidden_size']}, "
        f"vocabulary {shape['vocab_size']}); vectors: `{s['glove']}`.",
        f"- Reference: `{ref['script']}` (sha256 {ref['sha256'][:12]}), Python {ref['python']}, torch {ref['torch']}, "
        f"NumPy {ref['numpy']}; shims applied at run time, its files unmodified: {'; '.join(ref['shims']) or 'none'}.",
        f"- tinyaug {tiny['version']}: `tinyaug augment -n {s['N']} -k {s['K']} -p {s['p']}"
        f"{' ' + extra if extra else ''}`, Python {tiny['python']}, torch {tiny['torch']}; its vectors cache "
        f"warmed before timing ({tiny['vectors_cache_s']:.1f} s), and each mode run once on 1 row before timing "
        f"(untimed: it builds the mode's onnxruntime graph if it is not cached)"
        + "".join(f"; `{tool}`: `{' '.join(shlex.quote(a) for a in extra) or '(defaults)'}`"
                  for tool, extra in tiny.get("modes", {}).items()) + ".", "",
        "| run | rows in | rows out | wall s | CPU s | peak RSS MB |", "|---|---|---|---|---|---|"]
    tools = list(r["runs"])  # the reference first, then each tinyaug mode
    for n in (lo, hi):
        for tool in tools:
            f = r["runs"][tool][str(n)]
            lines.append(f"| {tool} | {n} | {f['rows_out']} | {f['wall_s']:.2f} | {f['cpu_s']:.2f} | {f['peak_rss_mb']:.0f} |")
    steady = r["steady"]
    ratios = r["ratio_over_reference"]
    lines += ["", f"| | whole process, {lo} rows, s | whole process, {hi} rows, s | steady state, wall s per extra row "
                  "| steady state, CPU s per extra row | times the reference's speed at steady state (wall) |",
              "|---|---|---|---|---|---|"]
    for tool in tools:
        whole = [r["runs"][tool][str(n)]["wall_s"] for n in (lo, hi)]
        ratio = ratios.get(tool, {}).get("steady_wall_s_per_row")
        speed = "" if tool == "reference" else ("n/a" if not ratio else f"{1 / ratio:.1f}x")
        lines.append(f"| {tool} | {whole[0]:.2f} | {whole[1]:.2f} | {steady[tool]['steady_wall_s_per_row']:.4f} | "
                     f"{steady[tool]['steady_cpu_s_per_row']:.4f} | {speed} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line

def _rows(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: two row counts, e.g. 20,200") from None
    if not 1 <= lo < hi:
        raise argparse.ArgumentTypeError(f"{text!r}: two row counts, the first at least 1 and below the second")
    return lo, hi


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model = commands.add_parser("write-model", help="a random bert-base-shaped model folder both tools read")
    model.add_argument("folder", type=Path)
    model.add_argument("--seed", type=int, default=0)
    glove = commands.add_parser("write-glove", help="GloVe 6B 50d (the embedded copy) as a GloVe text file")
    glove.add_argument("path", type=Path)
    glove.add_argument("--glove-rows", type=int, default=None, help="only the first (most frequent) rows")
    bench = commands.add_parser("run", help="time both tools")
    bench.add_argument("--reference", type=Path, required=True, help="the TinyBERT folder of a checkout")
    bench.add_argument("--model", type=Path, required=True, help="a folder from write-model, or like it")
    bench.add_argument("--glove", type=Path, required=True, help="a GloVe text file")
    bench.add_argument("--data-dir", type=Path, default=GLUE, help="GLUE data folder [default: %(default)s]")
    bench.add_argument("--rows", type=_rows, default=(20, 200), help="two row counts [default: 20,200]")
    bench.add_argument("-n", type=int, default=REFERENCE_N, help="variants per row (the reference forces 20)")
    bench.add_argument("-k", type=int, default=15, help="candidates per word")
    bench.add_argument("-p", type=float, default=0.4, help="replacement probability")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads for each tool [default: theirs]")
    bench.add_argument("--tinyaug-arg", dest="tinyaug_arg", action="append", default=[], metavar="ARGS",
                       help="extra tinyaug augment arguments, e.g. --tinyaug-arg='--precision bf16' (repeatable)")
    bench.add_argument("--mode", dest="mode", action="append", default=[], metavar="LABEL=ARGS",
                       help="a tinyaug configuration to time, e.g. --mode 'onnxruntime int8=--backend onnxruntime "
                            "--precision int8' (repeatable; default: one, tinyaug's defaults)")
    bench.add_argument("--repeat", type=int, default=1, help="runs of each tool at each row count, interleaved; "
                       "the shortest is reported, all in --json [default: 1]")
    bench.add_argument("--reference-python", default=sys.executable, help="the interpreter for the reference")
    bench.add_argument("--json", type=Path, default=None, help="also write the figures here")
    bench.add_argument("--keep", action="store_true", help="keep the work folder (inputs, outputs, logs)")
    args = parser.parse_args(argv)
    if args.command == "run":
        for name in ("reference", "model", "glove", "data_dir"):  # the tools run in a work folder
            setattr(args, name, getattr(args, name).resolve())
        args.tinyaug_args = [part for value in args.tinyaug_arg for part in shlex.split(value)]
        args.modes = {"tinyaug": []} if not args.mode else {}
        for value in args.mode:
            label, _, extra = value.partition("=")
            if not label.strip() or label.strip() == "reference" or f"tinyaug {label.strip()}" in args.modes:
                parser.error(f"--mode {value!r}: LABEL=ARGS with a label of its own (not 'reference')")
            args.modes[f"tinyaug {label.strip()}"] = shlex.split(extra)
        given = args.tinyaug_args + [part for extra in args.modes.values() for part in extra]
        own = sorted({a.split("=")[0] for a in given} & set(OWN_OPTIONS))
        if own:
            parser.error(f"--tinyaug-arg/--mode {' '.join(own)}: set by this script for both tools; use its own options")
        if args.n != REFERENCE_N:
            parser.error(f"-n {args.n}: the reference uses N=20 for SST-2 whatever --N says (default_params in "
                         "its main), so the comparison holds only at 20")
        if args.k < 1 or not 0 <= args.p <= 1 or (args.threads is not None and args.threads < 1) or args.repeat < 1:
            parser.error("-k at least 1, -p between 0 and 1, --threads and --repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "write-model":
        from tinyaug.pipelines.bench.run import bert_base_random

        loaded = bert_base_random(args.seed)
        print("wrote", ", ".join(write_model_folder(args.folder, loaded.model, loaded.tokenizer)), "in", args.folder)
    elif args.command == "write-glove":
        from tinyaug.pipelines.io.vectors import load_vectors

        vectors = load_vectors()
        print(f"wrote {write_glove_text(args.path, vectors.words, vectors.vectors, args.glove_rows)} rows to {args.path}")
    else:
        result = run(args)
        print(markdown(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
