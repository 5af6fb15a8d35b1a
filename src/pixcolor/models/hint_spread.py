"""A parameter-free spread of sparse colour hints, as input planes for a hint model.

A network that must learn to carry a hint's colour across the photo needs far more data
than we have; given a dense first guess it only has to correct it (where an edge stops the
colour, where the guess is far from any hint). :func:`spread_hints` makes that guess by
*push-pull* interpolation (Gortler et al., "The Lumigraph", 1996): the hint planes are
averaged down an image pyramid (pull), and each level keeps the mean hint colour of a cell
that holds a hint and takes the coarser level's upsampled estimate elsewhere (push). Every
pixel gets the colour of the hints nearest to it in the pyramid, smoothly blended, in
``O(H * W)`` with pooling and bilinear upsampling only (no loops, exportable to ONNX).

It also returns how much hint support each pixel has at three scales (the hinted share of
the cell around it, scaled so one hint in the cell counts as 1), so the network can tell a
pixel right at a hint from one that is 60 pixels away from any.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SPREAD_CHANNELS", "spread_hints"]

SPREAD_CHANNELS = 5
"""Planes :func:`spread_hints` returns: spread a, spread b, support at three scales."""

_SUPPORT_LEVELS = (2, 4, 6)  # cells of 4, 16 and 64 pixels on a side


def spread_hints(hints: torch.Tensor) -> torch.Tensor:
    """Spread hint planes over the whole image by push-pull interpolation.

    Args:
        hints: ``(B, 3, H, W)`` hint planes: hint a, hint b (any units), mask (1 at a hint,
            0 elsewhere; a fractional mask weighs a hint less). H and W are powers-of-two
            multiples of anything (the pyramid halves until a side is odd or 1).

    Returns:
        ``(B, 5, H, W)``: the spread a and b (0 everywhere when there is no hint), then the
        support at cells of 4, 16 and 64 pixels on a side, each in ``[0, 1]``.

    Example:
        >>> planes = torch.zeros(1, 3, 32, 32)
        >>> planes[0, :, 4, 4] = torch.tensor([0.5, -0.2, 1.0])
        >>> out = spread_hints(planes)
        >>> [round(v, 3) for v in out[0, :2, 30, 30].tolist()]  # far away: the only hint's colour
        [0.5, -0.2]
    """
    if hints.dim() != 4 or hints.shape[1] != 3:
        raise ValueError(f"hints must have shape (B, 3, H, W), got {tuple(hints.shape)}")
    mask = hints[:, 2:3]
    weighted = torch.cat([hints[:, :2] * mask, mask], dim=1)
    pyramid = [weighted]  # each level: (sum of ab * mask, sum of mask) / cell area
    while min(pyramid[-1].shape[-2:]) > 1 and all(s % 2 == 0 for s in pyramid[-1].shape[-2:]):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    estimate = _mean(pyramid[-1])
    support = []
    for level in range(len(pyramid) - 2, -1, -1):
        cell = pyramid[level]
        estimate = F.interpolate(
            estimate, size=cell.shape[-2:], mode="bilinear", align_corners=False
        )
        confidence = (cell[:, 2:3] * 4**level).clamp(max=1.0)  # 1 as soon as a hint is in the cell
        estimate = confidence * _mean(cell) + (1.0 - confidence) * estimate
    size = hints.shape[-2:]
    for level in _SUPPORT_LEVELS:
        level = min(level, len(pyramid) - 1)  # a short pyramid: its coarsest level stands in
        density = (pyramid[level][:, 2:3] * 4**level).clamp(max=1.0)
        support.append(F.interpolate(density, size=size, mode="bilinear", align_corners=False))
    return torch.cat([estimate, *support], dim=1)


def _mean(cell: torch.Tensor) -> torch.Tensor:
    """Mean hint ab of each cell (0 where the cell holds no hint)."""
    weight = cell[:, 2:3]
    return cell[:, :2] / weight.clamp(min=1e-6) * (weight > 0)
