"""What several subcommands share: help texts and small helpers."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PRECISIONS", "PRECISION_HELP", "RENDER_SIZE_HELP", "finite"]

RENDER_SIZE_HELP = (
    "resolution the network sees (default: the model's, from its config; 256 for most)"
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # pixcolor.colorizer.PRECISIONS
PRECISION_HELP = (
    "the network's arithmetic: auto (bf16 on CPUs with native bfloat16, else fp32), fp32, "
    "bf16 or fp16"
)


def finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null (a perfect PSNR is inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
