"""Training: the Trainer (L1 warm-up, then GAN), its callbacks, losses and checkpoints."""

from __future__ import annotations

from pixcolor.training.callbacks import Callback, EarlyStopping, MetricsLogger, SampleGrid
from pixcolor.training.losses import GAN_MODES, GANLoss, chroma_loss, l1_loss
from pixcolor.training.trainer import Batch, Trainer, TrainerConfig

__all__ = [
    "GAN_MODES",
    "Batch",
    "Callback",
    "EarlyStopping",
    "GANLoss",
    "MetricsLogger",
    "SampleGrid",
    "Trainer",
    "TrainerConfig",
    "chroma_loss",
    "l1_loss",
]
