"""``--backend onnxruntime``: the same candidates as PyTorch, a graph cache keyed by the model,
one-line refusals, and a core that never needs the optional packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_mlm, make_tokenizer
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.sources import Query
from tinyaug.errors import ModelLoadError
from tinyaug.pipelines.io import onnx_graphs, onnx_runtime
from tinyaug.pipelines.io.models import load_masked_lm
from tinyaug.pipelines.io.onnx_runtime import check_backend, on_onnxruntime

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the movie was great", "a charming story and a funny plot", "he said the actors were quite bad",
         "the cat sat and the dog barked loudly"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mlm")
    tokenizer = make_tokenizer(folder)
    make_mlm(tokenizer, layers=3).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def vectors_file(tmp_path, tiny_vectors) -> Path:
    """The tiny vectors as a GloVe text file."""
    words, vectors = tiny_vectors
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in zip(words, vectors)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def named_cache(model_dir, tmp_path_factory) -> Path:
    """A cache holding ``model_dir``'s fp32 graph as ``load_by_name`` keys it, exported once:
    copy it (``copytree``) to change it."""
    folder = tmp_path_factory.mktemp("named-cache")
    onnx_runtime.load_by_name(str(model_dir), "fp32", cache=folder)
    return folder


def _queries(tokenizer) -> list[Query]:
    queries = []
    for text in TEXTS:
        ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
        queries += [Query(tokenizer.convert_ids_to_tokens(i), ids, p) for p, i in enumerate(ids)]
    return queries


def _candidates(loaded, queries, batch_size=4, context="masked", masks=1):
    source = MaskedLMSource(loaded.model, loaded.tokenizer, batch_size=batch_size, forward=loaded.forward,
                            context=context, masks_per_context=masks)
    return source, source.candidates(queries, 6)


def _words(rows):
    return [[c.word for c in row] for row in rows]


def _words_and_pytorchs(loaded, model_dir):
    """The candidate words of ``loaded`` and of ``model_dir`` loaded afresh in PyTorch, on TEXTS."""
    queries = _queries(loaded.tokenizer)
    return _words(_candidates(loaded, queries)[1]), _words(_candidates(load_masked_lm(str(model_dir), "cpu"), queries)[1])


@pytest.mark.parametrize("context", ["masked", "pair"])
def test_fp32_gives_pytorchs_candidates(model_dir, cache, context):
    torch_mlm = load_masked_lm(str(model_dir), "cpu")
    ort_mlm = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=cache)
    assert ort_mlm.identifier.endswith("fp32]") and "onnxruntime" in ort_mlm.identifier
    queries = _queries(torch_mlm.tokenizer)
    _, want = _candidates(torch_mlm, queries, context=context)
    source, got = _candidates(ort_mlm, queries, context=context)
    assert source.partial_last_layer  # the exported graph is the last-layer-at-the-mask one
    assert _words(got) == _words(want)
    for a, b in zip(got, want):
        assert [c.score for c in a] == pytest.approx([c.score for c in b], rel=1e-4, abs=1e-6)
    _, other_batches = _candidates(ort_mlm, queries, batch_size=1, context=context)
    assert _words(other_batches) == _words(got)  # fp32: the batch size does not change the lists


def test_several_words_masked_per_context_give_pytorchs_candidates(model_dir, cache):
    torch_mlm = load_masked_lm(str(model_dir), "cpu")
    ort_mlm = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=cache)
    queries = _queries(torch_mlm.tokenizer)
    want = _candidates(torch_mlm, queries, masks=2)[1]
    source, got = _candidates(ort_mlm, queries, masks=2)
    assert source.contexts_run < source.predictions_run  # several masked words read per context
    assert _words(got) == _words(want)
    for a, b in zip(got, want):
        assert [c.score for c in a] == pytest.approx([c.score for c in b], rel=1e-4, abs=1e-6)


def test_int8_is_quantized_and_agrees(model_dir, cache):
    import onnx

    fp32 = _candidates(load_masked_lm(str(model_dir), "cpu"), _queries(load_masked_lm(str(model_dir), "cpu").tokenizer))[1]
    int8 = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "int8", cache=cache)
    assert int8.identifier.endswith("[onnxruntime %s int8 per-channel]" % onnx_runtime.require("onnxruntime").__version__)
    path = Path(int8.forward.session._model_path)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ops & {"DynamicQuantizeMatMul", "MatMulInteger", "DynamicQuantizeLinear"}, ops
    got = _candidates(int8, _queries(int8.tokenizer))[1]
    overlap = [len(set(a) & set(b)) / len(b) for a, b in zip(_words(got), _words(fp32)) if b]
    assert sum(overlap) / len(overlap) >= 0.9


def test_the_graph_is_cached_and_rebuilt_when_the_model_changes(model_dir, cache, tmp_path, monkeypatch):
    on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=cache)  # built (or already there)
    entries = set((cache / "onnx").iterdir())

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this model")

    monkeypatch.setattr(onnx_graphs, "export_masked", no_export)
    on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=cache)
    assert set((cache / "onnx").iterdir()) == entries
    monkeypatch.undo()
    changed = tmp_path / "changed"  # the same folder name and config, other weights
    tokenizer = make_tokenizer(changed)
    make_mlm(tokenizer, layers=3, seed=1).save_pretrained(changed)
    tokenizer.save_pretrained(changed)
    loaded = on_onnxruntime(load_masked_lm(str(changed), "cpu"), "fp32", cache=cache)
    assert len(set((cache / "onnx").iterdir()) - entries) == 1
    want = _candidates(load_masked_lm(str(changed), "cpu"), _queries(tokenizer))[1]
    assert _words(_candidates(loaded, _queries(tokenizer))[1]) == _words(want)


def test_a_damaged_cache_entry_is_rebuilt(model_dir, tmp_path):
    loaded = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    entry = Path(loaded.forward.session._model_path).parent
    (entry / onnx_graphs.MODEL_FILE).unlink()  # a folder left without its model
    again = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    assert Path(again.forward.session._model_path).is_file()
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("device, precision, says", [
    ("cpu", "bf16", "for bf16 use --backend torch"),
    ("meta", "fp32", "runs on the CPU"),
])
def test_refusals_are_one_line(device, precision, says):
    with pytest.raises(ModelLoadError, match=says) as caught:
        check_backend("onnxruntime", torch.device(device), precision)
    assert "\n" not in str(caught.value)


def test_a_missing_package_is_refused_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'tinyaug\[onnx\]'"):
        check_backend("onnxruntime", torch.device("cpu"), "fp32")


def test_the_cli_runs_it_and_the_card_names_it(model_dir, vectors_file, tmp_path, glue_dir, monkeypatch):
    from click.testing import CliRunner
    from datasets import load_from_disk

    from tinyaug.pipelines.cli import main

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    common = ["augment", "--task", "sst2", "--data-dir", str(glue_dir), "--limit", "6", "--mlm", str(model_dir),
              "--vectors", str(vectors_file), "-n", "3", "--show", "0"]
    runs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        result = CliRunner().invoke(main, [*common, "--backend", backend, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[backend] = load_from_disk(str(out))
    assert runs["onnxruntime"]["sentence"] == runs["torch"]["sentence"]
    assert "[onnxruntime" in (tmp_path / "onnxruntime" / "README.md").read_text(encoding="utf-8")
    again = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "onnxruntime")])  # torch onto it
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_the_default_path_never_imports_the_optional_packages(tmp_path):
    script = ("import sys; sys.modules['onnxruntime'] = None; sys.modules['onnxscript'] = None\n"
              "from tinyaug.pipelines.cli import main\n"
              "main(['augment', '--task', 'sst2', '--data-dir', 'sample', '--limit', '2', '-n', '2', '--show', '0', "
              f"'--out', {str(tmp_path / 'out')!r}])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_teacher_logits_on_onnxruntime_equal_pytorchs(task, tmp_path, monkeypatch):
    import datasets
    import numpy as np

    from tinyaug.pipelines.distillation import loading, teacher_logits
    from tinyaug.pipelines.experiment import toys
    from tinyaug.pipelines.io.glue import get_task
    from tinyaug.pipelines.io.schema import TEACHER_LOGITS

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    config = toys.tiny_config(layers=2)
    config.id2label = dict(enumerate(get_task(task).label_names))
    config.label2id = {name: i for i, name in config.id2label.items()}
    teacher = toys.save_tiny_model(tmp_path / "teacher", config)
    words = "the movie was great but the plot is a bit slow and long".split()
    texts = [" ".join(words[:3 + i % 9]) for i in range(20)]  # lengths 3 to 11: padded batches
    columns = {"sentence": texts} if task == "sst2" else {"sentence1": texts, "sentence2": texts[::-1]}
    data = tmp_path / "data"
    datasets.Dataset.from_dict({**columns, "label": [i % 2 for i in range(20)], "idx": list(range(20))}).save_to_disk(data)
    results = {backend: teacher_logits(teacher, data, task, out=tmp_path / backend, device="cpu", batch_size=8,
                                       backend=backend) for backend in ("torch", "onnxruntime")}
    logits = {b: np.array(loading.load_task_dataset(r["out"], get_task(task))[TEACHER_LOGITS]) for b, r in results.items()}
    assert logits["torch"].shape == (20, 2)
    assert np.allclose(logits["onnxruntime"], logits["torch"], atol=1e-5)


def test_models_named_alike_never_share_a_graph(model_dir, tmp_path):
    a, b = load_masked_lm(str(model_dir), "cpu"), load_masked_lm(str(model_dir), "cpu")
    with torch.no_grad():
        b.model.cls.predictions.transform.dense.weight.mul_(-1)  # changed in memory, same identifier
    assert a.identifier == b.identifier
    queries = _queries(a.tokenizer)
    want = {name: _words(_candidates(m, queries)[1]) for name, m in (("a", a), ("b", b))}
    assert want["a"] != want["b"]
    ort_a = on_onnxruntime(a, "fp32", cache=tmp_path)
    ort_b = on_onnxruntime(b, "fp32", cache=tmp_path)
    assert len(list((tmp_path / "onnx").iterdir())) == 2
    assert _words(_candidates(ort_a, queries)[1]) == want["a"]
    assert _words(_candidates(ort_b, queries)[1]) == want["b"]


def test_a_model_the_exporter_cannot_trace_is_refused_in_one_line(tmp_path, glue_dir, monkeypatch):
    from click.testing import CliRunner
    from transformers import LongformerConfig, LongformerForMaskedLM

    from tinyaug.pipelines.cli import main

    folder = tmp_path / "longformer"  # its attention pads to a window by a size read from the data
    tokenizer = make_tokenizer(folder)
    LongformerForMaskedLM(LongformerConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=37, attention_window=4,
                                           pad_token_id=0, max_position_embeddings=66)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", str(glue_dir), "--limit", "3",
                                       "-n", "2", "--show", "0", "--mlm", str(folder), "--backend", "onnxruntime",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1, \
        result.output[-3000:]
    assert "LongformerForMaskedLM" in result.output and "--backend torch" in result.output
    assert not list((tmp_path / "cache" / "onnx").iterdir())  # nothing half-built left behind


def test_a_cache_entry_onnxruntime_cannot_load_is_built_again(model_dir, tmp_path):
    loaded = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    entry = Path(loaded.forward.session._model_path).parent
    data = entry / (onnx_graphs.MODEL_FILE + ".data")  # the weights beside the graph, cut short (a power loss)
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    again = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    got, pytorchs = _words_and_pytorchs(again, model_dir)
    assert got == pytorchs


def _write_graph(content: bytes):
    def build(folder: Path) -> None:
        (folder / onnx_graphs.MODEL_FILE).write_bytes(content)
    return build


def test_a_killed_export_leaves_nothing_behind_once_the_cache_is_next_used(tmp_path):
    script = ("import os, signal, sys\nfrom pathlib import Path\nfrom tinyaug.pipelines.io import onnx_graphs\n"
              "def killed(folder):\n"
              "    (folder / 'model.onnx.data').write_bytes(b'x' * 4096)  # weights half written\n"
              "    os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, say, in the middle of an export\n"
              "onnx_graphs.cached('k' * 24, Path(sys.argv[1]), killed)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert list((tmp_path / "onnx").iterdir())  # the killed writer's temporary folder
    path = onnx_graphs.cached("k" * 24, tmp_path, _write_graph(b"graph"))
    assert path.read_bytes() == b"graph"
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["k" * 24]  # the dead writer's folder is gone


def test_two_writers_of_one_entry_keep_one_copy(tmp_path, monkeypatch):
    import os

    replace, entry = os.replace, tmp_path / "onnx" / ("k" * 24)

    def another_writer_finishes_first(source, target, *args, **kwargs):  # just before our rename
        if Path(target) == entry and not entry.exists():
            entry.mkdir()
            (entry / onnx_graphs.MODEL_FILE).write_bytes(b"theirs")
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", another_writer_finishes_first)
    path = onnx_graphs.cached("k" * 24, tmp_path, _write_graph(b"ours"))
    assert path == entry / onnx_graphs.MODEL_FILE and path.read_bytes() == b"theirs"
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["k" * 24]


def test_a_cache_that_cannot_be_written_is_named_in_one_line(model_dir, tmp_path):
    (tmp_path / "file").write_text("")  # a cache folder that cannot be made (a read-only home, say)
    with pytest.raises(ModelLoadError, match="set TINYAUG_CACHE to a writable folder") as caught:
        on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path / "file" / "cache")
    assert "\n" not in str(caught.value)


def test_a_cached_graph_starts_without_pytorchs_model(model_dir, tmp_path, monkeypatch):
    """By name, the second run reads the graph alone: no model module imported, no weights read."""
    from tinyaug.pipelines.io import models

    first = onnx_runtime.load_by_name(str(model_dir), "fp32", cache=tmp_path)  # exports
    assert isinstance(first.model, torch.nn.Module)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although its graph is cached")

    monkeypatch.setattr(models, "load_masked_lm", no_model)
    again = onnx_runtime.load_by_name(str(model_dir), "fp32", cache=tmp_path)
    assert isinstance(again.model, onnx_runtime.ModelDescription)
    assert again.identifier == first.identifier and again.forward.partial_last_layer
    queries = _queries(again.tokenizer)
    monkeypatch.undo()
    want = _candidates(load_masked_lm(str(model_dir), "cpu"), queries)[1]
    source, got = _candidates(again, queries, masks=1)
    assert _words(got) == _words(want) and source.partial_last_layer


def test_a_cached_graph_is_opened_in_a_second_thread_while_the_tokenizer_is_read(model_dir, named_cache, monkeypatch):
    import threading

    threads, open_session = [], onnx_graphs.open_session

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return open_session(*args, **kwargs)

    monkeypatch.setattr(onnx_graphs, "open_session", recording)
    again = onnx_runtime.load_by_name(str(model_dir), "fp32", cache=named_cache)
    assert len(threads) == 1 and threads[0].startswith("tinyaug-onnx-open")
    got, pytorchs = _words_and_pytorchs(again, model_dir)
    assert got == pytorchs


@pytest.mark.parametrize("damage", ["this model's entry cut short", "an entry under the other token-types key"])
def test_by_name_a_cached_graph_that_does_not_open_is_built_again(damage, model_dir, named_cache, tmp_path, caplog):
    shutil.copytree(named_cache, tmp_path, dirs_exist_ok=True)
    first = onnx_runtime.load_by_name(str(model_dir), "fp32", cache=tmp_path)
    entry = Path(first.forward.session._model_path).parent
    if damage.startswith("this"):
        data = entry / (onnx_graphs.MODEL_FILE + ".data")
        with open(data, "r+b") as f:
            f.truncate(data.stat().st_size // 2)
    else:  # only the other key's (garbage) entry is found: it is opened, then not this tokenizer's
        shutil.rmtree(entry)
        identity = f"{first.identifier.rsplit(' [', 1)[0]} | files"
        other = onnx_graphs.entry(onnx_graphs.graph_key(identity, "fp32", False), tmp_path)
        other.mkdir(parents=True)
        (other / onnx_graphs.MODEL_FILE).write_bytes(b"not a graph")
        (other / onnx_graphs.ABOUT_FILE).write_text('{"partial_last_layer": true}', encoding="utf-8")
    again = onnx_runtime.load_by_name(str(model_dir), "fp32", cache=tmp_path)
    assert ("does not load" in caplog.text) == damage.startswith("this")
    assert (entry / onnx_graphs.MODEL_FILE).is_file()
    got, pytorchs = _words_and_pytorchs(again, model_dir)
    assert got == pytorchs


def test_the_command_line_on_a_cached_graph_imports_no_model_module(model_dir, tmp_path):
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('MODEL MODULE' if 'transformers.models.bert.modeling_bert' in sys.modules "
              "else 'NO MODEL MODULE'))\n"
              "from tinyaug.pipelines.cli import main\n"
              f"main(['augment', '--task', 'sst2', '--data-dir', 'sample', '--limit', '2', '-n', '2', '--show', '0', "
              f"'--mlm', {str(model_dir)!r}, '--backend', 'onnxruntime', '--overwrite', '--out', {str(tmp_path / 'out')!r}])\n")
    env = {**__import__("os").environ, "TINYAUG_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
            for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr[-2000:]
    assert "NO MODEL MODULE" not in runs[0].stdout  # the first run exports from the model
    assert "NO MODEL MODULE" in runs[1].stdout


def test_the_api_by_name_starts_from_the_cached_graph(model_dir, vectors_file, tmp_path, monkeypatch):
    """``augment_dataset(mlm=name, backend="onnxruntime")`` loads as the command line does: the
    second call reads the cached graph alone, and gives the same rows."""
    import datasets

    import transformers

    import tinyaug

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    rows = datasets.Dataset.from_dict({"text": TEXTS})
    kwargs = dict(text_columns=["text"], mlm=str(model_dir), vectors=str(vectors_file), backend="onnxruntime")
    first = tinyaug.augment_dataset(rows, **kwargs)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although its graph is cached")

    monkeypatch.setattr(transformers.AutoModelForMaskedLM, "from_pretrained", no_model)
    again = tinyaug.augment_dataset(rows, **kwargs)
    assert again["text"] == first["text"] and len(first) > len(TEXTS)


@pytest.mark.parametrize("backend, device, want", [("onnxruntime", "auto", "cpu"), ("onnxruntime", " AUTO", "cpu"),
                                                    ("torch", "auto", "cuda"), ("torch", "cpu", "cpu")])
def test_the_backends_device_is_resolved_and_checked_once(backend, device, want, monkeypatch):
    """On a machine with a GPU, ``auto`` is the GPU for PyTorch and the CPU for ONNX Runtime's CPU build."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert onnx_runtime.backend_device(backend, device, "fp32").type == want
    with pytest.raises(ModelLoadError, match="--backend torch"):
        onnx_runtime.backend_device("onnxruntime", "auto", "bf16")
    with pytest.raises(ModelLoadError, match="runs on the CPU"):
        onnx_runtime.backend_device("onnxruntime", "cuda", "fp32")


