"""benchmarks/reference_side_by_side.py without the reference: its options, the rows both tools
read, the summary's arithmetic, and the model folder both load (the same weights, under the
reference's module names). With $TINYBERT_REFERENCE (the TinyBERT folder of a checkout of
huawei-noah/Pretrained-Language-Model), also the reference's own loader and tokenizer on it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from helpers import tiny_mlm
from tinyaug.pipelines.io.models import load_masked_lm

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_side_by_side.py"
_spec = importlib.util.spec_from_file_location("reference_side_by_side", SCRIPT)
sbs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sbs)

RUN = ["run", "--reference", "ref/TinyBERT", "--model", "m", "--glove", "g.txt"]
SENTENCE = "the movie was very good and the plot quite dull ."


def test_options_reach_both_commands():
    args = sbs.parse_args(RUN + ["--rows", "3,6", "-k", "7", "--tinyaug-arg=--precision bf16",
                                 "--tinyaug-arg=--backend=x"])
    assert args.rows == (3, 6)
    assert args.tinyaug_args == ["--precision", "bf16", "--backend=x"]
    tinyaug = sbs.tinyaug_command(args, Path("glue"), Path("out"))
    assert tinyaug[1:3] == ["-q", "augment"] and tinyaug[-3:] == ["--precision", "bf16", "--backend=x"]
    assert " ".join(tinyaug).count("-n 20 -k 7 -p 0.4") == 1
    reference = sbs.reference_command(args, Path("glue"))
    assert reference[3] == str(Path("ref/TinyBERT/data_augmentation.py").resolve())  # the tools run elsewhere
    assert " ".join(reference[4:]).endswith("--task_name SST-2 --N 20 --M 7 --p 0.4")


@pytest.mark.parametrize("extra", [["--rows", "6,3"], ["--rows", "5"], ["--rows", "0,4"], ["-n", "10"],
                                   ["--tinyaug-arg=--out elsewhere"], ["--tinyaug-arg=-k 3"], ["--threads", "0"]])
def test_options_that_would_compare_other_things_are_refused(extra, capsys):
    with pytest.raises(SystemExit) as stopped:
        sbs.parse_args(RUN + extra)
    assert stopped.value.code == 2 and "error:" in capsys.readouterr().err


def test_both_tools_get_the_first_rows_byte_for_byte(tmp_path):
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    lines = [b"sentence\tlabel\n", b"a \"quoted\" one \t1\n", b"two\t0\n", b"three\t1\n"]
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_bytes(b"".join(lines))
    out = sbs.write_rows(tmp_path / "glue", 2, tmp_path / "rows")
    assert (out / "SST-2" / "train.tsv").read_bytes() == b"".join(lines[:3])
    with pytest.raises(SystemExit, match="fewer than --rows 4"):
        sbs.write_rows(tmp_path / "glue", 4, tmp_path / "more")


def test_steady_state_and_ratio_worked_by_hand():
    runs = {"reference": {20: {"wall_s": 10.0, "cpu_s": 9.0}, 200: {"wall_s": 100.0, "cpu_s": 90.0}},
            "tinyaug": {20: {"wall_s": 5.0, "cpu_s": 4.5}, 200: {"wall_s": 14.0, "cpu_s": 9.0}}}
    summary = sbs.summarise(runs, (20, 200))
    assert summary["steady"]["reference"] == {"steady_wall_s_per_row": 0.5, "steady_cpu_s_per_row": 0.45}
    assert summary["steady"]["tinyaug"] == pytest.approx({"steady_wall_s_per_row": 0.05, "steady_cpu_s_per_row": 0.025})
    ratio = summary["ratio_tinyaug_over_reference"]
    assert ratio == pytest.approx({"whole_wall_s_20_rows": 0.5, "whole_wall_s_200_rows": 0.14,
                                   "steady_wall_s_per_row": 0.1, "steady_cpu_s_per_row": 0.025 / 0.45})


def test_modes_are_timed_against_one_reference_and_reported_as_speed_ups():
    args = sbs.parse_args(RUN + ["--tinyaug-arg=--batch-size 32", "--mode", "fp32=",
                                 "--mode", "ort int8=--backend onnxruntime --precision int8"])
    assert args.modes == {"tinyaug fp32": [], "tinyaug ort int8": ["--backend", "onnxruntime", "--precision", "int8"]}
    command = sbs.tinyaug_command(args, Path("glue"), Path("out"), args.modes["tinyaug ort int8"])
    assert command[-6:] == ["--batch-size", "32", "--backend", "onnxruntime", "--precision", "int8"]
    for bad in (["--mode", "=--precision bf16"], ["--mode", "a=", "--mode", "a=--precision bf16"],
                ["--mode", "x=--limit 5"]):
        with pytest.raises(SystemExit):
            sbs.parse_args(RUN + bad)
    runs = {"reference": {20: {"wall_s": 10.0, "cpu_s": 9.0}, 200: {"wall_s": 100.0, "cpu_s": 90.0}},
            "tinyaug fp32": {20: {"wall_s": 5.0, "cpu_s": 4.5}, 200: {"wall_s": 14.0, "cpu_s": 9.0}},
            "tinyaug ort int8": {20: {"wall_s": 4.0, "cpu_s": 4.0}, 200: {"wall_s": 8.5, "cpu_s": 6.0}}}
    summary = sbs.summarise(runs, (20, 200))
    assert "ratio_tinyaug_over_reference" not in summary
    assert summary["ratio_over_reference"]["tinyaug ort int8"]["steady_wall_s_per_row"] == pytest.approx(0.05)
    result = {"settings": {"rows": [20, 200], "data": "d", "N": 20, "K": 15, "p": 0.4, "model": "m", "glove": "g",
                           "model_shape": {"num_hidden_layers": 12, "hidden_size": 768, "vocab_size": 30522}},
              "reference": {"script": "s", "sha256": "0" * 64, "python": "3", "torch": "2", "numpy": "2", "shims": []},
              "tinyaug": {"version": "0", "extra_args": [], "python": "3", "torch": "2", "vectors_cache_s": 1.0,
                          "modes": args.modes},
              "date": "today", "machine": "here", "threads": 1,
              "runs": {tool: {str(n): {**f, "rows_out": 1, "peak_rss_mb": 1.0} for n, f in by.items()}
                       for tool, by in runs.items()}, **summary}
    table = sbs.markdown(result)
    assert "| tinyaug fp32 | 5.00 | 14.00 | 0.0500 | 0.0250 | 10.0x |" in table
    assert "| tinyaug ort int8 | 4.00 | 8.50 | 0.0250 | 0.0111 | 20.0x |" in table


def test_repeated_runs_interleave_and_keep_the_shortest(tmp_path, monkeypatch):
    """--repeat 3: after one untimed warm-up run per mode, every tool runs once per repetition
    (reference first), each tinyaug run into a fresh folder (a finished one would make it a
    no-op); the shortest wall-clock is reported, every run's in ``walls``."""
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_text("sentence\tlabel\n" + "a b\t1\n" * 6)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"num_hidden_layers": 2, "hidden_size": 8, "vocab_size": 9}')
    args = sbs.parse_args(["run", "--reference", str(tmp_path), "--model", str(tmp_path / "m"), "--glove",
                           str(tmp_path / "g.txt"), "--data-dir", str(tmp_path / "glue"), "--rows", "2,4",
                           "--repeat", "3"])
    order, walls = [], iter([0.5, 9.0, 3.0, 8.0, 2.5, 7.0, 3.5, 6.0, 2.0, 8.5, 4.0, 9.5, 1.5])

    def timed(command, env, cwd, log):
        if "SIDE_BY_SIDE_REPORT" in env:  # the reference, whose shim writes its versions there
            Path(env["SIDE_BY_SIDE_REPORT"]).write_text('{"python": "3", "torch": "2", "numpy": "2", "shims": []}')
            order.append("reference")
        else:
            out = Path(command[command.index("--out") + 1])
            assert not out.exists()  # removed before each run
            out.mkdir()
            order.append("tinyaug")
        return {"wall_s": next(walls), "cpu_s": 1.0, "peak_rss_mb": 1.0}

    for name, value in {"check_inputs": lambda args: None, "timed": timed, "read_through": lambda *paths: None,
                        "rows_out": lambda tool, glue, out: 5}.items():
        monkeypatch.setattr(sbs, name, value)
    monkeypatch.setattr("tinyaug.pipelines.io.vectors.load_vectors", lambda spec: None)
    (tmp_path / "data_augmentation.py").write_text("")
    result = sbs.run(args)
    assert order == ["tinyaug"] + ["reference", "tinyaug"] * 6  # the warm-up, then 3 x 2 row counts
    assert result["repeat"] == 3
    assert result["runs"]["reference"]["2"]["wall_s"] == 7.0 and result["runs"]["reference"]["2"]["walls"] == [9.0, 7.0, 8.5]
    assert result["runs"]["tinyaug"]["4"]["wall_s"] == 1.5 and result["runs"]["tinyaug"]["4"]["walls"] == [2.5, 2.0, 1.5]
    assert "the shortest of 3 interleaved runs" in sbs.markdown(result)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny masked LM written by write_model_folder; returns (folder, the model written)."""
    root = tmp_path_factory.mktemp("side-by-side")
    loaded = tiny_mlm(root / "tokenizer")
    names = sbs.write_model_folder(root / "model", loaded.model, loaded.tokenizer)
    assert {"config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt"} <= set(names)
    return root / "model", loaded


def _logits(model, tokenizer, *, reference: bool = False):
    """Masked-LM scores for SENTENCE as segment A: (1, tokens, vocabulary)."""
    batch = tokenizer([SENTENCE], return_tensors="pt")
    with torch.no_grad():
        if reference:  # its forward, called as data_augmentation.py calls it
            return model(batch["input_ids"], batch["token_type_ids"])
        return model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"]).logits


def test_the_model_folder_holds_one_model_in_both_formats(model_folder):
    folder, loaded = model_folder
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab == [piece for piece, _ in sorted(loaded.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)  # as the reference loads it, minus pickles
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
                 "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias"):
        assert torch.equal(state[name], loaded.model.state_dict()[name])
    again = load_masked_lm(str(folder), "cpu")  # tinyaug's loader reads model.safetensors
    assert torch.equal(_logits(again.model, again.tokenizer), _logits(loaded.model, loaded.tokenizer))
    with pytest.raises(SystemExit, match="not empty"):
        sbs.write_model_folder(folder, loaded.model, loaded.tokenizer)


@pytest.mark.skipif(not os.environ.get("TINYBERT_REFERENCE"), reason="set TINYBERT_REFERENCE to the TinyBERT folder")
def test_the_reference_loads_the_same_model(model_folder):
    folder, loaded = model_folder
    sys.path.insert(0, os.environ["TINYBERT_REFERENCE"])
    try:
        from transformer import BertForMaskedLM, BertTokenizer

        reference = BertForMaskedLM.from_pretrained(str(folder)).eval()
        tokens = BertTokenizer.from_pretrained(str(folder)).tokenize(SENTENCE)
    finally:
        sys.path.remove(os.environ["TINYBERT_REFERENCE"])
        for name in [n for n in sys.modules if n == "transformer" or n.startswith("transformer.")]:
            del sys.modules[name]
    assert tokens == loaded.tokenizer.tokenize(SENTENCE)
    torch.testing.assert_close(_logits(reference, loaded.tokenizer, reference=True), _logits(loaded.model, loaded.tokenizer))
