"""Throughput of ``pixcolor colorize --engine ray`` against ``--engine local`` on one machine.

The same folder of photos, the same model, batch size and render size, colorized into a
fresh output folder by:

* ``local``: :func:`pixcolor.batch.colorize_files` in this process (torch's default
  threads: every core);
* ``ray x1``: :func:`pixcolor.distributed.colorize_files` with one worker reserving every
  CPU (its torch threads as many);
* ``ray xN``: N workers (one per CPU), one torch thread each.

Ray is started once (``ray.init(num_cpus=<cores>)``, timed apart) and every engine runs
once per round, rounds interleaved so that load from other processes hits them alike.
A Ray job's time includes starting its actors and loading the model in each (what every
job pays); the figure to compare is photos/s and the ratio ``ray / local`` (time),
median over rounds (the issue's target: at most 1.3). The CPU model, the core count and
``uptime``'s load are printed first: on a shared machine, read ratios, not absolutes.

Run: ``python benchmarks/bench_ray.py [FOLDER] [--photos 200] [--rounds 3] [--model M]
[--render-size 256] [--batch-size 4]`` (default folder: ``tests/assets``; the docs' figures
come from ``/work/shared/data/photos/train``). Needs ``pip install 'pixcolor[ray]'``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import ray
import torch

from pixcolor import Colorizer
from pixcolor.batch import colorize_files as colorize_local
from pixcolor.distributed import colorize_files as colorize_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=Path(__file__).parents[1] / "tests/assets")
    parser.add_argument("--photos", type=int, default=200, help="first N photos of the folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"CPU: {_cpu_model()}, {cores} cores; torch {torch.__version__}, ray {ray.__version__}")
    print(f"load before: {_load()}")

    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    photos = _copy_photos(Path(args.folder), work / "photos", args.photos)
    pixels = sum(_size(p) for p in photos) / 1e6
    print(f"{len(photos)} photos ({pixels:.1f} Mpixel) from {args.folder}, batch "
          f"{args.batch_size}, render size {args.render_size or 'model default'}")  # fmt: skip
    options = {"render_size": args.render_size, "batch_size": args.batch_size, "progress": False}

    def local(out: Path) -> object:  # a job: load the model, colorize (as Ray's jobs do)
        colorizer = Colorizer.from_pretrained(args.model, device="cpu", precision="fp32")
        return colorize_local(colorizer, [work / "photos"], out, **options)

    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    print(f"ray.init (once per job on a laptop; never on a running cluster): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    engines = {
        "local": local,
        "ray x1": lambda out: colorize_ray(
            [work / "photos"],
            out,
            model=args.model,
            device="cpu",
            precision="fp32",
            workers=1,
            cpus_per_worker=cores,
            **options,
        ),
        f"ray x{cores}": lambda out: colorize_ray(
            [work / "photos"],
            out,
            model=args.model,
            device="cpu",
            precision="fp32",
            workers=cores,
            cpus_per_worker=1,
            **options,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for round_ in range(args.rounds):
            for name, run in engines.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                report = run(out)
                elapsed = time.perf_counter() - start
                if report.failed or len(report.written) != len(photos):
                    raise RuntimeError(f"{name}: {report.summary()}")
                times[name].append(elapsed)
                print(f"round {round_ + 1} {name:>7}: {elapsed:6.1f} s "
                      f"{len(photos) / elapsed:5.1f} photos/s")  # fmt: skip
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {_load()}")
    print("\nengine    median s  photos/s  time / local (median of per-round ratios)")
    for name, values in times.items():
        ratio = statistics.median(
            v / local for v, local in zip(values, times["local"], strict=True)
        )
        median = statistics.median(values)
        print(f"{name:<8} {median:9.1f} {len(photos) / median:9.1f} {ratio:10.2f}")


def _copy_photos(folder: Path, into: Path, limit: int) -> list[Path]:
    into.mkdir(parents=True)
    names = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    copied = []
    for i in range(limit):  # cycled when the folder holds fewer
        source = names[i % len(names)]
        copied.append(into / f"{i:05d}_{source.name}")
        shutil.copyfile(source, copied[-1])
    return copied


def _size(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height


def _cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load unknown"


if __name__ == "__main__":
    main()
