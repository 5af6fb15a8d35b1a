"""Datasets over folders of colour photos, and the step that turns a batch into (L, ab).

Workers only decode: :class:`PhotoFolder` yields ``(3, size, size)`` uint8 RGB crops, and
:func:`prepare_batch` converts a whole batch to normalised L and ab on the training device
in one call (``pixcolor.lab`` on the GPU, never per-image NumPy in a worker).

Grayscale photos carry no colour to learn from and broken files would crash a run hours
in, so both are found by one fast scan when the dataset is built, skipped and counted.

Example:
    >>> import torch
    >>> rgb = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)   # a batch of white images
    >>> lightness, ab = prepare_batch(rgb)
    >>> lightness.shape, ab.shape, round(lightness.max().item(), 3)
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 2, 32, 32]), 1.0)
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from torchvision.transforms import v2

from pixcolor import lab
from pixcolor.errors import NoImagesError

__all__ = [
    "IMAGE_EXTENSIONS",
    "PhotoFolder",
    "batch_to_rgb",
    "find_images",
    "lab_constants",
    "load_rgb",
    "prepare_batch",
    "scan_photos",
    "split_files",
]

logger = logging.getLogger(__name__)

PathLike: TypeAlias = "str | os.PathLike[str]"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""File name endings (compared case-insensitively) that :func:`find_images` collects."""

_SKIP_REASONS = ("grayscale", "unreadable")
# Modes that hold no colour at all, besides the 16-bit gray "I;16*" ones.
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")
_THUMB_SIDE = 64  # side of the thumbnail the grayscale test looks at
_CROP_MIN_RATIO = 3.0 / 4.0  # RandomResizedCrop's default aspect-ratio range is (3/4, 4/3)


