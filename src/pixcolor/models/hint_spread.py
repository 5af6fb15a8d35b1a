"""A parameter-free, edge-aware spread of sparse colour hints, computed inside a hint model.

A network that must learn to carry a hint's colour across the photo needs far more data
than we have; given a dense first guess it only has to correct it (where an edge stops the
colour, where the guess is far from any hint). :func:`pyramid_spread` makes that guess by
*push-pull* interpolation (Gortler et al., "The Lumigraph", 1996): the hint planes are
averaged down an image pyramid (pull), and each level keeps the mean hint colour of a cell
that holds a hint and takes the coarser level's upsampled estimate elsewhere (push). Every
pixel gets the colour of the hints nearest to it in the pyramid, smoothly blended, in
``O(H * W)`` with pooling and bilinear upsampling only (no loops, exportable to ONNX).

Given the photo's lightness, every level of the push step is also smoothed along the
photo's edges by a few Jacobi sweeps of Levin, Lischinski and Weiss's optimisation
("Colorization using Optimization", 2004), so a colour flows along a surface and stops at
its edge: coarse-to-fine, this approximates that optimisation (which
:func:`pixcolor.spread.levin_spread` solves exactly, with a sparse solver) in a fixed number
of convolution-like steps that run inside the network's forward pass and export to ONNX.

It also returns how much hint support each pixel has at three scales (the hinted share of
the cell around it, scaled so one hint in the cell counts as 1), so the network can tell a
pixel right at a hint from one that is 60 pixels away from any.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SPREAD_CHANNELS", "pyramid_spread"]

SPREAD_CHANNELS = 5
"""Planes :func:`pyramid_spread` returns: spread a, spread b, support at three scales."""

_SUPPORT_LEVELS = (2, 4, 6)  # cells of 4, 16 and 64 pixels on a side
# Levels finer than this are not smoothed: on held-out 128-px crops with 10 / 30 hints,
# smoothing from level 2 (cells of 4 pixels) with 32 sweeps gave 27.08 / 28.79 dB, from level
# 0 with 16 sweeps 27.01 / 28.75 dB at about three times the cost (Levin et al.'s exact
# solve: 26.35 / 27.89 dB, plain push-pull: 25.92 / 27.08 dB).
_FINEST_SMOOTHED = 2
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
# (8, 1, 3, 3): one-hot kernels picking each neighbour (see _neighbours).
_SHIFT_KERNELS = torch.eye(9)[[4 + 3 * dy + dx for dy, dx in _OFFSETS]].reshape(8, 1, 3, 3)
_PAIR_SUM = torch.kron(torch.eye(2), torch.ones(1, 8)).reshape(2, 16, 1, 1)


def pyramid_spread(
    hints: torch.Tensor,
    levels: int | None = None,
    lightness: torch.Tensor | None = None,
    iterations: int = 32,
) -> torch.Tensor:
    """Spread hint planes over the whole image by push-pull interpolation.

    Args:
        hints: ``(B, 3, H, W)`` hint planes: hint a, hint b (any units), mask (1 at a hint,
            0 elsewhere; a fractional mask weighs a hint less).
        levels: Pyramid levels (halvings); H and W must be multiples of ``2**levels``.
            Cells of the coarsest level without a hint take the image's mean hint colour.
            ``None``: as many as H and W allow (until a side is odd or 1). A model passes
            its own number, so that an exported graph does not depend on the input size.
        lightness: ``(B, 1, H, W)`` Lab ``L / 100``: makes the spread edge-aware. At every
            pyramid level but the two finest, after the push step, ``iterations`` Jacobi
            sweeps of Levin et al.'s optimisation (8-neighbour affinities
            ``exp(-(Y_r - Y_s)^2 / s_r)``, ``s_r`` from the 3x3 variance of ``Y`` as in
            :func:`pixcolor.spread.levin_spread`) pull each pixel towards its neighbours of
            similar lightness, the hinted cells held in proportion to their hint support:
            coarse-to-fine, an approximation of that optimisation in a fixed number of
            cheap steps.
        iterations: Jacobi sweeps per level (with ``lightness``).

    Returns:
        ``(B, 5, H, W)``: the spread a and b (0 everywhere when there is no hint), then the
        support at cells of 4, 16 and 64 pixels on a side, each in ``[0, 1]``.

    Example:
        >>> planes = torch.zeros(1, 3, 32, 32)
        >>> planes[0, :, 4, 4] = torch.tensor([0.5, -0.2, 1.0])
        >>> out = pyramid_spread(planes)
        >>> [round(v, 3) for v in out[0, :2, 30, 30].tolist()]  # far away: the only hint's colour
        [0.5, -0.2]
    """
    if hints.dim() != 4 or hints.shape[1] != 3:
        raise ValueError(f"hints must have shape (B, 3, H, W), got {tuple(hints.shape)}")
    mask = hints[:, 2:3]
    weighted = torch.cat([hints[:, :2] * mask, mask], dim=1)
    if levels is None:
        levels = _max_levels(*hints.shape[-2:])
    pyramid = [weighted]  # each level: (sum of ab * mask, sum of mask) / cell area
    for _ in range(levels):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    coarsest = pyramid[-1]
    confidence = (coarsest[:, 2:3] * 4**levels).clamp(max=1.0)
    overall = _mean(weighted.sum(dim=(2, 3), keepdim=True))  # ReduceSum: opset 13+
    estimate = confidence * _mean(coarsest) + (1.0 - confidence) * overall
    support = []
    guides = [lightness] if lightness is not None else []
    for _ in range(levels if lightness is not None else 0):
        guides.append(F.avg_pool2d(guides[-1], 2))
    for level in range(levels, -1, -1):
        cell = pyramid[level]
        if level < levels:
            estimate = F.interpolate(
                estimate, size=cell.shape[-2:], mode="bilinear", align_corners=False
            )
            confidence = (cell[:, 2:3] * 4**level).clamp(max=1.0)  # 1 once a hint is in the cell
            estimate = confidence * _mean(cell) + (1.0 - confidence) * estimate
        if guides and min(cell.shape[-2:]) > 1 and level >= _FINEST_SMOOTHED:
            estimate = _smooth(estimate, _mean(cell), confidence, guides[level], iterations)
    size = hints.shape[-2:]
    for level in _SUPPORT_LEVELS:
        level = min(level, levels)  # a short pyramid: its coarsest level stands in
        density = (pyramid[level][:, 2:3] * 4**level).clamp(max=1.0)
        support.append(F.interpolate(density, size=size, mode="bilinear", align_corners=False))
    return torch.cat([estimate, *support], dim=1)


def _smooth(
    estimate: torch.Tensor,
    hinted: torch.Tensor,
    confidence: torch.Tensor,
    guide: torch.Tensor,
    iterations: int,
) -> torch.Tensor:
    """Jacobi sweeps of Levin et al.'s system on one level, hinted cells held by confidence."""
    weights = _affinities(guide)
    total = weights.sum(dim=1, keepdim=True)
    held = confidence * hinted
    if torch.compiler.is_exporting():
        # The same sweep as convolutions on 4-D tensors: a grouped 3x3 convolution with one-hot
        # kernels gathers the 8 neighbours of both planes, a 1x1 convolution sums them. Slicing
        # with dynamic bounds costs an ONNX graph thousands of shape nodes per sweep (minutes
        # of export); eagerly, the slices below are twice as fast.
        gather = _SHIFT_KERNELS.to(estimate).repeat(2, 1, 1, 1)  # (16, 1, 3, 3)
        paired = weights.repeat(1, 2, 1, 1)  # (B, 16, h, w): a's 8 weights, then b's
        summing = _PAIR_SUM.to(estimate)  # (2, 16, 1, 1)
        for _ in range(iterations):
            padded = F.pad(estimate, (1, 1, 1, 1), mode="replicate")
            shifted = F.conv2d(padded, gather, groups=2)
            average = F.conv2d(shifted * paired, summing) / total
            estimate = held + (1.0 - confidence) * average
        return estimate
    for _ in range(iterations):
        neighbours = _neighbours(estimate)  # (B, 2, 8, h, w)
        average = (neighbours * weights[:, None]).sum(dim=2) / total
        estimate = held + (1.0 - confidence) * average
    return estimate


