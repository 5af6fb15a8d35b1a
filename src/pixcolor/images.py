"""Image I/O: any supported input -> float tensors -> the same kind of output.

:func:`load_image` accepts a path, a PIL image, a numpy array or a torch tensor and returns
a :class:`LoadedImage`: RGB as float32 ``(3, H, W)`` in ``[0, 1]``, alpha if any, and what
is needed to hand the same kind back (:func:`to_output`) or to save a file the way the
source was saved (:func:`save_image`). Every unusable input raises
:class:`~pixcolor.errors.ImageError` (:class:`~pixcolor.errors.ImageNotFoundError` for a
missing path).

Rules:

* Integers are divided by their type's maximum: 8-bit by 255, 16-bit (PIL ``I;16*``, numpy
  ``uint16``) by 65535, so 16-bit sources keep their precision. PIL mode ``I`` (32-bit
  integers) must hold values in ``[0, 65535]``; it is divided by 65535 if its maximum is
  above 255, else by 255 (8-bit data stored as ``I``). Floats (PIL ``F``, numpy, torch)
  must be finite and in ``[0, 1]``: nothing is clipped silently.
* EXIF orientation is applied (:func:`PIL.ImageOps.exif_transpose`), so the output has
  the displayed size; the kept EXIF has its orientation reset to 1.
* Animated images and multi-page files give their first frame (a PIL image: its current
  frame). CMYK, YCbCr, HSV and palette images go through Pillow's ``convert``; Pillow's
  ``LAB`` mode is decoded as L*a*b* directly. Pixel values are read as sRGB; a file's ICC
  profile is not applied but is copied to saved files if it is an RGB profile.
* Files are fully decoded on load, so a truncated file is an error, never a half-gray
  image. Files above Pillow's ``Image.MAX_IMAGE_PIXELS`` (its decompression-bomb guard,
  left as the user set it) are refused.
* Outputs: PIL and path inputs give a PIL ``RGB`` image (``RGBA`` with alpha), 8-bit even
  for 16-bit sources since Pillow has no 16-bit colour mode, and :func:`save_image`
  writes 8-bit colour for the same reason. Numpy gives ``(H, W, 3)`` (``(H, W, 4)`` with
  alpha) of the input's dtype; tensors give ``(3, H, W)`` (``(4, H, W)``) of the input's
  dtype and device. Alpha is carried through unchanged.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, JpegImagePlugin

from pixcolor import lab
from pixcolor._output import OutputWriter, as_float, encode_image, save_image, to_output
from pixcolor._pillow_arrays import pixels_8bit
from pixcolor.errors import ImageError, ImageNotFoundError

__all__ = [
    "ImageInput", "LoadedImage", "OutputWriter", "as_float", "encode_image", "load_image",
    "save_image", "to_output",
]  # fmt: skip

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
"""What :func:`load_image` accepts."""

_ORIENTATION = ExifTags.Base.Orientation
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channel count -> mode name for arrays
_CPU = torch.device("cpu")


@dataclass(eq=False)
class LoadedImage:
    """An input image as float tensors, plus what is needed to give the same kind back.

    Attributes:
        pixels: ``(3, H, W)`` colour planes (on the source tensor's device): uint8 levels for
            8-bit sources (PIL modes ``L``, ``RGB``, ``P``, ``CMYK``, ...; uint8 arrays and
            tensors), float32 in ``[0, 1]`` otherwise. For a gray source it is one plane
            expanded to 3 (read it, do not write into it); 8-bit colour from PIL and numpy
            stays interleaved in memory (a channels-last view of the ``(H, W, 3)`` array);
            it may share memory with the input. :attr:`rgb` gives it as float.
        alpha: ``(1, H, W)`` in ``[0, 1]`` (float64 for float64 sources, else float32), or
            ``None``.
        kind: ``"path"``, ``"pil"``, ``"numpy"`` or ``"tensor"``.
        mode: Source PIL mode (``"I;16"``, ``"P"``, ...); for arrays ``"L"``, ``"RGB"`` or
            ``"RGBA"`` from the channel count.
        dtype: Source numpy or torch dtype (``None`` for PIL and paths).
        bit_depth: Bits per source sample (1, 8, 16, 32 or 64).
        layout: Source array layout: ``"HW"``, ``"HWC"`` (numpy) or ``"CHW"`` (tensor);
            ``"HWC"`` for PIL.
        device: Source tensor's device (CPU otherwise).
        format: File format (``"JPEG"``, ``"PNG"``, ...) for paths and opened PIL images.
        icc_profile: ICC profile bytes, if any.
        exif: EXIF bytes with orientation reset to 1, if any.
        quality: JPEG quality when the file's tables are standard IJG ones, else ``None``.
        jpeg_settings: ``qtables`` and ``subsampling`` of a JPEG source, for
            :func:`save_image` (what Pillow's ``quality="keep"`` reuses).
        path: Source path, for paths.
        n_frames: Frames in the source (only the first, or current, one is used).
    """

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    kind: str
    mode: str
    dtype: np.dtype | torch.dtype | None
    bit_depth: int
    layout: str = "HWC"
    device: torch.device = _CPU
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    quality: int | None = None
    jpeg_settings: dict[str, Any] | None = None
    path: Path | None = None
    n_frames: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])

    @property
    def rgb(self) -> torch.Tensor:
        """float32 ``(3, H, W)`` in ``[0, 1]``: :attr:`pixels`, converted on each access if
        they are 8-bit (a gray source stays one plane expanded to 3)."""
        return as_float(self.pixels)


def load_image(image: ImageInput | LoadedImage) -> LoadedImage:
    """Read any supported input into a :class:`LoadedImage`.

    Args:
        image: A path; a PIL image (any common mode); a numpy array ``(H, W)`` or
            ``(H, W, 1|3|4)`` of uint8, uint16 or float in ``[0, 1]``; or a torch tensor
            ``(H, W)`` or ``(1|3|4, H, W)`` of uint8 or float in ``[0, 1]``. A
            :class:`LoadedImage` is returned as is.

    Returns:
        The image; see the module docstring for the conversion rules.

    Raises:
        ImageNotFoundError: If a path does not exist.
        ImageError: For anything that is not a readable, valid image.

    Example:
        >>> import numpy as np
        >>> img = load_image(np.full((2, 5), 255, np.uint8))
        >>> img.rgb.shape, img.kind, img.mode, img.rgb.max().item()
        (torch.Size([3, 2, 5]), 'numpy', 'L', 1.0)
    """
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        return _load_path(Path(image))
    if isinstance(image, Image.Image):
        with _decoding("the PIL image"):
            return _load_pil(image, "pil")
    if isinstance(image, np.ndarray):
        return _load_numpy(image)
    if isinstance(image, torch.Tensor):
        return _load_tensor(image)
    raise ImageError(
        "an image must be a path, PIL image, numpy array or torch tensor, "
        f"got {type(image).__name__}"
    )


# --- loading -------------------------------------------------------------------------


def _load_path(path: Path) -> LoadedImage:
    if not path.exists():
        raise ImageNotFoundError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise ImageError(f"{str(path)!r} is a directory, not an image file")
    what = f"image file {str(path)!r}"
    if path.stat().st_size == 0:
        raise ImageError(f"{what} is empty (0 bytes)")
    with _decoding(what), Image.open(path) as img:
        return _load_pil(img, "path", path)


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Turn whatever Pillow raises while decoding into :class:`ImageError` (also Pillow's
    decompression-bomb warning, for this block only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (ImageError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{what} is too large to decode safely ({exc}); raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust it"
        ) from exc
    except FileNotFoundError as exc:
        raise ImageNotFoundError(f"{what} does not exist") from exc
    except Exception as exc:
        raise ImageError(f"cannot decode {what}: {type(exc).__name__}: {exc}") from exc


def _load_pil(img: Image.Image, kind: str, path: Path | None = None) -> LoadedImage:
    img.load()  # decode everything now: a truncated file raises here
    meta: dict[str, Any] = {
        "format": img.format,
        "icc_profile": img.info.get("icc_profile"),
        "n_frames": getattr(img, "n_frames", 1),
        "path": path,
    }
    if meta["n_frames"] > 1:
        logger.info("%s has %d frames; using one", path or "image", meta["n_frames"])
    if isinstance(img, JpegImagePlugin.JpegImageFile) and getattr(img, "quantization", None):
        tables = {k: list(v) for k, v in img.quantization.items()}
        meta["jpeg_settings"] = {
            "qtables": tables,
            "subsampling": JpegImagePlugin.get_sampling(img),
        }
        meta["quality"] = _jpeg_quality(tables)
    meta["exif"], orientation = _exif_bytes(img)
    if orientation in range(2, 9):
        img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "LAB":
        rgb, alpha, bits = _lab_pixels(np.asarray(img)), None, 8
    else:
        arr, divisor, bits = _pil_pixels(img)
        rgb, alpha = _to_planes(arr, divisor)
    return LoadedImage(rgb, alpha, kind, mode, None, bits, **meta)


def _exif_bytes(img: Image.Image) -> tuple[bytes | None, int]:
    """EXIF with orientation 1 (``None`` if absent or unreadable), and the orientation.

    The image's own EXIF object is left as it was.
    """
    try:
        exif = img.getexif()
        orientation = exif.get(_ORIENTATION, 1)
        if orientation == 1 or _ORIENTATION not in exif:
            return (exif.tobytes() if len(exif) else None), 1
        exif[_ORIENTATION] = 1
        try:
            return exif.tobytes(), orientation
        finally:
            exif[_ORIENTATION] = orientation
    except Exception as exc:  # a corrupt EXIF block should not make the photo unreadable
        logger.warning("ignoring unreadable EXIF data: %s", exc)
        return None, 1


def _pil_pixels(img: Image.Image) -> tuple[np.ndarray, float, int]:
    """Pixels ``(H, W[, C])``, the divisor that maps them to ``[0, 1]``, and bit depth."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return pixels_8bit(img), 255.0, 8
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(img), 65535.0, 16
    if mode == "I":
        arr = np.asarray(img)
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high > 65535:
            raise ImageError(f"mode 'I' images must hold values in [0, 65535], got [{low}, {high}]")
        return arr, 65535.0 if high > 255 else 255.0, 32
    if mode == "F":
        arr = np.asarray(img)
        _check_range(arr.min(), arr.max(), "mode 'F' image")
        return arr, 1.0, 32
    if mode == "1":
        return np.asarray(img.convert("L")), 255.0, 1
    has_alpha = "A" in mode or "a" in mode or "transparency" in img.info
    if mode == "P" and img.palette is not None and img.palette.mode == "RGBA":
        has_alpha = True
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB")), 255.0, 8


def _lab_pixels(arr: np.ndarray) -> torch.Tensor:
    """Pillow ``LAB``: L scaled to 0-255, a and b stored as signed bytes."""
    lightness = torch.from_numpy(arr[..., 0].astype(np.float32) * np.float32(100 / 255))
    ab = torch.from_numpy(arr[..., 1:].view(np.int8).astype(np.float32)).permute(2, 0, 1)
    return lab.lab_to_rgb(torch.cat([lightness[None], ab]))


def _load_numpy(arr: np.ndarray) -> LoadedImage:
    dtype = arr.dtype
    is_float = dtype.kind == "f"
    if not (is_float or (dtype.kind == "u" and dtype.itemsize in (1, 2))):
        raise ImageError(f"numpy images must be uint8, uint16 or floating point, got dtype {dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4))):
        hint = ""
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
            hint = "; for channels-first data use np.moveaxis(x, 0, -1)"
        raise ImageError(
            f"numpy images must have shape (H, W) or (H, W, C) with C in 1, 3, 4, "
            f"got {arr.shape}{hint}"
        )
    if arr.size == 0:
        raise ImageError(f"the image is empty: shape {arr.shape}")
    if is_float:
        _check_range(arr.min(), arr.max(), f"{dtype} array")
    divisor = 1.0 if is_float else float(np.iinfo(dtype).max)
    rgb, alpha = _to_planes(arr, divisor)
    channels = 1 if arr.ndim == 2 else arr.shape[-1]
    return LoadedImage(
        rgb, alpha, "numpy", _MODES[channels], dtype, 8 * dtype.itemsize,
        layout="HW" if arr.ndim == 2 else "HWC",
    )  # fmt: skip


def _to_planes(arr: np.ndarray, divisor: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(H, W[, C])`` array -> RGB planes ``(3, H, W)`` (uint8 for 8-bit data, else float32)
    and float alpha ``(1, H, W)`` or None."""
    if arr.ndim == 2:
        arr = arr[..., None]
    channels = arr.shape[-1]
    colour = arr[..., :3] if channels >= 3 else arr[..., :1]
    if arr.dtype == np.uint8 and divisor == 255.0:  # kept as levels: see LoadedImage.pixels
        if not (colour.flags.c_contiguous and colour.flags.writeable):
            colour = np.array(colour)  # still interleaved: the one copy decoding needs
        rgb = torch.from_numpy(colour).permute(2, 0, 1)
    else:
        rgb = _float_planes(colour, divisor, np.float32)
    alpha = None
    if channels in (2, 4):
        alpha_dtype = np.float64 if arr.dtype == np.float64 else np.float32
        alpha = _float_planes(arr[..., -1:], divisor, alpha_dtype)
    return (rgb.expand(3, -1, -1) if rgb.shape[0] == 1 else rgb), alpha


def _float_planes(arr: np.ndarray, divisor: float, dtype: type) -> torch.Tensor:
    """``(H, W, C)`` -> ``(C, H, W)`` of ``dtype`` divided by ``divisor`` (no copy if it is
    already a writable float array of ``dtype`` and ``divisor`` is 1)."""
    planes = np.moveaxis(arr, -1, 0)
    if planes.dtype == dtype and divisor == 1.0 and planes.flags.writeable:
        return torch.from_numpy(planes)
    out = np.empty(planes.shape, dtype)
    if divisor == 1.0:
        np.copyto(out, planes, casting="same_kind")
    else:
        np.divide(planes, dtype(divisor), out=out)
    return torch.from_numpy(out)


def _load_tensor(t: torch.Tensor) -> LoadedImage:
    if t.layout != torch.strided:
        raise ImageError(f"tensor images must be dense, got layout {t.layout}; call .to_dense()")
    if t.device.type == "meta":
        raise ImageError("tensor images must hold data, got a tensor on the 'meta' device")
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise ImageError(f"tensor images must be uint8 or floating point, got dtype {t.dtype}")
    if not (t.dim() == 2 or (t.dim() == 3 and t.shape[0] in (1, 3, 4))):
        hint = ""
        if t.dim() == 3 and t.shape[-1] in (1, 3, 4):
            hint = "; for (H, W, C) data use x.permute(2, 0, 1)"
        elif t.dim() == 4:
            hint = "; pass a batch as a list of images, e.g. list(x)"
        raise ImageError(
            "tensor images must have shape (H, W) or (C, H, W) with C in 1, 3, 4, "
            f"got {tuple(t.shape)}{hint}"
        )
    if t.numel() == 0:
        raise ImageError(f"the image is empty: shape {tuple(t.shape)}")
    t = t.detach()
    if t.is_floating_point():
        low, high = torch.aminmax(t)
        _check_range(low.item(), high.item(), f"{t.dtype} tensor")
    planes = t if t.dim() == 3 else t[None]
    rgb = planes[:3] if planes.shape[0] >= 3 else planes[:1]
    if rgb.dtype != torch.uint8:  # 8-bit levels are kept: see LoadedImage.pixels
        rgb = rgb.to(torch.float32)
    alpha = None
    if planes.shape[0] == 4:
        alpha_dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        alpha = _float_tensor(planes[3:], alpha_dtype)
    return LoadedImage(
        rgb.expand(3, -1, -1) if rgb.shape[0] == 1 else rgb, alpha, "tensor",
        _MODES[planes.shape[0]], t.dtype, 8 * t.element_size(),
        layout="HW" if t.dim() == 2 else "CHW", device=t.device,
    )  # fmt: skip


def _float_tensor(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype).div_(255.0) if t.dtype == torch.uint8 else t.to(dtype)


def _check_range(low: Any, high: Any, what: str) -> None:
    """Float data must be finite and within ``[0, 1]``; ``low``/``high`` are its min/max
    (NaN if it holds any NaN)."""
    low, high = float(low), float(high)
    if np.isnan(low) or np.isnan(high):
        raise ImageError(f"the {what} holds NaN; float images must be finite and in [0, 1]")
    if np.isinf(low) or np.isinf(high):
        raise ImageError(f"the {what} holds infinity; float images must be finite and in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise ImageError(
            f"float images must hold values in [0, 1], got a {what} with min {low:g} and max "
            f"{high:g}; rescale it first (e.g. x / 255 for 0-255 floats) or clip it"
        )


_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def _jpeg_quality(tables: dict[int, list[int]]) -> int | None:
    """The libjpeg quality that produced the luminance table, or None if it is not a
    scaled IJG table (other encoders, custom tables)."""
    luma = np.asarray(tables.get(0, ()))
    base = np.asarray(_IJG_LUMA)
    if luma.shape != base.shape:
        return None
    for quality in range(100, 0, -1):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        if np.array_equal(np.clip((base * scale + 50) // 100, 1, 255), luma):
            return quality
    return None
