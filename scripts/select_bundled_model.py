"""Pick the bundled model: score generator snapshots on the held-out photos, at full resolution.

Every snapshot is scored with ``pixcolor.metrics.evaluate`` on the 10 % of the training
folder that ``train_bundled_model.py`` held out (never on the validation set, which is kept
for the numbers we report), at several chroma factors. The factor is baked into the shipped
config as ``ab_scale * factor`` (the network predicts ``ab / ab_scale``), so the model's
default output is the calibrated one and ``saturation=1`` means "as shipped".

The rule, fixed before looking at the validation set: the highest held-out PSNR among the
(snapshot, factor, render size) whose held-out delta-CF is at most 10 (a margin below the
bar of 15, for test photos more colourful than the training ones). The render size is
stored in the shipped config as the model's default (``install_bundled_model.py``).

Run: ``python scripts/select_bundled_model.py PHOTOS RUN_DIR [--factors 1.0 1.3 1.6]
[--render-size 128]`` (once per render size).

Hint models (``--hints 0 10 30``): a chroma factor would scale the hinted colours too, so
none is applied; each snapshot is scored with ``pixcolor.hint_eval.evaluate_hints`` on the
same held-out photos (N hints sampled from each photo, beside Levin et al.'s optimisation
and the Gaussian spread given the same hints). The rule for the hint model, fixed before
looking at the validation set: the highest mean held-out PSNR over 10 and 30 hints among
the snapshots whose 0-hint PSNR is within 0.1 dB of the best 0-hint PSNR of all snapshots.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import pixcolor
from pixcolor.data import find_images, split_files
from pixcolor.metrics import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("run")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.2, 1.4])
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--only", nargs="*", help="snapshot names to score (default: all)")
    parser.add_argument("--hints", type=int, nargs="*", help="score a hint model with N hints")
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, holdout = split_files(find_images(args.photos), val_fraction=0.1, seed=0, root=args.photos)
    snapshots = sorted((Path(args.run) / "snapshots").iterdir())
    if args.only:
        snapshots = [s for s in snapshots if s.name in args.only]
    rows = []
    for snap in snapshots:
        gen = pixcolor.UNetGenerator.from_pretrained(snap)
        if args.hints:
            _score_hints(gen, holdout, snap.name, args.hints, args.render_size)
            continue
        for factor in args.factors:
            scaled = pixcolor.UNetGenerator.from_config(
                {**gen.config_dict(), "ab_scale": gen.config.ab_scale * factor}
            )
            scaled.load_state_dict(gen.state_dict())
            colorizer = pixcolor.Colorizer(scaled, device="cpu")
            res = evaluate(colorizer, holdout, render_size=args.render_size, progress=False)
            row = {
                "snapshot": snap.name, "factor": factor, "psnr": res["model"]["psnr"],
                "gray_pil_psnr": res["gray_pil"]["psnr"], "delta_cf": res["model"]["delta_cf"],
                "colorfulness": res["model"]["colorfulness"], "truth_cf": res["truth_colorfulness"],
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)


def _score_hints(gen, holdout, name, counts, render_size):  # type: ignore[no-untyped-def]
    from pixcolor.hint_eval import evaluate_hints

    res = evaluate_hints(gen.float(), holdout, counts, render_size=render_size, progress=False)
    for n, methods in res["rows"].items():
        row = {"snapshot": name, "hints": int(n)}
        for method in ("model", "levin", "gaussian", "gray"):
            row[f"{method}_psnr"] = methods[method]["psnr"]
        row["delta_cf"] = methods["model"]["delta_cf"]
        row["hint_error"] = methods["model"]["hint_error"]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
