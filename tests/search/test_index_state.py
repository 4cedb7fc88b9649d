"""The collection's index kept in step with SQLite at the cost of the change (index_state.py): writes that write no
index file, readers that replay the delta, tombstones, checkpoints and compaction, retraining, and crash points."""

import json
import sqlite3

import numpy as np
import pytest

from semspace.search import Collection
from semspace.search import index_state as state_module


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semspace import Encoder

    return Encoder(str(tiny_bert_dir))


def vecs(n, dim=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def make(path, encoder, index="Flat", n=20, seed=0):
    coll = Collection.create(path, encoder=encoder, index=index)
    if n:
        ids = [f"d{i}" for i in range(n)]
        coll.add([f"t{i}" for i in range(n)], ids=ids, metadata=[{"g": 1}] * n, vectors=vecs(n, seed=seed))
    return coll


def index_files(path):
    return sorted(p.name for p in path.glob("index.g*.faiss"))


def checkpoint_of(path):
    with sqlite3.connect(path / "documents.sqlite") as db:
        return json.loads(db.execute("SELECT value FROM meta WHERE key = 'checkpoint'").fetchone()[0])


def top1(coll, x):
    return [r.ids[0] if r.ids else None for r in coll.search_vectors(x, k=1)]


@pytest.mark.parametrize("index", ["Flat", "HNSW32"])
def test_writes_do_not_rewrite_the_index_file(tmp_path, encoder, index):
    path = tmp_path / "c"
    coll = make(path, encoder, index)
    files = index_files(path)
    stamp = (path / files[0]).stat().st_mtime_ns
    coll.add(["new"], ids=["new"], vectors=vecs(1, seed=5))
    coll.upsert(["d3 again"], ids=["d3"], vectors=vecs(1, seed=6))
    coll.delete(["d4"])
    assert index_files(path) == files and (path / files[0]).stat().st_mtime_ns == stamp
    assert coll.info()["tail_rows"] > 0 and coll.info()["tombstones"] == 2  # the old d3 and d4
    assert top1(coll, vecs(1, seed=5)) == ["new"] and top1(coll, vecs(1, seed=6)) == ["d3"]
    assert "d4" not in coll.search_vectors(vecs(20)[4:5], k=20)[0].ids
    assert len(coll) == coll.index.ntotal == 20
    coll.close()


@pytest.mark.parametrize("index", ["Flat", "HNSW32"])
def test_reader_catches_up_by_the_delta_without_reading_the_file(tmp_path, encoder, index, monkeypatch):
    path = tmp_path / "c"
    writer = make(path, encoder, index)
    reader = Collection.open(path, encoder=encoder)
    assert top1(reader, vecs(1)) == ["d0"]

    def no_file_reads(self, checkpoint):
        raise AssertionError("the reader reloaded the checkpoint file")

    monkeypatch.setattr(state_module.IndexState, "_read_checkpoint", no_file_reads)
    writer.add(["a"], ids=["a"], vectors=vecs(1, seed=7))
    writer.delete(["d0"])
    writer.upsert(["d1 new"], ids=["d1"], vectors=vecs(1, seed=8))
    assert top1(reader, vecs(1, seed=7)) == ["a"]
    assert top1(reader, vecs(1, seed=8)) == ["d1"]
    assert "d0" not in reader.search_vectors(vecs(1), k=25)[0].ids
    assert reader.index.ntotal == len(reader) == 20
    # filtered search skips tombstones too
    assert "d0" not in reader.search_vectors(vecs(1), k=25, where={"g": 1})[0].ids
    writer.close()
    reader.close()


def test_checkpoint_after_a_long_tail_and_reader_reloads_when_behind_the_pruned_log(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(state_module, "CHECKPOINT_MIN_ROWS", 10)
    path = tmp_path / "c"
    writer = make(path, encoder, n=0)
    reader = Collection.open(path, encoder=encoder)
    first = checkpoint_of(path)
    writer.add([f"t{i}" for i in range(5)], ids=[f"a{i}" for i in range(5)], vectors=vecs(5, seed=1))
    assert checkpoint_of(path) == first  # tail of 5 < 10 rows
    assert top1(reader, vecs(5, seed=1)) == [f"a{i}" for i in range(5)]
    writer.delete(["a0", "a1"])
    writer.add([f"t{i}" for i in range(8)], ids=[f"b{i}" for i in range(8)], vectors=vecs(8, seed=2))
    second = checkpoint_of(path)
    assert second["file"] != first["file"] and index_files(path) == [second["file"]]
    with sqlite3.connect(path / "documents.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM deleted").fetchone()[0] == 0  # Flat purged its tombstones
    assert writer.info()["tombstones"] == 0 and writer.info()["tail_rows"] == 0
    # The reader's generation is below the pruned log: it reloads the new checkpoint and loses nothing.
    assert top1(reader, vecs(8, seed=2)) == [f"b{i}" for i in range(8)]
    assert reader.index.ntotal == len(reader) == 11
    assert not {"a0", "a1"} & set(reader.search_vectors(vecs(1, seed=1), k=20)[0].ids)
    writer.close()
    reader.close()


def test_hnsw_compaction_keeps_or_rebuilds_by_the_tombstone_share(tmp_path, encoder):
    path = tmp_path / "c"
    coll = make(path, encoder, "HNSW32", n=40)
    coll.delete(["d0"])
    info = coll.compact()
    assert info["tombstones"] == 1 and info["tail_rows"] == 0  # kept in the checkpoint, still logged
    with Collection.open(path, encoder=encoder) as again:
        assert again.index.ntotal == len(again) == 39 and "d0" not in again.search_vectors(vecs(1), k=40)[0].ids
    coll.delete([f"d{i}" for i in range(1, 15)])
    info = coll.compact()  # 15 of 40 dead: past the rebuild fraction
    assert info["tombstones"] == 0 and info["index_vectors"] == 25
    with Collection.open(path, encoder=encoder) as again:
        assert sorted(again.index.ids().tolist()) == sorted(again.store.all_seqs().tolist())
    coll.close()


def test_trained_index_records_its_training_and_retrains_after_growth(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(state_module, "CHECKPOINT_MIN_ROWS", 10**9)  # only explicit compaction here
    path = tmp_path / "c"
    coll = make(path, encoder, "IVF4,Flat", n=0)
    coll.add([f"t{i}" for i in range(3)], ids=[f"s{i}" for i in range(3)], vectors=vecs(3, seed=3))
    assert coll.info()["ivf_exact_fallback"] and coll.info()["trained_on"] == 0
    coll.add([f"t{i}" for i in range(10)], ids=[f"a{i}" for i in range(10)], vectors=vecs(10, seed=4))
    info = coll.info()
    assert not info["ivf_exact_fallback"] and info["trained_on"] == 13 and not info["training_stale"]
    coll.add([f"t{i}" for i in range(50)], ids=[f"b{i}" for i in range(50)], vectors=vecs(50, seed=5))
    assert coll.info()["training_stale"]  # 63 > 4 × 13
    info = coll.compact()
    assert info["trained_on"] == 63 and not info["training_stale"] and info["index_vectors"] == 63
    with Collection.open(path, encoder=encoder) as again:
        assert again.info()["trained_on"] == 63
        assert top1(again, vecs(50, seed=5))[:5] == [f"b{i}" for i in range(5)]
    coll.close()


def test_a_killed_checkpoint_leaves_a_stray_file_that_open_removes(tmp_path, encoder, monkeypatch):
    path = tmp_path / "c"
    coll = make(path, encoder)
    coll.add(["x"], ids=["x"], vectors=vecs(1, seed=9))
    recorded = checkpoint_of(path)["file"]

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    # the new file is written, then the process dies before the store records it
    monkeypatch.setattr(state_module.DocumentStore, "prune_deletions", staticmethod(die))
    with pytest.raises(Killed):
        coll.compact()
    monkeypatch.undo()
    assert len(index_files(path)) == 2 and checkpoint_of(path)["file"] == recorded
    coll.close()
    with Collection.open(path, encoder=encoder) as again:
        assert index_files(path) == [recorded]
        assert again.index.ntotal == len(again) == 21 and top1(again, vecs(1, seed=9)) == ["x"]


def test_a_failure_after_the_commit_does_not_fail_the_write(tmp_path, encoder, monkeypatch, caplog):
    path = tmp_path / "c"
    coll = make(path, encoder)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state_module.IndexState, "committed", disk_full)
    assert coll.add(["y"], ids=["y"], vectors=vecs(1, seed=10)) == ["y"]  # committed: no exception
    assert "will catch up" in caplog.text
    monkeypatch.undo()
    assert top1(coll, vecs(1, seed=10)) == ["y"] and coll.index.ntotal == len(coll) == 21
    coll.close()


def test_collection_from_before_the_log_is_migrated(tmp_path, encoder):
    path = tmp_path / "c"
    make(path, encoder).close()
    with sqlite3.connect(path / "documents.sqlite") as db:  # as written by the previous format
        db.execute("DROP TABLE deleted")
        db.execute("DELETE FROM meta WHERE key IN ('checkpoint', 'epoch', 'log_floor')")
    with Collection.open(path, encoder=encoder) as again:
        assert again.index.ntotal == 20 and top1(again, vecs(3)) == ["d0", "d1", "d2"]
        again.delete(["d0"])
        assert again.index.ntotal == len(again) == 19


def test_kept_hnsw_tombstones_do_not_count_as_tail(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(state_module, "CHECKPOINT_MIN_ROWS", 2)
    path = tmp_path / "c"
    coll = make(path, encoder, "HNSW32", n=40)
    coll.compact()
    coll.delete([f"d{i}" for i in range(7)])  # 7 ≥ 20% of the 33 live: a checkpoint that keeps the 7 tombstones
    kept = checkpoint_of(path)["file"]
    assert coll.info()["tombstones"] == 7 and coll.info()["tail_rows"] == 0
    coll.add(["one more"], ids=["x"], vectors=vecs(1, seed=11))
    assert checkpoint_of(path)["file"] == kept  # the kept tombstones are not a tail to checkpoint again
    coll.close()


def test_a_transform_change_that_died_before_its_rebuild_is_rebuilt_on_open(tmp_path, encoder, monkeypatch):
    path = tmp_path / "c"
    coll = make(path, encoder, n=60)

    def killed(self):
        raise KeyboardInterrupt  # the transform is committed, its index never recorded

    monkeypatch.setattr(state_module.IndexState, "rebuild", killed)
    with pytest.raises(KeyboardInterrupt):
        coll.fit_whitening(beta=1.0, gamma=1.0)
    monkeypatch.undo()
    assert coll.info()["transform"] is not None  # the same handle rebuilds on its next read
    assert top1(coll, vecs(60)[:5]) == [f"d{i}" for i in range(5)]
    coll.close()
    with sqlite3.connect(path / "documents.sqlite") as db:  # as if that rebuild had never happened either
        cp = json.loads(db.execute("SELECT value FROM meta WHERE key = 'checkpoint'").fetchone()[0])
        cp["transform"] = 0
        db.execute("UPDATE meta SET value = ? WHERE key = 'checkpoint'", (json.dumps(cp),))
    with Collection.open(path, encoder=encoder) as again:
        assert checkpoint_of(path)["transform"] == 1
        assert top1(again, vecs(60)[:5]) == [f"d{i}" for i in range(5)]
