"""Colorize speed, all in one run: the network's forward in every precision and memory
format, colorize against the fastest forward and against a tutorial pipeline, the cost of a
full-resolution pixel, torch against ONNX Runtime (fp32 and int8), and a folder of large
photos through the pipeline against its stages alone.

The CPU model and its relevant flags are printed first, with the load average: on a shared
machine every absolute time is noisy, so every ratio is measured side by side: each
candidate runs once per round, rounds interleaved (load from other processes hits all of
them alike), after one warm-up round; times are medians over rounds, ratios medians of the
per-round ratios.

Sections:

(1) bare forward ``(B, 1, R, R)``: the generator as trained (eager, unfolded; fp32 in both
    layouts, and bf16 under autocast where native: the old ``precision="auto"`` path)
    against :class:`pixcolor._inference.InferenceModel` (batch norms folded, weights cast
    once) in every precision this CPU runs natively x both layouts, and ONNX Runtime fp32
    and int8 (static, calibrated on ``--calibration`` photos; int8 also as exported before
    the full-resolution join was padded to a multiple of 8 channels: what that gains).
(2) ``colorize(list of B PIL photos SIDE x SIDE)`` (the colorizer as
    ``Colorizer.from_pretrained`` gives it, precision and layout "auto") against the
    fastest bare forward (goal: at most 1.15x) and against a naive per-image pipeline
    written the way tutorials do it (PIL resize, skimage Lab, batch-1 eager forward,
    skimage back, PIL resize back; goal: pixcolor at least 2.5x faster); the same with the
    onnxruntime backend (fp32, int8).
(3) nanoseconds per extra full-resolution pixel: colorize on B photos of BIG x BIG against
    SIDE x SIDE, colour (RGB) and black-and-white (L) photos (goal: at most 12 ns); also
    with the network's time taken out of each call (it runs at the render size for both
    sizes, so this removes only its run-to-run noise, which for a large network swamps
    the difference).
(4) a folder of ``--folder-photos`` black-and-white JPEGs of 2-12 MP (upscaled from
    ``--folder-source``): ``colorize_files`` (the pipeline) against its three stages run
    alone, one after the other, on the same files (goal: pipeline at most 1.15x the
    slowest stage).

Run: ``python benchmarks/bench_colorize.py [PHOTOS] [--model DIR_OR_NAME] [--encoder
resnet18] [--render 256] [--batch 8] [--repeat 5] [--threads 2] [--calibration DIR]
[--skip onnx,folder]``. Without ``--model`` the bundled model is used.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage import color

from pixcolor import Colorizer, UNetGenerator, _inference, _onnxruntime, _tuning_cache, batch, lab
from pixcolor._inference import InferenceModel

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
GRAY_PHOTOS = Path("/work/shared/data/photos/gray")
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="?", type=Path, default=ASSETS)
    parser.add_argument("--model", default=None, help="directory, preset or Hub repo id")
    parser.add_argument("--encoder", choices=("resnet18", "resnet34", "pix2pix"), default=None,
                        help="benchmark UNetGenerator(encoder=...) (random weights) instead")  # fmt: skip
    parser.add_argument("--render", type=int, default=256)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--big", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration", type=Path, help="photos to calibrate int8 on")
    parser.add_argument("--folder-photos", type=int, default=50)
    parser.add_argument("--folder-source", type=Path,
                        default=GRAY_PHOTOS if GRAY_PHOTOS.is_dir() else ASSETS)  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated: forward,colorize,fullres,onnx,folder")  # fmt: skip
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", "Conversion from CIE-LAB", UserWarning)  # skimage, per image
    print(_machine())
    if args.encoder:
        generator = UNetGenerator(encoder=args.encoder, render_size=args.render).eval()
        what = f"UNetGenerator(encoder={args.encoder!r}), random weights"
    else:
        generator = Colorizer.from_pretrained(args.model, device="cpu").generator
        what = f"{args.model or 'bundled'} (trained weights)"
    params = sum(p.numel() for p in generator.parameters()) / 1e6
    print(f"model: {what}, {params:.2f} M parameters; render {args.render}, batch {args.batch}, "
          f"{torch.get_num_threads()} torch threads; median of {args.repeat} interleaved rounds")  # fmt: skip
    photos = _load_photos(args.photos, args.batch, args.side)
    bench = _Bench(generator, photos, args, skip)
    if "forward" not in skip:
        bench.forward()
    if "colorize" not in skip:
        bench.colorize()
    if "fullres" not in skip:
        bench.fullres()
    if "folder" not in skip:
        bench.folder()
    print(f"\nload average at the end: {_load()}")


class _Bench:
    def __init__(self, generator: UNetGenerator, photos: list[Image.Image], args: Any,
                 skip: set[str]) -> None:  # fmt: skip
        self.generator, self.photos, self.args, self.skip = generator, photos, args, skip
        self.render, self.batch = args.render, args.batch
        config = generator.config
        rgb = torch.stack([torch.from_numpy(np.asarray(p).copy()).permute(2, 0, 1) for p in photos])
        small = torch.nn.functional.interpolate(rgb.float() / 255, size=(self.render,) * 2,
                                                mode="bilinear", antialias=True)  # fmt: skip
        self.light = lab.normalize_l(lab.rgb_to_l(small), config.l_center, config.l_scale)
        self.shape = (config.in_channels, self.render, self.render)
        self.colorizer = Colorizer(generator, "cpu")  # as users get it: "auto"
        self.backends: dict[str, Colorizer] = {}
        self.unaligned: Callable[[torch.Tensor], torch.Tensor] | None = None
        if "onnx" not in skip:
            start = time.perf_counter()
            # A hint model's calls without hints (all of these) run on ONNX Runtime too.
            self.backends["onnxruntime fp32"] = Colorizer(generator, "cpu", backend="onnxruntime")
            if args.calibration:
                files = sorted(
                    p for p in args.calibration.iterdir() if p.suffix.lower() in SUFFIXES
                )
                int8 = Colorizer(
                    generator, "cpu", "int8", backend="onnxruntime", calibration=files[:64]
                )
                self.backends["onnxruntime int8"] = int8
                # The same int8 graph without the zero channels pixcolor._align pads the
                # full-resolution join with (forward only: what the padding gains).
                self.unaligned = _onnxruntime.OnnxRuntimeModel(
                    generator, torch.device("cpu"), _inference._probe(self.shape, torch.device("cpu")),
                    "int8", int8._calibration_inputs(files[:64], self.render),
                    prepare=_inference._prepared, align=False,
                )  # fmt: skip
            print(f"onnxruntime models ready in {time.perf_counter() - start:.1f} s "
                  "(exported and quantised once, then cached)")  # fmt: skip
        self.forwards = self._forward_candidates()
        self.fastest: str | None = None

    def _forward_candidates(self) -> dict[str, Callable[[], object]]:
        plain = copy.deepcopy(self.generator).eval()
        plain_cl = copy.deepcopy(plain).to(memory_format=torch.channels_last)
        x, x_cl = self.light, self.light.contiguous(memory_format=torch.channels_last)
        runs: dict[str, Callable[[], object]] = {
            "eager fp32 contiguous": _no_grad(lambda: plain(x)),
            "eager fp32 channels-last": _no_grad(lambda: plain_cl(x_cl)),
        }
        if _inference.cpu_has_bfloat16():

            def autocast() -> object:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return plain_cl(x_cl)

            runs["autocast bf16 channels-last (old auto)"] = _no_grad(autocast)
        for precision in _inference._precisions(torch.device("cpu")):
            for fmt in ("channels_last", "contiguous"):
                model = InferenceModel(self.generator, torch.device("cpu"), self.shape,
                                       precision=precision, memory_format=fmt)  # fmt: skip
                runs[f"folded {precision} {fmt.replace('_', '-')}"] = lambda m=model: m(x)
        for name, col in self.backends.items():
            runs[name] = lambda m=col.network: m(x)
        if self.unaligned is not None:
            runs["onnxruntime int8, join not padded"] = lambda: self.unaligned(x)
        return runs

    def forward(self) -> None:
        print(f"\n(1) bare forward ({self.batch}, 1, {self.render}, {self.render})")
        native = _inference._precisions(torch.device("cpu"))
        missing = [p for p in ("bf16", "fp16") if p not in native]
        if missing:
            print(f"    {', '.join(missing)}: not native on this CPU (emulated, several times "
                  "slower than fp32): not timed")  # fmt: skip
        ms, ratio = _interleaved(self.forwards, self.args.repeat)
        self.fastest = min(ms, key=ms.__getitem__)
        for name, t in sorted(ms.items(), key=lambda kv: kv[1]):
            print(f"    {name:42s} {t:9.1f} ms  {t / self.batch:8.1f} ms/img  "
                  f"x{ratio(name, self.fastest):.2f} of the fastest")  # fmt: skip
        net = self.colorizer.network
        print(f"    colorizer's auto choice: {net.precision} {net.memory_format} "
              f"(folded {net.folded} conv + batch-norm pairs)")  # fmt: skip

    def colorize(self) -> None:
        if self.fastest is None:
            self.fastest = "folded fp32 channels-last"
        photos, render = self.photos, self.render
        plain = copy.deepcopy(self.generator).eval()
        runs: dict[str, Callable[[], object]] = {
            "colorize": lambda: self.colorizer.colorize(
                photos, render_size=render, batch_size=self.batch
            ),
            "fastest forward": self.forwards[self.fastest],
            "naive": lambda: [_naive_colorize(plain, p, render) for p in photos],
        }
        for name, col in self.backends.items():
            runs[f"colorize {name}"] = lambda c=col: c.colorize(photos, render_size=render,
                                                                batch_size=self.batch)  # fmt: skip
        ms, ratio = _interleaved(runs, self.args.repeat)
        side = self.args.side
        print(f"\n(2) colorize({self.batch} PIL photos {side}x{side}, render_size={render})")
        for name, t in ms.items():
            label = f"{name} ({self.fastest})" if name == "fastest forward" else name
            print(f"    {label:60s} {t:9.1f} ms")
        print(f"    colorize / fastest forward = {ratio('colorize', 'fastest forward'):.3f}  "
              "(goal <= 1.15)")  # fmt: skip
        print(f"    naive / colorize = {ratio('naive', 'colorize'):.2f}x  (goal >= 2.5x)")
        for name in self.backends:
            print(f"    colorize {name} / colorize torch = "
                  f"{ratio(f'colorize {name}', 'colorize'):.3f}; / fastest forward = "
                  f"{ratio(f'colorize {name}', 'fastest forward'):.3f}; naive / it = "
                  f"{ratio('naive', f'colorize {name}'):.2f}x")  # fmt: skip

    def fullres(self) -> None:
        big, side, count = self.args.big, self.args.side, self.batch
        rgb_big = [p.resize((big, big), Image.Resampling.BICUBIC) for p in self.photos]
        gray_small = [p.convert("L") for p in self.photos]
        gray_big = [p.convert("L") for p in rgb_big]
        col, render = self.colorizer, self.render
        predict = col._predict_ab
        # Time outside the network per call: the network runs at the same render size for
        # both sizes, so subtracting its time (measured in the same call) removes only its
        # run-to-run noise, which at a few seconds per batch swamps the difference.
        outside: dict[str, list[float]] = {}

        def run(name: str, images: list[Image.Image]) -> Callable[[], object]:
            def go() -> object:
                spent = [0.0]

                def timed(*args: Any, **kwargs: Any) -> Any:
                    start = time.perf_counter()
                    try:
                        return predict(*args, **kwargs)
                    finally:
                        spent[0] += time.perf_counter() - start

                col._predict_ab = timed  # type: ignore[method-assign]
                start = time.perf_counter()
                try:
                    return col.colorize(images, render_size=render, batch_size=count)
                finally:
                    del col._predict_ab
                    elapsed = time.perf_counter() - start - spent[0]
                    outside.setdefault(name, []).append(elapsed * 1e3)

            return go

        runs = {"rgb small": run("rgb small", self.photos), "rgb big": run("rgb big", rgb_big),
                "gray small": run("gray small", gray_small),
                "gray big": run("gray big", gray_big)}  # fmt: skip
        ms, _ = _interleaved(runs, self.args.repeat)
        extra = count * (big * big - side * side)
        print(f"\n(3) full resolution: colorize {count} photos {big}x{big} against {side}x{side}")
        for kind in ("rgb", "gray"):
            ns = (ms[f"{kind} big"] - ms[f"{kind} small"]) * 1e6 / extra
            pairs = zip(outside[f"{kind} big"][1:], outside[f"{kind} small"][1:], strict=True)
            rest = statistics.median((b - s) * 1e6 / extra for b, s in pairs)  # no warm-up
            print(f"    {kind:4s}: {ms[f'{kind} big']:8.1f} ms against {ms[f'{kind} small']:7.1f} "
                  f"ms: {ns:5.2f} ns per extra pixel; without the network's time (measured "
                  f"in the same calls): {rest:5.2f} ns  (goal <= 12)")  # fmt: skip

    def folder(self) -> None:
        count = self.args.folder_photos
        with tempfile.TemporaryDirectory() as tmp:
            src = _make_folder(Path(tmp) / "in", self.args.folder_source, count)
            total = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in src) / 1e6
            print(f"\n(4) folder: {count} black-and-white JPEGs of 2-12 MP ({total:.0f} MP), "
                  f"batch {self.args.batch}; {max(2, self.args.repeat // 2)} rounds")  # fmt: skip
            stages: dict[str, list[float]] = {"decode": [], "colorize": [], "encode": [],
                                              "pipeline": []}  # fmt: skip
            for round_ in range(max(2, self.args.repeat // 2) + 1):
                times = self._stages_alone(src, Path(tmp) / "alone")
                start = time.perf_counter()
                report = batch.colorize_files(self.colorizer, [Path(tmp) / "in"],
                                              Path(tmp) / "piped", overwrite=True,
                                              render_size=self.render, batch_size=self.batch,
                                              progress=False)  # fmt: skip
                times["pipeline"] = time.perf_counter() - start
                assert len(report.written) == count, report.failed
                if round_:
                    for name, t in times.items():
                        stages[name].append(t)
            med = {name: statistics.median(t) for name, t in stages.items()}
            for name in ("decode", "colorize", "encode"):
                print(
                    f"    {name + ' alone':16s} {med[name]:7.2f} s  ({med[name] / total * 1e3:5.1f} ns/px)"
                )
            serial = sum(med[n] for n in ("decode", "colorize", "encode"))
            slowest = max(("decode", "colorize", "encode"), key=med.__getitem__)
            print(f"    pipeline         {med['pipeline']:7.2f} s  ({total / med['pipeline']:.1f} MP/s, "
                  f"{count / med['pipeline']:.2f} photos/s)")  # fmt: skip
            print(f"    pipeline / slowest stage ({slowest}) = {med['pipeline'] / med[slowest]:.3f}"
                  "  (goal <= 1.15)")  # fmt: skip
            print(f"    pipeline / stages one after the other = {med['pipeline'] / serial:.3f}")

    def _stages_alone(self, files: list[Path], out: Path) -> dict[str, float]:
        """Each stage over all files, batch by batch, timed separately."""
        times = {"decode": 0.0, "colorize": 0.0, "encode": 0.0}
        shutil.rmtree(out, ignore_errors=True)
        for first in range(0, len(files), self.batch):
            chunk = files[first : first + self.batch]
            start = time.perf_counter()
            loaded = [batch.decode_file(p) for p in chunk]
            times["decode"] += time.perf_counter() - start
            start = time.perf_counter()
            images = batch.colorize_loaded(self.colorizer, loaded, self.render)
            times["colorize"] += time.perf_counter() - start
            start = time.perf_counter()
            for path, item, image in zip(chunk, loaded, images, strict=True):
                batch.encode_file(image, out / path.name, item, overwrite=True)
            times["encode"] += time.perf_counter() - start
        return times


def _interleaved(
    candidates: dict[str, Callable[[], object]], repeat: int
) -> tuple[dict[str, float], Callable[[str, str], float]]:
    """Run each candidate once per round; median ms per candidate, and a function giving
    the median over rounds of the paired ratio ``time(a) / time(b)``."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeat + 1):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            if round_:  # round 0 is the warm-up
                times[name].append((time.perf_counter() - start) * 1e3)

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    return {name: statistics.median(t) for name, t in times.items()}, ratio


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return fn()

    return run


