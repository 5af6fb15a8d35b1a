"""What one browser tab of ``pixcolor app`` holds and does, without Gradio.

A :class:`Session` is one uploaded photo: a display-size copy of it (the preview), the
colour hints the user placed (kept in the full-resolution photo's pixel coordinates, so
the downloaded hints JSON works with ``pixcolor colorize --hints``), and a private folder
for the files offered for download. Interactive updates colourise the preview only, which
keeps a click under a second whatever the photo's size; the full-resolution result is made
when the user asks for the download.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from pixcolor import images, lab
from pixcolor.colorizer import Colorizer
from pixcolor.errors import ImageError

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 768
"""Longest side of the preview the page shows and colourises on every change, in pixels."""

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


class UploadTooLargeError(ImageError):
    """An uploaded file is larger than the page accepts."""


@dataclass
class Session:
    """One photo open in one browser tab.

    Attributes:
        folder: This tab's own folder for downloadable files (removed by :meth:`close`).
        source: The uploaded file.
        name: The file name the user uploaded, for messages and download names.
        size: ``(H, W)`` of the full-resolution photo (after EXIF orientation).
        preview: ``(h, w, 3)`` uint8, the photo at display size (longest side at most
            :data:`PREVIEW_SIDE`).
        gray: ``(h, w, 3)`` uint8, the preview's lightness as gray.
        result: ``(h, w, 3)`` uint8, the last colourised preview (``None`` before the first).
        hints: The colour hints, ``{"x": float, "y": float, "color": "#rrggbb"}`` in
            full-resolution pixel coordinates (x right, y down).
        selected: Index in :attr:`hints` of the hint the colour picker edits, or ``None``.
    """

    folder: Path
    source: Path
    name: str
    size: tuple[int, int]
    preview: np.ndarray
    gray: np.ndarray
    result: np.ndarray | None = None
    hints: list[dict[str, Any]] = field(default_factory=list)
    selected: int | None = None

    @property
    def stem(self) -> str:
        """The upload's file name without extension, safe as part of a file name."""
        stem = re.sub(r"[^\w.-]+", "_", Path(self.name).stem).strip("._")
        return stem[:80] or "photo"

    def close(self) -> None:
        """Remove this tab's files."""
        shutil.rmtree(self.folder, ignore_errors=True)


def open_photo(path: str | Path, root: Path, *, name: str | None = None,
               max_bytes: int | None = None) -> Session:  # fmt: skip
    """Read an uploaded photo and make its preview.

    Args:
        path: The uploaded file.
        root: Folder under which the session's own folder is created.
        name: The name the user knows the file by (default: ``path``'s name).
        max_bytes: Refuse files larger than this.

    Returns:
        A new session with no hints.

    Raises:
        UploadTooLargeError: If the file is larger than ``max_bytes``.
        ImageError: If the file is not a usable image (not an image, truncated, or above
            Pillow's decompression-bomb limit); the message names ``name``, not the
            temporary path.
    """
    path = Path(path)
    name = name or path.name
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise UploadTooLargeError(
            f"{name!r} is {_megabytes(size)}; this page accepts photos up to "
            f"{_megabytes(max_bytes)}"
        )
    try:
        loaded = images.load_image(path)
    except ImageError as exc:
        message = str(exc).replace(repr(str(path)), repr(name))
        raise type(exc)(message) from None
    full_size = loaded.size
    preview_planes = _shrink(loaded.pixels, PREVIEW_SIDE)
    del loaded
    gray = _gray(preview_planes)
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="session-", dir=root))
    return Session(
        folder=folder, source=path, name=name, size=full_size,
        preview=_to_hwc(preview_planes), gray=_to_hwc(gray),
    )  # fmt: skip


