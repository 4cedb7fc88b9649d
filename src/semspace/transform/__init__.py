"""Transforms of sentence vectors: streaming statistics, generalised whitening, robust tuning.

Names are imported lazily: `semspace.transform.saved` (read by collections) must not pull in scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semspace._lazy import lazy_exports

_EXPORTS = {
    "RandomProjection": "semspace.transform.projection",
    "entropy_dimension": "semspace.transform.projection",
    "jl_dimension": "semspace.transform.projection",
    "paired_cosine": "semspace.transform.similarity",
    "Spectrum": "semspace.transform.spectrum",
    "WhiteningStats": "semspace.transform.stats",
    "TuneResult": "semspace.transform.tune",
    "tune_whitening": "semspace.transform.tune",
    "Whitening": "semspace.transform.whitening",
    "fold_whitening": "semspace.transform.static",
    "whiten_static": "semspace.transform.static",
}

__all__ = [
    "RandomProjection",
    "Spectrum",
    "TuneResult",
    "Whitening",
    "WhiteningStats",
    "entropy_dimension",
    "fold_whitening",
    "jl_dimension",
    "paired_cosine",
    "tune_whitening",
    "whiten_static",
]

if TYPE_CHECKING:
    from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension
    from semspace.transform.similarity import paired_cosine
    from semspace.transform.spectrum import Spectrum
    from semspace.transform.static import fold_whitening, whiten_static
    from semspace.transform.stats import WhiteningStats
    from semspace.transform.tune import TuneResult, tune_whitening
    from semspace.transform.whitening import Whitening

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