def _affinities(y: torch.Tensor) -> torch.Tensor:
    """``(B, 8, h, w)`` weights of the 8 neighbours of every pixel of ``y`` ``(B, 1, h, w)``."""
    neighbours = _neighbours(y)[:, 0]  # (B, 8, h, w); edges repeat the border pixel
    window = torch.cat([neighbours, y], dim=1)
    variance = window.var(dim=1, keepdim=True, unbiased=False)
    squared = (neighbours - y) ** 2
    closest = squared.amin(dim=1, keepdim=True)
    scale = torch.maximum(0.6 * variance, closest / 4.605170185988091).clamp(min=2e-6)  # -ln 0.01
    return torch.exp(-squared / scale).clamp(min=1e-6)


def _neighbours(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, 8, h, w)``: the 8 neighbours of every pixel of ``x`` ``(B, C, h, w)``."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    if torch.compiler.is_exporting():
        # One convolution with one-hot kernels: the same numbers, but a few ONNX nodes
        # instead of eight slices whose dynamic bounds each need their own shape arithmetic
        # (59,000 nodes and minutes of export for a hint model). Eagerly, slicing is 2x faster.
        batch, channels = x.shape[:2]
        kernel = _SHIFT_KERNELS.to(x)
        flat = padded.reshape(batch * channels, 1, height + 2, width + 2)
        return F.conv2d(flat, kernel).reshape(batch, channels, 8, height, width)
    shifts = [padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _OFFSETS]
    return torch.stack(shifts, dim=2)


def _max_levels(height: int, width: int) -> int:
    levels = 0
    while min(height, width) > 1 and height % 2 == 0 and width % 2 == 0:
        height, width, levels = height // 2, width // 2, levels + 1
    return levels


def _mean(cell: torch.Tensor) -> torch.Tensor:
    """Mean hint ab of each cell (0 where the cell holds no hint)."""
    weight = cell[:, 2:3]
    return cell[:, :2] / weight.clamp(min=1e-6) * (weight > 0)