def test_browse_loads_the_masked_lm_a_dataset_was_made_with(model_dir, vectors_file, tmp_path, glue_dir, monkeypatch):
    """``browse --backend onnxruntime``: its masked LM is the one the dataset names (no mismatch note)."""
    from click.testing import CliRunner

    from tinyaug.pipelines.browse.data import DatasetBrowser
    from tinyaug.pipelines.cli import main

    pytest.importorskip("gradio")
    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    models = {"--mlm": str(model_dir), "--vectors": str(vectors_file), "--backend": "onnxruntime", "--precision": "int8"}
    options = [part for pair in models.items() for part in pair]
    out = tmp_path / "aug"
    made = CliRunner().invoke(main, ["augment", "--task", "sst2", "--data-dir", str(glue_dir), "--limit", "3",
                                     "-n", "2", "--show", "0", "--out", str(out), *options])
    assert made.exit_code == 0, made.output
    built = []
    monkeypatch.setattr("tinyaug.pipelines.browse.app.build_app", lambda browser, loader: built.append(loader))
    monkeypatch.setattr("tinyaug.pipelines.browse.app.launch", lambda *args, **kwargs: None)
    monkeypatch.setattr("tinyaug.pipelines.browse.app.check_port", lambda host, port: None)
    result = CliRunner().invoke(main, ["browse", str(out), *options])
    assert result.exit_code == 0, result.output
    mlm, _ = built[0].get()
    assert mlm.backend == "onnxruntime" and mlm.identifier == DatasetBrowser(out).metadata["mlm"]


