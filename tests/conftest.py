"""Shared test set-up: makes the tests folder importable (``from test_training import ...``),
keeps every test's pixcolor cache private, and builds fastai's DynamicUnet once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch import nn

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
