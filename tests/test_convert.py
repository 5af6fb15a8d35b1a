"""Tests for pixcolor.convert: fastai DynamicUnet checkpoints -> pixcolor models.

The equivalence tests build real fastai models (``pip install fastai``; skipped without it).
The others synthesise fastai-layout state dicts from tiny pixcolor models with a key map
written out by hand below, independently of the one in ``convert.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import pixcolor
from helpers import randomise_batchnorm
from pixcolor.convert import FASTAI_SOURCES, convert_fastai
from pixcolor.errors import CheckpointError

# pixcolor ResNet encoder module -> index in fastai's create_body(resnet, cut=-2).
_BODY_INDEX = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}


def _to_fastai_generator(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pixcolor ResNet U-Net state dict -> the keys fastai's DynamicUnet gives it."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("net.")
        head, _, rest = key.partition(".")
        if head == "encoder":
            module, _, rest = rest.partition(".")
            out[f"layers.0.{_BODY_INDEX[module]}.{rest}"] = value
        elif head == "decoder":
            block, _, rest = rest.partition(".")
            out[f"layers.{4 + int(block)}.{rest}"] = value
        else:
            index = {"bottleneck_bn": 1, "middle": 3, "final_shuf": 8, "res_block": 11}.get(head)
            out[f"layers.{index}.{rest}" if index else f"layers.12.0.{rest}"] = value
    return out


def _to_tutorial_discriminator(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pixcolor PatchDiscriminator(n_layers=3) keys -> the tutorial's nested Sequentials."""
    where = {
        0: (0, 0),
        2: (1, 0),
        3: (1, 1),
        5: (2, 0),
        6: (2, 1),
        8: (3, 0),
        9: (3, 1),
        11: (4, 0),
    }
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"model\.(\d+)\.(.+)", key)
        assert m is not None
        block, layer = where[int(m[1])]
        out[f"model.{block}.{layer}.{m[2]}"] = value
    return out


def _randomise(model: nn.Module) -> nn.Module:
    """Random BN statistics and affine parameters and conv biases, so that a mis-mapped
    tensor changes the output; eval mode."""
    torch.manual_seed(1)
    return randomise_batchnorm(model, conv_bias=True).eval()


def _tiny_generator(encoder: str = "resnet18") -> pixcolor.UNetGenerator:
    torch.manual_seed(0)
    gen = pixcolor.UNetGenerator(
        encoder=encoder, base_channels=8, norm="none", output_activation="none"
    )
    return _randomise(gen)  # type: ignore[return-value]


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> tuple[Path, pixcolor.UNetGenerator]:
    gen = _tiny_generator()
    path = tmp_path / "tiny.pt"
    torch.save(_to_fastai_generator(gen.state_dict()), path)
    return path, gen


# ----------------------------------------------------------------- equivalence with fastai


class _TutorialPatchDiscriminator(nn.Module):
    """The tutorial's PatchDiscriminator(input_c=3, num_filters=64, n_down=3), as published."""

    def __init__(self, input_c: int = 3, num_filters: int = 64, n_down: int = 3) -> None:
        super().__init__()
        model = [self._block(input_c, num_filters, norm=False)]
        model += [
            self._block(
                num_filters * 2**i, num_filters * 2 ** (i + 1), s=1 if i == n_down - 1 else 2
            )
            for i in range(n_down)
        ]
        model += [self._block(num_filters * 2**n_down, 1, s=1, norm=False, act=False)]
        self.model = nn.Sequential(*model)

    @staticmethod
    def _block(ni: int, nf: int, s: int = 2, norm: bool = True, act: bool = True) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Conv2d(ni, nf, 4, s, 1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(nf))
        if act:
            layers.append(nn.LeakyReLU(0.2, True))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(torch.Tensor)  # fastai returns its TensorBase subclass


def test_fastai_dynamic_unet_state_dict_gives_the_same_outputs(
    tmp_path: Path, fastai_unet: nn.Module
) -> None:
    fastai_model = fastai_unet
    torch.save(fastai_model.state_dict(), tmp_path / "res-unet.pt")

    out = convert_fastai(tmp_path / "res-unet.pt", tmp_path / "converted")

    assert sorted(p.name for p in out.iterdir()) == ["generator"]
    gen = pixcolor.UNetGenerator.from_pretrained(out / "generator")
    assert gen.config.encoder == "resnet18"
    assert (gen.config.l_center, gen.config.l_scale, gen.config.ab_scale) == (50.0, 50.0, 110.0)
    n_params = sum(p.numel() for p in gen.parameters())
    assert n_params == sum(p.numel() for p in fastai_model.parameters())
    torch.manual_seed(2)
    x = torch.randn(1, 1, 64, 96)  # 2x3 at the bottleneck: exercises every 3x3 tap, H != W
    with torch.no_grad():
        torch.testing.assert_close(gen(x), _plain(fastai_model(x)), rtol=0, atol=1e-5)


