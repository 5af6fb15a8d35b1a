"""Lab conversion speed: pixcolor.lab against scikit-image, measured side by side.

Run: ``python benchmarks/bench_lab.py [--size 1024] [--threads 2] [--repeat 10]``.
Prints milliseconds per call and the ratios (skimage time / pixcolor time).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from skimage import color

from pixcolor import lab


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up, in milliseconds."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile(rgb_to_lab): one fused kernel (compiles for ~30 s first)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rgb8 = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    rgb64 = rgb8 / 255.0
    rgb32 = rgb64.astype(np.float32)
    tensor = torch.from_numpy(rgb32).permute(2, 0, 1).contiguous()
    lab_tensor = lab.rgb_to_lab(tensor)
    lab64 = color.rgb2lab(rgb64)

    rows = [
        (
            "rgb->lab",
            "skimage uint8 in (float64 inside)",
            best_of(lambda: color.rgb2lab(rgb8), args.repeat),
        ),
        ("rgb->lab", "skimage float32 in", best_of(lambda: color.rgb2lab(rgb32), args.repeat)),
        (
            "rgb->lab",
            "pixcolor float32 tensor",
            best_of(lambda: lab.rgb_to_lab(tensor), args.repeat),
        ),
        ("lab->rgb", "skimage float64", best_of(lambda: color.lab2rgb(lab64), args.repeat)),
        (
            "lab->rgb",
            "pixcolor float32 tensor",
            best_of(lambda: lab.lab_to_rgb(lab_tensor), args.repeat),
        ),
    ]
    if args.compile:
        fused = torch.compile(lab._rgb_to_lab, dynamic=False)
        rows.append(
            ("rgb->lab", "pixcolor, torch.compile'd", best_of(lambda: fused(tensor), args.repeat))
        )
    print(
        f"{args.size}x{args.size} image, {torch.get_num_threads()} torch threads, best of {args.repeat}"
    )
    for direction, name, ms in rows:
        print(f"  {direction:9s} {name:36s} {ms:8.2f} ms")
    ours_fwd, ours_inv = rows[2][2], rows[4][2]
    print(f"rgb->lab speed-up vs skimage uint8/float64 path: {rows[0][2] / ours_fwd:5.2f}x")
    print(f"rgb->lab speed-up vs skimage float32 path:       {rows[1][2] / ours_fwd:5.2f}x")
    print(f"lab->rgb speed-up vs skimage:                    {rows[3][2] / ours_inv:5.2f}x")
    if args.compile:
        fused_ms = rows[5][2]
        print(
            "compiled rgb->lab vs skimage uint8 / float32:    "
            f"{rows[0][2] / fused_ms:5.2f}x / {rows[1][2] / fused_ms:5.2f}x"
        )


if __name__ == "__main__":
    main()
