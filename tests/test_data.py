"""pixcolor.data: finding, scanning, decoding and batching photos."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color
from torch.utils.data import DataLoader

from pixcolor import UNetGenerator
from pixcolor.data import (
    PhotoFolder,
    batch_to_rgb,
    find_images,
    lab_constants,
    load_rgb,
    prepare_batch,
    scan_photos,
    split_files,
)
from pixcolor.errors import NoImagesError

COLOUR = ["a.jpg", "b.png", "nested/deeper/c.JPG", "rgba.png", "rotated.jpg"]
GRAY = ["gray_l.jpg", "gray_rgb.jpg"]
UNREADABLE = ["empty.jpg", "text.jpg", "truncated.jpg"]


def _colour_image(width: int, height: int, seed: int) -> Image.Image:
    """A smooth colour gradient with mild noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([xx, yy, 1.0 - xx], axis=-1) * 200 + 30
    noisy = base + rng.normal(0, 4, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _rotated_jpeg(path: Path) -> None:
    """64x32 stored, left half red, right half blue, EXIF orientation 6 (rotate 90° CW)."""
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32] = (220, 20, 20)
    pixels[:, 32:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    _colour_image(96, 64, 0).save(tmp_path / "a.jpg", quality=90)
    _colour_image(64, 80, 1).save(tmp_path / "b.png")
    _colour_image(72, 72, 2).save(tmp_path / "nested" / "deeper" / "c.JPG", quality=90)
    rgba = _colour_image(64, 64, 3).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))))
    rgba.save(tmp_path / "rgba.png")
    _rotated_jpeg(tmp_path / "rotated.jpg")
    _colour_image(64, 64, 4).convert("L").save(tmp_path / "gray_l.jpg")
    _colour_image(64, 64, 5).convert("L").convert("RGB").save(tmp_path / "gray_rgb.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a photo\n")
    full = tmp_path / "full.jpg"
    _colour_image(96, 96, 6).save(full, quality=90)
    (tmp_path / "truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    (tmp_path / "notes.txt").write_text("ignored: not an image extension\n")
    return tmp_path


def _names(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in paths)


class TestFindImages:
    def test_recursive_sorted_case_insensitive(self, photo_dir: Path) -> None:
        found = find_images(photo_dir)
        assert found == sorted(found)
        assert _names(found, photo_dir) == sorted(COLOUR + GRAY + UNREADABLE)

    def test_not_recursive(self, photo_dir: Path) -> None:
        assert "nested/deeper/c.JPG" not in _names(find_images(photo_dir, False), photo_dir)

    def test_missing_root(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="does not exist"):
            find_images(tmp_path / "nope")

    def test_no_images(self, tmp_path: Path) -> None:
        (tmp_path / "readme.md").write_text("x")
        with pytest.raises(NoImagesError, match=r"no image file \(\.jpg"):
            find_images(tmp_path)


class TestScan:
    def test_counts_and_reasons(self, photo_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="pixcolor.data"):
            data = PhotoFolder(photo_dir, size=32)
        assert _names(data.files, photo_dir) == sorted(COLOUR)
        assert _names(data.skipped["grayscale"], photo_dir) == GRAY
        assert _names(data.skipped["unreadable"], photo_dir) == UNREADABLE
        assert len(data) == 5
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "5 of 10" in warnings[0].getMessage()
        assert "2 grayscale, 3 unreadable" in warnings[0].getMessage()

    def test_explicit_file_list_keeps_order(self, photo_dir: Path) -> None:
        files = [photo_dir / "rotated.jpg", photo_dir / "empty.jpg", photo_dir / "a.jpg"]
        data = PhotoFolder(files, size=32)
        assert data.files == [files[0], files[2]]
        assert data.skipped["unreadable"] == [files[1]]

    def test_only_skipped_files(self, photo_dir: Path) -> None:
        with pytest.raises(NoImagesError, match="2 grayscale, 3 unreadable"):
            PhotoFolder([photo_dir / name for name in GRAY + UNREADABLE])

    def test_gray_threshold(self, tmp_path: Path) -> None:
        pixels = np.full((64, 64, 3), 100, np.uint8)
        pixels[..., 2] = 104  # a faint blue cast: chroma 4
        Image.fromarray(pixels).save(tmp_path / "tinted.png")
        assert scan_photos([tmp_path / "tinted.png"])[0] == [tmp_path / "tinted.png"]
        assert scan_photos([tmp_path / "tinted.png"], gray_threshold=4)[0] == []


class TestDecoding:
    def test_exif_orientation_applied(self, photo_dir: Path) -> None:
        image = load_rgb(photo_dir / "rotated.jpg")
        assert image.size == (32, 64)  # upright: portrait
        assert image.getpixel((16, 8))[0] > 200  # red on top
        assert image.getpixel((16, 56))[2] > 200  # blue below
        crop = PhotoFolder([photo_dir / "rotated.jpg"], size=32, train=False)[0]
        assert crop[0, 4, 8] > 200 and crop[2, 4, 8] < 60  # top: red
        assert crop[2, 28, 8] > 200 and crop[0, 28, 8] < 60  # bottom: blue

    def test_alpha_composited_on_white(self, photo_dir: Path) -> None:
        image = load_rgb(photo_dir / "rgba.png")
        assert image.mode == "RGB"
        assert image.getpixel((0, 10)) == (255, 255, 255)  # alpha 0 in the first column
        assert image.getpixel((63, 10)) == Image.open(photo_dir / "rgba.png").getpixel((63, 10))[:3]

    def test_draft_keeps_min_side(self, tmp_path: Path) -> None:
        _colour_image(800, 600, 7).save(tmp_path / "big.jpg", quality=90)
        image = load_rgb(tmp_path / "big.jpg", min_side=140)
        assert image.size == (200, 150)  # decoded at 1/4 scale, shorter side still >= 140


class TestPhotoFolder:
    @pytest.mark.parametrize("train", [True, False])
    def test_shape_dtype(self, photo_dir: Path, train: bool) -> None:
        data = PhotoFolder(photo_dir, size=48, train=train)
        for i in range(len(data)):
            item = data[i]
            assert item.shape == (3, 48, 48)
            assert item.dtype == torch.uint8

    def test_val_is_deterministic_train_is_random(self, photo_dir: Path) -> None:
        val = PhotoFolder(photo_dir, size=32, train=False)
        assert torch.equal(val[0], val[0])
        train = PhotoFolder(photo_dir, size=32, train=True, scale=(0.2, 0.3))
        torch.manual_seed(0)
        assert not all(torch.equal(train[0], train[0]) for _ in range(3))

    def test_file_broken_after_scan(
        self, photo_dir: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        data = PhotoFolder(photo_dir, size=32, train=False)
        broken = data.files[1]
        broken.write_bytes(b"")
        with caplog.at_level(logging.WARNING, logger="pixcolor.data"):
            item = data[1]
        assert torch.equal(item, data[2])  # the next photo stands in
        assert torch.equal(data[1], item)  # and keeps standing in
        assert data.skipped["unreadable"][-1] == broken
        assert data.skipped["unreadable"].count(broken) == 1
        assert "cannot read" in caplog.text
        assert len(data) == 5  # the sampler's view does not change

    def test_index_out_of_range(self, photo_dir: Path) -> None:
        with pytest.raises(IndexError, match="index 5 out of range for 5 photos"):
            PhotoFolder(photo_dir, size=32)[5]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"size": 0}, "size must be a positive int, got 0"), ({"scale": (0.0, 1.0)}, "scale")],
    )
    def test_bad_arguments(self, photo_dir: Path, kwargs: dict, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            PhotoFolder(photo_dir, **kwargs)

    def test_pickle_round_trip(self, photo_dir: Path) -> None:
        """What DataLoader workers started with "spawn" receive: a pickled copy."""
        data = PhotoFolder(photo_dir, size=32, train=False)
        clone = pickle.loads(pickle.dumps(data))
        assert clone.files == data.files and clone.skipped == data.skipped
        assert torch.equal(clone[3], data[3])

    def test_dataloader_two_workers(self, photo_dir: Path) -> None:
        data = PhotoFolder(photo_dir, size=32, train=False)
        loader = DataLoader(data, batch_size=2, num_workers=2)
        batches = list(loader)
        assert [b.shape for b in batches] == [(2, 3, 32, 32), (2, 3, 32, 32), (1, 3, 32, 32)]
        torch.testing.assert_close(torch.cat(batches), torch.stack([data[i] for i in range(5)]))


class TestPrepareBatch:
    def test_matches_skimage(self) -> None:
        rgb = torch.randint(0, 256, (2, 3, 16, 24), dtype=torch.uint8, generator=_gen())
        lightness, ab = prepare_batch(rgb)
        assert lightness.shape == (2, 1, 16, 24) and ab.shape == (2, 2, 16, 24)
        assert lightness.dtype == ab.dtype == torch.float32
        restored = torch.cat([lightness * 50 + 50, ab * 110], dim=1)
        expected = color.rgb2lab(rgb.permute(0, 2, 3, 1).numpy())
        expected = torch.from_numpy(expected).permute(0, 3, 1, 2).float()
        torch.testing.assert_close(restored, expected, atol=0.02, rtol=0)

    def test_model_constants(self) -> None:
        generator = UNetGenerator(
            encoder="pix2pix",
            base_channels=8,
            num_downs=5,
            l_center=0.0,
            l_scale=100.0,
            ab_scale=128.0,
        )
        constants = lab_constants(generator)
        assert constants == {"l_center": 0.0, "l_scale": 100.0, "ab_scale": 128.0}
        assert lab_constants(generator.config) == constants
        white = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
        lightness, ab = prepare_batch(white, **constants)
        torch.testing.assert_close(lightness, torch.ones(1, 1, 4, 4), atol=1e-4, rtol=0)
        assert ab.abs().max() < 0.011 / 128 * 110  # white's ab is (0.005, -0.010)

    def test_channels_last_and_device(self) -> None:
        rgb = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, generator=_gen())
        lightness, ab = prepare_batch(rgb, device="cpu", channels_last=True)
        assert lightness.is_contiguous(memory_format=torch.channels_last)
        assert ab.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(ab, prepare_batch(rgb)[1], atol=0, rtol=0)

    def test_rejects_float_and_bad_shape(self) -> None:
        with pytest.raises(TypeError, match="torch.uint8 tensor, got torch.float32"):
            prepare_batch(torch.rand(1, 3, 4, 4))
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(3, 4, 4\)"):
            prepare_batch(torch.zeros(3, 4, 4, dtype=torch.uint8))
        with pytest.raises(TypeError, match="UNetConfig"):
            lab_constants(object())


