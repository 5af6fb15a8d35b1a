"""Colour for video frames in Y'CbCr: the luma plane stays the source's, the chroma planes
are computed from predicted a/b.

A video frame's luma ``Y'`` is its black-and-white picture, so :mod:`pixcolor.video` keeps
that plane byte for byte and writes only new chroma planes (at their own, often subsampled,
size). The colour is that of a photo's full-resolution step (:mod:`pixcolor._fullres`):
offsets from gray computed at render size from the predicted a/b, upsampled to the chroma
planes and scaled towards gray where the colour would leave the gamut.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixcolor import _fullres


def luma_to_gray(luma: torch.Tensor, full_range: bool) -> torch.Tensor:
    """8-bit luma levels ``(*, H, W)`` -> float gray sRGB in ``[0, 1]`` (the picture a
    black-and-white set shows): ``Y' / 255`` in full range, ``(Y' - 16) / 219`` in the
    16-235 studio range (clipped).

    Example:
        >>> luma_to_gray(torch.tensor([16, 235, 255], dtype=torch.uint8), False).tolist()
        [0.0, 1.0, 1.0]
    """
    gray = luma.to(torch.float32, copy=True)
    if full_range:
        return gray.div_(255.0)
    return gray.sub_(16.0).div_(219.0).clamp_(0.0, 1.0)


def chroma_gray(luma: torch.Tensor, pix_fmt: str, full_range: bool) -> torch.Tensor:
    """8-bit luma ``(B, 1, H, W)`` -> the gray of each chroma sample of ``pix_fmt``: the mean
    of its luma samples as :func:`luma_to_gray` (``(B, 1, hc, wc)`` float32). For even
    sides the sums are taken on 16-bit integers (4x faster than pooling a float copy)."""
    sub_h, sub_w = _subsampling(pix_fmt)
    height, width = luma.shape[-2:]
    if sub_h * sub_w == 1 or height % sub_h or width % sub_w:
        gray = luma_to_gray(luma, full_range)
        if sub_h * sub_w == 1:
            return gray
        return F.avg_pool2d(gray, (sub_h, sub_w), ceil_mode=True)
    levels = (luma if full_range else luma.clamp(16, 235)).to(torch.int16)
    total = levels[..., ::sub_h, ::sub_w].clone()
    for dy in range(sub_h):
        for dx in range(sub_w):
            if dy or dx:
                total += levels[..., dy::sub_h, dx::sub_w]
    count = sub_h * sub_w
    low, span = (0.0, 255.0) if full_range else (16.0, 219.0)
    return total.float().sub_(low * count).div_(span * count)


def chroma_size(height: int, width: int, pix_fmt: str) -> tuple[int, int]:
    """``(h, w)`` of the chroma planes of ``pix_fmt`` (``yuv420p``, ``yuv422p``,
    ``yuv444p`` and their ``yuvj`` twins)."""
    sub_h, sub_w = _subsampling(pix_fmt)
    return -(-height // sub_h), -(-width // sub_w)


def chroma_planes(
    gray: torch.Tensor,
    offsets: torch.Tensor,
    pix_fmt: str,
    matrix: tuple[str, float, float],
    full_range: bool,
    pooled: bool = False,
) -> torch.Tensor:
    """The Cb and Cr planes of frames whose luma is ``gray`` and colour ``offsets``, as
    float levels (round them with :func:`quantize_chroma`).

    Args:
        gray: ``(B, 1, H, W)`` float gray in ``[0, 1]`` at full resolution (see
            :func:`luma_to_gray`), or with ``pooled`` already at the chroma planes' size
            (:func:`chroma_gray`).
        offsets: ``(B, 5, h, w)`` colour offsets from gray at any size
            (:func:`pixcolor._fullres.chroma_offsets`), resized bilinearly to the chroma
            planes' size and scaled towards gray where ``gray + offsets`` would leave
            ``[0, 1]``, as the full-resolution step of a photo does. ``(B, 7, h, w)``: two
            more channels, how much brighter and darker each place gets in the frames
            around (the temporal filter's headroom); the colour is then fitted to leave
            ``[0, 1]`` in none of them.
        pix_fmt: Output pixel format, which sets the chroma subsampling.
        matrix: ``(name, Kr, Kb)`` of the Y'CbCr matrix.
        full_range: Full-range (0-255) rather than studio-range (16-240) chroma.
        pooled: ``gray`` is the gray of each chroma sample, not of each pixel.

    Returns:
        ``(B, 2, hc, wc)`` float32 Cb and Cr levels (128 is neutral), ``(hc, wc)`` from
        :func:`chroma_size`.
    """
    sub_h, sub_w = _subsampling(pix_fmt)
    if (sub_h > 1 or sub_w > 1) and not pooled:
        # the gray of each chroma sample: mean of its luma samples
        gray = F.avg_pool2d(gray, (sub_h, sub_w), ceil_mode=True)
    size = gray.shape[-2:]
    offsets = offsets.float()
    if offsets.shape[-2:] != size:
        offsets = F.interpolate(offsets, size=size, mode="bilinear", align_corners=False)
    else:
        offsets = offsets.clone()
    for out, luma in zip(offsets, gray[:, 0], strict=True):
        if len(out) == 7:  # fitted on every luma the place takes in the frames around
            brightest = (luma + out[5]).clamp_(max=1.0)
            darkest = (luma - out[6]).clamp_(min=0.0)
            _fullres._fit(torch, out, luma, 1.0, brightest, darkest)
        else:
            _fullres._fit(torch, out, luma, 1.0)
    red, green, blue = offsets[:, :3].unbind(1)
    _, kr, kb = matrix
    # The offsets sum to 0 under Rec. 601's weights: the matrix's luma of them is what the
    # decoder's luma would gain, so it is taken out (the frame's luma stays its own).
    luma_gain = kr * red + (1.0 - kr - kb) * green + kb * blue
    cb = (blue - luma_gain) / (2.0 * (1.0 - kb))
    cr = (red - luma_gain) / (2.0 * (1.0 - kr))
    scale = 255.0 if full_range else 224.0
    return torch.stack([cb, cr], 1).mul_(scale).add_(128.0)


def quantize_chroma(planes: torch.Tensor, full_range: bool) -> torch.Tensor:
    """Float chroma levels -> uint8, clipped to 0-255 (full range) or 16-240.

    Example:
        >>> quantize_chroma(torch.tensor([3.0, 128.4, 250.0]), False).tolist()
        [16, 128, 240]
    """
    low, high = (0.0, 255.0) if full_range else (16.0, 240.0)
    return planes.round().clamp_(low, high).to(torch.uint8)


def _subsampling(pix_fmt: str) -> tuple[int, int]:
    """``(vertical, horizontal)`` chroma subsampling factors."""
    name = pix_fmt.replace("yuvj", "yuv")
    factors = {"yuv420p": (2, 2), "yuv422p": (1, 2), "yuv444p": (1, 1)}
    if name not in factors:
        raise ValueError(f"pix_fmt must be one of {', '.join(factors)}, got {pix_fmt!r}")
    return factors[name]
