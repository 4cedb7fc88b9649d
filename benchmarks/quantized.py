"""Quantized search (issue 27): a collection index kept as int8 (FAISS SQ8) or binary (IndexBinaryFlat with float
rescoring) next to float32, on SciFact with the bundled all-MiniLM-L6-v2, against the same FAISS index types driven
directly and sentence-transformers' `quantize_embeddings` + `semantic_search_faiss` on the same vectors.

For each system: nDCG@10 and recall@10/100 on SciFact's 300 test queries (BEIR qrels), recall@10 of the exact float32
top-10, the index file's bytes per vector, and the latency of one query (k=100, one FAISS thread for every system),
measured in interleaved rounds so the ratios to the peers compare like with like. Writes docs/results/quantized.md;
embeddings come from the cache (.cache/embeddings). Run alone, under the benchmark lock:

    python benchmarks/quantized.py [--data-root ../shared/data] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from semspace.data.retrieval import load_retrieval_task
from semspace.data.tasks import default_data_root
from semspace.encode import EmbeddingCache, Encoder
from semspace.evaluate.report import results_header
from semspace.metrics import recall_vs_exact, retrieval_scores
from semspace.search import VectorIndex
from semspace.search.binary import RESCORE_MULTIPLIER, binarize
from semspace.search.index import factory_for_precision

K = 100

Search = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def unit(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def file_bytes(write: Callable[[str], None]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        write(str(path))
        return path.stat().st_size


def semspace_systems(docs: np.ndarray) -> dict[str, tuple[Search, int]]:
    """semspace's VectorIndex per precision (what a collection holds): (search, index file bytes)."""
    out = {}
    seqs = np.arange(len(docs), dtype=np.int64)
    for label, precision, rescore in (
        ("float32", "float32", None),
        ("int8", "int8", None),
        ("binary, rescored", "binary", RESCORE_MULTIPLIER),
        ("binary, Hamming only", "binary", 1),
    ):
        index = VectorIndex(factory_for_precision("Flat", precision), docs.shape[1])
        index.rebuild(seqs, docs)
        if rescore is not None:
            index.rescore_multiplier = rescore
        out[label] = ((lambda q, index=index: index.search(q, K)), file_bytes(index.write))
    return out


