"""Many processes on one collection: no lost, hidden, duplicated or resurrected document, and kill -9 inside writes.

1. Stress: --processes workers (separate Python processes, the library, random vectors: nothing is encoded) add
   batches, delete their own documents and search for theirs and for other processes' documents, for --seconds.
   Then every acknowledged document must be found at top-1 by its own vector, no deleted one may be stored or
   found, ids are unique and the index holds exactly the stored seqs.
2. Kill loop: a child adds batches without pause; the parent watches the folder and sends SIGKILL a random 0-20 ms
   after the first file change (inside the write path: SQLite commit, index checkpoint, manifest), --kill-rounds times
   per index type. After each kill the collection must open, hold only whole batches, hold every acknowledged
   batch, and its index must equal its store.

Writes docs/results/reliability.md:

    python benchmarks/reliability.py [--processes 4] [--seconds 30] [--kill-rounds 20] [--out FILE]

`tests/search/test_multiprocess.py` runs a short version of the same functions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

DIM_SEED = 0
# the section benchmarks/fuzz_service.py writes at the end of the same file: kept when this one rewrites it
FUZZ_SECTION = "## The service under schemathesis"


def vector_for(doc_id: str, dim: int) -> np.ndarray:
    """The document's vector, a function of its id, so the checker can recompute it."""
    seed = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


# -- 1. stress ---------------------------------------------------------------------------------------------------
def worker(path: str, name: str, start_at: float, stop_at: float, out: str) -> None:
    """One stressing process: random adds (60 %), deletes of its own documents (20 %), searches (20 %)."""
    from semspace.search import Collection

    rng = random.Random(name)
    log: dict = {"ops": Counter(), "failures": [], "added": [], "deleted": [], "search_misses": []}
    c = Collection.open(path)
    live: list[str] = []
    counter = 0
    while time.time() < start_at:
        time.sleep(0.01)
    while time.time() < stop_at:
        op = rng.random()
        try:
            if op < 0.6 or not live:
                n = rng.randint(1, 20)
                ids = [f"{name}-{counter + i}" for i in range(n)]
                counter += n
                vectors = np.stack([vector_for(i, c.raw_dim) for i in ids])
                c.add([f"text of {i}" for i in ids], ids=ids, vectors=vectors, metadata=[{"w": name}] * n)
                log["added"] += ids  # acknowledged: add() returned
                live += ids
                log["ops"]["add"] += 1
            elif op < 0.8:
                victims = rng.sample(live, min(len(live), rng.randint(1, 5)))
                c.delete(victims)
                log["deleted"] += victims
                live = [i for i in live if i not in set(victims)]
                log["ops"]["delete"] += 1
            elif op < 0.9:
                doc_id = rng.choice(live)  # read-your-writes
                hit = c.search_vectors(vector_for(doc_id, c.raw_dim)[None], k=1)[0]
                if hit.ids != [doc_id]:
                    log["search_misses"].append(doc_id)
                log["ops"]["search own"] += 1
            else:
                # Another process's document, committed before this search began: must be found unless deleted.
                row = c._store._db.execute("SELECT id, vector FROM documents ORDER BY RANDOM() LIMIT 1").fetchone()
                if row is not None:
                    hit = c.search_vectors(np.frombuffer(row[1], np.float32)[None], k=1)[0]
                    if hit.ids != [row[0]] and c.get_existing([row[0]]):
                        log["search_misses"].append(row[0])
                log["ops"]["search any"] += 1
        except Exception as exc:  # every refused operation is a failure of the contract
            log["failures"].append(f"{type(exc).__name__}: {exc}")
    c.close()
    Path(out).write_text(json.dumps(log))


def verify(path: Path, added: set[str], deleted: set[str]) -> dict:
    """Final check of a collection against the acknowledged adds and deletes."""
    from semspace.search import Collection
    from semspace.search.store import content_fingerprint

    with Collection.open(path) as c:
        stored = [r[0] for r in c._store._db.execute("SELECT id FROM documents")]
        seqs = c._store.all_seqs()
        index_ids = c.index.live_ids()
        live = sorted(added - deleted)
        present = set(stored)
        found_live = [i for i in live if i in present]
        hidden = 0
        for lo in range(0, len(found_live), 512):
            chunk = found_live[lo : lo + 512]
            hits = c.search_vectors(np.stack([vector_for(i, c.raw_dim) for i in chunk]), k=1)
            hidden += sum(h.ids != [i] for h, i in zip(hits, chunk, strict=True))
        return {
            "documents": len(stored),
            "lost": len(set(live) - present),
            "hidden": hidden,
            "resurrected": len(deleted & present),
            "duplicated": (len(stored) - len(present)) + (len(index_ids) - len(set(index_ids.tolist()))),
            "unacknowledged": len(present - added),
            "index == store": bool(content_fingerprint(index_ids) == content_fingerprint(seqs)),
        }