def _naive_colorize(net: UNetGenerator, image: Image.Image, render: int) -> Image.Image:
    """One image through the tutorial pipeline (PIL resize, skimage Lab, batch-1 forward)."""
    config = net.config
    small = image.resize((render, render), Image.Resampling.BICUBIC)
    lab_small = color.rgb2lab(np.asarray(small))  # float64 (render, render, 3)
    light = lab_small[..., 0]
    x = torch.from_numpy(((light - config.l_center) / config.l_scale).astype(np.float32))
    with torch.no_grad():
        ab = net(x[None, None])[0].numpy().transpose(1, 2, 0)
    rgb = color.lab2rgb(np.dstack([light, ab * config.ab_scale]))
    out = Image.fromarray((rgb * 255).round().astype(np.uint8))
    return out.resize(image.size, Image.Resampling.BICUBIC)


def _load_photos(folder: Path, count: int, side: int) -> list[Image.Image]:
    """``count`` RGB photos from ``folder`` (cycled if it has fewer), resized to side x side."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if not files:
        raise SystemExit(f"no images ({', '.join(sorted(SUFFIXES))}) in {str(folder)!r}")
    photos = []
    for i in range(count):
        with Image.open(files[i % len(files)]) as img:
            photos.append(img.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))
    return photos


def _make_folder(folder: Path, source: Path, count: int) -> list[Path]:
    """``count`` grayscale JPEGs (quality 90) of 2 to 12 MP, 3:2 and 4:3, upscaled from the
    photos in ``source`` (with mild noise, for a real photo's texture)."""
    folder.mkdir(parents=True)
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in SUFFIXES)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        megapixels = 2 + 10 * i / max(1, count - 1)
        aspect = 1.5 if i % 2 else 4 / 3
        height = round((megapixels * 1e6 / aspect) ** 0.5)
        width = round(height * aspect)
        with Image.open(files[i % len(files)]) as img:
            big = img.convert("L").resize((width, height), Image.Resampling.BICUBIC)
        noisy = np.asarray(big, np.int16) + rng.integers(-4, 5, (height, width), dtype=np.int16)
        path = folder / f"photo_{i:02d}.jpg"
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def _machine() -> str:
    """CPU model, the flags that decide the fast paths, core count, load."""
    info = _tuning_cache.machine()
    shown = " ".join(info["flags"]) or "(none of the flags that matter, or unknown)"
    return (f"CPU: {info['cpu']}; {os.cpu_count()} logical CPUs; flags: {shown}; torch "
            f"{info['torch']} ({info['capability']}); load average: {_load()}")  # fmt: skip


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
