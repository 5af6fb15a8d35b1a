"""User colour hints: a few points (or painted strokes) that say which colour goes where.

A :class:`Hint` is a point ``(x, y)`` in the input image's pixel coordinates (x to the right,
y down, floats allowed, ``0 <= x < width``, ``0 <= y < height``), a colour and a radius.
Only the colour's chroma is used (the a/b of its CIE Lab): the lightness of the output
always comes from the photo. A darker or lighter shade of a colour has other a/b (a darker
green, less chroma), so a hint's colour should be as saturated as the result should look.

What :meth:`pixcolor.Colorizer.colorize` accepts as ``hints`` for one image: a sequence of
:class:`Hint`, of plain ``(x, y, color)`` tuples (``(x, y, color, radius)`` too) or of
``{"x": .., "y": .., "color": .., "radius": ..}`` dicts; and as ``hint_image``, an RGBA
image of the input's size whose opaque pixels (alpha at least half) are painted hints:
each such pixel is a hint of its own colour. :func:`load_hints` reads them from JSON.

The network sees hints as planes at its render size (:func:`hint_planes`); model-free
spreading sees them on its working grid (:func:`rasterize`). Either way each hint covers
at least the grid cell that holds it, so a hint is never lost however small the grid.

Example:
    >>> hints = parse_hints([Hint(10, 5, "#ff0000"), (3.5, 2, (0, 0, 255))])
    >>> [round(v, 1) for v in hints[0].ab], hints[1].rgb
    ([80.1, 67.2], (0, 0, 255))
    >>> planes = hint_planes(hints, image_size=(20, 40), render_size=8, ab_scale=110.0)
    >>> planes.shape, int(planes[0, 2].sum())
    (torch.Size([1, 3, 8, 8]), 2)
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixcolor import images, lab
from pixcolor.errors import ImageError

__all__ = [
    "Hint",
    "HintLike",
    "HintSet",
    "hint_planes",
    "load_hints",
    "parse_hints",
    "rasterize",
]

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_OPAQUE = 0.5  # alpha from which a pixel of a hint image is a hint


@dataclass(frozen=True)
class Hint:
    """One colour hint.

    Args:
        x: Column in input pixels, ``0 <= x < width`` (floats allowed).
        y: Row in input pixels, ``0 <= y < height``.
        color: ``(r, g, b)`` integers in ``0..255``, or ``"#rrggbb"``. Only its chroma is
            used; lightness comes from the photo.
        radius: Radius in input pixels of the disc the hint colours (``>= 0``). Whatever
            it is, the hint covers at least one pixel of the grid the colour is computed
            on (the network's render size, or the spreading's working grid).

    Raises:
        ValueError: If a coordinate or the radius is not a finite number (radius ``>= 0``),
            or the colour is malformed.

    Example:
        >>> Hint(120, 80.5, "#2E8B57").rgb
        (46, 139, 87)
    """

    x: float
    y: float
    color: tuple[int, int, int] | str
    radius: float = 0.0
    rgb: tuple[int, int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("x", "y", "radius"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"hint {name} must be a finite number, got {value!r}")
        if self.radius < 0:
            raise ValueError(f"hint radius must be >= 0, got {self.radius!r}")
        object.__setattr__(self, "rgb", _parse_color(self.color))

    @property
    def ab(self) -> tuple[float, float]:
        """The colour's CIE Lab ``(a, b)``."""
        ab = _rgb_to_ab(np.array([self.rgb], dtype=np.uint8))[0]
        return float(ab[0]), float(ab[1])


HintLike = Hint | Sequence[Any] | Mapping[str, Any]
"""A :class:`Hint`, an ``(x, y, color)`` or ``(x, y, color, radius)`` tuple, or a dict with
keys ``x``, ``y``, ``color`` and optionally ``radius``."""


