"""Exceptions raised by pixcolor.

Each one also derives from the built-in exception a caller would expect, so
``except FileNotFoundError`` and ``except pixcolor.ModelNotFoundError`` both work.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ClusterError",
    "DiskSpaceError",
    "ImageError",
    "ImageNotFoundError",
    "ModelNotFoundError",
    "NoImagesError",
    "PixcolorError",
    "VideoError",
]


class PixcolorError(Exception):
    """Base class of every exception pixcolor raises on purpose."""


class ModelNotFoundError(PixcolorError, FileNotFoundError):
    """A model name is neither a local directory, a preset, nor a reachable Hub repo."""


class CheckpointError(PixcolorError, ValueError):
    """A weights directory exists but cannot be loaded: wrong class, config or tensors."""


class ClusterError(PixcolorError, ConnectionError):
    """The Ray cluster to join cannot be reached: no running instance for ``"auto"``, or
    nothing answers at the address."""


class DiskSpaceError(PixcolorError, OSError):
    """Not enough free disk space to download or convert a model; nothing half-written is
    left behind."""


class NoImagesError(PixcolorError, FileNotFoundError):
    """A folder or list of files holds no usable photo (none found, or all skipped)."""


class ImageError(PixcolorError, ValueError):
    """An input is not a usable image: unreadable, truncated or corrupt file, wrong array
    shape or dtype, NaN/inf or out-of-range values, empty, or a decompression bomb."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """An image path does not exist (also a :class:`FileNotFoundError`)."""


class VideoError(PixcolorError, ValueError):
    """A video input is not usable (not a video, truncated, no video stream or no frames,
    a pixel format pixcolor cannot colourise), or its output cannot be encoded."""
