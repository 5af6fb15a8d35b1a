"""DeOldify's generator (Jason Antic, MIT licence), layer for layer, in plain PyTorch.

DeOldify colourises with a U-Net built by its own ``DynamicUnetDeep`` / ``DynamicUnetWide``
on fastai v1: a torchvision ResNet body, a decoder of pixel-shuffle blocks with a blur
(replication pad + 2x2 average pool), one self-attention layer, a residual block on the
input joined with the upsampled features, and a sigmoid squashed to ``y_range``. It takes
an RGB image (a gray photo as three equal channels) normalised with ImageNet's statistics
and returns an RGB image in the same normalisation.

=============  ===========  ==========  =========  =====================================
DeOldify       decoder      encoder     nf_factor  file (fastai v1 ``Learner.save``)
=============  ===========  ==========  =========  =====================================
artistic       ``"deep"``   resnet34    1.5        ``ColorizeArtistic_gen.pth`` (255 MB)
stable         ``"wide"``   resnet101   2          ``ColorizeStable_gen.pth`` (874 MB)
video          ``"wide"``   resnet101   2          ``ColorizeVideo_gen.pth`` (874 MB)
=============  ===========  ==========  =========  =====================================

DeOldify's convolutions carry spectral normalisation (the last upsampling one weight
normalisation). In eval mode a spectrally normalised convolution is an ordinary one with
the weight ``weight_orig / sigma``, ``sigma = u . (W v)`` from the stored ``u`` and ``v``
(torch does no power iteration in eval mode); :func:`pixcolor.convert_deoldify` computes
those weights once, so :class:`DeOldifyGenerator` is a network of plain convolutions that
computes what DeOldify's computes in eval mode. It is meant for inference; it has no
spectral norm to train with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from pixcolor import lab
from pixcolor.hub import PretrainedMixin

__all__ = ["DEOLDIFY_VARIANTS", "DeOldifyConfig", "DeOldifyGenerator"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEOLDIFY_VARIANTS: dict[str, dict[str, Any]] = {
    # deoldify/visualize.py: get_artistic_image_colorizer -> gen_inference_deep(resnet34, 1.5)
    "artistic": {"encoder": "resnet34", "decoder": "deep", "nf_factor": 1.5, "render_size": 560},
    # get_stable_image_colorizer -> gen_inference_wide(resnet101, nf_factor=2), render_factor 35
    "stable": {"encoder": "resnet101", "decoder": "wide", "nf_factor": 2.0, "render_size": 560},
    # get_stable_video_colorizer: the same network, render_factor 21
    "video": {"encoder": "resnet101", "decoder": "wide", "nf_factor": 2.0, "render_size": 336},
}
"""The configurations of DeOldify's published generators (``DeOldifyGenerator(**v)``)."""

_ENCODERS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
_DECODERS = ("deep", "wide")
# DeOldify's render_base: it renders at render_factor x 16.
_STRIDE = 16


