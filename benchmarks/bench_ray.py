"""Throughput of ``pixcolor colorize --engine ray`` against ``--engine local`` on one machine.

The same folder of photos, the same model, batch size and render size, colorized into a
fresh output folder by:

* ``local``: ``pixcolor colorize DIR -o OUT`` (torch's default threads: every core);
* ``ray x1``: the same with ``--engine ray --workers 1 --cpus-per-worker <cores>``;
* ``ray xN``: ``--workers N --cpus-per-worker 1`` (N = cores, one torch thread each).

Each job is a ``pixcolor colorize`` command run as a user runs it, in its own process
(start-up, imports and model load included). Ray is started once by this script
(``ray.init(num_cpus=<cores>)``, timed apart) and the Ray jobs join it with
``--ray-address``, as on a running cluster. Every engine runs once per round, rounds
interleaved so that load from other processes hits them alike; the ratio ``ray / local``
(time) is the median of the per-round ratios. With ``--small N`` every engine also runs
jobs of the first N photos, which splits each engine's time into a start (what a job pays
whatever its size: processes, imports, model loads, Ray's actors) and a throughput (the
photos/s a long job settles to); the issue's target, at most 1.3, is on throughput. The CPU model, the core count and
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
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=Path(__file__).parents[1] / "tests/assets")
    parser.add_argument("--photos", type=int, default=200, help="first N photos of the folder")
    parser.add_argument(
        "--small", type=int, default=None,
        help="also run jobs of the first N photos, to split each engine's time into its start "
        "(model load, actors) and its throughput: (photos - small) / (time - time of small)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"CPU: {_cpu_model()}, {cores} cores; torch {torch.__version__}, ray {ray.__version__}")
    print(f"load before: {_load()}")

    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    photos = _copy_photos(Path(args.folder), work / "all", args.photos)
    pixels = sum(_size(p) for p in photos) / 1e6
    print(f"{len(photos)} photos ({pixels:.1f} Mpixel) from {args.folder}, batch "
          f"{args.batch_size}, render size {args.render_size or 'model default'}")  # fmt: skip
    common = ["--batch-size", str(args.batch_size), "--precision", "fp32", "--device", "cpu",
              "--no-progress"] + (["--model", args.model] if args.model else [])  # fmt: skip
    common += ["--render-size", str(args.render_size)] if args.render_size else []

    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    print(f"ray.init (once per job on a laptop; never on a running cluster): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    address = ray.get_runtime_context().gcs_address
    ray_args = ["--engine", "ray", "--ray-address", address]
    engines = {
        "local": [],
        "ray x1": [*ray_args, "--workers", "1", "--cpus-per-worker", str(cores)],
        f"ray x{cores}": [*ray_args, "--workers", str(cores), "--cpus-per-worker", "1"],
    }

    def run(extra: list[str], out: Path) -> int:
        """One ``pixcolor colorize`` command, as a user runs it; the number of outputs."""
        command = [sys.executable, "-m", "pixcolor", "colorize", str(work / "photos"),
                   "-o", str(out), *common, *extra]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return sum(1 for path in out.rglob("*") if path.is_file())

    sizes = [len(photos)] + ([args.small] if args.small else [])
    times: dict[tuple[str, int], list[float]] = {(n, k): [] for n in engines for k in sizes}
    try:
        for round_ in range(args.rounds):
            for size in sizes:
                _select(work, photos, size)
                for name, extra in engines.items():
                    out = work / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    start = time.perf_counter()
                    written = run(extra, out)
                    elapsed = time.perf_counter() - start
                    if written != size:
                        raise RuntimeError(f"{name}: {written} outputs for {size} photos")
                    times[name, size].append(elapsed)
                    print(f"round {round_ + 1} {name:>7} {size:5d} photos: {elapsed:6.1f} s "
                          f"{size / elapsed:5.1f} photos/s")  # fmt: skip
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {_load()}")
    big = len(photos)
    print(f"\nwhole jobs of {big} photos (model load and actors included)")
    print("engine    median s  photos/s  time / local (median of per-round ratios)")
    for name in engines:
        values = times[name, big]
        ratio = statistics.median(
            v / local for v, local in zip(values, times["local", big], strict=True)
        )
        median = statistics.median(values)
        print(f"{name:<8} {median:9.1f} {big / median:9.1f} {ratio:10.2f}")
    if args.small:
        small = args.small
        print(
            f"\nstart and throughput, from jobs of {small} and {big} photos (medians over rounds)"
        )
        print("engine    start s  photos/s  time per photo / local's")
        marginal = {
            name: statistics.median(
                (b - a) / (big - small)
                for a, b in zip(times[name, small], times[name, big], strict=True)
            )
            for name in engines
        }
        for name in engines:
            start_s = statistics.median(times[name, small]) - small * marginal[name]
            print(f"{name:<8} {start_s:8.1f} {1 / marginal[name]:9.1f} "
                  f"{marginal[name] / marginal['local']:10.2f}")  # fmt: skip


def _select(work: Path, photos: list[Path], size: int) -> None:
    """Make ``work / "photos"`` hold the first ``size`` of ``photos`` (hard links)."""
    folder = work / "photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for photo in photos[:size]:
        os.link(photo, folder / photo.name)


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
