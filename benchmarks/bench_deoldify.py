"""DeOldify's generator in pixcolor's Colorizer: time and peak memory for a large photo.

A ``--size`` grayscale JPEG (default 4000x3000, 12 MP; a test photo upscaled) is colorized
by ``Colorizer.colorize(path)`` with

* ``Colorizer.from_pretrained("deoldify")`` (``--variant``; DeOldify's network with random
  weights, from a synthetic Hugging Face cache holding a learner file of the real one's
  layout and size, converted once) at its ``render_size`` (``render_factor`` 35 x 16 = 560
  unless ``--render-size``), and
* the bundled model at its own render size, for scale,

on the CPU with ``--threads`` torch threads, ``precision="auto"`` (the choice is printed).
Time and memory do not depend on the weights' values.

Time: one process, both colorizers, rounds interleaved after a warm-up round (load from
other processes hits both alike); medians over ``--repeat`` rounds, and the median of the
per-round ratios. The DeOldify network's bare forward at its render size (the colorizer's
:class:`~pixcolor.InferenceModel`, batch 1) is timed in the same rounds, to show how much
of ``colorize`` it is. The CPU model and the load average (before and after) are printed.

Conversion: the ``--variant``'s network with random weights, saved as DeOldify's
``Learner.save`` would (state dict in DeOldify's layout, an optimizer entry with slices),
laid into a fresh Hugging Face cache as its preset's file; ``from_pretrained`` of the
preset, offline, timed the first time (read, convert, write the safetensors) and the
second (the cached conversion only).

Memory: each colorizer in a fresh subprocess that reports its peak resident memory
(``VmHWM`` on Linux, else ``ru_maxrss``) after ``import pixcolor``, after loading the model and after colorizing;
peaks are high-water marks and do not depend on the machine's load. MB = 10**6 bytes.

Run: ``python benchmarks/bench_deoldify.py [--variant artistic] [--size 4000x3000]
[--threads 2] [--repeat 3] [--render-size 560]``.
"""

from __future__ import annotations

import argparse
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

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="artistic", choices=("artistic", "stable", "video"))
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the photo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--render-size", type=int, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--photo", help=argparse.SUPPRESS)
    parser.add_argument("--render", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_memory_child(args)))
        return

    import torch

    from pixcolor.models.deoldify import DEOLDIFY_VARIANTS

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        photo = _make_photo(Path(tmp), width, height)
        conversion = _time_conversion(Path(tmp), args.variant)  # sets up the synthetic cache
        render = args.render_size or DEOLDIFY_VARIANTS[args.variant]["render_size"]
        preset = conversion["preset"]
        common = ["--photo", str(photo), "--threads", str(args.threads), "--render", str(render)]
        memory = {
            name: _run_child(["--child", model, *common])
            for name, model in (("bundled", "bundled"), ("deoldify", preset))
        }
        times = _time_interleaved(photo, preset, render, args.repeat)

    print(f"CPU: {_cpu_model()}, torch {torch.__version__}, {args.threads} torch threads; "
          f"load average (1/5/15 min) {_load(load_before)} before, {_load(os.getloadavg())} "
          "after")  # fmt: skip
    print(f"{width}x{height} grayscale JPEG ({width * height / 1e6:.0f} MP), colorize(path) on "
          f"CPU; Colorizer.from_pretrained({preset!r}) (random weights) at render_size "
          f"{render}, network {times['network']}")  # fmt: skip
    print(f"{'':34s}{'bundled':>10s}{'deoldify':>10s}")
    for key, label in (
        ("after_import", "peak after import pixcolor, MB"),
        ("after_load", "peak after model load, MB"),
        ("after_colorize", "peak after colorize, MB"),
    ):
        print(f"{label:34s}{memory['bundled'][key]:10.0f}{memory['deoldify'][key]:10.0f}")
    added = {k: v["after_colorize"] - v["after_import"] for k, v in memory.items()}
    print(f"{'added over import, MB':34s}{added['bundled']:10.0f}{added['deoldify']:10.0f}")
    print(f"{'colorize, s (median)':34s}{times['bundled']:10.2f}{times['deoldify']:10.2f}")
    print(f"{'colorize, s (all rounds)':34s}{_rounds(times['rounds']['bundled']):>10s}"
          f"{_rounds(times['rounds']['deoldify']):>10s}")  # fmt: skip
    print(f"deoldify / bundled colorize time: {times['ratio']:.1f}x; DeOldify's bare forward at "
          f"{render}x{render}: {times['forward']:.2f} s ({times['forward'] / times['deoldify']:.0%} "
          f"of its colorize)")  # fmt: skip
    print(f"preset {conversion['preset']!r} ({conversion['mb']:.0f} MB learner file): first "
          f"from_pretrained (read + convert + save) {conversion['first']:.1f} s, second "
          f"(cached conversion) {conversion['second']:.1f} s")  # fmt: skip


