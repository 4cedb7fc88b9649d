"""Row-wise cosine of paired vectors (the scores live in :mod:`semspace.metrics`)."""

from __future__ import annotations

import numpy as np

from semspace.errors import InvalidInputError


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) for each row, float64; a zero row gives cosine 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InvalidInputError(f"paired_cosine needs two (n, d) arrays of one shape; got {a.shape} and {b.shape}.")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.maximum(norms, 1e-300)
