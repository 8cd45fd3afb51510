"""The benchmark runs end to end and its naive mode computes the same candidates (no timing asserted)."""

import json

import pytest

from tinyaug.pipelines.bench.run import BenchConfig, format_table, run_bench, to_json

KEYS = {"sentences_per_s", "naive_sentences_per_s", "speedup_vs_naive", "mlm_gflops", "matmul_gflops",
        "mlm_percent_of_peak", "vector_time_share", "peak_rss_mb"}


def test_bench_smoke(tiny_dir, glue_dir):
    config = BenchConfig(sst2_rows=6, mrpc_rows=2, naive_fraction=1.0, variants=2, mlm=str(tiny_dir),
                         data_dir=str(glue_dir), precisions=("fp32", "int8"))
    result = run_bench(config)
    report = json.loads(to_json(result))
    assert KEYS <= set(report)
    assert report["naive_identical_candidates"] is True
    # with the whole slice as the naive subset, equal work is equal sentences
    assert report["naive_subset_cost_per_sentence"] == pytest.approx(1.0)
    assert report["speedup_vs_naive"] == pytest.approx(report["sentences_per_s"] / report["naive_sentences_per_s"])
    assert report["sentences"] == 6 + 2 * 2 and report["examples"] == 8
    assert 0 <= report["precisions"]["int8"]["top15_overlap_with_fp32"] <= 1
    assert "speed-up over naive" in format_table(result)
    assert "fp32 speed-up ceiling" in format_table(result)
    # stage shares cover the wall time once: the helper thread's overlapped splitting is apart
    assert abs(sum(report["time_share"].values()) - 1) < 1e-6
    # (one batch per slice here: the helper's head start over the wait, if any, is a race, so >= 0)
    assert "split_overlapped" not in report["time_share"] and report["split_overlapped_share"] >= 0
    # the naive mode projects every position onto the vocabulary: more FLOPs per sentence
    assert report["naive_flops_per_fast_flop"] > 1
    assert report["fp32_speedup_ceiling"] > 0 and report["naive_mlm_gflops"] > 0


def test_flop_count_by_hand():
    from types import SimpleNamespace

    from tinyaug.pipelines.bench.run import mlm_flops

    config = SimpleNamespace(hidden_size=2, intermediate_size=3, num_hidden_layers=1, vocab_size=5)
    # tokens: 4 d^2 + 2 d f = 16 + 12 = 28 each; attention 2 d sum(L^2) = 4 * 9; head (d^2 + d V) = 14
    assert mlm_flops(config, tokens=3, squared_lengths=9, head_positions=1) == 2 * (3 * 28 + 36 + 14)
    assert mlm_flops(config, tokens=3, squared_lengths=9, head_positions=3) == 2 * (3 * 28 + 36 + 3 * 14)
    # the last layer at the masked position only: K, V at every token (2 d^2 = 8 each), the rest
    # (2 d^2 + 2 d f = 20) once, attention 2 d L = 12; a 2-layer model's first layer in full (84 + 36)
    assert mlm_flops(config, tokens=3, squared_lengths=9, head_positions=1, partial_last_layer=True) == \
        2 * (3 * 8 + 20 + 12 + 14)
    two = SimpleNamespace(hidden_size=2, intermediate_size=3, num_hidden_layers=2, vocab_size=5)
    assert mlm_flops(two, tokens=3, squared_lengths=9, head_positions=1, partial_last_layer=True) == \
        2 * (3 * 28 + 36 + 3 * 8 + 20 + 12 + 14)


def test_naive_mode_runs_like_the_reference(tiny_tokenizer, tiny_model):
    """Batch 1, gradients tracked, logits at every position: and still the fast mode's candidates."""
    from tinyaug.augment.mlm import MaskedLMSource
    from tinyaug.augment.sources import Query
    from tinyaug.pipelines.bench.run import NaiveMLMSource

    ids = tuple(tiny_tokenizer("the movie was great and the cat sat", add_special_tokens=False)["input_ids"])
    queries = [Query("movie", ids, 1), Query("great", ids, 3), Query("cat", ids, 6)]
    seen = []
    hook = tiny_model.register_forward_hook(lambda module, args, out: seen.append(
        (out.logits.shape[0], out.logits.shape[1], out.logits.requires_grad)))
    try:
        naive = NaiveMLMSource(tiny_model, tiny_tokenizer, batch_size=64).candidates(queries, 5)
    finally:
        hook.remove()
    assert seen == [(1, len(ids) + 2, True)] * 3  # one context per forward, every position, autograd on
    fast = MaskedLMSource(tiny_model, tiny_tokenizer).candidates(queries, 5)
    assert [[c.word for c in row] for row in naive] == [[c.word for c in row] for row in fast]


def test_bench_flags_an_emulated_precision_instead_of_running_it(tiny_dir, glue_dir, monkeypatch):
    avx2 = {"model": "AVX2 box (test)", "flags": ["avx2"], "torch_capability": "AVX2", "cores": 2}
    monkeypatch.setattr("tinyaug.pipelines.io.cpu.cpu_info", lambda: avx2)
    monkeypatch.setattr("tinyaug.pipelines.bench.run.cpu_info", lambda: avx2)
    config = BenchConfig(sst2_rows=4, mrpc_rows=1, naive_fraction=1.0, variants=2, mlm=str(tiny_dir),
                         data_dir=str(glue_dir), precisions=("fp32", "bf16"))
    result = run_bench(config)
    assert "would be emulated" in result["precisions"]["bf16"]["skipped"]
    table = format_table(result)
    assert "| bf16: skipped |" in table and "CPU: AVX2 box (test)" in table


