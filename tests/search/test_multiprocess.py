"""Many processes on one collection (issue 10 §1): the writer lock, seqs never reused, readers that see other
processes' commits, an index that must match the store's content, `open` refusing a store that does not match its
manifest, orphan temp files, file permissions, and a bounded 4-process stress run (benchmarks/reliability.py)."""

import os
import stat
import threading
import time

import numpy as np
import pytest
from support import load_benchmark

from semspace.errors import CollectionError
from semspace.search import Collection, VectorIndex


def load_reliability():
    return load_benchmark("reliability")


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semspace import Encoder

    return Encoder(str(tiny_bert_dir))


def vecs(n, dim=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.fixture
def path(tmp_path, encoder):
    p = tmp_path / "c"
    with Collection.create(p, encoder=encoder) as c:
        c.add([f"t{i}" for i in range(10)], ids=[f"d{i}" for i in range(10)], vectors=vecs(10))
    return p


def test_a_second_handle_sees_the_first_ones_commits(path):
    reader, writer = Collection.open(path), Collection.open(path)
    v = vecs(5, seed=7)
    writer.add([f"n{i}" for i in range(5)], ids=[f"n{i}" for i in range(5)], vectors=v)
    assert [r.ids[0] for r in reader.search_vectors(v, k=1)] == [f"n{i}" for i in range(5)]
    writer.delete(["n0", "d3"])
    assert reader.search_vectors(v[:1], k=1)[0].ids != ["n0"]
    assert reader.info()["count"] == len(reader) == 13 == reader.index.ntotal
    reader.close()
    writer.close()


def test_two_stale_handles_writing_lose_nothing(path):
    a, b = Collection.open(path), Collection.open(path)
    va, vb = vecs(3, seed=1), vecs(3, seed=2)
    a.add(["a0", "a1", "a2"], ids=["a0", "a1", "a2"], vectors=va)
    b.add(["b0", "b1", "b2"], ids=["b0", "b1", "b2"], vectors=vb)  # b's index was loaded before a's add
    b.delete(["a1"])
    a.close()
    b.close()
    with Collection.open(path) as c:
        assert c.index.ntotal == len(c) == 15
        assert [r.ids[0] for r in c.search_vectors(np.vstack([va[[0, 2]], vb]), k=1)] == ["a0", "a2", "b0", "b1", "b2"]


def test_seqs_are_never_reused(path):
    with Collection.open(path) as c:
        top = int(c._store.all_seqs().max())
        top_id = c._store.by_seq([top])[top][0]
        c.delete([top_id])
        c.add(["new"], ids=["new"], vectors=vecs(1, seed=9))
        assert c._store.seqs_of(["new"])["new"] == top + 1


def test_index_with_right_count_but_wrong_ids_is_rebuilt(path):
    with Collection.open(path) as c:
        seqs, raw = c._store.all_vectors()
        name = next(path.glob("index.g*.faiss"))
    fake = VectorIndex("Flat", 32)
    fake.rebuild(seqs + 1000, raw)  # same count, other ids: a count check would accept it
    name.write_bytes(fake.to_bytes())
    with Collection.open(path) as c:
        assert [r.ids[0] for r in c.search_vectors(raw[:3], k=1)] == ["d0", "d1", "d2"]
        assert sorted(c.index.ids().tolist()) == sorted(seqs.tolist())


@pytest.mark.parametrize("damage", ["zero-byte", "missing table", "behind manifest"])
def test_open_refuses_a_store_that_does_not_match_and_deletes_nothing(path, damage):
    db = path / "documents.sqlite"
    if damage == "zero-byte":
        for extra in path.glob("documents.sqlite-*"):
            extra.unlink()
        db.write_bytes(b"")
    elif damage == "missing table":
        import sqlite3

        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE documents")
    else:
        import json

        manifest = json.loads((path / "collection.json").read_text())
        manifest["generation"] += 5
        (path / "collection.json").write_text(json.dumps(manifest))
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(CollectionError, match=r"documents\.sqlite"):
        Collection.open(path)
    assert sorted(p.name for p in path.iterdir()) == before
    assert list(path.glob("index.g*.faiss")), "the index file was deleted"


def test_orphan_temp_files_are_removed_at_open(path):
    # open holds the writer lock, and every temp file in the folder is written under it: none can be live.
    old = path / ".index.g9.faiss.abc123.tmp"
    young = path / ".collection.json.def456.tmp"
    old.write_bytes(b"x" * 100)
    young.write_bytes(b"y")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    Collection.open(path).close()
    assert not old.exists() and not young.exists()


def test_files_have_umask_permissions(path):
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("collection.json", next(path.glob("index.g*.faiss")).name):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o666 & ~mask


def test_writer_lock_timeout_is_a_clear_error(path):
    holder = Collection.open(path)
    waiter = Collection.open(path, lock_timeout=0.3)
    release = threading.Event()
    held = threading.Event()

    def hold():
        with holder._writer.hold():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(CollectionError, match="write lock"):
            waiter.add(["x"], ids=["x"], vectors=vecs(1))
    finally:
        release.set()
        thread.join()
    waiter.add(["x"], ids=["x"], vectors=vecs(1))  # free again
    assert len(holder) == 11
    holder.close()
    waiter.close()


def test_four_processes_add_delete_search_nothing_lost_or_hidden(tmp_path, encoder):
    reliability = load_reliability()
    path = tmp_path / "stress" / "c"
    reliability.make_collection(path, encoder)
    result = reliability.run_stress(path, processes=4, seconds=8, startup=12)
    assert result["operations"] > 40, result
    assert result["failures"] == 0, result
    for key in ("lost", "hidden", "resurrected", "duplicated", "unacknowledged", "searches that missed"):
        assert result[key] == 0, (key, result)
    assert result["index == store"], result


@pytest.mark.parametrize("index", ["Flat", "HNSW16"])
def test_kill9_right_after_the_first_file_change(tmp_path, encoder, index):
    reliability = load_reliability()
    path = tmp_path / "kill" / "c"
    reliability.make_collection(path, encoder, index)
    result = reliability.kill_loop(path, rounds=5)
    assert result["kills"] == 5, result
    for key in result:
        if key not in ("kills", "documents"):
            assert result[key] == 0, (key, result)
