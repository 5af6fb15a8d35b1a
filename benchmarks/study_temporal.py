"""How the :class:`pixcolor.TemporalFilter` settings were chosen (the table in docs/video.rst).

For each colour clip of ``CLIPS`` (and, with ``--photos``, static "old film" clips of 40
frames made from photos: gain jitter up to 6 %, noise sigma 3) the frames are turned gray
(their luma plane), the network's a/b is predicted once per frame, and then, for each
setting of ``--settings`` (a JSON list of TemporalFilter keyword arguments):

* **flicker ratio**: the output's flicker (mean length of the frame-to-frame change of Lab
  a/b) with the filter over the flicker without it, and the change of PSNR against the
  truth; as in the video pipeline, each frame's colour offsets from gray at the network's
  size (:func:`pixcolor._fullres.chroma_offsets`) are filtered, streamed in batches of 8,
  then joined with each frame's luma (:func:`pixcolor._yuv.chroma_planes`);
* **smear on the truth**: the clip's own a/b (at the network's size) put through the same
  steps with the weights from its gray (a perfect colouriser): the PSNR lost against the
  unfiltered truth is colour carried across motion.

Everything is computed at a quarter of the resolution (the network input at its own size)
and without an encoder, so that a sweep takes minutes; ``bench_video.py`` measures the chosen
filter at full resolution through the encoder.

Run: ``python benchmarks/study_temporal.py CLIPS [--photos DIR] [--frames 240]
[--settings '[{"strength": 0.9, "sigma": 0.01, "radius": 1}]']``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from pixcolor import Colorizer, TemporalFilter, lab
from pixcolor._fullres import chroma_offsets
from pixcolor._yuv import chroma_planes, luma_to_gray
from pixcolor.video import is_video_file

KR, KB = 0.299, 0.114  # BT.601: the clips' matrix
MATRIX = ("bt601", KR, KB)
SIGNAL = "offsets"
DEFAULT_SETTINGS = [
    {"strength": 0.8, "sigma": 0.03, "radius": 2},
    {"strength": 0.9, "sigma": 0.05, "radius": 2},
    {"strength": 0.9, "sigma": 0.015, "radius": 1},
    {"strength": 0.9, "sigma": 0.01, "radius": 1},
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clips", type=Path)
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--films", type=int, default=8)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--model", default=None)
    parser.add_argument("--settings", default=json.dumps(DEFAULT_SETTINGS))
    parser.add_argument(
        "--signal", choices=("offsets", "ab"), default="offsets",
        help="what is filtered: the colour offsets from gray (as the pipeline does) or the "
        "predicted a/b (offsets then computed from each frame's own gray)",
    )  # fmt: skip
    args = parser.parse_args()
    global SIGNAL
    SIGNAL = args.signal
    colorizer = Colorizer.from_pretrained(args.model, device="cpu", precision="fp32")
    clips = {
        p.name: _clip_frames(p, args.frames)
        for p in sorted(args.clips.iterdir())
        if p.is_file() and is_video_file(p)
    }
    films = _films(args.photos, args.films) if args.photos else {}
    data = {name: _prepare(colorizer, luma, truth) for name, (luma, truth) in clips.items()}
    film_data = {name: _prepare(colorizer, luma, truth) for name, (luma, truth) in films.items()}
    for settings in json.loads(args.settings):
        filt = TemporalFilter(**settings)
        row = []
        for name, d in data.items():
            (psnr, flick), (psnr0, flick0) = _score(filt, d, d["ab"]), _score(None, d, d["ab"])
            smear = _smear(filt, d)
            row.append(f"{name}: flicker x{flick / flick0:.2f} dPSNR {psnr - psnr0:+.2f} "
                       f"smear {smear:.2f} dB")  # fmt: skip
        ratios = {
            name: _score(filt, d, d["ab"])[1] / _score(None, d, d["ab"])[1]
            for name, d in film_data.items()
        }
        if ratios:
            worst = max(ratios, key=ratios.__getitem__)
            row.append(f"old film: flicker x{np.mean(list(ratios.values())):.2f} (worst "
                       f"{ratios[worst]:.2f}, {worst[:24]})")  # fmt: skip
        print(settings, " | ".join(row), flush=True)


def _clip_frames(path: Path, limit: int) -> tuple[torch.Tensor, ...]:
    """Full-size luma ``(T, 1, H, W)`` uint8 (for the network's input) and truth RGB
    ``(T, 3, H/4, W/4)`` float."""
    lumas, truths = [], []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yuv = frame.reformat(format="yuv420p")
            luma = np.frombuffer(yuv.planes[0], np.uint8).reshape(yuv.height, -1)[:, : yuv.width]
            lumas.append(torch.from_numpy(luma.copy())[None, None])
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None]
            truths.append(_quarter(rgb.float() / 255))
            if len(lumas) == limit:
                break
    return torch.cat(lumas), torch.cat(truths)


def _films(photos: Path, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from PIL import Image

    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    rng = np.random.default_rng(0)
    out = {}
    for path in files[:: max(1, len(files) // n)][:n]:
        img = Image.open(path).convert("RGB")
        scale = min(1.0, 640 / max(img.size))
        img = img.resize((int(img.width * scale) // 4 * 4, int(img.height * scale) // 4 * 4))
        rgb = np.asarray(img, np.float64)
        luma = KR * rgb[..., 0] + (1 - KR - KB) * rgb[..., 1] + KB * rgb[..., 2]
        luma = 16 + luma * 219 / 255
        frames = [luma * rng.uniform(0.94, 1.06) + rng.normal(0, 3, luma.shape) for _ in range(40)]
        lumas = np.clip(np.round(np.stack(frames)), 0, 255).astype(np.uint8)
        truth = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        out[path.stem] = (torch.from_numpy(lumas)[:, None], _quarter(truth).expand(40, -1, -1, -1))
    return out


@torch.inference_mode()
def _prepare(
    colorizer: Colorizer, luma: torch.Tensor, truth: torch.Tensor
) -> dict[str, torch.Tensor]:
    size = colorizer.generator.config.render_size
    small = torch.cat([F.interpolate(luma[i : i + 16], size=(size, size), mode="bilinear",
                                     antialias=True) for i in range(0, len(luma), 16)])  # fmt: skip
    small = luma_to_gray(small, False)
    luma = _quarter(luma.float()).round().to(torch.uint8)
    ab = torch.cat([colorizer._predict_ab(list(small[i : i + 16, None].expand(-1, -1, 3, -1, -1)))
                    for i in range(0, len(small), 16)])  # fmt: skip
    true_small = F.interpolate(truth, size=(size, size), mode="bilinear", antialias=True)
    return {
        "luma": luma,
        "gray": luma_to_gray(luma, False),
        "truth": truth,
        "small": small,
        "ab": ab,
        "true_ab": lab.rgb_to_lab(true_small.clamp(0, 1))[:, 1:],
    }


def _filtered(filt: TemporalFilter | None, small: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if filt is None:
        return x
    stream = filt.stream()
    parts = [stream.push(small[i : i + 8], x[i : i + 8]) for i in range(0, len(x), 8)]
    return torch.cat([*parts, stream.flush()])


def _to_rgb(luma: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    y = (luma.float() - 16) / 219
    cb, cr = ((uv.round().clamp(16, 240) - 128) / 224).unbind(1)
    r = y[:, 0] + 2 * (1 - KR) * cr
    b = y[:, 0] + 2 * (1 - KB) * cb
    g = (y[:, 0] - KR * r - KB * b) / (1 - KR - KB)
    return (torch.stack([r, g, b], 1).clamp(0, 1) * 255).round() / 255


def _score(
    filt: TemporalFilter | None, d: dict[str, torch.Tensor], ab: torch.Tensor
) -> tuple[float, float]:
    if SIGNAL == "ab":
        offsets = chroma_offsets(d["small"], _filtered(filt, d["small"], ab))
    else:
        offsets = _filtered(filt, d["small"], chroma_offsets(d["small"], ab))
    uv = chroma_planes(d["gray"], offsets, "yuv444p", MATRIX, False)
    rgb = _to_rgb(d["luma"], uv)
    psnr = (10 * torch.log10(1 / (rgb - d["truth"]).square().mean((1, 2, 3)))).mean().item()
    ab = lab.rgb_to_lab(rgb)[:, 1:]
    return psnr, (ab[1:] - ab[:-1]).norm(dim=1).mean().item()


def _smear(filt: TemporalFilter, d: dict[str, torch.Tensor]) -> float:
    """PSNR lost by filtering the truth's own a/b (all pixels)."""
    before = _score(None, d, d["true_ab"])[0]
    after = _score(filt, d, d["true_ab"])[0]
    return before - after


def _quarter(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2] // 4 * 4, x.shape[-1] // 4 * 4
    return F.avg_pool2d(x[..., :h, :w], 4)


if __name__ == "__main__":
    main()
