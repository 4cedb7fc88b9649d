"""On-disk vector stores side by side: semspace `Collection` (Flat, HNSW, IVF-PQ) vs Chroma and LanceDB, with raw
in-memory FAISS (same index types, no persistence) as the limit. Every system gets the same precomputed float32
384-d vectors, the same texts ("doc i") and metadata ({"bucket": i % 10}), 2 threads, and its own processes.

Measured at each N of --sizes: bulk ingest rate (batches of --batch through the public add call), the post-ingest
step (semspace `compact()` when the method exists, LanceDB `optimize()` and its IVF-PQ index build), peak RSS of the
ingesting process, disk bytes per vector, cold open (a fresh process opens the store and answers one query),
single-query k=10 latency p50/p99 with and without a metadata filter (where bucket = 3; rounds interleaved across
systems), recall@10 against exact brute force, 1-document add and delete latency, and how long until another
process, which had the store open and had searched before the write, finds the new document.

Vectors: the unique STS-B sentences encoded once with the bundled encoder (cached under --cache-dir), then N
vectors = a random one of them + Gaussian noise (--sigma per dimension), L2-normalised, seed 0; queries and added
documents are other perturbed STS-B vectors. Random Gaussian vectors when the STS-B file is absent (said in the
report).

    python benchmarks/store.py [--sizes 10000,100000] [--systems semspace-flat,chroma,...] [--out FILE]
    python benchmarks/store.py --quick        # N=2,000, few repeats, ~2-3 min; writes to a temp folder

Needs the peers in the environment, `pip install -e '.[bench]' -c benchmarks/locks/bench.txt` (chromadb, lancedb,
at the versions store.md was measured with; torch==2.13.0 first, from the same lock), or --skip-peers. Run alone,
under the heavy-job lock: two heavy jobs at once spoil timings. Writes docs/results/store.md and the raw numbers in
docs/results/store.json.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

SEED = 0
DIM = 384
K = 10
TRAIN_MAX = 50_000  # as semspace.search.index: a trained FAISS index sees at most this many vectors
SYSTEMS = (
    "semspace-flat",
    "semspace-hnsw",
    "semspace-ivfpq",
    "chroma",
    "lancedb",
    "lancedb-ivfpq",
    "faiss-flat",
    "faiss-hnsw",
    "faiss-ivfpq",
)
PEERS = ("chroma", "lancedb", "lancedb-ivfpq")  # the "best peer" of a ratio is one of these (raw FAISS is the limit)
PEER_PACKAGES = {"chroma": "chromadb", "lancedb": "lancedb", "lancedb-ivfpq": "lancedb"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS", "LANCE_CPU_THREADS")


# -- vectors -----------------------------------------------------------------------------------------------------
def base_vectors(data_root: Path, cache_dir: Path) -> tuple[np.ndarray, str]:
    """Unit-norm STS-B sentence vectors (encoded once, cached by encoder spec + text hash), or Gaussian ones."""
    path = data_root / "stsbenchmark_sbert" / "stsbenchmark.tsv.gz"
    if not path.is_file():
        x = np.random.default_rng(SEED).normal(size=(20_000, DIM)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True), f"random Gaussian ({path} not found)"
    from semspace import Encoder
    from semspace.data.sts import read_stsbenchmark

    texts = list(dict.fromkeys(s for pairs in read_stsbenchmark(path).values() for s in pairs.sentences()))
    encoder = Encoder()
    key = hashlib.sha256(json.dumps([encoder.spec, texts]).encode()).hexdigest()[:16]
    cache = cache_dir / f"stsb-{key}.npy"
    if cache.is_file():
        x = np.load(cache)
    else:
        print(f"encoding {len(texts):,} STS-B sentences once (cached in {cache})", file=sys.stderr)
        x = encoder.encode(texts, show_progress_bar=False).astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, x)
        tmp.replace(cache)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32), f"{len(x):,} unique STS-B sentences, {encoder.spec['model']} ({cache.name})"


def perturbed(base: np.ndarray, n: int, stream: int, sigma: float) -> np.ndarray:
    rng = np.random.default_rng([SEED, stream])
    x = base[rng.integers(len(base), size=n)] + rng.normal(scale=sigma, size=(n, base.shape[1])).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_corpus(path: Path, base: np.ndarray, n: int, sigma: float, chunk: int = 10_000) -> None:
    """Raw float32 rows; chunk c is drawn from its own seed, so every N is a prefix of a larger N's corpus."""
    with open(path, "wb") as handle:
        for c, lo in enumerate(range(0, n, chunk)):
            perturbed(base, min(chunk, n - lo), 1000 + c, sigma).tofile(handle)


def read_rows(path: str, lo: int, hi: int) -> np.ndarray:
    return np.fromfile(path, dtype=np.float32, count=(hi - lo) * DIM, offset=lo * DIM * 4).reshape(-1, DIM)


