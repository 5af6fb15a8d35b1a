"""pixcolor.metrics against scikit-image and the published formulas."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pixcolor.data import load_rgb
from pixcolor.errors import NoImagesError
from pixcolor.metrics import (
    colorfulness,
    delta_cf,
    delta_e_2000,
    evaluate,
    format_table,
    psnr,
    ssim,
)

ASSETS = Path(__file__).parent / "assets"
COLOUR_ASSETS = sorted(p for p in ASSETS.glob("*.jpg") if not p.name.startswith("gray"))


def _photo_batch(side: int = 160) -> torch.Tensor:
    """Centre crops of three real photos as a ``(3, 3, side, side)`` float batch in [0, 1]."""
    crops = []
    for path in COLOUR_ASSETS[:3]:
        pixels = np.asarray(load_rgb(path))
        top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
        crops.append(torch.from_numpy(pixels[top : top + side, left : left + side].copy()))
    return torch.stack(crops).permute(0, 3, 1, 2).float() / 255


def _degrade(x: torch.Tensor) -> torch.Tensor:
    """Half-way to gray, plus noise: a plausible imperfect colorization."""
    noise = 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    return (0.5 * x + 0.5 * x.mean(dim=1, keepdim=True) + noise).clamp(0, 1)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()


class TestPsnr:
    def test_matches_skimage(self) -> None:
        target = _photo_batch()
        pred = _degrade(target)
        expected = [
            peak_signal_noise_ratio(_hwc(t), _hwc(p), data_range=1.0)
            for t, p in zip(target, pred, strict=True)
        ]
        torch.testing.assert_close(
            psnr(pred, target).double(), torch.tensor(expected), atol=1e-4, rtol=0
        )

    def test_identical_is_inf_and_data_range(self) -> None:
        x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        assert psnr(x, x).isinf().all()
        torch.testing.assert_close(
            psnr(x * 255, (x + 0.1) * 255, data_range=255.0), torch.full((2,), 20.0)
        )

    def test_shape_mismatch(self) -> None:
        with pytest.raises(
            ValueError, match=r"same shape \(B, C, H, W\), got \(1, 3, 4, 4\) and \(1, 3, 4, 5\)"
        ):
            psnr(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


class TestSsim:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_matches_skimage_on_photos(self, dtype: torch.dtype) -> None:
        target = _photo_batch().to(dtype)
        pred = _degrade(target)
        expected = [
            structural_similarity(
                _hwc(t), _hwc(p), channel_axis=-1, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1.0,
            )
            for t, p in zip(target, pred, strict=True)
        ]  # fmt: skip
        assert min(expected) < 0.9  # the test images really differ
        ours = ssim(pred, target)
        torch.testing.assert_close(
            ours, torch.tensor(expected, dtype=ours.dtype), atol=1e-3, rtol=0
        )

    def test_identical_and_symmetric(self) -> None:
        x = _photo_batch(64)
        torch.testing.assert_close(ssim(x, x), torch.ones(3), atol=1e-6, rtol=0)
        y = _degrade(x)
        torch.testing.assert_close(ssim(x, y), ssim(y, x), atol=1e-6, rtol=0)

    def test_too_small(self) -> None:
        with pytest.raises(ValueError, match=r"at least 11x11, got \(1, 3, 10, 32\)"):
            ssim(torch.zeros(1, 3, 10, 32), torch.zeros(1, 3, 10, 32))


def _colorfulness_np(pixels: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) on an ``(H, W, 3)`` array in 0-255, in float64."""
    red, green, blue = np.moveaxis(pixels.astype(np.float64), -1, 0)
    rg, yb = red - green, 0.5 * (red + green) - blue
    return math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())


