"""pixcolor.lab against scikit-image, the numerical reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color

from pixcolor import lab


def _all_8bit_colours(start: int, stop: int) -> np.ndarray:
    codes = np.arange(start, stop, dtype=np.uint32)
    rgb = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)
    return rgb.astype(np.uint8).reshape(1, -1, 3)


class TestSmoke:
    def test_known_colour(self) -> None:
        red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
        expected = torch.tensor([53.2408, 80.0925, 67.2032]).view(3, 1, 1)
        torch.testing.assert_close(lab.rgb_to_lab(red), expected, atol=1e-3, rtol=0)

    def test_modules_match_functions(self) -> None:
        x = torch.rand(2, 3, 5, 7)
        torch.testing.assert_close(lab.RgbToLab()(x), lab.rgb_to_lab(x))
        lab_x = lab.rgb_to_lab(x)
        torch.testing.assert_close(lab.LabToRgb()(lab_x), lab.lab_to_rgb(lab_x))


class TestShapes:
    @pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 1, 9)])
    def test_shape_preserved(self, shape: tuple[int, ...]) -> None:
        x = torch.rand(shape)
        assert lab.rgb_to_lab(x).shape == shape
        assert lab.lab_to_rgb(lab.rgb_to_lab(x)).shape == shape

    def test_chunked_equals_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        x = torch.rand(2, 3, 40, 16, dtype=torch.float64)
        whole = lab.rgb_to_lab(x)
        monkeypatch.setattr(lab, "_CHUNK_PIXELS", 48)  # forces 3-row chunks
        torch.testing.assert_close(lab.rgb_to_lab(x), whole, atol=0, rtol=0)
        torch.testing.assert_close(lab.lab_to_rgb(whole), lab.lab_to_rgb(whole), atol=0, rtol=0)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
    def test_dtype_preserved(self, dtype: torch.dtype) -> None:
        x = torch.rand(3, 4, 4).to(dtype)
        assert lab.rgb_to_lab(x).dtype == dtype
        assert lab.lab_to_rgb(lab.rgb_to_lab(x)).dtype == dtype

    def test_half_precision_computed_in_float32(self) -> None:
        x = torch.rand(3, 8, 8).half()
        reference = lab.rgb_to_lab(x.float())
        # only the final rounding to float16 differs: |L| <= 100 gives a 0.0625 ulp at most
        torch.testing.assert_close(lab.rgb_to_lab(x).float(), reference, atol=0.07, rtol=0)


class TestExceptions:
    def test_wrong_channels(self) -> None:
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\), got \(4, 5, 5\)"):
            lab.rgb_to_lab(torch.rand(4, 5, 5))

    def test_integer_tensor(self) -> None:
        with pytest.raises(TypeError, match="floating-point.*torch.uint8"):
            lab.rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))

    def test_not_a_tensor(self) -> None:
        with pytest.raises(TypeError, match="ndarray"):
            lab.lab_to_rgb(np.zeros((3, 2, 2)))  # type: ignore[arg-type]

    def test_numpy_wrong_shape(self) -> None:
        with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\), got \(3, 4, 4\)"):
            lab.rgb2lab(np.zeros((3, 4, 4)))


class TestReference:
    def test_all_8bit_colours_match_skimage(self) -> None:
        """Every one of the 16.7 M 8-bit sRGB colours, float32, within 0.01 of skimage."""
        worst = np.zeros(3)
        step = 1 << 22
        for start in range(0, 1 << 24, step):
            rgb = _all_8bit_colours(start, start + step)
            reference = color.rgb2lab(rgb)
            ours = lab.rgb2lab(rgb)
            assert ours.dtype == np.float32
            worst = np.maximum(worst, np.abs(ours - reference).reshape(-1, 3).max(axis=0))
        assert (worst < 0.01).all(), f"max |error| per channel {worst}"

    def test_lab_to_rgb_matches_skimage(self) -> None:
        rng = np.random.default_rng(0)
        lab_values = np.stack(
            [
                rng.uniform(0, 100, 20000),
                rng.uniform(-110, 110, 20000),
                rng.uniform(-110, 110, 20000),
            ],
            axis=-1,
        ).reshape(100, 200, 3)
        with pytest.warns(UserWarning, match="negative Z"):
            reference = color.lab2rgb(lab_values)  # clips z < 0, then rgb to [0, 1]
        ours = lab.lab2rgb(lab_values.astype(np.float32))
        np.testing.assert_allclose(ours, reference, atol=2e-4, rtol=0)

    def test_float64_matches_skimage_closely(self) -> None:
        rgb = np.random.default_rng(1).random((32, 32, 3))
        np.testing.assert_allclose(lab.rgb2lab(rgb), color.rgb2lab(rgb), atol=1e-3, rtol=0)

    def test_normalisation_round_trip(self) -> None:
        lab_x = lab.rgb_to_lab(torch.rand(2, 3, 4, 4))
        light, ab = lab_x[:, :1], lab_x[:, 1:]
        norm_l = lab.normalize_l(light)
        assert norm_l.min() >= -1 and norm_l.max() <= 1
        torch.testing.assert_close(lab.denormalize_l(norm_l), light)
        torch.testing.assert_close(lab.denormalize_ab(lab.normalize_ab(ab, 128.0), 128.0), ab)
        torch.testing.assert_close(lab.normalize_ab(ab), ab / 110)


class TestRoundTrip:
    def test_all_8bit_colours_round_trip(self) -> None:
        worst = 0.0
        step = 1 << 22
        for start in range(0, 1 << 24, step):
            rgb = (
                torch.from_numpy(_all_8bit_colours(start, start + step)).permute(2, 0, 1).float()
                / 255
            )
            worst = max(worst, (lab.lab_to_rgb(lab.rgb_to_lab(rgb)) - rgb).abs().max().item())
        assert worst < 1e-3

    def test_batched_equals_per_image(self) -> None:
        x = torch.rand(4, 3, 6, 6)
        stacked = torch.stack([lab.rgb_to_lab(im) for im in x])
        torch.testing.assert_close(lab.rgb_to_lab(x), stacked)


class TestGradients:
    def test_gradcheck_rgb_to_lab(self) -> None:
        x = torch.rand(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lab.rgb_to_lab, (x,))

    def test_gradcheck_lab_to_rgb(self) -> None:
        lab_x = lab.rgb_to_lab(torch.rand(1, 3, 3, 4, dtype=torch.float64) * 0.9 + 0.05)
        lab_x.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda v: lab.lab_to_rgb(v, clip=False), (lab_x,))

    def test_finite_gradients_on_whole_cube(self) -> None:
        """Including exactly 0, exactly 1 and the branch switch points."""
        values = torch.tensor([0.0, 1e-7, lab._SRGB_LINEAR_LIMIT, 0.5, 1.0], dtype=torch.float64)
        grid = torch.cartesian_prod(values, values, values).T.reshape(3, 5, 25)
        for fn in (lab.rgb_to_lab, lambda v: lab.lab_to_rgb(lab.rgb_to_lab(v))):
            x = grid.clone().requires_grad_(True)
            fn(x).sum().backward()
            assert x.grad is not None and torch.isfinite(x.grad).all()

    def test_finite_gradients_half_precision(self) -> None:
        x = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1).expand(3, 2, 2).half().requires_grad_(True)
        lab.rgb_to_lab(x).sum().backward()
        assert torch.isfinite(x.grad).all()  # type: ignore[arg-type]


class TestLightnessOnly:
    def test_rgb_to_l_equals_first_channel(self) -> None:
        x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
        torch.testing.assert_close(lab.rgb_to_l(x), lab.rgb_to_lab(x)[:, :1], atol=1e-12, rtol=0)

    def test_chunked_lightness(self, monkeypatch: pytest.MonkeyPatch) -> None:
        x = torch.rand(2, 3, 40, 16)
        whole = lab.rgb_to_l(x)
        monkeypatch.setattr(lab, "_CHUNK_PIXELS", 48)  # forces 3-row chunks
        for image in (x, x[:, :1].expand(-1, 3, -1, -1)):
            chunked = lab.rgb_to_l(image)
            assert chunked.shape == (2, 1, 40, 16)
            torch.testing.assert_close(chunked, lab.rgb_to_l(image.contiguous()), atol=2e-5, rtol=0)
        torch.testing.assert_close(lab.rgb_to_l(x), whole, atol=0, rtol=0)

    def test_expanded_gray_fast_path(self) -> None:
        plane = torch.rand(2, 1, 9, 7)
        expanded = plane.expand(-1, 3, -1, -1)
        assert expanded.stride(-3) == 0
        torch.testing.assert_close(
            lab.rgb_to_l(expanded), lab.rgb_to_lab(expanded.contiguous())[:, :1], atol=2e-5, rtol=0
        )
        reference = color.rgb2lab(np.repeat(plane[0, 0].double().numpy()[..., None], 3, -1))[..., 0]
        np.testing.assert_allclose(
            lab.rgb_to_l(expanded)[0, 0].numpy(), reference, atol=1e-3, rtol=0
        )


class TestRecolor:
    """``recolor(rgb, ab)``: the L of ``rgb`` with chroma ``ab``, fitted into sRGB."""

    def test_in_gamut_matches_skimage(self) -> None:
        # Targets taken from real colours, so every (L, a, b) is inside the gamut.
        rng = np.random.default_rng(0)
        target = rng.uniform(0.02, 0.98, (16, 16, 3))
        lab_target = color.rgb2lab(target)
        source = color.lab2rgb(
            np.dstack([lab_target[..., :1], np.zeros((16, 16, 2))])
        )  # gray, same L
        rgb = torch.from_numpy(source).permute(2, 0, 1)
        ab = torch.from_numpy(lab_target[..., 1:]).permute(2, 0, 1)
        out = lab.recolor(rgb, ab)
        assert out.dtype == torch.float64
        np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), target, atol=1e-4, rtol=0)

    def test_out_of_gamut_keeps_lightness_and_hue_side(self) -> None:
        rgb = torch.rand(3, 3, 20, 20)
        ab = torch.randn(3, 2, 20, 20) * 90  # mostly far outside the gamut
        out = lab.recolor(rgb, ab)
        assert out.min() >= 0 and out.max() <= 1
        torch.testing.assert_close(lab.rgb_to_l(out), lab.rgb_to_l(rgb), atol=2e-3, rtol=0)
        out_ab = lab.rgb_to_lab(out)[:, 1:]
        # Chroma only shrinks (towards gray), and a/b keep their sign where they are large.
        assert (out_ab.norm(dim=1) <= ab.norm(dim=1) + 1e-2).all()
        large = ab.abs() > 20
        assert (torch.sign(out_ab[large]) == torch.sign(ab[large])).float().mean() > 0.95

    def test_gray_plane_expanded_and_chunked_agree(self, monkeypatch: pytest.MonkeyPatch) -> None:
        plane = torch.rand(2, 1, 30, 11)
        ab = torch.randn(2, 2, 30, 11) * 30
        one = lab.recolor(plane, ab)
        torch.testing.assert_close(
            lab.recolor(plane.expand(-1, 3, -1, -1), ab), one, atol=0, rtol=0
        )
        torch.testing.assert_close(
            lab.recolor(plane.expand(-1, 3, -1, -1).contiguous(), ab), one, atol=1e-5, rtol=0
        )
        monkeypatch.setattr(lab, "_CHUNK_PIXELS", 50)
        torch.testing.assert_close(lab.recolor(plane, ab), one, atol=0, rtol=0)

    def test_zero_chroma_is_gray_of_same_lightness(self) -> None:
        rgb = torch.rand(1, 3, 8, 8)
        out = lab.recolor(rgb, torch.zeros(1, 2, 8, 8))
        torch.testing.assert_close(
            out,
            lab.lab_to_rgb(lab.rgb_to_lab(rgb) * torch.tensor([1.0, 0, 0]).view(3, 1, 1)),
            atol=1e-5,
            rtol=0,
        )

    def test_uint8_is_within_one_level_of_the_float_path(self) -> None:
        gen = torch.Generator().manual_seed(0)
        rgb8 = torch.randint(0, 256, (4, 3, 40, 64), dtype=torch.uint8, generator=gen)
        ab = torch.randn(4, 2, 40, 64, generator=gen) * 30
        out8 = lab.recolor(rgb8, ab)
        assert out8.dtype == torch.uint8 and out8.shape == (4, 3, 40, 64)
        reference = lab.recolor(rgb8.float() / 255, ab).mul(255).round().to(torch.uint8)
        diff = (out8.int() - reference.int()).abs()
        assert diff.max() <= 1 and diff.float().mean() < 0.02
        lightness = lab.rgb_to_l(out8.float() / 255) - lab.rgb_to_l(rgb8.float() / 255)
        assert lightness.abs().mean() < 0.5

    def test_uint8_gray_levels(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Every level, with and without chroma; one plane, expanded and chunked agree.
        plane = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).repeat(2, 1, 1, 1)
        ab = torch.stack([torch.zeros(2, 16, 16), torch.full((2, 16, 16), 20.0)])
        one = lab.recolor(plane, ab)
        torch.testing.assert_close(one[0], plane.expand(-1, 3, -1, -1)[0], atol=1, rtol=0)
        reference = lab.recolor(plane.float() / 255, ab).mul(255).round().to(torch.uint8)
        assert (one.int() - reference.int()).abs().max() <= 1
        torch.testing.assert_close(
            lab.recolor(plane.expand(-1, 3, -1, -1), ab), one, atol=0, rtol=0
        )
        monkeypatch.setattr(lab, "_CHUNK_PIXELS", 50)
        torch.testing.assert_close(lab.recolor(plane, ab), one, atol=0, rtol=0)

    @pytest.mark.parametrize(
        ("rgb", "ab", "error", "message"),
        [
            (torch.zeros(3, 2, 2, dtype=torch.int16), torch.zeros(2, 2, 2), TypeError, "rgb must be .* got dtype torch.int16"),
            (np.zeros((3, 2, 2)), torch.zeros(2, 2, 2), TypeError, "rgb must be a floating-point or uint8 torch.Tensor, got ndarray"),
            (torch.zeros(3, 2, 2), torch.zeros(2, 2, 2, dtype=torch.int64), TypeError, "ab must be .* got dtype torch.int64"),
            (torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), ValueError, r"got \(2, 2, 2\) and \(2, 2, 2\)"),
            (torch.zeros(3, 2, 2), torch.zeros(2, 2, 3), ValueError, "of the same"),
        ],
    )  # fmt: skip
    def test_errors(self, rgb: object, ab: object, error: type, message: str) -> None:
        with pytest.raises(error, match=message):
            lab.recolor(rgb, ab)  # type: ignore[arg-type]
