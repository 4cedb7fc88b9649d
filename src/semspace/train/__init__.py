"""Training: losses (CoSENT, R-Drop) and the cross-encoder trainer."""

from semspace.train.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder
from semspace.train.losses import bernoulli_symmetric_kl, cosent_loss

__all__ = ["CrossEncoderTrainConfig", "bernoulli_symmetric_kl", "cosent_loss", "train_cross_encoder"]
