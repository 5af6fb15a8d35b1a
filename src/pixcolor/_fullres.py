"""The full-resolution step: the network's colour at render size, on the photo's own luma.

What is kept: the input's **Rec. 601 luma** ``Y' = 0.299 R' + 0.587 G' + 0.114 B'`` of its
gamma-encoded values, which is what PIL's ``convert("L")`` computes and what the pixels of
a black-and-white photo are. For a gray input, converting the output back to gray gives
the input (within one level: 8-bit rounding). What is added: the chroma of the network's
prediction as an offset from gray, ``(R' - Y', G' - Y', B' - Y')`` (the Cb/Cr of YCbCr, in
RGB form), computed at render size from the shrunk input's CIE L and the predicted a/b
(:func:`pixcolor.lab.recolor`), then upsampled bilinearly to the input's size. Where
``Y' + offset`` would leave ``[0, 1]`` (bright or dark pixels under strong colour), the
offset is scaled down towards the gray of the same luma until it fits, so the luma is
still kept exactly and the hue roughly.

This is a YCbCr merge with the photo's own luma, as photo editors do when they colourise:
cheap enough to run at memory speed. On CPU it runs in numpy, in horizontal strips spread
over a few threads (numpy releases the GIL), about 25 float operations per pixel on data
that stays in the cache, in buffers each thread reuses; 8-bit inputs give 8-bit outputs
without a float copy of the image, pasted into the output image strip by strip. Tensors
on a GPU are processed there, with the same arithmetic in torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixcolor import lab
from pixcolor._output import OutputWriter, _quantize_array
from pixcolor._pillow_arrays import pixels_8bit
from pixcolor.images import LoadedImage

__all__ = ["LUMA", "chroma_offsets", "render", "rgb_offsets", "shrink_plane"]

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights of gamma-encoded R', G', B' (PIL's ``convert("L")``)."""

_LUMA32 = np.array(LUMA, np.float32)
# Pixels per strip. Smaller strips would stay in a core's L2 cache, but every numpy call
# releases and retakes the GIL, and with two threads each handover costs a thread wake-up:
# on a 2-core AMD EPYC, 2048-wide gray photos rendered at 10.8 ns/px in strips of 2^15
# pixels (no faster than one thread) against 6.9 ns/px in strips of 2^17 (in L3).
_STRIP_PIXELS = 1 << 17
# Smallest offset range: keeps the gamut fit's divisions finite on gray pixels.
_EPS = 1e-6
_pool: ThreadPoolExecutor | None = None


