"""Evaluate colorization with user hints, simulated from the truth.

:func:`evaluate_hints` gives every photo ``N`` hints sampled from its own colours (fixed
seed; a hint's colour is the mean a/b of a 5x5 patch, as a user's click on the right colour
would give) and scores, for each ``N``, four methods at full resolution:

* ``"model"``: the colorizer given the hints (a hint model takes them as input; any other
  model follows them model-free, see :func:`pixcolor.spread.spread_hints`);
* ``"levin"``: no model: the gray photo coloured by Levin et al.'s optimisation from the
  hints alone (:func:`pixcolor.spread.levin_spread`);
* ``"gaussian"``: no model: a Gaussian-weighted average of the hints
  (:func:`pixcolor.spread.gaussian_spread`);
* ``"gray"``: the photo's L with ``a = b = 0``.

The two model-free methods show what the network adds. Metrics: PSNR on 8-bit RGB, mean
CIEDE2000, colourfulness and its gap to the truth (ΔCF), and ``hint_error``: the mean a/b
distance between the output and each hint's own a/b at the hint's pixel (how well the
output follows the hints).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from pixcolor import lab
from pixcolor.data import find_images, load_rgb, scan_photos
from pixcolor.errors import NoImagesError
from pixcolor.hints import Hint, HintSet, rasterize
from pixcolor.metrics import _as_colorizer, colorfulness, delta_cf, delta_e_2000, psnr
from pixcolor.spread import WORKING_SIZE, gaussian_spread, spread_hints, working_size

__all__ = ["GAUSSIAN_SIGMA", "HINT_METHODS", "evaluate_hints", "format_hint_table", "sample_hints"]

logger = logging.getLogger(__name__)

HINT_METHODS = {
    "model": "model + hints",
    "levin": "Levin et al.",
    "gaussian": "Gaussian spread",
    "gray": "gray (ab=0)",
}
"""Keys of each row of :func:`evaluate_hints`'s result and the names printed for them."""

GAUSSIAN_SIGMA = 0.1
"""Default standard deviation of the Gaussian spread, as a fraction of the long side.
Chosen on 16 training photos (``benchmarks/tune_hint_spread.py``): PSNR 22.36 / 23.50 /
25.18 dB with 3 / 10 / 30 hints, against 22.21 / 23.14 / 25.01 for 0.05 and 22.58 / 23.66 /
24.47 for 0.2."""

_PATCH = 5


def sample_hints(
    image: Image.Image | np.ndarray, n: int, seed: int | Sequence[int] = 0, patch: int = _PATCH
) -> list[Hint]:
    """``n`` hints from a colour photo: uniform random positions, each with the mean
    Lab a/b of the ``patch x patch`` pixels around it.

    A hint's colour is the sRGB (8-bit) of that mean a/b at the patch's mean L, and its
    radius ``patch // 2``. The first ``k`` hints of ``n`` are the ``k`` hints, so the hints
    of a photo grow as ``n`` grows.

    Args:
        image: 8-bit RGB, a PIL image or an ``(H, W, 3)`` array.
        n: Number of hints (``>= 0``).
        seed: Seed of :func:`numpy.random.default_rng` (an int or a sequence of ints).
        patch: Odd side of the averaged patch, at most the image's smaller side.

    Returns:
        The hints.

    Raises:
        ValueError: If ``n`` is negative, or ``patch`` is even or larger than the image.

    Example:
        >>> img = np.zeros((20, 30, 3), np.uint8)
        >>> img[..., 0] = 200
        >>> [h.rgb for h in sample_hints(img, 2)]
        [(200, 0, 0), (200, 0, 0)]
    """
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    height, width = rgb.shape[:2]
    if patch % 2 == 0 or patch > min(height, width):
        raise ValueError(f"patch must be odd and at most {min(height, width)}, got {patch!r}")
    half = patch // 2
    rng = np.random.default_rng(seed)
    uniform = rng.random((n, 2))  # row by row: the first k rows do not depend on n
    ys = half + (uniform[:, 0] * (height - 2 * half)).astype(np.int64)
    xs = half + (uniform[:, 1] * (width - 2 * half)).astype(np.int64)
    planes = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    hints = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        window = planes[:, y - half : y + half + 1, x - half : x + half + 1]
        mean = lab.rgb_to_lab(window).mean(dim=(1, 2)).view(3, 1, 1)
        colour = (lab.lab_to_rgb(mean).flatten() * 255.0).round().to(torch.uint8).tolist()
        hints.append(Hint(x, y, tuple(colour), radius=half))
    return hints


