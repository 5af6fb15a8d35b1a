"""Presets in another format: the ``coco`` fastai checkpoint, converted once and cached.

Nothing here touches the network. The Hugging Face cache is pre-populated the way
huggingface_hub lays it out, and the Hub is switched off (``HF_HUB_OFFLINE=1``). The
``coco`` tests put a fastai ``DynamicUnet`` with random weights at exactly the preset's
repo, commit and file name; the error-path tests use a tiny preset of the same format.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import pixcolor
from helpers import populate_hf_cache
from pixcolor import (
    CheckpointError,
    Colorizer,
    DiskSpaceError,
    ModelNotFoundError,
    PatchDiscriminator,
    UNetGenerator,
)
from pixcolor._conversion_cache import CONVERSION_RECORD
from pixcolor._weights_only import load_weights_only
from pixcolor.cli import main
from pixcolor.presets import FORMATS, PRESETS, CheckpointFormat, Preset, cache_root
from test_convert import _tiny_generator, _to_fastai_generator

COCO = PRESETS["coco"]
TINY_REPO = "pixcolor-tests/tiny-fastai"
TINY_COMMIT = "1" * 40


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache in ``tmp_path / "hf"``, the Hub switched off."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture(scope="session")
def coco_checkpoint(tmp_path_factory: pytest.TempPathFactory, fastai_unet: nn.Module) -> Path:
    """fastai's DynamicUnet(resnet18, n_in=1, n_out=2) state dict, saved with torch.save."""
    path = tmp_path_factory.mktemp("coco") / "res18-unet.pt"
    torch.save(fastai_unet.state_dict(), path)
    return path


@pytest.fixture
def coco_cache(offline_hub: Path, coco_checkpoint: Path) -> Path:
    """The synthetic ``coco`` checkpoint in the HF cache; returns its snapshot path."""
    files = {str(COCO.filename): coco_checkpoint}
    return populate_hf_cache(offline_hub, str(COCO.repo_id), COCO.revision, files)[
        str(COCO.filename)
    ]


