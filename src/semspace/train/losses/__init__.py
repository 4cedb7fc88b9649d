"""Training losses, one per file: each docstring names the paper or post it implements."""

from semspace.train.losses.angle import angle_in_batch_negatives, angle_loss, angle_ranking_loss, angle_similarity
from semspace.train.losses.cosent import cosent_loss
from semspace.train.losses.cosine_mse import cosine_mse_loss
from semspace.train.losses.info_nce import info_nce_from_similarities, info_nce_loss, info_nce_similarities
from semspace.train.losses.rdrop import bernoulli_symmetric_kl, categorical_symmetric_kl

__all__ = [
    "angle_in_batch_negatives",
    "angle_loss",
    "angle_ranking_loss",
    "angle_similarity",
    "bernoulli_symmetric_kl",
    "categorical_symmetric_kl",
    "cosent_loss",
    "cosine_mse_loss",
    "info_nce_from_similarities",
    "info_nce_loss",
    "info_nce_similarities",
]
