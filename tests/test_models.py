"""UNetGenerator and PatchDiscriminator: shapes, parameter counts, errors, config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixcolor import PatchDiscriminator, UNetConfig, UNetGenerator
from pixcolor.models.layers import icnr_


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _pix2pix_param_count(in_c: int, out_c: int, ngf: int, n: int) -> int:
    """Closed form of the pix2pix U-Net's parameter count, written independently."""
    ch = [ngf * min(2**i, 8) for i in range(n)]
    total = 0
    for i in range(n):  # down: conv 4x4 without bias; batch norm on the middle levels
        total += (in_c if i == 0 else ch[i - 1]) * ch[i] * 16
        total += 2 * ch[i] if 0 < i < n - 1 else 0
    for i in range(n):  # up: transposed conv 4x4; bias only on the outermost
        up_in = ch[i] if i == n - 1 else 2 * ch[i]
        up_out = out_c if i == 0 else ch[i - 1]
        total += up_in * up_out * 16 + (up_out if i == 0 else 2 * up_out)
    return total


class TestDefaultModels:
    """Published architectures at 256x256: output shapes and parameter counts."""

    def test_pix2pix(self) -> None:
        gen = UNetGenerator(encoder="pix2pix").eval()
        assert _count(gen) == _pix2pix_param_count(1, 2, 64, 8) == 54_409_858
        assert gen.stride == 256
        with torch.no_grad():
            out = gen(torch.randn(1, 1, 256, 256))
        assert out.shape == (1, 2, 256, 256)
        assert out.abs().max() <= 1  # tanh
        dropouts = [m for m in gen.modules() if isinstance(m, nn.Dropout)]
        assert len(dropouts) == 3 and all(d.p == 0.5 for d in dropouts)

    @pytest.mark.parametrize(
        ("encoder", "count"), [("resnet18", 31_099_672), ("resnet34", 41_207_832)]
    )
    def test_resnet(self, encoder: str, count: int) -> None:
        gen = UNetGenerator(encoder=encoder).eval()
        # encoder: torchvision's trunk with a 1-channel conv1; decoder: fastai DynamicUnet
        assert _count(gen) == count
        assert gen.stride == 32
        with torch.no_grad():
            assert gen(torch.randn(1, 1, 256, 256)).shape == (1, 2, 256, 256)

    def test_patchgan_70(self) -> None:
        disc = PatchDiscriminator()
        assert _count(disc) == 2_765_633
        assert disc.receptive_field == 70
        assert disc(torch.randn(2, 3, 256, 256)).shape == (2, 1, 30, 30)
        assert disc.output_size(256, 256) == (30, 30)


class TestConfigs:
    def test_resnet_encoder_matches_torchvision_names(self) -> None:
        import torchvision

        ours = UNetGenerator(encoder="resnet18").net.encoder.state_dict()
        theirs = torchvision.models.resnet18().state_dict()
        theirs = {k: v for k, v in theirs.items() if not k.startswith("fc.")}
        assert set(ours) == set(theirs)
        for key, value in theirs.items():
            expected = (64, 1, 7, 7) if key == "conv1.weight" else value.shape
            assert ours[key].shape == expected, key

    @pytest.mark.parametrize("encoder", ["pix2pix", "resnet18"])
    @pytest.mark.parametrize("norm", ["batch", "instance", "none"])
    def test_norms_and_tiny_widths(self, encoder: str, norm: str) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(encoder=encoder, base_channels=8, num_downs=5, norm=norm)
        out = gen(torch.randn(2, 1, 64, 96))
        assert out.shape == (2, 2, 64, 96)
        out.mean().backward()
        assert all(p.grad is not None for p in gen.parameters() if p.requires_grad)

    def test_linear_head(self) -> None:
        gen = UNetGenerator(encoder="resnet18", base_channels=8, output_activation="none")
        assert not any(isinstance(m, nn.Tanh) for m in gen.modules())
        gen = UNetGenerator(encoder="resnet18", base_channels=8)
        assert any(isinstance(m, nn.Tanh) for m in gen.modules())

    def test_render_size_default(self) -> None:
        assert (
            UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5).config.render_size == 256
        )
        assert (
            UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=9).config.render_size == 512
        )

    def test_defaults_resolved_in_config(self) -> None:
        assert UNetConfig(encoder="pix2pix").norm == "batch"
        assert UNetConfig(encoder="pix2pix").dropout == 0.5
        assert UNetConfig(encoder="resnet18").norm == "none"
        assert UNetConfig(encoder="resnet18").dropout == 0.0

    def test_pix2pix_init_is_normal_002(self) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(encoder="pix2pix")
        weight = gen.net.down[3][1].weight
        assert abs(weight.std().item() - 0.02) < 1e-3
        assert abs(weight.mean().item()) < 1e-3

    def test_icnr_gives_nearest_neighbour_upsampling(self) -> None:
        conv = nn.Conv2d(3, 4 * 5, 1)
        icnr_(conv.weight)
        nn.init.zeros_(conv.bias)
        x = torch.randn(1, 3, 4, 4)
        up = nn.PixelShuffle(2)(conv(x))
        expected = nn.functional.interpolate(up[..., ::2, ::2], scale_factor=2, mode="nearest")
        torch.testing.assert_close(up, expected)


