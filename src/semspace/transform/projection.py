"""Gaussian random projection and two dimension rules from Su Jianlin's posts (kexue.fm 8679, 7695).

- Johnson–Lindenstrauss (kexue.fm 8679): a random A with i.i.d. N(0, 1/n) entries and n > 24 ln N / ε² keeps every
  pairwise squared distance of N points within a factor 1 ± ε, with probability ≥ (N − 1)/N.
- The entropy rule of thumb from word vectors (kexue.fm 7695): n > 8.33 ln N (N = 100k → 96).

Both rules give an order of magnitude only: at equal n, PCA / whitening keeps more of a real embedding space than a
random projection does (see `semspace dims`).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from semspace.errors import NotFittedError, check_param
from semspace.transform.stats import as_vectors

# Constants of the two rules (kexue.fm 8679 and 7695).
JL_CONSTANT = 24.0
ENTROPY_CONSTANT = 8.33


def _check_n_points(n_points: object, owner: str) -> int:
    check_param(
        "n_points",
        owner,
        isinstance(n_points, int | np.integer) and not isinstance(n_points, bool) and n_points >= 1,
        "an int >= 1",
        n_points,
    )
    return int(n_points)  # type: ignore[arg-type]


def jl_dimension(n_points: int, eps: float) -> int:
    """Johnson–Lindenstrauss dimension ⌈24 ln N / ε²⌉ (kexue.fm 8679), at least 1.

    A Gaussian random projection to this many dimensions keeps all pairwise squared distances of `n_points` points
    within 1 ± `eps` with probability ≥ (N − 1)/N. The bound does not depend on the input dimension; it is often
    larger than the dimension of a sentence embedding, which is why it is a guarantee, not a recipe.

    >>> jl_dimension(1000, 0.5)
    664
    """
    n = _check_n_points(n_points, "jl_dimension")
    check_param(
        "eps",
        "jl_dimension",
        isinstance(eps, int | float | np.floating) and not isinstance(eps, bool) and 0 < eps < 1,
        "a float in (0, 1)",
        eps,
    )
    return max(1, math.ceil(JL_CONSTANT * math.log(n) / float(eps) ** 2))


def entropy_dimension(n_points: int) -> int:
    """The practical rule ⌈8.33 ln N⌉ from word vectors (kexue.fm 7695), at least 1.

    >>> entropy_dimension(100_000)
    96
    """
    n = _check_n_points(n_points, "entropy_dimension")
    return max(1, math.ceil(ENTROPY_CONSTANT * math.log(n)))


class RandomProjection(TransformerMixin, BaseEstimator):
    """Gaussian random projection x ↦ xA with A ∈ ℝ^{d×n}, A_ij ~ N(0, 1/n) i.i.d. (kexue.fm 8679), sklearn style.

    With entries of variance 1/n, E‖xA‖² = ‖x‖², so distances are kept in expectation; `jl_dimension` gives the n
    that keeps them all within 1 ± ε with high probability.

    Parameters
    ----------
    n_components:
        n, the output dimension (any int >= 1; it may exceed d, which only makes sense for checking the lemma).
    seed:
        Seed of the matrix (numpy ``default_rng``): the same seed and d give the same projection.

    Attributes
    ----------
    components_ (n, d) as in scikit-learn's ``GaussianRandomProjection``; kernel_ = components_ᵀ (d, n), the matrix
    that multiplies the rows, as in :class:`~semspace.transform.Whitening`; n_components_, n_features_in_.

    Example
    -------
    >>> X = np.random.default_rng(0).normal(size=(100, 384))
    >>> RandomProjection(64).fit_transform(X).shape
    (100, 64)
    """

    def __init__(self, n_components: int = 128, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed

    def fit(self, X: np.ndarray, y: object = None) -> RandomProjection:
        """Draw the matrix for the width of X (only X's shape is used, and it is validated)."""
        owner = "RandomProjection"
        k = self.n_components
        check_param(
            "n_components",
            owner,
            isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 1,
            "an int >= 1",
            k,
        )
        check_param(
            "seed",
            owner,
            isinstance(self.seed, int | np.integer) and not isinstance(self.seed, bool) and self.seed >= 0,
            "an int >= 0",
            self.seed,
        )
        X = as_vectors(X, owner="X")
        d = X.shape[1]
        rng = np.random.default_rng(int(self.seed))
        # Standard deviation 1/√n: the N(0, 1/n) of the lemma, so squared norms are kept in expectation.
        self.components_ = rng.standard_normal((int(k), d)) / math.sqrt(int(k))
        self.kernel_ = self.components_.T
        self.n_components_ = int(k)
        self.n_features_in_ = d
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """X · kernel_ as float32 (rows, n_components)."""
        if not hasattr(self, "kernel_"):
            raise NotFittedError("This RandomProjection is not fitted yet; call fit(X) first.")
        X = as_vectors(X, self.n_features_in_, "X", "RandomProjection")
        return (X.astype(np.float64, copy=False) @ self.kernel_).astype(np.float32)

    def describe(self) -> str:
        return f"random-projection(k={self.n_components}, seed={self.seed})"