def exact_topk(path: str, n: int, queries: np.ndarray, filtered: bool, block: int = 65_536) -> np.ndarray:
    """Brute-force top-k doc numbers by cosine (all vectors are unit-norm), over all docs or bucket 3 only."""
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.full((len(queries), K), -1, np.int64)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        scores = queries @ read_rows(path, lo, hi).T
        if filtered:
            scores[:, (np.arange(lo, hi) % 10) != 3] = -np.inf
        all_s = np.hstack([best_s, scores])
        all_i = np.hstack([best_i, np.broadcast_to(np.arange(lo, hi), scores.shape)])
        order = np.argsort(-all_s, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(all_s, order, 1), np.take_along_axis(all_i, order, 1)
    return best_i


# -- the systems (run inside worker processes) -------------------------------------------------------------------
def doc_number(doc_id: str | int) -> int:
    if isinstance(doc_id, int):
        return doc_id
    return int(doc_id[1:]) if doc_id.startswith("d") else -1


class SemspaceStore:
    persistent = True

    def __init__(self, cfg: dict) -> None:
        import faiss  # noqa: F401  semspace imports it on the first open: here, so that import time stays apart

        from semspace.search import Collection

        self.cfg, self.Collection, self.coll = cfg, Collection, None

    def create(self) -> None:
        from semspace import Encoder

        self.coll = self.Collection.create(self.cfg["path"], encoder=Encoder(), index=self.cfg["factory"])

    def open(self, reader: bool = False) -> None:
        # No encoder: it loads lazily and only to encode text; every vector here is given.
        self.coll = self.Collection.open(self.cfg["path"])

    def add(self, ids: list[str], texts: list[str], buckets: list[int], x: np.ndarray) -> None:
        self.coll.add(texts, ids=ids, metadata=[{"bucket": b} for b in buckets], vectors=x)

    def post_ingest(self) -> list[tuple[str, float]]:
        if not hasattr(self.coll, "compact"):
            return []
        started = time.perf_counter()
        self.coll.compact()
        return [("compact", time.perf_counter() - started)]

    def details(self) -> dict:
        info = self.coll.info()
        return {k: info.get(k) for k in ("count", "index", "index_vectors", "ivf_exact_fallback", "bytes_per_vector")}

    def search(self, q: np.ndarray, filtered: bool) -> list:
        return self.coll.search_vectors(q[None], k=K, where={"bucket": 3} if filtered else None)[0].ids

    def delete(self, doc_id: str) -> None:
        self.coll.delete([doc_id])

    def close(self) -> None:
        self.coll.close()


class ChromaStore:
    persistent = True

    def __init__(self, cfg: dict) -> None:
        import chromadb

        self.cfg, self.chromadb, self.col = cfg, chromadb, None

    def _client(self):
        from chromadb.config import Settings

        return self.chromadb.PersistentClient(self.cfg["path"], settings=Settings(anonymized_telemetry=False))

    def create(self) -> None:
        self.client = self._client()
        self.col = self.client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )

    def open(self, reader: bool = False) -> None:
        self.client = self._client()
        self.col = self.client.get_collection("bench", embedding_function=None)

    def add(self, ids: list[str], texts: list[str], buckets: list[int], x: np.ndarray) -> None:
        step = self.client.get_max_batch_size()
        for lo in range(0, len(ids), step):
            sl = slice(lo, lo + step)
            metas = [{"bucket": b} for b in buckets[sl]]
            self.col.add(ids=ids[sl], embeddings=x[sl], metadatas=metas, documents=texts[sl])

    def post_ingest(self) -> list[tuple[str, float]]:
        return []

    def details(self) -> dict:
        return {"count": self.col.count(), "configuration": self.col.configuration.get("hnsw")}

    def search(self, q: np.ndarray, filtered: bool) -> list:
        # The same payload as a semspace result: ids, texts, metadata and scores.
        r = self.col.query(
            query_embeddings=q[None],
            n_results=K,
            where={"bucket": 3} if filtered else None,
            include=["documents", "metadatas", "distances"],
        )
        return r["ids"][0]

    def delete(self, doc_id: str) -> None:
        self.col.delete(ids=[doc_id])

    def close(self) -> None:
        self.col = self.client = None