class TestExceptions:
    def test_size_not_multiple_of_stride(self) -> None:
        gen = UNetGenerator(encoder="resnet18", base_channels=8)
        with pytest.raises(ValueError, match="multiples of 32.*got 250x256"):
            gen(torch.randn(1, 1, 250, 256))

    def test_wrong_channels(self) -> None:
        gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        with pytest.raises(ValueError, match=r"\(B, 1, H, W\), got \(1, 3, 64, 64\)"):
            gen(torch.randn(1, 3, 64, 64))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"encoder": "vgg16"}, "encoder must be one of .* got 'vgg16'"),
            ({"norm": "layer"}, "norm must be one of .* got 'layer'"),
            ({"output_activation": "sigmoid"}, "output_activation .* got 'sigmoid'"),
            ({"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5"),
            ({"base_channels": 0}, "base_channels must be a positive integer, got 0"),
            ({"encoder": "pix2pix", "num_downs": 20}, "num_downs must be between 2 and 12, got 20"),
            (
                {"render_size": 100},
                "render_size must be a positive multiple of the stride 32, got 100",
            ),
            ({"render_size": 0}, "render_size must be a positive multiple of the stride 32, got 0"),
        ],
    )
    def test_bad_config(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            UNetGenerator(**kwargs)

    def test_pretrained_pix2pix_refused(self) -> None:
        with pytest.raises(ValueError, match="ResNet encoder"):
            UNetGenerator(encoder="pix2pix", pretrained_encoder=True)

    def test_pretrained_encoder_offline_is_clear(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path
    ) -> None:
        import torchvision

        def offline(*args: object, **kwargs: object) -> None:
            raise OSError("network unreachable")

        monkeypatch.setenv("TORCH_HOME", str(tmp_path))
        monkeypatch.setattr(
            torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline
        )
        with pytest.raises(RuntimeError, match="resnet18-f37072fd.pth.*pretrained_encoder=False"):
            UNetGenerator(encoder="resnet18", pretrained_encoder=True)

    def test_pretrained_encoder_loads_and_averages(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import torchvision

        reference = torchvision.models.resnet18().state_dict()
        monkeypatch.setattr(
            torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__,
            "get_state_dict",
            lambda self, **kw: reference,
        )
        gen = UNetGenerator(encoder="resnet18", pretrained_encoder=True)
        enc = gen.net.encoder
        torch.testing.assert_close(
            enc.conv1.weight, reference["conv1.weight"].mean(1, keepdim=True)
        )
        torch.testing.assert_close(enc.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])

    def test_discriminator_too_small(self) -> None:
        with pytest.raises(ValueError, match="too small for n_layers=3"):
            PatchDiscriminator()(torch.randn(1, 3, 16, 16))

    def test_discriminator_bad_norm(self) -> None:
        with pytest.raises(ValueError, match="norm must be one of"):
            PatchDiscriminator(norm="group")