def find_images(root: PathLike, recursive: bool = True) -> list[Path]:
    """List the image files under a folder, sorted.

    Args:
        root: Folder to search.
        recursive: Also search subfolders.

    Returns:
        Sorted paths whose extension (any case) is in :data:`IMAGE_EXTENSIONS`. Files are not
        opened: see :func:`scan_photos` for that.

    Raises:
        FileNotFoundError: If ``root`` does not exist.
        NotADirectoryError: If ``root`` is a file.
        NoImagesError: If ``root`` holds no file with an image extension.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.JPG", "a.png", "notes.txt"):
        ...     _ = (folder / name).write_bytes(b"")
        >>> [p.name for p in find_images(folder)]
        ['a.png', 'b.JPG']
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {str(root)!r} is a file, not a folder")
    candidates = root.rglob("*") if recursive else root.glob("*")
    files = sorted(p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        extensions = ", ".join(IMAGE_EXTENSIONS)
        raise NoImagesError(f"no image file ({extensions}, any case) in {str(root)!r}")
    return files


class PhotoFolder(Dataset):
    """Colour photos from a folder tree (or a list of files) as uint8 RGB crops.

    At construction every file is opened once, cheaply (a JPEG is decoded at 1/8 scale): a
    grayscale photo (mode ``L``/``LA``/``I``/``F``/``1``, or RGB whose chroma is nil: every
    pixel of a 64-px thumbnail has ``|R - G|`` and ``|G - B|`` at most ``gray_threshold``)
    and a file that cannot be decoded (zero bytes, not an image, truncated) are skipped,
    listed in :attr:`skipped` and reported in one warning.

    Decoding (in DataLoader workers) applies the EXIF orientation and converts any mode
    to RGB; transparent pixels are composited on white (see :func:`load_rgb`). A file that
    becomes unreadable after the scan does not stop a run: the next readable file in order
    takes its place, deterministically, and it is added to ``skipped["unreadable"]`` of the
    process that read it (a worker's copy, in a DataLoader with workers) with a warning.

    Args:
        root: A folder (searched recursively, see :func:`find_images`), or a sequence of
            image files taken in the given order.
        size: Side of the square output.
        train: ``True``: ``RandomResizedCrop(size, scale)`` then a random horizontal flip.
            ``False``: resize the shorter side to ``size``, then a centre crop.
        scale: Range of the crop's area, as a fraction of the photo, when ``train``.
        recursive: Search subfolders of ``root``.
        gray_threshold: Largest chroma (8-bit levels) of a photo still taken as grayscale.

    Attributes:
        files: The usable photos, in order: ``dataset[i]`` comes from ``files[i]``.
        skipped: ``{"grayscale": [...], "unreadable": [...]}``, the files left out.

    Raises:
        NoImagesError: If no usable photo is left.
        ValueError: If ``size`` or ``scale`` is out of range.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (80, 60), (200, 120, 40)).save(folder / "orange.jpg")
        >>> Image.new("L", (80, 60), 90).save(folder / "gray.jpg")
        >>> data = PhotoFolder(folder, size=32, train=False)
        >>> data[0].shape, data[0].dtype, [p.name for p in data.skipped["grayscale"]]
        (torch.Size([3, 32, 32]), torch.uint8, ['gray.jpg'])
    """

    def __init__(
        self,
        root: PathLike | Sequence[PathLike],
        size: int = 256,
        train: bool = True,
        *,
        scale: tuple[float, float] = (0.5, 1.0),
        recursive: bool = True,
        gray_threshold: int = 2,
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        low, high = scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < scale[0] <= scale[1] <= 1, got {scale!r}")
        if isinstance(root, (str, os.PathLike)):
            self.root: Path | None = Path(root)
            candidates = find_images(root, recursive=recursive)
        else:
            self.root = None
            candidates = [Path(p) for p in root]
        self.size = size
        self.train = train
        self.scale = (float(low), float(high))
        self.files, self.skipped = scan_photos(candidates, gray_threshold=gray_threshold)
        where = str(self.root) if self.root is not None else f"a list of {len(candidates)} files"
        counts = ", ".join(f"{len(v)} {k}" for k, v in self.skipped.items())
        if not self.files:
            raise NoImagesError(f"no usable colour photo in {where}: {counts}")
        if any(self.skipped.values()):
            logger.warning(
                "skipped %d of %d files in %s (%s); see .skipped",
                len(candidates) - len(self.files), len(candidates), where, counts,
            )  # fmt: skip
        self._failed: set[Path] = set()
        self.transform = self._build_transform()
        # A crop is at least sqrt(scale[0] * 3/4) of the shorter side: decode that big.
        shrink = math.sqrt(self.scale[0] * _CROP_MIN_RATIO) if train else 1.0
        self._min_side = math.ceil(size / shrink)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Return photo ``index`` as a ``(3, size, size)`` uint8 RGB tensor."""
        count = len(self.files)
        if not -count <= index < count:
            raise IndexError(f"index {index} out of range for {count} photos")
        for offset in range(count):
            path = self.files[(index + offset) % count]
            if path in self._failed:
                continue
            try:
                image = load_rgb(path, min_side=self._min_side)
            except Exception as err:  # any decoder error: never crash a training run
                self._failed.add(path)
                self.skipped["unreadable"].append(path)
                logger.warning("cannot read %s any more (%s); using the next photo", path, err)
                continue
            rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
            return self.transform(rgb)
        raise NoImagesError(f"none of the {count} photos can be read any more")

    def __repr__(self) -> str:
        skipped = ", ".join(f"{k}={len(v)}" for k, v in self.skipped.items())
        return f"PhotoFolder(n={len(self)}, size={self.size}, train={self.train}, {skipped})"

    def _build_transform(self) -> v2.Transform:
        if self.train:
            crop = v2.RandomResizedCrop(self.size, scale=self.scale, antialias=True)
            return v2.Compose([crop, v2.RandomHorizontalFlip()])
        return v2.Compose([v2.Resize(self.size, antialias=True), v2.CenterCrop(self.size)])


def scan_photos(
    files: Sequence[PathLike], *, gray_threshold: int = 2
) -> tuple[list[Path], dict[str, list[Path]]]:
    """Sort files into usable colour photos and skipped ones, opening each cheaply.

    Args:
        files: Image files.
        gray_threshold: Largest chroma (8-bit levels) of a photo still taken as grayscale,
            measured on a 64-px thumbnail as ``max(|R - G|, |G - B|)``.

    Returns:
        ``(usable, skipped)``: the usable files in their given order, and
        ``{"grayscale": [...], "unreadable": [...]}``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / "red.png")
        >>> Image.new("L", (8, 8), 128).save(folder / "gray.png")
        >>> _ = (folder / "empty.jpg").write_bytes(b"")
        >>> usable, skipped = scan_photos(sorted(folder.iterdir()))
        >>> [p.name for p in usable], {k: [p.name for p in v] for k, v in skipped.items()}
        (['red.png'], {'grayscale': ['gray.png'], 'unreadable': ['empty.jpg']})
    """
    usable: list[Path] = []
    skipped: dict[str, list[Path]] = {reason: [] for reason in _SKIP_REASONS}
    for path in map(Path, files):
        reason = _probe(path, gray_threshold)
        (usable if reason is None else skipped[reason]).append(path)
    return usable, skipped


