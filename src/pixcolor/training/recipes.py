"""Named training recipes: the seeds' configurations, and a small one for CPUs.

A recipe is the architecture of both networks and the :class:`TrainerConfig` defaults; the
command line (``pixcolor train --recipe NAME``) and :func:`build` start from it and apply
overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixcolor.models import PatchDiscriminator, UNetGenerator

__all__ = ["RECIPES", "Recipe", "build"]


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


def build(
    name: str, **generator_overrides: Any
) -> tuple[UNetGenerator, PatchDiscriminator, dict[str, Any]]:
    """Networks of recipe ``name`` and its trainer defaults.

    Raises:
        ValueError: If ``name`` is not a recipe.

    Example:
        >>> gen, disc, defaults = build("tiny")
        >>> gen.config.encoder, defaults["image_size"]
        ('pix2pix', 128)
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    gen = UNetGenerator(**{**recipe.generator, **generator_overrides})
    return gen, PatchDiscriminator(**recipe.discriminator), dict(recipe.trainer)
