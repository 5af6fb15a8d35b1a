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
    must not print them a second time through the root logger's."""
    import logging

    assert main(["models", "--json"]) == 0
    capsys.readouterr()
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    handler = Collect()
    root.addHandler(handler)
    try:
        logging.getLogger("huggingface_hub.utils._http").warning("retrying")
        logging.getLogger("pixcolor.test").warning("ours")
    finally:
        root.removeHandler(handler)
    assert [record.getMessage() for record in seen] == ["ours"]


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


def test_train_resumed_mid_epoch_equals_a_straight_run(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--seed fixes the initial weights too, and a run stopped mid-epoch (here by
    --max-steps; 8 photos in batches of 4 are 2 steps an epoch) and resumed ends with the
    same bits and the same epoch means as one never stopped (the tiny recipe has dropout)."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(["train", str(photos), "--output", str(straight), *TINY, "--max-steps", "3"]) == 0
    assert main(["train", str(photos), "--output", str(stopped), *TINY, "--max-steps", "1"]) == 0
    assert main(["train", str(photos), "--output", str(stopped), "--resume", "--max-steps", "3",
                 "--no-progress", "--workers", "0"]) == 0  # fmt: skip
    capsys.readouterr()
    for name in ("generator/model.safetensors", "metrics.jsonl"):
        assert (straight / name).read_bytes() == (stopped / name).read_bytes(), name


def test_train_restarts_a_run_without_checkpoint(
    tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    # refused after its config was written (too few photos for the batch): nothing to resume
    assert main(["train", str(photos), "--output", str(run), *TINY, "--batch-size", "32"]) == 1
    assert "too few for batch_size=32" in capsys.readouterr().err
    assert [p.name for p in run.iterdir()] == ["config.json"]
    assert main(["train", str(photos), "--output", str(run), *TINY, "--max-steps", "1"]) == 0
    assert (run / "checkpoints").is_dir()
    again = tmp_path / "again"
    again.mkdir()
    (again / "config.json").write_bytes((run / "config.json").read_bytes())
    assert main(["train", str(photos), "--output", str(again), "--resume", "--max-steps", "1",
                 "--no-progress", "--workers", "0"]) == 0  # fmt: skip
    assert "holds no checkpoint yet: starting its run from the beginning" in capsys.readouterr().out
    # a folder with anything else in it is still refused, and left as it was
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["train", str(photos), "--output", str(mine), *TINY]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    (tmp_path / "afile").write_text("keep me")
    assert main(["train", str(photos), "--output", str(tmp_path / "afile"), *TINY]) == 1
    assert "error: --output " in (err := capsys.readouterr().err) and "is a file" in err
    assert (tmp_path / "afile").read_text() == "keep me"


def test_export_refuses_an_existing_file_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    assert main(["export", "onnx", "nosuchmodel", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"pixcolor export: error: {str(out)!r} exists; pass --overwrite to replace it\n"
    )
    assert out.read_bytes() == b"mine"


def test_app_offers_no_int8(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["app", "--precision", "int8"])
    assert exit_.value.code == 2
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_evaluate_one_photo_and_a_json_folder_checked_before_work(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = str(Path(__file__).parent / "assets" / "astronaut.jpg")
    missing = tmp_path / "nodir" / "sub" / "x.json"
    assert main(["evaluate", str(model_dir), photo, "--json", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing evaluated
    assert captured.err.strip().splitlines() == [
        f"pixcolor evaluate: error: --json {missing}: its folder "
        f"{str(missing.parent)!r} does not exist; create it first"
    ]

    out_json = tmp_path / "x.json"
    assert main(["evaluate", str(model_dir), photo, "--render-size", "32",
                 "--json", str(out_json)]) == 0  # fmt: skip
    assert "(1 photo, render size 32" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["n_images"] == 1


def test_every_option_has_help_and_train_defaults_are_trainer_config_s() -> None:
    import argparse

    from pixcolor.cli import build_parser
    from pixcolor.cli.train import _TRAINER_DEFAULTS
    from pixcolor.training import TrainerConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert not missing
    defaults = TrainerConfig()
    assert {k: getattr(defaults, k) for k in _TRAINER_DEFAULTS} == _TRAINER_DEFAULTS
    helps = {a.dest: a.help for a in sub.choices["train"]._actions}
    assert helps["lr_d"].endswith("(default per recipe: pix2pix 2e-4, resnet18 2e-4, tiny 5e-5)")
    assert "coco preset" not in sub.choices["push"].format_help()
