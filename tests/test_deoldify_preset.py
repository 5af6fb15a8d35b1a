"""The ``deoldify`` presets: DeOldify's checkpoints through pixcolor's conversion cache.

Nothing here touches the network. A learner-style checkpoint (``{"model": state dict,
"opt": ...}`` holding ``slice`` objects, as fastai v1's ``Learner.save`` writes) is laid
into a Hugging Face cache at exactly the preset's repo and file name, and the Hub is
switched off (``HF_HUB_OFFLINE=1``). The slow test uses the random weights of DeOldify's
own network (``tests/deoldify_reference.py``, skipped with the reason where its venv is
missing); the fast ones use a tiny DeOldify-layout generator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

import pixcolor
from conftest import Reference
from helpers import populate_hf_cache
from pixcolor import CheckpointError, Colorizer, DeOldifyGenerator, ModelNotFoundError
from pixcolor._conversion_cache import CONVERSION_RECORD, cache_state
from pixcolor.cli import main
from pixcolor.models.deoldify import DEOLDIFY_VARIANTS
from pixcolor.presets import FORMATS, PRESETS, Preset, cache_root
from test_deoldify import _tiny, _to_deoldify_layout
from test_presets import offline_hub  # noqa: F401

DEOLDIFY = PRESETS["deoldify"]
# The commit the synthetic cache's refs/main points to (the real one is not known here).
COMMIT = "5" * 40


def _learner(state: dict[str, torch.Tensor], extra: object = None) -> dict[str, object]:
    """What fastai v1's ``Learner.save(with_opt=True)`` pickles: model, then optimizer."""
    opt = {"layer_groups": [slice(0, 3), slice(3, None)], "lr": 1e-3}
    return {"model": state, "opt": opt if extra is None else extra}


def _lay_out(hub: Path, tmp_path: Path, learner: dict[str, object]) -> Path:
    path = tmp_path / "learner.pth"
    torch.save(learner, path)
    filename = str(DEOLDIFY.filename)
    return populate_hf_cache(hub, str(DEOLDIFY.repo_id), COMMIT, {filename: path})[filename]


def _conversion() -> Path:
    repo = str(DEOLDIFY.repo_id).replace("/", "--")
    return cache_root() / "converted" / repo / COMMIT / str(DEOLDIFY.filename)


@pytest.mark.slow
def test_deoldify_preset_matches_deoldifys_network(
    deoldify_reference: Callable[[str], Reference],
    offline_hub: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    state, ref = deoldify_reference("artistic")
    snapshot = _lay_out(offline_hub, tmp_path, _learner(state))
    assert os.environ["HF_HUB_OFFLINE"] == "1"

    # fp32 and one memory format: no timing of candidates at render size 560 (the artistic
    # network's forward there takes seconds; InferenceModel's folding probe runs a few)
    colorizer = Colorizer.from_pretrained(
        "deoldify", device="cpu", precision="fp32", memory_format="contiguous"
    )

    gen = colorizer.generator
    assert isinstance(gen, DeOldifyGenerator)
    assert gen.config == pixcolor.DeOldifyConfig(**DEOLDIFY_VARIANTS["artistic"])
    with torch.no_grad():
        out = gen(ref["input"])
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=0)
    record = json.loads((_conversion() / CONVERSION_RECORD).read_text())
    assert record["revision"] == COMMIT and record["class_name"] == "DeOldifyGenerator"
    gray = np.random.default_rng(0).integers(0, 256, (40, 56), dtype=np.uint8)
    colour = colorizer.colorize(gray, render_size=64)
    assert colour.shape == (40, 56, 3) and np.ptp(colour.astype(int), axis=2).max() > 0

    # The checkpoint is never read again: gone from the cache, torch.load and the Hub off.
    snapshot.resolve().unlink()
    snapshot.unlink()
    with (
        mock.patch("torch.load", side_effect=AssertionError("torch.load called")),
        mock.patch("huggingface_hub.hf_hub_download", side_effect=AssertionError("Hub asked")),
    ):
        again = DeOldifyGenerator.from_pretrained("deoldify").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ref["input"]), out, atol=0, rtol=0)


