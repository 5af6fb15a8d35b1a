"""Helpers shared by several test files (importable thanks to conftest.py)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomise_batchnorm(model: nn.Module, conv_bias: bool = False) -> nn.Module:
    """Move every batch norm's statistics and affine parameters (and, with ``conv_bias``,
    every conv bias) off their defaults, so a lost, stale or mis-mapped tensor changes the
    output. Uses the global RNG: seed before calling."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
        elif conv_bias and isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.normal_(0.0, 0.05)
    return model
