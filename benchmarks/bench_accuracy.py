"""What the fast forward costs in accuracy: every precision and backend against fp32.

For each candidate (the network folded and cast by :class:`pixcolor.InferenceModel` in
fp32, bf16, fp16; ONNX Runtime fp32 and int8, the latter calibrated on ``--calibration``
photos), on the colour photos of ``PHOTOS`` (default: the project's validation photos):

* the predicted a/b at render size against the unconverted fp32 generator (eager, batch
  norms as trained): max and mean absolute difference, in a/b units;
* ``pixcolor.metrics.evaluate``'s PSNR and delta-CF of the full colorize, and the PSNR
  difference to the fp32 reference colorizer (goal: within 0.01 dB; int8 within 0.05 dB).

Precisions that this CPU only emulates (bf16 without AVX512-BF16/AMX, fp16 without
AMX-FP16) are still measured here (slowly): accuracy does not depend on speed.

Run: ``python benchmarks/bench_accuracy.py [PHOTOS] [--model DIR_OR_NAME] [--calibration
DIR] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any

import torch

from pixcolor import Colorizer
from pixcolor.data import find_images
from pixcolor.images import load_image
from pixcolor.metrics import evaluate

VAL = Path("/work/shared/data/photos/val")
TRAIN = Path("/work/shared/data/photos/train")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="?", type=Path, default=VAL)
    parser.add_argument("--model", default=None, help="directory, preset or Hub repo id")
    parser.add_argument("--calibration", type=Path, default=TRAIN if TRAIN.is_dir() else None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated candidate names to skip")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    reference = Colorizer.from_pretrained(args.model, device="cpu", precision="fp32")
    generator = reference.generator
    plain = copy.deepcopy(generator).eval()  # as trained: no folding, fp32, contiguous
    candidates: dict[str, dict[str, Any]] = {
        "torch fp32 (folded)": {"precision": "fp32"},
        "torch bf16": {"precision": "bf16"},
        "torch fp16": {"precision": "fp16"},
        "onnxruntime fp32": {"backend": "onnxruntime"},
    }
    if args.calibration is not None:
        calibration = find_images(args.calibration)[:64]
        candidates["onnxruntime int8"] = {
            "backend": "onnxruntime", "precision": "int8", "calibration": calibration,
        }  # fmt: skip
    skip = set(filter(None, args.skip.split(",")))
    files = find_images(args.photos)
    inputs = [_network_input(reference, path) for path in files]
    with torch.inference_mode():
        truth = [plain(x) * generator.config.ab_scale for x in inputs]
    base = evaluate(reference, args.photos, progress=False)
    print(f"{len(files)} photos from {args.photos}, render size {base['render_size']}; a/b "
          "against the unconverted fp32 generator; PSNR against colorize in fp32: "
          f"{base['model']['psnr']:.4f} dB, delta-CF {base['model']['delta_cf']:.3f}")  # fmt: skip
    print(f"{'candidate':22s} {'max |dab|':>10s} {'mean |dab|':>11s} {'PSNR dB':>9s} "
          f"{'dPSNR dB':>9s} {'dCF':>7s}")  # fmt: skip
    for name, kwargs in candidates.items():
        if name in skip:
            continue
        col = Colorizer(generator, "cpu", **kwargs)
        with torch.inference_mode():
            diffs = [(col.network(x) * generator.config.ab_scale - t).abs() for x, t in
                     zip(inputs, truth, strict=True)]  # fmt: skip
        worst = max(float(d.max()) for d in diffs)
        mean = sum(float(d.mean()) for d in diffs) / len(diffs)
        result = evaluate(col, args.photos, progress=False)["model"]
        delta = result["psnr"] - base["model"]["psnr"]
        print(f"{name:22s} {worst:10.3f} {mean:11.4f} {result['psnr']:9.4f} {delta:+9.4f} "
              f"{result['delta_cf']:7.3f}")  # fmt: skip


def _network_input(colorizer: Colorizer, path: Path) -> torch.Tensor:
    size = int(colorizer.generator.config.render_size)  # type: ignore[arg-type]
    return colorizer._network_input(colorizer._shrink(load_image(path).pixels, size))


if __name__ == "__main__":
    main()
