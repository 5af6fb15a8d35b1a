"""pixcolor._fullres: the network's colour at render size on the photo's own Rec. 601 luma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pixcolor import _fullres
from pixcolor._fullres import LUMA, chroma_offsets, render
from pixcolor.images import load_image

ASSETS = Path(__file__).parent / "assets"


def _offsets(rows: int = 8, strength: float = 60.0, seed: int = 0) -> torch.Tensor:
    """``(5, r, r)`` offsets of random strong colours on a random small image."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, rows, rows, generator=gen)
    ab = (torch.rand(1, 2, rows, rows, generator=gen) * 2 - 1) * strength
    return chroma_offsets(small, ab)[0]


def _reference(luma: np.ndarray, offsets: torch.Tensor, top: float) -> np.ndarray:
    """The step written plainly on whole float64 images: ``(H, W, 3)`` in ``[0, top]``."""
    height, width = luma.shape
    up = F.interpolate(offsets[None].double() * top, size=(height, width), mode="bilinear")[0]
    o, high, low = up[:3].numpy(), up[3].numpy(), up[4].numpy()
    y = luma.astype(np.float64)
    scale = np.minimum(np.minimum((top - y) / high, y / low), 1.0)
    return np.moveaxis(y + scale * o, 0, -1)


def _luma_of(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array(LUMA)


class TestChromaOffsets:
    def test_offsets_have_zero_luma_and_bound_it(self) -> None:
        offsets = _offsets()
        luma = sum(w * offsets[c] for c, w in enumerate(LUMA))
        torch.testing.assert_close(luma, torch.zeros_like(luma), atol=1e-6, rtol=0)
        assert (offsets[3] >= offsets[:3].amax(0)).all() and (offsets[3] > 0).all()
        assert (-offsets[4] <= offsets[:3].amin(0)).all() and (offsets[4] > 0).all()

    def test_no_chroma_gives_no_offset(self) -> None:
        small = torch.rand(2, 3, 4, 4)
        offsets = chroma_offsets(small, torch.zeros(2, 2, 4, 4))
        assert offsets[:, :3].abs().max() < 1e-4  # a hundredth of a level

    def test_offsets_are_the_recoloured_small_image(self) -> None:
        """Added to the small image's own luma, the offsets give recolor's sRGB."""
        from pixcolor import lab

        small = torch.rand(1, 3, 4, 4)
        ab = torch.randn(1, 2, 4, 4) * 30
        rgb = lab.recolor(small, ab)
        luma = sum(w * rgb[:, c] for c, w in enumerate(LUMA))
        torch.testing.assert_close(luma[:, None] + chroma_offsets(small, ab)[:, :3], rgb)


class TestRender:
    @pytest.mark.parametrize("in_torch", [False, True])
    @pytest.mark.parametrize("size", [(37, 53), (1, 1), (3, 200), (200, 3), (64, 64)])
    def test_gray_uint8_matches_the_plain_formula(
        self, size: tuple[int, int], in_torch: bool
    ) -> None:
        gray = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
        offsets = _offsets()
        out = render(load_image(gray), offsets, in_torch=in_torch)
        assert out.shape == (*size, 3) and out.dtype == np.uint8
        expected = _reference(gray, offsets, 255.0)
        assert np.abs(out - expected).max() <= 0.5 + 1e-3  # rounding only

    @pytest.mark.parametrize("in_torch", [False, True])
    def test_colour_and_float_inputs_match_the_plain_formula(self, in_torch: bool) -> None:
        rgb = np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)
        offsets = _offsets(strength=40)
        luma = _luma_of(rgb)
        out = render(load_image(rgb), offsets, in_torch=in_torch)
        assert np.abs(out - _reference(luma, offsets, 255.0)).max() <= 0.5 + 1e-3
        floats = render(load_image(rgb / 255.0), offsets, in_torch=in_torch)
        assert floats.dtype == np.float64
        np.testing.assert_allclose(floats, _reference(luma / 255, offsets, 1.0), atol=1e-5)

    @pytest.mark.parametrize("in_torch", [False, True])
    def test_luma_is_kept(self, in_torch: bool) -> None:
        """Converted back to gray, the output is the input, within one level (rounding),
        also where strong colour on bright and dark pixels had to be fitted."""
        photo = Image.open(ASSETS / "gray_camera.jpg")
        offsets = _offsets(strength=120)
        out = render(load_image(photo), offsets, in_torch=in_torch)
        back = np.asarray(out.convert("L"), dtype=np.int16)
        diff = np.abs(back - np.asarray(photo, dtype=np.int16))
        assert diff.max() <= 1 and diff.mean() < 0.5
        chroma = np.asarray(out, dtype=np.int16).max(-1) - np.asarray(out, np.int16).min(-1)
        assert chroma.mean() > 30  # really coloured
        assert chroma[np.asarray(photo) == 255].max(initial=0) == 0  # white stays white

    def test_colour_input_keeps_its_luma(self) -> None:
        photo = Image.open(ASSETS / "astronaut.jpg").convert("RGB")
        out = render(load_image(photo), _offsets(strength=120))
        back = np.asarray(out.convert("L"), dtype=np.int16)
        diff = np.abs(back - np.asarray(photo.convert("L"), dtype=np.int16))
        assert diff.max() <= 1 and diff.mean() < 0.5

    def test_strips_and_threads_do_not_change_the_result(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gray = np.random.default_rng(3).integers(0, 256, (301, 77), dtype=np.uint8)
        offsets = _offsets(rows=16)
        whole = render(load_image(gray), offsets)
        monkeypatch.setattr(_fullres, "_STRIP_PIXELS", 500)  # strips of 6 rows, on the pool
        np.testing.assert_array_equal(render(load_image(gray), offsets), whole)
        in_torch = render(load_image(gray), offsets, in_torch=True).astype(int)
        assert np.abs(in_torch - whole).max() <= 1  # float rounding of another order

    def test_kinds_and_alpha(self) -> None:
        rgba = np.random.default_rng(4).integers(0, 256, (9, 11, 4), dtype=np.uint8)
        offsets = _offsets()
        pil = render(load_image(Image.fromarray(rgba)), offsets)
        assert pil.mode == "RGBA" and pil.size == (11, 9)
        np.testing.assert_array_equal(np.asarray(pil)[..., 3], rgba[..., 3])
        tensor = render(load_image(torch.from_numpy(rgba).permute(2, 0, 1)), offsets)
        assert tensor.shape == (4, 9, 11) and tensor.dtype == torch.uint8
        np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy(), np.asarray(pil))
        array = render(load_image(rgba.astype(np.uint16) * 257), offsets)
        assert array.dtype == np.uint16 and array.shape == (9, 11, 4)
        np.testing.assert_allclose(array[..., :3] / 257, np.asarray(pil)[..., :3], atol=1)

    def test_output_is_writable_and_owns_its_memory(self) -> None:
        gray = np.zeros((4, 5), np.uint8)
        out = render(load_image(gray), _offsets())
        out[0, 0] = 7  # a numpy output the user can change
        assert out.flags.writeable and gray[0, 0] == 0
        image = render(load_image(Image.fromarray(gray)), _offsets())
        image.putpixel((0, 0), (1, 2, 3))  # a PIL output too
        assert not image.readonly and image.getpixel((0, 0)) == (1, 2, 3)

    def test_images_pasted_strip_by_strip_equal_whole_planes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """PIL and numpy outputs are pasted into the image a strip at a time from the
        worker threads; tensors are cast into whole planes: the same pixels."""
        rgba = np.random.default_rng(6).integers(0, 256, (203, 61, 4), dtype=np.uint8)
        offsets = _offsets(rows=16, strength=80)
        monkeypatch.setattr(_fullres, "_STRIP_PIXELS", 400)  # strips of 6 rows, on the pool
        monkeypatch.setattr(_fullres, "_workers", lambda: 3)
        planes = render(load_image(torch.from_numpy(rgba).permute(2, 0, 1)), offsets)
        expected = planes.permute(1, 2, 0).numpy()
        pil = render(load_image(Image.fromarray(rgba)), offsets)
        np.testing.assert_array_equal(np.asarray(pil), expected)
        array = render(load_image(rgba[..., :3]), offsets)
        np.testing.assert_array_equal(array, expected[..., :3])


