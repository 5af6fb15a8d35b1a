"""UNetGenerator and PatchDiscriminator: shapes, parameter counts, errors, config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixcolor import PatchDiscriminator, UNetConfig, UNetGenerator
from pixcolor.models import unet
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


HINT_TINY = {
    "pix2pix": {"encoder": "pix2pix", "base_channels": 8, "num_downs": 5},
    "resnet18": {"encoder": "resnet18", "base_channels": 8},
    "resnet34": {"encoder": "resnet34", "base_channels": 8},
}


def _some_hints(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Hint planes with a few hinted pixels per image: ab in [-0.5, 0.5], mask 1 there."""
    g = torch.Generator().manual_seed(seed)
    planes = torch.zeros(batch, 3, size, size)
    for i in range(batch):
        ys, xs = torch.randint(0, size, (2, 5), generator=g)
        planes[i, :2, ys, xs] = torch.rand(2, 5, generator=g) - 0.5
        planes[i, 2, ys, xs] = 1.0
    return planes


class TestHintModels:
    """``hint_channels=3``: hint planes beside L; ``hint_channels=0`` stays today's model."""

    @pytest.mark.parametrize("encoder", sorted(HINT_TINY))
    def test_shapes_and_gradients_every_encoder(self, encoder: str) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY[encoder], hint_channels=3)
        assert gen.hint_channels == 3 and gen.config.input_channels == 4
        lightness = torch.randn(2, 1, 32, 64)
        hints = torch.zeros(2, 3, 32, 64)
        hints[:, :, 10, 20] = torch.tensor([0.4, -0.3, 1.0])
        out = gen(lightness, hints)
        assert out.shape == (2, 2, 32, 64)
        out.mean().backward()
        assert all(p.grad is not None for p in gen.parameters())

    @pytest.mark.parametrize("encoder", sorted(HINT_TINY))
    def test_hints_change_the_output(self, encoder: str) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY[encoder], hint_channels=3).eval()
        lightness = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            plain, hinted = gen(lightness), gen(lightness, _some_hints(2, 64))
        assert (plain - hinted).abs().max() > 1e-4

    @pytest.mark.parametrize("encoder", sorted(HINT_TINY))
    def test_zero_planes_equal_none(self, encoder: str) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY[encoder], hint_channels=3).eval()
        lightness = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(
                gen(lightness), gen(lightness, torch.zeros(2, 3, 64, 64)), rtol=0, atol=0
            )

    def test_first_conv_and_resnet_merge_take_the_planes(self) -> None:
        pix = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3)
        assert pix.net.down[0][0].weight.shape[1] == 4
        res = UNetGenerator(**HINT_TINY["resnet18"], hint_channels=3)
        plain = UNetGenerator(**HINT_TINY["resnet18"])
        assert res.net.encoder.conv1.weight.shape[1] == 4
        # the final full-resolution merge sees L and the three planes
        assert res.net.head.weight.shape[1] == plain.net.head.weight.shape[1] + 3

    def test_parameter_counts(self) -> None:
        """hint_channels=0 is today's model; 3 widens only the first convolution (pix2pix)."""
        auto = UNetGenerator(**HINT_TINY["pix2pix"])
        hinted = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3)
        assert auto.config.hint_channels == 0
        assert _count(auto) == _pix2pix_param_count(1, 2, 8, 5)
        assert _count(hinted) == _pix2pix_param_count(4, 2, 8, 5)
        assert auto.state_dict().keys() == hinted.state_dict().keys()

    def test_config_round_trip(self, tmp_path) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY["resnet18"], hint_channels=3).eval()
        gen.save_pretrained(tmp_path)
        loaded = UNetGenerator.from_pretrained(tmp_path).eval()
        assert loaded.config == gen.config and loaded.config.hint_channels == 3
        lightness, hints = torch.randn(1, 1, 64, 64), _some_hints(1, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(lightness, hints), gen(lightness, hints))

    def test_old_config_without_the_key_loads_as_automatic(self, tmp_path) -> None:
        import json

        gen = UNetGenerator(**HINT_TINY["pix2pix"])
        gen.save_pretrained(tmp_path)
        config = json.loads((tmp_path / "config.json").read_text())
        assert config.pop("hint_channels") == 0
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert UNetGenerator.from_pretrained(tmp_path).config.hint_channels == 0

    @pytest.mark.parametrize("encoder", sorted(HINT_TINY))
    def test_with_hint_channels_starts_as_the_automatic_model(self, encoder: str) -> None:
        from helpers import randomise_batchnorm

        torch.manual_seed(0)
        auto = randomise_batchnorm(UNetGenerator(**HINT_TINY[encoder]), conv_bias=True).eval()
        hinted = auto.with_hint_channels()
        assert hinted.config.hint_channels == 3 and not hinted.training
        lightness = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            want = auto(lightness)
            torch.testing.assert_close(hinted(lightness, _some_hints(2, 64)), want)
            torch.testing.assert_close(hinted(lightness), want)
        # and it can learn to use the hints: every new weight gets a gradient path
        hinted.train()
        hinted(lightness, _some_hints(2, 64)).square().mean().backward()
        first = hinted.net.down[0][0] if encoder == "pix2pix" else hinted.net.encoder.conv1
        assert first.weight.grad[:, 1:].abs().sum() > 0

    def test_with_hint_channels_errors(self) -> None:
        hinted = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3)
        with pytest.raises(ValueError, match="already has hint_channels=3"):
            hinted.with_hint_channels()
        with pytest.raises(ValueError, match="must be 3 for a hint model, got 2"):
            UNetGenerator(**HINT_TINY["pix2pix"]).with_hint_channels(2)

    @pytest.mark.parametrize("value", [1, 2, 4, -3, True])
    def test_bad_hint_channels(self, value: object) -> None:
        with pytest.raises(ValueError, match=r"hint_channels must be one of \(0, 3\)"):
            UNetConfig(hint_channels=value)  # type: ignore[arg-type]

    def test_hints_for_an_automatic_model_are_refused(self) -> None:
        gen = UNetGenerator(**HINT_TINY["pix2pix"])
        with pytest.raises(ValueError, match="no hint channels"):
            gen(torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 64, 64))

    @pytest.mark.parametrize("shape", [(1, 3, 32, 64), (2, 3, 64, 64), (1, 2, 64, 64)])
    def test_hint_shape_must_match(self, shape: tuple[int, ...]) -> None:
        gen = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3)
        with pytest.raises(ValueError, match=r"hints must have shape \(1, 3, 64, 64\)"):
            gen(torch.zeros(1, 1, 64, 64), torch.zeros(shape))


