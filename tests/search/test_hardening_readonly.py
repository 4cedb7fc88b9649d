"""Reads never write (issue 29): search, info, get and list work on a read-only folder and on a full disk — the
SQLite store opened read-only, the index rebuilt in memory when its checkpoint is missing or stale — and a write
there is refused with one clear error, nothing lost. The tests run as root, who may write anywhere, so a read-only
folder is simulated (`read_only=True`, `os.access` saying no, writes raising EROFS) and, where this machine allows
it, made real: a read-only bind mount and a full tmpfs, each in its own mount namespace (`unshare -m`)."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from semspace.errors import ReadOnlyCollectionError
from semspace.search import Collection
from semspace.search import collection as collection_module

WRITE_STEPS = ("checkpoint_file", "fsync", "rename", "checkpoint_record", "manifest", "tidy")


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semspace import Encoder

    return Encoder(str(tiny_bert_dir))


def vecs(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)


TEXTS = ["a man is playing a guitar", "a dog is running in the park", "a cat eats food", "the plane is small"]


def make(path, encoder, n=40):
    with Collection.create(path, encoder=encoder) as coll:
        texts = [TEXTS[i % 4] + f" {i}" for i in range(n)]
        coll.add(texts, ids=[f"d{i}" for i in range(n)], metadata=[{"n": i} for i in range(n)], vectors=vecs(n))
        coll.delete(["d0"])  # a tombstone and a deletion log to replay
    return path


def snapshot(path):
    """Every file's size and mtime, but SQLite's -wal and -shm, which a read-only connection may create where the
    folder lets it (to see other processes' commits) and which hold no content of their own."""
    files = [p for p in sorted(path.iterdir()) if not p.name.endswith(("-wal", "-shm"))]
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def every_write_fails(faults, number):
    for step in WRITE_STEPS:
        faults.inject(step, number)


def check_reads(coll):
    x = vecs(40)
    assert len(coll) == 39 and coll.info()["count"] == 39 and coll.info()["read_only"] is coll.read_only
    assert [r.ids[0] for r in coll.search_vectors(x[1:4], k=1)] == ["d1", "d2", "d3"]
    assert "d0" not in coll.search_vectors(x[0:1], k=40)[0].ids
    assert coll.search("dog park", k=3, mode="hybrid").ids
    assert coll.search_vectors(x[5:6], k=1, where={"n": 5})[0].ids == ["d5"]
    assert coll.get(["d7"])[0]["metadata"] == {"n": 7}
    assert len(coll.list_documents(limit=100).documents) == 39 and coll.count({"n": {"$gte": 30}}) == 10


@pytest.mark.parametrize("checkpoint", ["kept", "missing"])
def test_read_only_collection_reads_and_refuses_writes(tmp_path, encoder, faults, checkpoint):
    path = make(tmp_path / "c", encoder)
    if checkpoint == "missing":  # a reader must rebuild the index: in memory only
        for file in path.glob("index.g*.faiss"):
            file.unlink()
    before = snapshot(path)
    every_write_fails(faults, errno.EROFS)
    with Collection.open(path, encoder=encoder, read_only=True) as coll:
        assert coll.read_only
        check_reads(coll)
        writes = {
            "add": lambda: coll.add(["new"], ids=["new"], vectors=vecs(1)),
            "upsert": lambda: coll.upsert(["d1 again"], ids=["d1"], vectors=vecs(1)),
            "delete": lambda: coll.delete(["d1"]),
            "compact": coll.compact,
            "fit_whitening": coll.fit_whitening,
            "set_transform": lambda: coll.set_transform(None),
        }
        for name, write in writes.items():
            with pytest.raises(ReadOnlyCollectionError, match="read-only collection: writes are refused"):
                write()
            assert coll.last_write_warning is None, name
        check_reads(coll)
    assert faults.raised == 0 and snapshot(path) == before  # nothing was even tried
    faults.clear()
    with Collection.open(path, encoder=encoder) as writable:  # nothing lost
        assert not writable.read_only and len(writable) == 39
        writable.add(["new"], ids=["new"], vectors=vecs(1, seed=1))


def test_a_folder_that_cannot_be_written_opens_read_only(tmp_path, encoder, monkeypatch):
    path = make(tmp_path / "c", encoder)
    real_access = os.access
    monkeypatch.setattr(
        collection_module.os, "access", lambda p, mode: mode != os.W_OK and real_access(p, mode)
    )  # as on a read-only mount, or for a user without write permission
    with Collection.open(path, encoder=encoder) as coll:
        assert coll.read_only
        check_reads(coll)
        with pytest.raises(ReadOnlyCollectionError):
            coll.add(["x"], ids=["x"], vectors=vecs(1))


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EIO], ids=errno.errorcode.get)
def test_reads_on_a_full_disk_rebuild_in_memory(tmp_path, encoder, faults, number):
    """The checkpoint is missing (a crash, a cleanup) and the disk refuses every write: open and every read work
    from the index rebuilt in memory; once the disk has room, the next write records it."""
    path = make(tmp_path / "c", encoder)
    for file in path.glob("index.g*.faiss"):
        file.unlink()
    every_write_fails(faults, number)
    coll = Collection.open(path, encoder=encoder)
    assert not coll.read_only and faults.raised  # it tried, and let it go
    check_reads(coll)
    assert not list(path.glob("index.g*.faiss")) and coll._state.unsaved_training == 0
    faults.clear()
    coll.add(["after"], ids=["after"], vectors=vecs(1, seed=2))
    assert coll.last_write_warning is None and len(list(path.glob("index.g*.faiss"))) == 1
    coll.close()
    with Collection.open(path, encoder=encoder) as again:
        assert len(again) == again.index.ntotal == 40


