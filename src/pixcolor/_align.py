"""Pad a U-Net's full-resolution convolutions to a channel count int8 kernels run fast.

The ResNet U-Nets (fastai's ``DynamicUnet`` layout, ours and DeOldify's) join the last
upsampled features with the input at full resolution: ``cat([final_shuf(h), x])``, then a
residual block of two 3x3 convolutions and a 1x1 head on those ``up + in`` channels (97
for a ResNet-18 U-Net on L, 99 for DeOldify on RGB). They are the network's largest
convolutions (about 40 % of a ResNet-18 U-Net's time at 256), and ONNX Runtime's int8
convolution is slow on channel counts that are not a multiple of 8: on a 2-core AVX2 EPYC
one 3x3 convolution at 256 x 256 took 50 ms per image at 97 channels, 44.5 ms at 104 and
36.5 ms at 96 (``QLinearConv``, NHWC).

:func:`align_channels` adds zero channels there, exactly: the upsampling convolution gets
zero filters (so the shuffle yields channels that are 0 after its ReLU), the residual
block's convolutions get zero filters and zero inputs in the same places (their outputs
stay 0, and so does the residual sum), and the head zero inputs. The network computes the
same function, checked on an example input; a network of another layout is left as it is.
It changes the module it is given: call it on a copy.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

__all__ = ["align_channels"]

logger = logging.getLogger(__name__)

# Outputs may move by this much (relative to the largest magnitude, at least 1): the zero
# channels add exact zeros, but a kernel may sum in another order.
_TOLERANCE = 1e-5
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@torch.no_grad()
def align_channels(network: nn.Module, example: torch.Tensor, multiple: int = 8) -> int:
    """Pad the full-resolution join of ``network`` (a module with ``final_shuf``,
    ``res_block`` and ``head``, anywhere inside it) to a multiple of ``multiple`` channels.

    Args:
        network: The network, in eval mode with its batch norms folded (an unfolded norm
            in the padded layers leaves the network as it is).
        example: An input ``network(example)`` is checked on.
        multiple: The channel multiple.

    Returns:
        How many channels were added (0: none needed, or not this layout).
    """
    block = next((m for m in network.modules() if _is_join(m)), None)
    if block is None:
        return 0
    head = block.head
    upsample = [m for m in block.final_shuf.modules() if isinstance(m, nn.Conv2d)]
    shuffles = [m for m in block.final_shuf.modules() if isinstance(m, nn.PixelShuffle)]
    res_convs = [m for m in block.res_block.modules() if isinstance(m, nn.Conv2d)]
    merged = head.in_channels
    extra = -merged % multiple
    if not extra:
        return 0
    layers = (block.final_shuf, block.res_block)
    if (
        len(upsample) != 1
        or len(shuffles) != 1
        or any(isinstance(m, _NORMS) for layer in layers for m in layer.modules())
    ):
        logger.debug("align_channels: %s not of the expected layout", type(block).__name__)
        return 0
    factor = shuffles[0].upscale_factor ** 2
    up = upsample[0].out_channels // factor
    convs = [*res_convs, head, upsample[0]]
    if any(c.groups != 1 for c in convs) or any(
        c.in_channels != merged or c.out_channels != merged for c in res_convs
    ):
        return 0
    reference = network(example)
    saved = [(c, c.weight, c.bias, c.in_channels, c.out_channels) for c in convs]
    _grow(upsample[0], out_at=upsample[0].out_channels, out_count=extra * factor)
    for conv in res_convs:
        _grow(conv, in_at=up, in_count=extra, out_at=up, out_count=extra)
    _grow(head, in_at=up, in_count=extra)
    output = network(example)
    scale = max(1.0, float(reference.abs().max()))
    error = float((output - reference).abs().max()) / scale
    if error > _TOLERANCE:  # not the data flow assumed: put the weights back
        for conv, weight, bias, in_channels, out_channels in saved:
            conv.weight, conv.bias = weight, bias
            conv.in_channels, conv.out_channels = in_channels, out_channels
        logger.debug("align_channels: output moved by %.3g, left as it was", error)
        return 0
    return extra


def _is_join(module: nn.Module) -> bool:
    return all(hasattr(module, name) for name in ("final_shuf", "res_block", "head")) and (
        isinstance(module.head, nn.Conv2d)
    )


def _grow(
    conv: nn.Conv2d, *, in_at: int = 0, in_count: int = 0, out_at: int = 0, out_count: int = 0
) -> None:
    """Insert ``in_count`` zero input channels at ``in_at`` and ``out_count`` zero filters
    (bias 0) at ``out_at``."""
    weight = _insert_zeros(conv.weight.detach(), 1, in_at, in_count)
    weight = _insert_zeros(weight, 0, out_at, out_count)
    conv.weight = nn.Parameter(weight, requires_grad=False)
    if conv.bias is not None:
        bias: Any = _insert_zeros(conv.bias.detach(), 0, out_at, out_count)
        conv.bias = nn.Parameter(bias, requires_grad=False)
    conv.in_channels += in_count
    conv.out_channels += out_count


def _insert_zeros(tensor: torch.Tensor, dim: int, at: int, count: int) -> torch.Tensor:
    if not count:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = count
    zeros = tensor.new_zeros(shape)
    before, after = tensor.narrow(dim, 0, at), tensor.narrow(dim, at, tensor.shape[dim] - at)
    return torch.cat([before, zeros, after], dim=dim)