def load_rgb(path: PathLike, *, min_side: int | None = None) -> Image.Image:
    """Decode a photo as an 8-bit RGB PIL image, upright.

    The EXIF orientation is applied. Any mode is converted to RGB; transparent pixels are
    composited on white (a transparent PNG shows on a white page, not a black one).

    Args:
        path: Image file.
        min_side: If given, a JPEG may be decoded at a reduced scale (1/2, 1/4 or 1/8, in the
            DCT: fast and antialiased) as long as its shorter side stays ``>= min_side``.

    Returns:
        A loaded PIL image in mode ``"RGB"``.

    Raises:
        OSError: If the file cannot be opened or decoded (PIL's errors pass through).

    Example:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "half_transparent.png"
        >>> Image.new("RGBA", (2, 2), (255, 0, 0, 128)).save(file)
        >>> load_rgb(file).getpixel((0, 0))
        (255, 127, 127)
    """
    with Image.open(path) as image:
        if min_side is not None:
            shrink = min_side / max(1, min(image.size))
            if shrink < 1.0:
                width, height = image.size
                image.draft("RGB", (math.ceil(width * shrink), math.ceil(height * shrink)))
        upright = ImageOps.exif_transpose(image)  # a new, loaded image
    return _to_rgb(upright)


def prepare_batch(
    rgb_uint8: torch.Tensor,
    *,
    l_center: float = 50.0,
    l_scale: float = 50.0,
    ab_scale: float = 110.0,
    device: torch.device | str | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a batch of uint8 RGB images into the generator's normalised input and target.

    The batch is moved to ``device`` first (``non_blocking``: pin the DataLoader's memory)
    and converted there with :func:`pixcolor.lab.rgb_to_lab`. Take the constants from the
    model with :func:`lab_constants`: ``prepare_batch(x, **lab_constants(generator))``.

    Args:
        rgb_uint8: ``(B, 3, H, W)`` uint8 RGB, as :class:`PhotoFolder` batches are.
        l_center: ``L`` is returned as ``(L - l_center) / l_scale``.
        l_scale: See ``l_center``.
        ab_scale: ``ab`` is returned as ``ab / ab_scale``.
        device: Where to convert and return the tensors; ``None`` keeps the input's device.
        channels_last: Return both tensors in ``torch.channels_last`` memory format.

    Returns:
        ``(lightness, ab)``: float32 ``(B, 1, H, W)`` and ``(B, 2, H, W)``.

    Raises:
        TypeError: If ``rgb_uint8`` is not a uint8 tensor.
        ValueError: If its shape is not ``(B, 3, H, W)``.
    """
    if not isinstance(rgb_uint8, torch.Tensor) or rgb_uint8.dtype != torch.uint8:
        got = rgb_uint8.dtype if isinstance(rgb_uint8, torch.Tensor) else type(rgb_uint8).__name__
        raise TypeError(f"rgb_uint8 must be a torch.uint8 tensor, got {got}")
    if rgb_uint8.dim() != 4 or rgb_uint8.shape[1] != 3:
        raise ValueError(f"rgb_uint8 must have shape (B, 3, H, W), got {tuple(rgb_uint8.shape)}")
    rgb = rgb_uint8.to(device=device, non_blocking=True).float().div_(255.0)
    lab_image = lab.rgb_to_lab(rgb)
    lightness = lab.normalize_l(lab_image[:, :1], l_center, l_scale)
    ab = lab.normalize_ab(lab_image[:, 1:], ab_scale)
    if channels_last:
        lightness = lightness.contiguous(memory_format=torch.channels_last)
        ab = ab.contiguous(memory_format=torch.channels_last)
    return lightness, ab


def batch_to_rgb(
    lightness: torch.Tensor,
    ab: torch.Tensor,
    *,
    l_center: float = 50.0,
    l_scale: float = 50.0,
    ab_scale: float = 110.0,
) -> torch.Tensor:
    """The inverse of :func:`prepare_batch`: normalised ``lightness`` and ``ab`` (a target
    or a generator's prediction) back to sRGB, float ``(B, 3, H, W)`` in ``[0, 1]``.

    Args:
        lightness: ``(B, 1, H, W)``, ``(L - l_center) / l_scale``.
        ab: ``(B, 2, H, W)``, ``ab / ab_scale``; computed in float32 whatever its dtype.
        l_center: See :func:`prepare_batch`; take the constants from the model with
            :func:`lab_constants`.
        l_scale: See ``l_center``.
        ab_scale: See ``l_center``.

    Example:
        >>> rgb = torch.tensor([[[[200]], [[120]], [[40]]]], dtype=torch.uint8)
        >>> back = batch_to_rgb(*prepare_batch(rgb))
        >>> (back * 255).round().flatten().tolist()
        [200.0, 120.0, 40.0]
    """
    light = lab.denormalize_l(lightness.float(), l_center, l_scale)
    return lab.lab_to_rgb(torch.cat([light, lab.denormalize_ab(ab.float(), ab_scale)], 1))


def lab_constants(config: Any) -> dict[str, float]:
    """The L/ab normalisation constants of a model, as keyword arguments of :func:`prepare_batch`.

    Args:
        config: A :class:`pixcolor.UNetConfig`, or a model with a ``.config`` holding one.

    Returns:
        ``{"l_center": ..., "l_scale": ..., "ab_scale": ...}``.

    Raises:
        TypeError: If ``config`` has no such constants.

    Example:
        >>> from pixcolor import UNetConfig
        >>> lab_constants(UNetConfig())
        {'l_center': 50.0, 'l_scale': 50.0, 'ab_scale': 110.0}
    """
    cfg = getattr(config, "config", config)
    names = ("l_center", "l_scale", "ab_scale")
    if not all(hasattr(cfg, name) for name in names):
        raise TypeError(
            f"config must be a UNetConfig or a model with one, got {type(config).__name__}"
        )
    return {name: float(getattr(cfg, name)) for name in names}


def split_files(
    files: Sequence[PathLike],
    val_fraction: float = 0.1,
    seed: int = 0,
    *,
    root: PathLike | None = None,
) -> tuple[list[Path], list[Path]]:
    """Split files into train and validation, deterministically and stably.

    Each file goes to validation when a hash of ``(seed, key)`` falls below
    ``val_fraction``, independently of the other files: adding or removing files never
    moves another one. The key is the path relative to ``root`` when given, else the file
    name alone (so the split survives moving the folder; files sharing a name in different
    subfolders land on the same side). If ``val_fraction > 0`` and there are at least two
    files, neither side is left empty (the file whose hash is nearest moves over).

    Args:
        files: The files to split.
        val_fraction: Expected fraction of files in validation, in ``[0, 1)``.
        seed: Another seed gives another split.
        root: Folder the keys are taken relative to.

    Returns:
        ``(train, val)``, each in the order of ``files``.

    Raises:
        ValueError: If ``val_fraction`` is outside ``[0, 1)`` or a file is not under ``root``.

    Example:
        >>> train, val = split_files([f"{i}.jpg" for i in range(100)], val_fraction=0.2)
        >>> len(train), len(val)
        (85, 15)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    paths = [Path(f) for f in files]
    keys = [_split_key(p, root) for p in paths]
    draws = [_uniform_hash(f"{seed}:{key}") for key in keys]
    is_val = [draw < val_fraction for draw in draws]
    if val_fraction > 0 and len(paths) >= 2:
        if not any(is_val):
            is_val[min(range(len(paths)), key=draws.__getitem__)] = True
        elif all(is_val):
            is_val[max(range(len(paths)), key=draws.__getitem__)] = False
    train = [p for p, v in zip(paths, is_val, strict=True) if not v]
    val = [p for p, v in zip(paths, is_val, strict=True) if v]
    return train, val


def _probe(path: Path, gray_threshold: int) -> str | None:
    """``None`` for a usable colour photo, else the reason to skip it."""
    try:
        with Image.open(path) as image:
            if image.mode in _GRAY_MODES or image.mode.startswith("I;"):
                return "grayscale"
            image.draft("RGB", (_THUMB_SIDE, _THUMB_SIDE))  # JPEG: decode at up to 1/8 scale
            image.thumbnail((_THUMB_SIDE, _THUMB_SIDE))  # decodes the whole stream
            thumb = np.asarray(_to_rgb(image), dtype=np.int16)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
        logger.debug("cannot decode %s: %r", path, err)
        return "unreadable"
    chroma = max(
        np.abs(thumb[..., 0] - thumb[..., 1]).max(), np.abs(thumb[..., 1] - thumb[..., 2]).max()
    )
    return "grayscale" if chroma <= gray_threshold else None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency on white."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _split_key(path: Path, root: PathLike | None) -> str:
    if root is None:
        return path.name
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        raise ValueError(f"file {str(path)!r} is not under root {str(root)!r}") from None


def _uniform_hash(text: str) -> float:
    """A number in ``[0, 1)`` from a stable hash of ``text`` (same on every machine)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
