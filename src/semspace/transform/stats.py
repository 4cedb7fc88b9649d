"""Exact streaming moment sums in float64 for whitening (kexue.fm 8069): shards add exactly, memory O(d²) whatever N."""

from __future__ import annotations

import numpy as np

from semspace.errors import InputTypeError, InvalidInputError, NotFittedError


def as_vectors(
    X: object,
    n_features: int | None = None,
    owner: str = "input",
    expected_by: str = "this model",
    check_finite: bool = True,
) -> np.ndarray:
    """Validate a 2-D finite real array (optionally of a given width); returns it as a numpy array (no copy when it
    already is one). The messages follow scikit-learn's `validate_data`, so sklearn's estimator checks recognise
    them. `check_finite=False` leaves the NaN/inf scan to the caller (e.g. chunk by chunk)."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # a scipy.sparse matrix or array
        raise InvalidInputError(f"{owner} is a sparse matrix; sparse input is not supported, pass a dense array.")
    try:
        array = np.asarray(X)
        if array.dtype == object:  # e.g. a list of lists of numbers with a None: numbers convert, the rest fails
            array = array.astype(np.float64)
    except TypeError as exc:
        raise InputTypeError(f"{owner} must be a 2-D numeric array ({exc}).") from None
    except ValueError:
        raise InvalidInputError(f"{owner} must be a 2-D numeric array.") from None
    if array.ndim != 2:
        raise InvalidInputError(
            f"{owner} must be a 2-D numeric array; got shape {array.shape}. Reshape your data with "
            "array.reshape(-1, 1) if it has a single feature or array.reshape(1, -1) if it is a single sample."
        )
    if array.dtype.kind == "c":
        raise InvalidInputError(f"Complex data not supported: {owner} must be a real array.")
    if array.dtype.kind not in "iuf":  # bool, strings, dates: not vectors
        raise InvalidInputError(f"{owner} must be a 2-D real numeric array; got dtype {array.dtype}.")
    if array.shape[1] == 0:
        raise InvalidInputError(f"{owner} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    if n_features is not None and array.shape[1] != n_features:
        raise InvalidInputError(
            f"{owner} has {array.shape[1]} features, but {expected_by} is expecting {n_features} features as input."
        )
    if check_finite:
        check_all_finite(array, owner)
    return array


def check_all_finite(array: np.ndarray, owner: str = "input", row_offset: int = 0) -> None:
    """InvalidInputError naming the first row (counted from `row_offset`) that holds NaN or inf."""
    if not np.isfinite(array).all():
        bad = row_offset + int(np.argwhere(~np.isfinite(array))[0, 0])
        raise InvalidInputError(f"{owner} contains NaN or inf (first at row {bad}).")


def chunk_rows(n_features: int, chunk_bytes: int = 16 << 20) -> int:
    """Rows per chunk so that one float64 chunk takes about `chunk_bytes` (16 MiB: 5,461 rows at d = 384; 2-8k-row
    chunks measured fastest on a 200k x 384 fit, and 50k-row ones slower: the chunk stays in cache)."""
    return max(256, chunk_bytes // (8 * max(n_features, 1)))


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

    def update(self, batch: np.ndarray, chunk_size: int | None = None) -> WhiteningStats:
        """Add the rows of `batch` (n, d); the first batch fixes d, later ones are checked against it.

        The rows are converted to float64 `chunk_size` rows at a time (default :func:`chunk_rows`, about 16 MiB), as
        scikit-learn's IncrementalPCA does, so memory stays O(d²) plus one chunk however large the batch: a
        500k × 384 float32 batch no longer makes a 1.5 GiB float64 copy.
        """
        X = as_vectors(batch, self.n_features, "batch", "WhiteningStats", check_finite=False)
        step = chunk_rows(X.shape[1]) if chunk_size is None else int(chunk_size)
        if step < 1:
            raise InvalidInputError(f"chunk_size must be >= 1; got {chunk_size}.")
        # Check every chunk before adding any, so a bad row leaves the sums untouched.
        for start in range(0, X.shape[0], step):
            check_all_finite(X[start : start + step], "batch", start)
        if self.sum is None:
            self._init(X.shape[1])
        assert self.sum is not None and self.sum_outer is not None
        for start in range(0, X.shape[0], step):
            chunk = X[start : start + step].astype(np.float64, copy=False)
            self.sum += chunk.sum(axis=0)
            self.sum_outer += chunk.T @ chunk
        self.count += X.shape[0]
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
