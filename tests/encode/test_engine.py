"""The inference backends (semspace.encode.engine): every backend × every pooling against PyTorch fp32, the export
cache (reuse, corrupt folder, manifest header), the deterministic `auto` (semspace.encode.auto) and the CPU features it
reads (semspace.encode.cpu), bf16 refused where it would be emulated, and the cross-encoder on ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semspace.encode import Encoder, auto
from semspace.encode import engine as eng
from semspace.encode.cpu import CPUFeatures, parse_cpuinfo
from semspace.encode.pooling import HF_POOLINGS
from semspace.errors import InvalidParameterError, ModelLoadError
from semspace.interact.cross_encoder import CrossEncoder

pytest.importorskip("onnxruntime")

TEXTS = [
    "a man is playing a guitar",
    "a dog",
    "the cat eats food in the park",
    "a plane is taking off",
    "a small woman is running in the big park with a dog and a cat",
]
# Minimum cosine to fp32 PyTorch per backend. fp32 ONNX is the same arithmetic up to fusion order; int8 weights and
# activations on a random 2-layer, hidden-32 model are the hardest case for quantization (no outlier structure to
# average out), so its bound is looser — on all-MiniLM-L6-v2 the export check measures ≥ 0.96 at worst.
MIN_COSINE = {"torch-bf16": 0.99, "onnx": 0.9999, "onnx-int8": 0.9}


AVX2 = CPUFeatures("test AVX2 CPU", ("avx2", "fma"), "test")
AVX512_BF16 = CPUFeatures("test AVX-512 CPU", ("avx2", "avx512_bf16", "avx512_vnni", "avx512f"), "test")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "semspace-cache"
    monkeypatch.setenv("SEMSPACE_CACHE", str(folder))
    monkeypatch.setenv(eng.FORCE_BF16_ENV, "1")  # bf16 numerics are tested on any CPU (emulated where no bf16 units)
    return folder / "onnx"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("backend", ["torch-bf16", "onnx", "onnx-int8"])
def test_every_backend_every_pooling_matches_torch(tiny_bert_dir, backend):
    ref = Encoder(tiny_bert_dir).encode_poolings(TEXTS, HF_POOLINGS)
    enc = Encoder(tiny_bert_dir, backend=backend)
    assert enc.backend == backend and f"backend={backend}" in enc.cache_key() and backend in repr(enc)
    got = enc.encode_poolings(TEXTS, HF_POOLINGS)
    for pooling in HF_POOLINGS:
        assert got[pooling].dtype == np.float32 and got[pooling].shape == ref[pooling].shape
        assert cosines(got[pooling], ref[pooling]).min() >= MIN_COSINE[backend], (backend, pooling)
    # one text alone = the same text in a padded batch (no padding leaks into the pooled vector)
    single = enc.encode([TEXTS[1]])
    np.testing.assert_allclose(single[0], enc.encode(TEXTS)[1], atol=2e-2 if backend == "onnx-int8" else 1e-4)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_graphs_run_a_few_texts_packed_with_the_padded_vectors(tiny_bert_dir, monkeypatch, backend):
    """The exported graph is rewritten to take packed rows (a 3-D mask, position ids): a few texts run in one row with
    every pooling's padded vectors — to float round-off in fp32; in int8, where each call quantizes its activations
    with its own range, to the cosine the packing check asks (0.99). int8 can pack but by default does not (no
    gain measured: encoder._PACK_TOKENS); the test turns it on as `probe_service.py packing` does."""
    from semspace.encode import encoder as encoder_module

    enc = Encoder(tiny_bert_dir, backend=backend)
    assert enc._adapter.engine_manifest["packed_rows"] and enc._adapter._runner.graph_packs
    assert enc._adapter.packs()
    calls = []
    packed = enc._adapter.forward_packed
    monkeypatch.setattr(enc._adapter, "forward_packed", lambda e, p: calls.append(len(e)) or packed(e, p))
    enc.encode_poolings(TEXTS, HF_POOLINGS)
    assert calls == ([len(TEXTS)] if backend in encoder_module._PACK_TOKENS else [])  # int8: padded by default
    monkeypatch.setitem(encoder_module._PACK_TOKENS, backend, 512)
    got = enc.encode_poolings(TEXTS, HF_POOLINGS)
    assert calls[-1:] == [len(TEXTS)]
    monkeypatch.setattr(encoder_module, "_PACKED_CHUNK", 0)  # padded batches
    padded = enc.encode_poolings(TEXTS, HF_POOLINGS)
    for pooling in HF_POOLINGS:
        if backend == "onnx":
            np.testing.assert_allclose(got[pooling], padded[pooling], atol=1e-5)
        else:
            assert cosines(got[pooling], padded[pooling]).min() >= eng.WARN_BELOW["onnx-int8"], pooling
            # this random model's attention is nearly uniform: texts that saw each other's tokens (a mask ignored)
            # are still ≥ 0.9999 cosine to the padded vectors, but ~1e-2 off; packed int8 is ≤ 4e-4 off
            np.testing.assert_allclose(got[pooling], padded[pooling], atol=3e-3, err_msg=str(pooling))


@pytest.mark.parametrize("pooling", ["cls", "last-avg"])
def test_onnx_reads_a_left_padded_batch_as_torch_does(tiny_bert_dir, tmp_path, monkeypatch, pooling):
    """The fused attention used to read a count of tokens per row (right padding presumed): a tokenizer that pads
    on the left got vectors 0.027 from PyTorch's (cls; this test run on 4a04e90), only warned. It reads the mask
    itself now."""
    import shutil

    from semspace.encode import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "_PACKED_CHUNK", 0)  # padded batches, not packed rows
    folder = tmp_path / "left"
    shutil.copytree(tiny_bert_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"padding_side": "left"}))
    want = Encoder(str(folder), pooling=pooling).encode(TEXTS)
    for backend in ("onnx", "onnx-int8"):
        got = Encoder(str(folder), pooling=pooling, backend=backend).encode(TEXTS)
        if backend == "onnx":
            np.testing.assert_allclose(got, want, atol=1e-5)
        else:
            assert cosines(got, want).min() >= MIN_COSINE[backend]


@pytest.mark.parametrize("quantize", [False, True])
def test_the_rewrite_for_packed_rows_keeps_padded_outputs_bit_for_bit(tiny_bert_dir, tmp_path, quantize):
    import shutil

    adapter = Encoder(tiny_bert_dir)._adapter
    name, _ = eng._build_graph(adapter.model, "encoder", quantize, adapter._batch(TEXTS[:2]), tmp_path)
    shutil.copy(tmp_path / name, tmp_path / "rewritten.onnx")
    assert eng._accept_packed_rows(tmp_path / "rewritten.onnx")
    batch = {k: v.numpy() for k, v in adapter._batch(TEXTS).items()}
    before = eng.make_session(tmp_path / name).run(None, batch)
    after = eng.make_session(tmp_path / "rewritten.onnx").run(
        None, batch | {"position_ids": np.arange(batch["input_ids"].shape[1])[None]}
    )
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_one_layer_graph_is_not_rewritten_for_packed_rows(tmp_path, monkeypatch):
    """A one-layer model's graph outputs its embeddings (its `hidden_penult`) through the unfused embedding nodes, which
    number a row's positions 0, 1, … themselves: packed, a row longer than the model's positions failed in ONNX Runtime
    (3 texts of 30 tokens, 64 positions)."""
    from support import WORDS, save_tiny_bert

    monkeypatch.setenv("SEMSPACE_CACHE", str(tmp_path / "cache"))  # the cache test counts the shared cache's folders
    folder = save_tiny_bert(tmp_path / "one-layer", num_hidden_layers=1)
    texts = [" ".join((WORDS * 5)[i : i + 28]) for i in range(3)]  # 30 tokens each
    want = Encoder(str(folder), max_length=32).encode(texts)
    enc = Encoder(str(folder), backend="onnx", max_length=32)
    np.testing.assert_allclose(enc.encode(texts), want, atol=1e-5)
    assert not enc._adapter.engine_manifest["packed_rows"]


def test_a_tokenizer_input_the_model_ignores_is_not_fed_to_its_graph(tiny_bert_dir, tmp_path, monkeypatch):
    """A DistilBERT (no token types) behind a BERT tokenizer (which gives them): the export drops the unused input;
    the export check fed the graph its own inputs and passed, then every batch failed ("Invalid input name")."""
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertModel

    monkeypatch.setenv("SEMSPACE_CACHE", str(tmp_path / "cache"))  # the cache test counts the shared cache's folders
    folder = tmp_path / "distil"
    tokenizer = BertTokenizerFast.from_pretrained(tiny_bert_dir)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    want = Encoder(str(folder)).encode(TEXTS)
    np.testing.assert_allclose(Encoder(str(folder), backend="onnx").encode(TEXTS), want, atol=1e-5)


def test_a_graph_not_fused_as_packing_needs_is_left_as_it_is(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["last_hidden_state"])],
        "plain",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.INT64, ["batch", "sequence"])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(path))
    before = path.read_bytes()
    assert not eng._accept_packed_rows(path) and path.read_bytes() == before


def test_cache_is_reused_and_manifest_has_the_header(tiny_bert_dir, cache, monkeypatch):
    Encoder(tiny_bert_dir, backend="onnx")
    folders = [p for p in cache.iterdir() if p.name.startswith("onnx-") and not p.name.startswith("onnx-int8")]
    assert len(folders) == 1 and not list(cache.glob(".onnx-*"))  # no temp folder left behind
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["format"] == eng.MANIFEST_FORMAT and "semspace_version" in manifest and "format_version" in manifest
    assert manifest["options"]["outputs"] == list(eng.ENCODER_OUTPUTS) and manifest["options"]["opset"] == eng.OPSET
    assert manifest["check"]["min_cosine"] >= 0.999 and set(manifest["check"]["per_pooling"]) >= {"cls", "mean"}

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(eng, "_export", no_export)
    again = Encoder(tiny_bert_dir, backend="onnx")  # second construction: the cached graph
    assert again.encode(TEXTS).shape == (5, 32)


def test_graphs_leave_out_the_fusions_slower_on_cpu(tiny_bert_dir, cache):
    import onnx

    for backend, attention in (("onnx", "Attention"), ("onnx-int8", "QAttention")):
        enc = Encoder(tiny_bert_dir, backend=backend)
        manifest, folder = enc._adapter.engine_manifest, enc._adapter.engine_manifest_path.parent
        ops = {node.op_type for node in onnx.load(str(folder / manifest["graph"])).graph.node}
        assert attention in ops and not ops & {"SkipLayerNormalization", "BiasGelu"}, (backend, ops)
        assert "SkipLayerNormalization" not in manifest["fused_operators"]
        assert str(sorted(eng.UNFUSED)) in manifest["options"]["optimizer"]  # part of the cache key


def test_smoothquant_is_exact_in_float_and_the_int8_export_uses_it(tiny_bert_dir, cache, tmp_path):
    import onnx

    from semspace.encode.smoothquant import smooth_graph

    enc = Encoder(tiny_bert_dir, backend="onnx")
    source = enc._adapter.engine_manifest_path.parent / enc._adapter.engine_manifest["graph"]
    batches = [{k: v.numpy() for k, v in enc._adapter._batch(TEXTS).items()}]
    batches[0]["position_ids"] = np.arange(batches[0]["input_ids"].shape[1])[None]  # the cached graph packs rows
    smoothed = smooth_graph(source, tmp_path / "smooth.onnx", batches)
    ops = [node.op_type for node in onnx.load(str(tmp_path / "smooth.onnx")).graph.node]
    # every MatMul/Attention with a constant weight (2 layers: attention, its output, FFN in and out) gets a Mul
    assert smoothed == ops.count("Mul") - [n.op_type for n in onnx.load(str(source)).graph.node].count("Mul") == 8
    inputs = dict(batches[0])
    before = eng.make_session(source).run(None, inputs)
    after = eng.make_session(tmp_path / "smooth.onnx").run(None, inputs)
    for a, b in zip(before, after, strict=True):  # X·W = (X/s)·(s·W): the same outputs, to float rounding
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)

    manifest = Encoder(tiny_bert_dir, backend="onnx-int8")._adapter.engine_manifest
    assert manifest["options"]["quantization"].startswith("dynamic-int8-per-channel+smoothquant-")
    assert manifest["fused_operators"]["SmoothQuant"] == 8
    check = manifest["check"]
    assert check["languages"]["en"]["n_pairs"] == 400 and check["languages"]["zh"]["n_pairs"] == 120
    # the gate is the largest loss of the languages the model reads (all of them when it reads none, as this one)
    held = check["task_loss_languages"]
    assert held and check["task_loss"] == max(check["languages"][lang]["task_loss"] for lang in held) >= 0


def test_pair_loss_reads_the_attenuation_of_the_given_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8))
    pairs = [(i, i + 1) for i in range(39)]
    assert eng.pair_similarity_loss(x, x, pairs) == pytest.approx(0.0, abs=1e-9)
    noisy = x + 0.2 * rng.normal(size=x.shape)
    g, c = (eng.pair_cosines(v, pairs) for v in (noisy, x))
    assert eng.pair_similarity_loss(noisy, x, pairs) == pytest.approx(100 * (1 - np.corrcoef(g, c)[0, 1]))


def test_corrupt_cache_folder_is_rebuilt(tiny_bert_dir, cache, caplog):
    Encoder(tiny_bert_dir, backend="onnx")
    folder = next(p for p in cache.iterdir() if p.name.startswith("onnx-") and not p.name.startswith("onnx-int8"))
    (folder / "manifest.json").write_text("{not json")
    enc = Encoder(tiny_bert_dir, backend="onnx")
    assert "Rebuilding" in caplog.text
    assert json.loads((folder / "manifest.json").read_text())["format"] == eng.MANIFEST_FORMAT
    (folder / "model.opt.onnx").unlink()  # the graph gone, the manifest intact
    Encoder(tiny_bert_dir, backend="onnx")
    assert (folder / "model.opt.onnx").is_file()
    assert enc.encode(TEXTS).shape == (5, 32)


def test_auto_is_decided_once_with_its_reasons_and_cached(tiny_bert_dir, cache, monkeypatch):
    enc = Encoder(tiny_bert_dir, backend="auto")
    decision = enc.info["engine"]["auto"]
    assert enc.backend == decision["choice"] and decision["rule"] == auto.RULE
    assert decision["cpu"]["flags"] == list(auto.cpu_features().flags) and decision["versions"]["torch"]
    chosen = [row for row in decision["considered"] if row["verdict"] == "chosen"]
    assert len(chosen) == 1 and chosen[0]["engine"] == enc.backend and chosen[0]["task_loss"] <= auto.MAX_TASK_LOSS
    # every engine ranked before the choice says why it was not taken
    assert all(row["reason"] for row in decision["considered"])
    assert json.loads((cache / "auto" / f"{decision['key']}.json").read_text())["choice"] == enc.backend

    def no_decision(*args, **kwargs):
        raise AssertionError("decided again")

    monkeypatch.setattr(auto, "decide", no_decision)
    again = Encoder(tiny_bert_dir, backend="auto")
    assert again.backend == enc.backend and again.info["engine"]["auto"]["considered"] == decision["considered"]
    assert again.info["engine"]["auto"]["from_cache"] and not decision["from_cache"]


def test_auto_never_picks_emulated_bf16_and_keys_by_cpu(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(auto, "cpu_features", lambda: AVX2)
    monkeypatch.setattr(auto, "MAX_TASK_LOSS", -1.0)  # no engine passes: the walk reaches its end
    enc = Encoder(tiny_bert_dir, backend="auto")
    rows = {row["engine"]: row for row in enc.info["engine"]["auto"]["considered"]}
    assert rows["torch-bf16"]["verdict"] == "skipped" and "emulated" in rows["torch-bf16"]["reason"]
    assert [rows[e]["verdict"] for e in ("onnx-int8", "onnx", "torch")] == ["rejected"] * 3
    assert enc.backend == "torch"  # the exact reference when nothing passes
    # another CPU is another decision (a cached one is never re-used across machines)
    monkeypatch.setattr(auto, "cpu_features", lambda: AVX512_BF16)
    monkeypatch.setattr(auto, "MAX_TASK_LOSS", 100.0)
    other = Encoder(tiny_bert_dir, backend="auto")
    assert other.backend == "onnx-int8" and other.info["engine"]["auto"]["cpu"]["class"] == "avx512-bf16"


def test_default_backend_is_auto_unless_the_environment_names_one(tiny_bert_dir, monkeypatch):
    monkeypatch.delenv(eng.BACKEND_ENV, raising=False)  # tests/conftest.py pins torch for the rest of the suite
    monkeypatch.setattr(auto, "cpu_features", lambda: AVX2)
    enc = Encoder(tiny_bert_dir)
    assert enc.info["engine"]["auto"]["choice"] == enc.backend != "torch-bf16"  # decided by auto's rule
    monkeypatch.setenv(eng.BACKEND_ENV, "onnx")
    assert Encoder(tiny_bert_dir).backend == "onnx" and Encoder(tiny_bert_dir, backend="torch").backend == "torch"
    monkeypatch.setenv(eng.BACKEND_ENV, "fastest")
    with pytest.raises(InvalidParameterError, match=eng.BACKEND_ENV):
        Encoder(tiny_bert_dir)


def test_spec_records_the_engine_and_a_collection_reopens_with_it(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    import semspace.encode.cpu as cpu
    from semspace.search import Collection

    monkeypatch.delenv(eng.BACKEND_ENV, raising=False)
    enc = Encoder(tiny_bert_dir, backend="onnx")
    assert enc.spec["backend"] == "onnx" and "backend" not in Encoder(tiny_bert_dir, backend="torch").spec
    with Collection.create(tmp_path / "c", encoder=enc) as made:
        made.add(TEXTS)
        stored = made.encoder.encode(TEXTS)
    with Collection.open(tmp_path / "c") as again:
        assert again.encoder.backend == "onnx"
        np.testing.assert_allclose(again.encoder.encode(TEXTS), stored, atol=1e-6)
    # a spec from before engines were recorded was made by fp32 PyTorch, whatever the default is now
    assert Encoder.from_spec({"model": str(tiny_bert_dir), "pooling": "mean"}).backend == "torch"
    # an engine that cannot run here falls back to torch, with a warning
    monkeypatch.setattr(cpu, "cpu_features", lambda: AVX2)
    monkeypatch.delenv(eng.FORCE_BF16_ENV)
    fallback = Encoder.from_spec(enc.spec | {"backend": "torch-bf16"})
    assert fallback.backend == "torch" and "cannot run here" in caplog.text


def test_auto_off_the_cpu_is_torch_and_caches_no_decision(tiny_bert_dir, cache):
    adapter = Encoder(tiny_bert_dir, backend="torch")._adapter
    adapter._runner.device = "cuda"  # a stand-in: use_engine only reads the device's name
    decided = set((cache / "auto").glob("*.json")) if (cache / "auto").is_dir() else set()
    assert eng.use_engine(adapter, "auto") == "torch" and "cuda" in adapter.engine_info["auto"]["reason"]
    assert (set((cache / "auto").glob("*.json")) if (cache / "auto").is_dir() else set()) == decided


def test_ranking_follows_the_cpu_class():
    assert [e for e, why in auto.ranking(AVX2) if not why.startswith("skip:")] == ["onnx-int8", "onnx", "torch"]
    assert [e for e, _ in auto.ranking(AVX512_BF16)] == ["onnx-int8", "torch-bf16", "onnx", "torch"]
    baseline = CPUFeatures("old", (), "test")
    assert [e for e, why in auto.ranking(baseline) if not why.startswith("skip:")] == ["onnx", "onnx-int8", "torch"]


def test_cpuinfo_is_parsed_for_x86_and_arm():
    x86 = parse_cpuinfo(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: other\n"
    )
    assert x86.model == "AMD EPYC 9R14" and x86.flags == ("avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma")
    assert x86.bf16_units and x86.int8_dot and x86.isa_class == "avx512-bf16"
    avx2 = parse_cpuinfo("model name : Intel Xeon\nflags : sse avx avx2 fma\n")
    assert not avx2.bf16_units and not avx2.int8_dot and avx2.isa_class == "avx2" and avx2.key() != x86.key()
    arm = parse_cpuinfo("processor : 0\nFeatures : fp asimd asimddp i8mm bf16 sve\nCPU part : 0xd4f\n")
    assert arm.bf16_units and arm.int8_dot and arm.isa_class == "arm-bf16"


def test_bf16_is_refused_without_bf16_units_unless_forced(tiny_bert_dir, monkeypatch):
    import semspace.encode.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: AVX2)
    monkeypatch.delenv(eng.FORCE_BF16_ENV)
    with pytest.raises(ModelLoadError, match="emulated"):
        Encoder(tiny_bert_dir, backend="torch-bf16")
    monkeypatch.setenv(eng.FORCE_BF16_ENV, "1")
    assert Encoder(tiny_bert_dir, backend="torch-bf16").backend == "torch-bf16"
    monkeypatch.setattr(cpu, "cpu_features", lambda: AVX512_BF16)
    monkeypatch.delenv(eng.FORCE_BF16_ENV)
    assert Encoder(tiny_bert_dir, backend="torch-bf16").backend == "torch-bf16"


@pytest.mark.parametrize("loss", [eng.pair_similarity_loss, eng.expected_sts_loss])
def test_task_losses_grow_with_noise(loss):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 16))
    assert loss(x, x) == pytest.approx(0.0, abs=1e-9)
    assert loss(3 * x, x) == pytest.approx(0.0, abs=1e-9)  # scale does not change cosines
    small, large = (loss(x + s * rng.normal(size=x.shape), x) for s in (0.01, 0.3))
    assert 0 < small < large <= 100


def test_bad_backend_name(tiny_bert_dir):
    with pytest.raises(InvalidParameterError, match="backend"):
        Encoder(tiny_bert_dir, backend="tensorrt")
    with pytest.raises(InvalidParameterError, match="backend"):
        CrossEncoder(tiny_bert_dir, backend="onnx-fp16")


@pytest.mark.parametrize("backend", ["torch-bf16", "onnx", "onnx-int8"])
def test_cross_encoder_backends_match_torch_scores(tiny_bert_dir, backend):
    ce = CrossEncoder(tiny_bert_dir, batch_size=2)
    pairs = [(a, b) for a in TEXTS for b in TEXTS[:3]]
    ref = ce.predict(pairs)
    ce.set_engine(backend)
    got = ce.predict(pairs)
    assert got.shape == ref.shape and ce.n_calls == 2 * len(pairs)
    tol = {"torch-bf16": 5e-2, "onnx": 1e-4, "onnx-int8": 1e-1}[backend]
    np.testing.assert_allclose(got, ref, atol=tol)
    assert ce.engine_manifest["check"]["min_cosine"] >= eng.REFUSE_BELOW[backend]
    assert 0 <= ce.engine_manifest["check"]["task_loss"] <= 100
    if backend == "onnx":
        assert ce.engine_manifest["options"]["kind"] == "cross-encoder"


def test_engine_threads_follow_omp_num_threads(monkeypatch):
    """ONNX Runtime sessions take OMP_NUM_THREADS as torch does (`serve --workers N` sets it to cores ÷ N); unset or
    not a positive integer, the physical cores."""
    from semspace.encode.engine import engine_threads, physical_cores

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert engine_threads() == 1
    for value in ("0", "two", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert engine_threads() == physical_cores()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert engine_threads() == physical_cores()
