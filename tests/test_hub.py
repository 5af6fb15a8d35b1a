"""Weights I/O: save -> load, the Hugging Face cache offline, push_to_hub with HfApi mocked."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file, save_file

import pixcolor
from helpers import randomise_batchnorm
from pixcolor import CheckpointError, ModelNotFoundError, PatchDiscriminator, UNetGenerator
from pixcolor.hub import CONFIG_NAME, PRESETS, WEIGHTS_NAME, Preset

REPO_ID = "pixcolor-tests/tiny-unet"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _tiny_generator(seed: int = 0) -> UNetGenerator:
    torch.manual_seed(seed)
    gen = UNetGenerator(
        encoder="resnet18", base_channels=8, l_center=0.0, l_scale=100.0, ab_scale=128.0
    )
    return randomise_batchnorm(gen).eval()  # a lost buffer would show


def _populate_hf_cache(
    cache: Path, source: Path, repo_id: str, subfolder: str | None = None
) -> None:
    """Lay files out as huggingface_hub's cache does after a download of ``main``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    target = snapshot / subfolder if subfolder else snapshot
    target.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        (target / name).write_bytes((source / name).read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


class TestSaveLoad:
    def test_round_trip_identical_outputs(self, tmp_path: Path) -> None:
        gen = _tiny_generator()
        gen.save_pretrained(tmp_path / "gen")
        loaded = UNetGenerator.from_pretrained(tmp_path / "gen")
        assert not loaded.training
        x = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), gen(x), atol=0, rtol=0)
        assert loaded.config == gen.config

    def test_config_json_contents(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        config = json.loads((tmp_path / CONFIG_NAME).read_text())
        assert config["_class_name"] == "UNetGenerator"
        assert config["_pixcolor_version"] == pixcolor.__version__
        assert config["encoder"] == "resnet18" and config["ab_scale"] == 128.0
        assert list(config) == sorted(config)
        assert "pretrained_encoder" not in config
        assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries

    def test_discriminator_round_trip(self, tmp_path: Path) -> None:
        torch.manual_seed(0)
        disc = PatchDiscriminator(base_channels=8, n_layers=2, norm="instance")
        disc.save_pretrained(tmp_path)
        loaded = PatchDiscriminator.from_pretrained(tmp_path)
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(loaded(x), disc.eval()(x), atol=0, rtol=0)

    def test_map_location(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        loaded = UNetGenerator.from_pretrained(tmp_path, map_location=torch.device("cpu"))
        assert next(loaded.parameters()).device.type == "cpu"

    def test_save_refuses_file_path(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("precious")
        with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
            _tiny_generator().save_pretrained(tmp_path / "file")
        assert (tmp_path / "file").read_text() == "precious"

    def test_no_pickle_is_loaded(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
        with mock.patch("torch.load", side_effect=AssertionError("torch.load called")):
            UNetGenerator.from_pretrained(tmp_path)


class TestLoadErrors:
    def test_missing_directory(self, tmp_path: Path, offline: None) -> None:
        with pytest.raises(ModelNotFoundError, match="not a local directory"):
            UNetGenerator.from_pretrained(tmp_path / "runs" / "x" / "generator")

    def test_missing_file(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        (tmp_path / WEIGHTS_NAME).unlink()
        with pytest.raises(ModelNotFoundError, match="has no model.safetensors"):
            UNetGenerator.from_pretrained(tmp_path)

    def test_wrong_class(self, tmp_path: Path) -> None:
        PatchDiscriminator(base_channels=8).save_pretrained(tmp_path)
        with pytest.raises(
            CheckpointError,
            match="holds a 'PatchDiscriminator'.*PatchDiscriminator.from_pretrained",
        ):
            UNetGenerator.from_pretrained(tmp_path)

    def test_shape_mismatch(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        config = json.loads((tmp_path / CONFIG_NAME).read_text())
        config["base_channels"] = 16
        (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
        with pytest.raises(
            CheckpointError,
            match=r"shape mismatch: net.bottleneck_bn.bias: file \(64,\) vs model \(128,\).*155 in all",
        ):
            UNetGenerator.from_pretrained(tmp_path)

    def test_missing_and_unexpected_tensors(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        state = load_file(str(tmp_path / WEIGHTS_NAME))
        state["extra.weight"] = state.pop("net.head.weight")
        save_file(state, str(tmp_path / WEIGHTS_NAME))
        with pytest.raises(
            CheckpointError, match=r"missing: net.head.weight; unexpected: extra.weight"
        ):
            UNetGenerator.from_pretrained(tmp_path)

    def test_unknown_config_key(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        config = json.loads((tmp_path / CONFIG_NAME).read_text())
        config["attention"] = True
        (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=r"unknown keys \['attention'\]"):
            UNetGenerator.from_pretrained(tmp_path)

    def test_corrupt_weights(self, tmp_path: Path) -> None:
        _tiny_generator().save_pretrained(tmp_path)
        (tmp_path / WEIGHTS_NAME).write_bytes(b"\x00" * 10)
        with pytest.raises(CheckpointError, match="not a readable safetensors file"):
            UNetGenerator.from_pretrained(tmp_path)

    def test_invalid_repo_id(self, offline: None) -> None:
        with pytest.raises(ModelNotFoundError, match="valid Hugging Face Hub repo id"):
            UNetGenerator.from_pretrained("not a//valid id")


class TestHubCache:
    def test_load_from_populated_cache_offline(self, tmp_path: Path, offline: None) -> None:
        gen = _tiny_generator()
        gen.save_pretrained(tmp_path / "src")
        _populate_hf_cache(tmp_path / "cache", tmp_path / "src", REPO_ID)
        loaded = UNetGenerator.from_pretrained(REPO_ID, cache_dir=tmp_path / "cache")
        x = torch.randn(1, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), gen(x), atol=0, rtol=0)

    def test_preset_resolves_through_cache(
        self, tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _tiny_generator().save_pretrained(tmp_path / "src")
        _populate_hf_cache(tmp_path / "cache", tmp_path / "src", REPO_ID, subfolder="generator")
        monkeypatch.setitem(PRESETS, "tiny", Preset(repo_id=REPO_ID, subfolder="generator"))
        loaded = UNetGenerator.from_pretrained("tiny", cache_dir=tmp_path / "cache")
        assert loaded.config.base_channels == 8

    def test_offline_and_not_cached_is_one_clear_error(self, tmp_path: Path, offline: None) -> None:
        with pytest.raises(ModelNotFoundError) as info:
            UNetGenerator.from_pretrained("coco", cache_dir=tmp_path / "empty")
        message = str(info.value)
        assert PRESETS["coco"].repo_id in message
        assert "HF_HUB_OFFLINE" in message and "bundled" in message

    def test_local_files_only(self, tmp_path: Path) -> None:
        with pytest.raises(ModelNotFoundError, match="local_files_only=True"):
            UNetGenerator.from_pretrained(REPO_ID, cache_dir=tmp_path, local_files_only=True)

    def test_unreachable_hub_fails_at_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Not offline, nothing cached, and the Hub's endpoint refuses a TCP connection: one
        clear error naming why, without huggingface_hub's retries (nor any network use)."""
        import socket

        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                     "all_proxy"):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        probes = []

        def refuse(address: tuple[str, int], timeout: float) -> None:
            probes.append((address, timeout))
            raise OSError(101, "Network is unreachable")

        monkeypatch.setattr(socket, "create_connection", refuse)
        with pytest.raises(ModelNotFoundError, match=r"cannot be reached \(https://huggingface"
                           r"\.co: Network is unreachable\)"):  # fmt: skip
            UNetGenerator.from_pretrained(REPO_ID, cache_dir=tmp_path / "empty")
        with pytest.raises(ModelNotFoundError, match="Network is unreachable.*bundled"):
            UNetGenerator.from_pretrained("coco", cache_dir=tmp_path / "empty")
        assert [address for address, _ in probes] == [("huggingface.co", 443)] * 2
        assert all(timeout <= 5 for _, timeout in probes)

    def test_reachability_probe(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import socket

        from huggingface_hub import constants

        from pixcolor._remote import hub_unreachable

        class Connection:
            def close(self) -> None:
                pass

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HTTPS_PROXY", raising=False)
        monkeypatch.delenv("https_proxy", raising=False)
        monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Connection())
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        assert hub_unreachable() is None

        def timeout(*args: object, **kwargs: object) -> None:
            raise TimeoutError("timed out")

        monkeypatch.setattr(socket, "create_connection", timeout)
        assert hub_unreachable() == "https://huggingface.co: timed out"
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")  # only the proxy knows
        assert hub_unreachable() is None
        monkeypatch.delenv("HTTPS_PROXY")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert hub_unreachable() is None

    def test_coco_preset_registered(self) -> None:
        preset = PRESETS["coco"]
        assert "/" in preset.repo_id and preset.revision


class TestPushToHub:
    def test_push_uploads_config_and_weights(self, tmp_path: Path) -> None:
        gen = _tiny_generator()
        uploaded: dict[str, bytes] = {}

        def upload_folder(**kwargs: object) -> str:
            folder = Path(str(kwargs["folder_path"]))
            uploaded.update({p.name: p.read_bytes() for p in folder.iterdir()})
            return "commit-info"

        with mock.patch("huggingface_hub.HfApi") as api_cls:
            api = api_cls.return_value
            api.upload_folder.side_effect = upload_folder
            result = gen.push_to_hub(REPO_ID, private=True, token="hf_x", subfolder="generator")

        api_cls.assert_called_once_with(token="hf_x")
        api.create_repo.assert_called_once_with(REPO_ID, private=True, exist_ok=True)
        kwargs = api.upload_folder.call_args.kwargs
        assert kwargs["repo_id"] == REPO_ID and kwargs["path_in_repo"] == "generator"
        assert result == "commit-info"
        assert set(uploaded) == {CONFIG_NAME, WEIGHTS_NAME}
        assert json.loads(uploaded[CONFIG_NAME])["_class_name"] == "UNetGenerator"
        (tmp_path / WEIGHTS_NAME).write_bytes(uploaded[WEIGHTS_NAME])
        (tmp_path / CONFIG_NAME).write_bytes(uploaded[CONFIG_NAME])
        assert UNetGenerator.from_pretrained(tmp_path).config == gen.config


def test_saved_files_are_readable_by_others(tmp_path: Path) -> None:
    """Atomic writes must not leave mkstemp's private 0600 mode on a user's model."""
    import os
    import stat

    umask = os.umask(0o022)
    try:
        _tiny_generator().save_pretrained(tmp_path / "gen")
    finally:
        os.umask(umask)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        mode = stat.S_IMODE((tmp_path / "gen" / name).stat().st_mode)
        assert mode & stat.S_IROTH, f"{name} has mode {oct(mode)}"