class LanceStore:
    persistent = True

    def __init__(self, cfg: dict) -> None:
        import lancedb
        import pyarrow as pa

        self.cfg, self.lancedb, self.pa, self.table = cfg, lancedb, pa, None
        self.schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("text", pa.string()),
                pa.field("bucket", pa.int64()),
                pa.field("vector", pa.list_(pa.float32(), DIM)),
            ]
        )

    def create(self) -> None:
        self.table = self.lancedb.connect(self.cfg["path"]).create_table("bench", schema=self.schema)

    def open(self, reader: bool = False) -> None:
        # Without read_consistency_interval a LanceDB table never sees another process's writes; 0 = check each read.
        consistency = timedelta(0) if reader else None
        db = self.lancedb.connect(self.cfg["path"], read_consistency_interval=consistency)
        self.table = db.open_table("bench")

    def add(self, ids: list[str], texts: list[str], buckets: list[int], x: np.ndarray) -> None:
        vectors = self.pa.FixedSizeListArray.from_arrays(self.pa.array(x.reshape(-1), self.pa.float32()), DIM)
        columns = [self.pa.array(ids), self.pa.array(texts), self.pa.array(buckets, self.pa.int64()), vectors]
        self.table.add(self.pa.Table.from_arrays(columns, schema=self.schema))

    def post_ingest(self) -> list[tuple[str, float]]:
        steps = []
        started = time.perf_counter()
        self.table.optimize(cleanup_older_than=timedelta(0))  # merge the per-batch fragments, drop old versions
        steps.append(("optimize", time.perf_counter() - started))
        ivf = self.cfg.get("lance_ivf")
        if ivf and self.cfg["n"] >= ivf["min_rows"]:
            started = time.perf_counter()
            self.table.create_index(
                metric="cosine",
                index_type="IVF_PQ",
                num_partitions=ivf["partitions"],
                num_sub_vectors=ivf["sub_vectors"],
            )
            steps.append(("index build", time.perf_counter() - started))
        return steps

    def details(self) -> dict:
        return {"count": self.table.count_rows(), "indices": [str(i) for i in self.table.list_indices()]}

    def search(self, q: np.ndarray, filtered: bool) -> list:
        query = self.table.search(q).distance_type("cosine").limit(K).select(["id", "text", "bucket"])
        if self.cfg.get("lance_ivf"):
            query = query.nprobes(self.cfg["lance_ivf"]["nprobes"])
        if filtered:
            query = query.where("bucket = 3", prefilter=True)
        return query.to_arrow()["id"].to_pylist()

    def delete(self, doc_id: str) -> None:
        self.table.delete(f"id = '{doc_id}'")

    def close(self) -> None:
        self.table = None


class FaissStore:
    """The limit: the same FAISS index type in memory (no persistence, no texts), semspace's search settings."""

    persistent = False

    def __init__(self, cfg: dict) -> None:
        import faiss

        faiss.omp_set_num_threads(cfg["threads"])
        self.cfg, self.faiss, self.index = cfg, faiss, None

    def create(self) -> None:
        f = self.faiss
        self.base = f.index_factory(DIM, self.cfg["factory"], f.METRIC_INNER_PRODUCT)
        self.ivf = f.try_extract_index_ivf(self.base)
        if self.ivf is not None and isinstance(f.downcast_index(self.ivf), f.IndexIVFPQ):
            f.downcast_index(self.ivf).do_polysemous_training = False  # as semspace: no Hamming pre-filter
        self.index = self.base if self.ivf is not None else f.IndexIDMap2(self.base)
        self.hnsw = "HNSW" in self.cfg["factory"]
        self.allowed = None

    def add(self, ids: list[str], texts: list[str], buckets: list[int], x: np.ndarray) -> None:
        if not self.base.is_trained:  # inside the timed ingest: trained once on a sample of all N (the limit's edge)
            n = self.cfg["n"]
            rows = np.sort(np.random.default_rng(SEED).choice(n, min(n, TRAIN_MAX), replace=False))
            self.base.train(
                np.ascontiguousarray(np.memmap(self.cfg["vectors"], np.float32, "r").reshape(-1, DIM)[rows])
            )
        self.index.add_with_ids(x, np.array([doc_number(i) if i[0] == "d" else 10**9 + int(i[1:]) for i in ids]))

    def post_ingest(self) -> list[tuple[str, float]]:
        return []

    def details(self) -> dict:
        return {"count": int(self.index.ntotal)}

    def _params(self, filtered: bool):
        f = self.faiss
        if filtered and self.allowed is None:  # the bucket-3 id set, built once (a limit, not a filter engine)
            self.allowed = f.IDSelectorBatch(np.arange(3, self.cfg["n"], 10, dtype=np.int64))
        sel = self.allowed if filtered else None
        if self.ivf is not None:
            return f.SearchParametersIVF(sel=sel, nprobe=min(self.cfg["nprobe"], self.ivf.nlist))
        if self.hnsw:
            return f.SearchParametersHNSW(sel=sel, efSearch=self.cfg["ef_search"])
        return f.SearchParameters(sel=sel)

    def search(self, q: np.ndarray, filtered: bool) -> list:
        _, ids = self.index.search(q[None], K, params=self._params(filtered))
        return [int(i) for i in ids[0] if i >= 0]

    def delete(self, doc_id: str) -> None:
        if self.hnsw:
            raise NotImplementedError("FAISS HNSW cannot remove vectors")
        self.index.remove_ids(np.array([doc_number(doc_id)], dtype=np.int64))

    def close(self) -> None:
        self.index = None


ADAPTERS = {"semspace": SemspaceStore, "chroma": ChromaStore, "lancedb": LanceStore, "faiss": FaissStore}


# -- worker process: one system, commands as JSON lines on stdin --------------------------------------------------
def memory_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))


