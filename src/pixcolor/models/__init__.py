"""Networks: the U-Net generator, DeOldify's generator and the PatchGAN discriminator."""

from __future__ import annotations

from pixcolor.models.deoldify import DEOLDIFY_VARIANTS, DeOldifyConfig, DeOldifyGenerator
from pixcolor.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from pixcolor.models.unet import ENCODERS, UNetConfig, UNetGenerator

__all__ = [
    "DEOLDIFY_VARIANTS",
    "ENCODERS",
    "DeOldifyConfig",
    "DeOldifyGenerator",
    "PatchDiscriminator",
    "PatchDiscriminatorConfig",
    "UNetConfig",
    "UNetGenerator",
]
