"""Many threads, one Encoder: what the service's request threads do (issue 16: a shared tokenizer raced)."""

import random
import threading
import time

import numpy as np
import pytest

from semspace import Encoder

WORDS = ["a", "man", "dog", "cat", "is", "playing", "guitar", "running", "the", "park", "in", "food"]
THREADS, CALLS, SECONDS = 8, 40, 60


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir), batch_size=4)  # max_length 64 (the position table): long texts truncate


def texts_for(rng: random.Random) -> list[str]:
    """A mixed batch: short texts and texts longer than the model's 64 positions (so they must be truncated)."""
    return [" ".join(rng.choices(WORDS, k=rng.choice([1, 3, 10, 40, 120]))) for _ in range(rng.randint(2, 9))]


def test_concurrent_encode_matches_serial(encoder):
    rng = random.Random(0)
    batches = [texts_for(rng) for _ in range(THREADS * CALLS)]
    expected = [encoder.encode(b) for b in batches[:THREADS]]  # a serial reference for some batches
    errors: list[BaseException] = []
    results: dict[int, np.ndarray] = {}
    start, deadline = threading.Barrier(THREADS), time.monotonic() + SECONDS

    def worker(w: int) -> None:
        start.wait()
        for i in range(w, len(batches), THREADS):
            if time.monotonic() > deadline:
                return
            try:
                results[i] = encoder.encode(batches[i])
            except BaseException as exc:  # any failure is the bug
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} of {len(results) + len(errors)} concurrent calls failed: {errors[0]!r}"
    assert len(results) >= THREADS * 5
    for i, vectors in enumerate(expected):
        if i in results:
            np.testing.assert_allclose(results[i], vectors, rtol=1e-4, atol=1e-5)
    for i, vectors in results.items():  # every row as if encoded alone
        assert vectors.shape == (len(batches[i]), encoder.dim) and np.isfinite(vectors).all()


def test_truncation_count_and_vectors_are_per_call(encoder):
    long = " ".join(["dog"] * 200)
    alone = encoder.encode([long, "a cat"])
    assert encoder.n_truncated_ == 1
    again = encoder.encode(["a cat", long])
    np.testing.assert_allclose(again[::-1], alone, rtol=1e-4, atol=1e-5)
    assert encoder._adapter.token_lengths([long, "a cat"]) == [202, 4]
