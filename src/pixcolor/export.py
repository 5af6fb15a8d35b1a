"""Export a :class:`~pixcolor.UNetGenerator` to ONNX.

The exported graph is the network alone: input ``"L"``, the *normalised* lightness
``(L - l_center) / l_scale`` of shape ``(B, in_channels, H, W)`` in the model's dtype
(float32 unless converted); output ``"ab"``, the *normalised* chroma ``ab / ab_scale`` of
shape ``(B, out_channels, H, W)``. Colour conversion and resizing are left to the caller;
the constants are stored in the file's ``metadata_props`` (``l_center``, ``l_scale``,
``ab_scale``, ``stride``, ``pixcolor_version`` and the full ``pixcolor_config`` as JSON),
e.g. with onnxruntime::

    session = onnxruntime.InferenceSession("colorizer.onnx")
    meta = session.get_modelmeta().custom_metadata_map
    ab = session.run(["ab"], {"L": (L - float(meta["l_center"])) / float(meta["l_scale"])})[0]
    ab *= float(meta["ab_scale"])

H and W must be multiples of ``stride`` (32 for ResNet encoders).

A hint model (``hint_channels=3``) gets a second input, ``"hints"``: the hint planes
``(B, 3, H, W)`` at the same size (hint ``a / ab_scale``, ``b / ab_scale``, mask; zeros for
no hints), and ``hint_channels`` is stored in the metadata too.

Uses the ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``, the
default since PyTorch 2.9), which needs the ``onnx`` and ``onnxscript`` packages
(``pip install pixcolor[onnx]``); it runs offline.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import time
import warnings
from pathlib import Path

import torch

from pixcolor._atomic import publish, temporary_file
from pixcolor.models import UNetGenerator

__all__ = ["export_onnx"]

logger = logging.getLogger(__name__)

INPUT_NAME = "L"
HINTS_NAME = "hints"
OUTPUT_NAME = "ab"


def export_onnx(
    model: UNetGenerator,
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    dynamic: bool = True,
    input_size: tuple[int, int] = (256, 256),
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a self-contained ONNX file (weights inside, one file).

    The model is exported in eval mode (dropout off, BatchNorm running statistics) on its
    own device and dtype; its training mode is restored afterwards. A hint model's graph
    takes the hint planes as a second input, ``"hints"`` (see the module docstring).

    Args:
        model: The generator.
        path: File to write, usually ``*.onnx``.
        opset: ONNX opset. The exporter builds opset 18 and converts the graph to the one
            asked for (with PyTorch 2.14, 16 and up work). ``None``: 17 (readable by
            onnxruntime >= 1.12), except for hint models with ``hint_spread``, whose
            edge-replicating ``Pad`` has no opset-17 form: 18 (onnxruntime >= 1.14).
        dynamic: Dynamic batch, height and width (named ``batch``, ``{s}*height`` and
            ``{s}*width``, ``s`` the stride). If false, the graph is fixed to batch 1 and
            ``input_size``.
        input_size: ``(H, W)`` of the example input; the only accepted size when
            ``dynamic`` is false. Multiples of ``model.stride``.
        overwrite: Replace an existing file.

    Returns:
        ``path``.

    Raises:
        TypeError: If ``model`` is not a :class:`~pixcolor.UNetGenerator`.
        ValueError: If ``input_size`` is not a pair of positive multiples of the stride, or
            the graph cannot be converted to ``opset``.
        FileExistsError: If ``path`` exists and ``overwrite`` is false.
        ImportError: If ``onnx`` or ``onnxscript`` is not installed.

    Example:
        >>> import tempfile, pixcolor
        >>> from pixcolor.export import export_onnx
        >>> gen = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
        ...     export_onnx(gen, f"{tmp}/colorizer.onnx").name
        'colorizer.onnx'
    """
    if not isinstance(model, UNetGenerator):
        raise TypeError(f"model must be a pixcolor.UNetGenerator, got {type(model).__name__}")
    path = Path(path)
    stride = model.stride
    height, width = _check_input_size(input_size, stride)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    _require("onnx", "onnxscript")
    if opset is None:
        spreads = model.config.hint_spread or model.config.hint_residual
        opset = 18 if model.config.hint_channels and spreads else 17

    parameter = next(model.parameters())
    dynamic_shapes = None
    if dynamic:
        # A side of exactly one stride (or a batch of 1) would be specialised by torch.export.
        height, width = max(height, 2 * stride), max(width, 2 * stride)
        dim = torch.export.Dim
        sizes = {0: dim("batch"), 2: stride * dim("height"), 3: stride * dim("width")}
        dynamic_shapes = {"lightness": sizes}
        if model.config.hint_channels:
            dynamic_shapes["hints"] = sizes
    batch = 2 if dynamic else 1
    like = {"device": parameter.device, "dtype": parameter.dtype}
    examples: tuple[torch.Tensor, ...] = (
        torch.zeros(batch, model.config.in_channels, height, width, **like),
    )
    input_names = [INPUT_NAME]
    if model.config.hint_channels:
        examples += (torch.zeros(batch, model.config.hint_channels, height, width, **like),)
        input_names.append(HINTS_NAME)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Both inputs of a hint model share their dynamic axes; the exporter says so per axis.
            warnings.filterwarnings(
                "ignore", message=r".*will not be used, since it shares the same"
            )
            program = torch.onnx.export(
                model,
                examples,
                input_names=input_names,
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
            )
    finally:
        model.train(was_training)
    assert program is not None  # dynamo=True without a file always returns the program
    built = program.model.opset_imports.get("")
    if built != opset:
        raise ValueError(
            f"the exporter could not convert the graph to opset {opset} (it stays at {built}); "
            "pick a newer opset"
        )
    hints = (
        f", input '{HINTS_NAME}' = (hint a / ab_scale, hint b / ab_scale, mask), 0 without hints"
        if model.config.hint_channels
        else ""
    )
    program.model.doc_string = (
        f"pixcolor {type(model).__name__}: input '{INPUT_NAME}' = (L - l_center) / l_scale{hints}, "
        f"output '{OUTPUT_NAME}' = ab / ab_scale; see metadata_props for the constants."
    )
    program.model.metadata_props.update(_metadata(model))
    _save_atomically(program, path, overwrite)
    logger.info(
        "exported %s to %s (opset %d, %s) in %.1f s",
        type(model).__name__,
        path,
        opset,
        "dynamic batch/height/width" if dynamic else f"fixed 1x{height}x{width}",
        time.perf_counter() - start,
    )
    return path