@pytest.mark.parametrize("kind", ["masked LM", "classifier"])
def test_a_graph_exported_with_a_fixed_shape_is_refused_and_not_cached(kind, model_dir, tmp_path, monkeypatch):
    """The export is checked on a second batch and length: a graph whose sizes the exporter fixed
    (here: the dynamic shapes dropped) is refused in one line, and nothing is left in the cache."""
    from transformers import AutoModelForSequenceClassification

    export = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: export(*args, **{**kwargs, "dynamic_shapes": None}))
    with pytest.raises(ModelLoadError, match="fails on a second batch and length .*invalid dimensions") as caught:
        if kind == "masked LM":
            on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=2)
            onnx_runtime.classifier_on_onnxruntime(model, "tiny", ["input_ids", "attention_mask"], cache=tmp_path)
    assert "\n" not in str(caught.value)
    assert not any((tmp_path / "onnx").glob(f"*/{onnx_graphs.MODEL_FILE}"))


@pytest.mark.parametrize("by, kept", [(1e-5, True), (5e-2, False)])
def test_the_export_check_allows_float_noise_and_refuses_other_logits(by, kept, model_dir, tmp_path, monkeypatch):
    """ONNX Runtime's logits moved by ``by``: float noise (PyTorch and ONNX Runtime differ by ~3e-6)
    passes the check and the graph is kept; a real difference is refused and nothing is cached."""
    opened = onnx_graphs.open_session

    class Off:
        def __init__(self, session):
            self.session = session

        def __getattr__(self, name):
            return getattr(self.session, name)

        def run(self, names, feeds):
            return [out + by for out in self.session.run(names, feeds)]

    monkeypatch.setattr(onnx_graphs, "open_session", lambda path, threads: Off(opened(path, threads)))
    if kept:
        on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    else:
        with pytest.raises(ModelLoadError, match="gives other logits than PyTorch on a second batch and length"):
            on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    assert any((tmp_path / "onnx").glob(f"*/{onnx_graphs.MODEL_FILE}")) == kept


