"""Choose the spreading constants on photos the report does not use (run it on a train folder).

Prints mean PSNR (dB) for several numbers of hints (sampled from the truth as
``pixcolor evaluate --hints`` does): the Gaussian spread against its sigma (a fraction of
the working grid's long side), and an automatic model + model-free hints against the
residual ``decay`` of :func:`pixcolor.spread.spread_hints` (with the mean a/b error at the
hint centres). ``pixcolor.hint_eval.GAUSSIAN_SIGMA`` and ``pixcolor.spread.RESIDUAL_DECAY``
were chosen with it on ``photos/train``; report numbers on held-out photos. ``--model``
(default: the bundled model) is run as an automatic model: a hint model's hint planes are
dropped (the bundled model's weights for them are zero, so its network is unchanged).

    python benchmarks/tune_hint_spread.py PHOTOS --limit 24
"""

from __future__ import annotations

import argparse
import zlib

import numpy as np
import torch

import pixcolor
from pixcolor import hint_eval, spread
from pixcolor.data import find_images, load_rgb
from pixcolor.hints import HintSet, rasterize
from pixcolor.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--hints", type=int, nargs="+", default=[1, 3, 10, 30])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.03, 0.06, 0.1, 0.2])
    parser.add_argument("--decays", type=float, nargs="+", default=[0.0, 1e-4, 1e-3, 1e-2])
    parser.add_argument("--model", default="bundled", help="preset, Hub id or folder")
    args = parser.parse_args()
    torch.set_num_threads(2)
    files = find_images(args.photos)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    loaded = pixcolor.Colorizer.from_pretrained(args.model, device="cpu")
    colorizer = pixcolor.Colorizer(_automatic(loaded.generator), device="cpu", precision="fp32")
    gauss = {(s, n): [] for s in args.sigmas for n in args.hints}
    model = {(d, n): [] for d in args.decays for n in args.hints}
    error = {(d, n): [] for d in args.decays for n in args.hints}
    for path in files:
        image = load_rgb(path)
        truth = hint_eval._to_tensor(image, "cpu")
        hints = hint_eval.sample_hints(
            image, max(args.hints), seed=[0, zlib.crc32(path.name.encode())]
        )
        grid = spread.working_size(*truth.shape[-2:])
        for n in args.hints:
            hint_set = HintSet.build(tuple(truth.shape[-2:]), hints[:n])
            values, mask = rasterize(hint_set, grid)
            for sigma in args.sigmas:
                ab = spread.gaussian_spread(values, mask, sigma * max(grid))
                gauss[sigma, n].append(psnr(hint_eval._recolor(truth, ab), truth).item())
            for decay in args.decays:
                spread.RESIDUAL_DECAY = decay
                out = hint_eval._to_tensor(colorizer.colorize(image, hints=hints[:n]), "cpu")
                model[decay, n].append(psnr(out, truth).item())
                out_lab = pixcolor.lab.rgb_to_lab(out)[0, 1:]
                for h in hints[:n]:
                    got = out_lab[:, int(h.y), int(h.x)].double().numpy()
                    error[decay, n].append(float(np.linalg.norm(got - np.array(h.ab))))
    print(f"{len(files)} photos from {args.photos}; PSNR (dB) for {args.hints} hints")
    for sigma in args.sigmas:
        print(
            f"gaussian sigma {sigma:<7}",
            " ".join(f"{np.mean(gauss[sigma, n]):6.2f}" for n in args.hints),
        )
    for decay in args.decays:
        print(
            f"model decay {decay:<10}",
            " ".join(f"{np.mean(model[decay, n]):6.2f}" for n in args.hints),
            " | hint ab error",
            " ".join(f"{np.mean(error[decay, n]):5.2f}" for n in args.hints),
        )


def _automatic(gen: pixcolor.UNetGenerator) -> pixcolor.UNetGenerator:
    """``gen`` without its hint planes (they come last in every widened weight)."""
    if not gen.config.hint_channels:
        return gen
    config = {**gen.config_dict(), "hint_channels": 0, "hint_spread": False, "hint_residual": False}
    auto = pixcolor.UNetGenerator.from_config(config)
    target = auto.state_dict()
    for name, value in gen.state_dict().items():
        target[name].copy_(value[tuple(slice(0, n) for n in target[name].shape)])
    auto.load_state_dict(target)
    return auto.float().eval()


if __name__ == "__main__":
    main()