def run_stress(path: Path, processes: int, seconds: float, startup: float = 8.0) -> dict:
    """Run `processes` workers on the collection at `path` for `seconds` and verify it."""
    start_at = time.time() + startup  # every worker has imported and opened the collection by then
    stop_at = start_at + seconds
    outs = [path.parent / f"worker{i}.json" for i in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(path), f"p{i}", str(start_at), str(stop_at), str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, out in enumerate(outs)
    ]
    errors = [child.communicate(timeout=startup + seconds + 300)[1] for child in children]
    for child, err in zip(children, errors, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"worker failed ({child.returncode}): {err.strip()[-2000:]}")
    logs = [json.loads(out.read_text()) for out in outs]
    ops = sum((Counter(log["ops"]) for log in logs), Counter())
    failures = [f for log in logs for f in log["failures"]]
    added = {i for log in logs for i in log["added"]}
    deleted = {i for log in logs for i in log["deleted"]}
    result = verify(path, added, deleted)
    return {
        "processes": processes,
        "seconds": seconds,
        "operations": sum(ops.values()),
        "ops": dict(ops),
        "documents added": len(added),
        "documents deleted": len(deleted),
        "failures": len(failures),
        "failure examples": failures[:3],
        "searches that missed": sum(len(log["search_misses"]) for log in logs),
        **result,
    }


# -- 2. kill -9 inside the write path ----------------------------------------------------------------------------
CHILD = """
import sys, numpy as np
sys.path.insert(0, {here!r})
from reliability import vector_for
from semspace.search import Collection
path, start = sys.argv[1], int(sys.argv[2])
c = Collection.open(path)
rng = np.random.default_rng(start)
print("ready", flush=True)
done = []
for step in range(start, start + 100000):
    ids = [f"s{{step}}-{{i}}" for i in range(20)]
    vectors = np.stack([vector_for(i, c.raw_dim) for i in ids])
    c.add([f"text {{step}} {{i}}" for i in range(20)], ids=ids, vectors=vectors)
    print(step, flush=True)
    done.append(step)
    op = rng.random()
    if op < 0.25 and len(done) > 1:  # replace a whole earlier batch (same ids and vectors, new text)
        old = done[int(rng.integers(len(done) - 1))]
        ids = [f"s{{old}}-{{i}}" for i in range(20)]
        vectors = np.stack([vector_for(i, c.raw_dim) for i in ids])
        c.upsert([f"again {{old}} {{i}}" for i in range(20)], ids=ids, vectors=vectors)
    elif op < 0.4 and len(done) > 1:  # delete a whole earlier batch
        old = done.pop(int(rng.integers(len(done) - 1)))
        print(f"d{{old}}", flush=True)  # a delete in flight: the batch may be there or not after a kill
        c.delete([f"s{{old}}-{{i}}" for i in range(20)])
        print(f"D{{old}}", flush=True)
    elif op < 0.5:
        c.compact()
    elif op < 0.53:
        c.fit_whitening(beta=0.0, gamma=0.0)  # a rotation: every document stays its own nearest neighbour
"""


