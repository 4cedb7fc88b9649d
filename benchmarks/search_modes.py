"""Search modes and compressed indexes: dense vs BM25 vs hybrid (RRF, weighted) through `Collection.search`, and FAISS
compressed index types through `VectorIndex` (recall@10 vs exact, bytes/vector, queries/s, nDCG@10), on SciFact and
Cranfield with the bundled MiniLM.

Writes docs/results/search_modes.md. Embeddings are cached in .cache/embeddings (as benchmarks/retrieval.py does).
Run alone (timings):

    python benchmarks/search_modes.py [--tasks SciFact,Cranfield] [--data-root ../shared/data] [--rounds 5]

Hybrid search is BM25 (bm25s, Robertson & Zaragoza 2009) fused with dense retrieval by reciprocal rank (Cormack,
Clarke & Büttcher 2009) or by a convex combination of min-max normalised scores (Bruch et al. 2023); the index types
are FAISS's (Johnson, Douze & Jégou 2019): product quantization (Jégou et al. 2011), OPQ (Ge et al. 2013), IVF, HNSW
(Malkov & Yashunin 2018) and scalar quantization.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semspace.data.retrieval import RetrievalTask, load_retrieval_task
from semspace.data.tasks import default_data_root
from semspace.encode import EmbeddingCache, Encoder
from semspace.evaluate.report import results_header
from semspace.metrics import recall_vs_exact, retrieval_scores
from semspace.search import Collection, VectorIndex

logger = logging.getLogger("search_modes")

K = 100  # results per query everywhere (recall@100 needs 100)
# (label, Collection.search keyword arguments)
MODES: list[tuple[str, dict]] = [
    ("dense", {"mode": "dense"}),
    ("BM25", {"mode": "bm25"}),
    ("hybrid RRF", {"mode": "hybrid", "fusion": "rrf"}),
    *[(f"hybrid weighted α={a}", {"mode": "hybrid", "fusion": "weighted", "alpha": a}) for a in (0.3, 0.5, 0.7)],
]
FACTORIES = [
    "Flat",
    "SQ8",
    "PQ16",
    "PQ48",
    "IVF64,Flat",
    "IVF64,PQ16",
    "IVF64,SQ8",
    "HNSW32",
    "HNSW32,SQ8",
    "OPQ16,PQ16",
]
OPQ_BUDGET_S = 60.0  # an OPQ factory is trained in a child process, stopped (and reported as skipped) past this
SEARCH_VECTORS = "dense, `search_vectors` (query vectors given)"
ENCODE = "query encoding alone (MiniLM)"
ENCODE_SAMPLE = 100  # queries encoded per timing round for the encoder's own queries/s
# Trains and serialises one factory in a child process, so that a training past its budget can be stopped.
_TRAIN_CHILD = """
import sys
import numpy as np
from semspace.search import VectorIndex
x = np.load(sys.argv[2])
index = VectorIndex(sys.argv[1], x.shape[1])
index.rebuild(np.arange(len(x), dtype=np.int64), x)
with open(sys.argv[3], "wb") as handle:
    handle.write(index.to_bytes())
