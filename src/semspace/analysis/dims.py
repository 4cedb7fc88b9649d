"""How many dimensions do I need? The logic behind `semspace dims`.

For N vectors: the Johnson–Lindenstrauss bound ⌈24 ln N / ε²⌉ (kexue.fm 8679) and the word-vector rule ⌈8.33 ln N⌉
(kexue.fm 7695); the eigen-spectrum of the covariance and the k that keeps 90/95/99% of the variance; and, with
labelled dev pairs, Spearman vs k for four ways to reach k dimensions, all fitted on the given vectors:

- ``pca``: β=1, γ=0 (centre, rotate, keep the top k; kexue.fm 9079),
- ``whitening``: β=γ=1 (BERT-whitening, kexue.fm 8069),
- ``rotation``: β=γ=0 (no centring, no scaling: top-k directions of the uncentred second moment),
- ``random``: a Gaussian random projection (kexue.fm 8679), the baseline the lemma speaks about.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semspace._io import atomic_write_png
from semspace.errors import InvalidInputError, check_param
from semspace.metrics import spearman
from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension
from semspace.transform.similarity import paired_cosine
from semspace.transform.spectrum import Spectrum
from semspace.transform.stats import WhiteningStats, as_vectors

METHODS = {"pca": (1.0, 0.0), "whitening": (1.0, 1.0), "rotation": (0.0, 0.0)}
VARIANCE_LEVELS = (0.9, 0.95, 0.99)
DEFAULT_JL_EPS = (0.1, 0.2, 0.5)


def default_ks(d: int) -> list[int]:
    """Powers of two from 8 below d, then d itself."""
    ks = [2**i for i in range(3, 32) if 2**i < d]
    return [*ks, d]


def dimension_report(
    vectors: np.ndarray,
    dev_pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ks: Sequence[int] | None = None,
    jl_eps: Sequence[float] = DEFAULT_JL_EPS,
    seed: int = 0,
) -> dict[str, object]:
    """Dimension rules, spectrum and (with dev pairs (a, b, gold)) Spearman × 100 vs k; a JSON-ready dict.

    Keys: ``n_points``, ``dim``, ``entropy_dimension``, ``jl_dimension`` ({ε: n}), ``eigenvalues`` (descending,
    float64 covariance), ``variance_k`` ({level: smallest k keeping that fraction}), and with dev pairs ``ks``,
    ``raw_spearman`` and ``spearman`` ({method: [value per k]}) for the methods of :data:`METHODS` + ``random``.
    """
    X = as_vectors(vectors, owner="vectors")
    n, d = X.shape
    if n < 2:
        raise InvalidInputError(f"dims needs at least 2 vectors; got {n}.")
    stats = WhiteningStats().update(X)
    # β = 1: the covariance spectrum, shared with the pca and whitening curves below.
    spectra = {1.0: Spectrum.from_stats(stats, beta=1.0)}
    eigenvalues = spectra[1.0].values
    total = float(eigenvalues.sum())
    explained = np.cumsum(eigenvalues) / total if total > 0 else np.ones(d)
    report: dict[str, object] = {
        "n_points": int(n),
        "dim": int(d),
        "entropy_dimension": entropy_dimension(n),
        "jl_dimension": {f"{e:g}": jl_dimension(n, e) for e in jl_eps},
        "eigenvalues": eigenvalues.tolist(),
        # Smallest k whose top-k eigenvalues hold the level (1e-12 slack for round-off at exactly the level).
        "variance_k": {f"{v:g}": int(np.searchsorted(explained, v - 1e-12) + 1) for v in VARIANCE_LEVELS},
    }
    if dev_pairs is None:
        return report
    a, b, gold = dev_pairs
    a = as_vectors(a, d, "dev vectors a")
    b = as_vectors(b, d, "dev vectors b")
    gold = np.asarray(gold, dtype=np.float64)
    if not (len(a) == len(b) == len(gold)):
        raise InvalidInputError(f"dev pairs: {len(a)} / {len(b)} vectors and {len(gold)} scores; they must match.")
    k_list = sorted(set(default_ks(d) if ks is None else ks))
    for k in k_list:
        check_param("ks", "dimension_report", isinstance(k, int) and 1 <= k <= d, f"ints in [1, {d}]", k)
    curves: dict[str, list[float]] = {}
    for name, (beta, gamma) in METHODS.items():
        # One decomposition per β: the top-k kernel is the first k columns of the full one.
        if beta not in spectra:
            spectra[beta] = Spectrum.from_stats(stats, beta)
        spectrum = spectra[beta]
        kernel = spectrum.kernel(gamma)
        ta, tb = (np.asarray(v, dtype=np.float64) - spectrum.shift for v in (a, b))
        curves[name] = [100 * spearman(paired_cosine(ta @ kernel[:, :k], tb @ kernel[:, :k]), gold) for k in k_list]
    curves["random"] = []
    for k in k_list:
        rp = RandomProjection(k, seed=seed).fit(X)
        curves["random"].append(100 * spearman(paired_cosine(rp.transform(a), rp.transform(b)), gold))
    report["ks"] = k_list
    report["raw_spearman"] = 100 * spearman(paired_cosine(a, b), gold)
    report["spearman"] = curves
    return report


def format_dims_report(report: dict) -> str:
    """A readable plain-text table of :func:`dimension_report`'s dict."""
    n, d = report["n_points"], report["dim"]
    values = np.asarray(report["eigenvalues"])
    lines = [
        f"vectors: {n} x {d}",
        f"entropy rule  8.33 ln N  (kexue.fm 7695): n >= {report['entropy_dimension']}",
    ]
    for eps, k in report["jl_dimension"].items():
        note = "  (more than d: the bound does not reduce this set)" if k >= d else ""
        lines.append(f"JL bound  24 ln N / eps^2, eps={eps:<4} (kexue.fm 8679): n >= {k}{note}")
    lines.append("variance kept by the top k covariance directions:")
    lines += [f"  {float(level):.0%}: k = {k}" for level, k in report["variance_k"].items()]
    top = values[0] if values.size and values[0] > 0 else 1.0
    shown = [i for i in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if i <= d]
    lines.append("eigen-spectrum (λ_i / λ_1): " + ", ".join(f"{i}: {values[i - 1] / top:.3g}" for i in shown))
    if "spearman" in report:
        ks = report["ks"]
        lines.append(f"dev Spearman x 100 vs k (raw, all {d} dims: {report['raw_spearman']:.2f}):")
        lines.append(f"  {'k':>6} " + " ".join(f"{m:>10}" for m in report["spearman"]))
        for i, k in enumerate(ks):
            lines.append(f"  {k:>6} " + " ".join(f"{curve[i]:>10.2f}" for curve in report["spearman"].values()))
    return "\n".join(lines)