def render(colorizer: Colorizer, session: Session, *, saturation: float = 1.0,
           render_size: int | None = None) -> np.ndarray:  # fmt: skip
    """Colourise the preview with the session's hints; also stored as ``session.result``.

    Returns:
        ``(h, w, 3)`` uint8.
    """
    kwargs: dict[str, Any] = {"render_size": render_size, "saturation": saturation}
    if session.hints:
        kwargs["hints"] = _preview_hints(session)
    result = colorizer.colorize(session.preview, **kwargs)
    session.result = np.ascontiguousarray(result[..., :3])
    return session.result


def add_hint(session: Session, x: float, y: float, color: str | None = None, *,
             select: bool = True) -> dict[str, Any]:  # fmt: skip
    """Add a hint at preview pixel ``(x, y)``.

    Args:
        session: The session.
        x: Column in the preview (as the page reports a click).
        y: Row in the preview.
        color: ``"#rrggbb"``; default: the current result's colour there (the model's
            prediction, with the other hints' influence), as Zhang et al. (2017) suggest.
        select: Make it the selected hint (the one the colour picker edits); else no hint
            is selected.

    Returns:
        The new hint, in full-resolution coordinates.

    Raises:
        ValueError: If ``(x, y)`` is outside the preview or ``color`` is malformed.
    """
    height, width = session.preview.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"({x}, {y}) is outside the {width} x {height} preview")
    if color is None:
        source = session.result if session.result is not None else session.gray
        color = rgb_to_hex(source[int(y), int(x)])
    full_height, full_width = session.size
    hint = {  # pixel centres map to pixel centres; the edge pixels stay inside the photo
        "x": round(min(max((x + 0.5) * full_width / width - 0.5, 0.0), full_width - 1), 1),
        "y": round(min(max((y + 0.5) * full_height / height - 0.5, 0.0), full_height - 1), 1),
        "color": check_color(color),
    }
    session.hints.append(hint)
    session.selected = len(session.hints) - 1 if select else None
    return hint


def set_hint_color(session: Session, index: int, color: str) -> bool:
    """Recolour hint ``index``; returns whether anything changed."""
    color = check_color(color)
    if not 0 <= index < len(session.hints) or session.hints[index]["color"] == color:
        return False
    session.hints[index]["color"] = color
    return True


def undo_hint(session: Session) -> None:
    """Remove the latest hint; if a hint was selected, the latest one left is."""
    if session.hints:
        session.hints.pop()
    if session.selected is not None:
        session.selected = len(session.hints) - 1 if session.hints else None


def clear_hints(session: Session) -> None:
    """Remove every hint."""
    session.hints.clear()
    session.selected = None


def hints_json(session: Session) -> str:
    """The hints as ``pixcolor colorize --hints`` reads them: a JSON list of
    ``{"x": .., "y": .., "color": "#rrggbb"}`` in the photo's pixel coordinates."""
    return json.dumps(session.hints, indent=1) + "\n"


def save_downloads(colorizer: Colorizer, session: Session, *, saturation: float = 1.0,
                   render_size: int | None = None) -> tuple[Path, Path | None]:  # fmt: skip
    """Colourise the full-resolution photo and write it, and the hints, for download.

    The photo is saved like ``pixcolor colorize`` saves it (:func:`pixcolor.images.save_image`:
    the upload's format, JPEG quality tables, ICC profile and EXIF); a format Pillow cannot
    write becomes PNG.

    Returns:
        The photo's path and the hints JSON's path (``None`` without hints), both in
        ``session.folder``.
    """
    loaded = images.load_image(session.source)
    kwargs: dict[str, Any] = {"render_size": render_size, "saturation": saturation}
    if session.hints:
        kwargs["hints"] = [(h["x"], h["y"], h["color"]) for h in session.hints]
    image = colorizer.colorize(loaded, **kwargs)
    session.folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(session.name).suffix.lower()
    if Image.registered_extensions().get(suffix) not in Image.SAVE:
        suffix = ".png"
    target = session.folder / f"{session.stem}_colorized{suffix}"
    try:
        images.save_image(image, target, like=loaded, overwrite=True)
    except (ValueError, OSError, KeyError) as exc:  # e.g. RGBA into a JPEG-only format
        logger.info("saving %s as PNG instead: %s", target.name, exc)
        target = images.save_image(image, target.with_suffix(".png"), like=loaded, overwrite=True)
    hints_path = None
    if session.hints:
        hints_path = session.folder / f"{session.stem}_hints.json"
        hints_path.write_text(hints_json(session), encoding="utf-8")
    return target, hints_path


