"""Where and how a :class:`~pixcolor.Trainer` runs: device, process group, mixed precision,
and the small modules and switches its loop needs around the networks."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pixcolor._devices import parse_device

__all__ = ["DiscriminatorPair", "autocast", "dist_info", "pick_device", "set_requires_grad"]


def pick_device(device: str | None) -> torch.device:
    """The training device: ``device`` if given (checked), else CUDA when available,
    else the CPU. Under ``torchrun``, a bare ``"cuda"`` becomes ``cuda:$LOCAL_RANK``.

    Raises:
        ValueError: If ``device`` is not a device name or not available here.
    """
    if device is not None:
        dev = parse_device(device)
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
    else:
        dev = torch.device("cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dev


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for ``"bf16"`` / ``"fp16"`` on CUDA; nothing otherwise."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def set_requires_grad(module: nn.Module | None, flag: bool) -> None:
    """Switch gradients of all of ``module``'s parameters on or off (``None``: nothing)."""
    if module is not None:
        for p in module.parameters():
            p.requires_grad_(flag)


class DiscriminatorPair(nn.Module):
    """Runs the discriminator on the real and the fake batch in one module call, so that
    DistributedDataParallel sees one forward and one backward per step."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.discriminator(real), self.discriminator(fake)
