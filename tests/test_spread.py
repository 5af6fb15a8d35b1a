"""Model-free spreading: Levin et al.'s optimisation against a dense reference, Gaussian spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixcolor import spread
from pixcolor.hints import HintSet


def _reference(
    lightness: np.ndarray, values: np.ndarray, mask: np.ndarray, decay: float
) -> np.ndarray:
    """Minimise sum_(r~s) w_rs (U_r - U_s)^2 + decay sum_r d_r U_r^2 with U fixed on the
    mask, by a dense solve of its normal equations; written out pixel by pixel."""
    h, w = lightness.shape
    y = lightness / 100.0
    neighbours = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    scale = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            window = [
                y[i + dy, j + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if 0 <= i + dy < h and 0 <= j + dx < w
            ]
            others = [
                (y[i + dy, j + dx] - y[i, j]) ** 2
                for dy, dx in neighbours
                if 0 <= i + dy < h and 0 <= j + dx < w
            ]
            variance = np.var(window)
            scale[i, j] = max(0.6 * variance, min(others) / -math.log(0.01), 2e-6)
    n = h * w
    weights = np.zeros((n, n))
    for i in range(h):
        for j in range(w):
            for dy, dx in neighbours:
                k, m = i + dy, j + dx
                if 0 <= k < h and 0 <= m < w:
                    s = 0.5 * (scale[i, j] + scale[k, m])
                    weights[i * w + j, k * w + m] = max(
                        math.exp(-((y[i, j] - y[k, m]) ** 2) / s), 1e-6
                    )
    degree = weights.sum(1)
    system = np.diag(degree * (1 + decay)) - weights
    known = mask.ravel()
    out = np.where(mask, values, 0.0).reshape(len(values), n)
    free = ~known
    for c in range(len(values)):
        rhs = -system[np.ix_(free, known)] @ out[c, known]
        out[c, free] = np.linalg.solve(system[np.ix_(free, known.__invert__())], rhs)
    return out.reshape(values.shape)


def _problem(
    h: int, w: int, hints: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lightness = np.clip(np.cumsum(rng.normal(0, 8, (h, w)), axis=1) + 50, 0, 100)
    lightness[:, w // 2 :] += 30  # an edge
    lightness = np.clip(lightness, 0, 100)
    mask = np.zeros((h, w), bool)
    mask.flat[rng.choice(h * w, hints, replace=False)] = True
    values = rng.normal(0, 30, (2, h, w))
    return lightness, values, mask


@pytest.mark.parametrize("decay", [0.0, 1e-2])
def test_levin_matches_dense_reference(decay: float) -> None:
    lightness, values, mask = _problem(7, 9, 4)
    got = spread.levin_spread(lightness, values, mask, decay=decay)
    expected = _reference(lightness, values, mask, decay)
    torch.testing.assert_close(got, torch.from_numpy(expected).float(), atol=1e-4, rtol=1e-5)
    assert torch.equal(got[:, torch.from_numpy(mask)], torch.from_numpy(values[:, mask]).float())


def test_levin_iterative_solver_matches_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    lightness, values, mask = _problem(24, 30, 6, seed=1)
    monkeypatch.setattr(spread, "_DIRECT_LIMIT", 100)  # force the preconditioned CG
    got = spread.levin_spread(lightness, values, mask, tol=1e-8)
    expected = _reference(lightness, values, mask, 0.0)
    torch.testing.assert_close(got, torch.from_numpy(expected).float(), atol=1e-3, rtol=0)


def test_levin_respects_edges() -> None:
    lightness = np.full((16, 16), 20.0)
    lightness[:, 8:] = 80.0
    values = np.zeros((1, 16, 16))
    mask = np.zeros((16, 16), bool)
    values[0, 8, 2], mask[8, 2] = 50.0, True
    values[0, 8, 13], mask[8, 13] = -50.0, True
    out = spread.levin_spread(lightness, values, mask)[0]
    assert (out[:, :8] > 45).all() and (out[:, 8:] < -45).all()
    # with no edge the two values mix
    flat = spread.levin_spread(np.full((16, 16), 50.0), values, mask)[0]
    assert flat[:, 7].abs().max() < 20
    # decay: a lone value fades away from its pixel
    lone = np.zeros((16, 16), bool)
    lone[8, 2] = True
    faded = spread.levin_spread(np.full((16, 16), 50.0), values, lone, decay=0.05)[0]
    assert faded[8, 2] == 50.0 and 0 < faded[0, 15] < 5


def test_levin_edge_cases() -> None:
    lightness = np.full((3, 4), 50.0)
    values = np.ones((2, 3, 4))
    assert spread.levin_spread(lightness, values, np.zeros((3, 4), bool)).abs().sum() == 0
    assert torch.equal(
        spread.levin_spread(lightness, values, np.ones((3, 4), bool)), torch.ones(2, 3, 4)
    )
    one = spread.levin_spread(np.full((1, 1), 50.0), values[:, :1, :1] * 7, np.zeros((1, 1), bool))
    assert one.shape == (2, 1, 1)
    with pytest.raises(ValueError, match="of one size"):
        spread.levin_spread(lightness, values[:, :2], np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="decay must be a finite number >= 0, got -1"):
        spread.levin_spread(lightness, values, np.zeros((3, 4), bool), decay=-1)


def test_gaussian_spread() -> None:
    values = torch.zeros(2, 20, 30)
    mask = torch.zeros(20, 30, dtype=torch.bool)
    values[:, 2, 3], mask[2, 3] = torch.tensor([10.0, -5.0]), True
    out = spread.gaussian_spread(values, mask, sigma=4.0)
    assert torch.allclose(out, torch.tensor([10.0, -5.0]).view(2, 1, 1).expand(2, 20, 30))
    values[:, 17, 27], mask[17, 27] = torch.tensor([-10.0, 5.0]), True
    out = spread.gaussian_spread(values, mask, sigma=4.0)
    assert out[0, 0, 0] > 9.99 and out[0, 19, 29] < -9.99  # far pixels: nearest hint, no NaN
    midpoint = spread.gaussian_spread(values, mask, sigma=100.0)[0, 9:11, 14:16]
    assert midpoint.abs().max() < 1.0
    assert spread.gaussian_spread(values, torch.zeros_like(mask), 3.0).abs().sum() == 0
    with pytest.raises(ValueError, match="sigma must be a positive number, got 0"):
        spread.gaussian_spread(values, mask, 0)


def test_working_size_and_spread_hints() -> None:
    assert spread.working_size(3000, 4000) == (192, 256)
    assert spread.working_size(4000, 3000, long_side=128) == (128, 96)
    with pytest.raises(ValueError, match="long_side"):
        spread.working_size(10, 10, long_side=0)
    pixels = torch.zeros(3, 40, 60, dtype=torch.uint8)
    pixels[:, :, 30:] = 200
    hints = HintSet.build((40, 60), [(5, 5, "#3c78c8"), (55, 35, (200, 120, 40))])
    base = torch.full((2, 8, 8), 4.0)
    ab = spread.spread_hints(base, pixels, hints, long_side=30)
    assert ab.shape == (2, 20, 30)
    torch.testing.assert_close(ab[:, 2, 2], torch.tensor(hints.ab[0], dtype=torch.float32))
    torch.testing.assert_close(ab[:, 17, 27], torch.tensor(hints.ab[1], dtype=torch.float32))
    empty = HintSet.build((40, 60))
    torch.testing.assert_close(
        spread.spread_hints(base, pixels, empty, long_side=30), torch.full((2, 20, 30), 4.0)
    )
