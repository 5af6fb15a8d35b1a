"""The onnxruntime backend: exported once, cached, the same output as torch; int8."""

from __future__ import annotations

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
