"""Transforms of sentence vectors: streaming statistics, generalised whitening, robust tuning."""

from semspace.transform.similarity import paired_cosine, spearman
from semspace.transform.stats import WhiteningStats
from semspace.transform.tune import TuneResult, tune_whitening
from semspace.transform.whitening import Whitening

__all__ = ["TuneResult", "Whitening", "WhiteningStats", "paired_cosine", "spearman", "tune_whitening"]