class TestColorfulness:
    def test_matches_formula(self) -> None:
        x = _photo_batch()
        expected = torch.tensor(
            [_colorfulness_np(_hwc(image) * 255) for image in x], dtype=torch.float64
        )
        torch.testing.assert_close(colorfulness(x).double(), expected, atol=1e-3, rtol=0)

    def test_gray_is_zero_and_colour_is_not(self) -> None:
        gray = torch.from_numpy(np.array(load_rgb(ASSETS / "gray_camera.jpg"))).permute(2, 0, 1)
        assert colorfulness(gray[None].float() / 255).item() == 0.0
        assert (colorfulness(_photo_batch()) > 10).all()

    def test_rejects_wrong_channels(self) -> None:
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(1, 1, 4, 4\)"):
            colorfulness(torch.zeros(1, 1, 4, 4))

    def test_delta_cf(self) -> None:
        assert delta_cf(torch.tensor([10.0, 30.0]), [50.0, 48.0, 49.0]) == pytest.approx(29.0)


def _lab_pairs() -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) Lab pairs: random, near-neutral, neutral and hue-wraparound cases."""
    rng = np.random.default_rng(0)
    n = 4000
    lightness = rng.uniform(0, 100, (2, n))
    random_ab = rng.uniform(-128, 127, (2, n, 2))
    near_neutral = rng.uniform(-0.5, 0.5, (2, n, 2))
    near_neutral[:, :50] = 0.0  # exactly gray: chroma 0, hue undefined
    near_neutral[0, 50:100] = 0.0  # one of the pair gray
    chroma = rng.uniform(1, 80, (2, n))
    hue1 = rng.uniform(-0.3, 0.3, n)  # on both sides of 0 = 2 pi
    hue2 = np.concatenate(
        [rng.uniform(-0.3, 0.3, n // 2), hue1[: n // 2] + rng.uniform(2.9, 3.4, n // 2)]
    )
    hues = np.stack([hue1, hue2])
    wrapped_ab = np.stack([chroma * np.cos(hues), chroma * np.sin(hues)], axis=-1)
    ab = np.concatenate([random_ab, near_neutral, wrapped_ab], axis=1)
    lab = np.concatenate([np.tile(lightness, (1, 3))[..., None], ab], axis=-1)
    lab[1, :20] = lab[0, :20]  # identical pairs
    return lab[0], lab[1]


class TestDeltaE2000:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_matches_skimage(self, dtype: torch.dtype) -> None:
        lab1, lab2 = _lab_pairs()
        expected = color.deltaE_ciede2000(lab1, lab2)
        assert expected[:20].max() == 0.0 and expected.max() > 50
        as_image = lambda x: torch.from_numpy(x.T.reshape(1, 3, 120, 100)).to(dtype)  # noqa: E731
        ours = delta_e_2000(as_image(lab1), as_image(lab2))
        assert ours.shape == (1, 120, 100) and ours.dtype == dtype
        torch.testing.assert_close(
            ours.flatten().double(), torch.from_numpy(expected), atol=1e-3, rtol=0
        )

    def test_published_pair(self) -> None:
        """Sharma, Wu & Dalal (2005), table 1, pair 1: 2.0425."""
        lab1 = torch.tensor([50.0, 2.6772, -79.7751], dtype=torch.float64).view(3, 1, 1)
        lab2 = torch.tensor([50.0, 0.0, -82.7485], dtype=torch.float64).view(3, 1, 1)
        assert delta_e_2000(lab1, lab2).item() == pytest.approx(2.0425, abs=1e-4)

    def test_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match=r"same shape \(\*, 3, H, W\)"):
            delta_e_2000(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))


class _Identity:
    """Stand-in colorizer that returns each photo unchanged, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def colorize(self, images: list[Image.Image], render_size: int = 256) -> list[Image.Image]:
        self.calls.append((len(images), render_size))
        return [image.copy() for image in images]


def _psnr_8bit(pred: np.ndarray, truth: np.ndarray) -> float:
    mse = np.mean((pred.astype(np.float64) / 255 - truth.astype(np.float64) / 255) ** 2)
    return 10 * math.log10(1 / mse)