def _metadata(model: UNetGenerator) -> dict[str, str]:
    """String metadata for the ONNX file: normalisation constants, stride, version, config."""
    from pixcolor import __version__

    cfg = model.config
    return {
        "l_center": repr(float(cfg.l_center)),
        "l_scale": repr(float(cfg.l_scale)),
        "ab_scale": repr(float(cfg.ab_scale)),
        "stride": str(model.stride),
        "hint_channels": str(cfg.hint_channels),
        "pixcolor_version": __version__,
        "pixcolor_config": json.dumps(dataclasses.asdict(cfg), sort_keys=True),
    }


def _check_input_size(input_size: tuple[int, int], stride: int) -> tuple[int, int]:
    ok = (
        isinstance(input_size, (tuple, list))
        and len(input_size) == 2
        and all(isinstance(s, int) and s > 0 and s % stride == 0 for s in input_size)
    )
    if not ok:
        raise ValueError(
            f"input_size must be (height, width), positive multiples of {stride} (the model's "
            f"stride), got {input_size!r}"
        )
    return input_size[0], input_size[1]


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"ONNX export needs {' and '.join(missing)}: pip install 'pixcolor[onnx]' "
            "(or pip install onnx onnxscript)"
        )


def _save_atomically(program: torch.onnx.ONNXProgram, path: Path, overwrite: bool) -> None:
    """Save to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path)
    try:
        program.save(str(tmp), external_data=False)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
