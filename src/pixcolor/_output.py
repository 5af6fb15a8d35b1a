"""The output side of :mod:`pixcolor.images`: float or 8-bit RGB back to the kind, dtype and
layout of the source (:func:`to_output`, :class:`OutputWriter`), and saving a file the way
the source was saved (:func:`save_image`, or :func:`encode_image` for object stores). Import
these from :mod:`pixcolor.images`."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from pixcolor._atomic import temporary_file

if TYPE_CHECKING:
    from pixcolor.images import LoadedImage

_METADATA_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF")  # formats Pillow writes ICC/EXIF to
_DEFAULT_JPEG_QUALITY = 95


def as_float(planes: torch.Tensor) -> torch.Tensor:
    """Planes of :attr:`LoadedImage.pixels` (or rows of them) as float: uint8 levels become
    float32 in ``[0, 1]``, an expanded gray stays expanded; float planes are returned as is.

    Example:
        >>> gray = torch.tensor([[0, 255]], dtype=torch.uint8).expand(3, -1, -1)
        >>> out = as_float(gray)
        >>> out[:, 0, 1].tolist(), out.stride(0)
        ([1.0, 1.0, 1.0], 0)
    """
    if planes.dtype != torch.uint8:
        return planes
    if planes.stride(0) == 0:
        return planes[:1].float().div_(255.0).expand_as(planes)
    return planes.float().div_(255.0)


def to_output(rgb: torch.Tensor, loaded: LoadedImage) -> Image.Image | np.ndarray | torch.Tensor:
    """Turn float RGB back into the kind, dtype and layout of ``loaded``'s source.

    Args:
        rgb: ``(3, H, W)`` float in ``[0, 1]`` (integer outputs clip to it), ``(H, W)`` as
            ``loaded.size``; any device.
        loaded: What :func:`load_image` returned for the source.

    Returns:
        PIL ``RGB``/``RGBA`` for PIL and path sources, numpy ``(H, W, 3|4)`` or a tensor
        ``(3|4, H, W)`` otherwise, with the source's alpha as the fourth channel.

    Raises:
        ValueError: If ``rgb`` does not have shape ``(3, *loaded.size)``.

    Example:
        >>> from pixcolor.images import load_image
        >>> src = load_image(torch.zeros(1, 2, 2, dtype=torch.uint8))
        >>> to_output(torch.ones(3, 2, 2), src)[:, 0, 0]
        tensor([255, 255, 255], dtype=torch.uint8)
    """
    if tuple(rgb.shape) != (3, *loaded.size):
        raise ValueError(f"rgb must have shape {(3, *loaded.size)}, got {tuple(rgb.shape)}")
    writer = OutputWriter(loaded)
    writer.write(rgb, 0)
    return writer.result()


class OutputWriter:
    """Build :func:`to_output`'s result strip by strip, so that a large output never exists
    as a full-size float image: only the final buffer (in the output dtype) is allocated.

    Args:
        loaded: What :func:`load_image` returned for the source.

    Example:
        >>> from pixcolor.images import load_image
        >>> src = load_image(np.zeros((4, 3), np.uint16))
        >>> writer = OutputWriter(src)
        >>> writer.write(torch.ones(3, 2, 3), 0); writer.write(torch.zeros(3, 2, 3), 2)
        >>> writer.result()[:, 0, 0].tolist()
        [65535, 65535, 0, 0]
    """

    def __init__(self, loaded: LoadedImage) -> None:
        self.loaded = loaded
        height, width = loaded.size
        channels = 3 if loaded.alpha is None else 4
        self._buffer: np.ndarray | torch.Tensor
        if loaded.kind == "tensor":
            assert isinstance(loaded.dtype, torch.dtype)
            self._buffer = torch.empty(
                (channels, height, width), dtype=loaded.dtype, device=loaded.device
            )
            if loaded.alpha is not None:
                self._buffer[3:] = _quantize_tensor(loaded.alpha, loaded.dtype, loaded.device)
        else:
            dtype = loaded.dtype if isinstance(loaded.dtype, np.dtype) else np.dtype(np.uint8)
            self._buffer = np.empty((height, width, channels), dtype)
            if loaded.alpha is not None:
                self._buffer[..., 3] = _quantize_array(loaded.alpha[0], dtype)

    def write(self, rows: torch.Tensor, top: int) -> None:
        """Place ``rows``, float ``(3, h, W)`` in ``[0, 1]`` or uint8 levels, at output rows
        ``top:top + h``."""
        bottom = top + rows.shape[-2]
        if rows.dtype == torch.uint8:
            if isinstance(self._buffer, torch.Tensor) and self._buffer.dtype == torch.uint8:
                self._buffer[:3, top:bottom] = rows.to(self._buffer.device)
                return
            if isinstance(self._buffer, np.ndarray) and self._buffer.dtype == np.uint8:
                self._buffer[top:bottom, :, :3] = rows.permute(1, 2, 0).cpu().numpy()
                return
            rows = as_float(rows)
        if isinstance(self._buffer, torch.Tensor):
            self._buffer[:3, top:bottom] = _quantize_tensor(
                rows, self._buffer.dtype, self._buffer.device
            )
        else:
            self._buffer[top:bottom, :, :3] = _quantize_array(
                rows.permute(1, 2, 0), self._buffer.dtype
            )

    def result(self) -> Image.Image | np.ndarray | torch.Tensor:
        """The finished output (PIL for PIL and path sources)."""
        if self.loaded.kind in ("path", "pil"):
            assert isinstance(self._buffer, np.ndarray)
            return Image.fromarray(self._buffer)
        return self._buffer


def save_image(
    image: Image.Image,
    path: str | os.PathLike,
    *,
    like: LoadedImage | None = None,
    overwrite: bool = False,
) -> Path:
    """Save atomically (temporary file in the same folder, then rename), like the source.

    The format comes from the file extension, else from ``like.format``. From ``like``: a
    JPEG written from a JPEG source reuses its quantization tables and subsampling (what
    Pillow's ``quality="keep"`` does, which only works on the opened source itself);
    other JPEGs use quality 95. An RGB ICC profile and the EXIF (orientation 1) are copied
    to JPEG, PNG, WebP and TIFF files. Colour is written in 8 bits (see :mod:`pixcolor.images`).

    Args:
        image: The image to write.
        path: Destination file.
        like: The :class:`LoadedImage` of the source whose metadata to keep.
        overwrite: Replace an existing file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is false.
        ValueError: If the format is unknown, or cannot hold the image's mode (RGBA as
            JPEG).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> save_image(Image.new("RGB", (4, 3)), folder / "a.png").name
        'a.png'
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{str(target)!r} exists; pass overwrite=True to replace it")
    fmt, params = _format_and_params(image, str(target), like)
    _atomic_save(image, target, fmt, params, overwrite)
    return target


