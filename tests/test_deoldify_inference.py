"""DeOldifyGenerator through pixcolor's inference path: InferenceModel (batch norms folded,
either memory format; DeOldifyGenerator holds no spectral norms, its weights are DeOldify's
normalised ones) and the onnxruntime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pixcolor import Colorizer, InferenceModel
from test_deoldify import _tiny

CPU = torch.device("cpu")


def _norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize("decoder", ["wide", "deep"])
@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
def test_inference_model_folds_and_keeps_the_output(decoder: str, memory_format: str) -> None:
    gen = _tiny(decoder, render_size=64)
    torch.manual_seed(1)
    x = gen.network_input(torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        expected = gen(x)
    model = InferenceModel(gen, CPU, (3, 64, 64), precision="fp32", memory_format=memory_format)
    norms = _norms(gen)
    assert model.folded > 0 and model.memory_format == memory_format
    assert _norms(model.network) == norms - model.folded
    assert _norms(gen) == norms  # the generator itself is left as it was
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


def test_auto_chooses_a_layout_and_keeps_the_output() -> None:
    gen = _tiny(render_size=64)
    x = gen.network_input(torch.rand(1, 3, 64, 64))
    with torch.no_grad():
        expected = gen(x)
    model = InferenceModel(gen, CPU, (3, 64, 64))
    assert model.memory_format in ("channels_last", "contiguous")
    torch.testing.assert_close(model(x), expected, atol=0.02, rtol=0)  # auto's bound


def test_hints_are_refused_for_deoldify() -> None:
    colorizer = Colorizer(_tiny(render_size=64), device="cpu", precision="fp32")
    assert colorizer.network.hint_channels == 0
    with pytest.raises(ValueError, match="no hint channels"):
        colorizer.network(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))


@pytest.mark.slow  # the export takes ~40 s on 2 busy cores
def test_onnxruntime_backend_runs_deoldify(_private_pixcolor_cache: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs pixcolor[onnx]")
    pytest.importorskip("onnxscript", reason="exporting needs pixcolor[onnx]")
    gen = _tiny("deep", render_size=64)
    colorizer = Colorizer(gen, device="cpu", precision="auto", backend="onnxruntime")
    assert (colorizer.network.backend, colorizer.precision) == ("onnxruntime", "fp32")
    assert len(list((_private_pixcolor_cache / "onnx").glob("*.onnx"))) == 1
    torch.manual_seed(2)
    x = gen.network_input(torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        expected = gen(x)
    torch.testing.assert_close(colorizer.network(x), expected, atol=1e-4, rtol=1e-4)
    gray = np.random.default_rng(0).integers(0, 256, (40, 56), dtype=np.uint8)
    reference = Colorizer(gen, device="cpu", precision="fp32").colorize(gray)
    out = colorizer.colorize(gray)
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1
