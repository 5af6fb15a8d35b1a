"""Odd and broken inputs: each gives a right-sized image of the right kind, or ImageError.

Never a traceback from deep inside torch, numpy or Pillow. Every file is made in
``tmp_path`` at test time.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, features

from pixcolor import UNetGenerator
from pixcolor.colorizer import Colorizer
from pixcolor.errors import ImageError, ImageNotFoundError

Build = Callable[[Path, pytest.MonkeyPatch], Any]
_RNG = np.random.default_rng(0)
_NOISE = _RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def col() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5), device="cpu")


def _file(name: str, data: bytes) -> Build:
    def build(tmp: Path, _: pytest.MonkeyPatch) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return build


def _encoded(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _saved(name: str, make: Callable[[], Image.Image], **params: Any) -> Build:
    def build(tmp: Path, _: pytest.MonkeyPatch) -> Path:
        make().save(tmp / name, **params)
        return tmp / name

    return build


def _value(x: Any) -> Build:
    return lambda tmp, mp: x() if callable(x) else x


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG that claims ``width x height`` pixels but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _with_pixel_limit(limit: int, size: tuple[int, int]) -> Build:
    def build(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        Image.new("L", size).save(tmp / "big.png")
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        return tmp / "big.png"

    return build


def _exif_rotated(tmp: Path, _: pytest.MonkeyPatch) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated by 90 degrees: 40 x 24 stored -> 24 x 40 shown
    Image.fromarray(_NOISE).save(tmp / "rot.jpg", exif=exif)
    return tmp / "rot.jpg"


def _exif_bad_orientation(tmp: Path, _: pytest.MonkeyPatch) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 42
    Image.fromarray(_NOISE).save(tmp / "odd.jpg", exif=exif)
    return tmp / "odd.jpg"


def _animated(fmt: str) -> Build:
    def build(tmp: Path, _: pytest.MonkeyPatch) -> Path:
        frames = [Image.new("RGB", (40, 24), c) for c in ("red", "blue", "green")]
        path = tmp / f"anim.{fmt}"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
        return path

    return build


def _palette_transparent() -> Image.Image:
    img = Image.fromarray(_NOISE).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    img.info["transparency"] = 0
    return img


def _lazy_truncated(tmp: Path, _: pytest.MonkeyPatch) -> Image.Image:
    data = _encoded(Image.fromarray(_NOISE), "JPEG")
    (tmp / "lazy.jpg").write_bytes(data[: len(data) // 2])
    return Image.open(tmp / "lazy.jpg")  # opening reads the header only


_JPEG = _encoded(Image.fromarray(_NOISE), "JPEG", quality=90)
_PNG = _encoded(Image.fromarray(_NOISE), "PNG")
_CORRUPT_PNG = _PNG[:60] + bytes(b ^ 0xFF for b in _PNG[60:90]) + _PNG[90:]
_SPARSE = torch.eye(8).to_sparse()
_WEBP = features.check("webp")

ERR, MISSING = ImageError, ImageNotFoundError
# name -> (builder, expected): (height, width) of the output, or the exception type.
CASES: dict[str, tuple[Build, tuple[int, int] | type[Exception]]] = {
    # broken files
    "zero-byte file": (_file("empty.jpg", b""), ERR),
    "truncated JPEG": (_file("half.jpg", _JPEG[: len(_JPEG) // 2]), ERR),
    "JPEG cut before EOI": (_file("cut.jpg", _JPEG[:-2]), ERR),
    "truncated PNG": (_file("half.png", _PNG[: len(_PNG) // 2]), ERR),
    "corrupt PNG data": (_file("bad.png", _CORRUPT_PNG), ERR),
    "text file named .jpg": (_file("notes.jpg", b"just some text\n" * 20), ERR),
    "HTML named .png": (_file("page.png", b"<!doctype html><html></html>"), ERR),
    "lazily opened truncated PIL image": (_lazy_truncated, ERR),
    "directory": (lambda tmp, _: tmp, ERR),
    "missing path": (lambda tmp, _: tmp / "missing.png", MISSING),
    "missing path as str": (lambda tmp, _: str(tmp / "missing.jpg"), MISSING),
    # decompression bombs
    "PNG header claiming 100000 x 100000": (_file("bomb.png", _png_header(100_000, 100_000)), ERR),
    "over the bomb warning limit": (_with_pixel_limit(1000, (40, 40)), ERR),
    "over the bomb error limit": (_with_pixel_limit(100, (40, 40)), ERR),
    # odd but valid files
    "1x1 PNG": (_saved("one.png", lambda: Image.new("RGB", (1, 1), "red")), (1, 1)),
    "garbage after JPEG end": (_file("tail.jpg", _JPEG + b"trailing junk"), (24, 40)),
    "CMYK JPEG": (_saved("cmyk.jpg", lambda: Image.fromarray(_NOISE).convert("CMYK")), (24, 40)),
    "palette PNG with transparency": (
        _saved("p.png", _palette_transparent, transparency=0),
        (24, 40),
    ),
    "16-bit PNG (I;16)": (
        _saved("i16.png", lambda: Image.fromarray(_NOISE[..., 0].astype(np.uint16) * 257)),
        (24, 40),
    ),
    "32-bit I TIFF": (
        _saved("i32.tif", lambda: Image.fromarray(_NOISE[..., 0].astype(np.int32) * 200)),
        (24, 40),
    ),
    "F TIFF in [0, 1]": (
        _saved("f.tif", lambda: Image.fromarray(_NOISE[..., 0] / np.float32(255))),
        (24, 40),
    ),
    "F TIFF in [0, 255]": (
        _saved("f255.tif", lambda: Image.fromarray(_NOISE[..., 0].astype(np.float32))),
        ERR,
    ),
    "EXIF-rotated JPEG": (_exif_rotated, (40, 24)),
    "EXIF orientation 42": (_exif_bad_orientation, (24, 40)),
    "animated GIF": (_animated("gif"), (24, 40)),
    "animated PNG": (_animated("png"), (24, 40)),
    "multi-page TIFF": (_animated("tif"), (24, 40)),
    "LA PNG": (_saved("la.png", lambda: Image.fromarray(_NOISE[..., :2].copy())), (24, 40)),
    "1-bit PNG": (_saved("bw.png", lambda: Image.fromarray(_NOISE).convert("1")), (24, 40)),
    "BMP": (_saved("x.bmp", lambda: Image.fromarray(_NOISE)), (24, 40)),
    "progressive gray JPEG": (
        _saved("prog.jpg", lambda: Image.fromarray(_NOISE[..., 0]), progressive=True),
        (24, 40),
    ),
    # arrays
    "3x5000 array": (_value(lambda: np.resize(_NOISE, (3, 5000, 3))), (3, 5000)),
    "5000x3 array": (_value(lambda: np.resize(_NOISE, (5000, 3, 3))), (5000, 3)),
    "big-endian uint16 array": (_value(lambda: _NOISE.astype(">u2") * 257), (24, 40)),
    "read-only strided float16 array": (
        _value(lambda: np.broadcast_to(np.float16(0.5), (24, 40))),
        (24, 40),
    ),
    "NaN float array": (_value(lambda: np.where(_NOISE > 250, np.nan, 0.5)), ERR),
    "inf float array": (_value(lambda: np.where(_NOISE > 250, np.inf, 0.5)), ERR),
    "negative floats": (_value(lambda: _NOISE / 255.0 - 0.1), ERR),
    "0-255 floats": (_value(lambda: _NOISE.astype(np.float32)), ERR),
    "(H, W, 2) array": (_value(lambda: _NOISE[..., :2]), ERR),
    "(2, H, W, 3) batch array": (_value(lambda: np.stack([_NOISE, _NOISE])), ERR),
    "(3, H, W) array": (_value(lambda: np.moveaxis(_NOISE, -1, 0)), ERR),
    "0x0 array": (_value(lambda: np.zeros((0, 0), np.uint8)), ERR),
    "(3,) array": (_value(lambda: np.zeros(3, np.uint8)), ERR),
    "bool array": (_value(lambda: _NOISE > 128), ERR),
    "complex array": (_value(lambda: _NOISE / 255.0 + 0j), ERR),
    "object array": (_value(lambda: _NOISE.astype(object)), ERR),
    "int32 array": (_value(lambda: _NOISE.astype(np.int32)), ERR),
    # tensors
    "tensor (H, W, 3) layout": (_value(lambda: torch.from_numpy(_NOISE)), ERR),
    "sparse tensor": (_value(_SPARSE), ERR),
    "int64 tensor": (_value(lambda: torch.from_numpy(_NOISE).permute(2, 0, 1).long()), ERR),
    "(1, 3, H, W) tensor": (_value(lambda: torch.rand(1, 3, 8, 8)), ERR),
    "empty tensor": (_value(lambda: torch.zeros(3, 0, 5)), ERR),
    "NaN tensor": (_value(lambda: torch.full((3, 4, 4), float("nan"))), ERR),
    "tensor above 1": (_value(lambda: torch.full((4, 4), 1.5)), ERR),
    "bfloat16 tensor": (_value(lambda: torch.rand(3, 24, 40).bfloat16()), (24, 40)),
    # other objects and lists
    "None": (_value(None), ERR),
    "bytes": (_value(_PNG), ERR),
    "list with one bad item": (
        _value(lambda: [_NOISE, np.zeros((2, 2, 2), np.uint8), _NOISE]),
        ERR,
    ),
}
if _WEBP:
    CASES["WebP"] = (_saved("x.webp", lambda: Image.fromarray(_NOISE)), (24, 40))
    CASES["lossless WebP with alpha"] = (
        _saved(
            "a.webp", lambda: Image.fromarray(np.dstack([_NOISE, _NOISE[..., 0]])), lossless=True
        ),
        (24, 40),
    )


def _size(out: Any) -> tuple[int, int]:
    if isinstance(out, Image.Image):
        return out.height, out.width
    return tuple(out.shape[:2]) if isinstance(out, np.ndarray) else tuple(out.shape[-2:])


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(
    name: str, col: Colorizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, expected = CASES[name]
    x = build(tmp_path, monkeypatch)
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            col.colorize(x, render_size=32)
        assert isinstance(info.value, ImageError) and len(str(info.value)) > 20
        return
    out = col.colorize(x, render_size=32)
    kind = Image.Image if isinstance(x, (str, Path)) else type(x)
    assert isinstance(out, kind)
    assert _size(out) == expected


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_messages_say_what_is_accepted(col: Colorizer, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"\(H, W, C\) with C in 1, 3, 4, got \(24, 40, 2\)"):
        col.colorize(_NOISE[..., :2], render_size=32)
    with pytest.raises(ImageError, match=r"\[0, 1\], got a float64 array with min -0\.1"):
        col.colorize(_NOISE / 255.0 - 0.1, render_size=32)
    with pytest.raises(ImageError, match=r"x\.permute\(2, 0, 1\)"):
        col.colorize(torch.from_numpy(_NOISE), render_size=32)
    with pytest.raises(ImageError, match=r"inputs\[1\]"):
        col.colorize([_NOISE, None], render_size=32)
    with pytest.raises(ImageError, match="directory"):
        col.colorize(tmp_path, render_size=32)