def handle(store, cfg: dict, queries: np.ndarray, extra: np.ndarray, cmd: dict) -> dict:
    op = cmd["op"]
    if op == "ingest":
        started = time.perf_counter()
        store.create()
        create_s = time.perf_counter() - started
        rss_base = memory_kb("VmRSS")
        n, batch, added = cfg["n"], cmd["batch"], 0
        started = time.perf_counter()
        with open(cmd["progress"], "w", encoding="utf-8") as progress:
            for lo in range(0, n, batch):
                hi = min(n, lo + batch)
                store.add(
                    [f"d{i}" for i in range(lo, hi)],
                    [f"doc {i}" for i in range(lo, hi)],
                    [i % 10 for i in range(lo, hi)],
                    read_rows(cfg["vectors"], lo, hi),
                )
                added = hi
                progress.write(f"{added} {time.perf_counter() - started:.3f}\n")
                progress.flush()
        add_s = time.perf_counter() - started
        post = store.post_ingest()
        details = store.details()
        started = time.perf_counter()
        if store.persistent:
            store.close()
        close_s = time.perf_counter() - started
        return {
            "count": added,
            "create_s": create_s,
            "add_s": add_s,
            "post": post,
            "close_s": close_s,
            "details": details,
            "rss_base_kb": rss_base,
            "rss_peak_kb": memory_kb("VmHWM"),
        }
    if op == "open":
        started = time.perf_counter()
        store.open(reader=cmd.get("reader", False))
        return {"open_s": time.perf_counter() - started}
    if op == "open_query":
        started = time.perf_counter()
        store.open()
        opened = time.perf_counter()
        store.search(queries[cmd["q"]], False)
        return {"open_s": opened - started, "query_s": time.perf_counter() - opened}
    if op == "search":
        lat, ids = [], []
        if cmd.get("warm"):  # one unmeasured query: this process's caches were cold after the other systems' turns
            store.search(queries[cmd["q"][0]], cmd["filtered"])
        for i in cmd["q"]:
            started = time.perf_counter()
            found = store.search(queries[i], cmd["filtered"])
            lat.append(time.perf_counter() - started)
            ids.append(found)
        return {"lat": lat, "ids": ids}
    if op in ("add1", "delete1"):
        started = time.perf_counter()
        try:
            if op == "add1":
                store.add([cmd["id"]], [f"new {cmd['id']}"], [cmd["row"] % 10], extra[cmd["row"]][None])
            else:
                store.delete(cmd["id"])
        except NotImplementedError as exc:
            return {"unsupported": str(exc)}
        return {"s": time.perf_counter() - started}
    if op == "watch":  # search for the new document until it is found (or the deadline)
        q, started, first, tries = extra[cmd["row"]], time.perf_counter(), None, 0
        while True:
            t = time.perf_counter()
            seen = cmd["id"] in store.search(q, False)
            tries += 1
            if first is None:
                first = {"first_s": time.perf_counter() - t, "first_seen": seen}
            waited = time.perf_counter() - started
            if seen or waited > cmd["deadline_s"]:
                return {**first, "visible_s": waited if seen else None, "tries": tries}
            time.sleep(0.005)
    raise ValueError(f"unknown op {op!r}")


