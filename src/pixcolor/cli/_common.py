"""What several subcommands share: help texts and small helpers."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = [
    "BACKENDS", "BACKEND_HELP", "CALIBRATION_HELP", "MODEL_HELP", "PRECISIONS", "PRECISION_HELP",
    "RENDER_SIZE_HELP", "TORCH_PRECISION_HELP", "add_network_options", "colorizer_from_args", "finite",
    "non_negative_int", "non_negative_number", "positive_int",
]  # fmt: skip

RENDER_SIZE_HELP = (
    "side of the square the network sees, a multiple of the model's stride (default: the "
    "model's own, from its config: 128 for the bundled model, 256 for coco, 560 for "
    "deoldify)"
)
MODEL_HELP = (
    "model directory, preset name (bundled, coco, deoldify, ...: see pixcolor models) or "
    "Hub repo id"
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")  # pixcolor.colorizer.PRECISIONS
TORCH_PRECISION_HELP = (
    "the network's arithmetic, weights cast once: auto (the fastest this device runs "
    "natively, measured at load), fp32, bf16 or fp16"
)
PRECISION_HELP = f"{TORCH_PRECISION_HELP}, or int8 (--backend onnxruntime and --calibration)"
BACKENDS = ("torch", "onnxruntime")  # pixcolor.colorizer.BACKENDS
BACKEND_HELP = (
    "what runs the network: torch (default) or onnxruntime (CPU; pip install 'pixcolor[onnx]'; "
    "the first run exports the model, cached under ~/.cache/pixcolor; a hint model's photos "
    "with --hints run on torch)"
)
CALIBRATION_HELP = (
    "for --precision int8: a folder of photos like the ones to colorize (the first 64 "
    "calibrate the int8 ranges)"
)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error names the value otherwise)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _integer(text, 0)


def non_negative_number(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value


def finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null (a perfect PSNR is inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def add_network_options(parser: Any) -> None:
    """``--device``, ``--precision``, ``--backend`` and ``--calibration``."""
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    parser.add_argument("--calibration", metavar="DIR", help=CALIBRATION_HELP)


def colorizer_from_args(model: str | None, args: Any) -> Any:
    """The :class:`pixcolor.Colorizer` that :func:`add_network_options`' options ask for."""
    from pixcolor.colorizer import Colorizer

    return Colorizer.from_pretrained(
        model,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        calibration=args.calibration,
    )