def test_kernel_caps_are_read_from_the_environment():
    from tinyaug.pipelines.io.cpu import KERNEL_CAPS, kernel_cap

    assert kernel_cap({}) is None
    assert kernel_cap(dict(KERNEL_CAPS["avx2"])) == "avx2"
    partial = dict(KERNEL_CAPS["avx2"])
    del partial["FBGEMM_ENABLE_INSTRUCTIONS"]  # one library uncapped: not an AVX2 machine's arithmetic
    assert kernel_cap(partial) is None


def test_bench_with_kernels_capped_at_avx2_runs_in_a_capped_process(tiny_dir, glue_dir):
    import subprocess
    import sys

    from tinyaug.pipelines.io.cpu import cpu_info

    if "avx2" not in cpu_info()["flags"]:
        pytest.skip("needs an x86 CPU with AVX2")
    done = subprocess.run([sys.executable, "-m", "tinyaug.pipelines.cli", "bench", "--kernels", "avx2",
                           "--sst2-rows", "4", "--mrpc-rows", "1", "--naive-fraction", "1", "-n", "2",
                           "--mlm", str(tiny_dir), "--data-dir", str(glue_dir), "--precision", "fp32,bf16,int8",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["kernel_cap"] == "avx2" and report["cpu"]["torch_capability"] == "AVX2"
    assert "would be emulated" in report["precisions"]["bf16"]["skipped"]  # capped below bf16 arithmetic
    int8 = report["precisions"]["int8"]
    assert int8["product_gops"] > 0 and int8["speedup_ceiling"] > 0 and int8["product_speedup_over_fp32"] > 0


def test_kernel_cap_is_refused_in_one_line_on_a_cpu_without_it(monkeypatch):
    from click.testing import CliRunner

    from tinyaug.pipelines.cli import main

    arm = {"model": "Neoverse (test)", "flags": ["asimd"], "torch_capability": "DEFAULT", "cores": 2}
    monkeypatch.setattr("tinyaug.pipelines.cli.bench.cpu_info", lambda: arm)
    result = CliRunner().invoke(main, ["bench", "--kernels", "avx2"])
    assert result.exit_code == 1
    assert result.output == ("Error: --kernels avx2 caps an x86 CPU that has AVX2 or more; this one (Neoverse (test)) "
                             "has not: run without --kernels\n")


def test_bench_measures_each_backend_against_pytorch_fp32(tiny_dir, glue_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path))
    config = BenchConfig(sst2_rows=4, mrpc_rows=2, naive_fraction=1.0, variants=2, mlm=str(tiny_dir),
                         data_dir=str(glue_dir), precisions=("fp32", "bf16", "int8"), backends=("torch", "onnxruntime"),
                         masks_per_context=(1, 2))
    modes = run_bench(config)["precisions"]
    assert {"bf16", "int8", "onnxruntime fp32", "onnxruntime bf16", "onnxruntime int8", "fp32, 2 masks per context",
            "onnxruntime int8, 2 masks per context"} <= set(modes) and len(modes) == 11
    assert 0 < modes["fp32, 2 masks per context"]["top15_overlap_with_fp32"] <= 1
    assert "for bf16 use --backend torch" in modes["onnxruntime bf16"]["skipped"]
    fp32 = modes["onnxruntime fp32"]
    assert fp32["identical_lists_with_fp32"] == 1.0 and fp32["top15_overlap_with_fp32"] == 1.0
    assert fp32["speedup_vs_fp32"] > 0 and "product_gops" not in fp32  # PyTorch's product rates only
    assert 0 <= modes["onnxruntime int8"]["top15_overlap_with_fp32"] <= 1


def test_agreement_counts_the_masked_lms_words_only():
    from types import SimpleNamespace

    from tinyaug.augment.sources import Candidate
    from tinyaug.pipelines.bench.modes import identical, overlap
    from tinyaug.pipelines.bench.run import _candidate_words

    def plan(mlm_words):
        mlm = tuple(Candidate(w, 0.1, "mlm", i) for i, w in enumerate(mlm_words))
        glove = (Candidate("film", 0.9, "vectors", 0),)
        return SimpleNamespace(candidates=[(), mlm, glove], routes=[None, "mlm", "vectors"])

    fp32 = _candidate_words([plan(["good", "fine"])], mlm_only=True)
    other = _candidate_words([plan(["good", "bad"])], mlm_only=True)
    assert fp32 == [[None, ("good", "fine"), None]]
    # the stopword and the GloVe word, which no masked-LM mode can change, are not counted as agreeing
    assert overlap(fp32, other) == 0.5 and identical(fp32, other) == 0.0


def test_a_reduced_precision_measured_only_with_several_masks_per_context(tiny_dir, glue_dir):
    config = BenchConfig(sst2_rows=4, mrpc_rows=1, naive_fraction=1.0, variants=2, mlm=str(tiny_dir),
                         data_dir=str(glue_dir), precisions=("fp32", "int8"), masks_per_context=(2,))
    modes = run_bench(config)["precisions"]
    assert set(modes) == {"fp32, 2 masks per context", "int8, 2 masks per context"}
    assert modes["int8, 2 masks per context"]["product_gops"] > 0  # its own entry holds its products' rate