class TestPreset:
    def test_presets_describe_deoldifys_models(self) -> None:
        files = {"deoldify": "Artistic", "deoldify-stable": "Stable", "deoldify-video": "Video"}
        for name, variant in files.items():
            preset = PRESETS[name]
            assert preset.repo_id == "spensercai/DeOldify" and preset.revision == "main"
            assert preset.filename == f"Colorize{variant}_gen.pth"
            assert preset.format == "deoldify" and preset.license == "MIT"
            expected = dict(DEOLDIFY_VARIANTS[variant.lower()])
            assert {**preset.architecture, **preset.config} == expected
            assert "not measured" in preset.description
        assert PRESETS["deoldify"].size == 255_000_000
        assert "deoldify" in FORMATS

    def test_tiny_learner_checkpoint_loads_offline_and_once(
        self,
        offline_hub: Path,  # noqa: F811
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        gen = _tiny(render_size=64)
        config = {"encoder": "resnet18", "decoder": "wide", "nf_factor": 0.0625}
        monkeypatch.setitem(
            PRESETS,
            "deoldify",
            Preset(**{**vars(DEOLDIFY), "architecture": config, "config": {"render_size": 64}}),
        )
        snapshot = _lay_out(offline_hub, tmp_path, _learner(_to_deoldify_layout(gen)))
        assert cache_state("deoldify") == "downloaded, not converted"

        loaded = DeOldifyGenerator.from_pretrained("deoldify")

        assert cache_state("deoldify") == "converted"
        x = torch.randn(1, 3, 32, 48)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), gen(x), atol=1e-5, rtol=1e-5)
        snapshot.resolve().unlink()
        with mock.patch("torch.load", side_effect=AssertionError("torch.load called")):
            colorizer = Colorizer.from_pretrained("deoldify")
        assert colorizer.generator.config.render_size == 64  # the preset's config applies
        assert colorizer.colorize(np.zeros((20, 30), np.uint8)).shape == (20, 30, 3)

    def test_architecture_other_than_the_presets_is_refused(
        self,
        offline_hub: Path,  # noqa: F811
        tmp_path: Path,
    ) -> None:
        _lay_out(offline_hub, tmp_path, _learner(_to_deoldify_layout(_tiny())))
        with pytest.raises(CheckpointError, match="not the model the preset describes"):
            Colorizer.from_pretrained("deoldify")
        assert not _conversion().exists()

    def test_trapped_checkpoint_is_refused_and_never_run(
        self,
        offline_hub: Path,  # noqa: F811
        tmp_path: Path,
    ) -> None:
        marker = tmp_path / "pwned"

        class Trap:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return (os.system, (f"touch '{marker}'",))

        snapshot = _lay_out(offline_hub, tmp_path, _learner(_to_deoldify_layout(_tiny()), Trap()))
        with pytest.raises(CheckpointError) as info:
            Colorizer.from_pretrained("deoldify")
        assert "system" in str(info.value) and "ran nothing in it" in str(info.value)
        assert str(snapshot) in str(info.value)
        assert not marker.exists() and not _conversion().exists()
        torch.load(snapshot, weights_only=False)  # the trap is live: so the test can fail
        assert marker.exists()

    def test_offline_without_cache_says_what_to_do(
        self,
        offline_hub: Path,  # noqa: F811
    ) -> None:
        with pytest.raises(ModelNotFoundError) as info:
            Colorizer.from_pretrained("deoldify-video")
        message = str(info.value)
        assert "ColorizeVideo_gen.pth" in message and "spensercai/DeOldify" in message
        assert "874.0 MB" in message and "bundled" in message

    def test_branch_preset_must_say_so(self) -> None:
        fields = {**vars(DEOLDIFY), "pinned": True}
        with pytest.raises(ValueError, match="full 40-character commit hash.*pinned=False"):
            Preset(**fields)

    def test_models_lists_the_deoldify_presets(
        self,
        offline_hub: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        assert main(["models", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        for name in ("deoldify", "deoldify-stable", "deoldify-video"):
            assert rows[name]["cached"] == "no" and rows[name]["license"] == "MIT"
        assert rows["deoldify"]["size"] == "255.0 MB"
