"""pixcolor.colorizer.Colorizer: image in, same kind of image out, at full resolution."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor import UNetGenerator, _fullres, _inference, colorizer, lab
from pixcolor.colorizer import Colorizer
from pixcolor.errors import ImageError

ASSETS = Path(__file__).parent / "assets"
SIZE = 32  # render size: the tiny generator's stride


def _tiny_generator(ab_bias: tuple[float, float] | None = None) -> UNetGenerator:
    torch.manual_seed(0)
    gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
    if ab_bias is not None:  # a random net predicts ab ~ 0: give it real colours
        last = gen.net.up[0][-2]
        assert isinstance(last, torch.nn.ConvTranspose2d) and last.out_channels == 2
        with torch.no_grad():
            last.bias.copy_(torch.tensor(ab_bias))
    return gen


@pytest.fixture(scope="module")
def col() -> Colorizer:
    return Colorizer(_tiny_generator(), device="cpu")


@pytest.fixture(scope="module")
def vivid() -> Colorizer:
    return Colorizer(_tiny_generator((0.5, -0.6)), device="cpu")  # ab ~ (+50, -60)


def _photo(name: str = "astronaut.jpg") -> Image.Image:
    return Image.open(ASSETS / name).convert("RGB")


def _lab_of(img: Any) -> np.ndarray:
    return lab.rgb2lab(np.asarray(img)[..., :3])


_RNG = np.random.default_rng(0)
_U8 = _RNG.integers(0, 256, (37, 53, 4), dtype=np.uint8)

INPUTS: dict[str, Callable[[Path], Any]] = {
    "pil-L": lambda _: Image.fromarray(_U8[..., 0]),
    "pil-RGB": lambda _: Image.fromarray(_U8[..., :3]),
    "pil-RGBA": lambda _: Image.fromarray(_U8),
    "pil-I;16": lambda _: Image.fromarray(_U8[..., 0].astype(np.uint16) * 257),
    "path-jpg": lambda tmp: _saved(Image.fromarray(_U8[..., :3]), tmp / "x.jpg"),
    "path-png-LA": lambda tmp: _saved(Image.fromarray(_U8[..., :2]), tmp / "x.png"),
    "numpy-u8-HW": lambda _: _U8[..., 0],
    "numpy-u8-HW1": lambda _: _U8[..., :1],
    "numpy-u8-HW3": lambda _: _U8[..., :3],
    "numpy-u16-HW4": lambda _: _U8.astype(np.uint16) * 257,
    "numpy-f32-HW": lambda _: _U8[..., 0].astype(np.float32) / 255,
    "numpy-f64-HW3": lambda _: _U8[..., :3] / 255.0,
    "tensor-u8-CHW": lambda _: torch.from_numpy(_U8[..., :3]).permute(2, 0, 1),
    "tensor-f32-HW": lambda _: torch.from_numpy(_U8[..., 0]).float() / 255,
    "tensor-f16-1HW": lambda _: (torch.from_numpy(_U8[..., :1]).permute(2, 0, 1) / 255).half(),
    "tensor-f64-4HW": lambda _: torch.from_numpy(_U8).permute(2, 0, 1).double() / 255,
}


def _saved(img: Image.Image, path: Path) -> Path:
    img.save(path)
    return path


def _expected(x: Any) -> tuple[type, tuple[int, ...], Any]:
    """Kind, shape and dtype of the output for input ``x`` (37 x 53)."""
    if isinstance(x, (Image.Image, Path)):
        img = Image.open(x) if isinstance(x, Path) else x
        alpha = img.mode in ("RGBA", "LA")
        return Image.Image, (53, 37), "RGBA" if alpha else "RGB"
    channels = 4 if x.shape[-1 if isinstance(x, np.ndarray) else 0] == 4 else 3
    if isinstance(x, np.ndarray):
        return np.ndarray, (37, 53, channels), x.dtype
    return torch.Tensor, (channels, 37, 53), x.dtype


class TestKinds:
    @pytest.mark.parametrize("name", list(INPUTS))
    def test_same_kind_shape_and_dtype_back(
        self, col: Colorizer, tmp_path: Path, name: str
    ) -> None:
        x = INPUTS[name](tmp_path)
        kind, shape, dtype = _expected(x)
        out = col.colorize(x, render_size=SIZE)
        assert isinstance(out, kind)
        if isinstance(out, Image.Image):
            assert (out.size, out.mode) == (shape, dtype)
        else:
            assert (tuple(out.shape), out.dtype) == (shape, dtype)
        if isinstance(out, torch.Tensor):
            assert out.device == x.device and not out.requires_grad

    def test_list_in_list_out_equals_one_by_one(self, col: Colorizer, tmp_path: Path) -> None:
        xs = [INPUTS[name](tmp_path) for name in ("numpy-u8-HW3", "pil-RGB", "numpy-u8-HW")]
        xs.append(np.ascontiguousarray(_U8[:20, :30, :3]))  # a different size in the batch
        outs = col.colorize(xs, render_size=SIZE, batch_size=3)
        assert isinstance(outs, list) and len(outs) == 4
        for x, out in zip(xs, outs, strict=True):
            single = np.asarray(col.colorize(x, render_size=SIZE), dtype=np.int16)
            np.testing.assert_allclose(np.asarray(out, dtype=np.int16), single, atol=1, rtol=0)
        assert col.colorize((), render_size=SIZE) == []
        assert isinstance(col.colorize((xs[0],), render_size=SIZE), list)

    def test_alpha_is_unchanged(self, vivid: Colorizer) -> None:
        rgba = _U8.astype(np.uint16) * 257
        out = vivid.colorize(rgba, render_size=SIZE)
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
        pil = vivid.colorize(Image.fromarray(_U8), render_size=SIZE)
        np.testing.assert_array_equal(np.asarray(pil)[..., 3], _U8[..., 3])


class TestColour:
    def test_output_luma_is_input_luma(self, vivid: Colorizer) -> None:
        """What is kept is the Rec. 601 luma (PIL's convert("L")): a gray photo comes back
        from gray within one level (8-bit rounding), also where colour had to be fitted."""
        for name in ("astronaut.jpg", "coffee.jpg", "gray_camera.jpg"):
            photo = _photo(name)
            out = vivid.colorize(photo, render_size=64)
            assert np.abs(_lab_of(out)[..., 1:]).mean() > 20  # really coloured
            before = np.asarray(photo.convert("L"), dtype=np.int16)
            diff = np.abs(np.asarray(out.convert("L"), dtype=np.int16) - before)
            assert diff.mean() < 0.5 and diff.max() <= 1

    def test_full_resolution_detail_is_kept(self, vivid: Colorizer) -> None:
        photo = _photo()
        out = vivid.colorize(photo, render_size=SIZE)  # the network sees 32 x 32 only
        diff = np.asarray(out.convert("L"), np.int16) - np.asarray(photo.convert("L"), np.int16)
        assert out.size == photo.size and np.abs(diff).max() <= 1

    def test_saturation_zero_gives_gray(self, vivid: Colorizer) -> None:
        out = vivid.colorize(_photo(), render_size=SIZE, saturation=0.0)
        assert np.abs(_lab_of(out)[..., 1:]).max() < 1.5  # 8-bit rounding only

    def test_saturation_scales_chroma(self, vivid: Colorizer) -> None:
        photo = _photo("gray_camera.jpg")
        weak = np.abs(_lab_of(vivid.colorize(photo, render_size=SIZE, saturation=0.3))[..., 1:])
        full = np.abs(_lab_of(vivid.colorize(photo, render_size=SIZE))[..., 1:])
        assert weak.mean() < 0.5 * full.mean()

    def test_deterministic(self, vivid: Colorizer) -> None:
        photo = _photo()
        first = np.asarray(vivid.colorize(photo, render_size=SIZE))
        again = Colorizer(_tiny_generator((0.5, -0.6)), device="cpu").colorize(
            photo, render_size=SIZE
        )
        np.testing.assert_array_equal(first, np.asarray(vivid.colorize(photo, render_size=SIZE)))
        np.testing.assert_array_equal(first, np.asarray(again))

    @pytest.mark.parametrize("size", [(37, 53), (1, 1), (3, 200), (200, 3)])
    def test_odd_sizes(self, vivid: Colorizer, size: tuple[int, int]) -> None:
        gray = np.resize(_U8[..., 0], size)  # tiles the pattern to any size
        out = vivid.colorize(gray, render_size=SIZE)
        assert out.shape == (*size, 3)


class TestStrips:
    def test_strips_and_chunks_do_not_change_the_result(
        self, vivid: Colorizer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        images = [_photo(), _photo("coffee.jpg"), _photo()]
        whole = [np.asarray(o) for o in vivid.colorize(images, render_size=SIZE)]
        monkeypatch.setattr(_fullres, "_STRIP_PIXELS", 5000)  # strips of ~19-29 rows
        monkeypatch.setattr(colorizer, "_CHUNK_PIXELS", 50_000)  # one image per chunk
        strips = [np.asarray(o) for o in vivid.colorize(images, render_size=SIZE)]
        for a, b in zip(whole, strips, strict=True):
            np.testing.assert_array_equal(a, b)


class TestByKind:
    def test_one_call_per_kind_same_values_as_one_by_one(self, col: Colorizer) -> None:
        """The network input and colour offsets of a chunk: one call for each kind of
        photo (8-bit gray, 8-bit colour, float colour), each photo's values unchanged."""
        from pixcolor.images import load_image

        rgb = _U8[..., :3]
        photos = [rgb[..., 0], rgb, rgb[::-1, :, 0].copy(), rgb / 255.0, rgb[:, ::-1].copy()]
        smalls = [col._shrink(load_image(p).pixels, SIZE) for p in photos]
        ab = torch.randn(len(photos), 2, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
        calls: list[int] = []

        def offsets(small: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            calls.append(small.shape[0])
            return _fullres.chroma_offsets(small, rows * 40)

        grouped = colorizer._by_kind(offsets, smalls, ab)
        assert sorted(calls) == [1, 2, 2]
        inputs = colorizer._by_kind(col._network_input, smalls)
        for index, small in enumerate(smalls):
            alone = _fullres.chroma_offsets(small, ab[index : index + 1] * 40)
            assert torch.equal(grouped[index], alone)
            assert torch.equal(inputs[index], col._network_input(small))

    def test_runs_on_one_torch_thread(self, col: Colorizer) -> None:
        from pixcolor.images import load_image

        small = col._shrink(load_image(_U8[..., :3]).pixels, SIZE)
        seen: list[int] = []
        threads = torch.get_num_threads()
        torch.set_num_threads(2)  # as on a 2-core machine
        try:
            colorizer._by_kind(lambda x: seen.append(torch.get_num_threads()) or x, [small])
            assert seen == [1] and torch.get_num_threads() == 2  # and restored
        finally:
            torch.set_num_threads(threads)


class TestArguments:
    @pytest.mark.parametrize("render_size", [0, -32, 48, 250, 32.0, True, "256"])
    def test_render_size(self, col: Colorizer, render_size: Any) -> None:
        with pytest.raises(ValueError, match=f"multiple of 32, got {render_size!r}"):
            col.colorize(np.zeros((4, 4), np.uint8), render_size=render_size)

    def test_render_size_defaults_to_the_models(self, monkeypatch: pytest.MonkeyPatch) -> None:
        gen = UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5, render_size=96)
        col = Colorizer(gen, device="cpu")
        seen: list[int] = []
        monkeypatch.setattr(
            col, "_shrink", lambda rgb, size: seen.append(size) or Colorizer._shrink(col, rgb, size)
        )
        col.colorize(np.zeros((20, 30), np.uint8))
        assert seen == [96]
        col.colorize(np.zeros((20, 30), np.uint8), render_size=64)
        assert seen == [96, 64]

    @pytest.mark.parametrize("saturation", [-0.1, float("nan"), float("inf"), "1", None])
    def test_saturation(self, col: Colorizer, saturation: Any) -> None:
        with pytest.raises(ValueError, match="saturation must be a finite number >= 0"):
            col.colorize(np.zeros((4, 4), np.uint8), render_size=SIZE, saturation=saturation)

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5])
    def test_batch_size(self, col: Colorizer, batch_size: Any) -> None:
        with pytest.raises(ValueError, match="batch_size"):
            col.colorize(np.zeros((4, 4), np.uint8), render_size=SIZE, batch_size=batch_size)

    def test_numpy_integers_are_accepted(self, col: Colorizer) -> None:
        out = col.colorize(
            np.zeros((4, 4), np.uint8), render_size=np.int64(32), batch_size=np.int32(2)
        )
        assert out.shape == (4, 4, 3)

    def test_bad_item_is_named_by_index(self, col: Colorizer) -> None:
        with pytest.raises(ImageError, match=r"inputs\[1\]: .*NaN"):
            col.colorize([np.zeros((4, 4)), np.full((4, 4), np.nan)], render_size=SIZE)

    def test_not_a_generator(self) -> None:
        with pytest.raises(TypeError, match="UNetGenerator"):
            Colorizer(torch.nn.Identity())  # type: ignore[arg-type]