def worker_main(cfg: dict) -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints goes to the log, not into the protocol
    started = time.perf_counter()
    store = ADAPTERS[cfg["kind"]](cfg)
    queries = np.fromfile(cfg["queries"], np.float32).reshape(-1, DIM)
    extra = np.fromfile(cfg["extra"], np.float32).reshape(-1, DIM)
    out.write(json.dumps({"ready": True, "import_s": time.perf_counter() - started}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            result = handle(store, cfg, queries, extra, cmd)
        except Exception as exc:  # reported to the parent, which records it in the report
            import traceback

            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        out.write(json.dumps(result) + "\n")


# -- the parent's handle on a worker -----------------------------------------------------------------------------
class WorkerError(RuntimeError):
    pass


class Worker:
    def __init__(self, cfg: dict, log: Path, env: dict) -> None:
        self.log_path = log
        with open(log, "a", encoding="utf-8") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "worker", json.dumps(cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills it and its helpers
            )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready: dict = {}

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def receive(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"no answer within {timeout:g} s (killed)") from None
        if line is None:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise WorkerError(f"worker exited ({self.proc.wait()}): {' | '.join(tail)}")
        return json.loads(line)

    def call(self, op: str, timeout: float, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        answer = self.receive(timeout)
        if "error" in answer:
            raise WorkerError(answer["error"])
        return answer

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


# -- the run -----------------------------------------------------------------------------------------------------
def system_config(name: str, n: int, folder: Path, files: dict, args: argparse.Namespace) -> dict:
    kind = name.split("-")[0]
    factory = {"flat": "Flat", "hnsw": args.hnsw, "ivfpq": args.ivf}.get(name.split("-")[-1])
    cfg = {
        "kind": kind,
        "factory": factory,
        "path": str(folder / name),
        "n": n,
        "threads": args.threads,
        "nprobe": 32,
        "ef_search": 128,
        **files,
    }  # nprobe/efSearch: semspace's settings
    if name == "lancedb-ivfpq":
        nlist = int(re.search(r"IVF(\d+)", args.ivf).group(1))
        partitions = max(1, min(nlist, n // 39))  # FAISS's rule of ≥ 39 training points per centroid
        pq = re.search(r"PQ(\d+)", args.ivf)
        cfg["lance_ivf"] = {
            "min_rows": args.lance_index_min,
            "partitions": partitions,
            "sub_vectors": int(pq.group(1)) if pq else 32,
            "nprobes": min(32, partitions),
        }
    return cfg


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": float(np.median(values)), "max": max(values), "n": len(values)}


def run_size(n: int, systems: list[str], files: dict, truth: dict, rotate: int, args, env) -> dict:
    folder = Path(files["workdir"]) / f"n{n}"
    folder.mkdir()
    res: dict[str, dict] = {s: {"errors": []} for s in systems}
    order = systems[rotate % len(systems) :] + systems[: rotate % len(systems)]
    live: dict[str, Worker] = {}
    spawned: list[Worker] = []  # every worker of this size, killed at the end if still running

    def fail(system: str, phase: str, exc: Exception) -> None:
        res[system]["errors"].append(f"{phase}: {exc}")
        print(f"  N={n:,} {system}: {phase} FAILED: {exc}", file=sys.stderr)

    def spawn(system: str) -> Worker:
        log = folder.parent / f"{system}-n{n}.log"
        worker = Worker(system_config(system, n, folder, files, args), log, env)
        spawned.append(worker)
        worker.ready = worker.receive(args.op_timeout)
        return worker

    try:
        for system in order:  # 1. bulk ingest, one system at a time, each in a fresh process
            progress, worker = folder / f"{system}.progress", None
            try:
                worker = spawn(system)
                r = worker.call("ingest", args.ingest_timeout, batch=args.batch, progress=str(progress))
            except WorkerError as exc:
                done = progress.read_text().split() if progress.is_file() else []
                if len(done) >= 2:
                    exc = WorkerError(f"{exc}; {done[-2]} vectors added after {float(done[-1]):.0f} s")
                fail(system, "ingest", exc)
                if worker is not None:
                    worker.kill()
                continue
            res[system]["ingest"] = r
            if ADAPTERS[system.split("-")[0]].persistent:
                worker.close()
                res[system]["disk_bytes"] = du_bytes(folder / system)
            else:
                live[system] = worker
            post = ", ".join(f"{name} {s:.1f} s" for name, s in r["post"])
            print(f"  N={n:,} {system}: {n / r['add_s']:,.0f} vectors/s {post}", file=sys.stderr)
        ok = [s for s in order if "ingest" in res[s]]
        stored = [s for s in ok if ADAPTERS[s.split("-")[0]].persistent]
        for rep in range(args.cold_repeats):  # 2. cold open + first query, fresh processes, interleaved
            for system in stored[rep % max(1, len(stored)) :] + stored[: rep % max(1, len(stored))]:
                try:
                    worker = spawn(system)
                    r = {**worker.ready, **worker.call("open_query", args.op_timeout, q=rep)}
                    res[system].setdefault("cold", []).append(r)
                except WorkerError as exc:
                    fail(system, "cold open", exc)
                spawned[-1].close()  # this cold worker (spawn() registered it first), or an already ended one
        for system in stored:  # 3. search workers, all open at once so that rounds can interleave
            try:
                live[system] = spawn(system)
                live[system].call("open", args.op_timeout)
            except WorkerError as exc:
                fail(system, "open", exc)
                spawned[-1].kill()  # the one spawn() registered for this system
                live.pop(system, None)
        searching = [s for s in ok if s in live]
        for system in searching:  # warm-up: first calls load lazily built structures; not measured
            try:
                for filtered in (False, True):
                    live[system].call("search", args.op_timeout, q=list(range(3)), filtered=filtered)
            except WorkerError as exc:
                fail(system, "warm-up", exc)
                live.pop(system).kill()
        searching = [s for s in searching if s in live]
        chunk = max(1, args.queries // 10)
        for mode, filtered in (("plain", False), ("filtered", True)) if searching else ():
            spent = dict.fromkeys(searching, 0.0)
            for j, lo in enumerate(range(0, args.queries, chunk)):
                q = list(range(lo, min(args.queries, lo + chunk)))
                for system in searching[j % len(searching) :] + searching[: j % len(searching)]:
                    if spent[system] > args.search_budget or system not in live:
                        continue
                    try:
                        r = live[system].call("search", args.op_timeout, q=q, filtered=filtered, warm=True)
                    except WorkerError as exc:
                        fail(system, f"search ({mode})", exc)
                        live.pop(system).kill()
                        continue
                    spent[system] += sum(r["lat"])
                    got = res[system].setdefault("search", {}).setdefault(mode, {"lat": [], "recall": []})
                    got["lat"] += r["lat"]
                    got["recall"] += [
                        len({doc_number(i) for i in ids} & set(truth[mode][qi].tolist())) / K
                        for qi, ids in zip(q, r["ids"], strict=True)
                    ]
        for system in ok:  # 4. writes, one system at a time: its writer + a reader process that searched before
            if system in live:
                write_phase(system, n, live.pop(system), spawn, res[system], fail, args)
    finally:
        for worker in spawned:
            worker.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return res


def write_phase(system: str, n: int, writer: Worker, spawn, out: dict, fail, args) -> None:
    reader = None
    try:
        if ADAPTERS[system.split("-")[0]].persistent:
            reader = spawn(system)
            reader.call("open", args.op_timeout, reader=True)
            reader.call("search", args.op_timeout, q=[0], filtered=False)
        w = out["writes"] = {"add_s": [], "delete_s": [], "visible": []}
        started = time.perf_counter()
        for r in range(args.write_repeats):
            if r and time.perf_counter() - started > args.write_budget:
                break
            w["add_s"].append(writer.call("add1", args.op_timeout, id=f"n{r}", row=r)["s"])
            if reader is not None:
                w["visible"].append(
                    reader.call("watch", args.op_timeout, id=f"n{r}", row=r, deadline_s=args.visibility_timeout)
                )
            d = writer.call("delete1", args.op_timeout, id=f"d{(r * 7919 + 1) % n}")
            if "unsupported" in d:
                w["delete_unsupported"] = d["unsupported"]
            else:
                w["delete_s"].append(d["s"])
    except WorkerError as exc:
        fail(system, "writes", exc)
    finally:
        for worker in (writer, reader):
            if worker is not None:
                worker.close()


# -- report ------------------------------------------------------------------------------------------------------
def versions() -> str:
    import sqlite3

    names = ("semspace", "numpy", "faiss-cpu", "torch", "chromadb", "lancedb", "pyarrow")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    import faiss

    return ", ".join(found) + f", SQLite {sqlite3.sqlite_version}; FAISS build: {faiss.get_compile_options()}"


def headline(system_res: dict, key: str) -> tuple[float | None, str]:
    """The number a ratio uses and the table cell for one (system, size)."""
    r = system_res
    ing = r.get("ingest")
    if key == "ingest":
        return (ing["count"] / ing["add_s"], f"{ing['count'] / ing['add_s']:,.0f}") if ing else (None, "–")
    if key == "post":
        if not ing or not ing["post"]:
            return None, "–"
        total = sum(s for _, s in ing["post"])
        return total, "; ".join(f"{name} {s:.2f} s" for name, s in ing["post"])
    if key == "end_to_end":
        if not ing:
            return None, "–"
        rate = ing["count"] / (ing["add_s"] + sum(s for _, s in ing["post"]) + ing["close_s"])
        return rate, f"{rate:,.0f}"
    if key == "rss":
        if not ing:
            return None, "–"
        peak, base = ing["rss_peak_kb"] / 1024, ing["rss_base_kb"] / 1024
        return peak - base, f"{peak:,.0f} (+{peak - base:,.0f} over {base:,.0f})"
    if key == "disk":
        if "disk_bytes" not in r:
            return None, "– (in memory)" if ing else "–"
        per = r["disk_bytes"] / ing["count"]
        return per, f"{per:,.0f}"
    if key == "cold":
        if not r.get("cold"):
            return None, "–"
        s = spread([(c["open_s"] + c["query_s"]) * 1e3 for c in r["cold"]])
        imp = np.median([c["import_s"] for c in r["cold"]])
        return s["median"], f"{s['median']:,.1f} ({s['min']:,.1f}–{s['max']:,.1f}); import {imp:.2f} s"
    if key.startswith(("lat_", "recall_")):
        got = r.get("search", {}).get(key.split("_")[1])
        if not got:
            return None, "–"
        if key.startswith("recall_"):
            return float(np.mean(got["recall"])), f"{np.mean(got['recall']):.3f}"
        lat = np.array(got["lat"]) * 1e3
        p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
        return float(p50), f"{p50:,.2f} / {p99:,.2f} (n={len(lat)})"
    w = r.get("writes")
    if key in ("add", "delete"):
        if key == "delete" and w and "delete_unsupported" in w:
            return None, "n/a (cannot remove)"
        if not w or not w[f"{key}_s"]:
            return None, "–"
        s = spread([x * 1e3 for x in w[f"{key}_s"]])
        return s["median"], f"{s['median']:,.2f} ({s['min']:,.2f}–{s['max']:,.2f}, n={s['n']})"
    if key == "visible":
        if not w or not w["visible"]:
            return None, "– (in memory)" if w else "–"
        seen = [v["visible_s"] * 1e3 for v in w["visible"] if v["visible_s"] is not None]
        first = np.median([v["first_s"] * 1e3 for v in w["visible"]])
        on_first = sum(v["first_seen"] for v in w["visible"])
        if not seen:
            return None, f"never within {max(v['tries'] for v in w['visible'])} searches (first {first:,.1f})"
        s = spread(seen)
        cell = f"{s['median']:,.1f} ({s['min']:,.1f}–{s['max']:,.1f}); first search {first:,.1f}"
        return s["median"], cell + f", seen on it {on_first}/{len(w['visible'])}"
    raise KeyError(key)


QUANTITIES = [  # key, title, higher is better
    ("ingest", "Bulk ingest (add calls only), vectors/s", True),
    ("post", "Post-ingest step (compact / optimize / index build), s", False),
    ("end_to_end", "Ingest end to end (adds + post-ingest step + close), vectors/s", True),
    (
        "rss",
        "Peak RSS of the ingesting process, MiB (+ growth over its RSS after imports and create; ratios: growth)",
        False,
    ),
    ("disk", "Disk bytes per vector (du of the store's folder / N, after ingest)", False),
    ("cold", "Cold open: fresh process opens the store + answers one query, ms (min–max; import time apart)", False),
    ("lat_plain", "Search k=10, one query per call, ms p50 / p99", False),
    ("lat_filtered", "Search k=10 with where bucket = 3 (10 % of documents), ms p50 / p99", False),
    ("recall_plain", "Recall@10 vs exact brute force", True),
    ("recall_filtered", "Recall@10 vs exact brute force, filtered (bucket = 3)", True),
    ("add", "Add one document, ms median (min–max)", False),
    ("delete", "Delete one document, ms median (min–max)", False),
    (
        "visible",
        "Another process sees the new document: ms from the add's return to the first search that finds it"
        " (median, min–max); latency of its first search after the write",
        False,
    ),
]


def tables(results: dict, systems: list[str]) -> list[str]:
    sizes = list(results)
    lines = []
    for key, title, higher in QUANTITIES:
        lines += ["", f"### {title}", "", "| system | " + " | ".join(f"N={n:,}" for n in sizes) + " |"]
        lines.append("|---|" + "---|" * len(sizes))
        values = {s: {n: headline(results[n].get(s, {"errors": []}), key) for n in sizes} for s in systems}
        for s in systems:
            lines.append(f"| {s} | " + " | ".join(values[s][n][1] for n in sizes) + " |")
        for s in (s for s in systems if s.startswith("semspace")):
            cells = []
            for n in sizes:
                mine = values[s][n][0]
                peers = [(values[p][n][0], p) for p in PEERS if p in values and values[p][n][0] is not None]
                if mine is None or not peers:
                    cells.append("–")
                    continue
                best, who = max(peers) if higher else min(peers)
                cells.append(f"{mine / best:.2f}× ({who})" if best else "–")
            if any(c != "–" for c in cells):
                lines.append(f"| *{s} ÷ best peer* | " + " | ".join(cells) + " |")
    return lines


def write_report(out: Path, results: dict, meta: dict, systems: list[str], command: str) -> None:
    from semspace.evaluate.report import results_header

    lines = results_header(
        "Vector stores on disk: semspace Collection vs Chroma and LanceDB (raw FAISS as the limit)", command
    )
    lines += [
        f"- Versions: {versions()}",
        f"- Vectors: {meta['vectors']}; corpus = random one of them + N(0, {meta['sigma']}²) per dimension, "
        f"L2-normalised (seed {SEED}); {meta['queries']} queries and the added documents are other perturbed "
        'base vectors. Texts "doc i", metadata {"bucket": i % 10}.',
        f"- {meta['threads']} threads per process (OMP/MKL/OpenBLAS/Rayon/Lance variables; "
        "faiss.omp_set_num_threads; OMP_WAIT_POLICY=PASSIVE so that idle workers do not spin); "
        f"batches of {meta['batch']:,}; every system's ingest runs alone in a fresh process; search rounds of "
        f"{max(1, meta['queries'] // 10)} queries rotate over the systems, each round led by one unmeasured query "
        f"(each system at most {meta['search_budget']:g} s of search per mode); one run. Page cache warm (no root "
        "to drop it).",
        f"- semspace: `Collection.create(path, encoder=Encoder(), index=...)` for the ingest (the bundled encoder "
        "loads: it is in the RSS base), `Collection.open(path)` without an encoder elsewhere, `add(..., vectors=)`, "
        "`search_vectors`, `delete`; `compact()` after the ingest when the method exists "
        f"({'present' if meta.get('compact') else 'absent in this version'}). Indexes: Flat, {meta['hnsw']}, "
        f"{meta['ivf']} (nprobe 32, efSearch 128: semspace's settings; raw FAISS uses the same).",
        '- Chroma: `PersistentClient`, `configuration={"hnsw": {"space": "cosine"}}` (defaults otherwise: '
        "M 16, ef_construction 100, ef_search 100), no embedding function, batches ≤ `get_max_batch_size()`.",
        "- LanceDB: embedded, one `add` per batch, then `optimize(cleanup_older_than=0)`; lancedb: no index (exact "
        f"scan); lancedb-ivfpq: `create_index(metric='cosine', index_type='IVF_PQ')` at N ≥ {meta['lance_min']:,} "
        "with num_partitions = min(nlist, N/39), num_sub_vectors as the PQ of the semspace factory, nprobes 32. "
        "Filtered searches use `prefilter=True`; the reader process connects with `read_consistency_interval=0` "
        "(LanceDB's default never sees another process's writes).",
        "- All systems return the same payload per hit where they can (id, text, metadata, score; raw FAISS: ids).",
        "- Writes: each repeat adds one new document (the writer had searched before), the reader process (opened "
        "and searched before the write) searches for it until found, then the writer deletes one original "
        f"document; at most {meta['write_repeats']} repeats or {meta['write_budget']:g} s.",
        f"- Ratios: semspace ÷ the best of {', '.join(PEERS)} on the headline number (median, p50 or rate).",
    ]
    if meta.get("skipped"):
        lines.append(f"- **Not measured: {', '.join(meta['skipped'])}** (--skip-peers; those packages are missing).")
    for n, res in results.items():
        for s, r in res.items():
            details = (r.get("ingest") or {}).get("details")
            if details:
                lines.append(f"- N={n:,} {s} after ingest: `{json.dumps(details, default=str)[:300]}`")
    lines += tables(results, systems)
    problems = [f"- N={n:,} {s}: {e}" for n, res in results.items() for s, r in res.items() for e in r["errors"]]
    lines += ["", "## Problems", "", *(problems or ["- none"]), "", f"Raw numbers: `{out.with_suffix('.json').name}`."]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = {"meta": meta, "command": command, "results": {str(n): r for n, r in results.items()}}
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma list of N")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list from {','.join(SYSTEMS)}")
    parser.add_argument("--skip-peers", action="store_true", help="run without Chroma / LanceDB if not installed")
    parser.add_argument("--hnsw", default="HNSW32")
    parser.add_argument("--ivf", default="IVF1024,PQ32", help="semspace / raw FAISS factory of the IVF rows")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--search-budget", type=float, default=60.0, help="s of search per system and mode")
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--write-repeats", type=int, default=9)
    parser.add_argument("--write-budget", type=float, default=180.0, help="s of adds/deletes per system")
    parser.add_argument("--visibility-timeout", type=float, default=30.0)
    parser.add_argument("--op-timeout", type=float, default=600.0, help="s for any one call; past it: killed")
    parser.add_argument("--ingest-timeout", type=float, default=7200.0)
    parser.add_argument("--lance-index-min", type=int, default=10_000, help="smallest N given a LanceDB index")
    parser.add_argument("--sigma", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "semspace-bench")
    parser.add_argument("--workdir", type=Path, default=None, help="stores go in a new temp folder inside it")
    parser.add_argument("--quick", action="store_true", help="N=2,000, few repeats: a smoke test; temp output")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.cold_repeats, args.write_repeats = "2000", 40, 1, 3
        args.search_budget, args.visibility_timeout, args.lance_index_min = 20.0, 5.0, 1000
        if args.out is not None and "docs/results" in str(args.out.resolve()):
            parser.error("--quick never writes into docs/results")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    missing = sorted(
        {PEER_PACKAGES[s] for s in systems if s in PEER_PACKAGES}
        - {p for p in set(PEER_PACKAGES.values()) if importlib.util.find_spec(p) is not None}
    )
    skipped = [s for s in systems if PEER_PACKAGES.get(s) in missing]
    if missing and not args.skip_peers:
        print(
            f"store.py: {' and '.join(missing)} not installed: pip install -e '.[bench]' -c benchmarks/locks/bench.txt "
            "(chromadb, lancedb; or --skip-peers)",
            file=sys.stderr,
        )
        sys.exit(2)
    systems = [s for s in systems if s not in skipped]
    sizes = [int(s) for s in args.sizes.split(",")]
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="store-quick-")) / "store.md" if args.quick else Path("docs/results/store.md")
    )
    # PASSIVE: with systems interleaved, an idle worker's OpenMP threads would otherwise spin for milliseconds after
    # each call (GOMP's default) and steal the cores from the system being timed.
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, str(args.threads)), "OMP_WAIT_POLICY": "PASSIVE"}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent), env.get("PYTHONPATH")]))
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="semspace-store-", dir=args.workdir))
    started = time.perf_counter()
    try:
        base, source = base_vectors(args.data_root, args.cache_dir)
        files = {
            "workdir": str(workdir),
            "vectors": str(workdir / "corpus.f32"),
            "queries": str(workdir / "queries.f32"),
            "extra": str(workdir / "extra.f32"),
        }
        queries = perturbed(base, args.queries, 1, args.sigma)
        queries.tofile(files["queries"])
        perturbed(base, max(args.write_repeats, 1), 2, args.sigma).tofile(files["extra"])
        write_corpus(Path(files["vectors"]), base, max(sizes), args.sigma)
        from semspace.search import Collection

        meta = {
            "vectors": source,
            "sigma": args.sigma,
            "queries": args.queries,
            "threads": args.threads,
            "batch": args.batch,
            "search_budget": args.search_budget,
            "hnsw": args.hnsw,
            "ivf": args.ivf,
            "lance_min": args.lance_index_min,
            "write_repeats": args.write_repeats,
            "write_budget": args.write_budget,
            "compact": hasattr(Collection, "compact"),
            "skipped": skipped,
            "sizes": sizes,
            "systems": systems,
        }
        results = {}
        for i, n in enumerate(sizes):
            truth = {m: exact_topk(files["vectors"], n, queries, m == "filtered") for m in ("plain", "filtered")}
            print(f"N={n:,}: {', '.join(systems)}", file=sys.stderr)
            results[n] = run_size(n, systems, files, truth, i, args, env)
        meta["wall_s"] = time.perf_counter() - started
        write_report(out, results, meta, systems, "python benchmarks/store.py " + " ".join(sys.argv[1:]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(out.read_text(encoding="utf-8"))
    print(f"wrote {out} and {out.with_suffix('.json')} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        worker_main(json.loads(sys.argv[2]))
    else:
        main()
