"""DeOldifyGenerator: checked against DeOldify's own network, conversion, Colorizer.

The reference tests run DeOldify's ``DynamicUnetDeep`` / ``DynamicUnetWide`` (the
``deoldify`` 0.0.1 wheel, vendored fastai v1) in its own venv, built by
``scripts/make_deoldify_reference_venv.sh`` (CI does; elsewhere they skip and say so), and
exchange tensors through safetensors files. The other tests need no reference: they
synthesise DeOldify-layout state dicts from tiny pixcolor models with a key map written out
by hand below, independently of the one in ``convert_deoldify.py``.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pixcolor
from conftest import REFERENCE_NETWORKS, Reference
from pixcolor import Colorizer, DeOldifyGenerator, convert_deoldify, lab
from pixcolor.convert_deoldify import deoldify_from_state_dict, load_deoldify_checkpoint
from pixcolor.errors import CheckpointError
from pixcolor.models.deoldify import DEOLDIFY_VARIANTS, _SelfAttention

# Parameter counts DeOldify's networks report, less the weight-norm gains (weight_g) of
# their last upsampling, which pixcolor folds into the weight.
PARAMETERS = {
    "artistic": 63_646_881 - 1200,
    "stable": 218_222_197 - 1024,
    "wide34": 46_095_093 - 1024,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REFERENCE_NETWORKS))
def test_matches_deoldify(deoldify_reference: Callable[[str], Reference], name: str) -> None:
    state, ref = deoldify_reference(name)
    gen = deoldify_from_state_dict(state)
    decoder, encoder, nf_factor = REFERENCE_NETWORKS[name].split(":")
    assert (gen.config.decoder, gen.config.encoder) == (decoder, encoder)
    assert gen.config.nf_factor == float(nf_factor)
    assert sum(p.numel() for p in gen.parameters()) == PARAMETERS[name]
    logits = []
    gen.head.register_forward_hook(lambda m, i, o: logits.append(o))
    with torch.no_grad():
        out = gen(ref["input"])
        out64 = gen.double()(ref["input"].double())
    # float64 on both sides: what the two networks compute, free of float32 rounding
    torch.testing.assert_close(out64, ref["output64"], atol=1e-5, rtol=0)
    # float32: the ResNet-101 one lands 1.2e-5 away at outputs near 3 (from float64 both are
    # 2.2e-5 away; changing torch's thread count alone moves it 1.8e-5), hence rtol too
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[0], ref["logits"], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_learner_checkpoint_converts_and_round_trips(
    deoldify_reference: Callable[[str], Reference], tmp_path: Path
) -> None:
    state, ref = deoldify_reference("artistic")
    learner = {"model": state, "opt": {"layer_groups": [slice(0, 3)], "lr": 1e-3}}
    torch.save(learner, tmp_path / "ColorizeArtistic_gen.pth")
    out_dir = convert_deoldify(tmp_path / "ColorizeArtistic_gen.pth", tmp_path / "converted")
    gen = DeOldifyGenerator.from_pretrained(out_dir)
    assert gen.config == pixcolor.DeOldifyConfig(**DEOLDIFY_VARIANTS["artistic"])
    with torch.no_grad():
        torch.testing.assert_close(gen(ref["input"]), ref["output"], atol=1e-5, rtol=0)


# --- without the reference ------------------------------------------------------------------


def _tiny(decoder: str = "wide", **kwargs: object) -> DeOldifyGenerator:
    """A small DeOldifyGenerator (ResNet-18 body, narrow decoder) with every batch norm and
    the self-attention gain moved off their defaults; eval mode."""
    return copy.deepcopy(_tiny_cached(decoder, tuple(sorted(kwargs.items()))))


@functools.cache
def _tiny_cached(decoder: str, kwargs: tuple) -> DeOldifyGenerator:
    torch.manual_seed(0)
    nf_factor = 0.0625 if decoder == "wide" else 0.25
    gen = DeOldifyGenerator(
        encoder="resnet18", decoder=decoder, nf_factor=nf_factor, **dict(kwargs)
    )
    with torch.no_grad():
        for m in gen.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.normal_(0.0, 0.2)
            elif isinstance(m, _SelfAttention):
                m.gamma.fill_(0.5)
    return gen.eval()


def _to_deoldify_layout(gen: DeOldifyGenerator) -> dict[str, torch.Tensor]:
    """pixcolor state dict -> DeOldify's keys, with spectral norm (weight_orig, _u, _v)
    and the last upsampling's weight norm (weight_g, weight_v) unfolded."""
    body = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    sublayer = {"conv": "0", "bn": "2", "attention": "3"}
    torch.manual_seed(1)
    out: dict[str, torch.Tensor] = {}
    for key, value in gen.state_dict().items():
        parts = key.split(".")
        if parts[0] == "encoder":
            target = f"layers.0.{body[parts[1]]}.{'.'.join(parts[2:])}"
        elif parts[0] == "bottleneck_bn":
            target = f"layers.1.{parts[1]}"
        elif parts[0] == "middle":
            target = f"layers.3.{parts[1]}.{sublayer[parts[2]]}.{'.'.join(parts[3:])}"
        elif parts[0] == "decoder":
            block, rest = f"layers.{4 + int(parts[1])}", parts[2:]
            if rest[0] == "skip_bn":
                target = f"{block}.bn.{rest[1]}"
            elif rest[0] == "shuf":
                target = f"{block}.shuf.conv.{'0' if rest[1] == 'conv' else '1'}.{rest[2]}"
            else:
                target = f"{block}.{rest[0]}.{sublayer[rest[1]]}.{'.'.join(rest[2:])}"
        elif parts[0] == "final_shuf":
            target = f"layers.8.conv.0.{parts[2]}"
        elif parts[0] == "res_block":
            target = f"layers.10.layers.{int(parts[1][-1]) - 1}.0.{parts[2]}"
        else:
            assert parts[0] == "head"
            target = f"layers.11.0.{parts[1]}"
        if parts[0] == "final_shuf" and parts[-1] == "weight":
            norm = value.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            out[target + "_g"], out[target + "_v"] = norm, value * 3.0
        elif parts[0] != "encoder" and parts[-1] == "weight" and value.dim() >= 3:
            orig = value * 2.0
            matrix = orig.flatten(1)
            v = nn.functional.normalize(torch.randn(matrix.shape[1]), dim=0)
            wv = matrix @ v
            out[target + "_orig"], out[target + "_v"] = orig, v
            out[target + "_u"] = wv * (2.0 / wv.dot(wv))  # sigma = u . (W v) = 2
        else:
            out[target] = value
    return out


