"""The onnxruntime backend: exported once, cached, the same output as torch; int8."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import randomise_batchnorm
from pixcolor import UNetGenerator, _onnxruntime
from pixcolor._inference import InferenceModel
from pixcolor.colorizer import Colorizer

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs pixcolor[onnx]")
pytest.importorskip("onnxscript", reason="exporting needs pixcolor[onnx]")

CPU = torch.device("cpu")
ASSETS = Path(__file__).parent / "assets"
pytestmark = pytest.mark.slow  # an export takes ~10 s


@pytest.fixture(scope="module", autouse=True)
def _private_pixcolor_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One private cache for the module (instead of conftest's one per test): the tests
    share the tiny generator's export."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXCOLOR_CACHE", str(folder))
        yield folder


def _generator() -> UNetGenerator:
    torch.manual_seed(0)
    gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
    return randomise_batchnorm(gen, conv_bias=True).eval()


def test_same_output_as_torch_any_batch_and_size_and_cached(
    _private_pixcolor_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache = _private_pixcolor_cache
    gen = _generator()
    model = InferenceModel(gen, CPU, (1, 32, 32), backend="onnxruntime")
    assert (model.backend, model.precision) == ("onnxruntime", "fp32")
    for shape in ((1, 1, 32, 32), (3, 1, 64, 96)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(model(x), gen(x), atol=1e-5, rtol=1e-4)
    files = list((_cache / "onnx").glob("*.onnx"))
    assert len(files) == 1

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(_onnxruntime, "_export", no_export)
    InferenceModel(_generator(), CPU, (1, 32, 32), backend="onnxruntime")  # from the cache
    other = _generator()
    with torch.no_grad():
        other.net.up[0][1].bias.add_(0.1)  # other weights: another file
    with pytest.raises(AssertionError, match="exported again"):
        InferenceModel(other, CPU, (1, 32, 32), backend="onnxruntime")


def test_int8_needs_calibration_and_stays_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # quantisation must leave no temporaries in the current folder
    gen = _generator()
    with pytest.raises(ValueError, match="precision 'int8' needs calibration inputs"):
        InferenceModel(gen, CPU, (1, 32, 32), backend="onnxruntime", precision="int8")
    photos = sorted(ASSETS.glob("*.jpg"))
    col = Colorizer(gen, "cpu", "int8", backend="onnxruntime", calibration=photos)
    full = Colorizer(gen, "cpu", "fp32")
    assert col.precision == "int8" and "backend='onnxruntime'" in repr(col)
    photo = Image.open(photos[0]).convert("RGB")
    a = np.asarray(col.colorize(photo, render_size=32), dtype=int)
    b = np.asarray(full.colorize(photo, render_size=32), dtype=int)
    assert np.abs(a - b).mean() < 2.0
    assert list(tmp_path.iterdir()) == []


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _onnxruntime.importlib.util.find_spec
    monkeypatch.setattr(
        _onnxruntime.importlib.util,
        "find_spec",
        lambda name: None if name == "onnxruntime" else real(name),
    )
    with pytest.raises(ImportError, match=r"pip install 'pixcolor\[onnx\]'"):
        InferenceModel(_generator(), CPU, (1, 32, 32), backend="onnxruntime")


# --- hint models: calls without hints on ONNX Runtime, calls with hints on torch -------------


def _hint_generator() -> UNetGenerator:
    torch.manual_seed(0)
    gen = UNetGenerator(
        encoder="pix2pix", base_channels=8, num_downs=5, hint_channels=3, hint_residual=True
    )
    return randomise_batchnorm(gen, conv_bias=True).eval()


def _planes(batch: int, height: int = 32, width: int = 64) -> torch.Tensor:
    """Hint planes with one hint per image (hint a, hint b, mask)."""
    planes = torch.zeros(batch, 3, height, width)
    planes[:, :, 5, 7] = torch.tensor([0.4, -0.3, 1.0])
    return planes


class _Calls:
    """Counts the calls of ONNX Runtime sessions and of torch-backend forwards."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.onnx = self.torch = 0
        ort_call, torch_call = _onnxruntime.OnnxRuntimeModel.__call__, InferenceModel._torch_forward

        def counted_ort(model: object, *args: object) -> torch.Tensor:
            self.onnx += 1
            return ort_call(model, *args)  # type: ignore[arg-type]

        def counted_torch(model: object, *args: object) -> torch.Tensor:
            self.torch += 1
            return torch_call(model, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(_onnxruntime.OnnxRuntimeModel, "__call__", counted_ort)
        monkeypatch.setattr(InferenceModel, "_torch_forward", counted_torch)

    def __repr__(self) -> str:
        return f"(onnx {self.onnx}, torch {self.torch})"

    def __eq__(self, other: object) -> bool:
        return (self.onnx, self.torch) == other


def test_hint_model_runs_calls_without_hints_on_onnxruntime(
    _private_pixcolor_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gen = _hint_generator()
    reference = copy.deepcopy(gen)
    calls = _Calls(monkeypatch)
    with caplog.at_level("INFO", logger="pixcolor._inference"):
        model = InferenceModel(gen, CPU, (1, 32, 32), backend="onnxruntime")
    assert (model.backend, model.precision, model.hint_channels) == ("onnxruntime", "fp32", 3)
    assert "calls with hints on torch fp32" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    with torch.no_grad():
        gen.net.up[0][1].bias.add_(0.1)  # the caller's model changes later: both halves keep
    x, planes = torch.rand(2, 1, 32, 64) * 2 - 1, _planes(2)
    with torch.no_grad():
        without, with_hints = reference(x), reference(x, planes)
    assert (with_hints - without).abs().max() > 1e-2  # the hints matter
    # Without hints: the no-hint graph on ONNX Runtime, within 1e-4 of torch (normalised ab).
    torch.testing.assert_close(model(x), without, atol=1e-4, rtol=0)
    assert calls == (1, 0) and model._hinted is None  # torch not even prepared
    torch.testing.assert_close(model(x, torch.zeros_like(planes)), without, atol=1e-4, rtol=0)
    assert calls == (2, 0)  # an all-zero mask is no hint, as for the torch model
    # With hints: torch fp32 (folded), prepared now (even in inference mode, as video runs),
    # within 1e-4 of the generator.
    with torch.inference_mode():
        hinted = model(x, planes)
    torch.testing.assert_close(hinted, with_hints, atol=1e-4, rtol=0)
    assert calls == (2, 1) and model._hinted is not None
    assert (model._hinted.backend, model._hinted.precision) == ("torch", "fp32")
    with pytest.raises(ValueError, match=r"hints must have shape \(2, 3, 32, 64\)"):
        model(x, planes[:, :2])
    # The no-hint graph has its own file, beside (never instead of) a plain model's export.
    assert len(list((_private_pixcolor_cache / "onnx").glob("*-without-hints.onnx"))) == 1
    keys = {_onnxruntime._fingerprint(reference, v) for v in ("", "without-hints")}
    assert len(keys) == 2


def test_hint_model_int8_without_hints_and_fp32_torch_with_hints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = _hint_generator()
    photos = sorted(ASSETS.glob("*.jpg"))
    calls = _Calls(monkeypatch)
    col = Colorizer(gen, "cpu", "int8", backend="onnxruntime", calibration=photos)
    full = Colorizer(gen, "cpu", "fp32")
    assert (col.precision, col.network.backend) == ("int8", "onnxruntime")
    files = sorted(p.name for p in (_onnxruntime.cache_dir() / "onnx").glob("*-int8-*.onnx"))
    assert any("-without-hints-aligned-int8-" in name for name in files)
    photo = Image.open(photos[0]).convert("RGB")
    hint = [(20, 30, "#ff0000", 8)]
    a = np.asarray(col.colorize(photo, render_size=32), dtype=int)
    b = np.asarray(full.colorize(photo, render_size=32), dtype=int)
    assert calls == (1, 1)
    assert 0 < np.abs(a - b).mean() < 2.0  # int8: close to fp32, not equal
    hinted = np.asarray(col.colorize(photo, render_size=32, hints=hint), dtype=int)
    expected = np.asarray(full.colorize(photo, render_size=32, hints=hint), dtype=int)
    assert calls == (1, 3)  # hinted calls on torch fp32: fp32's output
    assert np.abs(hinted - expected).max() <= 1
    assert np.abs(hinted - a).max() > 20  # the hint was followed
    empty = np.asarray(col.colorize(photo, render_size=32, hints=[]), dtype=int)
    assert calls == (2, 3) and np.array_equal(empty, a)  # no hint: ONNX Runtime


def test_hint_model_video_without_hints_on_onnxruntime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("av", reason="video needs pixcolor[video]")
    from test_video import make_clip

    col = Colorizer(_hint_generator(), "cpu", backend="onnxruntime")
    src = make_clip(tmp_path / "in.mp4", frames=6, size=(48, 32))
    calls = _Calls(monkeypatch)
    kwargs = {"temporal": "none", "progress": False, "render_size": 32, "batch_size": 3}
    col.colorize_video(src, tmp_path / "plain.mp4", **kwargs)
    assert calls == (2, 0)  # two batches of 3 frames, no hints: ONNX Runtime only
    col.colorize_video(src, tmp_path / "ranged.mp4", hints={0: [(24, 16, "#ff0000")], 3: None},
                       **kwargs)  # fmt: skip
    assert calls == (3, 1)  # frames 0-2 with hints on torch, 3-5 without on ONNX Runtime


def test_cli_colorizes_with_the_bundled_model_on_onnxruntime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.open(ASSETS / "gray_camera.jpg").convert("L").resize((48, 40)).save(src / "camera.png")
    out = tmp_path / "out"
    code = main(["colorize", str(src / "camera.png"), "-o", str(out), "--backend", "onnxruntime",
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    got = np.asarray(Image.open(out / "camera.png"), dtype=int)
    expected = Colorizer.from_pretrained(device="cpu", precision="fp32").colorize(
        src / "camera.png"
    )
    assert got.shape == (40, 48, 3)
    assert np.abs(got - np.asarray(expected, dtype=int)).max() <= 1
    assert len(list((_onnxruntime.cache_dir() / "onnx").glob("*-without-hints-aligned.onnx"))) >= 1


def test_int8_of_unfolded_batch_norms_is_quiet(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch norm after a ReLU (a ResNet U-Net's decoder) is not folded; ONNX Runtime's
    quantiser gives its 1-D scale one scale and warns on the root logger for each: that
    warning is not shown to the user (it is logged at debug level), other warnings are."""
    torch.manual_seed(0)
    gen = randomise_batchnorm(
        UNetGenerator(encoder="resnet18", base_channels=8, pretrained_encoder=False)
    ).eval()
    calibration = [torch.rand(2, 1, 64, 64) * 2 - 1 for _ in range(2)]

    def quantise(seed: int) -> list[str]:
        caplog.clear()
        with caplog.at_level("DEBUG"):
            InferenceModel(gen, CPU, (1, 64, 64), backend="onnxruntime", precision="int8",
                           calibration=[c + seed * 1e-3 for c in calibration])  # fmt: skip
        return [f"{r.levelname} {r.name} {r.getMessage()}" for r in caplog.records]

    messages = quantise(0)
    quieted = [m for m in messages if "out-of-range for weight" in m]
    assert quieted and all(m.startswith("DEBUG pixcolor._onnxruntime") for m in quieted)
    assert logging.getLogger().filters == []  # the filter is removed afterwards
    monkeypatch.setattr(_onnxruntime._QuietAxisWarning, "filter", lambda self, record: True)
    messages = quantise(1)  # without the filter: ORT's own warnings reach the root logger
    assert any(m.startswith("WARNING root Axis 1 is out-of-range") for m in messages)


def test_int8_graph_pads_the_full_resolution_join() -> None:
    """int8 runs the ResNet U-Net with its full-resolution join padded to a multiple of 8
    channels (pixcolor._align: ONNX Runtime's int8 convolutions are slow on others); fp32
    runs the network as trained. Both compute what torch does."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    torch.manual_seed(0)
    gen = UNetGenerator(encoder="resnet18", base_channels=12, pretrained_encoder=False)
    gen = randomise_batchnorm(gen, conv_bias=True).eval()
    merged = gen.net.head.in_channels
    assert merged % 8 != 0  # 18 decoder channels + L
    calibration = [torch.rand(2, 1, 64, 64) * 2 - 1 for _ in range(2)]
    shapes = {}
    for precision in ("fp32", "int8"):
        model = InferenceModel(gen, CPU, (1, 64, 64), backend="onnxruntime",
                               precision=precision, calibration=calibration)  # fmt: skip
        graph = onnx.load(str(model._forward.path)).graph
        shapes[precision] = {
            tuple(numpy_helper.to_array(t).shape[:2]) for t in graph.initializer if len(t.dims) == 4
        }
        x = torch.rand(2, 1, 64, 96) * 2 - 1
        with torch.no_grad():
            error = (model(x) - gen(x)).abs().mean()
        assert error < (1e-5 if precision == "fp32" else 0.05)
    aligned = merged + (-merged % 8)
    assert (merged, merged) in shapes["fp32"]
    assert (aligned, aligned) in shapes["int8"] and (2, aligned) in shapes["int8"]
    assert not any(merged in shape for shape in shapes["int8"])
