"""Distributed encode, whitening and search give what the single-process path gives, on a real local Ray runtime;
a killed actor is restarted and every id is written exactly once."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semspace.distributed import (
    ShardedSearcher,
    ShardFolder,
    build_index_from_shards,
    encode_to_shards,
    fit_whitening_from_shards,
)
from semspace.distributed.shards import FORMAT, MANIFEST, write_shard
from semspace.encode import Encoder
from semspace.errors import InvalidParameterError, MissingExtraError
from semspace.search.index import VectorIndex
from semspace.transform import Whitening

SENTENCE_WORDS = ["a", "man", "woman", "dog", "cat", "is", "playing", "guitar", "running", "the", "park", "eats"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """`n` distinct short sentences over the tiny BERT's vocabulary."""
    import numpy as np

    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        words = rng.choice(SENTENCE_WORDS, size=int(rng.integers(2, 8)))
        texts.append(" ".join(words) + f" {i % 7 * 'a '}".rstrip())
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return make_texts(300)


@pytest.fixture(scope="module")
def encoded(ray_runtime, tiny_bert_dir, texts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("enc") / "shards"
    ids = [f"doc-{i}" for i in range(len(texts))]
    report = encode_to_shards(texts, folder, ids=ids, encoder={"model": str(tiny_bert_dir)}, n_actors=2, shard_size=64)
    return folder, ids, report


def test_encode_gives_the_single_process_vectors_in_order(encoded, tiny_bert_dir, texts):
    folder, ids, report = encoded
    encoder = Encoder(str(tiny_bert_dir))
    expected = encoder.encode(texts)
    shards = ShardFolder(folder)
    assert (report.count, report.shards, shards.count, len(shards.shards)) == (300, 5, 300, 5)
    assert shards.all_ids() == ids
    np.testing.assert_allclose(shards.all_vectors(), expected, rtol=1e-5, atol=1e-5)
    assert shards.encoder == encoder.cache_key() == report.encoder
    assert not list(folder.glob(".*.tmp"))


def test_shard_statistics_merge_to_the_single_pass_whitening(encoded, tiny_bert_dir, texts):
    folder, _, _ = encoded
    shards = ShardFolder(folder)
    vectors = shards.all_vectors()
    merged = shards.merged_stats()
    assert merged.count == len(texts)
    np.testing.assert_allclose(merged.sum_outer, vectors.astype(np.float64).T @ vectors, rtol=1e-9, atol=1e-9)
    distributed = fit_whitening_from_shards(folder, n_components=8)
    single = Whitening(n_components=8).fit(vectors)  # one pass over the same vectors
    np.testing.assert_allclose(distributed.kernel_, single.kernel_, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(distributed.transform(vectors), single.transform(vectors), rtol=1e-5, atol=1e-5)
    # and the whitening the single-process encoder's vectors give, to the float32 noise of the encodings
    plain = Whitening(n_components=8).fit(Encoder(str(tiny_bert_dir)).encode(texts))
    np.testing.assert_allclose(distributed.transform(vectors), plain.transform(vectors), rtol=1e-3, atol=1e-3)


def test_encode_refuses_a_non_empty_folder_and_repeated_ids(ray_runtime, tmp_path):
    (tmp_path / "x").write_text("x")
    with pytest.raises(InvalidParameterError, match="not an empty folder"):
        encode_to_shards(["a"], tmp_path)
    with pytest.raises(ValueError, match="repeat"):
        encode_to_shards(["a", "b"], tmp_path / "new", ids=["1", "1"])


@pytest.fixture(scope="module")
def random_shards(tmp_path_factory):
    """2,000 Gaussian vectors (no ties) in uneven shards, written with the shard writer the actors use."""
    from semspace._io import write_artifact_json

    folder = tmp_path_factory.mktemp("rand")
    x = np.random.default_rng(1).normal(size=(2000, 24)).astype(np.float32)
    bounds = [0, 300, 900, 1000, 1700, 2000]
    shards = []
    for number, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        write_shard(folder, number, [f"r{i}" for i in range(lo, hi)], x[lo:hi])
        shards.append({"name": f"shard-{number:05d}", "first": lo, "count": hi - lo})
    write_artifact_json(folder / MANIFEST, FORMAT, {"count": 2000, "dim": 24, "encoder": "random", "shards": shards})
    return folder, x


@pytest.mark.parametrize("whiten", [False, True])
def test_sharded_search_gives_the_single_index_top_k(random_shards, whiten):
    folder, x = random_shards
    whitening = Whitening(n_components=12).fit(x) if whiten else None
    single = VectorIndex("Flat", 12 if whiten else 24)
    single.rebuild(np.arange(len(x)), x if whitening is None else whitening.transform(x))
    queries = np.random.default_rng(2).normal(size=(20, 24)).astype(np.float32)
    expected_scores, expected_rows = single.search(queries if whitening is None else whitening.transform(queries), 10)
    searcher = ShardedSearcher(folder, "Flat", whitening=whitening)
    scores, rows = searcher.search(queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert searcher.ids[rows[0, 0]] == f"r{rows[0, 0]}"
    scores, rows = searcher.search(queries[:2], 2500)  # more than there are: padded as FAISS pads
    assert rows.shape == (2, 2500) and (rows[:, 2000:] == -1).all() and np.isneginf(scores[:, 2000:]).all()


@pytest.mark.parametrize("factory", ["IVF32,Flat", "IVF16,PQ6x4"])
def test_ivf_merged_from_shards_equals_the_single_ivf(random_shards, factory):
    folder, x = random_shards
    single = VectorIndex(factory, 24)
    single.rebuild(np.arange(len(x)), x)
    single.nprobe = 4  # approximate on purpose: the two indexes must agree list by list
    merged = build_index_from_shards(folder, factory)
    merged.nprobe = 4
    assert merged.ntotal == single.ntotal == len(x)
    queries = np.random.default_rng(3).normal(size=(30, 24)).astype(np.float32)
    s1, r1 = single.search(queries, 10)
    s2, r2 = merged.search(queries, 10)
    np.testing.assert_array_equal(r2, r1)
    np.testing.assert_allclose(s2, s1, rtol=1e-5, atol=1e-6)
    sampled = build_index_from_shards(folder, factory, train_size=800)  # trained on a sample across shards
    assert sampled.ntotal == len(x)
    with pytest.raises(InvalidParameterError, match="not one"):
        build_index_from_shards(folder, "Flat")


class SlowEncoder:
    """An Encoder that records its process id and takes a while per shard, so that a test can kill it mid-job."""

    def __init__(self, model: str, pid_dir: str) -> None:
        self.model, self.pid_dir = model, pid_dir

    def __call__(self):
        Path(self.pid_dir, str(os.getpid())).touch()
        encoder = Encoder(self.model)
        original = encoder.encode

        def slow_encode(texts, **kwargs):
            time.sleep(0.25)
            return original(texts, **kwargs)

        encoder.encode = slow_encode
        return encoder


def test_a_killed_actor_is_restarted_and_every_id_is_written_once(ray_runtime, tiny_bert_dir, texts, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test module is not importable by workers
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    folder = tmp_path / "shards"
    ids = [f"id{i}" for i in range(len(texts))]
    result: dict = {}

    def job() -> None:
        try:
            factory = SlowEncoder(str(tiny_bert_dir), str(pid_dir))
            result["report"] = encode_to_shards(texts, folder, ids=ids, encoder=factory, n_actors=2, shard_size=15)
        except BaseException as exc:  # re-raised below, in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.time() + 60
    while len(list(folder.glob("*.vectors.npy"))) < 3:  # the job is under way
        assert time.time() < deadline and thread.is_alive(), result.get("error")
        time.sleep(0.05)
    victim = int(sorted(pid_dir.iterdir())[0].name)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    started = {int(p.name) for p in pid_dir.iterdir()}
    assert victim in started and len(started) >= 3  # the killed actor was replaced by a new process
    shards = ShardFolder(folder)
    got = shards.all_ids()
    assert got == ids and len(set(got)) == len(ids)  # every id, once, in order
    np.testing.assert_allclose(shards.all_vectors(), Encoder(str(tiny_bert_dir)).encode(texts), rtol=1e-5, atol=1e-5)
    assert result["report"].shards == 20


def test_import_without_ray_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "semspace.distributed" or m.startswith("semspace.distributed.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'semspace\[ray\]'"):
        import semspace.distributed  # noqa: F401