def plot_dims(report: dict, path: str | Path) -> Path:
    """PNG: the covariance eigen-spectrum on a log scale, and with dev pairs a second panel of Spearman vs k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_dev = "spearman" in report
    fig, axes = plt.subplots(1, 2 if with_dev else 1, figsize=(11 if with_dev else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    values = np.asarray(report["eigenvalues"], dtype=np.float64)
    # Eigenvalues below 1e-12 λ_1 are round-off of exact zeros (rank < d); a log axis would stretch to show them.
    positive = values > 1e-12 * (values[0] if values.size else 0.0)
    index = np.arange(1, values.size + 1)
    ax.semilogy(index[positive], values[positive], lw=1.5)
    ax.axvline(report["entropy_dimension"], color="tab:red", ls="--", lw=1, label="8.33 ln N")
    for level, k in report["variance_k"].items():
        ax.axvline(k, color="grey", ls=":", lw=1)
        ax.text(k, ax.get_ylim()[1], f"{float(level):.0%}", fontsize=7, ha="center", va="top")
    ax.set_xlabel("index i (descending)")
    ax.set_ylabel("covariance eigenvalue λ_i (log)")
    ax.set_title(f"eigen-spectrum, N={report['n_points']}, d={report['dim']}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    if with_dev:
        ax = axes[0][1]
        labels = {"pca": "PCA (β=1, γ=0)", "whitening": "whitening (β=γ=1)", "rotation": "β=γ=0", "random": "random"}
        for name, curve in report["spearman"].items():
            ax.plot(report["ks"], curve, marker="o", ms=3, label=labels.get(name, name))
        ax.axhline(report["raw_spearman"], color="black", ls=":", lw=1, label="raw (all d)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (output dimensions)")
        ax.set_ylabel("dev Spearman × 100")
        ax.set_title("Spearman vs k (fitted on the input vectors)", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return atomic_write_png(path, fig)


def plot_spectra(named_vectors: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """PNG: covariance eigen-spectra of several vector sets on one log-scale chart (e.g. the two sides of a drift)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, X in named_vectors.items():
        values = Spectrum.from_stats(WhiteningStats().update(X)).values
        positive = values > 1e-12 * values[0]  # drop round-off zeros, as in plot_dims
        ax.semilogy(np.arange(1, values.size + 1)[positive], values[positive], lw=1.5, label=f"{name} (N={len(X)})")
    ax.set_xlabel("index i (descending)")
    ax.set_ylabel("covariance eigenvalue λ_i (log)")
    ax.set_title(title or "eigen-spectra", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return atomic_write_png(path, fig)