def faiss_systems(docs: np.ndarray) -> dict[str, tuple[Search, int]]:
    """The same FAISS index types, driven directly (no id map, no tombstones, no wrapper)."""
    import faiss

    d = docs.shape[1]
    flat = faiss.IndexFlatIP(d)
    flat.add(docs)
    sq8 = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq8.train(docs)
    sq8.add(docs)
    bits = -(-d // 8) * 8
    binary = faiss.IndexBinaryFlat(bits)
    binary.add(binarize(docs, bits))

    def binary_rescored(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, ids = binary.search(binarize(q, bits), K * RESCORE_MULTIPLIER)
        codes = np.stack([binary.reconstruct(int(i)) for i in ids.ravel()]).reshape(*ids.shape, bits // 8)
        signs = np.unpackbits(codes, axis=-1)[..., :d].astype(np.float32) * 2 - 1
        scores = np.einsum("qd,qcd->qc", unit(q), signs)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def binary_hamming(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distances, ids = binary.search(binarize(q, bits), K)
        return -distances.astype(np.float32), ids

    return {
        "float32": ((lambda q: flat.search(unit(q), K)), file_bytes(lambda p: faiss.write_index(flat, p))),
        "int8": ((lambda q: sq8.search(unit(q), K)), file_bytes(lambda p: faiss.write_index(sq8, p))),
        "binary, rescored": (binary_rescored, file_bytes(lambda p: faiss.write_index_binary(binary, p))),
        "binary, Hamming only": (binary_hamming, file_bytes(lambda p: faiss.write_index_binary(binary, p))),
    }


def st_systems(docs: np.ndarray) -> dict[str, tuple[Search, int]]:
    """sentence-transformers' quantize_embeddings + semantic_search_faiss (exact; its int8 is "uint8" codes in an
    IndexFlatIP, so the index type differs from SQ8), rescoring with the same multiplier."""
    import faiss
    from sentence_transformers.util.quantization import quantize_embeddings, semantic_search_faiss

    out = {}
    for label, precision in (("int8", "uint8"), ("binary, rescored", "ubinary")):
        corpus = quantize_embeddings(docs, precision=precision, calibration_embeddings=docs)
        ranges = np.vstack([docs.min(axis=0), docs.max(axis=0)]) if precision == "uint8" else None
        *_, index = semantic_search_faiss(
            docs[:1], corpus_embeddings=corpus, corpus_precision=precision, top_k=1, ranges=ranges, output_index=True
        )

        def search(q, index=index, precision=precision, ranges=ranges):
            hits, _ = semantic_search_faiss(
                q,
                corpus_index=index,
                corpus_precision=precision,
                top_k=K,
                ranges=ranges,
                rescore_multiplier=RESCORE_MULTIPLIER,
            )
            ids = np.full((len(q), K), -1, np.int64)
            for row, found in enumerate(hits):
                ids[row, : len(found)] = [h["corpus_id"] for h in found]
            return None, ids

        writer = faiss.write_index_binary if precision == "ubinary" else faiss.write_index
        out[label] = (search, file_bytes(lambda p, index=index, writer=writer: writer(index, p)))
    return out


def per_query_ms(search: Search, queries: np.ndarray) -> float:
    """Mean milliseconds of a one-query search, over every query."""
    start = time.perf_counter()
    for row in range(len(queries)):
        search(queries[row : row + 1])
    return (time.perf_counter() - start) * 1000 / len(queries)


def ratio_cell(ours: list[float], peer: list[float]) -> str:
    ratios = np.array(ours) / np.array(peer)
    return f"{np.min(ratios):.2f} / {np.median(ratios):.2f} / {np.max(ratios):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/embeddings"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("docs/results/quantized.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time: latency, not the 2 cores' throughput
    task = load_retrieval_task("SciFact", args.data_root or default_data_root())
    encoder = Encoder(backend="torch")  # the exact engine: the table reproduces on any CPU, whatever auto picks
    cache = EmbeddingCache(args.cache_dir)
    docs = cache.encode(encoder, task.doc_texts)[encoder.pooling]
    queries = cache.encode(encoder, task.query_texts)[encoder.pooling]
    systems = {
        "semspace": semspace_systems(docs),
        "FAISS": faiss_systems(docs),
        "sentence-transformers": st_systems(docs),
    }
    _, exact = systems["FAISS"]["float32"][0](queries)
    quality = {}
    for owner, by_label in systems.items():
        for label, (search, size) in by_label.items():
            _, ids = search(queries)
            rankings = {q: [task.doc_ids[i] for i in row if i >= 0] for q, row in zip(task.query_ids, ids, strict=True)}
            scores = retrieval_scores(rankings, task.qrels)
            quality[owner, label] = {
                **scores,
                "recall@10 vs float32": recall_vs_exact(ids, exact, 10),
                "bytes/vector": size / len(docs),
            }
            logging.info("%s %s nDCG@10 %.2f", owner, label, scores["nDCG@10"])
    latency: dict[tuple[str, str], list[float]] = {key: [] for key in quality}
    for round_number in range(args.rounds):  # interleaved: every system once per round
        for owner, by_label in systems.items():
            for label, (search, _) in by_label.items():
                latency[owner, label].append(per_query_ms(search, queries))
        logging.info("round %d done", round_number + 1)
    write_report(args, task, docs, quality, latency)
    return 0


def write_report(args, task, docs: np.ndarray, quality: dict, latency: dict) -> None:
    import faiss

    command = "python benchmarks/quantized.py" + (f" --rounds {args.rounds}" if args.rounds != 5 else "")
    lines = [
        *results_header("Quantized search: int8 and binary collection indexes (issue 27)", command),
        f"- FAISS {faiss.__version__}, one FAISS thread for every system",
        f"- Data: SciFact (BEIR test split), {len(docs)} documents, {len(task.query_ids)} queries; bundled "
        f"all-MiniLM-L6-v2 ({docs.shape[1]}-d, mean pooling, normalised); k={K}; binary rescoring fetches "
        f"{RESCORE_MULTIPLIER}×k candidates by Hamming distance, then orders them by the float query's dot product "
        "with their ±1 codes (sentence-transformers' quantization guide)",
        "",
        "## Quality and size",
        "",
        "| system | precision | nDCG@10 | recall@10 | recall@100 | recall@10 of float32's top-10 | "
        "bytes/vector (index file) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (owner, label), q in quality.items():
        lines.append(
            f"| {owner} | {label} | {q['nDCG@10']:.2f} | {q['recall@10']:.2f} | {q['recall@100']:.2f} | "
            f"{q['recall@10 vs float32']:.3f} | {q['bytes/vector']:.1f} |"
        )
    lines += [
        "",
        "## Latency of one query (ms, mean over the queries; min / median / max over rounds)",
        "",
        "| precision | semspace | FAISS | sentence-transformers | semspace ÷ FAISS (min / median / max) | "
        "semspace ÷ sentence-transformers |",
        "|---|---|---|---|---|---|",
    ]
    for label in quality_labels(quality, "semspace"):
        ours = latency["semspace", label]
        cells = [f"{np.median(ours):.3f}"]
        for owner in ("FAISS", "sentence-transformers"):
            peer = latency.get((owner, label))
            cells.append("–" if peer is None else f"{np.median(peer):.3f}")
        for owner in ("FAISS", "sentence-transformers"):
            peer = latency.get((owner, label))
            cells.append("–" if peer is None else ratio_cell(ours, peer))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "What the rows are: semspace is `VectorIndex(factory_for_precision('Flat', precision), d)`, the index a "
        "`Collection.create(..., precision=...)` holds (FAISS `SQ8` = IndexScalarQuantizer QT_8bit; `BFlat` = "
        "IndexBinaryFlat, both inside an IndexIDMap2 for stable ids). FAISS is the same index type driven directly "
        "(no id map), with the same rescoring code for binary. sentence-transformers is `quantize_embeddings` + "
        "`semantic_search_faiss` (exact): its int8 is `uint8` codes searched in an IndexFlatIP (stored as float32, "
        "hence no saving on disk) with its dequantizing rescoring, not SQ8. Rounds are interleaved (every system "
        "once per round); the machine is shared, so the ratios, not the absolute times, are the result.",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def quality_labels(quality: dict, owner: str) -> list[str]:
    return [label for (who, label) in quality if who == owner]


if __name__ == "__main__":
    sys.exit(main())
