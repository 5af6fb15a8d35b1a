"""Should the discriminator of a hint model see the hint planes? Measure it.

A small hint model (the ``tiny`` recipe's width, 64-px crops of the training photos, hint
spread and residual as the bundled model has them) is first trained without a GAN; from
those weights two GAN runs differ only in the discriminator's input: L + ab (3 channels) or
L + ab + the hint planes (6 channels). Both are scored on the 10 % of the photos that
``train_bundled_model.py`` holds out, with and without 10 fixed hints.

Run: ``python scripts/measure_hint_discriminator.py PHOTOS --output runs/disc``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import pixcolor
from pixcolor.data import PhotoFolder, find_images, split_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("--output", required=True)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--gan-epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.output)
    train_files, holdout_files = split_files(
        find_images(args.photos), val_fraction=0.1, seed=0, root=args.photos
    )
    train = PhotoFolder(train_files, size=64, train=True)
    holdout = PhotoFolder(holdout_files, size=64, train=False)
    common = {
        "batch_size": 16, "image_size": 64, "num_workers": 1, "progress": False, "lr_d": 5e-5,
        "lr_g": 1e-4, "real_label": 0.9, "lambda_l1": 100.0, "best_metric": "val_psnr_hints",
        "best_mode": "max", "hint_patch_sizes": (1, 3), "hint_mean_count": 16.0,
    }  # fmt: skip
    torch.manual_seed(0)
    gen = pixcolor.UNetGenerator(
        encoder="pix2pix", base_channels=16, num_downs=6, dropout=0.0,
        hint_channels=3, hint_spread=True, hint_residual=True,
    )  # fmt: skip
    warm = out / "warmup"
    if not (warm / "generator").is_dir():
        config = pixcolor.TrainerConfig(
            pretrain_epochs=args.pretrain_epochs, gan_epochs=0, output_dir=str(warm), **common
        )
        pixcolor.Trainer(gen, None, config).fit(train, holdout)
    results = {}
    for channels in (3, 6):
        torch.manual_seed(1)
        gen = pixcolor.UNetGenerator.from_pretrained(warm / "generator")
        disc = pixcolor.PatchDiscriminator(base_channels=16, n_layers=2, in_channels=channels)
        config = pixcolor.TrainerConfig(
            pretrain_epochs=0, gan_epochs=args.gan_epochs, output_dir=str(out / f"d{channels}"),
            **common,
        )  # fmt: skip
        state = pixcolor.Trainer(gen, disc, config).fit(train, holdout)
        keys = ("val_psnr", "val_delta_cf", "val_psnr_hints", "val_colorfulness_hints")
        results[channels] = [{k: round(h[k], 3) for k in keys} for h in state["history"]]
        print(channels, json.dumps(results[channels]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
