"""Batch colorization of files and the `pixcolor colorize` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageCms

from pixcolor import Colorizer, UNetGenerator
from pixcolor.batch import colorize_files, plan_outputs
from pixcolor.cli import main

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5).save_pretrained(path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "album"
    (root / "sub").mkdir(parents=True)
    Image.open(ASSETS / "gray_camera.jpg").save(root / "camera.jpg", quality=80)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.open(ASSETS / "chelsea.jpg").convert("L").save(root / "sub" / "cat.png", icc_profile=None)
    Image.open(ASSETS / "coffee.jpg").save(
        root / "sub" / "coffee.jpg", quality=70, icc_profile=srgb
    )
    (root / "notes.txt").write_text("not an image")
    return root


def test_plan_mirrors_folders(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flat = plan_outputs([tree], out)
    assert [d.relative_to(out).as_posix() for _, d in flat] == ["album/camera.jpg"]
    deep = plan_outputs([tree], out, recursive=True)
    assert sorted(d.relative_to(out).as_posix() for _, d in deep) == [
        "album/camera.jpg", "album/sub/cat.png", "album/sub/coffee.jpg",
    ]  # fmt: skip
    globbed = plan_outputs([str(tree / "sub" / "*.jpg")], out)
    assert [d.name for _, d in globbed] == ["coffee.jpg"]


def test_plan_refuses_to_overwrite_inputs(tree: Path) -> None:
    with pytest.raises(ValueError, match="would overwrite the input"):
        plan_outputs([tree / "camera.jpg"], tree)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plan_outputs([tree / "missing.jpg"], tree.parent / "out")
    with pytest.raises(ValueError, match="would both be written"):
        plan_outputs(
            [tree / "sub" / "coffee.jpg", tree / "camera.jpg", str(tree / "sub" / "*.jpg")],
            tree.parent / "o",
        )


def test_colorize_files_keeps_format_and_resumes(
    tree: Path, tmp_path: Path, model_dir: Path
) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    out = tmp_path / "out"
    report = colorize_files(colorizer, [tree], out, recursive=True, render_size=64, progress=False)
    assert len(report.written) == 3 and not report.failed
    coffee_in, coffee_out = (
        Image.open(tree / "sub" / "coffee.jpg"),
        Image.open(out / "album/sub/coffee.jpg"),
    )
    assert coffee_out.format == "JPEG" and coffee_out.size == coffee_in.size
    assert coffee_out.info.get("icc_profile") == coffee_in.info.get("icc_profile")
    assert coffee_out.quantization == coffee_in.quantization  # JPEG quality kept
    assert Image.open(out / "album/sub/cat.png").format == "PNG"
    stamp = (out / "album/camera.jpg").stat().st_mtime_ns
    again = colorize_files(colorizer, [tree], out, recursive=True, render_size=64, progress=False)
    assert len(again.skipped) == 3 and not again.written
    assert (out / "album/camera.jpg").stat().st_mtime_ns == stamp
    forced = colorize_files(
        colorizer, [tree], out, recursive=True, overwrite=True, render_size=64, progress=False
    )
    assert len(forced.written) == 3


def test_cli_reports_bad_files_and_continues(
    tree: Path, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "cli_out"
    code = main(["colorize", str(tree / "camera.jpg"), str(tree / "broken.jpg"), "-o", str(out),
                 "--model", str(model_dir), "--render-size", "64", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert (
        "broken.jpg" in captured.err and "1 written" in captured.out and "1 failed" in captured.out
    )
    assert (out / "camera.jpg").is_file() and not (out / "broken.jpg").exists()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_cli_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["colorize", "--help"])
    text = capsys.readouterr().out
    for flag in ("--output", "--model", "--render-size", "--saturation", "--device", "--batch-size",
                 "--recursive", "--overwrite"):  # fmt: skip
        assert flag in text
