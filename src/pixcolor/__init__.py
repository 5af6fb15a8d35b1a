"""pixcolor: automatic colorization of black-and-white photographs.

A U-Net generator predicts the a/b channels of CIE L*a*b* from the L channel; a PatchGAN
discriminator judges (L, ab) pairs (pix2pix, Isola et al. 2017).
"""

from __future__ import annotations

__version__ = "0.1.0"

from pixcolor import lab
from pixcolor.errors import CheckpointError, ModelNotFoundError, PixcolorError
from pixcolor.hub import PRESETS, Preset
from pixcolor.models import (
    PatchDiscriminator,
    PatchDiscriminatorConfig,
    UNetConfig,
    UNetGenerator,
)
from pixcolor.training import Callback, Trainer, TrainerConfig

__all__ = [
    "PRESETS",
    "Callback",
    "CheckpointError",
    "ModelNotFoundError",
    "PatchDiscriminator",
    "PatchDiscriminatorConfig",
    "PixcolorError",
    "Preset",
    "Trainer",
    "TrainerConfig",
    "UNetConfig",
    "UNetGenerator",
    "__version__",
    "lab",
]
