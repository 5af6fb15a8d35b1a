"""The camera's motion between consecutive frames, for the temporal filter: one translation
per pair of frames, found by phase correlation of their guides (the gray at the network's
size) to a fraction of a pixel, and the warp that follows it.

Phase correlation normalises away each frequency's amplitude, so a change of exposure (old
film's flicker) does not move its peak; a Hann window keeps the frame's borders, which do
not wrap around, from adding a peak at zero.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

__all__ = ["estimate_shifts", "inside", "shifts_between", "spectra", "warp"]


def estimate_shifts(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` translations ``(dy, dx)`` in pixels such that what is at ``p`` in each
    ``previous`` frame is at ``p + (dy, dx)`` in the matching ``current`` one (both
    ``(B, 1, h, w)``), each within half the frame."""
    return shifts_between(spectra(previous), spectra(current), current.shape[-2:])


def spectra(frames: torch.Tensor) -> torch.Tensor:
    """The windowed spectra of ``(B, 1, h, w)`` frames that :func:`shifts_between` takes
    (a stream computes each frame's once)."""
    x = frames[:, 0].float()
    window = _window(*x.shape[-2:])
    return torch.fft.rfft2((x - x.mean(dim=(-2, -1), keepdim=True)) * window)


def shifts_between(
    previous: torch.Tensor, current: torch.Tensor, size: tuple[int, int] | torch.Size
) -> torch.Tensor:
    """:func:`estimate_shifts` from the frames' :func:`spectra` (frames of ``size``)."""
    h, w = size
    cross = current * previous.conj()
    corr = torch.fft.irfft2(cross / (cross.abs() + 1e-20), s=(h, w))
    peak = corr.flatten(1).argmax(dim=1)
    py, px = peak // w, peak % w
    rows = torch.arange(len(corr))
    centre = corr[rows, py, px]
    dy = py.float() + _vertex(corr[rows, (py - 1) % h, px], centre, corr[rows, (py + 1) % h, px])
    dx = px.float() + _vertex(corr[rows, py, (px - 1) % w], centre, corr[rows, py, (px + 1) % w])
    dy = torch.where(dy > h / 2, dy - h, dy)
    dx = torch.where(dx > w / 2, dx - w, dx)
    return torch.stack([dy, dx], dim=1)


@lru_cache(maxsize=4)
def _window(h: int, w: int) -> torch.Tensor:
    """A 2-D Hann window of ``h x w``."""
    return torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))


def _vertex(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Offset of the vertex of the parabola through three samples around a peak, in
    ``[-0.5, 0.5]`` (0 where they do not curve downwards)."""
    curve = left - 2 * centre + right
    offset = torch.where(curve < 0, 0.5 * (left - right) / curve.clamp(max=-1e-12), 0.0)
    return offset.clamp(-0.5, 0.5)


def warp(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``image`` ``(C, h, w)`` moved by ``shift`` ``(dy, dx)`` pixels: the result at ``p`` is
    ``image`` at ``p - shift``, interpolated bilinearly, with 0 outside ``image`` (what
    ``grid_sample`` gives with zero padding, in a few slices instead)."""
    h, w = image.shape[-2:]
    dy, dx = float(shift[0]), float(shift[1])
    if abs(dy) >= h or abs(dx) >= w:
        return torch.zeros_like(image)
    iy, ix = math.floor(dy), math.floor(dx)
    fy, fx = dy - iy, dx - ix
    pad = max(abs(iy), abs(ix)) + 1
    padded = F.pad(image, (pad,) * 4)

    def moved(ky: int, kx: int) -> torch.Tensor:  # image at p - (ky, kx), 0 outside
        return padded[..., pad - ky : pad - ky + h, pad - kx : pad - kx + w]

    top = torch.lerp(moved(iy, ix), moved(iy, ix + 1), fx)
    bottom = torch.lerp(moved(iy + 1, ix), moved(iy + 1, ix + 1), fx)
    return torch.lerp(top, bottom, fy)


def inside(size: tuple[int, int], shift: torch.Tensor) -> torch.Tensor:
    """``(1, h, w)``: 1 where :func:`warp` by ``shift`` reads only from inside the image."""
    h, w = size
    dy, dx = float(shift[0]), float(shift[1])
    rows = torch.arange(h, dtype=torch.float32) - dy
    cols = torch.arange(w, dtype=torch.float32) - dx
    return (
        ((rows >= 0) & (rows <= h - 1))[:, None] & ((cols >= 0) & (cols <= w - 1))[None, :]
    ).float()[None]