def _folder_state(path: Path) -> dict[str, tuple[int, int]]:
    return {e.name: (e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(path) if e.is_file()}


def kill_loop(path: Path, rounds: int, seed: int = 0) -> dict:
    """kill -9 a writer (adds, upserts, deletes, compactions, whitening) right after its first file change in the
    folder, `rounds` times; check the collection after each."""
    from semspace.search import Collection
    from semspace.search.store import content_fingerprint

    rng = random.Random(seed)
    script = path.parent / "kill_child.py"
    script.write_text(CHILD.format(here=str(Path(__file__).resolve().parent)))
    acked: set[int] = set()
    deleted: set[int] = set()
    deleting: set[int] = set()
    out = Counter()
    stored: set[str] = set()
    for round_ in range(rounds):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(round_ * 100000)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            out["child failed to start"] += 1
            child.kill()
            continue
        before = _folder_state(path)
        deadline = time.time() + 30
        while _folder_state(path) == before and time.time() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate()
        for line in rest.split():
            if line.isdigit():
                acked.add(int(line))
            elif line.startswith("D") and line[1:].isdigit():
                deleted.add(int(line[1:]))
            elif line.startswith("d") and line[1:].isdigit():
                deleting.add(int(line[1:]))
        out["kills"] += 1
        try:
            c = Collection.open(path)
        except Exception:
            out["unopenable"] += 1
            continue
        with c:
            out["temp files after the next open"] += len(list(path.glob(".*.tmp")))
            out["stray index files after open"] += len(list(path.glob("index.g*.faiss"))) - 1
            stored_ids = [i for i, _, _, _ in c.iter_documents()]
            stored = set(stored_ids)
            out["duplicated"] += len(stored_ids) - len(stored)
            steps = Counter(i.split("-")[0][1:] for i in stored)
            out["partial batches"] += sum(n != 20 for n in steps.values())
            out["lost"] += sum(str(s) not in steps for s in acked - deleted - deleting)
            out["resurrected"] += sum(str(s) in steps for s in deleted)
            if content_fingerprint(c.index.live_ids()) != content_fingerprint(c.store.all_seqs()):
                out["index != store"] += 1
            if stored:
                probes = rng.sample(sorted(stored), min(5, len(stored)))
                hits = c.search_vectors(np.stack([vector_for(p, c.raw_dim) for p in probes]), k=10)
                out["hidden"] += sum(p not in h.ids for p, h in zip(probes, hits, strict=True))
    out["documents"] = len(stored)
    return {
        key: out[key]
        for key in (
            "kills",
            "unopenable",
            "lost",
            "hidden",
            "duplicated",
            "resurrected",
            "partial batches",
            "index != store",
            "documents",
            "temp files after the next open",
            "stray index files after open",
        )
    }


def make_collection(path: Path, encoder, index: str = "Flat") -> None:
    from semspace.search import Collection

    Collection.create(path, encoder=encoder, index=index).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kill-rounds", type=int, default=20)
    parser.add_argument("--kill-indexes", default="Flat;HNSW16;IVF16,PQ32", help="kill-loop indexes, ;-separated")
    parser.add_argument("--out", type=Path, default=Path("docs/results/reliability.md"))
    args = parser.parse_args()

    from semspace.encode import Encoder
    from semspace.evaluate.report import results_header

    encoder = Encoder()  # the bundled 384-d model's settings; nothing is encoded (vectors are given)
    command = "python benchmarks/reliability.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        make_collection(Path(tmp) / "stress" / "c", encoder)
        stress = run_stress(Path(tmp) / "stress" / "c", args.processes, args.seconds)
        kills = {}
        for factory in args.kill_indexes.split(";"):
            folder = Path(tmp) / f"kill-{factory}"
            folder.mkdir()
            make_collection(folder / "c", encoder, factory)
            kills[factory] = kill_loop(folder / "c", args.kill_rounds)
    lines = [
        *results_header("Collections shared by many processes: stress and kill -9", command),
        "",
        f"## Stress: {args.processes} processes × {args.seconds:g} s (library, 384-d random vectors, Flat)",
        "",
        "Each worker adds batches of 1-20 documents (60 %), deletes 1-5 of its own (20 %), searches for one of its",
        "own (10 %) or for any stored document (10 %, committed by any process before the search began).",
        "Then: every acknowledged document searched by its own vector must come first; none deleted may remain.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stress.items() if k not in ("failure examples",)],
        "",
        "## kill -9 inside the write path",
        "",
        "A child adds 20-document batches and, after each, may upsert (25 %) or delete (15 %) a whole earlier batch,",
        "compact (10 %) or re-fit a whitening rotation (3 %); SIGKILL lands 0-50 ms after the first file change in",
        "the folder (the SQLite WAL, an index checkpoint, the manifest, a transform), not on a timer. After each",
        "kill the collection is reopened and checked: only whole batches, every acknowledged batch present unless",
        "its delete was acknowledged, no acknowledged delete back, no id twice, index live ids == stored seqs,",
        "5 random documents each found in the top-10 of their own vector, no temp or stray index file left.",
        "",
        "| measure | " + " | ".join(kills) + " |",
        "|---|" + "---|" * len(kills),
        *[f"| {k} | " + " | ".join(str(kills[f][k]) for f in kills) + " |" for k in next(iter(kills.values()))],
        "",
    ]
    if stress["failure examples"]:
        lines += ["Failure examples:", "", *[f"- `{f}`" for f in stress["failure examples"]], ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    kept = previous[previous.index(FUZZ_SECTION) :] if FUZZ_SECTION in previous else ""
    args.out.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        main()