def parse_hints(hints: Sequence[HintLike] | None) -> list[Hint]:
    """Turn what a user gives into :class:`Hint` objects (no image needed yet).

    Args:
        hints: A sequence of :data:`HintLike`, or ``None`` (no hints).

    Returns:
        The hints.

    Raises:
        ValueError: For anything malformed; the message starts with the hint's index,
            ``hints[2]: ...``.

    Example:
        >>> parse_hints([(1, 2, "#00ff00", 3)])
        [Hint(x=1, y=2, color='#00ff00', radius=3)]
    """
    if hints is None:
        return []
    if isinstance(hints, (str, bytes, Mapping, Hint)) or not isinstance(hints, Sequence):
        raise ValueError(
            "hints must be a list (sequence) of hints: Hint, (x, y, color) tuples or dicts, "
            f"got {type(hints).__name__}{_ONE_LIST_PER_IMAGE}"
        )
    if _one_hint_tuple(hints):
        raise ValueError(
            f"hints must be a list (sequence) of hints, got the single hint {hints!r}: "
            f"write [{hints!r}]{_ONE_LIST_PER_IMAGE}"
        )
    return [_parse_one(item, f"hints[{i}]") for i, item in enumerate(hints)]


def load_hints(path: str | os.PathLike[str]) -> list[Hint] | dict[str, list[Hint]]:
    """Read hints from a JSON file.

    The file holds either a list for one image,
    ``[{"x": 120, "y": 80, "color": "#2e8b57", "radius": 4}, ...]`` (``radius`` optional),
    or an object mapping image file names to such lists, for several images.

    Args:
        path: The JSON file.

    Returns:
        A list of hints, or a dict from file name to list.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is a folder, or not valid JSON of that shape (the message names
            the file and the entry).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"hints file {str(path)!r} is a folder, not a JSON file of hints")
    if not path.is_file():
        raise FileNotFoundError(f"hints file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"hints file {str(path)!r} is not valid JSON: {exc}") from exc
    try:
        if isinstance(data, list):
            return parse_hints(data)
        if isinstance(data, dict):
            out = {}
            for name, entries in data.items():
                if not isinstance(entries, list):
                    raise ValueError(f"{name!r} must map to a list of hints, got {entries!r}")
                out[name] = [_parse_one(e, f"{name!r}[{i}]") for i, e in enumerate(entries)]
            return out
    except ValueError as exc:
        raise ValueError(f"hints file {str(path)!r}: {exc}") from exc
    raise ValueError(
        f"hints file {str(path)!r} must hold a list of hints or an object mapping file "
        f"names to lists, got {type(data).__name__}"
    )


@dataclass
class HintSet:
    """The hints of one image, checked against its size and ready to be rasterised.

    Attributes:
        size: ``(H, W)`` of the image.
        points: ``(N, 3)`` float64 ``x, y, radius`` of the point hints.
        ab: ``(N, 2)`` float64 Lab ``a, b`` of the point hints.
        stroke_pixels: ``(M, 2)`` int64 ``row, col`` of the opaque pixels of a hint image.
        stroke_ab: ``(M, 2)`` float64 Lab ``a, b`` of those pixels.
    """

    size: tuple[int, int]
    points: np.ndarray
    ab: np.ndarray
    stroke_pixels: np.ndarray
    stroke_ab: np.ndarray

    @classmethod
    def build(
        cls,
        size: tuple[int, int],
        hints: Sequence[HintLike] | None = None,
        hint_image: Any = None,
        label: str = "",
    ) -> HintSet:
        """Check ``hints`` and ``hint_image`` against an image of ``size`` ``(H, W)``.

        Raises:
            ValueError: If a hint lies outside the image, is malformed, or the hint image
                has no alpha channel or another size (``label`` prefixes the message).
        """
        height, width = size
        parsed = hints if _all_hints(hints) else parse_hints(hints)  # type: ignore[arg-type]
        for i, hint in enumerate(parsed):
            if not (0 <= hint.x < width and 0 <= hint.y < height):
                raise ValueError(
                    f"{label}hints[{i}]: ({hint.x!r}, {hint.y!r}) is outside the "
                    f"{width}x{height} image: x must be in [0, {width}) and y in [0, {height})"
                )
        points = np.array([(h.x, h.y, h.radius) for h in parsed], np.float64).reshape(-1, 3)
        ab = _rgb_to_ab(np.array([h.rgb for h in parsed], np.uint8).reshape(-1, 3))
        pixels, stroke_ab = _stroke_pixels(hint_image, size, label)
        return cls(tuple(size), points, ab, pixels, stroke_ab)  # type: ignore[arg-type]

    def __len__(self) -> int:
        """Number of point hints plus painted pixels."""
        return len(self.points) + len(self.stroke_pixels)


def rasterize(hints: HintSet, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hints on a grid of ``(h, w)`` cells covering the whole image.

    A point hint covers the cell holding ``(x, y)`` and every cell whose centre lies within
    its radius; a painted pixel covers the cells it overlaps (at least one). A cell covered
    by several hints gets their mean a/b.

    Args:
        hints: The image's hints.
        grid: ``(h, w)``; the image is stretched to it (as to the network's square).

    Returns:
        ``(ab, mask)``: float32 ``(2, h, w)`` Lab a/b (0 where no hint) and bool ``(h, w)``.

    Example:
        >>> hints = HintSet.build((10, 10), [(9.9, 0, "#0000ff", 0)])
        >>> ab, mask = rasterize(hints, (2, 2))
        >>> mask.tolist(), [round(v) for v in ab[:, 0, 1].tolist()]
        ([[False, True], [False, False]], [79, -108])
    """
    height, width = hints.size
    gh, gw = grid
    cells: list[np.ndarray] = []
    values: list[np.ndarray] = []
    sy, sx = gh / height, gw / width
    for (x, y, radius), ab in zip(hints.points, hints.ab, strict=True):
        row, col = min(gh - 1, int(y * sy)), min(gw - 1, int(x * sx))
        rows = np.arange(max(0, int((y - radius) * sy) - 1), min(gh, int((y + radius) * sy) + 2))
        cols = np.arange(max(0, int((x - radius) * sx) - 1), min(gw, int((x + radius) * sx) + 2))
        dy = ((rows + 0.5) / sy - y)[:, None]
        dx = ((cols + 0.5) / sx - x)[None, :]
        inside = dy * dy + dx * dx <= radius * radius
        inside[np.searchsorted(rows, row), np.searchsorted(cols, col)] = True
        r, c = np.nonzero(inside)
        cells.append(rows[r] * gw + cols[c])
        values.append(np.broadcast_to(ab, (len(r), 2)))
    if len(hints.stroke_pixels):
        found, ab = _stroke_cells(hints, gh, gw)
        cells.append(found)
        values.append(ab)
    total = np.zeros((2, gh * gw))
    count = np.zeros(gh * gw)
    if cells:
        flat = np.concatenate(cells)
        vals = np.concatenate(values)
        count = np.bincount(flat, minlength=gh * gw).astype(np.float64)
        for channel in range(2):
            total[channel] = np.bincount(flat, weights=vals[:, channel], minlength=gh * gw)
    mask = count > 0
    mean = np.where(mask, total / np.maximum(count, 1.0), 0.0)
    return (
        torch.from_numpy(mean.reshape(2, gh, gw).astype(np.float32)),
        torch.from_numpy(mask.reshape(gh, gw)),
    )


