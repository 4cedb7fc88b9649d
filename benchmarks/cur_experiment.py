"""CUR vs retrieve-and-rerank with a cross-encoder at fixed budgets of CE calls (issue "cur", REFERENCE §4).

1. Train a cross-encoder from the bundled all-MiniLM-L6-v2 weights on STS-B train (best dev checkpoint), report its
   STS-B test Spearman next to the bi-encoder's, and its pairs/s next to sentence-transformers' CrossEncoder.predict.
2. Corpus: seeded sample of distinct STS-B sentences (items); anchor / dev / test queries: other STS-B sentences.
   Score every query against every item with the CE once (cached); ground truth = exact CE top-k over all items.
3. Top-k-Recall@B for ANNCUR (random / k-means anchors, k_i chosen on dev), adaptive rounds (R=5), RnR with the
   dual encoder (raw, whitened) and BM25 — each spending exactly B CE calls; mean ± std over seeds; relative
   Frobenius error of the CUR approximation on the test rows vs (k_q, k_i).

Writes docs/results/cur.md, cur_recall.png, cur_heatmap.png. Cached: .cache/models/ce-stsb, .cache/cur/*.npy.

    python benchmarks/cur_experiment.py [--items 2000] [--anchor 100] [--dev 50] [--test 100] [--seeds 5]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from semspace.data import load_sts_task
from semspace.data.tasks import default_data_root
from semspace.encode import EmbeddingCache, Encoder
from semspace.evaluate.report import results_header
from semspace.interact import BM25FirstStage, CURIndex, retrieve_and_rerank
from semspace.interact.cross_encoder import CrossEncoder
from semspace.metrics import exact_top_k, recall_vs_exact, spearman
from semspace.train import CrossEncoderTrainConfig, train_cross_encoder
from semspace.transform import Whitening, paired_cosine

BUDGETS = (20, 50, 100, 200)
KS = (1, 10, 50)
log = logging.getLogger("cur")


def lookup(row: np.ndarray):
    return lambda ids: row[np.asarray(ids)]


def ensure_cross_encoder(path: Path, root: Path, epochs: int) -> dict:
    if (path / "config.json").exists():
        log.info("cross-encoder found at %s", path)
        import json

        return json.loads((path / "semspace_training.json").read_text())
    task = load_sts_task("STS-B", root)
    return train_cross_encoder(
        task.fit, task.dev, path, CrossEncoderTrainConfig(objective="bce", epochs=epochs, batch_size=16, max_label=5.0)
    )


def score_matrix(ce: CrossEncoder, queries: list[str], items: list[str], path: Path, chunk: int = 10) -> np.ndarray:
    """CE scores (queries × items), computed in chunks of queries and cached (resumable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = np.load(path) if path.exists() else np.zeros((0, len(items)), np.float32)
    rows = [done]
    started = time.perf_counter()
    for start in range(len(done), len(queries), chunk):
        block = queries[start : start + chunk]
        scores = ce.predict([(q, it) for q in block for it in items], batch_size=128, show_progress_bar=False)
        rows.append(scores.reshape(len(block), len(items)))
        np.save(path, np.vstack(rows))
        rate = (start + len(block) - len(done)) * len(items) / (time.perf_counter() - started)
        log.info("scored %d/%d queries (%.0f pairs/s)", start + len(block), len(queries), rate)
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--anchor", type=int, default=100)
    parser.add_argument("--dev", type=int, default=50)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/cur.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = args.data_root or default_data_root()

    # 1. Cross-encoder: train (cached), quality and throughput vs sentence-transformers.
    ce_path = args.work / "models" / "ce-stsb"
    history = ensure_cross_encoder(ce_path, root, args.epochs)
    ce = CrossEncoder(ce_path, batch_size=64)
    stsb = load_sts_task("STS-B", root)
    test_pairs = list(zip(stsb.test_all.sentences1, stsb.test_all.sentences2, strict=True))
    ce_rho = 100 * spearman(ce.predict(test_pairs, show_progress_bar=False), stsb.test_all.scores)
    cache = EmbeddingCache(args.work / "embeddings")
    encoder = Encoder()
    a = cache.encode(encoder, stsb.test_all.sentences1)[encoder.pooling]
    b = cache.encode(encoder, stsb.test_all.sentences2)[encoder.pooling]
    bi_rho = 100 * spearman(paired_cosine(a, b), stsb.test_all.scores)
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st_ce = STCrossEncoder(str(ce_path), device="cpu", max_length=ce.max_length)
    bench = test_pairs[:1000]
    ce.predict(bench[:64], show_progress_bar=False)
    st_ce.predict(bench[:64], show_progress_bar=False)
    t0 = time.perf_counter()
    ours = ce.predict(bench, batch_size=64, show_progress_bar=False)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = (
        st_ce.predict(bench, batch_size=64, show_progress_bar=False, activation_fn=None)
        if "activation_fn" in STCrossEncoder.predict.__code__.co_varnames
        else st_ce.predict(bench, batch_size=64)
    )
    t_st = time.perf_counter() - t0
    agree = spearman(ours, np.asarray(theirs))

    # 2. Corpus and queries (seeded), exact score matrix.
    sentences = list(dict.fromkeys(s for split in stsb.own_splits for s in split.sentences()))
    order = np.random.default_rng(0).permutation(len(sentences))
    items = [sentences[i] for i in order[: args.items]]
    rest = [sentences[i] for i in order[args.items :]]
    n_q = args.anchor + args.dev + args.test
    queries = rest[:n_q]
    R = score_matrix(ce, queries, items, args.work / "cur" / f"scores_{args.items}x{n_q}.npy").astype(np.float64)
    R_anchor, R_dev, R_test = R[: args.anchor], R[args.anchor : args.anchor + args.dev], R[args.anchor + args.dev :]
    q_test = queries[args.anchor + args.dev :]
    item_vectors = cache.encode(encoder, items)[encoder.pooling]
    query_vectors = cache.encode(encoder, queries)[encoder.pooling]
    whitening = Whitening(n_components=128).fit(item_vectors)

    def de_scores(vectors: np.ndarray, q_vec: np.ndarray) -> np.ndarray:
        v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return v @ (q_vec / np.linalg.norm(q_vec))

    bm25_scores = BM25FirstStage(items)

    test_first_stage = {
        "RnR-DE (raw)": [
            de_scores(item_vectors, query_vectors[args.anchor + args.dev + i]) for i in range(len(q_test))
        ],
        "RnR-DE (whitened k=128)": [
            de_scores(
                whitening.transform(item_vectors),
                whitening.transform(query_vectors[args.anchor + args.dev + i][None])[0],
            )
            for i in range(len(q_test))
        ],
        "RnR-BM25": [bm25_scores(q) for q in q_test],
    }

    def cur_recall(
        rows: np.ndarray, budget: int, k_i: int, anchors: str, rounds: int, seed: int, ks: tuple[int, ...]
    ) -> tuple[dict[int, float], float]:
        index = CURIndex(n_anchor_items=k_i, anchor_items=anchors, rcond=1e-3, seed=seed).fit_matrix(
            R_anchor, item_vectors if anchors == "kmeans" else None
        )
        recalls = {k: [] for k in ks}
        started = time.perf_counter()
        for row in rows:
            result = index.search(lookup(row), k=max(ks), budget=budget, rounds=rounds)
            assert result.calls <= budget
            for k in ks:
                recalls[k].append(recall_vs_exact(result.ids, exact_top_k(row, k), k))
        ms = 1000 * (time.perf_counter() - started) / len(rows)
        return {k: float(np.mean(v)) for k, v in recalls.items()}, ms

    # 3. Choose k_i per budget on dev (Top-10-Recall, seed 0), never on test.
    split_choice: dict[tuple[str, int], int] = {}
    for anchors in ("random", "kmeans"):
        for budget in BUDGETS:
            options = sorted(
                {max(5, int(budget * f)) for f in (0.25, 0.5, 0.75)} & set(range(1, min(budget, args.anchor) + 1))
            )
            scores = {k_i: cur_recall(R_dev, budget, k_i, anchors, 1, 0, (10,))[0][10] for k_i in options}
            split_choice[(anchors, budget)] = max(scores, key=scores.get)
            log.info("dev: %s B=%d k_i choices %s → %d", anchors, budget, scores, split_choice[(anchors, budget)])

    results: dict[str, dict[int, dict[int, tuple[float, float]]]] = {}
    timing: dict[str, float] = {}
    for name, anchors, rounds in (
        ("ANNCUR (random anchors)", "random", 1),
        ("ANNCUR (k-means anchors)", "kmeans", 1),
        ("adaCUR (R=5, random start)", "random", 5),
    ):
        results[name] = {}
        for budget in BUDGETS:
            k_i = split_choice[(anchors, budget)] if rounds == 1 else max(1, budget // rounds)
            per_seed = [cur_recall(R_test, budget, k_i, anchors, rounds, seed, KS) for seed in range(args.seeds)]
            results[name][budget] = {
                k: (float(np.mean([s[0][k] for s in per_seed])), float(np.std([s[0][k] for s in per_seed]))) for k in KS
            }
            timing[name] = float(np.mean([s[1] for s in per_seed]))
    for name, first in test_first_stage.items():
        results[name] = {}
        for budget in BUDGETS:
            recalls = {k: [] for k in KS}
            for row, stage in zip(R_test, first, strict=True):
                out = retrieve_and_rerank(stage, lookup(row), k=min(max(KS), budget), budget=budget)
                assert out.calls == budget
                for k in KS:
                    recalls[k].append(recall_vs_exact(out.ids, exact_top_k(row, k), k))
            results[name][budget] = {k: (float(np.mean(v)), 0.0) for k, v in recalls.items()}

    # Frobenius error heat map on the test rows.
    kq_grid = [q for q in (10, 25, 50, 75, 100, 150, 200) if q <= args.anchor]
    ki_grid = [10, 25, 50, 75, 100]
    heat = np.full((len(kq_grid), len(ki_grid)), np.nan)
    heat_reg = np.full_like(heat, np.nan)
    for i, k_q in enumerate(kq_grid):
        for j, k_i in enumerate(ki_grid):
            for target, rcond in ((heat, 1e-12), (heat_reg, 1e-3)):
                index = CURIndex(n_anchor_items=k_i, rcond=rcond, seed=0).fit_matrix(R_anchor[:k_q])
                approx = index.approximate(R_test[:, index.anchor_item_ids_])
                target[i, j] = np.linalg.norm(approx - R_test) / np.linalg.norm(R_test)

    write_report(
        args,
        history,
        ce_rho,
        bi_rho,
        len(bench) / t_ours,
        len(bench) / t_st,
        agree,
        results,
        timing,
        split_choice,
        kq_grid,
        ki_grid,
        heat,
        heat_reg,
        len(items),
        n_q,
    )


def write_report(
    args,
    history,
    ce_rho,
    bi_rho,
    ours_pps,
    st_pps,
    agree,
    results,
    timing,
    split_choice,
    kq_grid,
    ki_grid,
    heat,
    heat_reg,
    n_items,
    n_queries,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(KS), figsize=(5 * len(KS), 4))
    for ax, k in zip(axes, KS, strict=True):
        for name, by_budget in results.items():
            means = [by_budget[b][k][0] for b in BUDGETS]
            stds = [by_budget[b][k][1] for b in BUDGETS]
            ax.errorbar(BUDGETS, means, yerr=stds, marker="o", ms=3, capsize=2, label=name)
        ax.set_title(f"Top-{k}-Recall vs budget B")
        ax.set_xlabel("CE calls per query (B)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_name("cur_recall.png"), dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, data, title in ((axes[0], heat, "pinv, rcond=1e-12"), (axes[1], heat_reg, "regularised, rcond=1e-3")):
        image = ax.imshow(np.log10(data), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(ki_grid)), ki_grid)
        ax.set_yticks(range(len(kq_grid)), kq_grid)
        ax.set_xlabel("k_i (anchor items)")
        ax.set_ylabel("k_q (anchor queries)")
        ax.set_title(f"log10 relative Frobenius error, test rows ({title})", fontsize=9)
        for i in range(len(kq_grid)):
            for j in range(len(ki_grid)):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(out.with_name("cur_heatmap.png"), dpi=110)
    plt.close(fig)

    lines = [
        *results_header("Cross-encoder search with CUR vs retrieve-and-rerank", f"python {' '.join(sys.argv)}"),
        "",
        "## The cross-encoder",
        f"Trained from the bundled all-MiniLM-L6-v2 weights on STS-B train (BCE on label/5, "
        f"{history['config']['epochs']} epoch(s), batch {history['config']['batch_size']}, lr "
        f"{history['config']['lr']}), best dev checkpoint (dev Spearman {100 * history['best_dev_spearman']:.2f}).",
        "",
        "| model | STS-B test Spearman ×100 |",
        "|---|---|",
        f"| cross-encoder (ours, trained here) | {ce_rho:.2f} |",
        f"| bi-encoder all-MiniLM-L6-v2, cosine | {bi_rho:.2f} |",
        "",
        f"Throughput on 1,000 STS-B test pairs, batch 64: semspace `CrossEncoder.predict` {ours_pps:.0f} pairs/s, "
        f"sentence-transformers `CrossEncoder.predict` {st_pps:.0f} pairs/s (ratio {ours_pps / st_pps:.2f}×; "
        f"Spearman agreement of their scores {agree:.4f}).",
        "",
        "## Setup",
        f"- Items: {n_items} distinct STS-B sentences (seeded sample). Queries: {args.anchor} anchor (train), "
        f"{args.dev} dev (chooses the k_i/k_r split), {args.test} test; all other STS-B sentences. "
        f"Offline CE calls for CUR: k_q·|I| = {args.anchor * n_items:,}.",
        "- Ground truth: exact CE scores of each test query against every item. Top-k-Recall@B = share of the "
        "exact top-k among the k best exactly scored items after B CE calls. Every method spends exactly B calls.",
        f"- CUR: rcond 1e-3; mean ± std over {args.seeds} seeds (anchor choice). RnR baselines are deterministic.",
        "- k_i chosen on dev per budget (random / k-means): "
        + ", ".join(f"B={b}: {split_choice[('random', b)]} / {split_choice[('kmeans', b)]}" for b in BUDGETS)
        + ".",
        "- adaCUR: B split into 5 rounds of B/5 calls; round 1 scores random anchors, each later round scores the "
        "current top unscored items and adds them to the anchor set.",
        "",
    ]
    for k in KS:
        lines += [
            f"## Top-{k}-Recall@B (×100)",
            "| method | " + " | ".join(f"B={b}" for b in BUDGETS) + " |",
            "|---|" + "---|" * len(BUDGETS),
        ]
        for name, by_budget in results.items():
            cells = [f"{100 * by_budget[b][k][0]:.1f} ± {100 * by_budget[b][k][1]:.1f}" for b in BUDGETS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    best_cur = max(
        ("ANNCUR (random anchors)", "ANNCUR (k-means anchors)", "adaCUR (R=5, random start)"),
        key=lambda n: results[n][100][10][0],
    )
    de = max(results["RnR-DE (raw)"][100][10][0], results["RnR-DE (whitened k=128)"][100][10][0])
    ada_k1 = results["adaCUR (R=5, random start)"][100][1][0]
    de_k1 = max(results["RnR-DE (raw)"][100][1][0], results["RnR-DE (whitened k=128)"][100][1][0])
    km = np.mean([results["ANNCUR (k-means anchors)"][b][10][0] for b in BUDGETS])
    rnd = np.mean([results["ANNCUR (random anchors)"][b][10][0] for b in BUDGETS])
    lines += [
        "## Goals",
        f"- CUR beats RnR-DE on Top-10-Recall at B=100 by ≥ 10 points: best CUR ({best_cur}) "
        f"{100 * results[best_cur][100][10][0]:.1f} vs best RnR-DE {100 * de:.1f} → "
        f"{'met' if results[best_cur][100][10][0] - de >= 0.10 else 'NOT met'} "
        f"({100 * (results[best_cur][100][10][0] - de):+.1f} points).",
        f"- Adaptive rounds reach at least RnR-DE at k=1 (B=100): {100 * ada_k1:.1f} vs {100 * de_k1:.1f} → "
        f"{'met' if ada_k1 >= de_k1 else 'NOT met'}.",
        f"- k-means anchors beat random anchors (Top-10, mean over budgets): {100 * km:.1f} vs {100 * rnd:.1f} → "
        f"{'met' if km > rnd else 'NOT met'}.",
        "",
        "## Overhead per query (excluding CE calls)",
        *[f"- {name}: {ms:.2f} ms" for name, ms in timing.items()],
        "",
        "## CUR approximation error vs (k_q, k_i)",
        "![heat map](cur_heatmap.png)",
        "",
        "![recall](cur_recall.png)",
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
