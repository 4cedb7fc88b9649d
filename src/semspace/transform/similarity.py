"""Row-wise cosine and (vectorised, bootstrap-friendly) Spearman correlation."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata, spearmanr

from semspace.errors import InvalidInputError


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) for each row, float64; a zero row gives cosine 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InvalidInputError(f"paired_cosine needs two (n, d) arrays of one shape; got {a.shape} and {b.shape}.")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.maximum(norms, 1e-300)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ (ties averaged, as scipy); NaN-free for constant input (returns 0)."""
    if len(x) < 2:
        raise InvalidInputError("Spearman correlation needs at least 2 pairs.")
    rho = spearmanr(x, y).statistic
    return 0.0 if not np.isfinite(rho) else float(rho)


def rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of x (B, n) with the matching row of y (B, n)."""
    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    return np.where(denom > 0, (rx * ry).sum(axis=1) / np.maximum(denom, 1e-300), 0.0)
