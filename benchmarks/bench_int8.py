"""Issue 28 item 2: which int8 quantization of the bundled MiniLM loses ≤ 0.1 STS-B Spearman, and how fast it is.

    python benchmarks/bench_int8.py                     # every variant: STS-B test + SciFact subset
    python benchmarks/bench_int8.py --scifact-docs 0    # STS-B only

The fp32 graph is exported and fused once (as ``backend='onnx'`` does); each variant quantizes it with ONNX Runtime
and runs through the same Encoder (its session swapped in), so only the quantization differs. Per variant: STS-B test
Spearman (all 1,379 pairs), SciFact nDCG@10 on a subset (every test query; its relevant abstracts plus the first
--scifact-docs others), the export check's calibration task loss (semspace.encode.engine.similarity_rank_loss, what
`auto` decides by) and its modelled STS loss (expected_sts_loss), and STS-B test sentences/s (one pass after a
warm-up: indicative only, bench_engine.py is the benchmark). Variants that keep layers fp32 choose them on the
*calibration* sentences (the nodes whose quantization costs most there), never on the test sets.
Writes docs/results/engine_int8.md.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from semspace import Encoder  # noqa: E402
from semspace.data import load_sts_task  # noqa: E402
from semspace.data.retrieval import RetrievalTask, load_retrieval_task  # noqa: E402
from semspace.encode import engine as eng  # noqa: E402
from semspace.encode.cpu import cpu_features  # noqa: E402
from semspace.evaluate.report import results_header  # noqa: E402
from semspace.evaluate.retrieval import evaluate_retrieval  # noqa: E402

logger = logging.getLogger("bench_int8")


def quantize(source: Path, target: Path, exclude: list[str] = (), reduce_range: bool = False, ops=None) -> None:
    """ORT dynamic int8 as semspace's export does (per-channel int8 weights), with the given nodes left fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with eng._quiet():
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=ops or ["MatMul", "Attention", "Gemm"],
            nodes_to_exclude=list(exclude),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def quantize_static_qdq(source: Path, target: Path, encoder: Encoder, exclude: list[str] = ()) -> None:
    """ORT static QDQ int8: activation ranges calibrated (min/max) on the calibration sentences, per-channel weights;
    MatMul only (the fused Attention op has no QDQ form)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    adapter = encoder._adapter
    texts = list(eng.CALIBRATION)
    batches = [{k: v.numpy() for k, v in adapter._batch(texts[i : i + 8]).items()} for i in range(0, len(texts), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self):
            return next(self.items, None)

    with eng._quiet():
        quantize_static(
            str(source),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
        )


def use_graph(encoder: Encoder, path: Path) -> None:
    """Run `encoder`'s transformer with the ONNX graph at `path` (the engine plumbing of backend='onnx')."""
    runner = encoder._adapter._runner
    runner._session = eng.make_session(path)
    runner._inputs = list(encoder._adapter._batch(["a", "b c"]))
    runner.engine = "onnx-int8"


def sts_spearman(vectors: np.ndarray, index: dict, pairs) -> float:
    from scipy.stats import spearmanr

    a = vectors[[index[s] for s in pairs.sentences1]]
    b = vectors[[index[s] for s in pairs.sentences2]]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cos, pairs.scores).statistic * 100)


def scifact_subset(data_root: str, n_other: int) -> RetrievalTask | None:
    if n_other <= 0:
        return None
    task = load_retrieval_task("SciFact", data_root)
    relevant = {d for rel in task.qrels.values() for d in rel}
    keep = [i for i, d in enumerate(task.doc_ids) if d in relevant]
    keep += [i for i, d in enumerate(task.doc_ids) if d not in relevant][:n_other]
    keep.sort()
    return RetrievalTask(
        f"SciFact-subset{len(keep)}",
        [task.doc_ids[i] for i in keep],
        [task.doc_texts[i] for i in keep],
        task.query_ids,
        task.query_texts,
        task.qrels,
    )


def measure(encoder: Encoder, texts: list[str], index: dict, test, scifact) -> dict:
    encoder.encode(texts[:128])  # warm-up
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - started)
    row = {"spearman": sts_spearman(vectors, index, test), "per_s": rate}
    if scifact is not None:
        row["ndcg10"] = evaluate_retrieval(scifact, encoder)[0]["nDCG@10"]
    runner = encoder._adapter._runner
    check = encoder._adapter._engine_check(runner._session) if runner.engine.startswith("onnx") else None
    row["task_loss"] = check["task_loss"] if check else 0.0
    row["expected_sts_loss"] = check["expected_sts_loss"] if check else 0.0
    return row


