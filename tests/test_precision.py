"""Reduced-precision masked LMs: what they change, what they refuse, and how resume keys them."""

import copy
import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from helpers import StopAfter
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.sources import Query
from tinyaug.errors import ModelLoadError, TinyaugError
from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table, load_augmented, read_metadata
from tinyaug.pipelines.cli import main
from tinyaug.pipelines.io.tables import load_input
from tinyaug.pipelines.io.models import LoadedMLM, at_precision, int8_engine
from tinyaug.pipelines.io.vectors import LoadedVectors

SENTENCES = ["the movie was great", "the cat sat and the dog barked loudly", "he said the plot was boring",
             "the house and the car", "the road home was nice", "a charming surprise , quite funny"]


@pytest.fixture
def fresh(tiny_model, tiny_tokenizer):
    """A copy of the tiny masked LM (``at_precision`` changes the model it is given)."""
    return LoadedMLM(copy.deepcopy(tiny_model), tiny_tokenizer, "tiny-mlm")


def queries(tokenizer):
    out = []
    for sentence in SENTENCES:
        ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
        out += [Query(tokenizer.convert_ids_to_tokens(i), tuple(ids), p) for p, i in enumerate(ids)]
    return out


def candidate_words(loaded, batch_size=64):
    source = MaskedLMSource(loaded.model, loaded.tokenizer, batch_size=batch_size)
    return [[c.word for c in found] for found in source.candidates(queries(loaded.tokenizer), 5)]