def chroma_offsets(small: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The colour to add to the luma, at render size, from a Lab prediction.

    Args:
        small: ``(B, 3, r, r)`` (or ``(B, 1, r, r)`` gray) sRGB in ``[0, 1]``, or uint8
            levels (converted with lookup tables): the shrunk inputs the network saw.
        ab: ``(B, 2, r, r)`` predicted chroma (scaled by any saturation factor).

    Returns:
        :func:`rgb_offsets` of ``lab.recolor(small, ab)``: ``(B, 5, r, r)``.
    """
    rgb = lab.recolor(small, ab)
    return rgb_offsets(rgb.float().div_(255.0) if rgb.dtype == torch.uint8 else rgb)


def rgb_offsets(rgb: torch.Tensor) -> torch.Tensor:
    """The colour of an sRGB image as offsets from its luma (for networks that predict RGB).

    Args:
        rgb: ``(B, 3, r, r)`` sRGB in ``[0, 1]``, the colourised image at render size.

    Returns:
        ``(B, 5, r, r)`` float32: ``R' - Y'``, ``G' - Y'``, ``B' - Y'`` (on the ``[0, 1]``
        scale; they sum to 0 under the luma weights), then their maximum and minus their
        minimum (at least ``1e-6``), which the gamut fit divides by.
    """
    rgb = rgb.float()
    out = rgb.new_empty((*rgb.shape[:-3], 5, *rgb.shape[-2:]))
    r, g, b = rgb.unbind(-3)
    luma = (LUMA[0] * r).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2])
    torch.sub(rgb, luma.unsqueeze(-3), out=out[..., :3, :, :])
    o_r, o_g, o_b, high, low = out.unbind(-3)
    torch.maximum(torch.maximum(o_r, o_g, out=high), o_b, out=high).clamp_(min=_EPS)
    torch.minimum(torch.minimum(o_r, o_g, out=low), o_b, out=low).neg_().clamp_(min=_EPS)
    return out


def render(loaded: LoadedImage, offsets: torch.Tensor, in_torch: bool | None = None) -> Any:
    """The colourised image at full resolution, as the kind the source was.

    Args:
        loaded: The input.
        offsets: ``(5, r, r)`` from :func:`chroma_offsets` for this input.
        in_torch: Compute with torch ops on the pixels' device (one strip at a time)
            rather than numpy on the CPU (strips spread over threads). ``None``: torch
            for pixels on an accelerator, numpy for pixels on the CPU.

    Returns:
        What :func:`pixcolor.images.to_output` gives for ``loaded``.
    """
    height, width = loaded.size
    pixels = loaded.pixels
    use_numpy = pixels.device.type == "cpu" if in_torch is None else not in_torch
    eight_bit = pixels.dtype == torch.uint8
    top = 255.0 if eight_bit else 1.0
    # Horizontal interpolation at render rows (cheap), vertical per strip.
    rows = offsets.shape[-2]
    lower, weight = _linear_plan(height, rows)
    strip_rows = max(1, _STRIP_PIXELS // width)
    prepare: Callable[[int, int], _Band]
    # 8-bit photos (not tensors) on the CPU: the strips go straight into a Pillow image.
    image = _StripImage(loaded) if use_numpy and eight_bit and loaded.kind != "tensor" else None
    if use_numpy:
        small = offsets.detach().to("cpu", torch.float32).numpy() * np.float32(top)

        def prepare(start: int, stop: int) -> _Band:
            # Each thread interpolates horizontally the render rows its band needs, and
            # reuses its own strip buffers (no allocation per strip).
            low, high = int(lower[start]), min(int(lower[stop - 1]) + 2, rows)
            wide = _horizontal(small[:, low:high], width)
            step = np.zeros_like(wide)
            np.subtract(wide[:, 1:], wide[:, :-1], out=step[:, :-1])
            count = min(strip_rows, stop - start)
            out = np.empty((small.shape[0], count, width), np.float32)
            scratch = np.empty((2, count, width), np.float32)
            levels = None if image is None else np.empty((image.bands, count, width), np.uint8)
            return _Band(wide, step, low, out, scratch, levels)

        src = pixels.numpy()
        xp: Any = np
    else:
        small_t = offsets[None].to(pixels.device, torch.float32) * top
        wide_ = F.interpolate(small_t, size=(rows, width), mode="bilinear", align_corners=False)[0]
        step_ = torch.zeros_like(wide_)
        torch.sub(wide_[:, 1:], wide_[:, :-1], out=step_[:, :-1])

        def prepare(start: int, stop: int) -> _Band:
            return _Band(wide_, step_, 0)

        src = pixels
        xp = torch
        lower = torch.from_numpy(lower).to(pixels.device)
        weight = torch.from_numpy(weight).to(pixels.device)
    gray = pixels.stride(0) == 0
    writer = None
    planes: Any = None
    if not eight_bit:
        writer = OutputWriter(loaded)
    elif image is None:
        channels = 3 if loaded.alpha is None else 4
        planes = (
            np.empty((channels, height, width), np.uint8)
            if use_numpy
            else torch.empty((channels, height, width), dtype=torch.uint8, device=pixels.device)
        )

    def strip(first: int, last: int, band: _Band) -> None:
        count = last - first
        out = None if band.out is None else band.out[:, :count]
        luma = None if band.scratch is None else band.scratch[0, :count]
        scale = None if band.scratch is None else band.scratch[1, :count]
        rows_ = lower[first:last] - band.low
        out = _vertical(xp, band.wide, band.step, rows_, weight[first:last], out)
        luma = _luma(xp, src, first, last, gray, top, luma)
        _fit(xp, out, luma, top, scale=scale)
        if eight_bit:
            luma += 0.5  # the cast below truncates: round instead
            out[:3] += luma
            if image is not None:
                image.paste(first, out[:3], band.levels)
            else:
                _cast_into(xp, planes[:3, first:last], out[:3])
        else:
            out[:3] += luma
            assert writer is not None
            writer.write(_as_tensor(out[:3]), first)

    _run_strips(strip, height, strip_rows, parallel=use_numpy, prepare=prepare)
    if writer is not None:
        return writer.result()
    if image is not None:
        return image.result()
    return _assemble(loaded, planes)


def shrink_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 plane ``(H, W)`` resized to ``size`` ``(h, w)`` by Pillow's antialiased
    bilinear filter, in horizontal bands on the worker threads (Pillow releases the GIL;
    each band is resized from its own box of the source, which gives the same samples as
    one whole resize)."""
    height, width = plane.shape
    image = Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1)
    rows = size[0]
    workers = min(_workers(), rows, max(1, height * width // _STRIP_PIXELS))
    if workers == 1:
        return np.array(image.resize(size[::-1], Image.Resampling.BILINEAR))
    out = np.empty(size, np.uint8)

    def band(index: int) -> None:
        first, last = rows * index // workers, rows * (index + 1) // workers
        box = (0.0, height * first / rows, float(width), height * last / rows)
        part = image.resize((size[1], last - first), Image.Resampling.BILINEAR, box=box)
        out[first:last] = np.asarray(part)

    for future in [_executor().submit(band, index) for index in range(workers)]:
        future.result()
    return out


def _linear_plan(size: int, source: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resampling of ``source`` samples to ``size`` (``align_corners=False``, as
    :func:`torch.nn.functional.interpolate`): output ``i`` is ``lower[i]`` plus
    ``weight[i]`` of the step to the next sample (which is 0 past the last)."""
    position = ((np.arange(size) + 0.5) * (source / size) - 0.5).clip(min=0.0)
    lower = np.minimum(position.astype(np.int64), source - 1)
    return lower, (position - lower).astype(np.float32)


def _horizontal(small: np.ndarray, width: int) -> np.ndarray:
    """``(C, r, r')`` -> ``(C, r, width)``, bilinear along the last axis."""
    lower, weight = _linear_plan(width, small.shape[-1])
    left = np.take(small, lower, axis=-1)
    right = np.take(small, np.minimum(lower + 1, small.shape[-1] - 1), axis=-1)
    right -= left
    right *= weight
    left += right
    return left


def _vertical(xp: Any, wide: Any, step: Any, lower: Any, weight: Any, out: Any = None) -> Any:
    """Rows of ``wide`` ``(5, r, W)`` interpolated at ``lower + weight``: ``(5, h, W)``
    (into ``out`` where given, numpy only). In numpy, one multiply-add per run of output
    rows between the same two source rows (upsampling), or gathers where runs are short."""
    count = len(lower)
    if xp is torch:
        out = torch.empty((wide.shape[0], count, wide.shape[2]), dtype=wide.dtype)
        out = out.to(wide.device)
        torch.addcmul(wide[:, lower], step[:, lower], weight.view(1, -1, 1), out=out)
        return out
    lows = lower.tolist()
    starts = [0] + [i for i in range(1, count) if lows[i] != lows[i - 1]]
    if out is None:
        out = np.empty((wide.shape[0], count, wide.shape[2]), dtype=wide.dtype)
    if len(starts) * 4 > count:  # short runs: a loop of tiny operations would cost more
        np.take(wide, lower, axis=1, out=out)
        slope = np.take(step, lower, axis=1)
        slope *= weight[None, :, None]
        out += slope
        return out
    for start, end in zip(starts, [*starts[1:], count], strict=True):
        block = out[:, start:end]
        np.multiply(weight[start:end, None], step[:, lows[start], None, :], out=block)
        block += wide[:, lows[start], None, :]
    return out


def _luma(xp: Any, src: Any, first: int, last: int, gray: bool, top: float, out: Any = None) -> Any:
    """``Y'`` of rows ``first:last`` as float32 ``(h, W)`` on the scale ``[0, top]`` (into
    ``out`` where given, numpy only)."""
    if gray:
        plane = src[0, first:last]
        if xp is not np:
            return plane.to(torch.float32, copy=True)
        if out is None:
            return plane.astype(np.float32)
        np.copyto(out, plane)
        return out
    if xp is np and src.strides[0] == src.itemsize:  # interleaved (H, W, 3), as decoded
        rows = src[:, first:last].transpose(1, 2, 0)
        return np.matmul(rows.astype(np.float32), _LUMA32, out=out)
    r, g, b = (src[c, first:last] for c in range(3))
    if xp is np:
        luma = np.multiply(r, _LUMA32[0], dtype=np.float32, out=out)
        luma += np.multiply(g, _LUMA32[1], dtype=np.float32)
        luma += np.multiply(b, _LUMA32[2], dtype=np.float32)
        return luma
    return LUMA[0] * r.float() + LUMA[1] * g.float() + LUMA[2] * b.float()


def _fit(
    xp: Any,
    out: Any,
    luma: Any,
    top: float,
    brightest: Any = None,
    darkest: Any = None,
    scale: Any = None,
) -> None:
    """Scale the offsets ``out[:3]`` so that ``luma + offsets`` fits in ``[0, top]``:
    ``s = min(1, (top - Y') / max, Y' / -min)`` with the interpolated bounds ``out[3:5]``
    (never below the true maximum and above the true minimum, so the fit is safe). With
    ``brightest`` and ``darkest`` (in ``[0, top]``, around ``luma``: a video's headroom),
    the colour fits on every luma between them instead. ``scale``: a scratch plane like
    ``luma`` (numpy only)."""
    high = luma if brightest is None else brightest
    scale = np.subtract(np.float32(top), high, out=scale) if xp is np else torch.rsub(high, top)
    scale /= out[3]
    low = out[4]
    xp.divide(luma if darkest is None else darkest, low, out=low)
    xp.minimum(scale, low, out=scale)
    if xp is np:
        np.minimum(scale, np.float32(1.0), out=scale)
    else:
        scale.clamp_(max=1.0)
    out[:3] *= scale


class _Band(NamedTuple):
    """What the strips of one band share: the render rows it needs interpolated to the
    full width (``wide``, from row ``low``) and the steps between them, and (numpy) its
    strip buffers: ``out`` ``(5, rows, W)``, two scratch planes, and the uint8 ``levels``
    a :class:`_StripImage` casts into."""

    wide: Any
    step: Any
    low: int
    out: Any = None
    scratch: Any = None
    levels: Any = None


class _StripImage:
    """An 8-bit output image filled strip by strip from the worker threads: each strip is
    cast into its band's uint8 buffer ``levels`` ``(bands, rows, W)``, merged by Pillow and
    pasted. The image is allocated uninitialised, so its pages are first touched there, in
    parallel and while the strip is in the cache, rather than by one merge of whole planes
    after all strips (page faults cost about 2 ns per pixel of a fresh 16 MB image). For a
    numpy source the merged strips go straight into the output array instead."""

    def __init__(self, loaded: LoadedImage) -> None:
        height, width = loaded.size
        self.alpha = None
        if loaded.alpha is not None:
            self.alpha = _quantize_array(loaded.alpha[0].to("cpu"), np.dtype(np.uint8))
        self.mode = "RGB" if self.alpha is None else "RGBA"
        self.bands = len(self.mode)
        # A numpy output gets the strips' pixels directly, without a whole Pillow image.
        self.array = None
        self.image = None
        if loaded.kind == "numpy":
            self.array = np.empty((height, width, self.bands), np.uint8)
        else:
            self.image = Image.new(self.mode, (width, height), None)

    def result(self) -> Any:
        """The filled image (PIL), or array ``(H, W, 3|4)`` for a numpy source."""
        return self.array if self.array is not None else self.image

    def paste(self, first: int, values: np.ndarray, levels: np.ndarray) -> None:
        """Rows ``first:`` from floats ``(3, rows, W)`` in ``[0, 256)`` (truncated)."""
        count, width = values.shape[1:]
        levels = levels[:, :count]
        np.copyto(levels[:3], values, casting="unsafe")
        if self.alpha is not None:
            levels[3] = self.alpha[first : first + count]
        bands = [Image.frombuffer("L", (width, count), p, "raw", "L", 0, 1) for p in levels]
        strip = Image.merge(self.mode, bands)
        if self.array is not None:
            pixels_8bit(strip, self.array[first : first + count])
        else:
            self.image.paste(strip, (0, first))


def _cast_into(xp: Any, target: Any, values: Any) -> None:
    """Truncating cast of floats in ``[0, 256)`` into uint8 ``target``."""
    if xp is np:
        np.copyto(target, values, casting="unsafe")
    else:
        target.copy_(values.clamp_(0.0, 255.0))


def _as_tensor(values: Any) -> torch.Tensor:
    return torch.from_numpy(values) if isinstance(values, np.ndarray) else values


def _run_strips(
    strip: Callable[[int, int, Any], None],
    height: int,
    rows: int,
    parallel: bool,
    prepare: Callable[[int, int], Any],
) -> None:
    """``strip(first, last, prepare(start, stop))`` over all rows in strips of ``rows``; in
    parallel, one band ``start:stop`` of consecutive strips per worker thread (a task per
    strip would cost more than it), ``prepare`` called once per band in its thread."""
    workers = min(_workers(), -(-height // rows)) if parallel else 1

    def band(index: int) -> None:
        start, stop = height * index // workers, height * (index + 1) // workers
        if start == stop:
            return
        context = prepare(start, stop)
        for first in range(start, stop, rows):
            strip(first, min(stop, first + rows), context)

    if workers == 1:
        band(0)
        return
    for future in [_executor().submit(band, index) for index in range(workers)]:
        future.result()


def _workers() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool._max_workers != _workers():
        _pool = ThreadPoolExecutor(_workers(), thread_name_prefix="pixcolor-fullres")
    return _pool


def _assemble(loaded: LoadedImage, planes: Any) -> Any:
    """uint8 planes ``(3, H, W)`` (a fourth one free for alpha) -> the source's kind."""
    if loaded.alpha is not None:
        alpha = _quantize_array(loaded.alpha[0].to("cpu"), np.dtype(np.uint8))
        if isinstance(planes, np.ndarray):
            planes[3] = alpha
        else:
            planes[3] = torch.from_numpy(alpha.astype(np.uint8)).to(planes.device)
    if loaded.kind == "tensor":
        tensor = planes if isinstance(planes, torch.Tensor) else torch.from_numpy(planes)
        return tensor.to(loaded.device)
    array = planes if isinstance(planes, np.ndarray) else planes.cpu().numpy()
    height, width = loaded.size
    bands = [Image.frombuffer("L", (width, height), p, "raw", "L", 0, 1) for p in array]
    image = Image.merge("RGB" if len(bands) == 3 else "RGBA", bands)
    if loaded.kind in ("path", "pil"):
        return image
    return np.array(image)
