"""Issue 28 item 2: int8 of the bundled MiniLM that loses ≤ 0.1 STS Spearman, and the gate `auto` decides by.

    python benchmarks/bench_int8.py                      # every variant: 7 English STS tests + a SciFact subset
    python benchmarks/bench_int8.py --scifact-docs 0     # STS only
    python benchmarks/bench_int8.py --alphas 0.8         # one SmoothQuant strength
    python benchmarks/bench_int8.py --model bundled:multilingual-e5-small-q4 --language zh --max-pairs 1000 \
        --output docs/results/engine_int8_zh.md          # the converted e5 on the five Chinese tests (capped)

Every variant is the library's own export — ``Encoder(backend=...)`` into a fresh cache folder — so what is measured
is what users run: fp32 ONNX, bf16 autocast (where the CPU has bf16 units), plain dynamic int8 (semspace's export
before SmoothQuant) and dynamic int8 after SmoothQuant at each α (:mod:`semspace.encode.smoothquant`). Per variant:
Spearman on the seven English STS test sets and its loss against fp32 PyTorch (per task and averaged: one task's
difference is mostly which pairs swap), SciFact nDCG@10 on a subset (every test query; the relevant abstracts plus the
first --scifact-docs others), the export check's task loss (what ``auto`` decides by:
:func:`semspace.encode.engine.pair_similarity_loss` over the graded calibration pairs), the gate of rule 2 for
comparison (Spearman loss over all pairs of the 40 calibration sentences), and sentences/s (one pass over the STS
sentences: indicative only; bench_engine.py is the speed benchmark). α is chosen by the task loss on the calibration
pairs; the test sets only report. Writes docs/results/engine_int8.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import semspace.encode.smoothquant as smoothquant  # noqa: E402
from semspace import Encoder  # noqa: E402
from semspace.data import load_sts_task  # noqa: E402
from semspace.data.retrieval import RetrievalTask, load_retrieval_task  # noqa: E402
from semspace.data.tasks import CHINESE_TASKS, ENGLISH_TASKS  # noqa: E402
from semspace.encode import engine as eng  # noqa: E402
from semspace.encode.auto import MAX_TASK_LOSS  # noqa: E402
from semspace.encode.calibration import CALIBRATION  # noqa: E402
from semspace.encode.cpu import cpu_features  # noqa: E402
from semspace.evaluate.report import results_header  # noqa: E402
from semspace.evaluate.retrieval import evaluate_retrieval  # noqa: E402

logger = logging.getLogger("bench_int8")


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


class StsTests:
    """The STS test sets of a language (English: seven, Chinese: five), their sentences encoded once per variant."""

    def __init__(self, data_root: str, language: str = "en", max_pairs: int | None = None) -> None:
        names = ENGLISH_TASKS if language == "en" else CHINESE_TASKS
        self.tasks = {name: load_sts_task(name, data_root, max_pairs=max_pairs) for name in names}
        pairs = [p for task in self.tasks.values() for p in task.test.values()]
        self.texts = list(dict.fromkeys(s for p in pairs for s in p.sentences1 + p.sentences2))
        self.index = {s: i for i, s in enumerate(self.texts)}

    def scores(self, vectors: np.ndarray) -> dict[str, float]:
        """Spearman × 100 per task (STS12–16: the unweighted mean over their subsets; the project's STS tables read
        one Spearman over `all` instead, so these columns compare the variants under one rule of their own)."""
        out = {}
        for name, task in self.tasks.items():
            per_subset = []
            for pairs in task.test.values():
                a = vectors[[self.index[s] for s in pairs.sentences1]]
                b = vectors[[self.index[s] for s in pairs.sentences2]]
                cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
                per_subset.append(spearmanr(cos, pairs.scores).statistic * 100)
            out[name] = float(np.mean(per_subset))
        return out


def variant_encoder(model: str | None, backend: str, alpha: float | None, cache: Path) -> Encoder:
    """The library's export of `backend` into `cache` (fresh), SmoothQuant at `alpha` (None: off, plain dynamic)."""
    os.environ["SEMSPACE_CACHE"] = str(cache)
    # the library has no switch for either (its export always smooths at ALPHA): both patched for this export only
    original, original_alpha = smoothquant.smooth_graph, smoothquant.ALPHA
    if alpha is None:
        smoothquant.smooth_graph = lambda source, target, batches, alpha=None: shutil.copy(source, target) and 0
    else:
        smoothquant.ALPHA = alpha
    try:
        return Encoder(model, backend=backend)
    finally:
        smoothquant.smooth_graph, smoothquant.ALPHA = original, original_alpha