def hint_planes(
    hints: HintSet | Sequence[HintLike] | None,
    image_size: tuple[int, int],
    render_size: int,
    ab_scale: float = 110.0,
    hint_image: Any = None,
) -> torch.Tensor:
    """The planes a hint model (``UNetConfig.hint_channels = 3``) takes beside L.

    Args:
        hints: A :class:`HintSet`, or hints as :func:`parse_hints` accepts them.
        image_size: ``(H, W)`` of the input image.
        render_size: Side of the network's square.
        ab_scale: The model's ``config.ab_scale``.
        hint_image: Optional RGBA image of painted hints (ignored for a :class:`HintSet`).

    Returns:
        float32 ``(1, 3, r, r)``: ``a / ab_scale``, ``b / ab_scale`` and the mask (1 where
        a hint is); all 0 where there is none.

    Raises:
        ValueError: As :meth:`HintSet.build`.
    """
    if not isinstance(hints, HintSet):
        hints = HintSet.build(image_size, hints, hint_image)
    ab, mask = rasterize(hints, (render_size, render_size))
    return torch.cat([lab.normalize_ab(ab, ab_scale), mask[None].float()])[None]


# --- what the Colorizer calls -----------------------------------------------------------


@dataclass
class HintRequest:
    """The hints given for one input, parsed but not yet checked against its size."""

    hints: list[Hint]
    hint_image: Any
    label: str