class TestArchitecture:
    @pytest.mark.parametrize(
        ("variant", "count"),
        [("artistic", PARAMETERS["artistic"]), ("stable", PARAMETERS["stable"])],
    )
    def test_published_sizes(self, variant: str, count: int) -> None:
        with torch.device("meta"):
            gen = DeOldifyGenerator(**DEOLDIFY_VARIANTS[variant])
        assert sum(p.numel() for p in gen.parameters()) == count
        attention = [name for name, m in gen.named_modules() if isinstance(m, _SelfAttention)]
        assert attention == [f"decoder.1.{'conv2' if variant == 'artistic' else 'conv'}.attention"]

    def test_default_is_artistic(self) -> None:
        assert pixcolor.DeOldifyConfig() == pixcolor.DeOldifyConfig(**DEOLDIFY_VARIANTS["artistic"])
        assert DEOLDIFY_VARIANTS["video"]["render_size"] == 21 * 16

    @pytest.mark.parametrize("decoder", ["wide", "deep"])
    def test_shapes_and_range(self, decoder: str) -> None:
        gen = _tiny(decoder)
        with torch.no_grad():
            out = gen(torch.randn(2, 3, 48, 80))  # 48 = 3 x 16: a skip size the upsampling misses
        assert out.shape == (2, 3, 48, 80)
        assert out.min() > -3 and out.max() < 3

    def test_linear_output(self) -> None:
        gen = _tiny(y_range=None)
        with torch.no_grad():
            x = torch.randn(1, 3, 32, 32)
            assert not torch.equal(gen(x), _tiny()(x))

    @pytest.mark.parametrize(
        ("shape", "message"),
        [((1, 1, 32, 32), r"\(B, 3, H, W\)"), ((1, 3, 40, 32), "multiples of 16")],
    )
    def test_bad_input(self, shape: tuple[int, ...], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            _tiny()(torch.zeros(shape))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"encoder": "vgg16"}, "encoder must be one of"),
            ({"decoder": "tall"}, "decoder must be one of"),
            ({"nf_factor": 0}, "nf_factor must be a positive"),
            ({"decoder": "wide", "nf_factor": 0.001}, "512 \\* nf_factor"),
            ({"y_range": (3, -3)}, "low < high"),
            ({"input_std": (1.0, 0.0, 1.0)}, "input_std must be positive"),
            ({"input_mean": (0.5, 0.5)}, "3 values"),
            ({"render_size": 500}, "multiple of 16, got 500"),
        ],
    )
    def test_bad_config(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            pixcolor.DeOldifyConfig(**kwargs)

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        gen = _tiny("deep", render_size=336)
        gen.save_pretrained(tmp_path)
        again = DeOldifyGenerator.from_pretrained(tmp_path)
        assert again.config == gen.config
        x = torch.randn(1, 3, 32, 48)
        with torch.no_grad():
            assert torch.equal(gen(x), again(x))
        with pytest.raises(CheckpointError, match="DeOldifyGenerator"):
            pixcolor.UNetGenerator.from_pretrained(tmp_path)


class TestConversion:
    @pytest.mark.parametrize("decoder", ["wide", "deep"])
    def test_state_dict(self, decoder: str) -> None:
        gen = _tiny(decoder)
        state = _to_deoldify_layout(gen)
        assert any(k.endswith("weight_orig") for k in state) and "layers.8.conv.0.weight_g" in state
        converted = deoldify_from_state_dict(state, render_size=336)
        assert converted.config == gen.config.__class__(**{**vars(gen.config), "render_size": 336})
        x = torch.randn(1, 3, 48, 64)
        with torch.no_grad():
            torch.testing.assert_close(converted(x), gen(x), atol=1e-5, rtol=1e-5)

    def test_learner_file(self, tmp_path: Path) -> None:
        gen = _tiny()
        path = tmp_path / "ColorizeVideo_gen.pth"
        torch.save({"model": _to_deoldify_layout(gen), "extra": (slice(1, 2), 3)}, path)
        assert set(load_deoldify_checkpoint(path)) == set(_to_deoldify_layout(gen))
        out = convert_deoldify(path, tmp_path / "out", render_size=336)
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        loaded = DeOldifyGenerator.from_pretrained(out)
        assert loaded.config.render_size == 336
        with pytest.raises(FileExistsError, match="not empty"):
            convert_deoldify(path, out)
        convert_deoldify(path, out, overwrite=True)

    def test_trap_is_refused_and_not_run(self, tmp_path: Path) -> None:
        marker = tmp_path / "pwned"

        class Trap:
            def __reduce__(self) -> tuple:
                return (os.system, (f"touch {marker}",))

        path = tmp_path / "trap.pth"
        torch.save({"model": _to_deoldify_layout(_tiny()), "opt": Trap()}, path)
        with pytest.raises(CheckpointError, match=r"system.*ran nothing"):
            convert_deoldify(path, tmp_path / "out")
        assert not marker.exists() and not (tmp_path / "out").exists()

    def test_other_globals_refused(self, tmp_path: Path) -> None:
        import functools

        path = tmp_path / "partial.pth"
        torch.save({"model": {}, "opt_func": functools.partial(max, 1)}, path)
        with pytest.raises(CheckpointError, match="functools.partial"):
            load_deoldify_checkpoint(path)

    def test_not_a_generator(self, tmp_path: Path) -> None:
        state = _to_deoldify_layout(_tiny())
        with pytest.raises(CheckpointError, match="no torchvision ResNet body"):
            deoldify_from_state_dict(
                {k: v for k, v in state.items() if not k.startswith("layers.0.7.")}
            )
        broken = dict(state)
        del broken["layers.11.0.bias"]
        broken["layers.12.extra"] = torch.zeros(1)
        with pytest.raises(CheckpointError, match=r"layers\.12\.extra.*absent.*head\.bias"):
            deoldify_from_state_dict(broken)
        del broken["layers.3.0.0.weight_u"]
        with pytest.raises(CheckpointError, match="spectral norm at 'layers.3.0.0.weight'"):
            deoldify_from_state_dict(broken)
        with pytest.raises(CheckpointError, match="read from the tensors"):
            deoldify_from_state_dict(state, decoder="deep")
        path = tmp_path / "list.pth"
        torch.save([1, 2], path)
        with pytest.raises(CheckpointError, match="holds a list"):
            load_deoldify_checkpoint(path)

    def test_missing_batch_counters_are_filled(self) -> None:
        gen = _tiny()
        state = {
            k: v for k, v in _to_deoldify_layout(gen).items() if "num_batches_tracked" not in k
        }
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(deoldify_from_state_dict(state)(x), gen(x))


class TestColorizer:
    def test_network_input_is_normalised_luma(self) -> None:
        gen = _tiny()
        rgb = torch.rand(2, 3, 4, 5)
        x = gen.network_input(rgb)
        mean = torch.tensor(gen.config.input_mean).view(1, 3, 1, 1)
        std = torch.tensor(gen.config.input_std).view(1, 3, 1, 1)
        gray = x * std + mean
        luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
        for c in range(3):
            torch.testing.assert_close(gray[:, c], luma)
        gray_photo = rgb[:, :1].expand(-1, 3, -1, -1)
        torch.testing.assert_close(gen.network_input(gray_photo) * std + mean, gray_photo)

    def test_predicted_ab_is_the_outputs_chroma(self) -> None:
        gen = _tiny()
        rgb = torch.rand(1, 3, 6, 6)
        mean = torch.tensor(gen.config.input_mean).view(1, 3, 1, 1)
        std = torch.tensor(gen.config.input_std).view(1, 3, 1, 1)
        torch.testing.assert_close(gen.predicted_ab((rgb - mean) / std), lab.rgb_to_lab(rgb)[:, 1:])
        # out-of-range output is clipped to [0, 1] first, as DeOldify's 8-bit output is
        over = torch.ones(1, 3, 2, 2) * 5
        white = lab.rgb_to_lab(torch.ones(1, 3, 2, 2))[:, 1:]
        torch.testing.assert_close(gen.predicted_ab(over), white)

    @pytest.mark.parametrize("eight_bit", [False, True])
    def test_colorizer_runs_the_generators_own_path(self, eight_bit: bool) -> None:
        """Colorizer's inference path (InferenceModel: batch norms folded, any input
        dtype) gives the a/b of generator.predicted_ab(generator(network_input(rgb)))."""
        gen = _tiny(render_size=64)
        colorizer = Colorizer(gen, device="cpu", precision="fp32")
        torch.manual_seed(3)
        small = torch.rand(2, 3, 64, 64)
        if eight_bit:
            small = small.mul(255).round().to(torch.uint8)
        rgb = small.float() / 255 if eight_bit else small
        with torch.no_grad():
            expected = gen.predicted_ab(gen(gen.network_input(rgb)))
        got = colorizer._predict_ab(list(small.split(1)))  # each photo's own input
        assert expected.abs().max() > 5  # real colour, so the comparison means something
        torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)

    def test_from_pretrained_colorizes(self, tmp_path: Path) -> None:
        _tiny(render_size=64).save_pretrained(tmp_path / "m")
        colorizer = Colorizer.from_pretrained(tmp_path / "m", device="cpu", precision="fp32")
        assert isinstance(colorizer.generator, DeOldifyGenerator)
        seen = []
        network = colorizer.network  # the InferenceModel colorize runs (a folded copy)

        class Spy:
            hint_channels = network.hint_channels

            def __call__(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
                seen.append(x.shape)
                return network(x, hints)

        colorizer.network = Spy()  # type: ignore[assignment]
        rng = np.random.default_rng(0)
        gray = rng.integers(0, 256, (50, 70), dtype=np.uint8)
        out = colorizer.colorize(gray)
        assert seen == [(1, 3, 64, 64)]  # the config's render_size
        assert out.shape == (50, 70, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - out.mean(-1, keepdims=True)).max() > 2  # some colour
        # the photo's own Rec. 601 luma (as DeOldify keeps its Y), up to 8-bit rounding
        luma = out.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        assert np.abs(luma - gray).max() <= 1.0
        assert np.array_equal(colorizer.colorize(gray, saturation=0.0)[..., 0], gray)
        colorizer.colorize(gray, render_size=32)
        assert seen[-1] == (1, 3, 32, 32)
        with pytest.raises(ValueError, match="multiple of 16, got 40"):
            colorizer.colorize(gray, render_size=40)