def measure(encoder: Encoder, sts: StsTests, scifact: RetrievalTask | None, reference: np.ndarray | None) -> dict:
    encoder.encode(sts.texts[:256])  # warm-up
    started = time.perf_counter()
    vectors = encoder.encode(sts.texts)
    row = {"per_s": len(sts.texts) / (time.perf_counter() - started), "sts": sts.scores(vectors)}
    if scifact is not None:
        row["ndcg10"] = evaluate_retrieval(scifact, encoder)[0]["nDCG@10"]
    check = (encoder._adapter.engine_manifest or {}).get("check") or {}
    row["task_loss"] = check.get("task_loss", 0.0)
    calibration = encoder.encode(list(CALIBRATION))
    if reference is not None:  # the gate of rule 2: Spearman over every pair of the 40 calibration sentences
        rho = spearmanr(eng.pairwise_cosines(calibration), eng.pairwise_cosines(reference)).statistic
        row["all_pairs_loss"] = float(100 * (1 - rho))
    else:
        row["calibration"] = calibration
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--scifact-docs", type=int, default=500, help="non-relevant SciFact abstracts kept (0: skip)")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    p.add_argument("--model", default=None, help="the encoder (default: the bundled MiniLM)")
    p.add_argument("--language", choices=["en", "zh"], default="en", help="which STS test sets")
    p.add_argument("--max-pairs", type=int, default=None, help="a seeded sample of at most this many pairs per set")
    p.add_argument("--output", default=str(ROOT / "docs" / "results" / "engine_int8.md"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sts = StsTests(args.data_root, args.language, args.max_pairs)
    scifact = scifact_subset(args.data_root, args.scifact_docs if args.language == "en" else 0)
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    rows = {"fp32 torch": measure(Encoder(args.model, backend="torch"), sts, scifact, None)}
    reference = rows["fp32 torch"].pop("calibration")
    variants: list[tuple[str, str, float | None]] = [("fp32 onnx", "onnx", None)]
    if cpu_features().bf16_units:
        variants.append(("torch-bf16 (bf16 units)", "torch-bf16", None))
    variants.append(("dynamic int8, no smoothing (the export before)", "onnx-int8", None))
    variants += [(f"SmoothQuant α={a:g} + dynamic int8", "onnx-int8", a) for a in args.alphas]
    for k, (name, backend, alpha) in enumerate(variants):
        encoder = variant_encoder(args.model, backend, alpha, work / f"cache{k}")
        rows[name] = measure(encoder, sts, scifact, reference)
        logger.info("%s: %s", name, {key: value for key, value in rows[name].items() if key != "sts"})
    write(args, rows, scifact, len(sts.texts))
    shutil.rmtree(work, ignore_errors=True)


def write(args, rows: dict, scifact: RetrievalTask | None, n_texts: int) -> None:
    base = rows["fp32 torch"]
    tasks = list(base["sts"])
    headline = "STS-B" if "STS-B" in tasks else tasks[-1]
    title = f"int8 of {args.model or 'the bundled MiniLM'}: SmoothQuant and the auto gate (issue 28 item 2)"
    lines = results_header(title, " ".join(sys.argv))
    lines += [
        f"- STS test sets: {', '.join(tasks)} ({n_texts:,} sentences"
        + (f"; at most {args.max_pairs:,} pairs each, seeded sample" if args.max_pairs else "")
        + "); SciFact: "
        f"{f'{scifact.name} (all test queries)' if scifact else 'skipped'}. Loss = fp32 PyTorch's Spearman "
        "(or nDCG@10) minus the variant's, in points; avg = the mean over the tasks.",
        "- Gate = the export check's task loss, what `auto` takes an engine by (at most "
        f"{MAX_TASK_LOSS}): 100·(1 − r), r the correlation of the variant's cosines with fp32's over the graded "
        "calibration pairs of each language the model reads (English 400, Chinese 120; the largest). Old gate = "
        "rule 2's: Spearman loss over all 780 pairs of the 40 calibration sentences.",
        "",
        "| variant | " + " | ".join(f"{t} loss" for t in tasks) + f" | **avg loss** | {headline} Spearman | "
        "SciFact nDCG@10 (loss) | gate | old gate | sentences/s (1 pass) |",
        "|---|" + "---|" * (len(tasks) + 6),
    ]
    for name, r in rows.items():
        losses = [base["sts"][t] - r["sts"][t] for t in tasks]
        nd = f"{r['ndcg10']:.2f} ({base['ndcg10'] - r['ndcg10']:+.2f})" if "ndcg10" in r else "–"
        old = f"{r['all_pairs_loss']:.3f}" if "all_pairs_loss" in r else "–"
        lines.append(
            f"| {name} | " + " | ".join(f"{x:+.2f}" for x in losses) + f" | **{np.mean(losses):+.3f}** | "
            f"{r['sts'][headline]:.2f} | {nd} | {r['task_loss']:.3f} | {old} | {r['per_s']:.0f} |"
        )
    path = Path(args.output)
    notes = ""
    if path.exists() and "\n## Notes" in path.read_text():
        notes = path.read_text()[path.read_text().index("\n## Notes") :]
    path.write_text("\n".join(lines) + "\n" + notes)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
