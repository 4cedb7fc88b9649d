"""Dynamic batching (semspace.service.batcher): concurrent requests merged into one engine call, results back to
the right request, 429 when the queue is full, 503 past the timeout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from semspace import Encoder
from semspace.errors import EncoderBusyError, EncoderTimeoutError
from semspace.service import create_app
from semspace.service.batcher import BatchConfig, Batcher

WORDS = ["a man", "a dog is running", "the cat eats food", "a plane", "a woman is playing a flute in the park"]


class Recording:
    """An encoder wrapper that records the size of every engine call and takes `delay` seconds per call."""

    def __init__(self, encoder: Encoder, delay: float = 0.05) -> None:
        self.encoder, self.delay, self.calls = encoder, delay, []
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def encode(self, texts, **kwargs):
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.delay)
        return self.encoder.encode(texts, **kwargs)


class Blocked(Recording):
    """An encoder whose calls are recorded, then wait for `gate` (an engine stuck on a long batch)."""

    def __init__(self, encoder: Encoder, gate: threading.Event) -> None:
        super().__init__(encoder, delay=0.0)
        self.gate = gate

    def encode(self, texts, **kwargs):
        with self.lock:
            self.calls.append(len(texts))
        self.gate.wait(30)
        return self.encoder.encode(texts, **kwargs)


def _wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


def test_concurrent_http_requests_are_merged_and_answered_in_order(encoder, live_server):
    texts = [f"{WORDS[i % 5]} {'and a dog ' * (i % 3)}".strip() for i in range(24)]
    expected = encoder.encode(texts)
    recording = Recording(encoder)
    app = create_app(None, encoder=encoder, batching=BatchConfig(max_wait_ms=30))
    with live_server(app) as server:
        state = app.state.semspace
        state.batcher.target = recording

        def embed(i: int) -> np.ndarray:
            route = ("/embed", "/v1/embeddings")[i % 2]
            body = {"texts": [texts[i]]} if route == "/embed" else {"input": [texts[i]], "model": encoder.model_id}
            r = httpx.post(server.url + route, json=body, timeout=30)
            assert r.status_code == 200, r.text
            data = r.json()
            return np.array(data["embeddings"][0] if route == "/embed" else data["data"][0]["embedding"])

        with ThreadPoolExecutor(12) as pool:
            got = list(pool.map(embed, range(len(texts))))
        exposition = httpx.get(server.url + "/metrics", timeout=30).text
    gathered = {  # the batcher's histogram: one observation per engine call, the texts it held
        line.split()[0]: float(line.split()[1])
        for line in exposition.splitlines()
        if line.startswith(("semspace_batcher_texts_count", "semspace_batcher_texts_sum"))
    }
    assert gathered == {"semspace_batcher_texts_count": len(recording.calls), "semspace_batcher_texts_sum": len(texts)}
    for i, vector in enumerate(got):  # each request got its own text's vector
        np.testing.assert_allclose(vector, expected[i], atol=1e-5)
    assert sum(recording.calls) == len(texts)
    assert len(recording.calls) < len(texts) and max(recording.calls) > 1  # merged


def test_embed_answers_the_encoders_own_numbers(encoder):
    # the vectors are written by orjson from the arrays: the same doubles as `tolist()` gives, on both body shapes
    app = create_app(None, encoder=encoder)
    with TestClient(app, base_url="http://localhost") as client:
        for text in WORDS[:3]:
            expected = encoder.encode([text]).tolist()
            ours = client.post("/embed", json={"texts": [text]})
            assert ours.headers["content-type"] == "application/json"
            assert ours.json() == {"model": encoder.model_id, "dim": encoder.dim, "embeddings": expected}
            tei = client.post("/embed", json={"inputs": text, "normalize": False}).json()
            assert tei == expected


def test_normalize_and_plain_requests_are_not_mixed(encoder):
    batcher = Batcher(Recording(encoder, delay=0.0), BatchConfig(max_wait_ms=50))
    try:
        with ThreadPoolExecutor(4) as pool:
            plain = pool.submit(batcher.encoder.encode, ["a man"])
            unit = pool.submit(batcher.encoder.encode, ["a man"], normalize=True)
            a, b = plain.result(), unit.result()
        np.testing.assert_allclose(a, encoder.encode(["a man"]), atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    finally:
        batcher.close()


def test_bad_text_fails_only_its_request(encoder):
    from semspace.errors import InvalidInputError

    batcher = Batcher(encoder, BatchConfig(max_wait_ms=20))
    try:
        with pytest.raises(InvalidInputError):
            batcher.encoder.encode(["  "])
        assert batcher.encoder.encode(["a dog"]).shape == (1, encoder.dim)
    finally:
        batcher.close()


def test_full_queue_is_429_and_slow_engine_is_503(encoder):
    gate = threading.Event()

    blocked = Blocked(encoder, gate)
    batcher = Batcher(blocked, BatchConfig(max_wait_ms=0, max_queue=1, timeout_s=0.3))
    try:
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(batcher.encoder.encode, ["a man"])
            _wait_until(lambda: blocked.calls == [1])  # taken by the worker, which blocks
            second = pool.submit(batcher.encoder.encode, ["a dog"])
            _wait_until(batcher._queue.full)  # waits in the queue (it stays there after its own 503)
            with pytest.raises(EncoderBusyError):
                batcher.encoder.encode(["a cat"])
            with pytest.raises(EncoderTimeoutError):
                first.result()
            gate.set()
            second.exception(timeout=10)  # answered (200 or 503, depending on timing)
    finally:
        gate.set()
        batcher.close()


def test_coroutine_requests_are_merged_and_time_out_as_503(encoder):
    import asyncio

    recording = Recording(encoder, delay=0.0)
    batcher = Batcher(recording, BatchConfig(max_wait_ms=50))
    texts = WORDS * 2

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.encoder.encode_async([t]) for t in texts))

    try:
        got = asyncio.run(many())
        np.testing.assert_allclose(np.vstack(got), encoder.encode(texts), atol=1e-5)
        assert sum(recording.calls) == len(texts) and len(recording.calls) < len(texts)  # merged
        # a large request skips the queue (runs in the thread pool), with the same vectors
        big = asyncio.run(batcher.encoder.encode_async(texts * 4))
        np.testing.assert_allclose(big, encoder.encode(texts * 4), atol=1e-5)
    finally:
        batcher.close()

    gate = threading.Event()

    slow = Batcher(Blocked(encoder, gate), BatchConfig(max_wait_ms=0, timeout_s=0.2))
    try:
        with pytest.raises(EncoderTimeoutError):
            asyncio.run(slow.encoder.encode_async(["a man"]))
    finally:
        gate.set()
        slow.close()


def test_http_429_is_json(encoder, live_server):
    gate = threading.Event()

    app = create_app(None, encoder=encoder, batching=BatchConfig(max_wait_ms=0, max_queue=1, timeout_s=30))
    with live_server(app) as server:
        batcher = app.state.semspace.batcher
        batcher.target = Blocked(encoder, gate)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, server.url + "/embed", json={"texts": ["a man"]}, timeout=60)
            _wait_until(lambda: batcher.target.calls == [1] or gate.is_set())  # the worker holds it, blocked
            second = pool.submit(httpx.post, server.url + "/embed", json={"texts": ["a dog"]}, timeout=60)
            _wait_until(batcher._queue.full)  # waits in the queue (no timing guess: a busy machine is slow)
            r = httpx.post(server.url + "/embed", json={"texts": ["a cat"]}, timeout=30)
            gate.set()
            assert first.result().status_code == 200 and second.result().status_code == 200
    assert r.status_code == 429 and "retry" in r.json()["detail"]


def test_service_backend_option_reaches_encoder_and_cross_encoder(
    tiny_bert_dir, tiny_cross_encoder_dir, tmp_path, monkeypatch
):
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    monkeypatch.setenv("SEMSPACE_CACHE", str(tmp_path))
    app = create_app(None, encoder=str(tiny_bert_dir), cross_encoder=tiny_cross_encoder_dir, backend="onnx")
    with TestClient(app, base_url="http://localhost") as client:
        state = app.state.semspace
        assert state.encoder.backend == "onnx" and state.cross_encoder.backend == "onnx"
        r = client.post("/embed", json={"texts": ["a man", "a dog"]})
        assert r.status_code == 200
        np.testing.assert_allclose(
            np.array(r.json()["embeddings"]), Encoder(str(tiny_bert_dir)).encode(["a man", "a dog"]), atol=1e-4
        )
        r = client.post("/rerank", json={"query": "a man", "texts": ["a dog", "a man"]})
        assert r.status_code == 200, r.text


class Counting(Recording):
    """Records the texts of every `token_lengths` call too (the batcher counts OpenAI's `usage` with it)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder, delay=0.0)
        self.counted: list[int] = []

    def token_lengths(self, texts):
        self.counted.append(len(texts))
        return self.encoder.token_lengths(texts)


def test_counted_requests_get_their_own_token_counts_from_one_count_per_batch(encoder):
    """`encode_counted_async` (/v1/embeddings): each request gets its vectors and its own texts' token counts; the
    worker counts a gathered batch in one call (no thread hop per request), only for requests that asked."""
    import asyncio

    counting = Counting(encoder)
    batcher = Batcher(counting, BatchConfig(max_wait_ms=50))
    requests = [[t] for t in WORDS] + [WORDS[:2]]

    async def many():
        counted = [batcher.encoder.encode_counted_async(texts) for texts in requests]
        return await asyncio.gather(*counted, batcher.encoder.encode_async(["not counted"]))

    try:
        *got, plain = asyncio.run(many())
        for texts, (vectors, lengths) in zip(requests, got, strict=True):
            np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-5)
            assert lengths == encoder.token_lengths(texts)
        assert plain.shape == (1, encoder.dim)
        assert sum(counting.counted) == sum(map(len, requests))  # the counted requests' texts, once each
        assert len(counting.counted) <= len(counting.calls) < len(requests) + 1  # one count per merged call at most
        # a large request skips the queue: counted in the same thread-pool call
        vectors, lengths = asyncio.run(batcher.encoder.encode_counted_async(WORDS * 8))
        assert vectors.shape == (40, encoder.dim) and lengths == encoder.token_lengths(WORDS * 8)
    finally:
        batcher.close()
