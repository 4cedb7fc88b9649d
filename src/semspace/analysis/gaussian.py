"""Gaussian fits of two vector sets and the distances between them (kexue.fm 8512).

For p = N(μ_p, Σ_p), q = N(μ_q, Σ_q) in n dimensions:

- KL(p‖q) = ½[(μ_p−μ_q)ᵀΣ_q⁻¹(μ_p−μ_q) − ln det(Σ_q⁻¹Σ_p) + Tr(Σ_q⁻¹Σ_p) − n]
- Bhattacharyya = ⅛(μ_p−μ_q)ᵀΣ̄⁻¹(μ_p−μ_q) + ½ ln[det Σ̄ / √(det Σ_p det Σ_q)],  Σ̄ = (Σ_p+Σ_q)/2
- W₂² = ‖μ_p−μ_q‖² + Tr Σ_p + Tr Σ_q − 2 Tr[(Σ_p^{1/2} Σ_q Σ_p^{1/2})^{1/2}]

The means and covariances come from :class:`~semspace.transform.WhiteningStats` (exact float64 sums), so the
statistics a whitening already keeps give a drift measure between, e.g., indexed documents and incoming queries.

Numerics: everything is float64 and goes through one symmetric eigendecomposition of Σ_p and one of the "relative"
matrix A = Σ_p^{-1/2} Σ_q Σ_p^{-1/2} (no explicit inverse). With a_i the eigenvalues of A and z = Uᵀ Σ_p^{-1/2} δ
(δ = μ_p − μ_q, U the eigenvectors of A):

- KL(q‖p) = ½[Σ z_i² + Σ (a_i − ln a_i − 1)]
- KL(p‖q) = ½[Σ z_i²/a_i + Σ (1/a_i + ln a_i − 1)]
- Bhattacharyya = ¼ Σ z_i²/(1 + a_i) + ½ Σ ln[(1 + a_i) / (2√a_i)]

Every summand is ≥ 0, so there is no cancellation between a large trace and n, and identical inputs give 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import logsumexp

from semspace.errors import InvalidInputError, SingularCovarianceError, check_param
from semspace.transform.stats import WhiteningStats, as_vectors

# A covariance whose smallest eigenvalue is below RCOND × the largest is treated as singular: beyond a condition
# number of 1e10 the float64 sums E[xxᵀ] − μμᵀ carry too little precision for log-dets and solves to mean anything.
RCOND = 1e-10


@dataclass(frozen=True, eq=False)
class GaussianFit:
    """N(mean, cov) fitted to a set of vectors: float64 mean (d,), population covariance (d, d), sample count."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def from_stats(cls, stats: WhiteningStats) -> GaussianFit:
        """The Gaussian of running sums (shards merged or not); raises NotFittedError when they are empty."""
        return cls(stats.mean.copy(), stats.cov.copy(), int(stats.count))

    @classmethod
    def from_vectors(cls, X: np.ndarray) -> GaussianFit:
        return cls.from_stats(WhiteningStats().update(X))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def _as_fit(x: GaussianFit | WhiteningStats | np.ndarray, name: str) -> GaussianFit:
    if isinstance(x, GaussianFit):
        return x
    if isinstance(x, WhiteningStats):
        return GaussianFit.from_stats(x)
    return GaussianFit.from_vectors(as_vectors(x, owner=name))


def _pair(p: object, q: object, owner: str, eps: float | None) -> tuple[GaussianFit, GaussianFit, float]:
    """Both fits, checked to share a dimension, with the ridge r = eps · mean variance added to both covariances."""
    check_param(
        "eps",
        owner,
        eps is None or (isinstance(eps, int | float | np.floating) and np.isfinite(eps) and eps > 0),
        "None or a float > 0",
        eps,
    )
    fp, fq = _as_fit(p, "p"), _as_fit(q, "q")  # type: ignore[arg-type]
    if fp.dim != fq.dim:
        raise InvalidInputError(f"{owner}: p has {fp.dim} dimensions and q has {fq.dim}; they must match.")
    if eps is None:
        return fp, fq, 0.0
    # Relative ridge, the same for both: adding N(0, rI) noise to both sets, scale-free through the mean variance.
    ridge = float(eps) * (np.trace(fp.cov) + np.trace(fq.cov)) / (2 * fp.dim)
    eye = np.eye(fp.dim) * ridge
    return GaussianFit(fp.mean, fp.cov + eye, fp.count), GaussianFit(fq.mean, fq.cov + eye, fq.count), ridge


