"""Shared test set-up: makes the tests folder importable (``from test_training import ...``),
keeps every test's pixcolor cache private, builds fastai's DynamicUnet once, saves a tiny
generator for tests that load a model from a folder (``model_dir``), and runs DeOldify's own
networks (the reference of the DeOldify tests) once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from pixcolor import UNetGenerator

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _private_pixcolor_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the user's ~/.cache/pixcolor (converted presets)."""
    cache = tmp_path_factory.mktemp("pixcolor-cache")
    monkeypatch.setenv("PIXCOLOR_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def fastai_unet() -> nn.Module:
    """The tutorial's generator, random weights: DynamicUnet on a 1-channel resnet18 body.

    The tutorial passes img_size=(256, 256); it only sizes the dummy forward pass that
    DynamicUnet runs while building, and gives the same layers at (64, 64), 4x faster.
    Batch-norm statistics and affine parameters and conv biases are moved off their
    defaults, so a mis-mapped tensor changes the output. Skipped without fastai.
    """
    pytest.importorskip("fastai")
    import torch
    import torchvision
    from fastai.vision.learner import create_body
    from fastai.vision.models.unet import DynamicUnet

    from helpers import randomise_batchnorm

    torch.manual_seed(0)
    body = create_body(torchvision.models.resnet18(), n_in=1, pretrained=False, cut=-2)
    unet = DynamicUnet(body, 2, (64, 64))
    torch.manual_seed(1)
    return randomise_batchnorm(unet, conv_bias=True).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pix2pix generator (seed 0, 4 base channels, 5 downs) saved in a folder."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5).save_pretrained(path)
    return path


REPO = Path(__file__).resolve().parents[1]
DEOLDIFY_PYTHON = Path(
    os.environ.get("PIXCOLOR_DEOLDIFY_PYTHON") or REPO / ".venv-deoldify" / "bin" / "python"
)
# name -> decoder:encoder:nf_factor, as tests/deoldify_reference.py takes them: the
# networks of DeOldify's artistic model and of its stable and video models (one layout),
# and DynamicUnetWide(resnet34, nf_factor=2) (DeOldifyGenerator(encoder="resnet34",
# decoder="wide", nf_factor=2)): 46.1 M parameters, too few for the 255 MB artistic file,
# whose 63.6 M are DynamicUnetDeep's (deoldify/generators.py: gen_inference_deep).
REFERENCE_NETWORKS = {
    "artistic": "deep:resnet34:1.5",
    "stable": "wide:resnet101:2",
    "wide34": "wide:resnet34:2",
}
Reference = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]
"""A reference network's state dict, and all it wrote (``input``, ``output``, ...)."""


@pytest.fixture(scope="session")
def deoldify_reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Reference]:
    """``get(name)``: DeOldify's own network ``name`` (of :data:`REFERENCE_NETWORKS`) with
    random weights, run once per session in the reference venv (skips, saying why, where
    that venv is missing)."""
    if not DEOLDIFY_PYTHON.is_file():
        pytest.skip(
            f"DeOldify's reference network runs in its own venv, not found at "
            f"{DEOLDIFY_PYTHON}: build it with `bash scripts/make_deoldify_reference_venv.sh` "
            "(CI does) or set PIXCOLOR_DEOLDIFY_PYTHON"
        )
    out = tmp_path_factory.mktemp("deoldify-reference")

    def get(name: str) -> Reference:
        from safetensors.torch import load_file

        path = out / f"{name}.safetensors"
        if not path.is_file():
            script = REPO / "tests" / "deoldify_reference.py"
            spec = f"{name}:{REFERENCE_NETWORKS[name]}"
            result = subprocess.run(
                [str(DEOLDIFY_PYTHON), str(script), str(out), spec],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode:
                pytest.fail(
                    f"the DeOldify reference failed:\n{result.stdout}\n{result.stderr[-3000:]}"
                )
            sys.stdout.write(result.stdout)
        tensors = load_file(str(path))
        state = {k.removeprefix("state."): v for k, v in tensors.items() if k.startswith("state.")}
        return state, tensors

    return get