"""


class CachedQueryEncoder(Encoder):
    """The bundled MiniLM whose `encode` returns the cached vectors of known texts (the model for any other input):
    `Collection.search` then times the search (dense, BM25, fusion), not the query encoding, which is timed apart."""

    def __init__(self, known: dict[str, np.ndarray]) -> None:
        super().__init__(None)
        self.known = known

    def encode(self, sentences: str | list[str], **kwargs: object) -> np.ndarray:  # type: ignore[override]
        if not kwargs and isinstance(sentences, list) and all(s in self.known for s in sentences):
            return np.stack([self.known[s] for s in sentences]).astype(np.float32)
        return super().encode(sentences, **kwargs)


def stats(values: list[float]) -> tuple[float, float, float]:
    return float(np.min(values)), float(np.median(values)), float(np.max(values))


def rankings_from(task: RetrievalTask, rows: list[list[str]]) -> dict[str, list[str]]:
    return dict(zip(task.query_ids, rows, strict=True))


def modes_part(
    task: RetrievalTask, encoder: Encoder, docs: np.ndarray, queries: np.ndarray, rounds: int
) -> tuple[list[dict], dict]:
    """Every mode through the real Collection API: a collection in a temp folder, documents added with their
    precomputed vectors, queries sent as texts; the collection's encoder serves the cached query vectors."""
    texts = list(task.query_texts)
    cached = CachedQueryEncoder(dict(zip(texts, queries, strict=True)))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="semspace-modes-") as tmp:
        collection = Collection.create(Path(tmp) / "c", encoder=cached, index="Flat")
        start = time.perf_counter()
        collection.add(task.doc_texts, ids=task.doc_ids, vectors=docs)
        add_s = time.perf_counter() - start
        # The first BM25 call builds the in-memory BM25 index (bm25s) from the stored texts: timed apart.
        start = time.perf_counter()
        collection.search(texts[:1], k=1, mode="bm25")
        bm25_build_s = time.perf_counter() - start

        calls = [(label, lambda kw=kwargs: collection.search(texts, k=K, **kw)) for label, kwargs in MODES]
        calls.append((SEARCH_VECTORS, lambda: collection.search_vectors(queries, k=K)))
        for label, fn in calls:
            results = fn()
            rows.append({"mode": label, **retrieval_scores(rankings_from(task, [r.ids for r in results]), task.qrels)})

        # Timing: rounds interleaved over the modes (each call = the whole query set in one Collection call), and
        # the encoder alone on a sample of the query texts.
        sample = texts[:ENCODE_SAMPLE]
        encoder.encode(sample[:8])  # load the model before it is timed
        calls.append((ENCODE, lambda: encoder.encode(sample)))
        seconds: dict[str, list[float]] = {label: [] for label, _ in calls}
        for r in range(rounds):
            for label, fn in calls:
                start = time.perf_counter()
                fn()
                seconds[label].append(time.perf_counter() - start)
            logger.info("%s modes: timing round %d/%d done", task.name, r + 1, rounds)
        collection.close()
    for row in rows:
        row["qps"] = stats([len(texts) / s for s in seconds[row["mode"]]])
    encode_qps = stats([len(sample) / s for s in seconds[ENCODE]])
    return rows, {"add_s": add_s, "bm25_build_s": bm25_build_s, "encode_qps": encode_qps}


def build(factory: str, docs: np.ndarray, budget_s: float | None) -> tuple[VectorIndex | None, float]:
    """(index, seconds to train + add); with a budget, built in a child process and None when it ran past it."""
    index = VectorIndex(factory, docs.shape[1])
    start = time.perf_counter()
    if budget_s is None:
        index.rebuild(np.arange(len(docs), dtype=np.int64), docs)
        return index, time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="semspace-train-") as tmp:
        np.save(Path(tmp) / "x.npy", docs)
        try:
            subprocess.run(
                [sys.executable, "-c", _TRAIN_CHILD, factory, str(Path(tmp) / "x.npy"), str(Path(tmp) / "index")],
                check=True,
                timeout=budget_s,
            )
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - start
        index.load_bytes((Path(tmp) / "index").read_bytes())
    return index, time.perf_counter() - start


def fixed_bytes(index: VectorIndex) -> int | None:
    """Serialised size of the same trained index emptied (codebooks, OPQ rotation, IVF centroids, HNSW header):
    the part of bytes/vector that is shared by all vectors and shrinks as N grows."""
    import faiss

    try:
        empty = faiss.clone_index(index._index)  # the FAISS object VectorIndex drives (benchmark-only access)
        empty.reset()
        return len(faiss.serialize_index(empty))
    except (RuntimeError, AttributeError):
        return None


def index_part(
    task: RetrievalTask, docs: np.ndarray, queries: np.ndarray, rounds: int, n_timing: int, opq_budget_s: float
) -> list[dict]:
    """Every factory through VectorIndex, on the same vectors; recall@10 vs the Flat top-10."""
    timing_queries = np.resize(queries, (n_timing, queries.shape[1]))
    built: dict[str, VectorIndex] = {}
    rows: dict[str, dict] = {}
    exact = None
    for factory in FACTORIES:
        index, build_s = build(factory, docs, opq_budget_s if factory.startswith("OPQ") else None)
        row = {"index": factory, "build_s": build_s}
        rows[factory] = row
        if index is None:
            row["skipped"] = f"training not done in {opq_budget_s:.0f} s (stopped)"
            logger.info("%s %s: %s", task.name, factory, row["skipped"])
            continue
        row["trained"] = not index.is_exact_fallback
        _, ids = index.search(queries, K)
        if exact is None:
            exact = ids
        rankings = rankings_from(task, [[task.doc_ids[i] for i in r if i >= 0] for r in ids])
        row.update(retrieval_scores(rankings, task.qrels))
        row["recall@10 vs exact"] = recall_vs_exact(ids, exact, 10)
        row["bytes/vector"] = len(index.to_bytes()) / len(docs)
        row["fixed bytes"] = fixed_bytes(index)
        built[factory] = index
        logger.info(
            "%s %s: build %.1f s, nDCG@10 %.2f, recall@10 vs exact %.3f, %.0f bytes/vector",
            task.name,
            factory,
            build_s,
            row["nDCG@10"],
            row["recall@10 vs exact"],
            row["bytes/vector"],
        )
    seconds: dict[str, list[float]] = {f: [] for f in built}
    for r in range(rounds):
        for factory, index in built.items():
            start = time.perf_counter()
            index.search(timing_queries, K)
            seconds[factory].append(time.perf_counter() - start)
        logger.info("%s indexes: timing round %d/%d done", task.name, r + 1, rounds)
    for factory, values in seconds.items():
        rows[factory]["qps"] = stats([n_timing / s for s in values])
    return list(rows.values())


