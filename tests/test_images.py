"""pixcolor.images: every input kind to float tensors and back, metadata, saving."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile

from pixcolor.errors import ImageError, ImageNotFoundError
from pixcolor.images import (
    LoadedImage,
    OutputWriter,
    as_float,
    load_image,
    save_image,
    to_output,
)

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _reopen(img: Image.Image, fmt: str, **params: object) -> Image.Image:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    buffer.seek(0)
    return Image.open(buffer)


class TestNumpy:
    @pytest.mark.parametrize(
        ("dtype", "top"),
        [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 1.0)],
    )
    @pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
    def test_round_trip_is_lossless(
        self, rng: np.random.Generator, dtype: type, top: float, shape: tuple[int, ...]
    ) -> None:
        if top == 1.0:
            arr = rng.random(shape).astype(dtype)
        else:
            arr = rng.integers(0, int(top) + 1, shape).astype(dtype)
        loaded = load_image(arr)
        assert loaded.kind == "numpy" and loaded.dtype == arr.dtype and loaded.size == (5, 7)
        assert loaded.rgb.dtype == torch.float32 and loaded.rgb.shape == (3, 5, 7)
        assert (loaded.alpha is not None) == (len(shape) == 3 and shape[2] == 4)
        out = to_output(loaded.rgb, loaded)
        channels = 4 if loaded.alpha is not None else 3
        assert out.dtype == arr.dtype and out.shape == (5, 7, channels)
        gray = arr if arr.ndim == 2 else arr[..., 0]
        expected = np.dstack([gray] * 3) if len(shape) == 2 or shape[2] == 1 else arr[..., :3]
        atol = 1e-7 if dtype == np.float64 else 0  # colour goes through float32
        np.testing.assert_allclose(out[..., :3], expected, atol=atol, rtol=0)
        if channels == 4:
            np.testing.assert_array_equal(out[..., 3], arr[..., 3])  # alpha bit-exact

    def test_eight_bit_sources_keep_their_levels(self, rng: np.random.Generator) -> None:
        arr = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
        for source in (arr, Image.fromarray(arr), torch.from_numpy(arr).permute(2, 0, 1)):
            loaded = load_image(source)
            assert loaded.pixels.dtype == torch.uint8
            np.testing.assert_array_equal(loaded.pixels.permute(1, 2, 0).cpu().numpy(), arr)
            torch.testing.assert_close(loaded.rgb, loaded.pixels.float() / 255, atol=0, rtol=0)
        gray = load_image(Image.fromarray(arr[..., 0]))
        assert gray.pixels.stride(0) == 0 and gray.rgb.stride(0) == 0  # one plane, expanded
        rows = as_float(gray.pixels[:, 1:3])
        assert rows.dtype == torch.float32 and rows.stride(0) == 0
        torch.testing.assert_close(rows[2], torch.from_numpy(arr[1:3, :, 0]).float() / 255)
        floats = torch.rand(3, 2, 2)
        assert as_float(floats) is floats
        assert load_image(arr.astype(np.uint16)).pixels.dtype == torch.float32

    def test_sixteen_bit_precision_is_kept(self) -> None:
        arr = np.array([[0, 1, 2, 65534, 65535]], np.uint16)
        rgb = load_image(arr).rgb
        assert torch.unique(rgb[0]).numel() == 5
        assert rgb[0, 0, 1].item() == pytest.approx(1 / 65535)

    def test_big_endian_and_strided_views(self, rng: np.random.Generator) -> None:
        arr = rng.integers(0, 65536, (6, 8, 3)).astype(">u2")
        torch.testing.assert_close(load_image(arr).rgb, load_image(arr.astype(np.uint16)).rgb)
        view = rng.random((10, 16, 3)).astype(np.float32)[::2, ::2]
        view.flags.writeable = False
        torch.testing.assert_close(
            load_image(view).rgb, torch.from_numpy(view.copy()).permute(2, 0, 1)
        )


class TestTensor:
    @pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32, torch.float64])
    @pytest.mark.parametrize("shape", [(5, 7), (1, 5, 7), (3, 5, 7), (4, 5, 7)])
    def test_round_trip(self, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
        gen = torch.Generator().manual_seed(0)
        t = torch.randint(0, 256, shape, generator=gen).to(torch.uint8)
        if dtype != torch.uint8:
            t = (t.double() / 255).to(dtype)
        loaded = load_image(t)
        assert loaded.kind == "tensor" and loaded.dtype == dtype and loaded.device == t.device
        out = to_output(loaded.rgb, loaded)
        channels = 4 if shape[0] == 4 else 3
        assert out.dtype == dtype and out.shape == (channels, 5, 7)
        planes = t if t.dim() == 3 else t[None]
        expected = planes[:3] if planes.shape[0] >= 3 else planes.expand(3, -1, -1)
        torch.testing.assert_close(out[:3], expected, atol=1e-7, rtol=0)
        if channels == 4:
            assert torch.equal(out[3], t[3])

    def test_gradients_are_not_tracked(self) -> None:
        t = torch.rand(3, 4, 4, requires_grad=True)
        assert not load_image(t).rgb.requires_grad


class TestPil:
    @pytest.mark.parametrize(
        ("mode", "value", "expected_rgb", "alpha"),
        [
            ("1", 1, (1.0, 1.0, 1.0), None),
            ("L", 51, (0.2, 0.2, 0.2), None),
            ("LA", (51, 102), (0.2, 0.2, 0.2), 0.4),
            ("RGB", (255, 0, 51), (1.0, 0.0, 0.2), None),
            ("RGBA", (255, 0, 51, 153), (1.0, 0.0, 0.2), 0.6),
            ("CMYK", (0, 255, 255, 0), (1.0, 0.0, 0.0), None),
            ("I;16", 65535, (1.0, 1.0, 1.0), None),
            ("I", 51, (0.2, 0.2, 0.2), None),
            ("I", 13107, (0.2, 0.2, 0.2), None),
            ("F", 0.25, (0.25, 0.25, 0.25), None),
        ],
    )
    def test_modes(
        self, mode: str, value: object, expected_rgb: tuple[float, ...], alpha: float | None
    ) -> None:
        loaded = load_image(Image.new(mode, (3, 2), value))  # type: ignore[arg-type]
        assert loaded.kind == "pil" and loaded.mode == mode and loaded.size == (2, 3)
        torch.testing.assert_close(
            loaded.rgb[:, 0, 0], torch.tensor(expected_rgb), atol=1e-6, rtol=0
        )
        if alpha is None:
            assert loaded.alpha is None
        else:
            assert loaded.alpha is not None and loaded.alpha[0, 0, 0].item() == pytest.approx(alpha)
        out = to_output(loaded.rgb, loaded)
        assert isinstance(out, Image.Image) and out.size == (3, 2)
        assert out.mode == ("RGB" if alpha is None else "RGBA")

    def test_sixteen_bit_variants(self) -> None:
        values = np.array([[0, 300, 65535]], np.uint16)
        big = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
        loaded = load_image(big)
        assert loaded.bit_depth == 16
        torch.testing.assert_close(loaded.rgb[0, 0], torch.tensor([0.0, 300 / 65535, 1.0]))
        png16 = load_image(_reopen(Image.fromarray(values), "PNG"))
        torch.testing.assert_close(png16.rgb, loaded.rgb)

    def test_palette_with_and_without_transparency(self) -> None:
        img = Image.new("P", (4, 4), 1)
        img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
        assert load_image(img).alpha is None
        torch.testing.assert_close(load_image(img).rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
        img.info["transparency"] = 1
        loaded = load_image(_reopen(img, "PNG", transparency=1))
        assert loaded.alpha is not None and loaded.alpha.max().item() == 0.0

    def test_other_modes_convert(self) -> None:
        rgb = Image.new("RGB", (2, 2), (200, 100, 50))
        for mode in ("YCbCr", "HSV"):
            loaded = load_image(rgb.convert(mode))
            torch.testing.assert_close(
                loaded.rgb[:, 0, 0], torch.tensor([200, 100, 50]) / 255, atol=0.02, rtol=0
            )

    def test_lab_mode_is_decoded_as_lab(self) -> None:
        srgb, lab_profile = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
        to_lab = ImageCms.buildTransform(srgb, lab_profile, "RGB", "LAB")
        gray = ImageCms.applyTransform(Image.new("RGB", (2, 2), (119, 119, 119)), to_lab)
        assert gray.mode == "LAB"
        rgb = load_image(gray).rgb[:, 0, 0]
        torch.testing.assert_close(rgb, torch.full((3,), 119 / 255), atol=0.02, rtol=0)

    def test_mode_i_and_f_ranges(self) -> None:
        with pytest.raises(ImageError, match=r"\[0, 65535\]"):
            load_image(Image.new("I", (2, 2), -5))
        with pytest.raises(ImageError, match=r"\[0, 1\].*max 255"):
            load_image(Image.new("F", (2, 2), 255.0))


class TestFiles:
    def test_exif_orientation_is_applied_and_reset(self, tmp_path: Path) -> None:
        img = Image.new("RGB", (40, 20), (255, 0, 0))
        img.paste((0, 0, 255), (0, 0, 10, 20))  # left quarter blue
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        img.save(tmp_path / "r.jpg", exif=exif, quality=95)
        loaded = load_image(tmp_path / "r.jpg")
        assert loaded.kind == "path" and loaded.size == (40, 20)
        assert loaded.rgb[2, 2, 10].item() > 0.8  # the blue quarter is now on top
        assert loaded.exif is not None
        reread = Image.Exif()
        reread.load(loaded.exif)
        assert reread[0x0112] == 1
        source = Image.open(tmp_path / "r.jpg")
        assert load_image(source).size == (40, 20)
        assert source.getexif()[0x0112] == 6 and source.size == (40, 20)  # caller's image untouched

    def test_jpeg_metadata(self, tmp_path: Path) -> None:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        Image.new("RGB", (16, 16), (10, 20, 30)).save(
            tmp_path / "a.jpg", quality=63, icc_profile=icc
        )
        loaded = load_image(str(tmp_path / "a.jpg"))
        assert (loaded.format, loaded.quality, loaded.icc_profile) == ("JPEG", 63, icc)
        assert loaded.path == tmp_path / "a.jpg"

    def test_truncated_file_is_an_error_not_a_gray_image(self, tmp_path: Path) -> None:
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
            buffer, format="JPEG"
        )
        (tmp_path / "t.jpg").write_bytes(buffer.getvalue()[: buffer.tell() // 2])
        with pytest.raises(ImageError, match="truncated"):
            load_image(tmp_path / "t.jpg")
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False

    def test_missing_path_is_also_file_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="nope.png"):
            load_image(tmp_path / "nope.png")
        with pytest.raises(ImageNotFoundError):
            load_image(str(tmp_path / "nope.png"))

    def test_animated_gif_gives_first_frame(self, tmp_path: Path) -> None:
        frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        loaded = load_image(tmp_path / "a.gif")
        assert loaded.n_frames == 2
        assert loaded.rgb[0, 0, 0].item() > 0.9 and loaded.rgb[2, 0, 0].item() < 0.1


class TestOutput:
    def test_writer_strips_equal_one_write(self, rng: np.random.Generator) -> None:
        loaded = load_image(rng.integers(0, 256, (9, 5, 4), dtype=np.uint8))
        rgb = torch.rand(3, 9, 5, generator=torch.Generator().manual_seed(0))
        writer = OutputWriter(loaded)
        for top in range(0, 9, 4):
            writer.write(rgb[:, top : top + 4], top)
        np.testing.assert_array_equal(writer.result(), to_output(rgb, loaded))

    def test_integer_outputs_clip(self) -> None:
        loaded = load_image(np.zeros((1, 2), np.uint8))
        out = to_output(torch.tensor([[[-0.5, 1.5]]]).expand(3, 1, 2), loaded)
        assert out[0, :, 0].tolist() == [0, 255]

    def test_wrong_shape(self) -> None:
        with pytest.raises(ValueError, match=r"\(3, 2, 2\)"):
            to_output(torch.zeros(3, 2, 3), load_image(np.zeros((2, 2), np.uint8)))

    def test_loaded_image_passes_through(self) -> None:
        loaded = load_image(np.zeros((2, 2), np.uint8))
        assert load_image(loaded) is loaded and isinstance(loaded, LoadedImage)


class TestSave:
    def test_refuses_to_overwrite_and_is_atomic(self, tmp_path: Path) -> None:
        target = tmp_path / "out.png"
        target.write_bytes(b"precious")
        with pytest.raises(FileExistsError, match="out.png"):
            save_image(Image.new("RGB", (2, 2)), target)
        assert target.read_bytes() == b"precious"
        save_image(Image.new("RGB", (2, 2), (1, 2, 3)), target, overwrite=True)
        assert Image.open(target).getpixel((0, 0)) == (1, 2, 3)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left
        assert stat.S_IMODE(os.stat(target).st_mode) & 0o044  # not mkstemp's 0600

    def test_keeps_jpeg_tables_icc_and_exif(self, tmp_path: Path) -> None:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        exif = Image.Exif()
        exif[0x0112] = 3
        exif[0x010F] = "ACME camera"
        Image.new("L", (16, 8), 128).save(
            tmp_path / "in.jpg", quality=70, icc_profile=icc, exif=exif
        )
        like = load_image(tmp_path / "in.jpg")
        save_image(Image.new("RGB", (16, 8), (200, 30, 40)), tmp_path / "out.jpg", like=like)
        source, result = Image.open(tmp_path / "in.jpg"), Image.open(tmp_path / "out.jpg")
        assert result.quantization[0] == source.quantization[0]
        assert result.info.get("icc_profile") == icc
        assert result.getexif()[0x0112] == 1 and result.getexif()[0x010F] == "ACME camera"

    def test_default_quality_and_profile_filter(self, tmp_path: Path) -> None:
        gray_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
        Image.new("RGB", (8, 8)).save(tmp_path / "in.png", icc_profile=gray_icc)
        like = load_image(tmp_path / "in.png")
        save_image(Image.new("RGB", (8, 8), (9, 9, 9)), tmp_path / "out.jpg", like=like)
        out = Image.open(tmp_path / "out.jpg")
        reference = _reopen(Image.new("RGB", (8, 8)), "JPEG", quality=95)
        assert out.quantization == reference.quantization  # quality 95 for a non-JPEG source
        assert "icc_profile" not in out.info  # a non-RGB profile is not copied onto RGB

    def test_format_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="format"):
            save_image(Image.new("RGB", (2, 2)), tmp_path / "out.unknown")
        with pytest.raises(ValueError, match="RGBA"):
            save_image(Image.new("RGBA", (2, 2)), tmp_path / "out.jpg")
        like = load_image(ASSETS / "coffee.jpg")
        saved = save_image(Image.new("RGB", (2, 2)), tmp_path / "noext", like=like)
        assert Image.open(saved).format == "JPEG"
