"""Device names: checked once, with an error naming the value and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixcolor import Colorizer
from pixcolor._devices import parse_device
from pixcolor.cli import main
from pixcolor.training.runtime import pick_device


def test_names_torch_knows() -> None:
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device(" cpu ") == torch.device("cpu")
    assert parse_device(torch.device("cpu")) == torch.device("cpu")
    assert parse_device("cuda:1", check_available=False) == torch.device("cuda", 1)


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match=f"device '{name}' is not a device name torch knows; "
                       "use 'cpu', 'cuda', 'cuda:N' or 'mps'"):  # fmt: skip
        parse_device(name)


def test_not_a_name() -> None:
    with pytest.raises(ValueError, match="device must be a name such as 'cpu'.*got 3"):
        parse_device(3)


def test_cuda_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' is not available here: .*no CUDA GPU"):
        parse_device("cuda")
    with pytest.raises(ValueError, match="'cuda:0' is not available here"):
        parse_device(torch.device("cuda", 0))


def test_cuda_index_past_the_last_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"'cuda:2' is not available here: this machine has 2 "
                       r"CUDA GPU\(s\), cuda:0 to cuda:1"):  # fmt: skip
        parse_device("cuda:2")


def test_mps_where_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'mps' is not available here: .*Metal"):
        parse_device("mps")


def test_colorizer_and_trainer_check_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the device was checked")

    monkeypatch.setattr("pixcolor.colorizer.load_generator", no_loading)
    with pytest.raises(ValueError, match="device 'tpu' is not a device name"):
        Colorizer.from_pretrained(device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda:0' is not available here"):
        pick_device("cuda:0")


def test_cli_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = Path(__file__).parent / "assets" / "gray_camera.jpg"
    code = main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--device", "tpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "pixcolor colorize: error: device 'tpu' is not a device name torch knows; use 'cpu', "
        "'cuda', 'cuda:N' or 'mps'\n"
    )
    assert not (tmp_path / "out").exists()
