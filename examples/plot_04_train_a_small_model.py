"""
Train a small model
===================

Train a tiny colorization model on five photos for 120 steps (under two minutes on two CPU
cores) with :class:`pixcolor.Trainer`: an L1-only warm-up of the generator, then
L1 x lambda + GAN with a PatchGAN discriminator. Then read the run's logs (``steps.jsonl``
and ``metrics.jsonl``) and plot its losses.

Five photos and a short run make a demonstration, not a useful model: the point is what a
run does and what it writes. A real run uses thousands of photos (see
:doc:`/training`); on the command line this is ``pixcolor train PHOTOS --output RUN``.
"""

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image
from torch.utils.data import ConcatDataset

import pixcolor
from pixcolor.training import MetricsLogger

torch.set_num_threads(2)

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

# %%
# Data
# ----
# :class:`pixcolor.PhotoFolder` reads colour photos from a folder (recursively) or, as here,
# a list of files, and yields square uint8 RGB crops: random resized crops and flips for
# training, centre crops for validation. Grayscale and unreadable files are skipped and
# counted. Repeating the five photos eight times makes an epoch of 40 different random
# crops. One photo is kept aside for validation.

names = ("chelsea.jpg", "coffee.jpg", "astronaut.jpg", "gold_fish.jpg", "rocket.jpg")
photos = pixcolor.PhotoFolder([ASSETS / n for n in names], size=64, scale=(0.3, 1.0))
train = ConcatDataset([photos] * 8)
val = pixcolor.PhotoFolder([ASSETS / "quokka.jpg"], size=64, train=False)
print(photos, "->", len(train), "crops per epoch")

# %%
# Networks and configuration
# --------------------------
# A 6-level pix2pix U-Net 16 channels wide (1.8 M parameters; 64 x 64 crops reach a 1 x 1
# bottleneck) and a 3-layer PatchGAN. :class:`pixcolor.TrainerConfig` holds every
# hyper-parameter; ``output_dir`` is where the run writes its checkpoints and logs. The
# :class:`~pixcolor.training.MetricsLogger` passed here logs the losses of every step
# (the default is every 10th).

torch.manual_seed(0)
generator = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=16, num_downs=6)
discriminator = pixcolor.PatchDiscriminator(base_channels=16, n_layers=3)
run = Path(tempfile.mkdtemp(prefix="pixcolor-run-"))
config = pixcolor.TrainerConfig(
    pretrain_epochs=16,  # L1 only
    gan_epochs=8,  # then 100 x L1 + GAN
    batch_size=8,
    image_size=64,
    pretrain_lr=2e-3,  # high rates: a tiny model, a tiny data set, a short run
    lr_g=1e-3,
    lr_d=2e-4,
    real_label=0.9,  # one-sided label smoothing
    num_workers=0,
    progress=False,
    output_dir=str(run),
    keep_last=1,
)
print(f"{sum(p.numel() for p in generator.parameters()) / 1e6:.2f} M generator parameters")

# %%
# Train
# -----
# :meth:`~pixcolor.Trainer.fit` runs the warm-up epochs, then the GAN epochs, validating
# and writing a checkpoint after each one; it returns the trainer's state.

trainer = pixcolor.Trainer(generator, discriminator, config, callbacks=[MetricsLogger(every=1)])
state = trainer.fit(train, val)
print(f"{state['epoch']} epochs, {state['global_step']} steps; best val_l1 {state['best']:.4f}")
print(sorted(path.name for path in run.iterdir()))

# %%
# The logs
# --------
# ``steps.jsonl`` has one JSON object per logged step, ``metrics.jsonl`` one per epoch
# (training means, then validation: ``val_l1``, ``val_psnr``, colourfulness of predictions
# and truth). Both are plain text, easy to read from anything.


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


steps = read_jsonl(run / "steps.jsonl")
epochs = read_jsonl(run / "metrics.jsonl")
print(steps[-1])
print({key: value for key, value in epochs[-1].items() if key.startswith(("val_", "phase"))})

# %%
# In the warm-up the generator loss *is* the L1 loss. From the first GAN step it is
# ``100 x L1 + GAN``, a different scale, so L1 is plotted on its own; the discriminator
# loss starts near ``ln 2 = 0.69``, where it cannot tell real colours from predicted
# ones. The colourfulness of the predictions on the validation photo shows what the GAN
# phase is for: L1 alone favours dull, grayish colours.


def column(rows: list[dict], key: str) -> list[float]:
    return [row[key] for row in rows]


gan_steps = [s for s in steps if "d_loss" in s]
gan_start = config.pretrain_epochs * len(train) // config.batch_size
fig, (ax_l1, ax_gan, ax_cf) = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
ax_l1.plot(column(steps, "step"), column(steps, "l1"), label="train L1")
ax_l1.plot(column(epochs, "global_step"), column(epochs, "val_l1"), "o-", label="val L1")
ax_l1.set_title("L1 (normalised ab)")
ax_gan.plot(column(gan_steps, "step"), column(gan_steps, "d_loss"), label="discriminator")
ax_gan.plot(column(gan_steps, "step"), column(gan_steps, "gan"), label="generator (GAN term)")
ax_gan.set_title("adversarial losses")
ax_cf.plot(
    column(epochs, "global_step"), column(epochs, "val_colorfulness"), "o-", label="predictions"
)
ax_cf.axhline(epochs[-1]["val_colorfulness_truth"], color="gray", linestyle="--", label="truth")
ax_cf.set_title("colourfulness on the validation photo")
for ax in (ax_l1, ax_gan, ax_cf):
    ax.axvline(gan_start, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("step")
    ax.legend()
plt.show()

# %%
# Samples and the trained generator
# ---------------------------------
# After each epoch, ``samples/epoch-NNNN.png`` shows the validation crops as
# gray | prediction | truth. The final generator is saved in ``generator/`` and the one
# with the best ``val_l1`` in ``best/generator/``, ready for
# :meth:`pixcolor.Colorizer.from_pretrained`.

last = sorted((run / "samples").glob("epoch-*.png"))[-1]
fig, ax = plt.subplots(figsize=(6, 2.4), layout="constrained")
ax.imshow(Image.open(last))
ax.set_title(f"{last.name}: gray | prediction | truth")
ax.set_axis_off()
plt.show()

colorizer = pixcolor.Colorizer.from_pretrained(run / "generator", device="cpu")
print(colorizer)

# %%
# A run can be stopped at any point and continued exactly where its last checkpoint left
# it: ``trainer.fit(train, val, resume="latest")`` in Python, ``pixcolor train ...
# --resume`` on the command line.

import shutil  # noqa: E402

shutil.rmtree(run)  # the run was in a temporary folder
