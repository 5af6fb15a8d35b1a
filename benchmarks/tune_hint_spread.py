"""Choose the spreading constants on photos the report does not use (run on a train folder).

Prints, for several numbers of hints, PSNR of the Gaussian spread against its sigma (a
fraction of the long side) and of the bundled model + model-free hints against the
residual decay of :func:`pixcolor.spread.spread_hints`. The defaults
(``pixcolor.hint_eval.GAUSSIAN_SIGMA``, ``pixcolor.spread.RESIDUAL_DECAY``) were chosen
with it on ``photos/train``; report numbers on held-out photos.

    python benchmarks/tune_hint_spread.py PHOTOS --limit 40
"""

from __future__ import annotations

import argparse
import platform

import torch

import pixcolor
from pixcolor import hint_eval, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--hints", type=int, nargs="+", default=[1, 3, 10, 30])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--decays", type=float, nargs="+", default=[0.0, 1e-4, 1e-3, 1e-2])
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(platform.processor() or platform.machine(), "torch", torch.__version__)
    files = hint_eval.find_images(args.photos)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    colorizer = pixcolor.Colorizer.from_pretrained(device="cpu", precision="fp32")
    print(f"{len(files)} photos; PSNR (dB) per number of hints {args.hints}")
    for sigma in args.sigmas:
        res = hint_eval.evaluate_hints(
            colorizer, files, args.hints, gaussian_sigma=sigma, progress=False
        )
        row = [res["rows"][str(n)]["gaussian"]["psnr"] for n in args.hints]
        lev = [res["rows"][str(n)]["levin"]["psnr"] for n in args.hints]
        print(
            f"gaussian sigma {sigma:<6}",
            " ".join(f"{v:6.2f}" for v in row),
            " | levin",
            " ".join(f"{v:6.2f}" for v in lev),
        )
    for decay in args.decays:
        spread.RESIDUAL_DECAY = decay
        res = hint_eval.evaluate_hints(colorizer, files, args.hints, progress=False)
        row = [res["rows"][str(n)]["model"] for n in args.hints]
        print(
            f"model decay {decay:<8}",
            " ".join(f"{m['psnr']:6.2f}" for m in row),
            " | hint error",
            " ".join(f"{m['hint_error']:5.2f}" for m in row),
        )


if __name__ == "__main__":
    main()
