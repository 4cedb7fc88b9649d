"""Training: losses, the gradient-cached contrastive step, the one training loop, the sentence-encoder and
cross-encoder trainers on it, and static models trained to a teacher's vectors (train_static)."""

from semspace.train.cached import cached_backward, chunked_backward
from semspace.train.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder
from semspace.train.data import TrainingSet, read_pairs, read_sentences
from semspace.train.encoder import OBJECTIVES, EncoderTrainConfig, train_encoder
from semspace.train.loop import TrainConfig, run_training
from semspace.train.losses import (
    angle_loss,
    bernoulli_symmetric_kl,
    categorical_symmetric_kl,
    cosent_loss,
    cosine_mse_loss,
    info_nce_loss,
)
from semspace.train.static import StaticTrainResult, train_static

__all__ = [
    "OBJECTIVES",
    "CrossEncoderTrainConfig",
    "EncoderTrainConfig",
    "StaticTrainResult",
    "TrainConfig",
    "TrainingSet",
    "angle_loss",
    "bernoulli_symmetric_kl",
    "cached_backward",
    "categorical_symmetric_kl",
    "chunked_backward",
    "cosent_loss",
    "cosine_mse_loss",
    "info_nce_loss",
    "read_pairs",
    "read_sentences",
    "run_training",
    "train_cross_encoder",
    "train_encoder",
    "train_static",
]