class TestBatchToRgb:
    def test_inverts_prepare_batch_with_model_constants(self) -> None:
        rgb = torch.randint(0, 256, (2, 3, 16, 24), dtype=torch.uint8, generator=_gen())
        constants = {"l_center": 0.0, "l_scale": 100.0, "ab_scale": 128.0}
        back = batch_to_rgb(*prepare_batch(rgb, **constants), **constants)
        assert back.shape == (2, 3, 16, 24) and back.dtype == torch.float32
        torch.testing.assert_close(back, rgb.float() / 255, atol=2e-4, rtol=0)

    def test_matches_skimage_and_clips_out_of_gamut(self) -> None:
        lightness = torch.rand(1, 1, 8, 8, generator=_gen()) * 2 - 1
        ab = (torch.rand(1, 2, 8, 8, generator=_gen()) * 2 - 1).half()  # any dtype, in float32
        out = batch_to_rgb(lightness, ab)
        lab_image = torch.cat([lightness * 50 + 50, ab.float() * 110], 1)[0].permute(1, 2, 0)
        with pytest.warns(UserWarning, match="negative Z"):  # skimage: out of gamut, clipped
            expected = color.lab2rgb(lab_image.double().numpy())
        expected = torch.from_numpy(expected).permute(2, 0, 1)
        torch.testing.assert_close(out[0], expected.float(), atol=2e-4, rtol=0)
        assert out.min() >= 0 and out.max() <= 1