def encode_image(image: Image.Image, name: str, *, like: LoadedImage | None = None) -> bytes:
    """The bytes :func:`save_image` would write to a file called ``name``: same format,
    JPEG tables, ICC profile and EXIF. For destinations that are not local files (object
    stores), which take a whole object at once.

    Args:
        image: The image to encode.
        name: File name or URI; its extension picks the format (else ``like.format``).
        like: The :class:`LoadedImage` of the source whose metadata to keep.

    Returns:
        The encoded file.

    Raises:
        ValueError: As :func:`save_image`.

    Example:
        >>> encode_image(Image.new("RGB", (4, 3)), "s3://bucket/a.png")[:4]
        b'\\x89PNG'
    """
    fmt, params = _format_and_params(image, name, like)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _format_and_params(
    image: Image.Image, name: str, like: LoadedImage | None
) -> tuple[str, dict[str, Any]]:
    """The Pillow format and save parameters for ``image`` written to ``name``."""
    suffix = os.path.splitext(name.rsplit("/", 1)[-1])[1]
    fmt = Image.registered_extensions().get(suffix.lower()) or (like and like.format)
    if not fmt:
        raise ValueError(
            f"cannot tell the image format of {name!r}; use an extension such as "
            ".png, .jpg, .webp or .tif"
        )
    if fmt in ("JPEG", "MPO") and image.mode not in ("RGB", "L", "CMYK"):
        raise ValueError(f"JPEG cannot hold mode {image.mode!r}; save {name!r} as .png")
    return ("JPEG" if fmt == "MPO" else fmt), _save_params(fmt, like)


def _quantize_tensor(x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = x.to(device)
    if dtype == torch.uint8:
        return x.mul(255.0).clamp_(0.0, 255.0).round_().to(dtype)
    return x.to(dtype)


def _quantize_array(x: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    arr = x.detach().cpu().numpy()
    if dtype.kind == "u":
        top = float(np.iinfo(dtype).max)
        return np.rint(np.clip(arr * arr.dtype.type(top), 0.0, top))
    return arr


def _save_params(fmt: str, like: LoadedImage | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "MPO"):
        settings = like.jpeg_settings if like is not None else None
        if settings:
            tables = settings["qtables"]
            chroma = tables.get(1, tables[0])  # a gray source has one table: reuse it
            subsampling = settings["subsampling"]
            params.update(qtables=[tables[0], chroma], subsampling=max(subsampling, 0))
        else:
            params["quality"] = _DEFAULT_JPEG_QUALITY
    elif fmt == "WEBP":
        params["quality"] = _DEFAULT_JPEG_QUALITY
    if like is not None and fmt in _METADATA_FORMATS:
        icc = like.icc_profile
        if icc and icc[16:20] == b"RGB ":  # a gray or CMYK profile would be wrong on RGB
            params["icc_profile"] = icc
        if like.exif:
            params["exif"] = like.exif
    return params


def _atomic_save(
    image: Image.Image, target: Path, fmt: str, params: dict[str, Any], overwrite: bool
) -> None:
    tmp = temporary_file(target)
    try:
        with open(tmp, "wb") as file:
            image.save(file, format=fmt, **params)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:  # a hard link fails if the target appeared meanwhile: no clobbering race
                os.link(tmp, target)
            except FileExistsError:
                raise FileExistsError(
                    f"{str(target)!r} exists; pass overwrite=True to replace it"
                ) from None
            except OSError:  # file system without hard links
                if target.exists():
                    raise FileExistsError(f"{str(target)!r} exists") from None
                os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


# IJG's standard luminance table (natural order), scaled by quality in libjpeg.
