"""Score a hint model (or a model-free spread) with N hints per photo sampled from the truth.

Each photo is scored at full resolution with ``pixcolor.metrics.evaluate`` (PSNR, SSIM,
CIEDE2000, colourfulness beside the gray baselines). Its hints are drawn from the photo
itself with a fixed seed per (seed, photo index): uniform positions whose 5x5 patch fits,
value = the mean true ab of that 5x5 patch at full resolution (what a user's click gives).
At the network's render size each hint covers the one pixel that holds its centre (the
hint-plane contract: ``a / ab_scale``, ``b / ab_scale``, mask). The script also reports the
mean ab error of the output at the hint centres (full resolution).

Methods: ``model`` (the hint model), ``pushpull`` (the parameter-free spread that
``UNetConfig.hint_spread`` feeds the network, alone, over ab = 0: a model-free reference).

Run: ``python scripts/eval_hints.py MODEL PHOTOS --hints 0 10 30 [--holdout]
[--method model] [--json out.json]``; ``--holdout`` scores the 10 % of PHOTOS that
``train_bundled_model.py`` holds out (``split_files(val_fraction=0.1, seed=0)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import pixcolor
from pixcolor import lab
from pixcolor.data import find_images, split_files
from pixcolor.metrics import evaluate
from pixcolor.models.hint_spread import spread_hints


class _Injected(pixcolor.UNetGenerator):
    """A generator that takes the hint planes set in ``pending`` (the Colorizer passes L only)."""

    pending: torch.Tensor | None = None
    method: str = "model"

    def forward(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        planes = self.pending.to(lightness) if self.pending is not None else None
        if self.method == "pushpull":
            assert planes is not None
            return spread_hints(planes)[:, :2]
        if not self.config.hint_channels:
            return super().forward(lightness)
        return super().forward(lightness, planes)


class HintedColorizer:
    """``colorize(images, render_size)`` with ``count`` hints per photo from the photo itself."""

    def __init__(self, generator: pixcolor.UNetGenerator, count: int, seed: int, method: str):
        injected = _Injected(**dataclasses.asdict(generator.config))
        injected.load_state_dict(generator.state_dict())
        injected.method = method
        self.generator = injected
        self.colorizer = pixcolor.Colorizer(injected, device="cpu", precision="fp32")
        self.precision = self.colorizer.precision
        self.count, self.seed, self.index = count, seed, 0
        self.errors: list[float] = []

    def colorize(self, images: list[Image.Image], render_size: int | None = None) -> list[Any]:
        r = render_size or self.generator.config.render_size
        planes, hints = [], []
        for image in images:
            rgb = torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255.0)
            ab = lab.rgb_to_lab(rgb.permute(2, 0, 1)[None])[0, 1:]
            found = sample_hints(ab, self.count, (self.seed, self.index))
            self.index += 1
            hints.append(found)
            planes.append(to_planes(found, ab.shape[-2:], r, self.generator.config.ab_scale))
        self.generator.pending = torch.stack(planes) if planes else None
        outputs = self.colorizer.colorize(images, render_size=r, batch_size=len(images))
        for output, found in zip(outputs, hints, strict=True):
            if found:
                rgb = torch.from_numpy(np.asarray(output.convert("RGB"), np.float32) / 255.0)
                out_ab = lab.rgb_to_lab(rgb.permute(2, 0, 1)[None])[0, 1:]
                err = [
                    (out_ab[:, y, x] - torch.tensor([a, b])).abs().mean().item()
                    for y, x, a, b in found
                ]
                self.errors.append(float(np.mean(err)))
        return outputs


def sample_hints(ab: torch.Tensor, count: int, seed: tuple[int, int]) -> list[tuple]:
    """``count`` hints ``(y, x, a, b)``: uniform centres whose 5x5 patch fits, patch-mean ab."""
    height, width = ab.shape[-2:]
    rng = np.random.default_rng(list(seed))
    ys = rng.integers(2, height - 2, count)
    xs = rng.integers(2, width - 2, count)
    out = []
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        a, b = ab[:, y - 2 : y + 3, x - 2 : x + 3].mean(dim=(1, 2)).tolist()
        out.append((y, x, a, b))
    return out


def to_planes(hints: list[tuple], size: tuple[int, int], r: int, ab_scale: float) -> torch.Tensor:
    """Hint planes ``(3, r, r)``: each hint on the render pixel that holds its centre."""
    height, width = size
    planes = torch.zeros(3, r, r)
    for y, x, a, b in hints:
        py, px = min(int(y * r / height), r - 1), min(int(x * r / width), r - 1)
        planes[:, py, px] = torch.tensor([a / ab_scale, b / ab_scale, 1.0])
    return planes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("photos")
    parser.add_argument("--hints", type=int, nargs="+", default=[0, 10, 30])
    parser.add_argument("--holdout", action="store_true")
    parser.add_argument("--method", choices=("model", "pushpull"), default="model")
    parser.add_argument("--render-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    photos: Any = args.photos
    if args.holdout:
        _, photos = split_files(
            find_images(args.photos), val_fraction=0.1, seed=0, root=args.photos
        )
    gen = pixcolor.UNetGenerator.from_pretrained(args.model).float().eval()
    rows = []
    for count in args.hints:
        shim = HintedColorizer(gen, count, args.seed, args.method)
        res = evaluate(shim, photos, render_size=args.render_size, progress=False)
        row = {
            "model": args.model, "method": args.method, "hints": count,
            "psnr": res["model"]["psnr"], "gray_psnr": res["gray"]["psnr"],
            "delta_e": res["model"]["delta_e"], "delta_cf": res["model"]["delta_cf"],
            "hint_error": float(np.mean(shim.errors)) if shim.errors else None,
            "n": res["n_images"], "render_size": res["render_size"],
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
