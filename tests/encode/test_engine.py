"""The inference backends (semspace.encode.engine): every backend × every pooling against PyTorch fp32, the export
cache (reuse, corrupt folder, manifest header), `auto`, and the cross-encoder on ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semspace.encode import Encoder
from semspace.encode import engine as eng
from semspace.encode.pooling import HF_POOLINGS
from semspace.errors import InvalidParameterError
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


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "semspace-cache"
    monkeypatch.setenv("SEMSPACE_CACHE", str(folder))
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


def test_cache_is_reused_and_manifest_has_the_header(tiny_bert_dir, cache, monkeypatch):
    Encoder(tiny_bert_dir, backend="onnx")
    folders = [p for p in cache.iterdir() if p.name.startswith("onnx-") and not p.name.startswith("onnx-int8")]
    assert len(folders) == 1 and not list(cache.glob(".onnx-*"))  # no temp folder left behind
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["format"] == eng.MANIFEST_FORMAT and "semspace_version" in manifest and "format_version" in manifest
    assert manifest["options"]["outputs"] == list(eng.ENCODER_OUTPUTS) and manifest["options"]["opset"] == eng.OPSET
    assert manifest["check"]["min_cosine"] >= 0.999 and set(manifest["check"]["per_pooling"]) >= {"cls", "last-avg"}

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(eng, "_export", no_export)
    again = Encoder(tiny_bert_dir, backend="onnx")  # second construction: the cached graph
    assert again.encode(TEXTS).shape == (5, 32)


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


def test_auto_picks_a_passing_backend_and_caches_the_choice(tiny_bert_dir, cache, monkeypatch):
    enc = Encoder(tiny_bert_dir, backend="auto")
    assert enc.backend in ("torch", "torch-bf16", "onnx", "onnx-int8")
    choice = json.loads(next((cache / "auto").iterdir()).read_text())
    assert choice["choice"] == enc.backend and "torch" in choice["timings"]

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(eng.time, "perf_counter", no_timing)
    assert Encoder(tiny_bert_dir, backend="auto").backend == enc.backend


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
    if backend == "onnx":
        assert ce.engine_manifest["options"]["kind"] == "cross-encoder"
