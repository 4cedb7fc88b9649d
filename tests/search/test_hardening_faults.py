"""Writes report the truth (issue 29): an ENOSPC or EIO injected at each step of the write path either fails the
write with nothing stored (before the SQLite commit) or leaves it stored, searchable and reported in
`last_write_warning` (after it) — never an exception that invites a retry. Every fault leaves a collection that
opens with exactly the documents the caller was told are stored."""

import errno
import os

import numpy as np
import pytest

from semspace.errors import DuplicateIdError, StorageError
from semspace.search import Collection
from semspace.search import index_state as state_module
from semspace.search.documents import WRITE_WARNING

ERRNOS = [errno.ENOSPC, errno.EIO]
STEPS = ["store_insert", "store_commit", "apply", "checkpoint_file", "fsync", "rename", "checkpoint_record",
         "manifest", "tidy"]  # fmt: skip


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semspace import Encoder

    return Encoder(str(tiny_bert_dir))


@pytest.fixture(autouse=True)
def checkpoint_every_write(monkeypatch):
    monkeypatch.setattr(state_module, "CHECKPOINT_MIN_ROWS", 1)  # every write reaches the checkpoint steps


def vecs(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)


def make(path, encoder, index="Flat", n=20):
    coll = Collection.create(path, encoder=encoder, index=index)
    if n:
        coll.add([f"t{i}" for i in range(n)], ids=[f"d{i}" for i in range(n)], vectors=vecs(n))
    return coll


def top1(coll, x):
    return [r.ids[0] if r.ids else None for r in coll.search_vectors(x, k=1)]


def test_every_step_is_covered(faults):
    assert sorted(faults.BEFORE_COMMIT + faults.AFTER_COMMIT) == sorted(STEPS)


@pytest.mark.parametrize("number", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_in_the_add_path(tmp_path, encoder, faults, step, number):
    path = tmp_path / "c"
    coll = make(path, encoder)
    new, ids = vecs(10, seed=7), [f"n{i}" for i in range(10)]
    texts = [f"new {i}" for i in range(10)]
    faults.inject(step, number, coll=coll, once=step == "apply")  # an in-memory failure does not persist
    if step in faults.BEFORE_COMMIT:
        with pytest.raises(OSError) as raised:
            coll.add(texts, ids=ids, vectors=new)
        assert raised.value.errno == number
        if step == "store_commit":
            assert isinstance(raised.value, StorageError) and "nothing of it is stored" in str(raised.value)
        assert coll.last_write_warning is None
        assert len(coll) == 20 and coll.get_existing(ids) == [] and coll.index.ntotal == 20
        faults.clear()
        assert coll.add(texts, ids=ids, vectors=new) == ids  # the retry stores them, once
    else:
        assert coll.add(texts, ids=ids, vectors=new) == ids  # committed: no exception
        warning = coll.last_write_warning
        assert warning and "do not retry" in warning and os.strerror(number) in warning
        assert WRITE_WARNING.get() == warning  # what the service reports
        # stored and searchable on this handle, the disk still refusing (a read writes nothing)
        assert len(coll) == 30 and top1(coll, new) == ids and coll.index.ntotal == 30
        with pytest.raises(DuplicateIdError):  # a retry is refused only because they really are stored
            coll.add(texts, ids=ids, vectors=new)
        with Collection.open(path, encoder=encoder) as other:  # another process, the disk still refusing
            assert len(other) == 30 and top1(other, new) == ids
        faults.clear()
        coll.add(["after"], ids=["after"], vectors=vecs(1, seed=8))
        assert coll.last_write_warning is None  # the next write clears it
    coll.close()
    with Collection.open(path, encoder=encoder) as again:  # exactly what the caller was told is stored
        assert len(again) == again.index.ntotal == 30 + (step not in faults.BEFORE_COMMIT)
        assert top1(again, new) == ids and again.get(ids)[3]["text"] == "new 3"


@pytest.mark.parametrize("step", ["checkpoint_file", "checkpoint_record"])
def test_delete_and_upsert_after_their_commit(tmp_path, encoder, faults, step):
    path = tmp_path / "c"
    coll = make(path, encoder)
    faults.inject(step, errno.ENOSPC)
    gone = [f"d{i}" for i in range(1, 6)]  # 5 of 20: a tail long enough to checkpoint
    assert coll.delete(gone) == 5 and "do not retry" in coll.last_write_warning
    assert coll.upsert(["d6 again"], ids=["d6"], vectors=vecs(1, seed=9)) == ["d6"]
    assert coll.last_write_warning
    assert len(coll) == 15 and top1(coll, vecs(1, seed=9)) == ["d6"]
    assert not set(gone) & set(coll.search_vectors(vecs(20)[1:6], k=20)[0].ids)
    faults.clear()
    coll.close()
    with Collection.open(path, encoder=encoder) as again:
        assert len(again) == again.index.ntotal == 15 and top1(again, vecs(1, seed=9)) == ["d6"]
        assert not set(gone) & set(again.search_vectors(vecs(20)[1:6], k=20)[0].ids)


def test_the_store_itself_full_fails_the_write_and_keeps_the_handle(tmp_path, encoder):
    """A real SQLITE_FULL (the page limit reached mid-insert), not an injected one: the write raises StorageError
    (ENOSPC), SQLite has rolled back, and the same handle writes again once there is room."""
    path = tmp_path / "c"
    coll = make(path, encoder)
    db = coll._store._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    many = [f"a longer text {i} " * 20 for i in range(200)]
    with pytest.raises(StorageError) as raised:
        coll.add(many, ids=[f"m{i}" for i in range(200)], vectors=vecs(200, seed=3))
    assert raised.value.errno == errno.ENOSPC and len(coll) == 20
    db.execute("PRAGMA max_page_count = 1073741823")
    coll.add(many, ids=[f"m{i}" for i in range(200)], vectors=vecs(200, seed=3))
    assert len(coll) == coll.index.ntotal == 220
    coll.close()


def test_training_rebuild_the_disk_refuses_serves_from_memory(tmp_path, encoder, faults):
    """An add that brings an IVF index to its training size rebuilds it; a checkpoint the disk refuses leaves the
    trained index serving from memory (warning), and the next write records it."""
    path = tmp_path / "c"
    coll = make(path, encoder, "IVF4,Flat", n=0)
    faults.inject("checkpoint_file", errno.ENOSPC)
    x = vecs(40, seed=4)
    ids = [f"v{i}" for i in range(40)]
    assert coll.add([f"t{i}" for i in range(40)], ids=ids, vectors=x) == ids
    assert "No space left" in coll.last_write_warning
    assert not coll.index.is_exact_fallback and coll.info()["trained_on"] == 40
    assert top1(coll, x[:3]) == ids[:3]
    faults.clear()
    coll.add(["one more"], ids=["x"], vectors=vecs(1, seed=5))
    assert coll.last_write_warning is None and coll._state.unsaved_training is None
    coll.close()
    with Collection.open(path, encoder=encoder) as again:
        assert again.info()["trained_on"] == 40 and len(again) == again.index.ntotal == 41


def test_compact_the_disk_refuses_raises_and_keeps_serving(tmp_path, encoder, faults):
    path = tmp_path / "c"
    coll = make(path, encoder)
    coll.delete(["d0"])
    faults.inject("checkpoint_file", errno.ENOSPC)
    with pytest.raises(OSError) as raised:  # an explicit checkpoint is a write: it says it failed
        coll.compact()
    assert raised.value.errno == errno.ENOSPC
    assert len(coll) == coll.index.ntotal == 19 and top1(coll, vecs(20)[1:2]) == ["d1"]
