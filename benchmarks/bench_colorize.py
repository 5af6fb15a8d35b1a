"""Colorize speed: ``Colorizer.colorize`` against the bare network and a tutorial pipeline.

Measured side by side in one run, on the same network and the same 512x512 photos
(``tests/assets/*.jpg`` resized, or the photos in a folder given as argument, cycled to
``--batch`` images):

(a) ``colorize(list of B PIL images, render_size=256)`` against the bare batched forward
    of the same (channels-last) generator on the equivalent ``(B, 1, 256, 256)`` input, in
    the colorizer's precision (its ``autocast()``: bfloat16 on CPUs with native bfloat16,
    see ``Colorizer``): ``colorize / forward`` is colorize's overhead (goal: at most 1.10).
(b) ``colorize`` against a naive per-image pipeline written the way tutorials do it: PIL
    resize to 256 -> skimage ``rgb2lab`` -> forward on one image -> skimage ``lab2rgb`` ->
    PIL resize back to 512 (goal: pixcolor at least 2x faster). The per-image forward
    alone (B forwards of ``(1, 1, 256, 256)``) shows how much of it the network is.
(c) the batched float32 forward with channels-last weights and input against contiguous
    ones, and the colorizer's precision against float32 (both channels-last).

Every candidate runs once per round, rounds interleaved (so load from other processes
hits all of them alike), after one warm-up round. Times are medians over the rounds;
ratios are medians of the per-round ratios.

Run: ``python benchmarks/bench_colorize.py [PHOTO_FOLDER] [--model DIR_OR_NAME]
[--encoder resnet18] [--batch 8] [--repeat 5] [--threads 2] [--device cpu]``.
Without ``--model`` the bundled model is used if installed, else a random-weight
``UNetGenerator(encoder="pix2pix", base_channels=32, num_downs=7)`` (timing does not depend
on the weights).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import color

from pixcolor import Colorizer, UNetGenerator, lab
from pixcolor.errors import ModelNotFoundError

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
SIDE = 512
RENDER = 256
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="?", type=Path, default=ASSETS)
    parser.add_argument("--model", default=None, help="directory, preset or Hub repo id")
    parser.add_argument("--encoder", choices=("resnet18", "resnet34", "pix2pix"), default=None,
                        help="also benchmark UNetGenerator(encoder=...) with its default config")  # fmt: skip
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # skimage warns on every image whose Lab colour has negative Z (clipped, as we do).
    warnings.filterwarnings("ignore", "Conversion from CIE-LAB", UserWarning)

    photos = _load_photos(args.photos, args.batch)
    print(f"{len(photos)} photos {SIDE}x{SIDE} from {args.photos}, render_size {RENDER}, "
          f"{torch.get_num_threads()} torch threads, device {device}; median of {args.repeat} "
          "interleaved rounds after 1 warm-up round")  # fmt: skip
    try:
        colorizer = Colorizer.from_pretrained(args.model, device=device)
        what = f"{args.model or 'bundled'} (trained weights)"
    except ModelNotFoundError as exc:
        if args.model is not None:
            raise
        print(f"NOTE: no bundled model ({exc}); using RANDOM weights instead")
        gen = UNetGenerator(encoder="pix2pix", base_channels=32, num_downs=7)
        colorizer = Colorizer(gen, device=device)
        what = "UNetGenerator(encoder='pix2pix', base_channels=32, num_downs=7), random weights"
    _bench(colorizer, photos, what, args.repeat)
    if args.encoder:
        gen = UNetGenerator(encoder=args.encoder)
        what = f"UNetGenerator(encoder={args.encoder!r}) default config, random weights"
        _bench(Colorizer(gen, device=device), photos, what, args.repeat)


def _bench(colorizer: Colorizer, photos: list[Image.Image], what: str, repeat: int) -> None:
    """Time every candidate on ``colorizer``'s network and print the table."""
    device, config = colorizer.device, colorizer.generator.config
    # What a tutorial has: the same weights in the default (contiguous) memory format.
    plain = copy.deepcopy(colorizer.generator).to(memory_format=torch.contiguous_format)
    rgb = torch.stack([torch.from_numpy(np.asarray(p).copy()).permute(2, 0, 1) for p in photos])
    small = F.interpolate(rgb.to(device, torch.float32) / 255, size=(RENDER, RENDER),
                          mode="bilinear", antialias=True)  # fmt: skip
    light = lab.normalize_l(lab.rgb_to_lab(small)[:, :1], config.l_center, config.l_scale)
    light_cl = light.contiguous(memory_format=torch.channels_last)
    batch = len(photos)

    @torch.inference_mode()
    def forward(net: torch.nn.Module, x: torch.Tensor) -> None:
        net(x)

    def forward_as_colorize() -> None:
        with colorizer.autocast():
            forward(colorizer.generator, light_cl)

    candidates: dict[str, Callable[[], object]] = {
        "colorize": lambda: colorizer.colorize(photos, render_size=RENDER, batch_size=batch),
        "forward": forward_as_colorize,
        "naive": lambda: [_naive_colorize(plain, p, device) for p in photos],
        "forward_one": lambda: [forward(plain, light[i : i + 1]) for i in range(batch)],
        "forward_float32": lambda: forward(colorizer.generator, light_cl),
        "forward_contiguous": lambda: forward(plain, light),
    }
    ms, ratio = _interleaved(candidates, repeat, device)
    params = sum(p.numel() for p in plain.parameters()) / 1e6
    precision = colorizer.precision
    print(f"\nmodel: {what}, {params:.2f} M parameters; colorizer precision {precision}")
    one, many = f"(1, 1, {RENDER}, {RENDER})", f"({batch}, 1, {RENDER}, {RENDER})"
    rows = [
        ("(a) colorize", f"colorize(list of {batch} PIL, render_size={RENDER})"),
        ("(a) forward", f"bare forward {many}, channels-last, {precision}"),
        ("(b) naive", "naive per-image pipeline (PIL + skimage), float32"),
        ("(b) forward_one", f"  its forwards alone: {batch} x {one}"),
        ("(c) forward_float32", f"bare forward {many}, channels-last, float32"),
        ("(c) forward_contiguous", f"bare forward {many}, contiguous, float32"),
    ]
    for key, label in rows:
        print(f"{key[:3]} {label:56s} {ms[key[4:]]:9.1f} ms")
    print(f"(a) colorize / forward = {ratio('colorize', 'forward'):.3f}  (goal <= 1.10)")
    print(f"(b) naive / colorize = {ratio('naive', 'colorize'):.2f}x  (goal >= 2x)")
    print(f"(c) channels-last / contiguous = {ratio('forward_float32', 'forward_contiguous'):.3f}")
    print(f"(c) {precision} / float32 = {ratio('forward', 'forward_float32'):.3f}")