def sensitivity(encoder: Encoder, opt: Path, work: Path, nodes: list[str]) -> list[tuple[str, float]]:
    """Calibration task loss with every quantizable node int8 except one, per node: the nodes whose exclusion helps
    most first (chosen on the calibration sentences only)."""
    out = []
    for k, node in enumerate(nodes):
        path = work / f"sens-{k}.onnx"
        quantize(opt, path, exclude=[node])
        out.append((node, encoder._adapter._engine_check(eng.make_session(path))["task_loss"]))
        path.unlink()
    return sorted(out, key=lambda item: item[1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--scifact-docs", type=int, default=1000, help="non-relevant SciFact abstracts kept (0: skip)")
    p.add_argument("--keep-fp32", type=int, nargs="+", default=[2, 4], help="sensitive nodes kept fp32")
    p.add_argument("--output", default=str(ROOT / "docs" / "results" / "engine_int8.md"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import onnx

    sts = load_sts_task("STS-B", args.data_root)
    test = sts.test_all
    texts = list(dict.fromkeys(test.sentences1 + test.sentences2))
    index = {s: i for i, s in enumerate(texts)}
    scifact = scifact_subset(args.data_root, args.scifact_docs)
    encoder = Encoder(None)
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    adapter = encoder._adapter
    eng._export(adapter.model, "encoder", dict(adapter._batch([eng.CALIBRATION[10], eng.CALIBRATION[5]])), work / "m")
    eng._optimize(adapter.model, work / "m", work / "opt.onnx")
    nodes = [n.name for n in onnx.load(str(work / "opt.onnx")).graph.node if n.op_type in ("MatMul", "Attention")]
    rows: dict[str, dict] = {"fp32 torch": measure(encoder, texts, index, test, scifact)}
    logger.info("fp32 torch %s", rows["fp32 torch"])
    use_graph(encoder, work / "opt.onnx")
    rows["fp32 onnx"] = measure(encoder, texts, index, test, scifact)
    ranked = sensitivity(encoder, work / "opt.onnx", work, nodes)
    logger.info("sensitivity (calibration task loss with the node fp32): %s", ranked[:8])
    ffn_out = [n for n in nodes if n.endswith("/output/dense/MatMul")]
    variants = {
        "dynamic, per-channel (semspace's old export)": lambda out: quantize(work / "opt.onnx", out),
        "+ reduce_range (7-bit weights)": lambda out: quantize(work / "opt.onnx", out, reduce_range=True),
        "MatMul only (fused Attention fp32)": lambda out: quantize(work / "opt.onnx", out, ops=["MatMul"]),
        "FFN output projections fp32 (6 nodes)": lambda out: quantize(work / "opt.onnx", out, exclude=ffn_out),
        "static QDQ, MinMax calibration, MatMul": lambda out: quantize_static_qdq(work / "opt.onnx", out, encoder),
    }
    for k in args.keep_fp32:
        keep = [node for node, _ in ranked[:k]]
        variants[f"{k} most sensitive nodes fp32 (calibration)"] = lambda out, keep=keep: quantize(
            work / "opt.onnx", out, exclude=keep
        )
    kept = {}
    for name, make in variants.items():
        out = work / f"v{len(kept)}.onnx"
        try:
            make(out)
        except Exception as exc:  # a variant ORT cannot build is reported, not fatal
            rows[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
            continue
        use_graph(encoder, out)
        rows[name] = measure(encoder, texts, index, test, scifact)
        kept[name] = out
        logger.info("%s %s", name, rows[name])
    write(args, rows, ranked, scifact)
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(work)


def write(args, rows: dict, ranked: list, scifact) -> None:
    base = rows["fp32 torch"]
    lines = results_header("int8 variants of the bundled MiniLM (issue 28 item 2)", " ".join(sys.argv))
    lines += [
        f"- CPU: {cpu_features().describe()}",
        f"- STS-B test: 1,379 pairs, 2,552 sentences; SciFact: {scifact.name if scifact else 'skipped'} "
        "(all test queries); task loss = the export check's calibration similarity-rank loss (Spearman points), "
        "modelled STS loss = expected_sts_loss on the same calibration sentences.",
        "",
        "| variant | STS-B Spearman | loss vs fp32 | SciFact nDCG@10 | loss vs fp32 | calibration task loss (the gate) "
        "| modelled STS loss | sentences/s (1 pass) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | | | | |")
            continue
        nd = f"{r['ndcg10']:.2f} | {base['ndcg10'] - r['ndcg10']:+.2f}" if "ndcg10" in r else "– | –"
        lines.append(
            f"| {name} | {r['spearman']:.2f} | {base['spearman'] - r['spearman']:+.2f} | {nd} | {r['task_loss']:.3f} "
            f"| {r['expected_sts_loss']:.3f} | {r['per_s']:.0f} |"
        )
    lines += ["", "Most sensitive nodes on the calibration sentences (task loss with only that node kept fp32):", ""]
    lines += [f"- `{node}`: {loss:.3f}" for node, loss in ranked[:6]]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