def test_fastai_main_model_converts_generator_and_discriminator(
    tmp_path: Path, fastai_unet: nn.Module
) -> None:
    fastai_model = fastai_unet
    torch.manual_seed(3)
    main = nn.Module()
    main.net_G = nn.Module()
    main.net_G.module = fastai_model  # keys net_G.module.layers.*, as under DataParallel
    main.net_D = _randomise(_TutorialPatchDiscriminator())
    main.GANcriterion = nn.Module()
    main.GANcriterion.register_buffer("real_label", torch.tensor(1.0))
    main.GANcriterion.register_buffer("fake_label", torch.tensor(0.0))
    torch.save({"model": main.state_dict(), "opt": {"lr": 2e-4}}, tmp_path / "main.pth")

    out = convert_fastai(tmp_path / "main.pth", tmp_path / "converted", source="seed001")

    gen = pixcolor.UNetGenerator.from_pretrained(out / "generator")
    disc = pixcolor.PatchDiscriminator.from_pretrained(out / "discriminator")
    assert (gen.config.l_center, gen.config.l_scale, gen.config.ab_scale) == (0.0, 100.0, 128.0)
    assert (disc.config.in_channels, disc.config.base_channels, disc.config.n_layers) == (3, 64, 3)
    x = torch.randn(1, 1, 96, 64)
    lab = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gen(x), _plain(fastai_model(x)), rtol=0, atol=1e-5)
        torch.testing.assert_close(disc(lab), main.net_D(lab), rtol=0, atol=1e-5)


# ------------------------------------------------------------------- without fastai


@pytest.mark.parametrize("encoder", ["resnet18", "resnet34"])
def test_synthesised_checkpoint_round_trips_exactly(tmp_path: Path, encoder: str) -> None:
    gen = _tiny_generator(encoder)
    state = {f"module.{k}": v for k, v in _to_fastai_generator(gen.state_dict()).items()}
    torch.save(state, tmp_path / "dp.pt")

    out = convert_fastai(tmp_path / "dp.pt", tmp_path / "out")

    again = pixcolor.UNetGenerator.from_pretrained(out / "generator")
    assert again.config.encoder == encoder and again.config.base_channels == 8
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), gen(x), rtol=0, atol=0)


def test_main_model_layout_without_fastai(tmp_path: Path) -> None:
    gen = _tiny_generator()
    disc = _randomise(pixcolor.PatchDiscriminator(base_channels=8))
    state = {f"net_G.{k}": v for k, v in _to_fastai_generator(gen.state_dict()).items()}
    state |= {f"net_D.{k}": v for k, v in _to_tutorial_discriminator(disc.state_dict()).items()}
    state["GANcriterion.real_label"] = torch.tensor(1.0)
    state["GANcriterion.fake_label"] = torch.tensor(0.0)
    torch.save({"state_dict": state}, tmp_path / "main.pt")

    out = convert_fastai(tmp_path / "main.pt", tmp_path / "out")

    disc2 = pixcolor.PatchDiscriminator.from_pretrained(out / "discriminator")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(disc2(x), disc(x), rtol=0, atol=0)


def test_pickled_module_is_refused_without_unpickling(tmp_path: Path) -> None:
    torch.save(_tiny_generator(), tmp_path / "whole-model.pt")
    with pytest.raises(CheckpointError, match="pickled Python objects") as caught:
        convert_fastai(tmp_path / "whole-model.pt", tmp_path / "out")
    assert str(caught.value).count("pickled Python objects") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"hello world\n", "is text"),
        (b"\x89PNG\r\n\x1a\n" + bytes(24), "is a PNG image"),
        (b"", "is empty"),
    ],
)
@pytest.mark.parametrize("convert", [convert_fastai, pixcolor.convert_deoldify])
def test_a_file_that_is_no_checkpoint_is_named_with_what_it_is(
    tmp_path: Path, convert: object, content: bytes, what: str
) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        convert(path, tmp_path / "out")  # type: ignore[operator]
    assert str(caught.value) == (
        f"{path} is not a PyTorch checkpoint: it {what}; expected a .pt / .pth file written "
        "by torch.save (a zip archive or a pickle)"
    )
    assert not (tmp_path / "out").exists()