def test_fp32_is_the_model_as_loaded(fresh):
    assert at_precision(fresh, "fp32") is fresh


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_changes_the_arithmetic_not_the_candidates_much(fresh, tiny_model, tiny_tokenizer,
                                                                         precision):
    engine_before = torch.backends.quantized.engine
    low = at_precision(fresh, precision)
    label = precision if precision == "bf16" else f"int8 {int8_engine()} per-channel"
    assert low.identifier == f"tiny-mlm [{label}]" and low.precision == precision
    assert torch.backends.quantized.engine == engine_before  # the int8 engine is not left set for others
    if precision == "bf16":
        assert {p.dtype for p in low.model.parameters()} == {torch.bfloat16}
    else:
        quantized = [m for m in low.model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
        assert quantized and not any(type(m) is torch.nn.Linear for m in low.model.modules())
        scales = quantized[0].weight().q_per_channel_scales()  # one scale per output row
        assert scales.shape == (quantized[0].out_features,) and len(set(scales.tolist())) > 1
    exact = candidate_words(LoadedMLM(tiny_model, tiny_tokenizer, "tiny-mlm"))
    found = candidate_words(low)
    overlap = [len(set(a) & set(b)) / len(a) for a, b in zip(exact, found) if a]
    assert len(overlap) == len(exact) and sum(overlap) / len(overlap) > 0.6, overlap


def test_precisions_that_this_device_cannot_run_are_refused_with_the_fix(fresh):
    with pytest.raises(ModelLoadError, match="fp16 needs a GPU.*use bf16 or int8"):
        at_precision(fresh, "fp16")
    with pytest.raises(ModelLoadError, match="choose one of fp32, bf16, fp16, int8"):
        at_precision(fresh, "fp8")
    elsewhere = dataclasses.replace(fresh, model=copy.deepcopy(fresh.model).to("meta"))  # any non-CPU device
    with pytest.raises(ModelLoadError, match="int8 runs on the CPU only.*pass --device cpu"):
        at_precision(elsewhere, "int8")
    with pytest.raises(ModelLoadError, match="already in bf16; start from the fp32 model"):
        at_precision(at_precision(fresh, "bf16"), "int8")


def test_reduced_precision_resumes_only_with_the_same_batching(fresh, tiny_vectors, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": s, "label": i % 2}) + "\n" for i, s in enumerate(SENTENCES)))
    table = load_input(input_path=path, text_columns=("text",), label_column="label")
    low, vectors = at_precision(fresh, "bf16"), LoadedVectors(*tiny_vectors, "tiny-vectors", "test")
    recipe = Recipe(variants_per_example=4)
    with pytest.raises(KeyboardInterrupt):
        augment_table(table, tmp_path / "o", recipe, low, vectors, BuildOptions(shard_size=3),
                      executor=StopAfter(1))
    with pytest.raises(TinyaugError, match="other arguments.*batch_size"):
        augment_table(table, tmp_path / "o", recipe, low, vectors, BuildOptions(shard_size=3, batch_size=8))
    done = augment_table(table, tmp_path / "o", recipe, low, vectors, BuildOptions(shard_size=3))
    assert done.shards_resumed == 1
    assert read_metadata(load_augmented(tmp_path / "o"))["run_key"]["batch_size"] == 64


def test_fp32_resume_key_leaves_batching_out(fresh, tiny_vectors, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": s, "label": 0}) + "\n" for s in SENTENCES))
    table = load_input(input_path=path, text_columns=("text",), label_column="label")
    vectors = LoadedVectors(*tiny_vectors, "tiny-vectors", "test")
    augment_table(table, tmp_path / "o", Recipe(variants_per_example=3), fresh, vectors, BuildOptions(batch_size=2))
    assert "batch_size" not in read_metadata(load_augmented(tmp_path / "o"))["run_key"]
    again = augment_table(table, tmp_path / "o", Recipe(variants_per_example=3), fresh, vectors,
                          BuildOptions(batch_size=64))
    assert again.already_complete


def test_augment_command_takes_a_precision(tiny_dir, glue_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "o"
    common = ["augment", "--task", "mrpc", "--data-dir", str(glue_dir), "--limit", "3", "--mlm", str(tiny_dir),
              "-n", "2", "--device", "cpu", "--show", "0", "--out", str(out)]
    result = runner.invoke(main, common + ["--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert read_metadata(load_augmented(out))["mlm"].endswith("[bf16]")
    refused = runner.invoke(main, common + ["--precision", "fp16", "--overwrite"])
    assert refused.exit_code == 1 and "Error: --precision fp16 needs a GPU" in refused.output
    assert "Traceback" not in refused.output


AVX2_ONLY = {"model": "AMD EPYC (test)", "flags": ["avx2", "fma"], "torch_capability": "AVX2", "cores": 2}
AMX = {"model": "Xeon (test)", "flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16"], "torch_capability": "AVX512",
       "cores": 2}


def test_bf16_that_would_be_emulated_is_refused_in_one_line_pointing_to_int8(monkeypatch, tmp_path):
    from tinyaug.pipelines.io.models import EmulatedPrecision, check_precision

    monkeypatch.setattr("tinyaug.pipelines.io.cpu.cpu_info", lambda: AVX2_ONLY)
    with pytest.raises(EmulatedPrecision, match=r"AMD EPYC \(test\)\) has no bf16 arithmetic .*use --precision int8"):
        check_precision("bf16", torch.device("cpu"))
    check_precision("int8", torch.device("cpu"))
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--limit", "2", "--precision", "bf16",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "would be emulated" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr("tinyaug.pipelines.io.cpu.cpu_info", lambda: AMX)
    check_precision("bf16", torch.device("cpu"))


def test_cpu_info_names_the_model_and_the_flags_that_matter():
    from tinyaug.pipelines.io.cpu import RELEVANT_FLAGS, cpu_info, describe, native_bf16

    info = cpu_info()
    assert info["model"] and set(info["flags"]) <= set(RELEVANT_FLAGS) and info["cores"] >= 1
    assert info["model"] in describe(info)
    assert native_bf16(AMX) and not native_bf16(AVX2_ONLY)


def test_int8_engine_is_onednn_only_where_amx_is_present_and_allowed(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert int8_engine() == "onednn"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN capped below AMX: its int8 loses to fbgemm
    assert int8_engine() == torch.backends.quantized.engine
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert int8_engine() == "onednn"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert int8_engine() == torch.backends.quantized.engine
