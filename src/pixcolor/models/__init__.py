"""Networks: the U-Net generator and the PatchGAN discriminator."""

from __future__ import annotations

from pixcolor.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from pixcolor.models.unet import ENCODERS, UNetConfig, UNetGenerator

__all__ = [
    "ENCODERS",
    "PatchDiscriminator",
    "PatchDiscriminatorConfig",
    "UNetConfig",
    "UNetGenerator",
]