def fmt_qps(triple: tuple[float, float, float]) -> str:
    low, mid, high = triple
    return f"{mid:,.0f} ({low:,.0f}–{high:,.0f})"


def write_report(
    results: list[dict], out: Path, command: str, rounds: int, n_timing: int, wall_s: float, opq_budget_s: float
) -> None:
    metrics = ["nDCG@10", "recall@10", "recall@100", "MRR@10"]
    lines = [
        *results_header("Search modes (dense, BM25, hybrid) and compressed FAISS indexes", command),
        f"- Model: bundled MiniLM (all-MiniLM-L6-v2, mean pooling, raw vectors, no transform). Metrics ×100 over the "
        f"test queries, top-{K} per query. Timings: {rounds} rounds interleaved over the configurations; "
        "queries/s given as median (min–max) over the rounds. The machine is shared with other jobs: compare "
        "rows of one table, not absolute figures across runs.",
        f"- Total wall time of this run: {wall_s:.0f} s.",
        "",
        "## 1. Dense vs BM25 vs hybrid, through `Collection.search`",
        "",
        "A collection in a temp folder (Flat index), the corpus added with its precomputed vectors "
        "(`Collection.add(texts, ids=..., vectors=...)`), the query texts sent in one "
        f"`Collection.search(queries, k={K}, mode=..., fusion=..., alpha=...)` call. `Collection.search` encodes "
        "query texts itself (hybrid takes no query vectors), so the collection's encoder is a MiniLM `Encoder` "
        "subclass that returns the cached vectors of these texts: the queries/s of every mode are the search alone "
        "(FAISS, BM25 scoring, fusion, reading the hits from SQLite), and MiniLM's own query encoding is timed on "
        f"{ENCODE_SAMPLE} of the query texts in the last row (add it per query for an end-to-end figure). "
        "Hybrid fuses the dense and BM25 top-100 (`hybrid_search(candidates=100)`): RRF with constant 60, or "
        "`weighted` = α · minmax(dense) + (1 − α) · "
        "minmax(BM25).",
        "",
    ]
    for res in results:
        extra = res["modes_extra"]
        head = ["mode", *metrics, "queries/s"]
        lines += [
            f"### {res['task']} ({res['n_docs']} docs, {res['n_queries']} queries)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for row in res["modes"]:
            lines.append(
                f"| {row['mode']} | " + " | ".join(f"{row[m]:.2f}" for m in metrics) + f" | {fmt_qps(row['qps'])} |"
            )
        lines += [
            f"| {ENCODE} | – | – | – | – | {fmt_qps(extra['encode_qps'])} |",
            "",
            f"- `Collection.add` of {res['n_docs']} documents with vectors: {extra['add_s']:.1f} s; the first BM25 "
            f"search builds the BM25 index from the stored texts: {extra['bm25_build_s']:.2f} s (not in the "
            "queries/s).",
        ]
        best = max(res["modes"], key=lambda r: r["nDCG@10"])
        dense = next(r for r in res["modes"] if r["mode"] == "dense")
        bm25 = next(r for r in res["modes"] if r["mode"] == "BM25")
        rrf = next(r for r in res["modes"] if r["mode"] == "hybrid RRF")
        lines += [
            f"- nDCG@10: dense {dense['nDCG@10']:.2f}, BM25 {bm25['nDCG@10']:.2f}, hybrid RRF {rrf['nDCG@10']:.2f} "
            f"({rrf['nDCG@10'] - dense['nDCG@10']:+.2f} vs dense); best: {best['mode']} {best['nDCG@10']:.2f}.",
            "",
        ]

    lines += [
        "## 2. Compressed FAISS indexes, through `VectorIndex`",
        "",
        "`VectorIndex(factory, 384).rebuild(ids, corpus vectors)` (trains on the corpus), then "
        f"`search(queries, {K})`. `recall@10 vs exact` = overlap of each query's top-10 with the Flat index's "
        "top-10. bytes/vector = `len(index.to_bytes()) / N` (serialised index with its id map, codebooks and "
        "centroids included); `of which per vector` leaves out the part an emptied copy of the trained index still "
        "takes (codebooks, OPQ rotation, IVF centroids), which a larger corpus amortises: codes + 8-byte id "
        "(+ HNSW links). IVF: nprobe 32 of 64 lists (VectorIndex's default); HNSW: efSearch max(128, k). "
        f"queries/s: the query set tiled to {n_timing} queries, one batched search at k={K}, encoding excluded. "
        "build s = train + add, one run; OPQ is trained in a child process (its time includes the child's start) "
        f"and stopped after {opq_budget_s:.0f} s. Cranfield has fewer vectors than FAISS asks for to train 256 PQ "
        "centroids (39 × 256): its PQ codebooks are trained on 1398 vectors.",
        "",
    ]
    cols = [
        "index",
        "recall@10 vs exact",
        "bytes/vector",
        "of which per vector",
        "queries/s",
        "nDCG@10",
        "recall@100",
        "build s",
    ]
    for res in results:
        lines += [
            f"### {res['task']} ({res['n_docs']} docs)",
            "",
            "| " + " | ".join(cols) + " |",
            "|" + "---|" * len(cols),
        ]
        skipped = []
        for row in res["indexes"]:
            if "skipped" in row:
                skipped.append(f"{row['index']}: {row['skipped']}")
                continue
            fixed = row["fixed bytes"]
            marginal = "–" if fixed is None else f"{row['bytes/vector'] - fixed / res['n_docs']:.0f}"
            lines.append(
                f"| {row['index']} | {row['recall@10 vs exact']:.3f} | {row['bytes/vector']:.0f} | {marginal} | "
                f"{fmt_qps(row['qps'])} | {row['nDCG@10']:.2f} | {row['recall@100']:.2f} | {row['build_s']:.2f} |"
            )
        ok = [r for r in res["indexes"] if "skipped" not in r and r["index"] != "Flat"]
        lines += [
            "",
            "- recall@10 vs exact ≥ 0.95: "
            + (", ".join(r["index"] for r in ok if r["recall@10 vs exact"] >= 0.95) or "none")
            + "; below: "
            + (
                ", ".join(f"{r['index']} {r['recall@10 vs exact']:.3f}" for r in ok if r["recall@10 vs exact"] < 0.95)
                or "none"
            )
            + ".",
            "",
        ]
        if skipped:
            lines += [f"- Skipped: {'; '.join(skipped)}.", ""]
        fallback = [r["index"] for r in res["indexes"] if r.get("trained") is False]
        if fallback:
            lines += [f"- Not trained (too few vectors, exact flat stand-in): {', '.join(fallback)}.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="SciFact,Cranfield")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/embeddings"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timing-queries", type=int, default=2000)
    parser.add_argument("--opq-budget", type=float, default=OPQ_BUDGET_S, help="seconds OPQ may train")
    parser.add_argument("--out", type=Path, default=Path("docs/results/search_modes.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = args.data_root or default_data_root()
    cache = EmbeddingCache(args.cache_dir)
    encoder = Encoder(None)
    started = time.perf_counter()
    results = []
    for name in args.tasks.split(","):
        task = load_retrieval_task(name.strip(), root)
        docs = cache.encode(encoder, task.doc_texts)[encoder.pooling]
        queries = cache.encode(encoder, task.query_texts)[encoder.pooling]
        modes, extra = modes_part(task, encoder, docs, queries, args.rounds)
        indexes = index_part(task, docs, queries, args.rounds, args.timing_queries, args.opq_budget)
        results.append(
            {
                "task": task.name,
                "n_docs": len(docs),
                "n_queries": len(queries),
                "modes": modes,
                "modes_extra": extra,
                "indexes": indexes,
            }
        )
    write_report(
        results,
        args.out,
        "python " + " ".join(sys.argv),
        args.rounds,
        args.timing_queries,
        time.perf_counter() - started,
        args.opq_budget,
    )
    print(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
