"""The pixcolor command line: train, resume, evaluate, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pixcolor.cli import main
from test_training import make_photos

TINY = ["--size", "128", "--batch-size", "4", "--workers", "0", "--no-progress", "--seed", "1"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photos(tmp_path_factory.mktemp("cli_photos"), n=8)


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pixcolor", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "train" in out and "evaluate" in out


def test_train_stop_resume_and_evaluate(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        str(photos),
        "--output",
        str(run),
        "--pretrain-epochs",
        "1",
        "--gan-epochs",
        "1",
        *TINY,
    ]
    assert main([*args, "--max-steps", "3"]) == 0
    state = json.loads(
        (sorted((run / "checkpoints").iterdir())[-1] / "trainer_state.json").read_text()
    )
    assert state["trainer"]["global_step"] == 3
    # the same command again without --resume must not touch the run
    assert main(args) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args, "--resume", "--max-steps", "0"]) == 0
    assert "trained 2 epoch(s), 4 steps" in capsys.readouterr().out
    assert (run / "generator" / "model.safetensors").is_file()

    out_json = tmp_path / "eval.json"
    pytest.importorskip("pixcolor.colorizer")
    assert (
        main(
            [
                "evaluate",
                str(run / "generator"),
                str(photos),
                "--json",
                str(out_json),
                "--render-size",
                "128",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "gray" in table and "psnr" in table.lower()
    results = json.loads(out_json.read_text())
    assert results["n_images"] == 8 and {"model", "gray", "gray_pil"} <= set(results)
    assert main(["evaluate", str(run / "generator"), str(photos), "--json", str(out_json)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_train_errors(tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(photos), "--output", str(tmp_path / "r"), "--resume", *TINY]) == 1
    assert "holds no training run" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing"), "--output", str(tmp_path / "r2"), *TINY]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["train", str(photos), "--output", str(tmp_path / "r3"), "--size", "96"]) == 1
    assert (
        "image_size must be a multiple of the generator's stride 128, got 96"
        in capsys.readouterr().err
    )


def test_push_with_hub_mocked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unittest import mock

    from pixcolor import UNetGenerator

    UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5).save_pretrained(tmp_path / "gen")
    with mock.patch("huggingface_hub.HfApi") as api_cls:
        api_cls.return_value.upload_folder.return_value = mock.Mock(
            commit_url="https://hub/commit/1"
        )
        code = main(
            [
                "push",
                str(tmp_path / "gen"),
                "me/pixcolor-coco",
                "--subfolder",
                "generator",
                "--private",
            ]
        )
    assert code == 0
    api_cls.return_value.create_repo.assert_called_once_with(
        "me/pixcolor-coco", private=True, exist_ok=True
    )
    assert api_cls.return_value.upload_folder.call_args.kwargs["path_in_repo"] == "generator"
    assert "https://hub/commit/1" in capsys.readouterr().out


def test_hub_warnings_are_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    """huggingface_hub prints its warnings through its own handler; the CLI's logging setup
    must not print them a second time."""
    import logging

    assert main(["models", "--json"]) == 0
    capsys.readouterr()
    hub = logging.getLogger("huggingface_hub.utils._http")
    hub.warning("retrying")
    assert logging.getLogger("huggingface_hub").propagate is False
    err = capsys.readouterr().err
    assert err.count("retrying") <= 1


def test_help_does_not_wait_for_torch() -> None:
    """``import pixcolor`` and the command line's parser load torch only when used: --help is
    instant, and Ctrl-C while torch loads happens inside main's handler."""
    code = (
        "import sys; import pixcolor; from pixcolor.cli import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert pixcolor.Colorizer.__name__ == 'Colorizer' and 'torch' in sys.modules; "
        "assert 'Colorizer' in dir(pixcolor)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_interrupt_while_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pixcolor.cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pixcolor.cli, "build_parser", interrupted)
    assert main(["--help"]) == 130
    assert capsys.readouterr().err == "pixcolor: interrupted\n"


def test_unknown_attribute() -> None:
    import pixcolor

    with pytest.raises(AttributeError, match="module 'pixcolor' has no attribute 'Colourizer'"):
        pixcolor.Colourizer  # noqa: B018