class TestConstruction:
    def test_generator_is_moved_and_in_eval_mode(self) -> None:
        gen = _tiny_generator().train()
        col = Colorizer(gen, device="cpu")
        assert col.device == torch.device("cpu") and not col.generator.training
        assert all(p.device == col.device for p in col.generator.parameters())

    def test_default_device(self) -> None:
        col = Colorizer(_tiny_generator())
        expected = "cuda" if torch.cuda.is_available() else col.device.type
        assert col.device.type == expected and col.device.type in ("cuda", "mps", "cpu")

    def test_from_pretrained_gives_the_same_colours(self, vivid: Colorizer, tmp_path: Path) -> None:
        vivid.generator.save_pretrained(tmp_path / "gen")
        loaded = Colorizer.from_pretrained(tmp_path / "gen", device="cpu")
        photo = _photo()
        np.testing.assert_array_equal(
            np.asarray(loaded.colorize(photo, render_size=SIZE)),
            np.asarray(vivid.colorize(photo, render_size=SIZE)),
        )
        assert "pix2pix" in repr(loaded)


class TestPrecision:
    def test_auto_is_the_inference_models_choice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_inference, "_TUNED", {})
        monkeypatch.setattr(
            _inference, "_fastest", lambda base, probe, candidates: (candidates[-1], {})
        )
        for native, expected in ((True, "bf16"), (False, "fp32")):
            monkeypatch.setattr(_inference, "cpu_has_bfloat16", lambda native=native: native)
            col = Colorizer(_tiny_generator(), device="cpu")
            assert col.precision == col.network.precision == expected
            assert f"precision={expected!r}" in repr(col)

    def test_bfloat16_is_close_to_float32(self) -> None:
        photo = _photo()
        full = Colorizer(_tiny_generator((0.5, -0.6)), device="cpu", precision="fp32")
        half = Colorizer(_tiny_generator((0.5, -0.6)), device="cpu", precision="bf16")
        assert half.precision == "bf16"
        assert next(half.network.network.parameters()).dtype == torch.bfloat16
        assert next(half.generator.parameters()).dtype == torch.float32  # a converted copy
        a = np.asarray(full.colorize(photo, render_size=SIZE)).astype(int)
        b = np.asarray(half.colorize(photo, render_size=SIZE)).astype(int)
        assert np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 8

    def test_memory_format_and_backend_are_passed_on(self) -> None:
        col = Colorizer(_tiny_generator(), device="cpu", memory_format="contiguous")
        assert col.network.memory_format == "contiguous" and col.network.backend == "torch"
        with pytest.raises(ValueError, match="backend must be one of torch, onnxruntime"):
            Colorizer(_tiny_generator(), device="cpu", backend="openvino")

    @pytest.mark.parametrize("precision", ["half", "float16", None, torch.float16])
    def test_unknown_precision(self, precision: Any) -> None:
        with pytest.raises(
            ValueError, match="precision must be one of auto, fp32, bf16, fp16, int8; got"
        ):
            Colorizer(_tiny_generator(), device="cpu", precision=precision)

    def test_cli_offers_the_same_choices(self) -> None:
        from pixcolor import cli

        assert cli._common.PRECISIONS == colorizer.PRECISIONS
        assert cli._common.BACKENDS == colorizer.BACKENDS