class TestEvaluate:
    def test_identity_model_and_baselines(self) -> None:
        model = _Identity()
        results = evaluate(model, ASSETS, render_size=64, batch_size=4, progress=False)
        assert model.calls == [(4, 64), (2, 64)]  # the gray photo is skipped
        assert results["n_images"] == len(COLOUR_ASSETS) == 6
        perfect = results["model"]
        assert perfect["psnr"] == math.inf and perfect["delta_e"] == 0.0
        assert perfect["ssim"] == pytest.approx(1.0) and perfect["delta_cf"] == pytest.approx(
            0.0, abs=1e-9
        )

        truths = [np.asarray(load_rgb(p)) for p in COLOUR_ASSETS]
        gray_pil = [np.asarray(Image.fromarray(t).convert("L").convert("RGB")) for t in truths]
        gray_ab0 = []
        for t in truths:
            lab = color.rgb2lab(t)
            lab[..., 1:] = 0
            gray_ab0.append(np.round(color.lab2rgb(lab) * 255).astype(np.uint8))
        expected_pil = np.mean([_psnr_8bit(g, t) for g, t in zip(gray_pil, truths, strict=True)])
        expected_ab0 = np.mean([_psnr_8bit(g, t) for g, t in zip(gray_ab0, truths, strict=True)])
        assert results["gray_pil"]["psnr"] == pytest.approx(expected_pil, abs=1e-3)
        assert results["gray"]["psnr"] == pytest.approx(expected_ab0, abs=0.01)
        truth_cf = np.mean([_colorfulness_np(t) for t in truths])
        assert results["truth_colorfulness"] == pytest.approx(truth_cf, abs=1e-3)
        assert results["gray_pil"]["colorfulness"] == 0.0
        assert results["gray_pil"]["delta_cf"] == pytest.approx(truth_cf, abs=1e-3)
        assert results["gray"]["delta_e"] > 1.0 and 0.5 < results["gray"]["ssim"] < 1.0

    def test_list_of_files_skips_broken(self, tmp_path: Path) -> None:
        (tmp_path / "broken.jpg").write_bytes(b"")
        files = [*COLOUR_ASSETS[:2], ASSETS / "gray_camera.jpg", tmp_path / "broken.jpg"]
        assert evaluate(_Identity(), files, progress=False)["n_images"] == 2
        with pytest.raises(NoImagesError):
            evaluate(_Identity(), files[2:], progress=False)

    def test_wrong_output_size(self) -> None:
        class Shrinks(_Identity):
            def colorize(
                self, images: list[Image.Image], render_size: int = 256
            ) -> list[Image.Image]:
                return [image.resize((32, 32)) for image in images]

        with pytest.raises(
            ValueError, match=r"returned a \(32, 32\) image for a \(\d+, \d+\) input"
        ):
            evaluate(Shrinks(), COLOUR_ASSETS[:1], progress=False)

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError, match="Colorizer or a UNetGenerator, got str"):
            evaluate("coco", COLOUR_ASSETS[:1], progress=False)
        with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
            evaluate(_Identity(), COLOUR_ASSETS[:1], batch_size=0, progress=False)

    def test_real_generator(self) -> None:
        pytest.importorskip("pixcolor.colorizer")
        from pixcolor import UNetGenerator

        torch.manual_seed(0)
        generator = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        generator.train()
        results = evaluate(generator, COLOUR_ASSETS[:2], render_size=64, progress=False)
        assert generator.training  # evaluate leaves the caller's mode alone
        assert results["n_images"] == 2
        model = results["model"]
        assert all(math.isfinite(v) for v in model.values())
        assert 0.0 < model["ssim"] <= 1.0 and model["psnr"] > 10


def test_format_table() -> None:
    def row(psnr_db: float) -> dict[str, Any]:
        return {
            "psnr": psnr_db,
            "ssim": 0.9,
            "delta_e": 9.5,
            "colorfulness": 12.0,
            "delta_cf": 36.7,
        }

    results = {"model": row(23.456), "gray": row(20.87), "gray_pil": row(21.08)}
    table = format_table({**results, "truth_colorfulness": 48.7, "n_images": 47})
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["method", "PSNR", "(dB)"]
    assert [line.split()[1] for line in lines[1:4]] == ["23.46", "(ab=0)", "(PIL"]
    assert lines[2].split()[2] == "20.87" and lines[3].split()[3] == "21.08"
    assert "48.70" in lines[4] and lines[-1] == "(47 photos)"
