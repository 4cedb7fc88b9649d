"""The eigen-spectrum of the second moment around β·μ and the whitening kernel U_k Λ_k^{−γ/2} (kexue.fm 9079).

One home for the step that BERT-whitening (Su Jianlin, kexue.fm 8069, arXiv 2103.15316) and its β/γ/k
generalisation (kexue.fm 9079) share with PCA: :class:`Whitening` fits it, :func:`~semspace.transform.tune_whitening`
scans it over (γ, k), the STS evaluation reads every k from one decomposition, and ``semspace dims`` reports the
spectrum. One eigendecomposition serves every (γ, k): the k-column kernel is the first k columns of the full one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semspace.transform.stats import WhiteningStats

DEFAULT_EPS = 1e-6  # eigenvalues below eps·λ_max are floored there before the negative power


def eigh_descending(moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors with deterministic signs."""
    values, vectors = np.linalg.eigh(moment)
    values, vectors = values[::-1], vectors[:, ::-1]
    # Round-off makes null eigenvalues slightly negative; they are 0.
    values = np.clip(values, 0.0, None)
    # Sign convention as sklearn's svd_flip: the largest-|.| entry of each eigenvector is positive, so the same
    # data always gives the same output.
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return values, vectors * signs


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of E[(x − s)(x − s)ᵀ] for the shift s = β·μ: values (d,) descending ≥ 0, vectors (d, d)
    as columns (deterministic signs). β = 1 gives the covariance spectrum; β = 0 the uncentred second moment."""

    shift: np.ndarray
    values: np.ndarray
    vectors: np.ndarray

    @classmethod
    def from_stats(cls, stats: WhiteningStats, beta: float = 1.0) -> Spectrum:
        shift = float(beta) * stats.mean
        values, vectors = eigh_descending(stats.second_moment(shift))
        return cls(shift, values, vectors)

    def kernel(self, gamma: float = 1.0, k: int | None = None, eps: float = DEFAULT_EPS) -> np.ndarray:
        """U_k Λ_k^{−γ/2} (d, k) with eigenvalues floored at eps·λ_max, so rank-deficient input never gives inf/NaN.

        Apply it as (x − shift) @ kernel; γ = 1 whitens, γ = 0 only rotates (PCA for β = 1)."""
        k = self.values.size if k is None else int(k)
        top = float(self.values[0]) if self.values.size else 0.0
        # All-zero spectrum (e.g. identical rows, centred): no direction to scale, keep unit scale.
        floor = eps * top if top > 0 else 1.0
        scale = np.maximum(self.values[:k], floor) ** (-float(gamma) / 2.0)
        return self.vectors[:, :k] * scale
