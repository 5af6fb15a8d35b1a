"""U-Net generators: the pix2pix U-Net and a ResNet-encoder U-Net (fastai ``DynamicUnet``).

Both map the normalised L channel ``(B, 1, H, W)`` to normalised ab ``(B, 2, H, W)``. A
*hint model* (``hint_channels=3``) also takes user colour hints as three planes beside L
(see :class:`UNetConfig`); with none it colorizes automatically.

* ``encoder="pix2pix"``: the 8-level U-Net of Isola et al. (2017): 4x4 stride-2
  convolutions down to a 1x1 bottleneck at 256x256, transposed convolutions up,
  dropout in the three decoder blocks after the bottleneck, N(0, 0.02) init.
* ``encoder="resnet18"`` / ``"resnet34"``: a torchvision ResNet adapted to one input
  channel, with the decoder of fastai's ``DynamicUnet`` reproduced layer for layer
  (pixel-shuffle upsampling with ICNR init, batch-normed skips, a final dense merge with
  the input and a residual block), so fastai checkpoints map onto it one-to-one.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from pixcolor import lab
from pixcolor.hub import PretrainedMixin
from pixcolor.models.hint_spread import SPREAD_CHANNELS, pyramid_spread
from pixcolor.models.layers import ConvNormAct, check_norm, icnr_, init_normal_, make_act, make_norm

__all__ = ["ENCODERS", "HINT_CHANNELS", "UNetConfig", "UNetGenerator"]

logger = logging.getLogger(__name__)

ENCODERS = ("pix2pix", "resnet18", "resnet34")
HINT_CHANNELS = (0, 3)
"""Accepted ``UNetConfig.hint_channels``: 0 (automatic model) or 3 (hint ab pair + mask)."""
_RESNET_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
_OUTPUT_ACTIVATIONS = ("tanh", "none")


@dataclass
class UNetConfig:
    """Architecture and normalisation of a :class:`UNetGenerator`; saved as ``config.json``.

    Args:
        encoder: ``"pix2pix"``, ``"resnet18"`` or ``"resnet34"``.
        in_channels: Input channels (1: L).
        out_channels: Output channels (2: ab).
        base_channels: Width of the first level (pix2pix ``ngf``; ResNet stem width, 64 in
            torchvision). Deeper levels are multiples of it.
        num_downs: Number of stride-2 levels of the pix2pix U-Net (8 in the paper: a 1x1
            bottleneck at 256x256). ResNet encoders always have 5.
        norm: Norm of the decoder (and of the pix2pix encoder): ``"batch"``, ``"instance"``
            or ``"none"``. ``None`` picks the published default: ``"batch"`` for pix2pix,
            ``"none"`` for the ResNet decoder (as fastai's ``DynamicUnet``).
        dropout: Dropout probability in the decoder blocks next to the bottleneck (pix2pix:
            0.5 in the three ``8 * base_channels`` blocks; ResNet: the first three decoder
            blocks). ``None`` picks 0.5 for pix2pix and 0.0 for ResNet.
        output_activation: ``"tanh"`` (default) or ``"none"`` (fastai's linear head).
        l_center: ``L`` is fed to the network as ``(L - l_center) / l_scale``.
        l_scale: See ``l_center``.
        ab_scale: The network predicts ``ab / ab_scale``.
        render_size: Side of the square the network sees by default at inference
            (:meth:`pixcolor.Colorizer.colorize`): the scale it was trained for. A positive
            multiple of :attr:`stride`; ``None`` picks 256 (or the stride, if larger).
        hint_channels: 0 for an automatic model, or 3 for a hint model, whose input has
            three more planes at the network's resolution: hint ``a / ab_scale``, hint
            ``b / ab_scale`` (normalised like the output) and a mask (1 where a hint is, 0
            elsewhere); all three are 0 where there is no hint. They join L at the first
            convolution (and, with a ResNet encoder, at the final full-resolution merge).
            Configs saved without this key load as 0.
        hint_spread: A hint model only: also feed the network a parameter-free, edge-aware
            spread of the hints over the whole image (guided by L) and their support at
            three scales (:func:`pixcolor.models.hint_spread.pyramid_spread`, five more
            planes computed from the hint planes inside :meth:`UNetGenerator.forward`), so
            that it learns corrections to a dense first guess instead of the spreading
            itself.
        hint_residual: A hint model only: the output is the network's ab, damped where
            hints are dense (times 1 minus the hints' support at the widest scale, cells of
            64 pixels), plus the same spread of the hints' residuals (each hint minus that
            ab at its pixel). It meets every hint at the network's resolution, follows the
            spread where hints are dense and the network where they are sparse. (Undamped,
            the network's own colour cost 0.4 / 0.7 dB at 10 / 30 hints against the spread
            alone on held-out photos, and gained 0.3 dB at 3.)
    """

    encoder: str = "resnet18"
    in_channels: int = 1
    out_channels: int = 2
    base_channels: int = 64
    num_downs: int = 8
    norm: str | None = None
    dropout: float | None = None
    output_activation: str = "tanh"
    l_center: float = 50.0
    l_scale: float = 50.0
    ab_scale: float = 110.0
    render_size: int | None = None
    hint_channels: int = 0
    hint_spread: bool = False
    hint_residual: bool = False

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        for name in ("in_channels", "out_channels", "base_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.encoder == "pix2pix" and not 2 <= self.num_downs <= 12:
            raise ValueError(f"num_downs must be between 2 and 12, got {self.num_downs!r}")
        if self.norm is None:
            self.norm = "batch" if self.encoder == "pix2pix" else "none"
        check_norm(self.norm)
        if self.dropout is None:
            self.dropout = 0.5 if self.encoder == "pix2pix" else 0.0
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {_OUTPUT_ACTIVATIONS}, "
                f"got {self.output_activation!r}"
            )
        if self.l_scale <= 0 or self.ab_scale <= 0:
            raise ValueError(
                f"l_scale and ab_scale must be positive, got {self.l_scale!r}, {self.ab_scale!r}"
            )
        if self.hint_channels not in HINT_CHANNELS or isinstance(self.hint_channels, bool):
            raise ValueError(
                f"hint_channels must be one of {HINT_CHANNELS} (0: automatic, 3: hint ab + "
                f"mask), got {self.hint_channels!r}"
            )
        if self.hint_channels and self.out_channels != 2:
            raise ValueError(
                f"a hint model predicts ab: out_channels must be 2, got {self.out_channels}"
            )
        for name in ("hint_spread", "hint_residual"):
            if getattr(self, name) and not self.hint_channels:
                raise ValueError(f"{name}=True needs a hint model (hint_channels=3)")
        if self.render_size is None:
            self.render_size = max(256, self.stride)
        if (
            not isinstance(self.render_size, int)
            or self.render_size <= 0
            or self.render_size % self.stride
        ):
            raise ValueError(
                f"render_size must be a positive multiple of the stride {self.stride}, "
                f"got {self.render_size!r}"
            )

    @property
    def stride(self) -> int:
        """Total downsampling factor: input sides must be multiples of it."""
        return 2**self.num_downs if self.encoder == "pix2pix" else 32

    @property
    def input_channels(self) -> int:
        """Channels the first convolution takes: L, the hint planes and (with
        ``hint_spread``) the spread planes."""
        return self.in_channels + self.hint_channels + SPREAD_CHANNELS * self.hint_spread


class UNetGenerator(PretrainedMixin, nn.Module):
    """U-Net that predicts normalised ab ``(B, 2, H, W)`` from normalised L ``(B, 1, H, W)``.

    Args:
        encoder: ``"pix2pix"``, ``"resnet18"`` or ``"resnet34"``.
        pretrained_encoder: Load torchvision's ImageNet weights into a ResNet encoder
            (the first convolution averaged over RGB). Needs the weights in torch's hub
            cache or network access. Not saved in ``config.json``.
        **kwargs: The other fields of :class:`UNetConfig`.

    Raises:
        ValueError: For an unknown encoder, norm or activation, or a bad size.
        RuntimeError: If ``pretrained_encoder=True`` and the weights cannot be fetched.

    Example:
        >>> gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        >>> gen(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 2, 64, 64])
        >>> hinted = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5, hint_channels=3)
        >>> hints = torch.zeros(2, 3, 64, 64)
        >>> hints[:, :, 10, 20] = torch.tensor([0.3, -0.2, 1.0])  # one hint per image
        >>> hinted(torch.zeros(2, 1, 64, 64), hints).shape
        torch.Size([2, 2, 64, 64])
    """

    config_class = UNetConfig

    def __init__(
        self, encoder: str = "resnet18", *, pretrained_encoder: bool = False, **kwargs: Any
    ):
        super().__init__()
        self.config = UNetConfig(encoder=encoder, **kwargs)
        if self.config.encoder == "pix2pix":
            if pretrained_encoder:
                raise ValueError("pretrained_encoder=True needs a ResNet encoder, got 'pix2pix'")
            self.net: nn.Module = _Pix2PixUNet(self.config)
        else:
            self.net = _ResNetUNet(self.config)
            if pretrained_encoder:
                _load_imagenet_encoder(self.net.encoder, self.config)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this."""
        return self.config.stride

    @property
    def hint_channels(self) -> int:
        """Hint planes the model takes beside L (0: an automatic model)."""
        return self.config.hint_channels

    def with_hint_channels(
        self, hint_channels: int = 3, *, hint_spread: bool = False, hint_residual: bool = False
    ) -> UNetGenerator:
        """A hint model with this model's weights, that starts out ignoring its hints.

        Every weight that the hint planes (and spread planes) add (first convolution; with a ResNet encoder also
        the final full-resolution merge) starts at zero, so the new model's output equals this
        model's for any hints until it is trained (fine-tuning an automatic model into a hint
        model). Running statistics, dtype and device are kept; the mode is this model's.

        Args:
            hint_channels: Hint planes of the new model (see :data:`HINT_CHANNELS`).
            hint_spread: Feed it the spread planes too (see :class:`UNetConfig`).
            hint_residual: Add the spread of the hints' residuals to its output (see
                :class:`UNetConfig`); the new model then starts as this model plus that
                spread, not as this model.

        Returns:
            A new :class:`UNetGenerator`; this model is not changed.

        Raises:
            ValueError: If this model already has hint channels, or ``hint_channels`` is not
                a hint model's.

        Example:
            >>> auto = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5).eval()
            >>> hinted = auto.with_hint_channels().eval()
            >>> x, hints = torch.zeros(1, 1, 64, 64), torch.ones(1, 3, 64, 64)
            >>> torch.equal(auto(x), hinted(x, hints))
            True
        """
        if self.config.hint_channels:
            raise ValueError(
                f"the model already has hint_channels={self.config.hint_channels}; "
                "with_hint_channels widens an automatic model"
            )
        if hint_channels not in HINT_CHANNELS or not hint_channels:
            raise ValueError(f"hint_channels must be 3 for a hint model, got {hint_channels!r}")
        config = {
            **dataclasses.asdict(self.config),
            "hint_channels": hint_channels,
            "hint_spread": hint_spread,
            "hint_residual": hint_residual,
        }
        widened = type(self)(**config)
        parameter = next(self.parameters())
        widened.to(device=parameter.device, dtype=parameter.dtype)
        target = widened.state_dict()
        with torch.no_grad():
            for name, value in self.state_dict().items():
                slot = target[name]
                if slot.shape == value.shape:
                    slot.copy_(value)
                else:  # hint channels come last in every widened dimension
                    slot.zero_()
                    slot[tuple(slice(0, n) for n in value.shape)].copy_(value)
        widened.load_state_dict(target, strict=True)
        return widened.train(self.training)

    def forward(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Predict normalised ab.

        Args:
            lightness: Normalised L, shape ``(B, in_channels, H, W)``, H and W multiples of
                :attr:`stride`.
            hints: For a hint model, the hint planes ``(B, hint_channels, H, W)``: hint
                ``a / ab_scale``, ``b / ab_scale`` and the mask (see :class:`UNetConfig`).
                ``None`` means no hints: the same output as all-zero planes. Without a hint
                (``None`` or an all-zero mask) the spreads are skipped, as they are exactly
                zero: only the network runs. Must be ``None`` for a model without hint
                channels.

        Returns:
            Normalised ab, shape ``(B, out_channels, H, W)``.

        Raises:
            ValueError: If a shape is wrong, the sides are not multiples of the stride, or
                hints are given to a model without hint channels.
        """
        self._check_input(lightness)
        if not self.config.hint_channels:
            if hints is not None:
                raise ValueError(
                    "this model has no hint channels (hint_channels=0) but hints were given; "
                    "use a hint model, or spread the hints without the network"
                )
            return self.net(lightness)
        cfg = self.config
        if hints is not None:
            self._check_hints(hints, lightness)
        if hints is None or _without_hints(hints):
            # No hint anywhere: every spread is zero (no cell has support) and the residual
            # adds nothing, so the network alone gives the same numbers at half the cost.
            planes = cfg.input_channels - cfg.in_channels
            zeros = lightness.new_zeros(lightness.shape[0], planes, *lightness.shape[-2:])
            return self.net(torch.cat([lightness, zeros], dim=1))
        hints = hints.to(lightness.dtype).contiguous()  # the spread's pads are slow channels-last
        levels = self.stride.bit_length() - 1  # every input side is a multiple of the stride
        guide = (lightness * cfg.l_scale + cfg.l_center) / 100.0  # Lab L / 100
        guide = guide.contiguous()
        spread = None
        if cfg.hint_spread or cfg.hint_residual:
            spread = pyramid_spread(hints, levels, guide)
        ab = self.net(torch.cat([lightness, hints, *([spread] if cfg.hint_spread else [])], dim=1))
        if cfg.hint_residual:
            assert spread is not None
            ab = ab * (1.0 - spread[:, -1:])  # gives way where the widest support is full
            residual = torch.cat([hints[:, :2] - ab, hints[:, 2:3]], dim=1)
            ab = ab + pyramid_spread(residual, levels, guide)[:, :2]
        return ab

    def network_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """What :class:`~pixcolor.Colorizer` feeds the network for an RGB image: its
        normalised L.

        Args:
            rgb: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.

        Returns:
            ``(B, 1, H, W)``: ``(L - l_center) / l_scale``.
        """
        config = self.config
        return lab.normalize_l(lab.rgb_to_l(rgb), config.l_center, config.l_scale)

    def predicted_ab(self, output: torch.Tensor) -> torch.Tensor:
        """The a/b (Lab units) of the network's output: ``output * ab_scale``.

        Args:
            output: ``(B, 2, H, W)``, as returned by :meth:`forward`.

        Returns:
            ``(B, 2, H, W)`` a/b.
        """
        return lab.denormalize_ab(output, self.config.ab_scale)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"input must have shape (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride or h == 0 or w == 0:
            raise ValueError(
                f"input height and width must be positive multiples of {self.stride} "
                f"(the network's stride), got {h}x{w}"
            )

    def _check_hints(self, hints: torch.Tensor, lightness: torch.Tensor) -> None:
        want = (lightness.shape[0], self.config.hint_channels, *lightness.shape[-2:])
        if not isinstance(hints, torch.Tensor) or tuple(hints.shape) != want:
            got = tuple(hints.shape) if isinstance(hints, torch.Tensor) else type(hints).__name__
            raise ValueError(
                f"hints must have shape {want} (B, hint_channels, H, W like the input), got {got}"
            )


class _Pix2PixUNet(nn.Module):
    """Iterative form of pix2pix's recursive ``UnetSkipConnectionBlock`` stack."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        n, ngf, norm = cfg.num_downs, cfg.base_channels, cfg.norm
        assert norm is not None and cfg.dropout is not None
        channels = [ngf * min(2**i, 8) for i in range(n)]
        bias = norm != "batch"
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(n):
            in_c = cfg.input_channels if i == 0 else channels[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(in_c, channels[i], 4, 2, 1, bias=bias))
            if 0 < i < n - 1:
                layers.append(make_norm(norm, channels[i]))
            self.down.append(nn.Sequential(*layers))
        for i in range(n):
            innermost, outermost = i == n - 1, i == 0
            up_in = channels[i] if innermost else 2 * channels[i]
            up_out = cfg.out_channels if outermost else channels[i - 1]
            layers = [
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=bias or outermost),
            ]
            if outermost:
                if cfg.output_activation == "tanh":
                    layers.append(nn.Tanh())
            else:
                layers.append(make_norm(norm, up_out))
                if 4 <= i < n - 1 and cfg.dropout > 0:
                    layers.append(nn.Dropout(cfg.dropout))
            self.up.append(nn.Sequential(*layers))
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(len(self.up) - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x


class _PixelShuffleICNR(nn.Sequential):
    """fastai's ``PixelShuffle_ICNR``: 1x1 conv (ICNR init) -> ReLU -> ``PixelShuffle(2)``."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        conv = ConvNormAct(in_channels, out_channels * 4, kernel_size=1, norm=norm)
        icnr_(conv[0].weight)
        if conv[0].bias is not None:
            nn.init.zeros_(conv[0].bias)
        super().__init__(conv, nn.PixelShuffle(2))


class _UNetBlock(nn.Module):
    """fastai's ``UnetBlock``: upsample, join the batch-normed skip, two 3x3 convs."""

    def __init__(
        self, up_in: int, skip_in: int, final_div: bool, norm: str, dropout: float
    ) -> None:
        super().__init__()
        self.shuf = _PixelShuffleICNR(up_in, up_in // 2, norm)
        self.bn = nn.BatchNorm2d(skip_in)
        channels = up_in // 2 + skip_in
        out = channels if final_div else channels // 2
        self.conv1 = ConvNormAct(channels, out, norm=norm)
        self.conv2 = ConvNormAct(out, out, norm=norm)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_channels = out
        for conv in (self.conv1[0], self.conv2[0]):
            nn.init.kaiming_normal_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(x)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        joined = F.relu(torch.cat([up, self.bn(skip)], dim=1))
        return self.drop(self.conv2(self.conv1(joined)))


class _ResBlock(nn.Module):
    """fastai's ``ResBlock(1, c, c)``: ``relu(conv(relu(conv(x))) + x)``."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.convpath = nn.Sequential(
            ConvNormAct(channels, channels, norm=norm),
            ConvNormAct(channels, channels, norm=norm, act="none"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.convpath(x) + x)


class _ResNetUNet(nn.Module):
    """ResNet encoder + the decoder of fastai's ``DynamicUnet``."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        norm = cfg.norm
        assert norm is not None and cfg.dropout is not None
        w = cfg.base_channels
        self.encoder = _resnet_encoder(cfg.encoder, cfg.input_channels, w)
        top = 8 * w
        self.bottleneck_bn = nn.BatchNorm2d(top)
        self.middle = nn.Sequential(
            ConvNormAct(top, 2 * top, norm=norm), ConvNormAct(2 * top, top, norm=norm)
        )
        blocks = []
        up_in = top
        for i, skip_in in enumerate((4 * w, 2 * w, w, w)):
            final = i == 3
            block = _UNetBlock(up_in, skip_in, not final, norm, cfg.dropout if i < 3 else 0.0)
            blocks.append(block)
            up_in = block.out_channels
        self.decoder = nn.ModuleList(blocks)
        self.final_shuf = _PixelShuffleICNR(up_in, up_in, norm)
        merged = up_in + cfg.input_channels  # the input (hint planes too) at full resolution
        self.res_block = _ResBlock(merged, norm)
        self.head = nn.Conv2d(merged, cfg.out_channels, 1)
        self.out_act = make_act("tanh") if cfg.output_activation == "tanh" else nn.Identity()
        for conv in (
            self.middle[0][0],
            self.middle[1][0],
            *(m[0] for m in self.res_block.convpath),
            self.head,
        ):
            nn.init.kaiming_normal_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        f1 = e.layer1(e.maxpool(stem))
        f2 = e.layer2(f1)
        f3 = e.layer3(f2)
        f4 = e.layer4(f3)
        h = self.middle(F.relu(self.bottleneck_bn(f4)))
        for block, skip in zip(self.decoder, (f3, f2, f1, stem), strict=False):
            h = block(h, skip)
        h = self.final_shuf(h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, x.shape[-2:], mode="nearest")
        h = self.res_block(torch.cat([h, x], dim=1))
        return self.out_act(self.head(h))


class _ResNetEncoder(nn.Module):
    """torchvision's ResNet trunk (same module names, no pooling head) of any width."""

    def __init__(self, blocks: tuple[int, ...], in_channels: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, n in enumerate(blocks):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(
                    nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                )
            layer = [BasicBlock(inplanes, planes, stride, down)]
            layer += [BasicBlock(planes, planes) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _without_hints(hints: torch.Tensor) -> bool:
    """Whether the hint planes hold no hint (an all-zero mask); always ``False`` while
    exporting or tracing, where the graph must not depend on the values."""
    if torch.compiler.is_exporting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return not bool(hints[:, -1].any())


def _resnet_encoder(name: str, in_channels: int, width: int) -> _ResNetEncoder:
    return _ResNetEncoder(_RESNET_BLOCKS[name], in_channels, width)


def _load_imagenet_encoder(encoder: nn.Module, cfg: UNetConfig) -> None:
    """Copy torchvision's ImageNet weights into ``encoder``; average conv1 over RGB (the
    hint planes of a hint model get zero weights)."""
    import torchvision

    if cfg.base_channels != 64:
        raise ValueError(
            f"pretrained_encoder=True needs base_channels=64 (torchvision's width), got {cfg.base_channels}"
        )
    weights = torchvision.models.get_model_weights(cfg.encoder).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as err:  # urllib, ssl, socket and http errors all land here
        raise RuntimeError(
            f"could not fetch torchvision's ImageNet weights for {cfg.encoder} ({err}). "
            f"Offline? Put {weights.url.rsplit('/', 1)[-1]} in $TORCH_HOME/hub/checkpoints, "
            "or pass pretrained_encoder=False."
        ) from err
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    conv1 = state["conv1.weight"]
    if cfg.in_channels == 1:
        conv1 = conv1.mean(dim=1, keepdim=True)
    elif cfg.in_channels != 3:
        conv1 = conv1.mean(dim=1, keepdim=True).repeat(1, cfg.in_channels, 1, 1)
    # Hint planes start with zero weights: the encoder first sees only L, as pretrained.
    hint_weights = conv1.new_zeros(conv1.shape[0], cfg.hint_channels, *conv1.shape[2:])
    state["conv1.weight"] = torch.cat([conv1, hint_weights], dim=1)
    encoder.load_state_dict(state, strict=True)
    logger.info("loaded ImageNet weights into the %s encoder", cfg.encoder)