class TestHintSpread:
    """``hint_spread=True``: the push-pull spread of the hints as five more input planes."""

    def test_spread_values(self) -> None:
        from pixcolor.models.hint_spread import pyramid_spread

        planes = torch.zeros(2, 3, 64, 64)
        planes[0, :, 8, 8] = torch.tensor([0.5, -0.5, 1.0])
        planes[0, :, 56, 56] = torch.tensor([-0.3, 0.1, 1.0])
        out = pyramid_spread(planes)
        assert out.shape == (2, 5, 64, 64)
        torch.testing.assert_close(out[0, :2, 8, 8], torch.tensor([0.5, -0.5]))  # exact at hints
        torch.testing.assert_close(out[0, :2, 56, 56], torch.tensor([-0.3, 0.1]))
        torch.testing.assert_close(out[0, :2, 4, 12], torch.tensor([0.5, -0.5]), atol=0.05, rtol=0)
        between = out[0, :2, 32, 32]  # halfway: a blend of both
        assert -0.3 < between[0] < 0.5 and -0.5 < between[1] < 0.1
        assert out[1].abs().sum() == 0  # no hints: nothing
        support = out[0, 2:, 8, 8]
        assert support[0] > 0.2 and (support[:-1] <= support[1:] + 1e-6).all()  # wider: more
        assert out[0, 2:].min() >= 0 and out[0, 2:].max() <= 1

    def test_spread_stops_at_edges_with_lightness(self) -> None:
        """With the lightness, each of two flat regions keeps its own hint's colour."""
        from pixcolor.models.hint_spread import pyramid_spread

        lightness = torch.full((1, 1, 64, 64), 0.2)
        lightness[..., 40:] = 0.8  # an edge at column 40
        planes = torch.zeros(1, 3, 64, 64)
        planes[0, :, 10, 5] = torch.tensor([0.5, 0.0, 1.0])
        planes[0, :, 50, 60] = torch.tensor([-0.5, 0.0, 1.0])
        aware = pyramid_spread(planes, 6, lightness)[0, 0]
        blind = pyramid_spread(planes, 6)[0, 0]
        # the colour changes at the edge (within the 4-px cells left unsmoothed)
        assert aware[:, :34].min() > 0.3 and aware[:, 46:].max() < -0.3
        assert blind[:, :34].min() < 0 and blind[:, 46:].max() > 0  # without L: no edge
        torch.testing.assert_close(aware[10, 5], torch.tensor(0.5))

    def test_export_form_gives_the_same_spread(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """While exporting, the sweeps run as convolutions: the same numbers as the slices."""
        from pixcolor.models.hint_spread import pyramid_spread

        torch.manual_seed(0)
        lightness = torch.rand(2, 1, 32, 48)
        planes = torch.zeros(2, 3, 32, 48)
        planes[:, :, ::7, ::9] = torch.tensor([0.4, -0.3, 1.0]).view(3, 1, 1)
        planes[1, :2] += torch.randn(2, 32, 48) * planes[1, 2]
        eager = pyramid_spread(planes, 4, lightness)
        monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
        exporting = pyramid_spread(planes, 4, lightness)
        assert eager[:, :2].abs().max() > 0.1  # something was spread
        torch.testing.assert_close(exporting, eager, rtol=0, atol=1e-6)

    def test_model_with_spread(self, tmp_path) -> None:
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3, hint_spread=True).eval()
        assert gen.net.down[0][0].weight.shape[1] == 1 + 3 + 5
        lightness, hints = torch.randn(2, 1, 64, 64), _some_hints(2, 64)
        with torch.no_grad():
            out = gen(lightness, hints)
            torch.testing.assert_close(gen(lightness), gen(lightness, torch.zeros_like(hints)))
        gen.save_pretrained(tmp_path)
        loaded = UNetGenerator.from_pretrained(tmp_path).eval()
        assert loaded.config.hint_spread
        with torch.no_grad():
            torch.testing.assert_close(loaded(lightness, hints), out)

    def test_widened_with_spread_starts_as_the_automatic_model(self) -> None:
        torch.manual_seed(0)
        auto = UNetGenerator(**HINT_TINY["resnet18"]).eval()
        hinted = auto.with_hint_channels(hint_spread=True)
        lightness = torch.randn(1, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(hinted(lightness, _some_hints(1, 64)), auto(lightness))

    def test_spread_needs_hint_channels(self) -> None:
        with pytest.raises(ValueError, match=r"hint_spread=True needs a hint model"):
            UNetConfig(hint_spread=True)

    def test_residual_meets_every_hint(self) -> None:
        """hint_residual: the output equals the hint at every hinted pixel, whatever the net."""
        torch.manual_seed(0)
        gen = UNetGenerator(**HINT_TINY["pix2pix"], hint_channels=3, hint_residual=True).eval()
        lightness, hints = torch.randn(2, 1, 64, 64), _some_hints(2, 64)
        with torch.no_grad():
            out = gen(lightness, hints)
            plain = gen(lightness)
        mask = hints[:, 2:3].expand(-1, 2, -1, -1) > 0
        torch.testing.assert_close(out[mask], hints[:, :2][mask], atol=1e-5, rtol=0)
        assert (out - plain).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # and spreads beyond them
        with torch.no_grad():
            torch.testing.assert_close(gen(lightness, torch.zeros_like(hints)), plain)

    @pytest.mark.parametrize("spread", [False, True])
    def test_no_hints_skips_the_spreads(self, monkeypatch, spread) -> None:
        """hints=None: the output of all-zero planes, without spreading them."""
        torch.manual_seed(0)
        gen = UNetGenerator(
            **HINT_TINY["pix2pix"], hint_channels=3, hint_spread=spread, hint_residual=True
        ).eval()
        lightness = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            zeros = gen(lightness, torch.zeros(2, 3, 64, 64))
            monkeypatch.setattr(unet, "pyramid_spread", _no_spread)
            torch.testing.assert_close(gen(lightness), zeros, rtol=0, atol=1e-6)
            with pytest.raises(AssertionError, match="spread"):
                gen(lightness, torch.zeros(2, 3, 64, 64))

    def test_residual_needs_hint_channels(self) -> None:
        with pytest.raises(ValueError, match=r"hint_residual=True needs a hint model"):
            UNetConfig(hint_residual=True)


def _no_spread(*args: object, **kwargs: object) -> None:
    raise AssertionError("pyramid_spread was called")
