"""Scoring video colourisation against colour clips: per-frame PSNR and colourfulness gap,
and flicker, beside the truth's own flicker and beside frames colourised independently.

:func:`evaluate_video` turns a colour clip gray (its luma plane, which is all
:func:`pixcolor.video.colorize_video` reads), colourises it twice through the whole video
pipeline, encoder included (with the temporal filter, and frame by frame without it), and
compares both outputs with the original frame by frame. :func:`flicker` is the figure for
temporal stability: the mean over pixels of the length of the frame-to-frame change of
the Lab a/b vector.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pixcolor import lab
from pixcolor._video_io import VideoReader, import_av, luma_plane, to_rgb
from pixcolor._yuv import luma_to_gray
from pixcolor.metrics import colorfulness, delta_cf, psnr

__all__ = ["VIDEO_METHODS", "evaluate_video", "flicker", "format_video_table"]

VIDEO_METHODS = {
    "temporal": "model (temporal)",
    "per_frame": "model (per frame)",
    "gray": "gray (luma)",
}
"""Keys of :func:`evaluate_video`'s result and the names :func:`format_video_table` prints."""


def flicker(ab: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame colour change: mean over pixels of ``|ab - previous|`` (the length of
    the a/b difference vector), per frame.

    Args:
        ab: ``(B, 2, H, W)`` Lab a/b of frames.
        previous: Same shape: the frames before them.

    Returns:
        ``(B,)`` mean change, in Lab units.

    Example:
        >>> ab = torch.zeros(1, 2, 4, 4)
        >>> flicker(ab + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), ab)
        tensor([5.])
    """
    if ab.shape != previous.shape or ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(
            f"ab and previous must both be (B, 2, H, W), got {tuple(ab.shape)} and "
            f"{tuple(previous.shape)}"
        )
    return (ab - previous).square().sum(dim=1).sqrt().mean(dim=(1, 2))


def evaluate_video(
    colorizer: Any,
    path: str | os.PathLike[str],
    *,
    render_size: int | None = None,
    batch_size: int = 8,
    temporal: Any = "auto",
    codec: str | None = None,
    crf: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score video colourisation on a colour clip, beside per-frame colourisation and gray.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        path: A colour video.
        render_size: Resolution the network sees (``None``: the model's own).
        batch_size: Frames per network forward.
        temporal: The temporal filter scored as ``"temporal"`` (see
            :func:`pixcolor.video.colorize_video`); ``"per_frame"`` always runs without.
        codec: Encoder of both outputs (``None``: the default of
            :func:`~pixcolor.video.colorize_video`); codec loss is part of the score.
        crf: Its constant rate factor.
        progress: Show tqdm bars.

    Returns:
        ``{"temporal": {...}, "per_frame": {...}, "gray": {...}, "truth": {...},
        "n_frames": int, "render_size": int, "precision": str, "video": str}``. Each
        method maps ``"psnr"`` (mean dB over frames, 8-bit RGB), ``"colorfulness"`` (mean),
        ``"delta_cf"`` (its gap to the truth's), ``"flicker"`` (mean of :func:`flicker`
        over consecutive frames), ``"psnr_frames"`` (each frame's PSNR); ``"truth"`` has
        ``"colorfulness"`` and ``"flicker"``.

    Raises:
        VideoError: If ``path`` is not a usable video.
    """
    from pixcolor.video import colorize_video

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="pixcolor-eval-") as tmp:
        outputs = {"temporal": Path(tmp) / "temporal.mkv", "per_frame": Path(tmp) / "frames.mkv"}
        for key, out in outputs.items():
            colorize_video(
                colorizer, path, out, render_size=render_size, batch_size=batch_size,
                temporal=temporal if key == "temporal" else "none", codec=codec, crf=crf,
                progress=progress,
            )  # fmt: skip
        results = _score(path, outputs, colorizer, progress)
    if render_size is None:
        render_size = colorizer.generator.config.render_size
    results.update(
        render_size=render_size,
        precision=getattr(colorizer, "precision", None),
        video=str(path),
    )
    return results


