"""The camera's motion between consecutive frames, for the temporal filter: one translation
per pair of frames, found by phase correlation of their guides (the gray at the network's
size) to a fraction of a pixel, and the warp that follows it.

Phase correlation normalises away each frequency's amplitude, so a change of exposure (old
film's flicker) does not move its peak; a Hann window keeps the frame's borders, which do
not wrap around, from adding a peak at zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["estimate_shifts", "warp"]


def estimate_shifts(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` translations ``(dy, dx)`` in pixels such that what is at ``p`` in each
    ``previous`` frame is at ``p + (dy, dx)`` in the matching ``current`` one (both
    ``(B, 1, h, w)``), each within half the frame."""
    h, w = current.shape[-2:]
    window = torch.outer(
        torch.hann_window(h, periodic=False, dtype=torch.float64),
        torch.hann_window(w, periodic=False, dtype=torch.float64),
    )

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0].double()
        return torch.fft.rfft2((x - x.mean(dim=(-2, -1), keepdim=True)) * window)

    cross = spectrum(current) * spectrum(previous).conj()
    corr = torch.fft.irfft2(cross / (cross.abs() + 1e-12), s=(h, w))
    peak = corr.flatten(1).argmax(dim=1)
    py, px = peak // w, peak % w
    rows = torch.arange(len(corr))
    centre = corr[rows, py, px]
    dy = py.double() + _vertex(corr[rows, (py - 1) % h, px], centre, corr[rows, (py + 1) % h, px])
    dx = px.double() + _vertex(corr[rows, py, (px - 1) % w], centre, corr[rows, py, (px + 1) % w])
    dy = torch.where(dy > h / 2, dy - h, dy)
    dx = torch.where(dx > w / 2, dx - w, dx)
    return torch.stack([dy, dx], dim=1).float()


def _vertex(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Offset of the vertex of the parabola through three samples around a peak, in
    ``[-0.5, 0.5]`` (0 where they do not curve downwards)."""
    curve = left - 2 * centre + right
    offset = torch.where(curve < 0, 0.5 * (left - right) / curve.clamp(max=-1e-12), 0.0)
    return offset.clamp(-0.5, 0.5)


def warp(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``image`` ``(C, h, w)`` moved by ``shift`` ``(dy, dx)`` pixels: the result at ``p`` is
    ``image`` at ``p - shift`` (bilinear), 0 where that falls outside it."""
    h, w = image.shape[-2:]
    theta = torch.tensor(
        [[1.0, 0.0, -2.0 * float(shift[1]) / w], [0.0, 1.0, -2.0 * float(shift[0]) / h]],
        dtype=image.dtype,
    )
    grid = F.affine_grid(theta[None], [1, 1, h, w], align_corners=False)
    return F.grid_sample(
        image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0]
