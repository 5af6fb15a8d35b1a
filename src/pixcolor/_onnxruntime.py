"""The ``onnxruntime`` backend of :class:`pixcolor._inference.InferenceModel`.

The network is exported once to ONNX (``torch.onnx.export``, dynamic batch, height and
width) and, for ``precision="int8"``, statically quantised with ONNX Runtime's
``quantize_static`` (QDQ format, int8 weights per output channel, uint8 activations whose
ranges come from running the calibration inputs). Both files are cached under
:func:`cache_dir`, named by a hash of the network's class, configuration, weights and
graph variant (and of the calibration inputs), so later loads skip the export (seconds to
tens of seconds) and the calibration.

A hint model (``config.hint_channels > 0``) is exported as its *no-hint graph*
(``without_hints=True``): one input, the lightness, and the network run on it beside
all-zero hint planes, which is exactly what the model computes without hints (its
edge-aware spreads are zero then and are skipped). That graph has no spread operations,
exports in seconds like a plain U-Net, and is cached under its own name
(``<hash>-without-hints.onnx``), never shared with a plain model's export or with an
export that takes hint planes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixcolor._align import align_channels
from pixcolor._atomic import write_atomically

__all__ = ["OnnxRuntimeModel", "cache_dir"]

logger = logging.getLogger(__name__)

_OPSET = 18  # what the exporter builds: no version conversion
_INPUT, _OUTPUT = "input", "output"
_WITHOUT_HINTS = "without-hints"  # the graph variant (and file name suffix) of a hint model
_ALIGNED = "aligned"  # the int8 graph: full-resolution channels padded (pixcolor._align)


def cache_dir() -> Path:
    """Where pixcolor keeps files it derives from models (:func:`pixcolor.presets.cache_root`)."""
    from pixcolor.presets import cache_root

    return cache_root()


class OnnxRuntimeModel:
    """``network`` run by an ONNX Runtime session on the CPU.

    Args:
        network: The generator (not changed).
        device: Must be the CPU.
        probe: An input of the usual shape, batch 1 (for the export).
        precision: ``"fp32"`` or ``"int8"``.
        calibration: For int8: network inputs from representative photos.
        prepare: Turns ``(network, probe)`` into the module to export (and a count),
            e.g. with batch norms folded and spectral norm baked into plain weights.
        without_hints: Export a hint model's no-hint graph, ``network(lightness)``: one
            input, called without hint planes (see the module docstring).
        align: Pad the network's full-resolution join to a multiple of 8 channels
            (:func:`pixcolor._align.align_channels`: the same function, faster int8
            kernels); ``None``: for int8 only (fp32 is not faster so).

    Raises:
        ImportError: If onnxruntime (or, for a first export, onnx / onnxscript) is missing.
        ValueError: If the device is not the CPU, or int8 has no calibration inputs.
    """

    def __init__(
        self,
        network: nn.Module,
        device: torch.device,
        probe: torch.Tensor,
        precision: str,
        calibration: Iterable[torch.Tensor] | None,
        prepare: Callable[[nn.Module, torch.Tensor], tuple[nn.Module, int]] | None = None,
        *,
        without_hints: bool = False,
        align: bool | None = None,
    ) -> None:
        if device.type != "cpu":  # checked first: no export for a wrong device
            raise ValueError(f"the onnxruntime backend runs on the CPU, got device {str(device)!r}")
        _require("onnxruntime")
        import onnxruntime

        folder = cache_dir() / "onnx"
        folder.mkdir(parents=True, exist_ok=True)
        aligned = precision == "int8" if align is None else align
        variant = "-".join(
            ([_WITHOUT_HINTS] if without_hints else []) + ([_ALIGNED] if aligned else [])
        )
        key = _fingerprint(network, variant)
        path = folder / f"{key}{'-' + variant if variant else ''}.onnx"
        if not path.exists():
            module = prepare(network, probe)[0] if prepare is not None else network
            if aligned:
                if module is network:
                    module = copy.deepcopy(network)
                added = align_channels(module.eval(), probe)
                logger.debug("exported graph: %d zero channels added at full resolution", added)
            _export(_NoHints(module) if without_hints else module, probe, path)
        if precision == "int8":
            inputs = [t.detach().float().cpu() for t in (calibration or ())]
            if not inputs:
                raise ValueError(
                    "precision 'int8' needs calibration inputs: photos like the ones you will "
                    "colorize (a few dozen are enough), e.g. Colorizer(..., calibration='photos/')"
                )
            quantized = folder / f"{path.stem}-int8-{_hash_tensors(inputs)}.onnx"
            if not quantized.exists():
                _quantize(path, quantized, inputs)
            path = quantized
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # Idle threads sleep: they would take the cores from the decoding, encoding and
        # full-resolution threads around each call (no slower here when they do).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        if hints is not None:  # InferenceModel runs calls with hints on torch
            raise ValueError("the onnxruntime backend does not take hint planes")
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        (out,) = self.session.run([_OUTPUT], {_INPUT: array})
        return torch.from_numpy(out)


class _NoHints(nn.Module):
    """A hint model called without hints: ``forward(lightness)`` is ``network(lightness)``
    (the network beside all-zero hint planes), one input to export."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.stride = int(getattr(network, "stride", 1))  # for the export's dynamic sizes

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.network(lightness)


