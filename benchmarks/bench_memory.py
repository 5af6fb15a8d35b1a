"""Peak memory of colorizing a 24-megapixel photo on CPU.

A 6000x4000 JPEG is made in a temporary folder (a test photo upscaled; ``--gray`` saves it
as a one-channel grayscale JPEG), then this script runs itself in two fresh subprocesses:

1. one that only does ``import pixcolor`` and reports its peak resident memory
   (``resource.getrusage(RUSAGE_SELF).ru_maxrss``): the baseline;
2. one that imports pixcolor, loads the model, reports the peak, colorizes the JPEG by
   path with ``Colorizer.colorize(path)`` and reports the peak again.

With ``--files N`` the second process runs ``pixcolor.batch.colorize_files`` (the pipelined
folder path of ``pixcolor colorize DIR``) on N copies of the JPEG instead, to show that the
photos in flight are bounded.

It prints the peaks (import-only, after model load, after colorize), what the colorize call
added to its own process, and what the whole run added over the import-only process
(goal: at most about 1.2 GB). MB here is 10**6 bytes. Peaks are high-water marks, so they
do not depend on other processes' load, unlike the timing also shown.

Run: ``python benchmarks/bench_memory.py [--gray] [--files N] [--model DIR_OR_NAME]
[--threads 2] [--size 6000x4000] [--render-size 256]``. Without ``--model`` the bundled model is used if
installed, else a random-weight ``UNetGenerator(encoder="pix2pix", base_channels=32,
num_downs=7)`` (memory does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
GOAL_MB = 1200.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gray", action="store_true", help="colorize a grayscale JPEG")
    parser.add_argument("--model", default=None, help="directory, preset or Hub repo id")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT of the photo")
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--files", type=int, default=0, help="colorize_files on N copies")
    parser.add_argument("--child", choices=("import", "colorize"), help=argparse.SUPPRESS)
    parser.add_argument("--photo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "import":
        import pixcolor  # noqa: F401

        print(json.dumps({"after_import": _maxrss_mb()}))
        return
    if args.child == "colorize":
        print(json.dumps(_colorize_child(args)))
        return

    width, height = (int(v) for v in args.size.lower().split("x"))
    options = ["--threads", str(args.threads), "--render-size", str(args.render_size)]
    options += ["--files", str(args.files)]
    options += ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        photo = _make_photo(Path(tmp), width, height, args.gray)
        size_mb = photo.stat().st_size / 1e6
        baseline = _run_child(["--child", "import"])["after_import"]
        run = _run_child(["--child", "colorize", "--photo", str(photo), *options])

    kind = "grayscale (L)" if args.gray else "RGB"
    call = (f"colorize_files({args.files} copies)" if args.files
            else f"colorize(path, render_size={args.render_size})")  # fmt: skip
    print(f"{width}x{height} {kind} JPEG ({size_mb:.1f} MB file, {width * height / 1e6:.0f} MP), "
          f"{call} on CPU, {run['threads']} torch threads; model: {run['model']}")  # fmt: skip
    if run["random_weights"]:
        print("NOTE: no bundled model found; the model has RANDOM weights")
    print("peak resident memory (ru_maxrss), MB:")
    print(f"  import pixcolor only (separate process) {baseline:8.0f}")
    print(f"  after import (measured process)         {run['after_import']:8.0f}")
    print(f"  after model load                        {run['after_load']:8.0f}")
    print(f"  after colorize                          {run['after_colorize']:8.0f}")
    print(f"  added by colorize                       {run['after_colorize'] - run['after_load']:8.0f}")  # fmt: skip
    added = run["after_colorize"] - baseline
    verdict = "met" if added <= GOAL_MB else "NOT met"
    print(f"  added over import-only                  {added:8.0f}  "
          f"(goal <= ~{GOAL_MB:.0f}: {verdict})")  # fmt: skip
    print(f"colorize took {run['seconds']:.1f} s (wall; noisy on a shared machine)")


def _colorize_child(args: argparse.Namespace) -> dict[str, Any]:
    """Import, load, colorize ``args.photo``; the peaks along the way, in MB."""
    import pixcolor

    after_import = _maxrss_mb()
    import torch

    torch.set_num_threads(args.threads)
    random_weights = False
    try:
        colorizer = pixcolor.Colorizer.from_pretrained(args.model, device="cpu")
        model = f"{args.model or 'bundled'} (trained weights)"
    except pixcolor.ModelNotFoundError:
        if args.model is not None:
            raise
        random_weights = True
        generator = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=32, num_downs=7)
        colorizer = pixcolor.Colorizer(generator, device="cpu")
        model = "UNetGenerator(encoder='pix2pix', base_channels=32, num_downs=7), random weights"
    after_load = _maxrss_mb()
    start = time.perf_counter()
    if args.files:
        from pixcolor.batch import colorize_files

        folder = Path(args.photo).parent / "many"
        folder.mkdir()
        for i in range(args.files):
            (folder / f"copy_{i:02d}.jpg").symlink_to(args.photo)
        report = colorize_files(colorizer, [folder], folder.parent / "out",
                                render_size=args.render_size, progress=False)  # fmt: skip
        assert len(report.written) == args.files, report.failed
    else:
        out = colorizer.colorize(args.photo, render_size=args.render_size)
        assert out.mode == "RGB", out.mode
    seconds = time.perf_counter() - start
    after_colorize = _maxrss_mb()
    return {
        "after_import": after_import, "after_load": after_load,
        "after_colorize": after_colorize, "seconds": seconds, "model": model,
        "random_weights": random_weights, "threads": torch.get_num_threads(),
    }  # fmt: skip


def _run_child(options: list[str]) -> dict[str, Any]:
    """Run this script in a fresh interpreter; its last stdout line is a JSON object."""
    done = subprocess.run(
        [sys.executable, __file__, *options], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _make_photo(folder: Path, width: int, height: int, gray: bool) -> Path:
    """A ``width x height`` JPEG: a test photo upscaled, plus mild noise for real texture."""
    import numpy as np
    from PIL import Image

    with Image.open(ASSETS / "astronaut.jpg") as img:
        big = img.convert("L" if gray else "RGB").resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(big).astype(np.int16)
    noise = np.random.default_rng(0).integers(-6, 7, pixels.shape, dtype=np.int16)
    big = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    path = folder / f"photo_{width}x{height}_{'gray' if gray else 'rgb'}.jpg"
    big.save(path, quality=90)
    return path


def _maxrss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


if __name__ == "__main__":
    main()