def format_video_table(results: dict[str, Any]) -> str:
    """Render :func:`evaluate_video`'s result as a plain-text table.

    Example:
        >>> row = {"psnr": 21.0, "colorfulness": 12.0, "delta_cf": 3.0, "flicker": 0.5}
        >>> res = {k: row for k in VIDEO_METHODS}
        >>> res.update(truth={"colorfulness": 15.0, "flicker": 0.7}, n_frames=40, video="a.mp4")
        >>> print(format_video_table(res))
        method               PSNR (dB)  colourfulness    dCF  flicker
        model (temporal)         21.00          12.00   3.00    0.500
        model (per frame)        21.00          12.00   3.00    0.500
        gray (luma)              21.00          12.00   3.00    0.500
        truth                        -          15.00      -    0.700
        (a.mp4, 40 frames)
    """
    lines = [f"{'method':<19}  {'PSNR (dB)':>9}  {'colourfulness':>13}  {'dCF':>5}  {'flicker':>7}"]
    for key, name in VIDEO_METHODS.items():
        m = results[key]
        lines.append(
            f"{name:<19}  {m['psnr']:>9.2f}  {m['colorfulness']:>13.2f}  {m['delta_cf']:>5.2f}  "
            f"{m['flicker']:>7.3f}"
        )
    truth = results["truth"]
    lines.append(
        f"{'truth':<19}  {'-':>9}  {truth['colorfulness']:>13.2f}  {'-':>5}  "
        f"{truth['flicker']:>7.3f}"
    )
    notes = [str(results.get("video", "")), f"{results['n_frames']} frames"]
    if results.get("render_size"):
        notes.append(f"render size {results['render_size']}")
    if results.get("precision"):
        notes.append(str(results["precision"]))
    lines.append(f"({', '.join(n for n in notes if n)})")
    return "\n".join(lines)


# --- helpers ---------------------------------------------------------------------------


def _score(
    truth_path: Path, outputs: dict[str, Path], colorizer: Any, progress: bool
) -> dict[str, Any]:
    device = getattr(colorizer, "device", None) or torch.device("cpu")
    reader = VideoReader(truth_path)
    streams = {key: _decode(path) for key, path in outputs.items()}
    info = reader.info
    psnrs: dict[str, list[float]] = {key: [] for key in VIDEO_METHODS}
    cfs: dict[str, list[float]] = {key: [] for key in [*VIDEO_METHODS, "truth"]}
    flickers: dict[str, list[float]] = {key: [] for key in [*VIDEO_METHODS, "truth"]}
    previous: dict[str, torch.Tensor] = {}
    bar = tqdm(total=info.frames or None, desc="score", unit="frame", disable=not progress)
    try:
        for kind, frame in reader.items():
            if kind != "video":
                continue
            truth = _rgb(frame, info, device)
            preds = {key: _rgb(_next(stream, key), info, device) for key, stream in streams.items()}
            preds["gray"] = _gray(frame, info, device)
            frames = {**preds, "truth": truth}
            for key, rgb in frames.items():
                if key != "truth":
                    psnrs[key].append(psnr(rgb, truth).item())
                cfs[key].append(colorfulness(rgb).item())
                ab = lab.rgb_to_lab(rgb)[:, 1:]
                if key in previous:
                    flickers[key].append(flicker(ab, previous[key]).item())
                previous[key] = ab
            bar.update(1)
        for key, stream in streams.items():
            if next(stream, None) is not None:
                raise RuntimeError(f"the {key} output has more frames than its source")
    finally:
        bar.close()
        reader.close()
    truth_cf = cfs["truth"]
    results: dict[str, Any] = {}
    for key in VIDEO_METHODS:
        results[key] = {
            "psnr": float(np.mean(psnrs[key])),
            "colorfulness": float(np.mean(cfs[key])),
            "delta_cf": delta_cf(cfs[key], truth_cf),
            "flicker": float(np.mean(flickers[key])) if flickers[key] else 0.0,
            "psnr_frames": psnrs[key],
        }
    results["truth"] = {
        "colorfulness": float(np.mean(truth_cf)),
        "flicker": float(np.mean(flickers["truth"])) if flickers["truth"] else 0.0,
    }
    results["n_frames"] = len(truth_cf)
    return results


def _next(stream: Iterator[Any], key: str) -> Any:
    frame = next(stream, None)
    if frame is None:
        raise RuntimeError(f"the {key} output has fewer frames than its source")
    return frame


def _decode(path: Path) -> Iterator[Any]:
    """Frames of an output written by colorize_video (timestamps already in order)."""
    av = import_av()
    with av.open(str(path)) as container:
        yield from container.decode(video=0)


def _rgb(frame: Any, info: Any, device: torch.device) -> torch.Tensor:
    """A decoded frame as float RGB ``(1, 3, H, W)`` in ``[0, 1]`` (8-bit levels)."""
    rgb = torch.from_numpy(to_rgb(frame, info)).to(device)
    return rgb.permute(2, 0, 1)[None].float().div_(255)


def _gray(frame: Any, info: Any, device: torch.device) -> torch.Tensor:
    """A decoded frame's luma plane shown as gray RGB ``(1, 3, H, W)`` (8-bit levels)."""
    luma = torch.from_numpy(luma_plane(frame, "yuv444p", info)).to(device)
    gray = luma_to_gray(luma, info.full_range).mul_(255).round_().div_(255)
    return gray.expand(3, -1, -1)[None]
