"""The temporal filter's camera-motion links (``TemporalFilter(motion="global")``)."""

import pytest
import torch
import torch.nn.functional as F

from pixcolor import TemporalFilter
from pixcolor._motion import estimate_shifts, warp


def _texture(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h, w, generator=g)
    return F.avg_pool2d(x, 5, 1, 2) * 0.6 + 0.2  # (1, 1, h, w), smooth noise in [0.2, 0.8]


@pytest.mark.parametrize("shift", [(0.0, 0.0), (2.3, -4.6), (-7.0, 3.5), (0.4, 0.0)])
def test_shift_found_to_a_fraction_of_a_pixel(shift):
    previous = _texture()
    current = warp(previous[0], torch.tensor(shift))[None]
    found = estimate_shifts(previous, current)[0]
    assert torch.allclose(found, torch.tensor(shift), atol=0.3), found


def test_shift_ignores_exposure_and_noise():
    """Old film: the same picture, brighter by 6 % and with new grain, has not moved."""
    g = torch.Generator().manual_seed(1)
    previous = _texture()
    current = previous * 1.06 + 0.012 * torch.randn(previous.shape, generator=g)
    found = estimate_shifts(previous, current)[0]
    assert found.abs().max() < 0.2, found


def test_warp_moves_content_and_leaves_zeros_outside():
    image = torch.zeros(1, 8, 8)
    image[0, 2, 3] = 1.0
    moved = warp(image, torch.tensor([1.0, 2.0]))
    assert moved[0, 3, 5] == pytest.approx(1.0)
    assert moved.sum() == pytest.approx(1.0)
    assert warp(torch.ones(1, 8, 8), torch.tensor([0.0, 3.0]))[0, :, :3].abs().max() == 0


def _panning_clip(frames: int = 24, speed: float = 1.5, noise: float = 0.3):
    """A textured scene panning by ``speed`` guide pixels a frame; its colour is fixed to the
    scene (so it moves with it) and the 'network' adds noise of its own in every frame."""
    big = _texture(160, 224, seed=2)
    colour = torch.cat([_texture(160, 224, seed=3), _texture(160, 224, seed=4)], dim=1) * 10
    guides, truth = [], []
    for t in range(frames):
        shift = torch.tensor([0.0, speed * t])
        guides.append(warp(big[0], shift)[:, 32:128, 48:176])
        truth.append(warp(colour[0], shift)[:, 32:128, 48:176])
    guide, truth = torch.stack(guides), torch.stack(truth)
    g = torch.Generator().manual_seed(5)
    return guide, truth, truth + noise * torch.randn(truth.shape, generator=g)


def test_motion_smooths_a_panning_shot_without_smearing():
    guide, truth, predicted = _panning_clip()
    inner = (slice(None), slice(None), slice(8, -8), slice(16, -16))  # away from new borders

    def error(motion: str) -> float:
        out = TemporalFilter(motion=motion)(guide, predicted)
        return (out - truth)[inner].square().mean().sqrt().item()

    raw = (predicted - truth)[inner].square().mean().sqrt().item()
    still, moving = error("none"), error("global")
    # standing still, the filter sees every textured place change and leaves the noise;
    # following the camera it averages the same scene point over several frames
    assert still > 0.8 * raw
    assert moving < 0.6 * raw, (raw, still, moving)


def test_motion_changes_nothing_on_a_still_shot():
    g = torch.Generator().manual_seed(6)
    guide = _texture().expand(12, 1, -1, -1) * (1 + 0.05 * torch.rand(12, 1, 1, 1, generator=g))
    signal = torch.randn(12, 2, 96, 128, generator=g)
    still = TemporalFilter(motion="none")(guide, signal)
    moving = TemporalFilter(motion="global")(guide, signal)
    assert (still - moving).abs().max() < 0.05


def test_streamed_equals_whole_clip_with_motion():
    """Batches joined across their borders as one clip (the shift between the last frame of
    a batch and the first of the next included)."""
    guide, _, predicted = _panning_clip(frames=20)
    filt = TemporalFilter(lookahead=32)
    whole = filt(guide, predicted)
    stream = filt.stream()
    parts = [stream.push(guide[i : i + 3], predicted[i : i + 3]) for i in range(0, 20, 3)]
    streamed = torch.cat([*parts, stream.flush()])
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_motion_setting_checked():
    with pytest.raises(ValueError, match="motion must be one of global, none, got 'pan'"):
        TemporalFilter(motion="pan")