def _eigh_checked(cov: np.ndarray, name: str, fit: GaussianFit, eps: float | None) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    top = float(values[-1])
    if top <= 0 or values[0] <= RCOND * top:
        ratio = 0.0 if top <= 0 else max(float(values[0]), 0.0) / top
        few = f"; it has {fit.count} samples for {fit.dim} dimensions" if fit.count <= fit.dim else ""
        hint = "a larger eps" if eps is not None else "eps (e.g. eps=1e-6; CLI: --eps 1e-6)"
        raise SingularCovarianceError(
            f"The covariance of {name} is singular or ill-conditioned (λ_min/λ_max = {ratio:.2e} <= {RCOND:g}){few}; "
            f"pass {hint} to add a ridge eps·(mean variance)·I to both covariances."
        )
    return values, vectors


def _relative(p: GaussianFit, q: GaussianFit, eps: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(a, z): eigenvalues of A = Σ_p^{-1/2} Σ_q Σ_p^{-1/2} and z = Uᵀ Σ_p^{-1/2} (μ_p − μ_q)."""
    lam_p, vec_p = _eigh_checked(p.cov, "p", p, eps)
    _eigh_checked(q.cov, "q", q, eps)
    W = vec_p / np.sqrt(lam_p)  # Σ_p^{-1/2} up to a rotation: WᵀΣ_pW = I
    A = W.T @ q.cov @ W
    a, U = np.linalg.eigh((A + A.T) / 2)
    # A is positive definite when Σ_q is; round-off can only push its tiny eigenvalues towards 0.
    a = np.maximum(a, np.finfo(np.float64).tiny)
    z = U.T @ (W.T @ (p.mean - q.mean))
    return a, z


def kl_divergence(
    p: GaussianFit | WhiteningStats | np.ndarray, q: GaussianFit | WhiteningStats | np.ndarray, eps: float | None = None
) -> float:
    """KL(p‖q) in nats between the Gaussian fits of p and q (kexue.fm 8512).

    p, q: a :class:`GaussianFit`, a :class:`WhiteningStats`, or vectors (n, d). eps: ridge (fraction of the mean
    variance) added to both covariances; without it a singular covariance raises SingularCovarianceError.
    """
    fp, fq, _ = _pair(p, q, "kl_divergence", eps)
    a, z = _relative(fp, fq, eps)
    return float(0.5 * (np.sum(z * z / a) + np.sum(1.0 / a + np.log(a) - 1.0)))


def bhattacharyya(
    p: GaussianFit | WhiteningStats | np.ndarray, q: GaussianFit | WhiteningStats | np.ndarray, eps: float | None = None
) -> float:
    """Bhattacharyya distance between the Gaussian fits of p and q (symmetric; kexue.fm 8512). eps as KL."""
    fp, fq, _ = _pair(p, q, "bhattacharyya", eps)
    a, z = _relative(fp, fq, eps)
    return float(0.25 * np.sum(z * z / (1.0 + a)) + 0.5 * np.sum(np.log1p(a) - np.log(2.0) - 0.5 * np.log(a)))


def sqrtm_psd(S: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix via eigh (round-off negatives → 0)."""
    values, vectors = np.linalg.eigh((S + S.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def wasserstein2(
    p: GaussianFit | WhiteningStats | np.ndarray,
    q: GaussianFit | WhiteningStats | np.ndarray,
    method: Literal["symmetric", "product"] = "symmetric",
) -> float:
    """2-Wasserstein distance W₂ (not squared) between the Gaussian fits of p and q (kexue.fm 8512).

    The cross term Tr[(Σ_p^{1/2} Σ_q Σ_p^{1/2})^{1/2}] has two equal forms: ``method="symmetric"`` computes it as
    Σ √λ_i of the symmetric PSD matrix Σ_p^{1/2} Σ_q Σ_p^{1/2} (eigh; the default, and the stable one);
    ``method="product"`` as Σ √λ_i of the non-symmetric product Σ_p Σ_q, whose eigenvalues are the same (general
    eigensolver; imaginary round-off dropped). W₂ needs no inverse, so singular covariances are fine.
    """
    check_param("method", "wasserstein2", method in ("symmetric", "product"), "'symmetric' or 'product'", method)
    fp, fq, _ = _pair(p, q, "wasserstein2", None)
    if method == "symmetric":
        root = sqrtm_psd(fp.cov)
        cross = np.linalg.eigvalsh(root @ fq.cov @ root)
    else:
        cross = np.linalg.eigvals(fp.cov @ fq.cov).real
    cross_trace = float(np.sum(np.sqrt(np.clip(cross, 0.0, None))))
    delta = fp.mean - fq.mean
    squared = float(delta @ delta) + float(np.trace(fp.cov) + np.trace(fq.cov)) - 2.0 * cross_trace
    # Identical covariances cancel to round-off, which can be slightly negative.
    return float(np.sqrt(max(squared, 0.0)))


def mean_cosine_to_centroid(X: np.ndarray) -> float:
    """Mean over rows of cos(x_i, x̄): near 1 when all vectors crowd in one cone (anisotropy), 0 when centred.

    Rows of norm 0 count as cosine 0; a centroid of norm 0 gives 0.
    """
    X = as_vectors(X, owner="X").astype(np.float64, copy=False)
    if X.shape[0] == 0:
        raise InvalidInputError("mean_cosine_to_centroid needs at least one vector.")
    centroid = X.mean(axis=0)
    scale = np.linalg.norm(centroid)
    if scale == 0:
        return 0.0
    norms = np.linalg.norm(X, axis=1)
    cos = (X @ (centroid / scale)) / np.maximum(norms, 1e-300)
    return float(np.mean(np.where(norms > 0, cos, 0.0)))


def isotropy_score(X: np.ndarray, normalize: bool = True) -> float:
    """Isotropy I(X) = min_c Z(c) / max_c Z(c) with Z(c) = Σ_i exp(cᵀx_i), c over the eigenvectors of XᵀX.

    The partition-function measure of Mu & Viswanath, "All-but-the-Top" (ICLR 2018): 1 for an isotropic cloud,
    small when the vectors share a dominant direction. Eigenvectors have no sign, so both ±c are used (this makes
    the score a function of X alone); Z is a log-sum-exp, so large norms do not overflow.

    normalize: the paper's Z depends on the scale of X (whitened vectors have norms ≈ √d, and a few extreme
    projections then dominate Z). Sentence vectors are compared by cosine, so by default the rows are L2-normalised
    first, which makes the score scale-free and comparable before and after whitening (unit rows in high dimension
    give ≈ 1 when isotropic; all rows in one cone of cosine c to its axis give about e^{−2c}). ``normalize=False``
    is the paper's original, on raw X.
    """
    X = as_vectors(X, owner="X").astype(np.float64, copy=False)
    if X.shape[0] == 0:
        raise InvalidInputError("isotropy_score needs at least one vector.")
    if normalize:
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    _, vectors = np.linalg.eigh(X.T @ X)
    projections = X @ vectors  # (n, d): cᵀx_i for each eigenvector c
    log_z = np.concatenate([logsumexp(projections, axis=0), logsumexp(-projections, axis=0)])
    return float(np.exp(log_z.min() - log_z.max()))


def drift_report(
    A: np.ndarray, B: np.ndarray, eps: float | None = None, names: tuple[str, str] = ("A", "B")
) -> dict[str, object]:
    """Distances between the Gaussian fits of two vector sets, and how crowded each set is before/after whitening.

    Returns a JSON-ready dict: ``names``, ``notes`` (warnings, e.g. fewer vectors than dimensions), ``dim``,
    ``kl_ab`` = KL(A‖B), ``kl_ba``, ``bhattacharyya``, ``w2`` (without ridge), ``mean_distance`` = ‖μ_A − μ_B‖,
    ``eps`` and the absolute ``ridge`` it gave, and in ``sets`` per name: ``n``, ``mean_cos_raw`` /
    ``mean_cos_whitened`` and ``isotropy_raw`` / ``isotropy_whitened`` (:func:`isotropy_score`, unit rows).
    "Whitened" means one β=γ=1 whitening fitted on A ∪ B (merged statistics), the shared frame a search index
    would use, so the two sets stay comparable.
    """
    from semspace.transform.whitening import Whitening

    check_param(
        "names",
        "drift_report",
        len(names) == 2 and isinstance(names[0], str) and isinstance(names[1], str) and names[0] != names[1],
        "two different strings",
        names,
    )

    A = as_vectors(A, owner=names[0])
    B = as_vectors(B, owner=names[1])
    if A.shape[1] != B.shape[1]:
        raise InvalidInputError(f"{names[0]} has {A.shape[1]} dimensions and {names[1]} has {B.shape[1]}.")
    for name, X in zip(names, (A, B), strict=True):
        if X.shape[0] < 2:
            raise InvalidInputError(f"{name} needs at least 2 vectors for a covariance; got {X.shape[0]}.")
    stats_a, stats_b = WhiteningStats().update(A), WhiteningStats().update(B)
    fa, fb = GaussianFit.from_stats(stats_a), GaussianFit.from_stats(stats_b)
    ra, rb, ridge = _pair(fa, fb, "drift_report", eps)
    # Check here so the error names the set (KL and Bhattacharyya only know "p" and "q").
    for name, fit in zip(names, (ra, rb), strict=True):
        _eigh_checked(fit.cov, name, fit, eps)
    whitening = Whitening().fit_stats(WhiteningStats().merge(stats_a).merge(stats_b))
    sets = {}
    for name, X in zip(names, (A, B), strict=True):
        white = whitening.transform(X)
        sets[name] = {
            "n": int(X.shape[0]),
            "mean_cos_raw": mean_cosine_to_centroid(X),
            "mean_cos_whitened": mean_cosine_to_centroid(white),
            "isotropy_raw": isotropy_score(X),
            "isotropy_whitened": isotropy_score(white),
        }
    notes = [
        f"{name} has {X.shape[0]} vectors for {X.shape[1]} dimensions: its covariance is rank-deficient, so KL and "
        "Bhattacharyya mostly measure the ridge (W2 needs none)"
        for name, X in zip(names, (A, B), strict=True)
        if X.shape[0] <= X.shape[1]
    ]
    return {
        "names": list(names),
        "notes": notes,
        "dim": int(A.shape[1]),
        "eps": eps,
        "ridge": ridge,
        "kl_ab": kl_divergence(fa, fb, eps),
        "kl_ba": kl_divergence(fb, fa, eps),
        "bhattacharyya": bhattacharyya(fa, fb, eps),
        "w2": wasserstein2(fa, fb),
        "mean_distance": float(np.linalg.norm(fa.mean - fb.mean)),
        "sets": sets,
    }


def format_drift(report: dict) -> str:
    """A plain-text table of :func:`drift_report`'s dict."""
    name_a, name_b = report["names"]
    ridge = "none" if report["eps"] is None else f"eps={report['eps']:g} (ridge {report['ridge']:.3g} added to Σ)"
    lines = [
        f"Gaussian fits in {report['dim']} dimensions; ridge: {ridge}",
        f"  KL(A‖B)          {report['kl_ab']:12.4f}  nats",
        f"  KL(B‖A)          {report['kl_ba']:12.4f}  nats",
        f"  Bhattacharyya    {report['bhattacharyya']:12.4f}",
        f"  W2               {report['w2']:12.4f}",
        f"  ‖μ_A − μ_B‖      {report['mean_distance']:12.4f}",
        "whitened = one β=γ=1 whitening fitted on A ∪ B",
        f"  {'set':<4} {'N':>8} {'cos→centroid raw':>17} {'whitened':>9} {'isotropy raw':>13} {'whitened':>9}",
    ]
    for label, name in (("A", name_a), ("B", name_b)):
        s = report["sets"][name]
        lines.append(
            f"  {label:<4} {s['n']:>8} {s['mean_cos_raw']:>17.4f} {s['mean_cos_whitened']:>9.4f} "
            f"{s['isotropy_raw']:>13.3g} {s['isotropy_whitened']:>9.3g}"
        )
    lines += [f"note: {text}" for text in report.get("notes", [])]
    return "\n".join(lines)
