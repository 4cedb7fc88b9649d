"""Transforms of sentence vectors: streaming statistics, generalised whitening, robust tuning."""

from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension
from semspace.transform.similarity import paired_cosine
from semspace.transform.spectrum import Spectrum
from semspace.transform.stats import WhiteningStats
from semspace.transform.tune import TuneResult, tune_whitening
from semspace.transform.whitening import Whitening

__all__ = [
    "RandomProjection",
    "Spectrum",
    "TuneResult",
    "Whitening",
    "WhiteningStats",
    "entropy_dimension",
    "jl_dimension",
    "paired_cosine",
    "tune_whitening",
]
