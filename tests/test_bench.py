"""The benchmark runs end to end and its naive mode computes the same candidates (no timing asserted)."""

import json

from tinyaug.pipelines.bench import BenchConfig, format_table, run_bench, to_json

KEYS = {"sentences_per_s", "naive_sentences_per_s", "speedup_vs_naive", "mlm_gflops", "matmul_gflops",
        "mlm_percent_of_peak", "vector_time_share", "peak_rss_mb"}


def test_bench_smoke(tiny_dir, glue_dir):
    config = BenchConfig(sst2_rows=6, mrpc_rows=2, naive_fraction=0.5, variants=2, mlm=str(tiny_dir),
                         data_dir=str(glue_dir), precisions=("fp32", "int8"))
    result = run_bench(config)
    report = json.loads(to_json(result))
    assert KEYS <= set(report)
    assert report["naive_identical_candidates"] is True
    assert report["sentences"] == 6 + 2 * 2 and report["examples"] == 8
    assert 0 <= report["precisions"]["int8"]["top15_overlap_with_fp32"] <= 1
    assert "speed-up over naive" in format_table(result)