def evaluate_hints(
    model: Any,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    n_hints: Sequence[int] = (0, 1, 10),
    *,
    seed: int = 0,
    render_size: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    gaussian_sigma: float = GAUSSIAN_SIGMA,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a colorizer given ``N`` hints per photo, beside model-free baselines.

    See the module docstring for the methods and metrics. A photo's hints depend only on
    ``seed`` and its file name, so every method, model and run sees the same ones.

    Args:
        model: A :class:`pixcolor.Colorizer` (or anything whose ``colorize`` takes
            ``hints=``), or a :class:`pixcolor.UNetGenerator` (wrapped in one).
        data: A folder of colour photos (recursive), one photo, or a list of files.
        n_hints: The numbers of hints to evaluate, each ``>= 0``.
        seed: Seed of the hint positions.
        render_size: Resolution the network sees; ``None``: the model's own.
        batch_size: Photos per ``colorize`` call.
        device: Where metrics are computed (``None``: the colorizer's device, else CPU).
        gaussian_sigma: The Gaussian spread's standard deviation, as a fraction of the
            working grid's long side.
        progress: Show a tqdm bar.

    Returns:
        ``{"n_hints": [...], "rows": {"N": {method: {"psnr", "delta_e", "colorfulness",
        "delta_cf", "hint_error"}}}, "truth_colorfulness", "n_images", "seed",
        "render_size"}``; ``hint_error`` is ``nan`` for ``N = 0``. ``rows`` is keyed by
        ``str(N)`` (JSON keys are strings).

    Raises:
        NoImagesError: If no usable colour photo is found.
        ValueError: If ``n_hints`` is empty or holds a negative number.
    """
    counts = sorted({int(n) for n in n_hints})
    if not counts or counts[0] < 0 or any(isinstance(n, bool) for n in n_hints):
        raise ValueError(f"n_hints must be a non-empty list of integers >= 0, got {n_hints!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    colorizer, restore = _as_colorizer(model, device)
    try:
        photos = _photos(data)
        if device is None:
            device = getattr(colorizer, "device", None) or "cpu"
        scores = {n: {key: _Scores() for key in HINT_METHODS} for n in counts}
        truth_cf: list[float] = []
        bar = tqdm(total=len(photos), desc="evaluate hints", unit="photo", disable=not progress)
        for start in range(0, len(photos), batch_size):
            paths = photos[start : start + batch_size]
            images = [load_rgb(path) for path in paths]
            all_hints = [
                sample_hints(img, counts[-1], seed=[seed, zlib.crc32(p.name.encode())])
                for img, p in zip(images, paths, strict=True)
            ]
            truths = [_to_tensor(img, device) for img in images]
            truth_labs = [lab.rgb_to_lab(t) for t in truths]
            truth_cf += [colorfulness(t).item() for t in truths]
            for n in counts:
                hints = [h[:n] for h in all_hints]
                outputs = colorizer.colorize(images, render_size=render_size, hints=hints)
                for image, output, truth, truth_lab, these in zip(
                    images, outputs, truths, truth_labs, hints, strict=True
                ):
                    if output.size != image.size:
                        raise ValueError(
                            f"the model returned a {output.size} image for a {image.size} input"
                        )
                    for key, pred in _candidates(output, truth, these, gaussian_sigma).items():
                        scores[n][key].add(pred, truth, truth_lab, these)
            bar.update(len(paths))
        bar.close()
    finally:
        restore()
    truth_mean = float(np.mean(truth_cf))
    if render_size is None:
        config = getattr(getattr(colorizer, "generator", None), "config", None)
        render_size = getattr(config, "render_size", None)
    return {
        "n_hints": counts,
        "rows": {
            str(n): {key: s.summary(truth_cf) for key, s in methods.items()}
            for n, methods in scores.items()
        },
        "truth_colorfulness": truth_mean,
        "n_images": len(photos),
        "seed": seed,
        "render_size": render_size,
    }


def format_hint_table(results: dict[str, Any]) -> str:
    """Render :func:`evaluate_hints`'s result as a plain-text table, one block per ``N``.

    Example:
        >>> row = {"psnr": 24.5, "delta_e": 6.25, "colorfulness": 30.0, "delta_cf": 18.7,
        ...        "hint_error": 3.5}
        >>> rows = {"10": {key: row for key in HINT_METHODS}}
        >>> print(format_hint_table({"n_hints": [10], "rows": rows, "n_images": 2}))
        hints  method           PSNR (dB)  dE2000    dCF  hint ab error
           10  model + hints        24.50    6.25  18.70           3.50
           10  Levin et al.         24.50    6.25  18.70           3.50
           10  Gaussian spread      24.50    6.25  18.70           3.50
           10  gray (ab=0)          24.50    6.25  18.70           3.50
        (2 photos)
    """
    lines = [
        f"{'hints':>5}  {'method':<15}  {'PSNR (dB)':>9}  {'dE2000':>6}  {'dCF':>5}  {'hint ab error':>13}"
    ]
    for n in results["n_hints"]:
        for key, name in HINT_METHODS.items():
            m = results["rows"][str(n)][key]
            error = m["hint_error"]
            error_text = "-" if error is None or not np.isfinite(error) else f"{error:.2f}"
            lines.append(
                f"{n:>5}  {name:<15}  {m['psnr']:>9.2f}  {m['delta_e']:>6.2f}  "
                f"{m['delta_cf']:>5.2f}  {error_text:>13}"
            )
    count = results["n_images"]
    notes = [f"{count} photo" + ("" if count == 1 else "s")]
    if results.get("render_size"):
        notes.append(f"render size {results['render_size']}")
    lines.append(f"({', '.join(notes)})")
    return "\n".join(lines)


class _Scores:
    """Per-photo metrics of one method at one ``N``."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(
        self, pred: torch.Tensor, truth: torch.Tensor, truth_lab: torch.Tensor, hints: list[Hint]
    ) -> None:
        pred_lab = lab.rgb_to_lab(pred)
        values = {
            "psnr": psnr(pred, truth).item(),
            "delta_e": delta_e_2000(pred_lab, truth_lab).mean().item(),
            "colorfulness": colorfulness(pred).item(),
        }
        for name, value in values.items():
            self.values.setdefault(name, []).append(value)
        for hint in hints:  # the hint centres' a/b against the hint's own
            got = pred_lab[0, 1:, int(hint.y), int(hint.x)].double()
            error = torch.linalg.vector_norm(got - torch.tensor(hint.ab, dtype=torch.float64))
            self.values.setdefault("hint_error", []).append(error.item())

    def summary(self, truth_cf: list[float]) -> dict[str, float]:
        out = {k: float(np.mean(v)) for k, v in self.values.items() if k != "hint_error"}
        out["delta_cf"] = delta_cf(self.values["colorfulness"], truth_cf)
        errors = self.values.get("hint_error")
        out["hint_error"] = float(np.mean(errors)) if errors else float("nan")
        return out


def _photos(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(data, (str, os.PathLike)):  # a folder, or one photo
        files = [Path(data)] if Path(data).is_file() else find_images(data)
    else:
        files = [Path(p) for p in data]
    photos, skipped = scan_photos(files)
    if any(skipped.values()):
        counts = ", ".join(f"{len(v)} {k}" for k, v in skipped.items())
        logger.warning(
            "evaluate_hints: skipped %d of %d files (%s)",
            len(files) - len(photos),
            len(files),
            counts,
        )
    if not photos:
        raise NoImagesError(f"no usable colour photo to evaluate among {len(files)} files")
    return photos


def _candidates(
    output: Image.Image, truth: torch.Tensor, hints: list[Hint], sigma: float
) -> dict[str, torch.Tensor]:
    """The four methods' outputs for one photo, as float ``(1, 3, H, W)`` 8-bit levels."""
    size = tuple(truth.shape[-2:])
    hint_set = HintSet.build(size, hints)  # type: ignore[arg-type]
    pixels = truth[0]
    grid = working_size(*size, long_side=WORKING_SIZE)
    zeros = torch.zeros(2, 1, 1, device=truth.device)
    levin = spread_hints(zeros, pixels, hint_set, decay=0.0)
    values, mask = rasterize(hint_set, grid)
    sigma_px = sigma * max(grid)
    gaussian = gaussian_spread(values, mask, sigma_px).to(truth.device)
    return {
        "model": _to_tensor(output.convert("RGB"), truth.device),
        "levin": _recolor(truth, levin),
        "gaussian": _recolor(truth, gaussian),
        "gray": _recolor(truth, zeros),
    }


def _recolor(truth: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The truth's L with ``ab`` ``(2, h, w)`` upsampled to its size, as 8-bit levels."""
    full = F.interpolate(
        ab[None].float(), size=truth.shape[-2:], mode="bilinear", align_corners=False
    )
    return (lab.recolor(truth, full).clamp(0.0, 1.0) * 255.0).round_().div_(255.0)


def _to_tensor(image: Image.Image, device: torch.device | str) -> torch.Tensor:
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return array.to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