def hint_requests(
    count: int, single: bool, hints: Any, hint_image: Any
) -> list[HintRequest | None] | None:
    """Parse :meth:`~pixcolor.Colorizer.colorize`'s ``hints`` and ``hint_image`` for
    ``count`` inputs (one, given alone, when ``single``): one request per input, ``None``
    where it has none; ``None`` when no input has any.

    Raises:
        ValueError: If a hint is malformed, or the lists do not have one entry per input.
    """
    if hints is None and hint_image is None:
        return None
    if single:
        return [HintRequest(parse_hints(hints), hint_image, "")]
    per_hints = _per_input(hints, count, "hints")
    per_image = _per_input(hint_image, count, "hint_image")
    requests: list[HintRequest | None] = []
    for index, (these, image) in enumerate(zip(per_hints, per_image, strict=True)):
        if these is None and image is None:
            requests.append(None)
            continue
        try:
            parsed = parse_hints(these)
        except ValueError as exc:
            raise ValueError(f"inputs[{index}]: {exc}") from None
        requests.append(HintRequest(parsed, image, f"inputs[{index}]: "))
    return requests if any(r is not None for r in requests) else None


def bind_hints(
    requests: list[HintRequest | None] | None, chunk: Sequence[Any]
) -> list[HintSet] | None:
    """Check each request against its loaded image (``.size``): one :class:`HintSet` per
    image (empty where none); ``None`` when none has hints.

    Raises:
        ValueError: As :meth:`HintSet.build`.
    """
    if not requests or all(r is None for r in requests):
        return None
    return [
        HintSet.build(item.size)
        if request is None
        else HintSet.build(item.size, request.hints, request.hint_image, request.label)
        for request, item in zip(requests, chunk, strict=True)
    ]


def hint_planes_batch(
    hint_sets: Sequence[HintSet], render_size: int, ab_scale: float
) -> torch.Tensor:
    """:func:`hint_planes` of several images: ``(B, 3, r, r)``."""
    return torch.cat([hint_planes(h, h.size, render_size, ab_scale) for h in hint_sets])


# --- helpers ---------------------------------------------------------------------------


def _parse_one(item: Any, where: str) -> Hint:
    try:
        if isinstance(item, Hint):
            return item
        if isinstance(item, Mapping):
            unknown = sorted(map(str, set(item) - {"x", "y", "color", "radius"}))
            missing = [key for key in ("x", "y", "color") if key not in item]
            if unknown:
                raise ValueError(
                    f"a hint dict has the unknown key(s) {', '.join(map(repr, unknown))}; "
                    "its keys are x, y, color and optionally radius"
                )
            if missing:
                raise ValueError(
                    "a hint dict needs keys x, y, color (and optionally radius); missing: "
                    f"{', '.join(map(repr, missing))}"
                )
            return Hint(**item)
        if (
            isinstance(item, Sequence)
            and not isinstance(item, (str, bytes))
            and len(item) in (3, 4)
        ):
            return Hint(*item)
        raise ValueError(
            f"a hint must be a Hint, an (x, y, color[, radius]) tuple or a dict, got {item!r}"
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _parse_color(color: Any) -> tuple[int, int, int]:
    if isinstance(color, str):
        if not _HEX.fullmatch(color):
            raise ValueError(f"colour {color!r} is not '#rrggbb' or an (r, g, b) tuple")
        return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    if (
        isinstance(color, (Sequence, np.ndarray))
        and len(color) == 3
        and all(_is_int(c) and 0 <= c <= 255 for c in color)
    ):
        return int(color[0]), int(color[1]), int(color[2])
    raise ValueError(
        f"colour {color!r} is not '#rrggbb' or an (r, g, b) tuple of integers in 0..255"
    )


def _rgb_to_ab(rgb: np.ndarray) -> np.ndarray:
    """``(N, 3)`` uint8 -> ``(N, 2)`` float64 Lab a/b."""
    if len(rgb) == 0:
        return np.zeros((0, 2))
    planes = torch.from_numpy(rgb.astype(np.float64) / 255.0).T[:, :, None]  # (3, N, 1)
    return lab.rgb_to_lab(planes)[1:, :, 0].T.numpy()


def _stroke_pixels(
    hint_image: Any, size: tuple[int, int], label: str
) -> tuple[np.ndarray, np.ndarray]:
    """Opaque pixels ``(M, 2)`` and their a/b ``(M, 2)`` of an RGBA hint image."""
    if hint_image is None:
        return np.zeros((0, 2), np.int64), np.zeros((0, 2))
    try:
        loaded = images.load_image(hint_image)
    except ImageError as exc:
        raise ValueError(f"{label}hint_image: {exc}") from exc
    if loaded.alpha is None:
        raise ValueError(
            f"{label}hint_image must have an alpha channel (RGBA: its opaque pixels are the "
            f"hints), got mode {loaded.mode!r}"
        )
    if loaded.size != tuple(size):
        raise ValueError(
            f"{label}hint_image is {loaded.size[1]}x{loaded.size[0]} but the image is "
            f"{size[1]}x{size[0]} (width x height): they must be the same size"
        )
    opaque = (loaded.alpha[0] >= _OPAQUE).cpu()
    pixels = opaque.nonzero().numpy()
    rgb = loaded.pixels.cpu()[:, opaque]
    if rgb.dtype != torch.uint8:
        rgb = (rgb.float() * 255.0).round_()
    rgb = rgb.T.numpy().astype(np.uint8)
    # Strokes use few colours: convert each distinct one once.
    packed = (rgb[:, 0].astype(np.int64) << 16) | (rgb[:, 1].astype(np.int64) << 8) | rgb[:, 2]
    unique, inverse = np.unique(packed, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], 1)
    return pixels.astype(np.int64), _rgb_to_ab(colours.astype(np.uint8))[inverse.ravel()]


