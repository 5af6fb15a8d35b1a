"""Zero channels at a U-Net's full-resolution join: the same function, aligned widths."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from helpers import randomise_batchnorm
from pixcolor import UNetGenerator
from pixcolor._align import align_channels
from pixcolor._fold import fold_batch_norms
from pixcolor.models.deoldify import DeOldifyGenerator


def _folded(network: nn.Module, example: torch.Tensor) -> nn.Module:
    network = copy.deepcopy(network).eval()
    fold_batch_norms(network, example)
    return network


def _resnet_unet(**kwargs: object) -> UNetGenerator:
    torch.manual_seed(0)
    gen = UNetGenerator("resnet18", base_channels=12, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        randomise_batchnorm(gen, conv_bias=True)
    return gen.eval()


@pytest.mark.parametrize("hint_channels", [0, 3])
def test_resnet_unet_gets_aligned_channels_and_the_same_output(hint_channels: int) -> None:
    example = torch.rand(1, 1, 64, 64) * 2 - 1
    gen = _folded(_resnet_unet(hint_channels=hint_channels), example)
    before = gen.net.head.in_channels  # 18 decoder channels + the input's (L, hints, mask)
    reference = copy.deepcopy(gen)
    added = align_channels(gen, example)
    assert added > 0 and before % 8 != 0
    assert gen.net.head.in_channels == before + added and (before + added) % 8 == 0
    convs = [m for m in gen.net.res_block.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.in_channels == c.out_channels == before + added for c in convs)
    with torch.no_grad():
        for shape in ((1, 1, 64, 64), (2, 1, 96, 64)):  # not only the example checked
            x = torch.rand(shape) * 2 - 1
            torch.testing.assert_close(gen(x), reference(x), atol=1e-5, rtol=1e-5)
        if hint_channels:  # with hint planes too
            hints = torch.zeros(2, hint_channels, 96, 64)
            hints[:, :, 10, 20] = torch.tensor([0.3, -0.2, 1.0])
            torch.testing.assert_close(gen(x, hints), reference(x, hints), atol=1e-5, rtol=1e-5)
    assert align_channels(gen, example) == 0  # aligned already


@pytest.mark.parametrize("decoder", ["deep", "wide"])
def test_deoldify_gets_aligned_channels_and_the_same_output(decoder: str) -> None:
    torch.manual_seed(0)
    nf_factor = 0.0625 if decoder == "wide" else 0.25
    gen = DeOldifyGenerator(encoder="resnet18", decoder=decoder, nf_factor=nf_factor).eval()
    with torch.no_grad():
        randomise_batchnorm(gen, conv_bias=True)
    example = torch.rand(1, 3, 64, 64)
    gen = _folded(gen, example)
    reference = copy.deepcopy(gen)
    before = gen.head.in_channels
    added = align_channels(gen, example)
    assert (before + added) % 8 == 0 and added == -before % 8
    with torch.no_grad():
        torch.testing.assert_close(gen(example), reference(example), atol=1e-5, rtol=1e-5)


def test_other_layouts_and_unfolded_norms_are_left_alone() -> None:
    torch.manual_seed(0)
    pix2pix = UNetGenerator("pix2pix", base_channels=8, num_downs=5).eval()
    state = copy.deepcopy(pix2pix.state_dict())
    assert align_channels(pix2pix, torch.zeros(1, 1, 32, 32)) == 0
    assert all(torch.equal(v, pix2pix.state_dict()[k]) for k, v in state.items())
    unfolded = _resnet_unet(norm="batch")  # batch norms not folded
    state = copy.deepcopy(unfolded.state_dict())
    assert align_channels(unfolded, torch.zeros(1, 1, 64, 64)) == 0
    assert unfolded.net.head.in_channels % 8 != 0
    assert all(torch.equal(v, unfolded.state_dict()[k]) for k, v in state.items())


def test_a_different_data_flow_is_put_back() -> None:
    """A network whose join is not ``cat([final_shuf(h), x])`` would compute something
    else once padded: the check puts the weights back."""

    class Swapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.final_shuf = nn.Sequential(nn.Conv2d(4, 16, 1), nn.ReLU(), nn.PixelShuffle(2))
            self.res_block = nn.Sequential(nn.Conv2d(5, 5, 3, padding=1))
            self.head = nn.Conv2d(5, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            small = nn.functional.avg_pool2d(x, 2).expand(-1, 4, -1, -1)
            h = torch.cat([x[:, :1], self.final_shuf(small)], dim=1)  # the input first
            return self.head(self.res_block(h))

    torch.manual_seed(0)
    net = Swapped().eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        reference = net(x)
        assert align_channels(net, x) == 0
        torch.testing.assert_close(net(x), reference)
    assert net.head.in_channels == 5 and net.final_shuf[0].out_channels == 16
