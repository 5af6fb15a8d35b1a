"""Model-free spreading of sparse colour hints over a photo.

Two ways to turn a few known values (colour hints) into a dense plane, both at a small
*working resolution* (:func:`working_size`, 256 px on the long side by default) whose
result is upsampled like a network's predicted a/b:

* :func:`levin_spread`: the edge-aware optimisation of Levin, Lischinski and Weiss,
  "Colorization using Optimization" (SIGGRAPH 2004). Neighbouring pixels (8-connected)
  of similar lightness should have similar colour: with the paper's affinities
  ``w_rs = exp(-(Y_r - Y_s)^2 / s_r)`` (``Y = L / 100``, ``s_r`` from the variance of ``Y``
  in the 3x3 window around ``r``, as in the authors' code), symmetrised as
  ``exp(-(Y_r - Y_s)^2 / ((s_r + s_s) / 2))``, it minimises
  ``sum_(r~s) w_rs (U_r - U_s)^2 + decay * sum_r d_r U_r^2`` with the hint pixels fixed
  (``d_r = sum_s w_rs``). The symmetric form is what makes the system positive definite,
  so it is solved by conjugate gradients with a two-level (aggregation) preconditioner in
  well under a second at 256 px; small grids are solved directly. ``decay > 0`` makes a
  value fade with distance instead of filling the whole image (used to spread corrections
  to a model's colours, see :class:`pixcolor.Colorizer`).
* :func:`gaussian_spread`: a Gaussian-weighted average of the hints (Nadaraya-Watson), the
  baseline that knows nothing of edges.

Example:
    >>> import torch
    >>> lightness = torch.cat([torch.full((8, 4), 20.0), torch.full((8, 4), 80.0)], dim=1)
    >>> values = torch.zeros(1, 8, 8)
    >>> values[0, 0, 0], values[0, 0, 7] = 10.0, -10.0
    >>> mask = values[0] != 0
    >>> out = levin_spread(lightness, values, mask)
    >>> out[0, 7, 1].item() > 9.5, out[0, 7, 6].item() < -9.5   # each side keeps its hint
    (True, True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from pixcolor import lab
from pixcolor.hints import HintSet, rasterize

if TYPE_CHECKING:  # scipy is imported when a solve needs it: `import pixcolor` stays fast
    import scipy.sparse as sp

__all__ = [
    "RESIDUAL_DECAY",
    "WORKING_SIZE",
    "gaussian_spread",
    "levin_spread",
    "spread_hints",
    "working_lightness",
    "working_size",
]

logger = logging.getLogger(__name__)

WORKING_SIZE = 256
"""Default long side of the grid the spreading runs on."""

RESIDUAL_DECAY = 0.0
"""``decay`` with which :class:`pixcolor.Colorizer` spreads hints' corrections to a model's
colours (:func:`spread_hints`): 0, Levin et al.'s optimisation as published, so that the
corrections fill the photo. On 16 training photos with 3 / 10 / 30 sampled hints it gave
23.30 / 24.20 / 25.38 dB PSNR, against 22.98 / 23.74 / 25.06 for 1e-4 and 22.58 / 22.86 /
23.56 for 1e-3 (corrections fading over about 30 working pixels);
``benchmarks/tune_hint_spread.py`` measures it."""

# Grids with at most this many unknowns are solved directly (sparse LU); larger ones by
# preconditioned conjugate gradients.
_DIRECT_LIMIT = 6000
_AGGREGATE = 4  # side of the square blocks of the preconditioner's coarse level
_MIN_WEIGHT = 1e-6  # keeps every pixel connected (exp() underflows across hard edges)
_JACOBI_DAMPING = 0.7
# The 4 "forward" neighbours of the 8-connected grid: each edge once.
_EDGES = ((0, 1), (1, -1), (1, 0), (1, 1))


def working_size(height: int, width: int, long_side: int = WORKING_SIZE) -> tuple[int, int]:
    """``(h, w)`` of the grid spreading runs on: the image's aspect ratio with the long
    side ``long_side`` (never more than the image's own size).

    Example:
        >>> working_size(3000, 4000), working_size(100, 50)
        ((192, 256), (100, 50))
    """
    if not isinstance(long_side, int) or isinstance(long_side, bool) or long_side < 1:
        raise ValueError(f"long_side must be a positive integer, got {long_side!r}")
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def levin_spread(
    lightness: torch.Tensor | np.ndarray,
    values: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    *,
    decay: float = 0.0,
    tol: float = 1e-4,
) -> torch.Tensor:
    """Spread ``values`` from the ``mask`` pixels over the grid, along the edges of ``lightness``.

    See the module docstring for the optimisation solved.

    Args:
        lightness: ``(h, w)`` Lab ``L`` in ``[0, 100]``.
        values: ``(C, h, w)`` values (read where ``mask`` is set).
        mask: ``(h, w)`` bool, the pixels whose value is known.
        decay: ``>= 0``. 0 is Levin et al.'s optimisation (every pixel gets a mix of the
            hints); above 0 values fade away from the hints, over about
            ``1 / sqrt(decay)`` pixels of uniform lightness.
        tol: Relative residual at which the iterative solver (grids above 6000 pixels)
            stops; the error is then about ``tol`` times the largest value.

    Returns:
        float32 ``(C, h, w)`` on the CPU, equal to ``values`` on the mask; zeros when the
        mask is empty.

    Raises:
        ValueError: If the shapes disagree or ``decay`` is negative.
    """
    lum = _as_numpy(lightness, "lightness").astype(np.float64)
    vals = _as_numpy(values, "values").astype(np.float64)
    known = _as_numpy(mask, "mask").astype(bool)
    if lum.ndim != 2 or vals.ndim != 3 or vals.shape[1:] != lum.shape or known.shape != lum.shape:
        raise ValueError(
            "levin_spread needs lightness (h, w), values (C, h, w) and mask (h, w) of one "
            f"size, got {lum.shape}, {vals.shape} and {known.shape}"
        )
    if not math.isfinite(decay) or decay < 0:
        raise ValueError(f"decay must be a finite number >= 0, got {decay!r}")
    channels = vals.shape[0]
    out = np.where(known, vals, 0.0)
    if known.any() and not known.all():
        flat_known = known.ravel()
        system, coupling = _system(lum / 100.0, flat_known, decay)
        fixed = out.reshape(channels, -1)
        rhs = -np.stack([coupling @ v for v in fixed])
        rhs[:, flat_known] = fixed[:, flat_known]
        fixed[:] = _solve(system, rhs, known, tol)
    return torch.from_numpy(out.astype(np.float32))


def gaussian_spread(
    values: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    sigma: float,
) -> torch.Tensor:
    """Gaussian-weighted average of the known values at every pixel (edges ignored).

    ``out(p) = sum_i g(p - p_i) v_i / sum_i g(p - p_i)`` over the mask pixels ``p_i``, with
    ``g`` a Gaussian of standard deviation ``sigma`` pixels, computed in the log domain so
    that far pixels take their nearest hints' values instead of dividing zero by zero. The
    mask pixels keep their own values.

    Args:
        values: ``(C, h, w)``.
        mask: ``(h, w)`` bool.
        sigma: Standard deviation in grid pixels, ``> 0``.

    Returns:
        float32 ``(C, h, w)`` on the CPU; zeros when the mask is empty.

    Raises:
        ValueError: If the shapes disagree or ``sigma`` is not positive.

    Example:
        >>> import torch
        >>> values = torch.zeros(1, 1, 5)
        >>> values[0, 0, 0], values[0, 0, 4] = 1.0, 3.0
        >>> gaussian_spread(values, values[0] != 0, sigma=1.0)[0, 0].tolist()
        [1.0, 1.0359..., 2.0, 2.9640..., 3.0]
    """
    vals = torch.as_tensor(_as_numpy(values, "values"), dtype=torch.float64)
    known = torch.as_tensor(_as_numpy(mask, "mask").astype(bool))
    if vals.dim() != 3 or known.shape != vals.shape[1:]:
        raise ValueError(
            f"gaussian_spread needs values (C, h, w) and mask (h, w), got "
            f"{tuple(vals.shape)} and {tuple(known.shape)}"
        )
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    channels, h, w = vals.shape
    points = known.nonzero().to(torch.float64)  # (K, 2) rows, cols
    if len(points) == 0:
        return torch.zeros(channels, h, w)
    known_values = vals[:, known].T  # (K, C)
    rows = torch.arange(h, dtype=torch.float64)
    cols = torch.arange(w, dtype=torch.float64)
    out = torch.empty(h, w, channels, dtype=torch.float64)
    step = max(1, (1 << 22) // (w * len(points)))
    for top in range(0, h, step):
        grid_r = rows[top : top + step, None, None]
        dist2 = (grid_r - points[:, 0]) ** 2 + (cols[None, :, None] - points[:, 1]) ** 2
        weights = torch.softmax(-dist2 / (2.0 * sigma * sigma), dim=-1)
        out[top : top + step] = weights @ known_values
    out = out.permute(2, 0, 1)
    return torch.where(known, vals, out).float().contiguous()


def spread_hints(
    ab: torch.Tensor,
    pixels: torch.Tensor,
    hints: HintSet,
    *,
    decay: float = 0.0,
    long_side: int = WORKING_SIZE,
) -> torch.Tensor:
    """Make a colour prediction follow hints: add their residual, spread edge-aware.

    The residual of each hint (its a/b minus ``ab`` there) is spread over the photo with
    :func:`levin_spread` at the working resolution and added to ``ab``, so that the hinted
    places take the hinted colour and the correction fades along the photo's edges.
    ``ab = 0`` (a gray prediction) with ``decay = 0`` is Levin et al.'s colorization.

    Args:
        ab: ``(2, h, w)`` Lab a/b predicted for the whole image (any grid, e.g. the
            network's square).
        pixels: ``(3, H, W)`` the image (uint8 or float in ``[0, 1]``, one plane expanded
            to 3 for gray images): its lightness guides the spreading.
        hints: The image's hints.
        decay: See :func:`levin_spread`.
        long_side: Long side of the working grid (:func:`working_size`).

    Returns:
        float32 ``(2, gh, gw)`` a/b on the working grid, on ``ab``'s device.
    """
    grid = working_size(*hints.size, long_side=long_side)
    base = _resize(ab[None].float(), grid)[0]
    if len(hints) == 0:
        return base
    values, mask = rasterize(hints, grid)
    lightness = working_lightness(pixels, grid)
    residual = levin_spread(lightness, values - base.cpu(), mask, decay=decay)
    return base + residual.to(base.device)


def spread_chunk(
    ab: list[torch.Tensor], chunk: Sequence[Any], hint_sets: Sequence[HintSet]
) -> list[torch.Tensor]:
    """:func:`spread_hints` over a batch: ``ab`` is one ``(1, 2, r, r)`` per image, ``chunk``
    the loaded images (``.pixels``); images without hints keep their ``ab``."""
    return [
        spread_hints(a[0], item.pixels, hints, decay=RESIDUAL_DECAY)[None] if len(hints) else a
        for a, item, hints in zip(ab, chunk, hint_sets, strict=True)
    ]


def working_lightness(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(h, w)`` Lab L of the image ``(3, H, W)`` (uint8 or float) shrunk to ``grid``."""
    planes = pixels[:1] if pixels.stride(0) == 0 else pixels
    planes = planes.cpu()[None]
    if planes.dtype != torch.uint8:
        planes = planes.float()
    planes = _resize(planes, grid).float()
    if pixels.dtype == torch.uint8:
        planes = planes / 255.0
    return lab.rgb_to_l(planes.expand(-1, 3, -1, -1))[0, 0]


def _as_numpy(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a tensor or an array, got {type(x).__name__}")


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, *size)``, bilinear (antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _levin_scales(y: np.ndarray) -> np.ndarray:
    """Per pixel ``s_r`` of Levin et al.'s code: 0.6 x the variance of the 3x3 window (the
    pixel included), at least what gives the closest neighbour weight 0.01, at least 2e-6."""
    h, w = y.shape
    padded = np.pad(y, 1, mode="constant", constant_values=np.nan)
    window = np.stack(
        [padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    count = (~np.isnan(window)).sum(0)
    mean = np.nansum(window, 0) / count
    variance = np.nansum((window - mean) ** 2, 0) / count
    diffs = (window - y) ** 2
    diffs[4] = np.inf  # the pixel itself
    closest = np.nanmin(np.where(np.isnan(diffs), np.inf, diffs), axis=0)
    closest = np.where(np.isfinite(closest), closest, 0.0)
    return np.maximum(np.maximum(0.6 * variance, closest / -math.log(0.01)), 2e-6)


def _system(y: np.ndarray, known: np.ndarray, decay: float) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The optimisation's linear system over the grid of ``y`` ``(h, w)``, the ``known``
    (flat bool) pixels eliminated: ``(system, coupling)``. ``system`` is
    ``D (1 + decay) - W`` between unknown pixels and the identity on known ones (symmetric
    positive definite); ``coupling`` holds ``-W`` from unknown to known pixels, so the
    right-hand side of the unknown rows is ``-coupling @ values``."""
    import scipy.sparse as sp

    h, w = y.shape
    n = h * w
    scales = _levin_scales(y)
    index = np.arange(n).reshape(h, w)
    rows, cols, data = [], [], []
    for dy, dx in _EDGES:
        left, right = max(0, -dx), w - max(0, dx)
        a = (slice(0, h - dy), slice(left, right))
        b = (slice(dy, h), slice(left + dx, right + dx))
        scale = 0.5 * (scales[a] + scales[b])
        weight = np.maximum(np.exp(-((y[a] - y[b]) ** 2) / scale), _MIN_WEIGHT)
        rows.append(index[a].ravel())
        cols.append(index[b].ravel())
        data.append(weight.ravel())
    r, c, d = np.concatenate(rows), np.concatenate(cols), np.concatenate(data)
    r, c, d = np.concatenate([r, c]), np.concatenate([c, r]), np.concatenate([d, d])
    degree = np.bincount(r, weights=d, minlength=n) * (1.0 + decay)
    diagonal = np.where(known, 1.0, degree)
    free_edge = ~known[r] & ~known[c]
    to_known = ~known[r] & known[c]
    everything = np.arange(n)
    system = sp.csr_matrix(
        (
            np.concatenate([diagonal, -d[free_edge]]),
            (
                np.concatenate([everything, r[free_edge]]),
                np.concatenate([everything, c[free_edge]]),
            ),
        ),
        shape=(n, n),
    )
    coupling = sp.csr_matrix((-d[to_known], (r[to_known], c[to_known])), shape=(n, n))
    return system, coupling


def _solve(system: sp.csr_matrix, rhs: np.ndarray, known: np.ndarray, tol: float) -> np.ndarray:
    """Solve the symmetric positive definite ``system @ x = rhs`` for every row of ``rhs``
    ``(C, n)``; ``known`` ``(h, w)`` marks the identity rows."""
    import scipy.sparse.linalg as spla

    if system.shape[0] <= _DIRECT_LIMIT:
        return spla.splu(system.tocsc()).solve(rhs.T).T
    return _pcg(system, rhs, _two_level(system, known), tol)


def _two_level(system: sp.csr_matrix, known: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A symmetric two-level preconditioner for ``(C, n)`` residuals: damped Jacobi, an
    exact solve on blocks of ``_AGGREGATE x _AGGREGATE`` unknown pixels (piecewise-constant
    aggregation), damped Jacobi."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    h, w = known.shape
    blocks_w = -(-w // _AGGREGATE)
    block = (np.arange(h)[:, None] // _AGGREGATE) * blocks_w + np.arange(w)[None, :] // _AGGREGATE
    free = ~known.ravel()
    _, block = np.unique(block.ravel()[free], return_inverse=True)
    prolong = sp.csr_matrix(
        (np.ones(len(block)), (np.flatnonzero(free), block)), shape=(h * w, int(block.max()) + 1)
    )
    restrict = prolong.T.tocsr()
    coarse = spla.splu((restrict @ system @ prolong).tocsc())
    inverse_diagonal = _JACOBI_DAMPING / system.diagonal()

    def apply(residual: np.ndarray) -> np.ndarray:
        z = inverse_diagonal * residual
        coarse_rhs = np.stack([restrict @ v for v in residual - _matvec(system, z)])
        z += np.stack([prolong @ v for v in coarse.solve(coarse_rhs.T).T])
        z += inverse_diagonal * (residual - _matvec(system, z))
        return z

    return apply


def _matvec(system: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    return np.stack([system @ v for v in x])


def _pcg(
    system: sp.csr_matrix,
    rhs: np.ndarray,
    precondition: Callable[[np.ndarray], np.ndarray],
    tol: float,
) -> np.ndarray:
    """Preconditioned conjugate gradients on every row of ``rhs`` ``(C, n)`` at once."""

    def dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", u, v)[:, None]

    x = np.zeros_like(rhs)
    residual = rhs.copy()
    goal = tol * np.sqrt(dot(rhs, rhs)) + 1e-30
    z = precondition(residual)
    direction = z.copy()
    rz = dot(residual, z)
    for iteration in range(1, 1001):
        product = _matvec(system, direction)
        alpha = rz / np.maximum(dot(direction, product), 1e-300)
        x += alpha * direction
        residual -= alpha * product
        if np.all(np.sqrt(dot(residual, residual)) <= goal):
            logger.debug("levin_spread: converged in %d iterations", iteration)
            return x
        z = precondition(residual)
        rz_new = dot(residual, z)
        direction = z + (rz_new / np.maximum(rz, 1e-300)) * direction
        rz = rz_new
    logger.warning("levin_spread: no convergence to %g in 1000 iterations", tol)
    return x