@dataclass
class DeOldifyConfig:
    """Architecture of a :class:`DeOldifyGenerator`; saved as ``config.json``.

    Args:
        encoder: The torchvision ResNet of the body: ``"resnet18"``, ``"resnet34"``,
            ``"resnet50"``, ``"resnet101"`` or ``"resnet152"``.
        decoder: ``"deep"`` (DeOldify's ``DynamicUnetDeep``: two convolutions per block,
            widths scaled by ``nf_factor``) or ``"wide"`` (``DynamicUnetWide``: one
            convolution per block, ``512 * nf_factor`` wide).
        nf_factor: Width factor of the decoder (artistic 1.5, stable and video 2).
        self_attention: Self-attention after the second decoder block (DeOldify: always).
        y_range: The output is ``sigmoid(x)`` scaled to this range; ``None`` leaves it
            linear. DeOldify: ``(-3, 3)``.
        input_mean: Per-channel mean of the input normalisation (ImageNet's).
        input_std: Per-channel standard deviation of the input normalisation (ImageNet's).
            The output is in the same normalisation.
        render_size: Side of the square the network sees by default in
            :meth:`pixcolor.Colorizer.colorize`: DeOldify's ``render_factor * 16``
            (artistic and stable 35 -> 560, video 21 -> 336). A positive multiple of 16.
    """

    encoder: str = "resnet34"
    decoder: str = "deep"
    nf_factor: float = 1.5
    self_attention: bool = True
    y_range: tuple[float, float] | None = (-3.0, 3.0)
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD
    render_size: int = 560

    def __post_init__(self) -> None:
        if self.encoder not in _ENCODERS:
            raise ValueError(f"encoder must be one of {_ENCODERS}, got {self.encoder!r}")
        if self.decoder not in _DECODERS:
            raise ValueError(f"decoder must be one of {_DECODERS}, got {self.decoder!r}")
        if not isinstance(self.nf_factor, (int, float)) or self.nf_factor <= 0:
            raise ValueError(f"nf_factor must be a positive number, got {self.nf_factor!r}")
        if self.decoder == "wide" and (512 * self.nf_factor) % 2:
            raise ValueError(
                f"a 'wide' decoder needs 512 * nf_factor to be an even integer, got "
                f"nf_factor={self.nf_factor!r}"
            )
        if self.y_range is not None:
            self.y_range = (float(self.y_range[0]), float(self.y_range[1]))
            if not self.y_range[0] < self.y_range[1]:
                raise ValueError(f"y_range must be (low, high) with low < high, got {self.y_range}")
        for name in ("input_mean", "input_std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise ValueError(f"{name} must have 3 values (R, G, B), got {value}")
            setattr(self, name, value)
        if min(self.input_std) <= 0:
            raise ValueError(f"input_std must be positive, got {self.input_std}")
        if (
            not isinstance(self.render_size, int)
            or self.render_size <= 0
            or self.render_size % _STRIDE
        ):
            raise ValueError(
                f"render_size must be a positive multiple of {_STRIDE}, got {self.render_size!r}"
            )

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (DeOldify's ``render_base``)."""
        return _STRIDE

    @property
    def in_channels(self) -> int:
        """Channels of the network's input: 3 (a gray photo as R = G = B)."""
        return 3

    @property
    def out_channels(self) -> int:
        """Channels of the network's output: 3 (RGB)."""
        return 3


class DeOldifyGenerator(PretrainedMixin, nn.Module):
    """DeOldify's U-Net: normalised RGB ``(B, 3, H, W)`` in, normalised RGB out.

    Computes exactly what DeOldify's ``DynamicUnetDeep`` / ``DynamicUnetWide`` computes in
    eval mode (with spectral and weight normalisation folded into the weights). Load
    DeOldify's checkpoints with :func:`pixcolor.convert_deoldify` or a ``deoldify*`` preset.

    Args:
        **kwargs: The fields of :class:`DeOldifyConfig`; the defaults are DeOldify's
            artistic model. See :data:`DEOLDIFY_VARIANTS` for the others.

    Raises:
        ValueError: For an unknown encoder or decoder, or a bad size.

    Example:
        >>> gen = DeOldifyGenerator(encoder="resnet18", decoder="wide", nf_factor=0.25)
        >>> gen.eval()(torch.zeros(1, 3, 48, 64)).shape
        torch.Size([1, 3, 48, 64])
    """

    config_class = DeOldifyConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.config = cfg = DeOldifyConfig(**kwargs)
        self.encoder = _ResNetBody(cfg.encoder)
        skips = self.encoder.skip_channels  # stride 16, 8, 4, 2
        top = self.encoder.out_channels
        self.bottleneck_bn = nn.BatchNorm2d(top)
        self.middle = nn.Sequential(_ConvReluBN(top, 2 * top), _ConvReluBN(2 * top, top))
        blocks: list[nn.Module] = []
        up_in = top
        for i, skip_in in enumerate(skips):
            final = i == len(skips) - 1
            attention = cfg.self_attention and i == len(skips) - 3
            if cfg.decoder == "deep":
                block: _DeepBlock | _WideBlock = _DeepBlock(
                    up_in, skip_in, not final, attention, cfg.nf_factor
                )
            else:
                nf = int(512 * cfg.nf_factor)
                block = _WideBlock(up_in, skip_in, nf // 2 if final else nf, attention)
            blocks.append(block)
            up_in = block.out_channels
        self.decoder = nn.ModuleList(blocks)
        self.final_shuf = _PixelShuffleBlur(up_in, up_in, bn=False)
        merged = up_in + 3
        self.res_block = _ResBlock(merged)
        self.head = nn.Conv2d(merged, 3, 1)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this."""
        return self.config.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Colourise a normalised RGB image.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]`` normalised with ``input_mean`` /
                ``input_std``; H and W multiples of :attr:`stride`.

        Returns:
            ``(B, 3, H, W)`` RGB in the same normalisation.

        Raises:
            ValueError: If the shape is wrong or the sides are not multiples of the stride.
        """
        self._check_input(x)
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        f1 = e.layer1(e.maxpool(stem))
        f2 = e.layer2(f1)
        f3 = e.layer3(f2)
        h = self.middle(F.relu(self.bottleneck_bn(e.layer4(f3))))
        for block, skip in zip(self.decoder, (f3, f2, f1, stem), strict=True):
            h = block(h, skip)
        h = torch.cat([self.final_shuf(h), x], dim=1)
        h = self.head(self.res_block(h))
        if self.config.y_range is None:
            return h
        low, high = self.config.y_range
        return torch.sigmoid(h) * (high - low) + low

    def network_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """What :class:`~pixcolor.Colorizer` feeds the network for an RGB image.

        The image's luma (ITU-R BT.601 weights on the gamma-encoded values, as the
        ``convert("L")`` of PIL that DeOldify applies) as three equal channels, normalised
        with ``input_mean`` / ``input_std``.

        Args:
            rgb: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.

        Returns:
            ``(B, 3, H, W)``, the input of :meth:`forward`.
        """
        weights = rgb.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
        gray = (rgb * weights).sum(dim=1, keepdim=True)
        mean = rgb.new_tensor(self.config.input_mean).view(1, 3, 1, 1)
        std = rgb.new_tensor(self.config.input_std).view(1, 3, 1, 1)
        return (gray - mean) / std

    def predicted_ab(self, output: torch.Tensor) -> torch.Tensor:
        """The CIE a/b of the network's output (undo the normalisation, clip to ``[0, 1]``).

        Args:
            output: ``(B, 3, H, W)`` float, as returned by :meth:`forward`.

        Returns:
            ``(B, 2, H, W)`` a/b in Lab units.
        """
        mean = output.new_tensor(self.config.input_mean).view(1, 3, 1, 1)
        std = output.new_tensor(self.config.input_std).view(1, 3, 1, 1)
        rgb = (output * std + mean).clamp_(0.0, 1.0)
        return lab.rgb_to_lab(rgb)[:, 1:]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"input must have shape (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride or h == 0 or w == 0:
            raise ValueError(
                f"input height and width must be positive multiples of {self.stride}, got {h}x{w}"
            )


class _ResNetBody(nn.Module):
    """torchvision's ResNet without pooling head (fastai's ``create_body``), same names."""

    def __init__(self, name: str) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None)
        for child in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, child, getattr(resnet, child))
        expansion = 4 if name in ("resnet50", "resnet101", "resnet152") else 1
        self.out_channels = 512 * expansion
        self.skip_channels = (256 * expansion, 128 * expansion, 64 * expansion, 64)


class _ConvReluBN(nn.Module):
    """DeOldify's ``custom_conv_layer`` with ``extra_bn``: conv -> ReLU -> BatchNorm
    (-> self-attention)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, attention: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.attention = _SelfAttention(out_channels) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.bn(F.relu(self.conv(x), inplace=True)))


class _SelfAttention(nn.Module):
    """fastai v1's ``SelfAttention`` (SAGAN, Zhang et al. 2018), 1x1 ``Conv1d`` projections."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv1d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv1d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv1d(channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        x = x.reshape(*size[:2], -1)
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.bmm(f.permute(0, 2, 1).contiguous(), g), dim=1)
        return (self.gamma * torch.bmm(h, beta) + x).view(size)


