"""Image-quality and colour metrics for colorization, batched in torch, and an evaluation loop.

Every metric takes ``(B, 3, H, W)`` tensors (sRGB in ``[0, 1]``, or Lab for
:func:`delta_e_2000`) on any device and returns one value per image (per pixel for
:func:`delta_e_2000`). They follow the references tests compare against: scikit-image's
``structural_similarity`` and ``deltaE_ciede2000``, and Hasler & Süsstrunk (2003) for
colourfulness.

:func:`evaluate` scores a model on a folder of colour photos at full resolution, beside two
gray baselines, and :func:`format_table` prints the result.

FID and LPIPS are not provided: both need pretrained network weights (Inception, AlexNet or
VGG) that pixcolor cannot ship or download, and a function that only raises would be of no
use. Compute them with ``torchmetrics`` or ``lpips`` on images written by ``pixcolor colorize``.

Example:
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> psnr(x, x).tolist(), ssim(x, x).tolist()
    ([inf, inf], [1.0, 1.0])
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from pixcolor import lab
from pixcolor.data import find_images, load_rgb, scan_photos
from pixcolor.errors import NoImagesError

__all__ = [
    "METHODS",
    "colorfulness",
    "delta_cf",
    "delta_e_2000",
    "evaluate",
    "format_table",
    "psnr",
    "ssim",
]

logger = logging.getLogger(__name__)

METHODS = {"model": "model", "gray": "gray (ab=0)", "gray_pil": "gray (PIL L)"}
"""Keys of :func:`evaluate`'s result and the names :func:`format_table` prints for them."""

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5), scikit-image's truncation: an 11-tap window
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_POW25_7 = 25.0**7


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, in dB.

    Args:
        pred: ``(B, C, H, W)`` float images.
        target: Same shape.
        data_range: Distance between the smallest and largest possible value.

    Returns:
        ``(B,)`` PSNR, ``10 * log10(data_range**2 / MSE)``; ``inf`` for identical images.

    Raises:
        ValueError: If the shapes differ or are not ``(B, C, H, W)``.

    Example:
        >>> psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1))
        tensor([20.])
    """
    pred, target = _check_pair(pred, target)
    mse = (pred - target).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity of each image (Wang et al. 2004), as scikit-image computes it.

    Gaussian window of 11 taps with sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population
    covariances, computed per channel over the pixels whose window lies inside the image,
    then averaged: ``skimage.metrics.structural_similarity(..., channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Args:
        pred: ``(B, C, H, W)`` float images, both sides at least 11.
        target: Same shape.
        data_range: Distance between the smallest and largest possible value.

    Returns:
        ``(B,)`` mean SSIM, 1 for identical images.

    Raises:
        ValueError: If the shapes differ, are not ``(B, C, H, W)``, or a side is below 11.
    """
    pred, target = _check_pair(pred, target)
    size = 2 * _SSIM_RADIUS + 1
    if min(pred.shape[-2:]) < size:
        raise ValueError(f"ssim needs images of at least {size}x{size}, got {tuple(pred.shape)}")
    taps = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64)
    window = torch.exp(-0.5 * (taps / _SSIM_SIGMA) ** 2)
    weights = (window / window.sum()).tolist()
    stacked = torch.cat([pred, target, pred * pred, target * target, pred * target])
    blurred = _valid_blur(_valid_blur(stacked, weights, dim=-2), weights, dim=-1)
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = blurred.chunk(5)
    var_x, var_y = mu_xx - mu_x * mu_x, mu_yy - mu_y * mu_y
    cov = mu_xy - mu_x * mu_y
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(dim=(1, 2, 3))


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Colourfulness of each image, Hasler & Süsstrunk (2003), on the 0-255 scale.

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` over the pixels:
    ``sqrt(std(rg)**2 + std(yb)**2) + 0.3 * sqrt(mean(rg)**2 + mean(yb)**2)`` (population
    standard deviations). A gray image scores 0; the authors call 33 "moderately" and 59
    "quite" colourful.

    Args:
        rgb: ``(B, 3, H, W)`` float sRGB in ``[0, 1]``.

    Returns:
        ``(B,)`` colourfulness.

    Raises:
        ValueError: If the shape is not ``(B, 3, H, W)``.

    Example:
        >>> colorfulness(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
        tensor([85.5296])
    """
    rgb = _check_image(rgb, "rgb") * 255.0
    red, green, blue = rgb.flatten(2).unbind(1)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = torch.sqrt(rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0))
    return spread + 0.3 * torch.sqrt(rg.mean(dim=1).square() + yb.mean(dim=1).square())


def delta_e_2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference per pixel, as ``skimage.color.deltaE_ciede2000``.

    ``kL = kC = kH = 1``. About 1 is a just-noticeable difference.

    Args:
        lab1: ``(*, 3, H, W)`` CIE L*a*b* (see :func:`pixcolor.lab.rgb_to_lab`).
        lab2: Same shape.

    Returns:
        ``(*, H, W)`` difference, in lab1's dtype (float32 for half precision).

    Raises:
        ValueError: If the shapes differ or have no 3 channels in dimension ``-3``.

    Example:
        >>> red = torch.tensor([53.24, 80.09, 67.20]).view(3, 1, 1)
        >>> orange = torch.tensor([74.93, 23.93, 78.95]).view(3, 1, 1)
        >>> delta_e_2000(red, orange).round(decimals=2)
        tensor([[33.7500]])
    """
    if lab1.shape != lab2.shape or lab1.dim() < 3 or lab1.shape[-3] != 3:
        raise ValueError(
            "lab1 and lab2 must have the same shape (*, 3, H, W), got "
            f"{tuple(lab1.shape)} and {tuple(lab2.shape)}"
        )
    dtype = torch.float64 if lab1.dtype == torch.float64 else torch.float32
    l1, a1, b1 = lab1.to(dtype).unbind(-3)
    l2, a2, b2 = lab2.to(dtype).unbind(-3)
    # "prime" coordinates: a stretched by the mean chroma, then polar
    c7 = (0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))) ** 7
    stretch = 1.5 - 0.5 * torch.sqrt(c7 / (c7 + _POW25_7))
    c1, h1 = _polar(a1 * stretch, b1)
    c2, h2 = _polar(a2 * stretch, b2)

    l_mean_sq = (0.5 * (l1 + l2) - 50.0) ** 2
    l_term = (l2 - l1) / (1.0 + 0.015 * l_mean_sq / torch.sqrt(20.0 + l_mean_sq))
    c_mean = 0.5 * (c1 + c2)
    c_term = (c2 - c1) / (1.0 + 0.045 * c_mean)

    h_diff, h_sum, cc = h2 - h1, h1 + h2, c1 * c2
    neutral = cc == 0.0  # either colour gray: its hue is meaningless
    wrap = 2.0 * math.pi * ((h_diff < -math.pi).to(dtype) - (h_diff > math.pi).to(dtype))
    dh = torch.where(neutral, torch.zeros_like(h_diff), h_diff + wrap)
    dh_term = 2.0 * torch.sqrt(cc) * torch.sin(dh / 2.0)
    far = ~neutral & (h_diff.abs() > math.pi)
    shift = torch.where(h_sum < 2.0 * math.pi, 2.0 * math.pi, -2.0 * math.pi)
    h_mean = torch.where(neutral, h_sum, 0.5 * (h_sum + torch.where(far, shift, 0.0)))
    t = (
        1.0
        - 0.17 * torch.cos(h_mean - math.radians(30))
        + 0.24 * torch.cos(2.0 * h_mean)
        + 0.32 * torch.cos(3.0 * h_mean + math.radians(6))
        - 0.20 * torch.cos(4.0 * h_mean - math.radians(63))
    )
    h_term = dh_term / (1.0 + 0.015 * c_mean * t)

    c7 = c_mean**7
    rc = 2.0 * torch.sqrt(c7 / (c7 + _POW25_7))
    dtheta = math.radians(30) * torch.exp(-(((torch.rad2deg(h_mean) - 275.0) / 25.0) ** 2))
    r_term = -torch.sin(2.0 * dtheta) * rc * c_term * h_term
    squared = l_term**2 + c_term**2 + h_term**2 + r_term
    return torch.sqrt(squared.clamp(min=0.0))


def delta_cf(
    pred_cf: Sequence[float] | torch.Tensor, truth_cf: Sequence[float] | torch.Tensor
) -> float:
    """Colourfulness gap over a data set: ``|mean(pred_cf) - mean(truth_cf)|``.

    Args:
        pred_cf: Colourfulness of each output (see :func:`colorfulness`).
        truth_cf: Colourfulness of each ground-truth photo.

    Returns:
        The absolute difference of the means; 0 when outputs are as colourful as the truth.

    Example:
        >>> delta_cf([10.0, 20.0], torch.tensor([40.0, 50.0]))
        30.0
    """
    pred = torch.as_tensor(pred_cf, dtype=torch.float64)
    truth = torch.as_tensor(truth_cf, dtype=torch.float64)
    return abs(pred.mean().item() - truth.mean().item())


def evaluate(
    model: Any,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    render_size: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a colorizer on colour photos, at full resolution, beside two gray baselines.

    Each photo (EXIF-upright RGB; grayscale and unreadable files skipped as by
    :class:`pixcolor.data.PhotoFolder`) is scored on 8-bit RGB against itself for three
    methods: ``"model"``, the model's output given the photo; ``"gray"``, the photo's own
    Lab L with ``ab = 0``; ``"gray_pil"``, PIL's ``convert("L")`` luma as gray RGB.

    Args:
        model: A :class:`pixcolor.Colorizer` (anything with ``colorize(list_of_images,
            render_size=...)``), or a :class:`pixcolor.UNetGenerator`, which is wrapped in
            one (and left in the train/eval mode it had).
        data: A folder of photos (searched recursively), one photo, or a list of files.
        render_size: Resolution the network sees (outputs keep each photo's size);
            ``None``: the model's own (its config's ``render_size``).
        batch_size: Photos per ``colorize`` call.
        device: Where metrics are computed and a wrapped generator runs. ``None``: the
            generator's own device, or the colorizer's ``device`` if it has one, else CPU.
        progress: Show a tqdm bar.

    Returns:
        ``{"model": {...}, "gray": {...}, "gray_pil": {...}, "truth_colorfulness": float,
        "n_images": int, "render_size": int, "precision": str}`` (the last two as the
        colorizer ran; ``precision`` is ``None`` for a colorizer without one); each method maps ``"psnr"`` (dB), ``"ssim"``, ``"delta_e"``
        (mean CIEDE2000 against the truth), ``"colorfulness"`` to its mean over the photos,
        and ``"delta_cf"`` to ``|mean colourfulness - truth_colorfulness|``.

    Raises:
        NoImagesError: If no usable colour photo is found.
        TypeError: If ``model`` is neither a colorizer nor a generator.
        ValueError: If ``batch_size`` is not positive, or the model returns an image of
            another size than its input.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    colorizer, restore = _as_colorizer(model, device)
    try:
        return _evaluate(colorizer, data, render_size, batch_size, device, progress)
    finally:
        restore()


def format_table(results: dict[str, Any]) -> str:
    """Render :func:`evaluate`'s result as a plain-text table, model row first.

    Example:
        >>> row = {"psnr": 21.0, "ssim": 0.9, "delta_e": 9.5, "colorfulness": 12.0, "delta_cf": 36.7}
        >>> results = {"model": row, "gray": row, "gray_pil": row}
        >>> print(format_table({**results, "truth_colorfulness": 48.7, "n_images": 47}))
        method        PSNR (dB)    SSIM  dE2000  colourfulness    dCF
        model             21.00  0.9000    9.50          12.00  36.70
        gray (ab=0)       21.00  0.9000    9.50          12.00  36.70
        gray (PIL L)      21.00  0.9000    9.50          12.00  36.70
        truth                 -       -       -          48.70      -
        (47 photos)
    """
    header = f"{'method':<12}  {'PSNR (dB)':>9}  {'SSIM':>6}  {'dE2000':>6}  {'colourfulness':>13}  {'dCF':>5}"
    lines = [header]
    for key, name in METHODS.items():
        m = results[key]
        lines.append(
            f"{name:<12}  {m['psnr']:>9.2f}  {m['ssim']:>6.4f}  {m['delta_e']:>6.2f}  "
            f"{m['colorfulness']:>13.2f}  {m['delta_cf']:>5.2f}"
        )
    truth = results["truth_colorfulness"]
    lines.append(f"{'truth':<12}  {'-':>9}  {'-':>6}  {'-':>6}  {truth:>13.2f}  {'-':>5}")
    count = results["n_images"]
    notes = [f"{count} photo" + ("" if count == 1 else "s")]
    if results.get("render_size"):
        notes.append(f"render size {results['render_size']}")
    if results.get("precision"):
        notes.append(str(results["precision"]))
    lines.append(f"({', '.join(notes)})")
    return "\n".join(lines)


def _evaluate(
    colorizer: Any,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    render_size: int | None,
    batch_size: int,
    device: torch.device | str | None,
    progress: bool,
) -> dict[str, Any]:
    if isinstance(data, (str, os.PathLike)):  # a folder, or one photo
        files = [Path(data)] if Path(data).is_file() else find_images(data)
    else:
        files = [Path(p) for p in data]
    photos, skipped = scan_photos(files)
    if any(skipped.values()):
        counts = ", ".join(f"{len(v)} {k}" for k, v in skipped.items())
        logger.warning(
            "evaluate: skipped %d of %d files (%s)", len(files) - len(photos), len(files), counts
        )
    if not photos:
        raise NoImagesError(f"no usable colour photo to evaluate among {len(files)} files")
    if device is None:
        device = getattr(colorizer, "device", None) or "cpu"
    scores: dict[str, dict[str, list[float]]] = {key: {} for key in METHODS}
    truth_cf: list[float] = []
    with tqdm(total=len(photos), desc="evaluate", unit="photo", disable=not progress) as bar:
        for start in range(0, len(photos), batch_size):
            images = [load_rgb(path) for path in photos[start : start + batch_size]]
            outputs = colorizer.colorize(images, render_size=render_size)
            for image, output in zip(images, outputs, strict=True):
                if output.size != image.size:
                    raise ValueError(
                        f"the model returned a {output.size} image for a {image.size} input"
                    )
                truth = _to_tensor(image, device)
                truth_lab = lab.rgb_to_lab(truth)
                truth_cf.append(colorfulness(truth).item())
                gray_lab = torch.cat([truth_lab[:, :1], torch.zeros_like(truth_lab[:, 1:])], 1)
                candidates = {
                    "model": _to_tensor(output.convert("RGB"), device),
                    "gray": _quantize(lab.lab_to_rgb(gray_lab)),
                    "gray_pil": _to_tensor(image.convert("L").convert("RGB"), device),
                }
                for key, pred in candidates.items():
                    _score(scores[key], pred, truth, truth_lab)
                bar.update(1)
    truth_mean = float(np.mean(truth_cf))
    results: dict[str, Any] = {}
    for key, metric_lists in scores.items():
        means = {name: float(np.mean(values)) for name, values in metric_lists.items()}
        means["delta_cf"] = delta_cf(metric_lists["colorfulness"], truth_cf)
        results[key] = means
    results["truth_colorfulness"] = truth_mean
    results["n_images"] = len(photos)
    if render_size is None:  # the colorizer's default: a Colorizer's is its model's
        config = getattr(getattr(colorizer, "generator", None), "config", None)
        render_size = getattr(config, "render_size", None)
    results["render_size"] = render_size
    results["precision"] = getattr(colorizer, "precision", None)
    return results


def _score(
    out: dict[str, list[float]], pred: torch.Tensor, truth: torch.Tensor, truth_lab: torch.Tensor
) -> None:
    """Append the four metrics of one ``(1, 3, H, W)`` prediction to ``out``."""
    values = {
        "psnr": psnr(pred, truth),
        "ssim": ssim(pred, truth),
        "delta_e": delta_e_2000(lab.rgb_to_lab(pred), truth_lab).mean(),
        "colorfulness": colorfulness(pred),
    }
    for name, value in values.items():
        out.setdefault(name, []).append(value.item())


def _as_colorizer(model: Any, device: torch.device | str | None) -> tuple[Any, Any]:
    """``(colorizer, restore)``: wrap a generator, and a callable that restores its mode."""
    if hasattr(model, "colorize"):
        return model, lambda: None
    if isinstance(model, torch.nn.Module):
        from pixcolor.colorizer import Colorizer  # colorizer imports the models: import late

        was_training = model.training
        if device is None:  # evaluate the generator where it is
            device = next(model.parameters()).device
        return Colorizer(model, device=device), lambda: model.train(was_training)
    raise TypeError(f"model must be a Colorizer or a UNetGenerator, got {type(model).__name__}")


def _to_tensor(image: Image.Image, device: torch.device | str) -> torch.Tensor:
    """8-bit RGB PIL image -> ``(1, 3, H, W)`` float32 in ``[0, 1]`` on ``device``."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return array.to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _quantize(rgb: torch.Tensor) -> torch.Tensor:
    """Round float RGB to the nearest 8-bit level, as saving it would."""
    return (rgb.clamp(0.0, 1.0) * 255.0).round_().div_(255.0)


def _valid_blur(x: torch.Tensor, weights: list[float], dim: int) -> torch.Tensor:
    """1-D correlation along ``dim`` over the positions where the window fits ("valid").

    Shifted slices added in place: on CPU about 10x faster than a grouped ``conv2d``.
    """
    length = x.shape[dim] - len(weights) + 1
    out = x.narrow(dim, 0, length) * weights[0]
    for offset, weight in enumerate(weights[1:], start=1):
        out.add_(x.narrow(dim, offset, length), alpha=weight)
    return out


def _polar(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radius and angle in ``[0, 2 pi)`` of ``(x, y)``."""
    angle = torch.atan2(y, x)
    return torch.hypot(x, y), torch.where(angle < 0, angle + 2.0 * math.pi, angle)


def _check_image(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {got}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"{name} must be a floating-point tensor, got {got}")
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            "pred and target must have the same shape (B, C, H, W), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32
    return pred.to(dtype), target.to(dtype)
