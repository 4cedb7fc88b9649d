"""Analysis of embedding spaces: dimension rules, Gaussian drift between corpora, isotropy, orthogonal maps.

References: Johnson–Lindenstrauss and the 8.33 ln N rule (kexue.fm 8679, 7695), Gaussian KL /
Bhattacharyya / W₂ (kexue.fm 8512), orthogonal maps T a = b (kexue.fm 8453).
"""

from semspace.analysis.gaussian import (
    GaussianFit,
    bhattacharyya,
    drift_report,
    isotropy_score,
    kl_divergence,
    mean_cosine_to_centroid,
    wasserstein2,
)
from semspace.analysis.orthogonal import orthogonal_map
from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension

__all__ = [
    "GaussianFit",
    "RandomProjection",
    "bhattacharyya",
    "drift_report",
    "entropy_dimension",
    "isotropy_score",
    "jl_dimension",
    "kl_divergence",
    "mean_cosine_to_centroid",
    "orthogonal_map",
    "wasserstein2",
]
