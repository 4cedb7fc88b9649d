"""Exact streaming moment sums in float64 (REFERENCE §2): shards add exactly, memory O(d²) whatever N."""

from __future__ import annotations

import numpy as np

from semspace.errors import InvalidInputError, NotFittedError


def as_vectors(X: object, n_features: int | None = None, owner: str = "input") -> np.ndarray:
    """Validate a 2-D finite numeric array (optionally of a given width); returns it as a numpy array."""
    try:
        array = np.asarray(X)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{owner} must be a 2-D numeric array.") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(f"{owner} must be a 2-D numeric array; got shape {array.shape}, dtype {array.dtype}.")
    if n_features is not None and array.shape[1] != n_features:
        raise InvalidInputError(f"{owner} has {array.shape[1]} features, but {n_features} were expected.")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise InvalidInputError(f"{owner} contains NaN or inf (first at row {bad}).")
    return array


class WhiteningStats:
    """Running count, Σx and Σxxᵀ in float64.

    `update` adds a batch; `merge` adds another shard's sums (exactly: sums are associative), so statistics of a
    corpus can be built in pieces, on several machines, and combined.
    """

    def __init__(self, n_features: int | None = None) -> None:
        self.count = 0
        self.sum: np.ndarray | None = None
        self.sum_outer: np.ndarray | None = None
        if n_features is not None:
            self._init(n_features)

    def _init(self, n_features: int) -> None:
        self.sum = np.zeros(n_features, dtype=np.float64)
        self.sum_outer = np.zeros((n_features, n_features), dtype=np.float64)

    @property
    def n_features(self) -> int | None:
        return None if self.sum is None else int(self.sum.shape[0])

    def update(self, batch: np.ndarray) -> WhiteningStats:
        """Add the rows of `batch` (n, d); the first batch fixes d, later ones are checked against it."""
        X = as_vectors(batch, self.n_features, "batch").astype(np.float64, copy=False)
        if self.sum is None:
            self._init(X.shape[1])
        assert self.sum is not None and self.sum_outer is not None
        self.count += X.shape[0]
        self.sum += X.sum(axis=0)
        self.sum_outer += X.T @ X
        return self

    def merge(self, other: WhiteningStats) -> WhiteningStats:
        """Add another shard's sums into this one (in place) and return self."""
        if other.sum is None:
            return self
        if self.sum is None:
            self._init(other.sum.shape[0])
        assert self.sum is not None and self.sum_outer is not None and other.sum_outer is not None
        if other.sum.shape != self.sum.shape:
            raise InvalidInputError(f"Cannot merge statistics of {other.n_features} features into {self.n_features}.")
        self.count += other.count
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        return self

    def _check(self) -> None:
        if self.count == 0 or self.sum is None:
            raise NotFittedError("WhiteningStats has seen no vectors yet; call update() first.")

    @property
    def mean(self) -> np.ndarray:
        self._check()
        assert self.sum is not None
        return self.sum / self.count

    def second_moment(self, shift: np.ndarray | None = None) -> np.ndarray:
        """E[(x − s)(x − s)ᵀ] for a shift s (default 0), from the sums alone."""
        self._check()
        assert self.sum is not None and self.sum_outer is not None
        moment = self.sum_outer / self.count
        if shift is not None:
            mu = self.mean
            moment = moment - np.outer(mu, shift) - np.outer(shift, mu) + np.outer(shift, shift)
        return (moment + moment.T) / 2  # symmetrise away rounding

    @property
    def cov(self) -> np.ndarray:
        """Population covariance Σ = E[xxᵀ] − μμᵀ."""
        return self.second_moment(self.mean)