def test_the_api_refuses_it_on_gpu_actors_before_ray_starts(model_dir, vectors_file, tmp_path, monkeypatch):
    import sys

    import datasets

    import tinyaug
    from tinyaug.pipelines.scale.ray_executor import RayExecutor, RaySettings

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "ray", None)  # not started
    with pytest.raises(ModelLoadError, match="leave out --gpus-per-actor"):
        tinyaug.augment_dataset(datasets.Dataset.from_dict({"text": TEXTS}), text_columns=["text"], mlm=str(model_dir),
                                vectors=str(vectors_file), backend="onnxruntime",
                                executor=RayExecutor(RaySettings(gpus_per_actor=1)))


def test_tinyaug_cache_lists_the_graphs_and_clears_the_stale_ones(model_dir, tmp_path, monkeypatch):
    """A graph built here records its key and stays; one from another torch or exporter version,
    or from before entries recorded their key, is stale and goes; --all clears the rest."""
    import json

    from click.testing import CliRunner

    from tinyaug.pipelines.cli import main

    monkeypatch.setenv("TINYAUG_CACHE", str(tmp_path))
    on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)
    root = tmp_path / "onnx"
    (current,) = [p for p in root.iterdir()]
    about = json.loads((current / onnx_graphs.KEY_FILE).read_text())
    assert about["mode"] == "fp32" and about["export"] == onnx_graphs.EXPORT_VERSION
    older = root / ("0" * 24)
    older.mkdir()
    (older / onnx_graphs.MODEL_FILE).write_bytes(b"x" * 1000)
    (older / onnx_graphs.KEY_FILE).write_text(json.dumps({**about, "torch": "1.0.0"}))
    unrecorded = root / ("1" * 24)
    unrecorded.mkdir()
    (unrecorded / onnx_graphs.MODEL_FILE).write_bytes(b"x")
    (root / ".building.tmp-1-x").mkdir()  # a writer's temporary folder: not an entry
    (tmp_path / "vectors").mkdir()
    (tmp_path / "vectors" / "v.npy").write_bytes(b"v")

    listed = CliRunner().invoke(main, ["cache", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert sum("in use" in line and "fp32" in line and str(model_dir) in line for line in lines) == 1
    assert sum(" stale " in line for line in lines[:-1]) == 2 and "3 graphs" in lines[-1] and "2 stale" in lines[-1]

    cleared = CliRunner().invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0 and "removed 2 graphs" in cleared.output and "kept 1" in cleared.output
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [current.name]
    again = on_onnxruntime(load_masked_lm(str(model_dir), "cpu"), "fp32", cache=tmp_path)  # still used, not rebuilt
    assert Path(again.forward.session._model_path).parent == current

    everything = CliRunner().invoke(main, ["cache", "clear", "--all"])
    assert everything.exit_code == 0 and "removed 1 graphs" in everything.output
    assert not any(p for p in root.iterdir() if not p.name.startswith(".")) and (tmp_path / "vectors" / "v.npy").exists()
