"""Pillow images as numpy arrays: the same pixels as ``np.asarray``, by a faster path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixcolor._pillow_arrays import pixels_8bit


@pytest.mark.parametrize(
    ("mode", "shape"),
    [
        ("L", (7, 5)),
        ("LA", (7, 5, 2)),
        ("RGB", (301, 3001, 3)),  # several encoder chunks, lines split across them
        ("RGBA", (1, 1, 4)),
        ("RGB", (2, 70000, 3)),  # a line longer than the encoder's default chunk
        ("L", (0, 5)),
    ],
)
def test_same_pixels_as_asarray(mode: str, shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    image = Image.fromarray(pixels, mode) if pixels.size else Image.new(mode, shape[1::-1])
    out = pixels_8bit(image)
    assert out.dtype == np.uint8 and out.shape == np.asarray(image).shape
    np.testing.assert_array_equal(out, np.asarray(image))
    assert out.flags.writeable and out.flags.c_contiguous


class _Short:
    """An encoder that says "done" after 10 of the image's bytes."""

    def setimage(self, *args: object) -> None:
        pass

    def encode(self, size: int) -> tuple[int, int, bytes]:
        return 0, 1, b"\x07" * 10


def _broken(*args: object) -> None:
    raise RuntimeError("not this Pillow")


@pytest.mark.parametrize("encoder", [_broken, lambda *args: _Short()], ids=["raises", "short"])
def test_falls_back_to_asarray(monkeypatch: pytest.MonkeyPatch, encoder: object) -> None:
    pixels = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    image = Image.fromarray(pixels)
    fallbacks = []
    monkeypatch.setattr(Image, "_getencoder", encoder)
    monkeypatch.setattr(np, "asarray", lambda img: fallbacks.append(img) or pixels.copy())
    np.testing.assert_array_equal(pixels_8bit(image), pixels)
    assert fallbacks == [image]


def test_into_a_given_array() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (37, 1001, 3), dtype=np.uint8)
    out = np.zeros((50, 1001, 3), np.uint8)
    returned = pixels_8bit(Image.fromarray(pixels), out[5:42])  # rows of a larger array
    assert returned.base is out or returned.base is out.base
    np.testing.assert_array_equal(out[5:42], pixels)
    assert not out[:5].any() and not out[42:].any()
    with pytest.raises(ValueError, match=r"C-contiguous uint8 of shape \(37, 1001, 3\)"):
        pixels_8bit(Image.fromarray(pixels), np.zeros((37, 1001, 4), np.uint8))
