"""
Evaluate a model against the gray baseline
==========================================

How good is a colorization? :func:`pixcolor.metrics.evaluate` turns colour photos gray,
colourises them at full resolution, and compares each result with the original photo.
Every score comes beside two baselines that add no colour at all, because a gray image
already scores well: most pixels of most photos are nearly neutral.

* ``gray (ab=0)``: the photo's own Lab lightness with a = b = 0;
* ``gray (PIL L)``: Pillow's ``convert("L")``, a slightly different gray.

The same table is printed by ``pixcolor evaluate MODEL PHOTOS`` on the command line.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import pixcolor
from pixcolor.metrics import METHODS, evaluate, format_table

torch.set_num_threads(2)

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

# %%
# Score the bundled model
# -----------------------
# ``evaluate`` takes a :class:`pixcolor.Colorizer` (or a bare generator) and a folder or a
# list of colour photos. Given a folder it skips grayscale photos and says so; here the six
# colour photos of pixcolor's test set are listed explicitly.

colorizer = pixcolor.Colorizer.from_pretrained(device="cpu")
photos = sorted(p for p in ASSETS.glob("*.jpg") if p.name != "gray_camera.jpg")
results = evaluate(colorizer, photos, render_size=256, progress=False)
print(format_table(results))

# %%
# Reading the table
# -----------------
# * **PSNR** (dB, higher is better) and **SSIM** (up to 1) compare RGB pixels. Since the
#   lightness is the photo's own, they measure colour errors only, and they reward
#   caution: a wrong vivid colour costs more than no colour.
# * **dE2000** is the mean CIEDE2000 colour difference per pixel (lower is better; about 1
#   is just noticeable, more than 10 is a clearly different colour).
# * **colourfulness** (Hasler and Süsstrunk) of the outputs, beside that of the originals
#   (*truth*), and **dCF**, the gap between the two (lower is better). A gray image has
#   colourfulness 0, which is where the baselines lose.
#
# A useful model closes much of the colourfulness gap (dCF). Doing so without losing
# PSNR, SSIM and dE2000 to the gray baselines is the hard part, because a confidently wrong
# colour is penalised more than no colour at all: read the columns together. Six photos
# make an illustration, not a benchmark: the bundled model's card
# (see :doc:`/model_zoo`) gives its scores on held-out photos.

metrics = {
    "delta_e": "dE2000 (lower is better)",
    "delta_cf": "dCF (lower is better)",
    "psnr": "PSNR, dB (higher is better)",
}
fig, axes = plt.subplots(1, len(metrics), figsize=(12, 3.2), layout="constrained")
for ax, (key, title) in zip(axes, metrics.items(), strict=True):
    values = [results[method][key] for method in METHODS]
    ax.barh(list(METHODS.values()), values, color=["tab:orange", "tab:gray", "silver"])
    ax.invert_yaxis()
    ax.set_title(title)
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.2f}", va="center")
    ax.set_xlim(0, max(values) * 1.25)
plt.show()

# %%
# Scores of single photos
# -----------------------
# ``evaluate`` averages over its photos; giving it one photo at a time shows the spread.
# A model is rarely equally good on a cat and on a rocket at night.

per_photo = {p.stem: evaluate(colorizer, [p], progress=False) for p in photos}
width = max(len(name) for name in per_photo)
print(f"{'photo':<{width}}  dE2000 model  dE2000 gray")
for name, result in per_photo.items():
    print(f"{name:<{width}}  {result['model']['delta_e']:12.2f}  {result['gray']['delta_e']:11.2f}")
better = np.mean([r["model"]["delta_e"] < r["gray"]["delta_e"] for r in per_photo.values()])
print(f"the model beats the gray baseline on {better:.0%} of these photos (dE2000)")