class _PixelShuffleBlur(nn.Module):
    """1x1 conv (-> BatchNorm) -> ReLU -> ``PixelShuffle(2)`` -> blur.

    DeOldify's ``CustomPixelShuffle_ICNR`` (with BatchNorm) and fastai v1's
    ``PixelShuffle_ICNR`` (without, conv with bias). Both always blur: their ``blur``
    argument is stored but never read, and the pooling module they test is always truthy.
    """

    def __init__(self, in_channels: int, out_channels: int, bn: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, 1, bias=not bn)
        self.bn = nn.BatchNorm2d(out_channels * 4) if bn else nn.Identity()
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(F.relu(self.bn(self.conv(x)), inplace=True))
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class _DeepBlock(nn.Module):
    """``UnetBlockDeep``: upsample, join the batch-normed skip, two conv-ReLU-BN layers."""

    def __init__(
        self, up_in: int, skip_in: int, final_div: bool, attention: bool, nf_factor: float
    ) -> None:
        super().__init__()
        self.shuf = _PixelShuffleBlur(up_in, up_in // 2, bn=True)
        self.skip_bn = nn.BatchNorm2d(skip_in)
        channels = up_in // 2 + skip_in
        out = int((channels if final_div else channels // 2) * nf_factor)
        self.conv1 = _ConvReluBN(channels, out)
        self.conv2 = _ConvReluBN(out, out, attention=attention)
        self.out_channels = out

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(_join(self.shuf(x), self.skip_bn(skip))))


class _WideBlock(nn.Module):
    """``UnetBlockWide``: upsample to ``n_out / 2``, join the batch-normed skip, one
    conv-ReLU-BN layer to ``n_out / 2``."""

    def __init__(self, up_in: int, skip_in: int, n_out: int, attention: bool) -> None:
        super().__init__()
        half = n_out // 2
        self.shuf = _PixelShuffleBlur(up_in, half, bn=True)
        self.skip_bn = nn.BatchNorm2d(skip_in)
        self.conv = _ConvReluBN(half + skip_in, half, attention=attention)
        self.out_channels = half

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(_join(self.shuf(x), self.skip_bn(skip)))


def _join(up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``relu(cat([up, skip]))``, ``up`` first resized (nearest) to ``skip`` if it differs."""
    if up.shape[-2:] != skip.shape[-2:]:
        up = F.interpolate(up, skip.shape[-2:], mode="nearest")
    return F.relu(torch.cat([up, skip], dim=1), inplace=True)


class _ResBlock(nn.Module):
    """fastai v1's ``res_block(nf, norm_type=Spectral)``: ``x + relu(conv(relu(conv(x))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x), inplace=True)
        return F.relu(self.conv2(h), inplace=True) + x