@pytest.fixture
def tiny(offline_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A preset 'tiny' of format fastai (a base_channels=8 DynamicUnet layout) in the HF
    cache; returns its snapshot path. The generator is ``tiny_generator()``."""
    path = tmp_path / "tiny.pt"
    torch.save(_to_fastai_generator(tiny_generator().state_dict()), path)
    monkeypatch.setitem(PRESETS, "tiny", _tiny_preset())
    return populate_hf_cache(offline_hub, TINY_REPO, TINY_COMMIT, {"tiny.pt": path})["tiny.pt"]


def tiny_generator() -> UNetGenerator:
    return _tiny_generator()


def _tiny_preset(**changes: object) -> Preset:
    fields: dict[str, object] = dict(
        repo_id=TINY_REPO,
        revision=TINY_COMMIT,
        filename="tiny.pt",
        format="fastai",
        architecture={"encoder": "resnet18", "in_channels": 1, "out_channels": 2},
        normalisation={"l_center": 0.0, "l_scale": 100.0, "ab_scale": 128.0},
        size=1_000_000,
    )
    fields.update(changes)
    return Preset(**fields)  # type: ignore[arg-type]


def _conversion(repo: str, commit: str, filename: str) -> Path:
    return cache_root() / "converted" / repo.replace("/", "--") / commit / filename


def _assert_same(a: nn.Module, b: nn.Module, atol: float = 0.0) -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        out_b = b(x).as_subclass(torch.Tensor)  # fastai returns its TensorBase subclass
        torch.testing.assert_close(a(x), out_b, rtol=0, atol=atol)


# ------------------------------------------------------------------------------- coco


class TestCoco:
    def test_synthetic_cache_is_where_huggingface_hub_looks(self, coco_cache: Path) -> None:
        from huggingface_hub import hf_hub_download

        for kwargs in ({"local_files_only": True}, {}):  # the second: HF_HUB_OFFLINE alone
            found = hf_hub_download(COCO.repo_id, COCO.filename, revision=COCO.revision, **kwargs)
            assert Path(found) == coco_cache and Path(found).resolve().is_file()

    def test_matches_fastai_dynamic_unet(self, coco_cache: Path, fastai_unet: nn.Module) -> None:
        gen = UNetGenerator.from_pretrained("coco")

        assert not gen.training
        config = gen.config
        assert (config.encoder, config.in_channels, config.out_channels) == ("resnet18", 1, 2)
        assert (config.l_center, config.l_scale, config.ab_scale) == (50.0, 50.0, 110.0)
        _assert_same(gen, fastai_unet, atol=1e-5)
        target = _conversion(str(COCO.repo_id), COCO.revision, str(COCO.filename))
        assert sorted(p.name for p in target.iterdir()) == sorted(
            [CONVERSION_RECORD, "config.json", "model.safetensors"]
        )
        assert json.loads((target / "config.json").read_text())["_class_name"] == "UNetGenerator"
        record = json.loads((target / CONVERSION_RECORD).read_text())
        assert record["revision"] == COCO.revision and record["format"] == "fastai"
        assert record["source_bytes"] == coco_cache.stat().st_size

    def test_colorizer_colorizes(self, coco_cache: Path) -> None:
        colorizer = Colorizer.from_pretrained("coco", device="cpu", precision="fp32")
        gray = np.random.default_rng(0).integers(0, 256, (40, 56), dtype=np.uint8)

        out = colorizer.colorize(gray, render_size=64)

        assert out.shape == (40, 56, 3) and out.dtype == np.uint8
        assert np.ptp(out.astype(int), axis=2).max() > 0  # some pixel has colour

    def test_later_loads_read_only_the_conversion(
        self, coco_cache: Path, fastai_unet: nn.Module
    ) -> None:
        UNetGenerator.from_pretrained("coco")
        coco_cache.resolve().unlink()  # the blob
        coco_cache.unlink()  # the snapshot's symlink

        with (
            mock.patch("torch.load", side_effect=AssertionError("torch.load called")),
            mock.patch("huggingface_hub.hf_hub_download", side_effect=AssertionError("Hub asked")),
        ):
            again = UNetGenerator.from_pretrained("coco")

        _assert_same(again, fastai_unet, atol=1e-5)

    @pytest.mark.parametrize("trap", ["os.system", "builtins.exec"])
    def test_booby_trapped_checkpoint_is_refused_and_never_run(
        self, offline_hub: Path, tmp_path: Path, trap: str
    ) -> None:
        marker = tmp_path / "pwned"
        payload = _Trap(trap, marker)
        path = tmp_path / "trap.pt"
        torch.save({"layers.0.0.weight": torch.zeros(1), "layers.0.1.weight": payload}, path)
        snapshot = populate_hf_cache(
            offline_hub, str(COCO.repo_id), COCO.revision, {str(COCO.filename): path}
        )[str(COCO.filename)]

        with pytest.raises(CheckpointError) as info:
            UNetGenerator.from_pretrained("coco")

        message = str(info.value)
        assert str(snapshot) in message and "ran nothing in it" in message
        assert ("system" if trap == "os.system" else "exec") in message
        assert not marker.exists()
        assert not _conversion(str(COCO.repo_id), COCO.revision, str(COCO.filename)).exists()
        # The trap is live: an unrestricted load runs it. (So the test above can fail.)
        torch.load(path, weights_only=False)
        assert marker.exists()

    def test_torch_older_than_2_6_is_refused_for_downloads(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(torch, "__version__", "2.5.1+cpu")
            with pytest.raises(
                CheckpointError, match=r"needs torch >= 2\.6, this is torch 2\.5\.1"
            ):
                UNetGenerator.from_pretrained("tiny")
        UNetGenerator.from_pretrained("tiny")  # converted with a safe torch, ...
        with monkeypatch.context() as patch:
            patch.setattr(torch, "__version__", "2.5.1+cpu")
            UNetGenerator.from_pretrained("tiny")  # ... the old one may load the safetensors

    def test_offline_and_not_cached_names_the_bundled_model(self, offline_hub: Path) -> None:
        with pytest.raises(ModelNotFoundError) as info:
            UNetGenerator.from_pretrained("coco")
        message = str(info.value)
        assert COCO.repo_id in message and COCO.filename in message
        assert "not converted" in message and "HF_HUB_OFFLINE" in message
        assert "bundled" in message and "network access" in message


class _Trap:
    """Pickles as a call to ``os.system`` / ``builtins.exec`` that creates ``marker``."""

    def __init__(self, kind: str, marker: Path) -> None:
        self.kind, self.marker = kind, marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        if self.kind == "os.system":
            return (os.system, (f"touch '{self.marker}'",))
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


# ------------------------------------------------------------------- the conversion cache


class TestConversionCache:
    def test_branch_revision_resolves_to_the_pinned_conversion(self, tiny: Path) -> None:
        first = UNetGenerator.from_pretrained("tiny")
        by_branch = UNetGenerator.from_pretrained("tiny", revision="main")
        _assert_same(by_branch, first)
        assert len(list((cache_root() / "converted").rglob(CONVERSION_RECORD))) == 1

    def test_truncated_conversion_is_rebuilt(self, tiny: Path) -> None:
        UNetGenerator.from_pretrained("tiny")
        weights = _conversion(TINY_REPO, TINY_COMMIT, "tiny.pt") / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])

        _assert_same(UNetGenerator.from_pretrained("tiny"), tiny_generator())

    def test_conversion_that_fails_to_load_is_rebuilt(
        self, tiny: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Header and size fine, tensors wrong: the strict load fails, one rebuild follows."""
        UNetGenerator.from_pretrained("tiny")
        target = _conversion(TINY_REPO, TINY_COMMIT, "tiny.pt")
        state = load_file(str(target / "model.safetensors"))
        state["net.head.weight"] = state["net.head.weight"][:1]
        save_file(state, str(target / "model.safetensors"))
        record = json.loads((target / CONVERSION_RECORD).read_text())
        record["weights_bytes"] = (target / "model.safetensors").stat().st_size
        (target / CONVERSION_RECORD).write_text(json.dumps(record))

        again = UNetGenerator.from_pretrained("tiny")

        _assert_same(again, tiny_generator())
        assert "converting it again" in caplog.text

    def test_conversion_by_an_older_converter_is_rebuilt(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        UNetGenerator.from_pretrained("tiny")
        record_path = _conversion(TINY_REPO, TINY_COMMIT, "tiny.pt") / CONVERSION_RECORD
        calls = []
        old = FORMATS["fastai"]

        def convert(path: Path, preset: Preset) -> object:
            calls.append(path)
            return old.convert(path, preset)

        monkeypatch.setitem(FORMATS, "fastai", CheckpointFormat(convert, version=2))
        UNetGenerator.from_pretrained("tiny")
        UNetGenerator.from_pretrained("tiny")

        assert len(calls) == 1
        assert json.loads(record_path.read_text())["format_version"] == 2

    def test_damaged_conversion_without_checkpoint_says_what_to_do(self, tiny: Path) -> None:
        UNetGenerator.from_pretrained("tiny")
        (_conversion(TINY_REPO, TINY_COMMIT, "tiny.pt") / CONVERSION_RECORD).write_text("{")
        tiny.resolve().unlink()
        tiny.unlink()

        with pytest.raises(ModelNotFoundError) as info:
            UNetGenerator.from_pretrained("tiny")

        message = str(info.value)
        assert "cannot be used" in message and "conversion.json is missing or unreadable" in message
        assert "network access" in message and "bundled" in message

    def test_interrupted_conversion_leaves_nothing_and_the_next_one_works(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def killed(self: object, directory: Path) -> Path:
            (Path(directory) / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(UNetGenerator, "save_pretrained", killed)
            with pytest.raises(KeyboardInterrupt):
                UNetGenerator.from_pretrained("tiny")
        parent = _conversion(TINY_REPO, TINY_COMMIT, "tiny.pt").parent
        assert [p.name for p in parent.iterdir()] == [".tiny.pt.lock"]
        # a kill -9 leaves its temporary directory behind: the next conversion removes it
        (parent / ".tiny.pt.deadbeef.tmp").mkdir()

        _assert_same(UNetGenerator.from_pretrained("tiny"), tiny_generator())
        assert sorted(p.name for p in parent.iterdir()) == [".tiny.pt.lock", "tiny.pt"]

    def test_interrupted_download_is_never_read(self, tiny: Path) -> None:
        """huggingface_hub downloads to blobs/<etag>.incomplete; only a finished file gets a
        snapshot entry. A half download is not a checkpoint."""
        blob = tiny.resolve()
        tiny.unlink()
        blob.rename(blob.with_name(blob.name + ".incomplete"))
        with pytest.raises(ModelNotFoundError, match="not converted"):
            UNetGenerator.from_pretrained("tiny")
        assert not (cache_root() / "converted").exists() or not any(
            (cache_root() / "converted").rglob("*.safetensors")
        )

    def test_not_enough_disk_for_the_conversion(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        usage = shutil.disk_usage("/")._replace(free=1000)
        monkeypatch.setattr("pixcolor._remote.shutil.disk_usage", lambda path: usage)
        with pytest.raises(DiskSpaceError, match=r"not enough disk space .* PIXCOLOR_CACHE"):
            UNetGenerator.from_pretrained("tiny")
        assert not any(cache_root().rglob("*.safetensors"))

    def test_disk_filling_up_during_the_conversion(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def disk_full(self: object, directory: Path) -> Path:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(UNetGenerator, "save_pretrained", disk_full)
        with pytest.raises(DiskSpaceError, match="nothing half-written is kept"):
            UNetGenerator.from_pretrained("tiny")
        parent = _conversion(TINY_REPO, TINY_COMMIT, "tiny.pt").parent
        assert [p.name for p in parent.iterdir()] == [".tiny.pt.lock"]

    def test_not_enough_disk_for_the_download(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        usage = shutil.disk_usage("/")._replace(free=10_000_000)
        monkeypatch.setattr("pixcolor._remote.shutil.disk_usage", lambda path: usage)
        with (
            mock.patch("huggingface_hub.hf_hub_download", side_effect=AssertionError("called")),
            pytest.raises(
                DiskSpaceError, match=r"download 'coco'.*about 124\.5 MB.* 10\.0 MB free"
            ),
        ):
            UNetGenerator.from_pretrained("coco", cache_dir=tmp_path / "hf")

    def test_checkpoint_of_another_architecture_is_refused(
        self, tiny: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        wrong = {"encoder": "resnet34", "in_channels": 1, "out_channels": 2}
        monkeypatch.setitem(PRESETS, "tiny", _tiny_preset(architecture=wrong))
        with pytest.raises(CheckpointError, match=r"encoder='resnet18' \(preset: 'resnet34'\)"):
            UNetGenerator.from_pretrained("tiny")

    def test_wrong_class_is_named_and_not_rebuilt(self, tiny: Path) -> None:
        UNetGenerator.from_pretrained("tiny")
        with (
            mock.patch("torch.load", side_effect=AssertionError("rebuilt")),
            pytest.raises(CheckpointError, match="UNetGenerator.from_pretrained"),
        ):
            PatchDiscriminator.from_pretrained("tiny")

    def test_subfolder_does_not_apply(self, tiny: Path) -> None:
        with pytest.raises(ValueError, match="single fastai file"):
            UNetGenerator.from_pretrained("tiny", subfolder="generator")


# --------------------------------------------------------------------- the registry


class TestRegistry:
    def test_a_new_format_plugs_in(
        self, offline_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """What a DeOldify-style format needs: a checkpoint that pickles ``slice`` (allowed
        explicitly), converted into another model class than UNetGenerator."""
        torch.manual_seed(0)
        disc = PatchDiscriminator(base_channels=8, n_layers=2).eval()
        path = tmp_path / "learner.pth"
        torch.save({"model": disc.state_dict(), "crop": slice(0, 2)}, path)
        with pytest.raises(CheckpointError, match="names the Python global slice"):
            load_weights_only(path)  # not allowed by default

        def convert(checkpoint: Path, preset: Preset) -> PatchDiscriminator:
            loaded = load_weights_only(checkpoint, allowed_globals=[slice])
            assert loaded["crop"] == slice(0, 2)
            model = PatchDiscriminator(**preset.architecture)
            model.load_state_dict(loaded["model"])
            return model

        monkeypatch.setitem(FORMATS, "learner", CheckpointFormat(convert))
        preset = Preset(
            repo_id="pixcolor-tests/learner",
            revision="2" * 40,
            filename="learner.pth",
            format="learner",
            architecture={"base_channels": 8, "n_layers": 2},
        )
        monkeypatch.setitem(PRESETS, "learner", preset)
        populate_hf_cache(offline_hub, "pixcolor-tests/learner", "2" * 40, {"learner.pth": path})

        loaded = PatchDiscriminator.from_pretrained("learner")

        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), disc(x), rtol=0, atol=0)
        with pytest.raises(CheckpointError, match="holds a 'PatchDiscriminator'"):
            UNetGenerator.from_pretrained("learner")

    def test_unknown_format_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(PRESETS, "odd", _tiny_preset(format="caffe"))
        with pytest.raises(CheckpointError, match=r"format 'caffe'; this pixcolor converts \["):
            UNetGenerator.from_pretrained("odd")

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"revision": "main"}, "full 40-character commit hash"),
            ({"filename": None}, "needs repo_id and filename"),
            ({"path": "weights/x"}, "exactly one of repo_id and path"),
        ],
    )
    def test_preset_validation(self, changes: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            _tiny_preset(**changes)

    def test_coco_preset_describes_the_upload(self) -> None:
        assert COCO.repo_id == "sankhyikii/res18-recolor-unet.pt"
        assert COCO.revision == "c32131463195b6edce1e6a885bc26109281f5048"
        assert COCO.filename == "res18-unet.pt" and COCO.format == "fastai"
        assert COCO.license == "creativeml-openrail-m"
        assert "not measured" in COCO.description
        assert pixcolor.PRESETS is PRESETS and pixcolor.Preset is Preset


# ----------------------------------------------------------------------- command line


class TestCommandLine:
    def test_models_lists_presets_and_what_is_cached(
        self, coco_cache: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["models", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows["bundled"]["cached"] == "in the package"
        assert rows["coco"]["cached"] == "downloaded, not converted"
        assert rows["coco"]["license"] == "creativeml-openrail-m"
        assert rows["coco"]["size"] == "124.5 MB"
        UNetGenerator.from_pretrained("coco")

        assert main(["models"]) == 0

        out = capsys.readouterr().out
        assert "coco" in out and "converted" in out and COCO.repo_id in out
        assert "not measured" in out
        assert str(cache_root() / "inference") in out  # where "auto"'s measurements live

    def test_colorize_coco_offline_without_cache(
        self, offline_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from PIL import Image

        Image.new("L", (40, 30), 128).save(tmp_path / "gray.png")
        code = main(["colorize", str(tmp_path / "gray.png"), "--model", "coco",
                     "-o", str(tmp_path / "out")])  # fmt: skip
        assert code == 1
        err = capsys.readouterr().err
        assert "bundled" in err and "leave out --model" in err
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    def test_colorize_coco_with_the_cache(
        self, coco_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from PIL import Image

        Image.new("L", (40, 30), 128).save(tmp_path / "gray.png")
        code = main(["colorize", str(tmp_path / "gray.png"), "--model", "coco",
                     "--render-size", "64", "-o", str(tmp_path / "out")])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        with Image.open(tmp_path / "out" / "gray.png") as out:
            assert out.size == (40, 30) and out.mode == "RGB"


def test_one_cache_root_for_conversions_exports_and_measurements(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pixcolor import _onnxruntime, _tuning_cache

    monkeypatch.delenv("PIXCOLOR_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "pixcolor"
    assert _onnxruntime.cache_dir() == cache_root() == _tuning_cache.cache_root()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "pixcolor" == _onnxruntime.cache_dir()
    monkeypatch.setenv("PIXCOLOR_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine" == _onnxruntime.cache_dir()
