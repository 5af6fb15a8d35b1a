"""Train the generator that ships inside pixcolor (``pixcolor/weights/bundled``).

Model: pix2pix U-Net, 7 levels, base width 32 (10.5 M parameters), trained on 128-px random
resized crops of a photo folder (90 % of it; 10 % is held out to pick the snapshot, the
chroma factor and the render size), batch 16, Adam (0.5, 0.999). A generator snapshot is
kept every ``--snapshot-every`` epochs for the selection step. The shipped model took two
runs of this script::

    # 1. L1 + colourfulness target, constant lr 2e-4 (26 epochs were used)
    python scripts/train_bundled_model.py PHOTOS --output runs/stage1 \
        --pretrain-epochs 26 --gan-epochs 0
    # 2. squared error from stage 1's last snapshot, lr 1e-4 decaying linearly to 0
    python scripts/train_bundled_model.py PHOTOS --output runs/stage2 \
        --init runs/stage1/snapshots/epoch-0026 --loss mse --chroma-weight 0 \
        --pretrain-lr 1e-4 --lr-decay linear --pretrain-epochs 24 --gan-epochs 0 --snapshot-every 4

``--gan-epochs`` adds a gentle GAN phase (lambda 100, discriminator lr 5e-5, real label 0.9);
it was tried and not chosen. ``--resume`` continues a run in ``--output``."""

from __future__ import annotations

import argparse
import logging

import torch

import pixcolor
from pixcolor.data import PhotoFolder, find_images, split_files
from pixcolor.training import Callback


class MSETrainer(pixcolor.Trainer):
    """Squared error instead of L1 in the warm-up: the conditional mean, which is what PSNR
    rewards (L1's median drifts to sepia less gracefully). ``"l1"`` is still logged."""

    def generator_loss(self, batch, fake_ab):  # type: ignore[no-untyped-def]
        losses = super().generator_loss(batch, fake_ab)
        if self.state["phase"] == "pretrain":
            mse = torch.nn.functional.mse_loss(fake_ab, batch.ab)
            losses["loss"] = losses["loss"] - losses["l1"] + mse
            losses["mse"] = mse
        return losses


class Snapshots(Callback):
    """Keep the generator every ``every`` epochs under ``<run>/snapshots/epoch-NNNN``."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_epoch_end(self, trainer: pixcolor.Trainer, metrics: dict) -> None:
        epoch = trainer.state["epoch"]
        if trainer.run_dir is not None and epoch % self.every == 0:
            trainer.generator.save_pretrained(trainer.run_dir / "snapshots" / f"epoch-{epoch:04d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("--output", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--gan-epochs", type=int, default=20)
    parser.add_argument("--chroma-weight", type=float, default=1.0)
    parser.add_argument("--loss", choices=("l1", "mse"), default="l1", help="warm-up loss")
    parser.add_argument("--pretrain-lr", type=float, default=2e-4)
    parser.add_argument("--lr-decay", choices=("none", "linear", "cosine"), default="none")
    parser.add_argument("--init", help="start from this generator directory (a snapshot)")
    parser.add_argument("--snapshot-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--crop-scale", type=float, default=0.5, help="smallest crop area, as a fraction"
    )
    parser.add_argument(
        "--hints", action="store_true", help="a hint model (an --init model is widened)"
    )
    parser.add_argument("--hint-spread", action="store_true", help="with the spread planes")
    parser.add_argument(
        "--hint-residual", action="store_true", help="output + spread of the hints' residuals"
    )
    parser.add_argument("--hint-mean-count", type=float, default=16.0)
    parser.add_argument("--hint-max-count", type=int, default=64)
    parser.add_argument("--hint-none-fraction", type=float, default=0.15)
    parser.add_argument("--hint-patch-max", type=int, default=3, help="largest hint patch side")
    parser.add_argument("--max-steps", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)

    train_files, holdout_files = split_files(
        find_images(args.photos), val_fraction=0.1, seed=0, root=args.photos
    )
    train = PhotoFolder(train_files, size=128, train=True, scale=(args.crop_scale, 1.0))
    holdout = PhotoFolder(holdout_files, size=128, train=False)
    torch.manual_seed(0)
    hint_options = {"hint_spread": args.hint_spread, "hint_residual": args.hint_residual}
    hint_config = {"hint_channels": 3, **hint_options} if args.hints else {}
    if args.init:
        gen = pixcolor.UNetGenerator.from_pretrained(args.init).float()
        if args.hints and not gen.hint_channels:
            gen = gen.with_hint_channels(**hint_options)
    else:
        gen = pixcolor.UNetGenerator(
            encoder="pix2pix", base_channels=32, num_downs=7, dropout=0.0, **hint_config
        )
    disc = pixcolor.PatchDiscriminator(base_channels=32, n_layers=3)
    config = pixcolor.TrainerConfig(
        pretrain_epochs=args.pretrain_epochs, gan_epochs=args.gan_epochs, batch_size=16, image_size=128,
        pretrain_lr=args.pretrain_lr, lr_decay=args.lr_decay, lr_g=1e-4, lr_d=5e-5, real_label=0.9, lambda_l1=100.0,
        chroma_weight=args.chroma_weight, num_workers=1, output_dir=args.output, keep_last=1,
        best_metric="val_psnr", best_mode="max", progress=False, max_steps=args.max_steps,
        hint_mean_count=args.hint_mean_count, hint_max_count=args.hint_max_count,
        hint_none_fraction=args.hint_none_fraction, hint_patch_sizes=(1, args.hint_patch_max),
    )  # fmt: skip
    trainer_class = MSETrainer if args.loss == "mse" else pixcolor.Trainer
    trainer = trainer_class(gen, disc, config, callbacks=[Snapshots(args.snapshot_every)])
    trainer.fit(train, holdout, resume="latest" if args.resume else None)


if __name__ == "__main__":
    main()
