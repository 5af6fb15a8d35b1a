"""Evaluation with simulated hints: sampling, evaluate_hints and ``pixcolor evaluate --hints``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor import Colorizer, UNetGenerator, lab
from pixcolor.cli import main
from pixcolor.hint_eval import HINT_METHODS, evaluate_hints, format_hint_table, sample_hints

ASSETS = Path(__file__).parent / "assets"
PHOTOS = ["chelsea.jpg", "coffee.jpg"]


def test_sample_hints_are_patch_means_and_nested() -> None:
    image = Image.open(ASSETS / "coffee.jpg")
    hints = sample_hints(image, 10, seed=3)
    assert hints[:4] == sample_hints(image, 4, seed=3)
    assert hints != sample_hints(image, 10, seed=4)
    truth = lab.rgb2lab(np.asarray(image))
    for hint in hints:
        x, y = int(hint.x), int(hint.y)
        assert 2 <= x < image.width - 2 and 2 <= y < image.height - 2 and hint.radius == 2
        patch = truth[y - 2 : y + 3, x - 2 : x + 3, 1:].reshape(-1, 2).mean(0)
        assert np.linalg.norm(np.array(hint.ab) - patch) < 2.0  # 8-bit rounding of the colour
    with pytest.raises(ValueError, match="patch must be odd"):
        sample_hints(image, 1, patch=4)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        sample_hints(image, -1)


@pytest.fixture(scope="module")
def tiny() -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5, render_size=32)


def test_evaluate_hints(tiny: UNetGenerator) -> None:
    files = [ASSETS / name for name in PHOTOS]
    results = evaluate_hints(Colorizer(tiny, device="cpu"), files, [3, 0], progress=False)
    assert results["n_hints"] == [0, 3] and results["n_images"] == 2
    zero, three = results["rows"]["0"], results["rows"]["3"]
    for key in HINT_METHODS:
        assert set(zero[key]) == {"psnr", "delta_e", "colorfulness", "delta_cf", "hint_error"}
        assert math.isnan(zero[key]["hint_error"])
    # no hints: the model-free methods are the gray photo
    assert zero["levin"]["psnr"] == zero["gray"]["psnr"] == zero["gaussian"]["psnr"]
    # hints from the truth: every method that uses them gets closer to it and follows them
    for key in ("model", "levin", "gaussian"):
        assert three[key]["delta_e"] < zero[key]["delta_e"]
        assert three[key]["hint_error"] < 8.0
    assert three["gray"]["hint_error"] > 10.0
    assert "model + hints" in format_hint_table(results)
    with pytest.raises(ValueError, match="n_hints must be a non-empty list"):
        evaluate_hints(tiny, files, [-1], progress=False)


def test_cli_evaluate_hints(
    tmp_path: Path, tiny: UNetGenerator, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny.save_pretrained(tmp_path / "model")
    data = tmp_path / "photos"
    data.mkdir()
    for name in PHOTOS:
        shutil.copy(ASSETS / name, data / name)
    out = tmp_path / "eval.json"
    args = [
        "evaluate",
        str(tmp_path / "model"),
        str(data),
        "--json",
        str(out),
        "--hints",
        "0",
        "--hints",
        "2",
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "Levin et al." in table and "Gaussian spread" in table
    results = json.loads(out.read_text())
    assert results["n_hints"] == [0, 2] and results["rows"]["0"]["model"]["hint_error"] is None
    assert main([*args[:-1], "-3", "--overwrite"]) == 1
    assert "--hints must be >= 0, got -3" in capsys.readouterr().err
