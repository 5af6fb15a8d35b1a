"""Named training recipes: the seeds' configurations, and a small one for CPUs.

A recipe is the architecture of both networks and the :class:`TrainerConfig` defaults; the
command line (``pixcolor train --recipe NAME``) and :func:`build` start from it and apply
overrides.
"""

from __future__ import annotations

from typing import Any

from pixcolor._recipes import RECIPES, Recipe
from pixcolor.models import PatchDiscriminator, UNetGenerator

__all__ = ["RECIPES", "Recipe", "build"]


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