def draw_markers(session: Session) -> np.ndarray:
    """The gray preview with a dot at each hint, in the hint's colour (the selected hint
    with a wider ring)."""
    if not session.hints:
        return session.gray
    canvas = Image.fromarray(session.gray)
    draw = ImageDraw.Draw(canvas)
    height, width = session.preview.shape[:2]
    full_height, full_width = session.size
    radius = max(4, round(max(height, width) / 120))
    for index, hint in enumerate(session.hints):
        x = (hint["x"] + 0.5) * width / full_width - 0.5
        y = (hint["y"] + 0.5) * height / full_height - 0.5
        ring = 3 if index == session.selected else 1
        box = (x - radius - ring, y - radius - ring, x + radius + ring, y + radius + ring)
        draw.ellipse(box, fill="black")
        draw.ellipse((x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1), fill="white")
        draw.ellipse((x - radius + 1, y - radius + 1, x + radius - 1, y + radius - 1),
                     fill=hint["color"])  # fmt: skip
    return np.asarray(canvas)


def check_color(color: object) -> str:
    """``"#rrggbb"`` (any case) -> lower-case ``"#rrggbb"``; ``ValueError`` otherwise."""
    if isinstance(color, str):
        color = color.strip()
        match = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,[^)]*)?\)",
                             color)  # fmt: skip
        if match:  # some browsers' colour inputs report rgb(...)
            return rgb_to_hex([round(float(v)) for v in match.groups()])
        if _HEX.fullmatch(color):
            return color.lower()
    raise ValueError(f"a hint colour must be '#rrggbb', got {color!r}")


def rgb_to_hex(rgb: Any) -> str:
    """``(r, g, b)`` 0-255 -> ``"#rrggbb"``."""
    r, g, b = (min(255, max(0, int(v))) for v in rgb[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _preview_hints(session: Session) -> list[tuple[float, float, str]]:
    """The hints in preview coordinates."""
    height, width = session.preview.shape[:2]
    full_height, full_width = session.size
    return [
        ((h["x"] + 0.5) * width / full_width - 0.5, (h["y"] + 0.5) * height / full_height - 0.5,
         h["color"])
        for h in session.hints
    ]  # fmt: skip


def _shrink(pixels: torch.Tensor, side: int) -> torch.Tensor:
    """``(3, H, W)`` planes (uint8 or float) -> ``(3, h, w)`` uint8 with the longest side at
    most ``side``, antialiased."""
    height, width = pixels.shape[-2:]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    planes = pixels[:1] if pixels.stride(0) == 0 else pixels
    if pixels.dtype != torch.uint8:
        planes = planes.float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    if size != (height, width):
        planes = F.interpolate(planes[None], size=size, mode="bilinear", antialias=True,
                               align_corners=False)[0]  # fmt: skip
    return planes.expand(3, -1, -1).contiguous()


def _gray(planes: torch.Tensor) -> torch.Tensor:
    """uint8 ``(3, h, w)`` -> the gray of the same CIE lightness, uint8 ``(3, h, w)``."""
    lightness = lab.rgb_to_l(planes.float().div_(255.0))
    neutral = torch.cat([lightness, lightness.new_zeros((2, *lightness.shape[-2:]))])
    gray = lab.lab_to_rgb(neutral)[:1].mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return gray.expand(3, -1, -1)


def _to_hwc(planes: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(planes.permute(1, 2, 0).numpy())


def _megabytes(size: int) -> str:
    """Bytes as Gradio counts them (1 MB = 2**20 bytes)."""
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.0f} kB"
