"""The training recipes as plain data (no torch), so that ``pixcolor train --help`` lists
them at once; :mod:`pixcolor.training.recipes` builds their networks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RECIPES", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    """Generator / discriminator constructor arguments and trainer defaults."""

    description: str
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    trainer: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "pix2pix": Recipe(
        "pix2pix from scratch: 8-level U-Net + 70x70 PatchGAN, N(0, 0.02) init, GAN from the first epoch",
        generator={"encoder": "pix2pix"},
        discriminator={"n_layers": 3},
        trainer={"pretrain_epochs": 0, "gan_epochs": 100, "batch_size": 16, "image_size": 256,
                 "lr_g": 2e-4, "lr_d": 2e-4, "lambda_l1": 100.0},
    ),
    "resnet18": Recipe(
        "the tutorial's ResNet-18 DynamicUnet (ImageNet encoder, linear head): "
        "20 epochs of L1 at lr 1e-4, then 20 of L1 x 100 + GAN at 2e-4",
        generator={"encoder": "resnet18", "norm": "none", "output_activation": "none", "pretrained_encoder": True},
        discriminator={"n_layers": 3},
        trainer={"pretrain_epochs": 20, "gan_epochs": 20, "batch_size": 16, "image_size": 256,
                 "pretrain_lr": 1e-4, "lr_g": 2e-4, "lr_d": 2e-4, "lambda_l1": 100.0},
    ),
    "tiny": Recipe(
        "a 2.6 M-parameter pix2pix U-Net (7 levels) at 128 px that trains in minutes on a CPU",
        generator={"encoder": "pix2pix", "base_channels": 16, "num_downs": 7},
        discriminator={"n_layers": 3, "base_channels": 16},
        trainer={"pretrain_epochs": 2, "gan_epochs": 2, "batch_size": 16, "image_size": 128,
                 "lr_d": 5e-5, "real_label": 0.9},
    ),
}  # fmt: skip
