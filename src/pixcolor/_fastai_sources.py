"""How known fastai training code normalised L and ab (plain data, no torch, so that
``pixcolor convert --help`` lists the choices at once); :mod:`pixcolor.convert` uses it."""

from __future__ import annotations

__all__ = ["FASTAI_SOURCES"]

FASTAI_SOURCES: dict[str, dict[str, float]] = {
    # The tutorial: L / 50 - 1 in [-1, 1], ab / 110.
    "tutorial": {"l_center": 50.0, "l_scale": 50.0, "ab_scale": 110.0},
    # seed001: L / 100 in [0, 1], ab / 128.
    "seed001": {"l_center": 0.0, "l_scale": 100.0, "ab_scale": 128.0},
}
"""How each known training code normalised L and ab: becomes the model's config."""
