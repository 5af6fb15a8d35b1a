"""PNG figures of a training run drawn with Pillow alone: loss curves and sample grids."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from pixcolor._atomic import write_atomically

__all__ = ["plot_curves", "save_grid"]

_PANEL = (360, 200)
_MARGIN = 36
_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))


def plot_curves(
    curves: dict[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    x_label: str = "step",
) -> None:
    """Draw one small panel per named curve of ``(x, y)`` points and save a PNG atomically.

    Each panel has its own y range (losses differ by orders of magnitude) with its min and
    max printed, and the x range shared by all panels.
    """
    names = [n for n, pts in curves.items() if any(math.isfinite(y) for _, y in pts)]
    cols = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    width, height = _PANEL
    image = Image.new("RGB", (cols * width, rows * height), "white")
    draw = ImageDraw.Draw(image)
    xs = [x for n in names for x, _ in curves[n]]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    for k, name in enumerate(names):
        left, top = (k % cols) * width, (k // cols) * height
        box = (left + _MARGIN, top + 20, left + width - 10, top + height - 24)
        draw.rectangle(box, outline=(120, 120, 120))
        points = [(x, y) for x, y in curves[name] if math.isfinite(y)]
        ys = [y for _, y in points]
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        scale_x = (box[2] - box[0]) / max(x1 - x0, 1e-12)
        scale_y = (box[3] - box[1]) / (y1 - y0)
        pixels = [(box[0] + (x - x0) * scale_x, box[3] - (y - y0) * scale_y) for x, y in points]
        colour = _COLOURS[k % len(_COLOURS)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        else:
            px, py = pixels[0]
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.text((left + _MARGIN, top + 4), name, fill=(0, 0, 0))
        draw.text((left + 2, box[1]), f"{y1:.3g}", fill=(80, 80, 80))
        draw.text((left + 2, box[3] - 10), f"{y0:.3g}", fill=(80, 80, 80))
        draw.text((box[0], box[3] + 6), f"{x_label} {x0:g}", fill=(80, 80, 80))
        draw.text((box[2] - 60, box[3] + 6), f"{x1:g}", fill=(80, 80, 80))
    _save_png(image, Path(path))


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: str | os.PathLike[str]) -> None:
    """Save ``rows`` of ``(3, H, W)`` float RGB images in [0, 1] as one PNG, atomically."""
    height = max(t.shape[-2] for row in rows for t in row)
    width = max(t.shape[-1] for row in rows for t in row)
    cols = max(len(row) for row in rows)
    pad = 4
    canvas = Image.new(
        "RGB", (cols * (width + pad) + pad, len(rows) * (height + pad) + pad), "white"
    )
    for r, row in enumerate(rows):
        for c, tensor in enumerate(row):
            array = (
                (tensor.detach().float().clamp(0, 1) * 255)
                .round()
                .byte()
                .permute(1, 2, 0)
                .cpu()
                .numpy()
            )
            canvas.paste(
                Image.fromarray(array), (pad + c * (width + pad), pad + r * (height + pad))
            )
    _save_png(canvas, Path(path))


def _save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: image.save(tmp, format="PNG"))