class TestShrinkPlane:
    @pytest.mark.parametrize(("shape", "size"), [((301, 77), (32, 16)), ((40, 900), (3, 64))])
    def test_bands_give_one_whole_resize(
        self, monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int], size: tuple[int, int]
    ) -> None:
        plane = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
        whole = np.asarray(Image.fromarray(plane).resize(size[::-1], Image.Resampling.BILINEAR))
        monkeypatch.setattr(_fullres, "_STRIP_PIXELS", 500)
        monkeypatch.setattr(_fullres, "_workers", lambda: 3)  # three bands on the pool
        out = _fullres.shrink_plane(plane, size)
        np.testing.assert_array_equal(out, whole)
        assert out.flags.writeable


class TestEightBitRenderSize:
    def test_lightness_by_lookup_tables(self) -> None:
        from pixcolor import lab
        from pixcolor._lab8 import lightness_uint8

        levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
        exact = lab.rgb_to_l(levels.expand(-1, 3, -1, -1).float() / 255)
        torch.testing.assert_close(lightness_uint8(levels), exact, atol=1e-4, rtol=0)
        rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
        expected = lab.rgb_to_l(rgb.float() / 255)
        torch.testing.assert_close(lightness_uint8(rgb), expected, atol=0.01, rtol=0)

    def test_uint8_and_float_sources_give_the_same_colours(self) -> None:
        """8-bit photos run the render-size steps on levels (lookup tables); the same photo
        as floats runs them in float: the outputs agree within rounding."""
        from pixcolor import Colorizer, UNetGenerator

        torch.manual_seed(0)
        gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        with torch.no_grad():
            gen.net.up[0][-2].bias.copy_(torch.tensor([0.5, -0.6]))  # real colours
        col = Colorizer(gen, device="cpu", precision="fp32")
        photo = np.asarray(Image.open(ASSETS / "astronaut.jpg").convert("RGB"))
        levels = col.colorize(photo, render_size=64).astype(int)
        floats = col.colorize(photo / 255.0, render_size=64)
        assert np.abs(levels - floats * 255).mean() < 0.5
        assert np.abs(levels - floats * 255).max() <= 6  # small input rounded to levels
