"""Cost of colour hints: ``colorize`` with N hints against without, on a 12-megapixel photo.

A hint model (``hint_channels=3``, the bundled model) takes the hints as input planes:
the issue's target is colorize with 10 hints within 5 % of without. A model without hint
channels (``--model coco`` or an older model) follows them model-free
(:func:`pixcolor.spread.spread_hints`: Levin et al.'s optimisation at 256 px, upsampled as
the predicted a/b is), timed alone too: target under 0.5 s for a 12 MP photo on 2 cores.
Candidates run once per round, rounds interleaved after a warm-up, so load from other
processes hits all of them alike; times are medians over the rounds (wall and process CPU).

Run: ``python benchmarks/bench_hints.py [--size 4000x3000] [--hints 10 30] [--repeat 5]
[--threads 2] [--model bundled]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixcolor import Colorizer, spread
from pixcolor.hint_eval import sample_hints
from pixcolor.hints import HintSet

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the test photo")
    parser.add_argument("--hints", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="bundled", help="preset, Hub id or folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    print(f"CPU: {_cpu_model()}; torch {torch.__version__}, {args.threads} threads")
    print(f"load average before: {os.getloadavg()}")
    truth = Image.open(ASSETS / "coffee.jpg").convert("RGB").resize((width, height), Image.BICUBIC)
    photo = truth.convert("L")
    colorizer = Colorizer.from_pretrained(args.model, device="cpu")
    hints = {n: sample_hints(truth, n, seed=[0, zlib.crc32(b"bench")]) for n in args.hints}
    candidates: dict[str, Callable[[], object]] = {
        "colorize, no hints": lambda: colorizer.colorize(photo)
    }
    pixels = torch.from_numpy(np.asarray(photo)).expand(3, -1, -1)
    base = torch.zeros(2, 128, 128)
    for n, these in hints.items():
        candidates[f"colorize, {n} hints"] = lambda these=these: colorizer.colorize(
            photo, hints=these
        )
        hint_set = HintSet.build((height, width), these)
        candidates[f"spread_hints alone, {n} hints"] = lambda h=hint_set: spread.spread_hints(
            base, pixels, h
        )
    wall: dict[str, list[float]] = {k: [] for k in candidates}
    cpu: dict[str, list[float]] = {k: [] for k in candidates}
    for round_ in range(args.repeat + 1):
        for name, fn in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_:  # round 0 warms up
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    base_wall = wall["colorize, no hints"]
    print(
        f"{width}x{height} photo ({width * height / 1e6:.1f} MP), model {args.model} "
        f"(hint_channels={colorizer.generator.config.hint_channels}), {args.repeat} rounds"
    )
    print(f"{'candidate':<30} {'wall s':>7} {'cpu s':>7} {'wall / no hints':>16}")
    for name in candidates:
        ratio = statistics.median(w / b for w, b in zip(wall[name], base_wall, strict=True))
        print(
            f"{name:<30} {statistics.median(wall[name]):7.3f} {statistics.median(cpu[name]):7.3f} {ratio:16.2f}"
        )
    print(f"load average after: {os.getloadavg()}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
