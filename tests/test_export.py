"""Tests for pixcolor.export: ONNX files that onnxruntime runs like the torch model.

The exports need onnx, onnxscript and onnxruntime (``pip install pixcolor[onnx]``) and are
skipped without them; each takes a few seconds, so each tiny model is exported once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import pixcolor
import pixcolor.export
from helpers import randomise_batchnorm
from pixcolor.export import export_onnx

# pix2pix is exported at opset 18 (the exporter's own, no conversion), resnet18 at the default 17.
OPSETS = {"pix2pix": 18, "resnet18": 17}
TINY = {
    "pix2pix": {"encoder": "pix2pix", "base_channels": 8, "num_downs": 5},
    # Another normalisation than the default, to check that the config's constants are stored.
    "resnet18": {"encoder": "resnet18", "base_channels": 8, "l_center": 0.0, "l_scale": 100.0},
}


@pytest.fixture(scope="module", params=sorted(TINY))
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pixcolor.UNetGenerator, Path]:
    """A tiny generator, left in training mode, exported over a stale file."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    torch.manual_seed(0)
    model = pixcolor.UNetGenerator(**TINY[request.param])
    randomise_batchnorm(model)  # an export in training mode would not match
    model.train()
    path = tmp_path_factory.mktemp("onnx") / "colorizer.onnx"
    path.write_bytes(b"stale")
    kwargs = {} if OPSETS[request.param] == 17 else {"opset": OPSETS[request.param]}
    assert export_onnx(model, path, overwrite=True, **kwargs) == path
    assert model.training, "export_onnx must restore the training mode"
    return model.eval(), path


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (3, 96, 160)])
def test_onnxruntime_matches_torch(
    exported: tuple[pixcolor.UNetGenerator, Path], batch: int, height: int, width: int
) -> None:
    import onnxruntime as ort

    model, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    lightness = torch.rand(batch, 1, height, width) * 2 - 1
    with torch.no_grad():
        expected = model(lightness)
    (ab,) = session.run(["ab"], {"L": lightness.numpy()})
    torch.testing.assert_close(torch.from_numpy(ab), expected, rtol=0, atol=1e-4)


def test_file_describes_its_interface(exported: tuple[pixcolor.UNetGenerator, Path]) -> None:
    import onnx
    import onnxruntime as ort

    model, path = exported
    proto = onnx.load(str(path))
    assert {o.domain: o.version for o in proto.opset_import}[""] == OPSETS[model.config.encoder]
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, out.name) == ("L", "ab")
    assert dims == ["batch", 1, "32*height", "32*width"]
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    cfg = model.config
    got = (float(meta["l_center"]), float(meta["l_scale"]), float(meta["ab_scale"]))
    assert got == (cfg.l_center, cfg.l_scale, cfg.ab_scale)
    assert meta["pixcolor_version"] == pixcolor.__version__
    assert meta["stride"] == "32"
    assert sorted(p.name for p in path.parent.iterdir()) == ["colorizer.onnx"]  # no temp files


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"mine")
    gen = pixcolor.UNetGenerator(**TINY["pix2pix"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(gen, path)
    assert path.read_bytes() == b"mine"


@pytest.mark.parametrize("size", [(250, 256), (256,), (0, 32), (32.0, 32)])
def test_bad_input_size_is_refused(tmp_path: Path, size: tuple[int, ...]) -> None:
    gen = pixcolor.UNetGenerator(**TINY["pix2pix"])
    with pytest.raises(ValueError, match="positive multiples of 32"):
        export_onnx(gen, tmp_path / "m.onnx", input_size=size)  # type: ignore[arg-type]
    assert not (tmp_path / "m.onnx").exists()


def test_only_generators_are_exported(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="PatchDiscriminator"):
        export_onnx(pixcolor.PatchDiscriminator(), tmp_path / "d.onnx")  # type: ignore[arg-type]


def test_missing_exporter_dependency_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = pixcolor.export.importlib.util.find_spec
    monkeypatch.setattr(
        pixcolor.export.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a),
    )
    gen = pixcolor.UNetGenerator(**TINY["pix2pix"])
    with pytest.raises(ImportError, match=r"needs onnxscript: pip install 'pixcolor\[onnx\]'"):
        export_onnx(gen, tmp_path / "m.onnx")


def test_hint_model_has_a_hints_input(tmp_path: Path) -> None:
    """A hint model exports with a second input, 'hints', that onnxruntime honours."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = pixcolor.UNetGenerator(**TINY["resnet18"], hint_channels=3)
    randomise_batchnorm(model)
    path = export_onnx(model.eval(), tmp_path / "hints.onnx")
    proto = onnx.load(str(path))
    names = [i.name for i in proto.graph.input]
    assert names == ["L", "hints"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[1].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "32*height", "32*width"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["hint_channels"] == "3"
    _assert_hints_honoured(model, session, (64, 96))


@pytest.mark.slow
def test_spreading_hint_model_exports(tmp_path: Path) -> None:
    """The edge-aware spread inside a hint model (hint_spread, hint_residual) runs in ONNX.

    Exported with a fixed size: its 32 sweeps per pyramid level take torch.export about
    40 s with fixed shapes and two minutes with dynamic ones on 2 cores (same graph).
    """
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = pixcolor.UNetGenerator(
        **TINY["resnet18"], hint_channels=3, hint_spread=True, hint_residual=True
    )
    randomise_batchnorm(model)
    path = export_onnx(model.eval(), tmp_path / "spread.onnx", dynamic=False, input_size=(64, 96))
    # Its replicate padding has no opset-17 form, so the default is the exporter's own 18.
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 18
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _assert_hints_honoured(model, session, (64, 96), batch=1)


def _assert_hints_honoured(
    model: pixcolor.UNetGenerator, session: object, size: tuple[int, int], batch: int = 2
) -> None:
    """ONNX Runtime gives the torch model's ab with hints and with empty hint planes."""
    lightness = torch.rand(batch, 1, *size) * 2 - 1
    hints = torch.zeros(batch, 3, *size)
    hints[0, :, 5, 7] = torch.tensor([0.5, -0.4, 1.0])
    hints[-1, :, 40:44, 60:64] = torch.tensor([-0.3, 0.2, 1.0]).view(3, 1, 1)
    for planes in (hints, torch.zeros_like(hints)):
        with torch.no_grad():
            expected = model(lightness, planes)
        (ab,) = session.run(["ab"], {"L": lightness.numpy(), "hints": planes.numpy()})
        torch.testing.assert_close(torch.from_numpy(ab), expected, rtol=0, atol=1e-4)