def _stroke_cells(hints: HintSet, gh: int, gw: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell indices and a/b of every (painted pixel, cell it overlaps) pair."""
    height, width = hints.size
    rows, cols = hints.stroke_pixels[:, 0], hints.stroke_pixels[:, 1]
    first_r, first_c = rows * gh // height, cols * gw // width
    last_r = np.maximum(first_r, -(-(rows + 1) * gh // height) - 1)
    last_c = np.maximum(first_c, -(-(cols + 1) * gw // width) - 1)
    cells, values = [], []
    for dr in range(int((last_r - first_r).max()) + 1):
        for dc in range(int((last_c - first_c).max()) + 1):
            keep = (first_r + dr <= last_r) & (first_c + dc <= last_c)
            cells.append((first_r[keep] + dr) * gw + first_c[keep] + dc)
            values.append(hints.stroke_ab[keep])
    return np.concatenate(cells), np.concatenate(values)


_ONE_LIST_PER_IMAGE = "; for a list of images, a list with one list of hints per image"


def _one_hint_tuple(hints: Sequence[Any]) -> bool:
    """``(x, y, color[, radius])`` given where a list of hints belongs."""
    return len(hints) in (3, 4) and _is_real(hints[0]) and _is_real(hints[1])


def _per_input(value: Any, count: int, name: str) -> list[Any]:
    if value is None:
        return [None] * count
    if name == "hints" and isinstance(value, (list, tuple)) and value:
        if isinstance(value, tuple) and _one_hint_tuple(value):
            got = f"the single hint {value!r}"
        elif all(isinstance(v, (Hint, Mapping)) or _one_hint(v) for v in value):
            got = "one list of hints"
        else:
            got = ""
        if got:
            raise ValueError(
                f"for a list of {count} images, hints must be a list with one list of hints "
                f"per image (None for none), got {got}: e.g. hints=[[...], None, ...]"
            )
    if not isinstance(value, (list, tuple)) or len(value) != count:
        got = f"{len(value)} entries" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(
            f"for a list of {count} images, {name} must be a list with one entry per image "
            f"(None for none), got {got}"
        )
    return list(value)


def _one_hint(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and _one_hint_tuple(value)


def _all_hints(hints: Any) -> bool:
    return isinstance(hints, list) and all(isinstance(h, Hint) for h in hints)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