def _export(network: nn.Module, probe: torch.Tensor, path: Path) -> None:
    """Export an fp32 CPU copy of ``network`` with dynamic batch, height and width."""
    _require("onnx", "onnxscript")

    model = copy.deepcopy(network).to("cpu", torch.float32).eval()
    stride = int(getattr(network, "stride", 1))
    height, width = (max(s, 2 * stride) for s in probe.shape[-2:])
    example = torch.zeros(2, probe.shape[1], height, width)  # sizes 1 would be specialised
    dim = torch.export.Dim
    shapes = {0: dim("batch"), 2: stride * dim("height"), 3: stride * dim("width")}
    arg = next(iter(_forward_arguments(model)))
    start = time.perf_counter()
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[_INPUT],
        output_names=[_OUTPUT],
        opset_version=_OPSET,
        dynamo=True,
        dynamic_shapes={arg: shapes},
        external_data=False,
        verbose=False,
    )
    assert program is not None
    write_atomically(path, lambda tmp: program.save(str(tmp), external_data=False))
    logger.info("exported the network to %s in %.1f s", path, time.perf_counter() - start)


def _quantize(source: Path, target: Path, inputs: list[torch.Tensor]) -> None:
    """Static int8 quantisation of ``source`` calibrated on ``inputs``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._items, None)
            return None if item is None else {_INPUT: np.ascontiguousarray(item.numpy())}

    start = time.perf_counter()
    prepared = target.with_suffix(".pre.onnx")
    quiet = _QuietAxisWarning()
    logging.getLogger().addFilter(quiet)  # the quantiser warns on the root logger
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)

        def write(tmp: Path) -> None:
            quantize_static(
                str(prepared),
                str(tmp),
                _Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )

        write_atomically(target, write)
    finally:
        logging.getLogger().removeFilter(quiet)
        prepared.unlink(missing_ok=True)
    logger.info(
        "quantised the network to int8 on %d calibration inputs in %.1f s",
        len(inputs),
        time.perf_counter() - start,
    )


class _QuietAxisWarning(logging.Filter):
    """Drops ONNX Runtime's quantiser warning ``Axis 1 is out-of-range for weight ...``:
    the 1-D scale of a batch norm left unfolded (after a ReLU, as in a ResNet U-Net's
    decoder) is quantised with one scale for all channels, which is intended here (per
    channel measured 2 % slower on a ResNet-18 U-Net for +0.0005 dB)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "is out-of-range for weight" in record.getMessage():
            logger.debug(
                "onnxruntime quantiser: %s (one scale for the tensor)", record.getMessage()
            )
            return False
        return True


def _fingerprint(network: nn.Module, variant: str = "") -> str:
    """A hash of the network's class, configuration, weights and buffers, of the graph
    ``variant`` (``""``: the network as called with one input; :data:`_WITHOUT_HINTS`) and
    of the torch version."""
    name = f"{type(network).__qualname__} {variant} {torch.__version__} {_OPSET}"
    digest = hashlib.sha256(name.encode())
    config = getattr(network, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        digest.update(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    for name, tensor in network.state_dict().items():
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()[:24]


def _hash_tensors(tensors: list[torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()[:16]


def _bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def _forward_arguments(model: nn.Module) -> Any:
    import inspect

    return inspect.signature(model.forward).parameters


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"the onnxruntime backend needs {' and '.join(missing)}: pip install 'pixcolor[onnx]'"
        )