class TestSplitFiles:
    FILES: ClassVar[list[str]] = [f"photos/{i:04d}.jpg" for i in range(500)]

    def test_deterministic_and_disjoint(self) -> None:
        train, val = split_files(self.FILES)
        assert (train, val) == split_files(self.FILES)
        assert sorted(map(str, train + val)) == self.FILES
        assert 25 <= len(val) <= 75  # 10 % of 500, give or take

    def test_stable_when_files_are_added(self) -> None:
        train, val = split_files(self.FILES)
        more_train, more_val = split_files(self.FILES + [f"new/{i}.png" for i in range(300)])
        assert set(train) <= set(more_train) and set(val) <= set(more_val)

    def test_seed_and_root(self) -> None:
        assert split_files(self.FILES, seed=1) != split_files(self.FILES, seed=0)
        moved = [f"/elsewhere/photos/{i:04d}.jpg" for i in range(500)]
        assert [p.name for p in split_files(moved)[1]] == [
            p.name for p in split_files(self.FILES)[1]
        ]
        by_root = split_files(moved, root="/elsewhere")[1]
        assert [p.name for p in by_root] != [p.name for p in split_files(moved)[1]]

    def test_never_empty(self) -> None:
        for seed in range(20):
            train, val = split_files(["a.jpg", "b.jpg"], val_fraction=0.01, seed=seed)
            assert len(train) == len(val) == 1
            train, val = split_files(["a.jpg", "b.jpg", "c.jpg"], val_fraction=0.99, seed=seed)
            assert len(train) >= 1 and len(val) >= 1
        assert split_files(["a.jpg", "b.jpg"], val_fraction=0.0) == (
            [Path("a.jpg"), Path("b.jpg")],
            [],
        )

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.0"):
            split_files(self.FILES, val_fraction=1.0)
        with pytest.raises(ValueError, match="not under root"):
            split_files(["/a/x.jpg"], root="/b")


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