def _time_interleaved(photo: Path, preset: str, render: int, repeat: int) -> dict[str, Any]:
    import torch

    import pixcolor

    bundled = pixcolor.Colorizer.from_pretrained(device="cpu")
    deoldify = pixcolor.Colorizer.from_pretrained(preset, device="cpu")
    x = torch.randn(1, 3, render, render)

    candidates = {
        "bundled": lambda: bundled.colorize(photo),
        "deoldify": lambda: deoldify.colorize(photo, render_size=render),
        "forward": lambda: deoldify.network(x),
    }
    rounds: dict[str, list[float]] = {k: [] for k in candidates}
    for round_index in range(repeat + 1):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            if round_index:  # round 0 warms up
                rounds[name].append(time.perf_counter() - start)
    result: dict[str, Any] = {k: statistics.median(v) for k, v in rounds.items()}
    result["ratio"] = statistics.median(
        d / b for d, b in zip(rounds["deoldify"], rounds["bundled"], strict=True)
    )
    result["rounds"] = rounds
    result["network"] = f"{deoldify.precision} {deoldify.network.memory_format}"
    return result


def _time_conversion(folder: Path, variant: str) -> dict[str, Any]:
    """Time the preset's first and second ``from_pretrained``; leaves this process's
    environment pointing at the synthetic cache (for the later runs and children)."""
    import torch

    sys.path.insert(0, str(ASSETS.parent))  # tests/: the DeOldify-layout writer of the tests
    import pixcolor
    from helpers import populate_hf_cache
    from pixcolor.models.deoldify import DEOLDIFY_VARIANTS
    from pixcolor.presets import PRESETS
    from test_deoldify import _to_deoldify_layout

    name = {"artistic": "deoldify"}.get(variant, f"deoldify-{variant}")
    preset = PRESETS[name]
    state = _to_deoldify_layout(pixcolor.DeOldifyGenerator(**DEOLDIFY_VARIANTS[variant]).eval())
    learner = folder / "learner.pth"
    torch.save({"model": state, "opt": {"layer_groups": [slice(0, 3)]}}, learner)
    del state
    hub = folder / "hf"
    populate_hf_cache(hub, str(preset.repo_id), "0" * 40, {str(preset.filename): learner})
    os.environ.update(
        HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1", PIXCOLOR_CACHE=str(folder / "pixcolor")
    )
    from huggingface_hub import constants

    constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = str(hub), True
    times = []
    for _ in range(2):
        start = time.perf_counter()
        pixcolor.DeOldifyGenerator.from_pretrained(name)
        times.append(time.perf_counter() - start)
    return {
        "preset": name,
        "mb": learner.stat().st_size / 1e6,
        "first": times[0],
        "second": times[1],
    }


def _memory_child(args: argparse.Namespace) -> dict[str, Any]:
    import pixcolor

    after_import = _maxrss_mb()
    import torch

    torch.set_num_threads(args.threads)
    colorizer = pixcolor.Colorizer.from_pretrained(args.child, device="cpu")
    after_load = _maxrss_mb()
    render = args.render if args.child != "bundled" else None
    out = colorizer.colorize(args.photo, render_size=render)
    assert out.mode == "RGB", out.mode
    return {"after_import": after_import, "after_load": after_load, "after_colorize": _maxrss_mb()}


def _run_child(options: list[str]) -> dict[str, Any]:
    """Run this script in a fresh interpreter (with this process's environment: the
    synthetic cache); its last stdout line is a JSON object."""
    done = subprocess.run(
        [sys.executable, __file__, *options], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _make_photo(folder: Path, width: int, height: int) -> Path:
    from PIL import Image

    path = folder / "photo.jpg"
    with Image.open(ASSETS / "gray_camera.jpg") as img:
        img.convert("L").resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in load)


def _rounds(values: list[float]) -> str:
    return " ".join(f"{v:.1f}" for v in values)


def _maxrss_mb() -> float:
    """This process's peak resident memory: Linux's VmHWM (ru_maxrss would include the
    parent's peak, which a child inherits through fork and exec), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


if __name__ == "__main__":
    main()