def _interleaved(
    candidates: dict[str, Callable[[], object]], repeat: int, device: torch.device
) -> tuple[dict[str, float], Callable[[str, str], float]]:
    """Run each candidate once per round; median ms per candidate, and a function giving
    the median over rounds of the paired ratio ``time(a) / time(b)``."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeat + 1):
        for name, fn in candidates.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if round_:  # round 0 is the warm-up
                times[name].append((time.perf_counter() - start) * 1e3)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    return {name: statistics.median(t) for name, t in times.items()}, ratio


def _naive_colorize(net: UNetGenerator, image: Image.Image, device: torch.device) -> Image.Image:
    """One image through the tutorial pipeline (PIL resize, skimage Lab, batch-1 forward)."""
    config = net.config
    small = image.resize((RENDER, RENDER), Image.Resampling.BICUBIC)
    lab_small = color.rgb2lab(np.asarray(small))  # float64 (256, 256, 3)
    light = lab_small[..., 0]
    x = torch.from_numpy(((light - config.l_center) / config.l_scale).astype(np.float32))
    with torch.no_grad():
        ab = net(x[None, None].to(device))[0].cpu().numpy().transpose(1, 2, 0)
    rgb = color.lab2rgb(np.dstack([light, ab * config.ab_scale]))
    out = Image.fromarray((rgb * 255).round().astype(np.uint8))
    return out.resize(image.size, Image.Resampling.BICUBIC)


def _load_photos(folder: Path, count: int) -> list[Image.Image]:
    """``count`` RGB photos from ``folder`` (cycled if it has fewer), resized to SIDE x SIDE."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if not files:
        raise SystemExit(f"no images ({', '.join(sorted(SUFFIXES))}) in {str(folder)!r}")
    photos = []
    for i in range(count):
        with Image.open(files[i % len(files)]) as img:
            photos.append(img.convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS))
    return photos


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
