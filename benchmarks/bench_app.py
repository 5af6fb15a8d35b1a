"""``pixcolor app``: how long a click takes, and the memory of a 24-megapixel upload.

(a) Speed, one process, rounds interleaved (so load from other processes hits every
    candidate alike), after one warm-up round; medians over the rounds, of the wall time
    and of the process's CPU time (all threads). On a busy machine the wall time says
    little; with ``--threads 1`` the CPU time is about the wall time one free core would
    take, an upper bound for two. On a 1-megapixel
    gray JPEG (the 1897 example upscaled to 1155 x 866), what the server does for one click
    on the page (:mod:`pixcolor.app._session`: add a hint, colourise the 768-pixel preview
    with all hints, draw the markers, JPEG-encode both pictures as Gradio sends them),
    against colourising the full photo with the same hints (what the page would cost if
    it showed full resolution) and against the preview without hints. The browser's own
    part (a local HTTP fetch, decoding a 768-pixel JPEG) is a few milliseconds on top.
(b) Memory, fresh subprocesses, peak resident memory (``ru_maxrss``) after loading the
    model and after the work, on a 6000 x 4000 gray JPEG: the app's path (``open_photo`` +
    a preview ``render`` + ``save_downloads``) against ``pixcolor colorize``'s path
    (``Colorizer.colorize(path)`` + ``images.save_image``). Goal: the app adds nothing
    beyond the colorizer's own bound. MB here is 10**6 bytes.

Run: ``python benchmarks/bench_app.py [--repeat 7] [--threads 2] [--hints 5] [--size 1155x866]
[--no-memory]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import pixcolor
from pixcolor import images
from pixcolor.app import _session

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "expedition_1897.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hints", type=int, default=5, help="hints on the photo (a)")
    parser.add_argument("--size", default="1155x866", help="WIDTHxHEIGHT of the photo (a)")
    parser.add_argument("--no-memory", action="store_true", help="skip (b)")
    parser.add_argument("--child", choices=("app", "cli"), help=argparse.SUPPRESS)
    parser.add_argument("--photo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(_memory_child(args.child, Path(args.photo))))
        return
    print(_machine())
    with tempfile.TemporaryDirectory() as tmp:
        width, height = (int(v) for v in args.size.lower().split("x"))
        _speed(Path(tmp), args.repeat, args.hints, (width, height))
        if not args.no_memory:
            _memory(Path(tmp), args.threads)


def _speed(tmp: Path, repeat: int, n_hints: int, size: tuple[int, int]) -> None:
    photo = tmp / "photo.jpg"
    Image.open(EXAMPLE).convert("L").resize(size, Image.BICUBIC).save(photo, quality=90)
    colorizer = pixcolor.Colorizer.from_pretrained()
    session = _session.open_photo(photo, tmp / "tabs")
    height, width = session.preview.shape[:2]
    _session.render(colorizer, session)
    rng = np.random.default_rng(0)
    points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(n_hints)]
    colors = ["#3a8f2e", "#1f4fd0", "#c0392b", "#d4ac0d", "#8e44ad"]
    for i, (x, y) in enumerate(points[:-1]):
        _session.add_hint(session, x, y, colors[i % len(colors)])
    loaded = images.load_image(photo)

    def click() -> None:  # the last hint is the click; undone after, so every round is equal
        if points:
            _session.add_hint(session, *points[-1], colors[0])
        result = _session.render(colorizer, session)
        for picture in (_session.draw_markers(session), result):
            Image.fromarray(picture).save(io.BytesIO(), format="jpeg")
        if points:
            _session.undo_hint(session)

    def full_resolution() -> None:
        hints = [(h["x"], h["y"], h["color"]) for h in session.hints]
        last = _session.add_hint(session, *points[-1], colors[0]) if points else None
        if last is not None:
            hints.append((last["x"], last["y"], last["color"]))
            _session.undo_hint(session)
        colorizer.colorize(loaded, **({"hints": hints} if hints else {}))

    def preview_no_hints() -> None:
        colorizer.colorize(session.preview)

    candidates = {"click (preview)": click, "full resolution": full_resolution,
                  "preview, no hints": preview_no_hints}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeat + 1):
        for name, fn in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    print(f"(a) one click on a {size[0]} x {size[1]} photo ({n_hints} hints), preview "
          f"{width} x {height}, "
          f"{torch.get_num_threads()} threads, median of {repeat}:")  # fmt: skip
    for name, values in times.items():
        print(f"  {name:20s} wall {statistics.median(values) * 1000:6.0f} ms (min "
              f"{min(values) * 1000:.0f}, max {max(values) * 1000:.0f}), CPU time "
              f"{statistics.median(cpu[name]) * 1000:6.0f} ms")  # fmt: skip
    ratios = [
        c / f for c, f in zip(times["click (preview)"], times["full resolution"], strict=True)
    ]
    print(
        f"  click / full resolution: {statistics.median(ratios):.2f} (median of per-round ratios)"
    )
    session.close()


def _memory(tmp: Path, threads: int) -> None:
    photo = tmp / "24mp.jpg"
    Image.open(EXAMPLE).convert("L").resize((6000, 4000), Image.BICUBIC).save(photo, quality=90)
    runs = {}
    for child in ("cli", "app"):
        command = [sys.executable, __file__, "--child", child, "--photo", str(photo),
                   "--threads", str(threads)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs[child] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"(b) 6000 x 4000 gray JPEG ({photo.stat().st_size / 1e6:.1f} MB), peak resident "
          "memory (ru_maxrss), MB:")  # fmt: skip
    for child, label in (("cli", "colorize(path) + save_image"),
                         ("app", "open_photo + render + save_downloads")):  # fmt: skip
        run = runs[child]
        print(f"  {label:40s} after model load {run['after_load']:6.0f}, after work "
              f"{run['after_work']:6.0f}, added {run['after_work'] - run['after_load']:6.0f}, "
              f"{run['seconds']:.1f} s")  # fmt: skip
    added = {c: runs[c]["after_work"] - runs[c]["after_load"] for c in runs}
    print(f"  app / colorize, memory added: {added['app'] / added['cli']:.2f}")


def _memory_child(kind: str, photo: Path) -> dict[str, Any]:
    colorizer = pixcolor.Colorizer.from_pretrained()
    after_load = _maxrss_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "cli":
            loaded = images.load_image(photo)
            images.save_image(colorizer.colorize(loaded), Path(tmp) / "out.jpg", like=loaded)
        else:
            session = _session.open_photo(photo, Path(tmp))
            _session.render(colorizer, session)
            _session.save_downloads(colorizer, session)
    return {"after_load": after_load, "after_work": _maxrss_mb(),
            "seconds": time.perf_counter() - start}  # fmt: skip


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{model}, {os.cpu_count()} CPUs, load average {load}; torch {torch.__version__}"


if __name__ == "__main__":
    main()
