"""Generalised BERT-whitening x̃ = (x − βμ) U Λ^{−γ/2}, first k columns (REFERENCE §2).

Implements Su Jianlin's BERT-whitening (kexue.fm 8069, arXiv 2103.15316) and its β/γ/k generalisation
(kexue.fm 9079): β=γ=1 is the original whitening; β=γ=0 with full k is a pure rotation that keeps every cosine.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from semspace._io import FORMAT_VERSION, atomic_write_json, atomic_write_npz
from semspace.errors import ArtifactError, NotFittedError, check_param
from semspace.transform.stats import WhiteningStats, as_vectors

logger = logging.getLogger(__name__)

_CONFIG = "whitening.json"
_ARRAYS = "whitening.npz"


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


def whitening_kernel(values: np.ndarray, vectors: np.ndarray, gamma: float, k: int, eps: float) -> np.ndarray:
    """U_k Λ_k^{−γ/2} with eigenvalues floored at eps·λ_max, so rank-deficient input never gives inf/NaN."""
    top = float(values[0]) if values.size else 0.0
    # All-zero spectrum (e.g. identical rows, centred): no direction to scale, keep unit scale.
    floor = eps * top if top > 0 else 1.0
    scale = np.maximum(values[:k], floor) ** (-gamma / 2.0)
    return vectors[:, :k] * scale


class Whitening(TransformerMixin, BaseEstimator):
    """Whitening / PCA-rotation estimator, scikit-learn style (drops into a `Pipeline`).

    Parameters
    ----------
    n_components:
        k, the number of output dimensions (None: all d).
    beta:
        Centring strength: the transform subtracts β·μ and decomposes the second moment around β·μ.
    gamma:
        Scaling strength: eigen-directions are scaled by λ^{−γ/2} (1: whiten, 0: rotate only).
    eps:
        Eigenvalues below eps·λ_max are floored there before the negative power.

    Attributes
    ----------
    mean_, shift_ (= β·mean_), eigenvalues_ (all d, descending), components_ (k, d), kernel_ (d, k),
    n_components_, n_features_in_, n_samples_seen_, stats_ (:class:`WhiteningStats`).

    The output is not L2-normalised: compare vectors by cosine (as BERT-whitening does after the transform).
    """

    def __init__(
        self, n_components: int | None = None, beta: float = 1.0, gamma: float = 1.0, eps: float = 1e-6
    ) -> None:
        self.n_components = n_components
        self.beta = beta
        self.gamma = gamma
        self.eps = eps

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: object = None) -> Whitening:
        """Fit on the rows of X (n, d)."""
        self.stats_ = WhiteningStats()
        return self.partial_fit(X)

    def partial_fit(self, X: np.ndarray, y: object = None) -> Whitening:
        """Add rows to the statistics and refit (the first call fixes d, as sklearn's IncrementalPCA)."""
        if not hasattr(self, "stats_"):
            self.stats_ = WhiteningStats()
        self.stats_.update(X)
        return self._fit_from_stats()

    def fit_stats(self, stats: WhiteningStats) -> Whitening:
        """Fit from precomputed (e.g. merged, sharded) statistics."""
        self.stats_ = WhiteningStats().merge(stats)
        return self._fit_from_stats()

    def _validate_params(self, d: int) -> int:
        owner = "Whitening"
        k = self.n_components
        check_param(
            "n_components",
            owner,
            k is None or (isinstance(k, int | np.integer) and 1 <= k <= d),
            f"None or an int in [1, {d}]",
            k,
        )
        check_param(
            "beta",
            owner,
            isinstance(self.beta, int | float) and np.isfinite(self.beta),
            "a finite float",
            self.beta,
        )
        check_param(
            "gamma",
            owner,
            isinstance(self.gamma, int | float) and np.isfinite(self.gamma) and self.gamma >= 0,
            "a finite float >= 0",
            self.gamma,
        )
        check_param(
            "eps",
            owner,
            isinstance(self.eps, int | float) and 0 < self.eps < 1,
            "a float in (0, 1)",
            self.eps,
        )
        return int(k) if k is not None else d

    def _fit_from_stats(self) -> Whitening:
        stats = self.stats_
        d = stats.n_features
        if d is None or stats.count == 0:
            raise NotFittedError("Whitening needs at least one vector to fit.")
        k = self._validate_params(d)
        self.mean_ = stats.mean
        self.shift_ = float(self.beta) * self.mean_
        values, vectors = eigh_descending(stats.second_moment(self.shift_))
        self.eigenvalues_ = values
        self.components_ = vectors[:, :k].T.copy()
        self.kernel_ = whitening_kernel(values, vectors, float(self.gamma), k, float(self.eps))
        self.n_components_ = k
        self.n_features_in_ = d
        self.n_samples_seen_ = stats.count
        return self

    # -- using -----------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "kernel_"):
            raise NotFittedError("This Whitening is not fitted yet; call fit(X) first.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(X − β·μ) · kernel_ as float32 (n, k)."""
        self._check_fitted()
        X = as_vectors(X, self.n_features_in_, "X")
        if X.dtype == np.float32:
            # float32 vectors: a float32 product is 3x faster and as precise as the vectors themselves.
            return (X - self.shift_.astype(np.float32)) @ self.kernel_.astype(np.float32)
        return ((X.astype(np.float64, copy=False) - self.shift_) @ self.kernel_).astype(np.float32)

    def describe(self) -> str:
        k = self.n_components if self.n_components is not None else "full"
        return f"whitening(beta={self.beta:g}, gamma={self.gamma:g}, k={k})"

    # -- persistence (npz + JSON, no pickle) ------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write `path/whitening.json` + `path/whitening.npz` atomically; returns the folder."""
        self._check_fitted()
        from semspace import __version__

        folder = Path(path)
        stats = self.stats_
        atomic_write_npz(folder / _ARRAYS, count=np.array(stats.count), sum=stats.sum, sum_outer=stats.sum_outer)
        atomic_write_json(
            folder / _CONFIG,
            {
                "format": "semspace.whitening",
                "format_version": FORMAT_VERSION,
                "semspace_version": __version__,
                "params": self.get_params(),
                "n_features": self.n_features_in_,
                "n_samples_seen": self.n_samples_seen_,
            },
        )
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Whitening:
        """Load what `save` wrote; the transform is rebuilt from the exact float64 sums."""
        from semspace import __version__

        folder = Path(path)
        try:
            config = json.loads((folder / _CONFIG).read_text(encoding="utf-8"))
            with np.load(folder / _ARRAYS, allow_pickle=False) as data:
                count, total, outer = int(data["count"]), data["sum"], data["sum_outer"]
        except FileNotFoundError:
            raise ArtifactError(f"{folder}: not a saved Whitening (missing {_CONFIG} or {_ARRAYS})") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"{folder}: corrupt Whitening artifact ({exc})") from None
        if config.get("format") != "semspace.whitening" or config.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"{folder}: unknown format {config.get('format')!r} v{config.get('format_version')}")
        if config.get("semspace_version") != __version__:
            logger.warning(
                "%s was written by semspace %s (this is %s)",
                folder,
                config.get("semspace_version"),
                __version__,
            )
        d = int(config["n_features"])
        if total.shape != (d,) or outer.shape != (d, d) or count != config["n_samples_seen"]:
            raise ArtifactError(f"{folder}: arrays do not match the config (corrupt or mixed files)")
        stats = WhiteningStats(d)
        stats.count, stats.sum, stats.sum_outer = count, total.astype(np.float64), outer.astype(np.float64)
        return cls(**config["params"]).fit_stats(stats)