def test_truncated_checkpoint_says_so(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(64)}, tmp_path / "full.pt")
    path = tmp_path / "weights.pt"
    path.write_bytes((tmp_path / "full.pt").read_bytes()[:100])
    with pytest.raises(
        CheckpointError,
        match=r"weights.pt is not a readable PyTorch checkpoint \(truncated or damaged\?\): \S",
    ):
        convert_fastai(path, tmp_path / "out")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([torch.zeros(1)], "holds a list"),
        ({"layers.0.0.weight": torch.zeros(1), "epoch": 3}, r"'epoch' \(int\)"),
        ({"encoder.weight": torch.zeros(1)}, "neither a fastai DynamicUnet"),
    ],
)
def test_non_state_dicts_are_refused(tmp_path: Path, obj: object, message: str) -> None:
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=message):
        convert_fastai(tmp_path / "x.pt", tmp_path / "out")


def test_wrong_keys_are_listed(tmp_path: Path, tiny_checkpoint: tuple[Path, object]) -> None:
    state = torch.load(tiny_checkpoint[0], weights_only=True)
    del state["layers.11.convpath.1.0.bias"]
    state["layers.4.conv2.2.query.weight"] = torch.zeros(1)  # fastai's self-attention
    state["layers.3.0.0.weight"] = state["layers.3.0.0.weight"][:, :-1]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        convert_fastai(tmp_path / "bad.pt", tmp_path / "out")
    message = str(info.value)
    assert "layers.4.conv2.2.query.weight" in message
    assert "net.res_block.convpath.1.0.bias" in message
    assert re.search(
        r"layers\.3\.0\.0\.weight: file \(128, 63, 3, 3\) vs \(128, 64, 3, 3\)", message
    )


def test_unknown_encoder_depth_is_refused(
    tmp_path: Path, tiny_checkpoint: tuple[Path, object]
) -> None:
    state = torch.load(tiny_checkpoint[0], weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("layers.0.7.1.")}
    torch.save(state, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"\(2, 2, 2, 1\) blocks"):
        convert_fastai(tmp_path / "x.pt", tmp_path / "out")


def test_tutorial_scratch_unet_is_named_in_the_error(tmp_path: Path) -> None:
    torch.save({"net_G.model.model.0.weight": torch.zeros(64, 1, 4, 4)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="from-scratch pix2pix"):
        convert_fastai(tmp_path / "x.pt", tmp_path / "out")


def test_existing_output_is_kept_unless_overwrite(
    tmp_path: Path, tiny_checkpoint: tuple[Path, object]
) -> None:
    path, _ = tiny_checkpoint
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_fastai(path, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    convert_fastai(path, out, overwrite=True)

    assert [p.name for p in out.iterdir()] == ["generator"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.pt"]  # no temp dirs left


def test_empty_output_dir_is_used(tmp_path: Path, tiny_checkpoint: tuple[Path, object]) -> None:
    (tmp_path / "out").mkdir()
    convert_fastai(tiny_checkpoint[0], tmp_path / "out")
    assert (tmp_path / "out" / "generator" / "model.safetensors").is_file()


def test_interrupted_write_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _tiny_generator()
    disc = pixcolor.PatchDiscriminator(base_channels=8)
    state = {f"net_G.{k}": v for k, v in _to_fastai_generator(gen.state_dict()).items()}
    state |= {f"net_D.{k}": v for k, v in _to_tutorial_discriminator(disc.state_dict()).items()}
    torch.save(state, tmp_path / "main.pt")

    def disk_full(self: object, directory: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pixcolor.PatchDiscriminator, "save_pretrained", disk_full)
    with pytest.raises(OSError, match="No space left"):
        convert_fastai(tmp_path / "main.pt", tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["main.pt"]


def test_unknown_source_is_refused(tiny_checkpoint: tuple[Path, object], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"source must be one of \['seed001', 'tutorial'\]"):
        convert_fastai(tiny_checkpoint[0], tmp_path / "out", source="deoldify")
    assert set(FASTAI_SOURCES) == {"seed001", "tutorial"}
