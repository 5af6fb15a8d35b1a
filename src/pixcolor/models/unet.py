"""U-Net generators: the pix2pix U-Net and a ResNet-encoder U-Net (fastai ``DynamicUnet``).

Both map the normalised L channel ``(B, 1, H, W)`` to normalised ab ``(B, 2, H, W)``.

* ``encoder="pix2pix"``: the 8-level U-Net of Isola et al. (2017): 4x4 stride-2
  convolutions down to a 1x1 bottleneck at 256x256, transposed convolutions up,
  dropout in the three decoder blocks after the bottleneck, N(0, 0.02) init.
* ``encoder="resnet18"`` / ``"resnet34"``: a torchvision ResNet adapted to one input
  channel, with the decoder of fastai's ``DynamicUnet`` reproduced layer for layer
  (pixel-shuffle upsampling with ICNR init, batch-normed skips, a final dense merge with
  the input and a residual block), so fastai checkpoints map onto it one-to-one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from pixcolor import lab
from pixcolor.hub import PretrainedMixin
from pixcolor.models.layers import ConvNormAct, check_norm, icnr_, init_normal_, make_act, make_norm

__all__ = ["ENCODERS", "UNetConfig", "UNetGenerator"]

logger = logging.getLogger(__name__)

ENCODERS = ("pix2pix", "resnet18", "resnet34")
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

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """Predict normalised ab.

        Args:
            lightness: Normalised L, shape ``(B, in_channels, H, W)``, H and W multiples of
                :attr:`stride`.

        Returns:
            Normalised ab, shape ``(B, out_channels, H, W)``.

        Raises:
            ValueError: If the shape is wrong or the sides are not multiples of the stride.
        """
        self._check_input(lightness)
        return self.net(lightness)

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
            in_c = cfg.in_channels if i == 0 else channels[i - 1]
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
        self.encoder = _resnet_encoder(cfg.encoder, cfg.in_channels, w)
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
        merged = up_in + cfg.in_channels
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


def _resnet_encoder(name: str, in_channels: int, width: int) -> _ResNetEncoder:
    return _ResNetEncoder(_RESNET_BLOCKS[name], in_channels, width)


def _load_imagenet_encoder(encoder: nn.Module, cfg: UNetConfig) -> None:
    """Copy torchvision's ImageNet weights into ``encoder``; average conv1 over RGB."""
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
        state["conv1.weight"] = conv1.mean(dim=1, keepdim=True)
    elif cfg.in_channels != 3:
        state["conv1.weight"] = conv1.mean(dim=1, keepdim=True).repeat(1, cfg.in_channels, 1, 1)
    encoder.load_state_dict(state, strict=True)
    logger.info("loaded ImageNet weights into the %s encoder", cfg.encoder)
