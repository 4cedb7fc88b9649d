"""Foundation benchmark: semspace vs its peers in the same run, as ratios.

1. Encoding: `semspace.Encoder` vs `sentence_transformers.SentenceTransformer.encode` on the bundled
   all-MiniLM-L6-v2, same texts, same batch size (and the vectors must agree).
2. Whitening fit and transform: `semspace.Whitening` vs `sklearn.decomposition.PCA(whiten=True)` (full SVD solver
   and the default solver) at the same k, plus streaming fit from `WhiteningStats` shards.

Writes docs/results/bench_foundation.md. Run alone: two heavy jobs at once spoil timings.

    python benchmarks/bench_foundation.py [--texts 1500] [--rows 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("docs/results/bench_foundation.md"))
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.decomposition import PCA

    from semspace import Encoder, Whitening, WhiteningStats
    from semspace.data import load_sample
    from semspace.encode import bundled_model_path
    from semspace.evaluate.report import results_header

    torch.manual_seed(0)
    sample = load_sample()
    texts = list(dict.fromkeys(s for split in sample.values() for s in split.sentences()))[: args.texts]
    encoder = Encoder(batch_size=64)
    st_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    encoder.encode(texts[:64])
    st_model.encode(texts[:64])
    t_ours = best_of(lambda: encoder.encode(texts, show_progress_bar=False), 2)
    t_st = best_of(lambda: st_model.encode(texts, batch_size=64, show_progress_bar=False), 2)
    ours = encoder.encode(texts, normalize=True, show_progress_bar=False)
    theirs = st_model.encode(texts, batch_size=64)
    max_diff = float(np.abs(ours - theirs).max())

    rng = np.random.default_rng(0)
    d = encoder.dim
    mixing = rng.normal(size=(d, d)) / np.sqrt(d) * np.geomspace(3, 0.03, d)
    X = (rng.normal(size=(args.rows, d)) @ mixing + rng.normal(size=d)).astype(np.float32)
    t_fit_ours = best_of(lambda: Whitening(n_components=args.k).fit(X))
    t_fit_pca_full = best_of(lambda: PCA(n_components=args.k, whiten=True, svd_solver="full").fit(X))
    t_fit_pca_auto = best_of(lambda: PCA(n_components=args.k, whiten=True).fit(X))
    shards = np.array_split(X, 8)

    def streamed() -> None:
        stats = WhiteningStats()
        for shard in shards:
            stats.merge(WhiteningStats().update(shard))
        Whitening(n_components=args.k).fit_stats(stats)

    t_stream = best_of(streamed)
    w = Whitening(n_components=args.k).fit(X)
    pca = PCA(n_components=args.k, whiten=True, svd_solver="full").fit(X)
    t_tr_ours = best_of(lambda: w.transform(X))
    t_tr_pca = best_of(lambda: pca.transform(X))
    a, b = w.transform(X[:2000]).astype(np.float64), pca.transform(X[:2000])
    cos = lambda m: (m / np.linalg.norm(m, axis=1, keepdims=True)) @ (m / np.linalg.norm(m, axis=1, keepdims=True)).T  # noqa: E731
    cos_diff = float(np.abs(cos(a) - cos(b)).max())

    n = len(texts)
    command = "python " + " ".join([sys.argv[0], *sys.argv[1:]])
    lines = [
        *results_header("Foundation benchmark: encoding and whitening vs peers", command),
        "- Timings are the best of 2 (encoding) or 3 (whitening) runs, same process, same data.",
        "",
        f"## Encoding {n} STS-B sample sentences, bundled all-MiniLM-L6-v2, batch 64",
        "| library | seconds | sentences/s | ratio (semspace ÷ peer time) |",
        "|---|---|---|---|",
        f"| semspace `Encoder.encode` | {t_ours:.2f} | {n / t_ours:.0f} | {t_ours / t_st:.2f} |",
        f"| sentence-transformers `encode` | {t_st:.2f} | {n / t_st:.0f} | 1.00 |",
        "",
        f"Max |difference| of the L2-normalised vectors: {max_diff:.1e}.",
        "",
        f"## Whitening fit / transform, {args.rows:,} × {d} float32, k = {args.k}",
        "| method | fit s | transform s | fit ratio (semspace ÷ peer) |",
        "|---|---|---|---|",
        f"| semspace `Whitening` (float64 Σxxᵀ + eigh) | {t_fit_ours:.2f} | {t_tr_ours:.2f} | 1.00 |",
        f"| semspace streaming: 8 `WhiteningStats` shards merged | {t_stream:.2f} | – | – |",
        f"| sklearn `PCA(whiten=True, svd_solver='full')` | {t_fit_pca_full:.2f} | {t_tr_pca:.2f} | "
        f"{t_fit_ours / t_fit_pca_full:.2f} |",
        f"| sklearn `PCA(whiten=True)` (default solver) | {t_fit_pca_auto:.2f} | – | "
        f"{t_fit_ours / t_fit_pca_auto:.2f} |",
        "",
        f"Max |difference| of pairwise cosines, semspace vs sklearn at k={args.k} (2,000 rows): {cos_diff:.1e}.",
        "Whitening needs only O(d²) memory for its statistics whatever N (sklearn PCA holds the whole matrix), and "
        "shards merge exactly.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