def test_a_read_after_a_failed_write_catches_up_on_a_full_disk(tmp_path, encoder, faults):
    """The issue's case: a write's index step fails (disk full), so the handle's next read reloads — and must not
    need to write to do so."""
    path = make(tmp_path / "c", encoder)
    coll = Collection.open(path, encoder=encoder)
    faults.inject("apply", errno.ENOSPC, once=True)
    every_write_fails(faults, errno.ENOSPC)
    coll.add(["new"], ids=["new"], vectors=vecs(1, seed=3))
    assert coll.last_write_warning and coll._state.generation == -1  # the index is behind: the next read reloads
    assert coll.search_vectors(vecs(1, seed=3), k=1)[0].ids == ["new"]
    assert coll.info()["index_vectors"] == len(coll) == 40
    coll.close()


# -- the real thing: a read-only bind mount and a full tmpfs, each in a private mount namespace ------------------
def _can_mount(tmp_path) -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {probe}"], capture_output=True, timeout=30
    )
    return result.returncode == 0


@pytest.fixture
def mountable(tmp_path):
    if not _can_mount(tmp_path):
        pytest.skip("needs root and mount namespaces (unshare -m) to mount a read-only or full file system")


def in_namespace(setup: str, *command: str) -> subprocess.CompletedProcess:
    """`command` in a private mount namespace after the shell `setup` (its mounts vanish with it)."""
    script = f"{setup} && exec " + " ".join(f"'{c}'" for c in command)
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300)


def semspace_on_read_only(src, mount, *args):
    return in_namespace(f"mount --bind -o ro {src} {mount}", sys.executable, "-m", "semspace", *args)


def test_cli_on_a_read_only_mount(tmp_path, encoder, mountable):
    src, mount = make(tmp_path / "c", encoder), tmp_path / "ro"
    mount.mkdir()
    before = snapshot(src)
    for args in (["info", str(mount)], ["get", str(mount), "d3"], ["search", str(mount), "dog"], ["list", str(mount)]):
        result = semspace_on_read_only(src, mount, "index", *args)
        assert result.returncode == 0, result.stderr
    info = json.loads(semspace_on_read_only(src, mount, "index", "info", str(mount)).stdout)
    assert info["read_only"] is True and info["count"] == 39
    (tmp_path / "new.txt").write_text("a new text\n")
    for args in (["delete", str(mount), "d3"], ["add", str(mount), str(tmp_path / "new.txt")], ["compact", str(mount)]):
        result = semspace_on_read_only(src, mount, "index", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("error: read-only collection: writes are refused"), lines[0]
    assert snapshot(src) == before


FULL_DISK = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from semspace import Encoder
    from semspace.errors import StorageError
    from semspace.search import Collection

    root, model = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    coll = Collection.create(os.path.join(root, "c"), encoder=Encoder(model))
    told, warned, failed = [], 0, 0
    def add(step, n):
        global warned, failed
        ids = [f"s{step}-{i}" for i in range(n)]
        try:
            coll.add([f"text {step} {i}" for i in range(n)], ids=ids, vectors=rng.normal(size=(n, 32)).astype("f4"))
        except StorageError as exc:
            assert exc.errno == 28, exc
            failed += 1
            return
        told.extend(ids)
        warned += coll.last_write_warning is not None
    add(0, 300)
    with open(os.path.join(root, "filler"), "wb") as filler:  # fill the disk, then free a little
        try:
            while True:
                filler.write(bytes(65536))
                filler.flush()
        except OSError:
            pass
    os.truncate(os.path.join(root, "filler"), os.path.getsize(os.path.join(root, "filler")) - 500_000)
    for step in range(1, 30):
        add(step, 100)
    probe = coll.search_vectors(rng.normal(size=(2, 32)).astype("f4"), k=5)
    info = coll.info()
    coll.close()
    again = Collection.open(os.path.join(root, "c"))  # the disk still full
    stored = sorted(d["id"] for d in again.list_documents(limit=10_000).documents)
    hits = again.search_vectors(np.zeros((1, 32), "f4") + 1, k=3)[0].ids
    print(json.dumps({"told": sorted(told), "stored": stored, "warned": warned, "failed": failed,
                      "searched": all(r.ids for r in probe), "count": info["count"], "vectors": info["index_vectors"],
                      "reopened": [len(again), again.index.ntotal], "hits": len(hits)}))
    """
)


def test_a_full_tmpfs_keeps_its_word(tmp_path, tiny_bert_dir, mountable):
    """Adds into a 3 MB tmpfs until it is full: every add either raised StorageError (ENOSPC) and stored nothing, or
    returned and is stored — some with a warning when only their checkpoint did not fit — and search works
    throughout and after reopening."""
    script, disk = tmp_path / "full.py", tmp_path / "disk"
    script.write_text(FULL_DISK)
    disk.mkdir()
    result = in_namespace(f"mount -t tmpfs -o size=3m tmpfs {disk}", sys.executable, str(script), str(disk),
                          str(tiny_bert_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] > 0  # the disk did fill up
    assert report["stored"] == report["told"]  # what the caller was told is stored, and no others
    assert report["searched"] and report["count"] == report["vectors"] == len(report["told"])
    assert report["reopened"] == [len(report["told"])] * 2 and report["hits"] == 3
