"""
A custom loss and a callback
============================

:class:`pixcolor.Trainer` is built to be changed in two ways:

* **subclass it** to change *what* happens: ``generator_loss``, ``discriminator_loss``,
  ``training_step``, ``validation_step``, ``configure_optimizers``;
* **pass callbacks** (:class:`pixcolor.Callback`) to change *when* things happen:
  ``on_step_end``, ``on_validation_end``, ``on_epoch_end``, ``on_save``, ...

Here a subclass adds a colourfulness bonus to the generator's loss, a callback records
what happens, and the two are compared with the plain trainer on the same data and seed.
"""

# %%
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset

import pixcolor
from pixcolor.training import Batch

torch.set_num_threads(2)

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

# %%
# The subclass: a colourfulness bonus
# -----------------------------------
# A model trained with L1 alone predicts the median colour of what it is unsure about,
# which is often a dull brown. This trainer subtracts ``bonus x mean chroma`` of the
# prediction from the generator's loss (chroma is ``sqrt(a^2 + b^2)``, in the network's
# normalised units), rewarding colour of any hue. Every value in the returned dictionary
# is logged; ``"loss"`` is the one that is minimised.
#
# This is an illustration of the hook. pixcolor has a better-behaved version built in:
# ``TrainerConfig(chroma_weight=...)`` asks for the *true* amount of colour of each photo,
# where an open-ended bonus can push colours beyond it. In the GAN phase the L1 term is
# multiplied by ``lambda_l1`` (100), so a bonus there should be scaled alike.


class ColourfulTrainer(pixcolor.Trainer):
    def __init__(self, *args: Any, bonus: float = 0.3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bonus = bonus

    def generator_loss(self, batch: Batch, fake_ab: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = super().generator_loss(batch, fake_ab)
        chroma = (fake_ab.float().pow(2).sum(dim=1) + 1e-8).sqrt().mean()
        losses["loss"] = losses["loss"] - self.bonus * chroma
        losses["chroma"] = chroma
        return losses


# %%
# The callback: a history
# -----------------------
# Every hook receives the trainer first, so a callback can read its state and config, or
# set ``trainer.should_stop = True`` to end the run after the current step.


class History(pixcolor.Callback):
    def __init__(self) -> None:
        self.l1: list[float] = []
        self.val_colourfulness: list[float] = []
        self.truth = float("nan")

    def on_step_end(self, trainer: pixcolor.Trainer, logs: dict[str, float]) -> None:
        self.l1.append(logs["l1"])

    def on_validation_end(self, trainer: pixcolor.Trainer, metrics: dict[str, Any]) -> None:
        self.val_colourfulness.append(metrics["val_colorfulness"])
        self.truth = metrics["val_colorfulness_truth"]

    def on_epoch_end(self, trainer: pixcolor.Trainer, metrics: dict[str, Any]) -> None:
        if metrics["epoch"] % 4 == 0:
            print(
                f"  epoch {metrics['epoch']:2d}: train L1 {metrics['train_l1']:.4f}, "
                f"val colourfulness {metrics['val_colorfulness']:.1f}"
            )


# %%
# Two runs, same data, same seed
# ------------------------------
# Generator-only training (``gan_epochs=0``, no discriminator) keeps this short. With
# ``output_dir=None`` the trainer writes nothing to disk.

names = ("chelsea.jpg", "coffee.jpg", "astronaut.jpg", "gold_fish.jpg", "rocket.jpg")
photos = pixcolor.PhotoFolder([ASSETS / n for n in names], size=64, scale=(0.3, 1.0))
train = ConcatDataset([photos] * 8)
val = pixcolor.PhotoFolder([ASSETS / "quokka.jpg"], size=64, train=False)
config = pixcolor.TrainerConfig(
    pretrain_epochs=12,
    gan_epochs=0,
    batch_size=8,
    image_size=64,
    pretrain_lr=2e-3,
    num_workers=0,
    progress=False,
)

histories, generators = {}, {}
for name, trainer_class in (("plain", pixcolor.Trainer), ("colourful", ColourfulTrainer)):
    print(name)
    torch.manual_seed(0)
    generator = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=16, num_downs=6)
    histories[name] = History()
    trainer_class(generator, None, config, callbacks=[histories[name]]).fit(train, val)
    generators[name] = generator

# %%
# The bonus buys colour at the price of a slightly higher L1 loss: the colours move away
# from the safe average. Whether they are the *right* colours is what the GAN phase and
# more data are for.

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
for name, history in histories.items():
    axes[0].plot(np.convolve(history.l1, np.ones(5) / 5, mode="valid"), label=name)
    epochs = range(1, len(history.val_colourfulness) + 1)
    axes[1].plot(epochs, history.val_colourfulness, "o-", label=name)
axes[1].axhline(histories["plain"].truth, color="gray", linestyle="--", label="truth")
axes[0].set(title="train L1 (moving average)", xlabel="step")
axes[1].set(title="colourfulness on the validation photo", xlabel="epoch")
for ax in axes:
    ax.legend()
plt.show()

# %%
# Both generators colourise the held-out photo at full size through a
# :class:`pixcolor.Colorizer` (their render size must be a multiple of their stride, 64).

photo = Image.open(ASSETS / "quokka.jpg")
fig, axes = plt.subplots(1, 3, figsize=(12, 3), layout="constrained")
axes[0].imshow(photo)
axes[0].set_title("original")
for ax, (name, generator) in zip(axes[1:], generators.items(), strict=True):
    colorizer = pixcolor.Colorizer(generator, device="cpu")
    ax.imshow(colorizer.colorize(photo.convert("L"), render_size=128))
    ax.set_title(name)
for ax in axes:
    ax.set_axis_off()
plt.show()
