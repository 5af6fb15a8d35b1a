"""Building blocks shared by the generator and the discriminator.

Norm layers are chosen by name (``"batch"``, ``"instance"``, ``"none"``) so that every
constructor argument stays JSON-friendly and ``config.json`` round-trips.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NORMS", "ConvNormAct", "icnr_", "init_normal_", "make_norm"]

NORMS = ("batch", "instance", "none")


def make_norm(norm: str, channels: int) -> nn.Module:
    """Return the norm layer called ``norm`` for ``channels`` channels.

    Args:
        norm: One of ``"batch"``, ``"instance"``, ``"none"``.
        channels: Number of channels it normalises.

    Raises:
        ValueError: If ``norm`` is not one of :data:`NORMS`.
    """
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def check_norm(norm: str, name: str = "norm") -> None:
    """Raise ``ValueError`` unless ``norm`` is a known norm name."""
    if norm not in NORMS:
        raise ValueError(f"{name} must be one of {NORMS}, got {norm!r}")


class ConvNormAct(nn.Sequential):
    """``Conv2d -> norm -> activation``, laid out like fastai's ``ConvLayer``.

    The convolution is always index ``0`` so that state-dict keys match fastai's
    (``conv.0.weight``); with ``norm="none"`` the convolution carries a bias.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size; padding keeps the spatial size at stride 1.
        stride: Convolution stride.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        act: ``"relu"``, ``"leaky_relu"`` (slope 0.2) or ``"none"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        check_norm(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                bias=norm != "batch",
            )
        ]
        if norm != "none":
            layers.append(make_norm(norm, out_channels))
        if act != "none":
            layers.append(make_act(act))
        super().__init__(*layers)


def make_act(act: str) -> nn.Module:
    """Activation by name: ``"relu"``, ``"leaky_relu"`` (slope 0.2) or ``"tanh"``."""
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if act == "tanh":
        return nn.Tanh()
    raise ValueError(f"act must be 'relu', 'leaky_relu' or 'tanh', got {act!r}")


@torch.no_grad()
def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017) of a conv feeding ``PixelShuffle(scale)``.

    Every group of ``scale**2`` output channels that the shuffle interleaves into one
    output channel starts with the same kernel, so the upsampled output starts as a
    nearest-neighbour upsampling and has no checkerboard pattern.

    Args:
        weight: Conv weight of shape ``(C * scale**2, C_in, k, k)``; filled in place.
        scale: Pixel-shuffle factor.

    Returns:
        ``weight``.
    """
    out_channels, in_channels, kh, kw = weight.shape
    if out_channels % (scale**2):
        raise ValueError(
            f"ICNR needs output channels divisible by scale**2={scale**2}, got {out_channels}"
        )
    base = torch.empty(out_channels // scale**2, in_channels, kh, kw)
    nn.init.kaiming_normal_(base)
    weight.copy_(base.repeat_interleave(scale**2, dim=0))
    return weight


@torch.no_grad()
def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix initialisation: conv weights ~ N(0, std), norm weights ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
