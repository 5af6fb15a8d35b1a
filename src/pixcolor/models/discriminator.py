"""PatchGAN discriminator (Isola et al. 2017): a grid of real/fake logits over patches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pixcolor.hub import PretrainedMixin
from pixcolor.models.layers import check_norm, init_normal_, make_norm

__all__ = ["PatchDiscriminator", "PatchDiscriminatorConfig"]


@dataclass
class PatchDiscriminatorConfig:
    """Architecture of a :class:`PatchDiscriminator`; saved as ``config.json``.

    Args:
        in_channels: Channels of the judged image (3: L + ab).
        base_channels: Width of the first layer (``ndf``).
        n_layers: Stride-2 layers after the first; 3 gives the 70x70 PatchGAN.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
    """

    in_channels: int = 3
    base_channels: int = 64
    n_layers: int = 3
    norm: str = "batch"

    def __post_init__(self) -> None:
        for name in ("in_channels", "base_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_layers, int) or self.n_layers < 0:
            raise ValueError(f"n_layers must be a non-negative integer, got {self.n_layers!r}")
        check_norm(self.norm)


class PatchDiscriminator(PretrainedMixin, nn.Module):
    """The pix2pix PatchGAN: ``(B, 3, H, W)`` -> ``(B, 1, H', W')`` logits.

    ``n_layers=3`` is the 70x70 PatchGAN: each logit sees a 70x70 patch
    (:attr:`receptive_field`), and a 256x256 input gives 30x30 logits. Layers are
    ``conv 4x4`` with strides ``2, 2, ..., 1, 1``, LeakyReLU(0.2), the norm on all but the
    first and last, widths doubling up to ``8 * base_channels``, N(0, 0.02) init.

    Args:
        **kwargs: Fields of :class:`PatchDiscriminatorConfig`.

    Example:
        >>> disc = PatchDiscriminator(n_layers=3)
        >>> disc.receptive_field
        70
        >>> disc(torch.zeros(1, 3, 256, 256)).shape
        torch.Size([1, 1, 30, 30])
    """

    config_class = PatchDiscriminatorConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.config = PatchDiscriminatorConfig(**kwargs)
        cfg = self.config
        ndf, n = cfg.base_channels, cfg.n_layers
        bias = cfg.norm != "batch"
        layers: list[nn.Module] = [
            nn.Conv2d(cfg.in_channels, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        prev = ndf
        for i in range(1, n + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n else 1
            layers += [
                nn.Conv2d(prev, out, 4, stride, 1, bias=bias),
                make_norm(cfg.norm, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            prev = out
        layers.append(nn.Conv2d(prev, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input patch that one output logit sees."""
        field, jump = 1, 1
        for m in self.model:
            if isinstance(m, nn.Conv2d):
                field += (m.kernel_size[0] - 1) * jump
                jump *= m.stride[0]
        return field

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Logit grid size for an input of ``height`` x ``width`` (may be < 1 if too small)."""
        for m in self.model:
            if isinstance(m, nn.Conv2d):
                k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
                height = (height + 2 * p - k) // s + 1
                width = (width + 2 * p - k) // s + 1
        return height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits per patch.

        Args:
            x: ``(B, in_channels, H, W)``: normalised L concatenated with normalised ab.

        Returns:
            ``(B, 1, H', W')`` logits, ``(H', W') = output_size(H, W)``.

        Raises:
            ValueError: If the channel count is wrong or the input is too small.
        """
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"input must have shape (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        out_h, out_w = self.output_size(x.shape[-2], x.shape[-1])
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"input of {x.shape[-2]}x{x.shape[-1]} is too small for n_layers="
                f"{self.config.n_layers}: it would give {out_h}x{out_w} logits"
            )
        return self.model(x)
