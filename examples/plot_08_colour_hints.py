"""
Colour hints: click a few points, get the colours you want
==========================================================

An automatic model guesses, and on a photo it has never seen it often guesses wrong. A few
colour hints fix that: a :class:`pixcolor.Hint` is a point of the photo (in its own pixels)
and a colour, of which only the chroma is used (the lightness always comes from the photo).

The bundled model is a hint model: each hint's difference to the model's colour there is
spread over the photo along its edges (an edge-aware pyramid at the network's resolution)
and added to the model's colours. Models without a hint input do the same model-free,
with the optimisation of Levin, Lischinski and Weiss ("Colorization using Optimization",
2004). The same works with ``hint_image=``, an RGBA image of
painted strokes, and on the command line (``pixcolor colorize photo.jpg --hints
hints.json``).
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image

import pixcolor
from pixcolor.hint_eval import HINT_METHODS, evaluate_hints, sample_hints

torch.set_num_threads(2)

try:
    ROOT = Path(__file__).resolve().parents[1]
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ROOT = Path.cwd().parent
ASSETS = ROOT / "tests" / "assets"

# %%
# Hints on one photo
# ------------------
# The photo is turned gray; the model colourises it alone, then with four hints whose
# colours are taken from the original (as a user who knows the scene would pick them).

truth = Image.open(ASSETS / "coffee.jpg").convert("RGB")
gray = truth.convert("L")
colorizer = pixcolor.Colorizer.from_pretrained(device="cpu")
points = [(40, 30), (128, 95), (200, 140), (230, 40)]
hints = [pixcolor.Hint(x, y, truth.getpixel((x, y)), radius=3) for x, y in points]

automatic = colorizer.colorize(gray)
guided = colorizer.colorize(gray, hints=hints)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
for ax, (title, image) in zip(
    axes, [("automatic", automatic), ("with 4 hints", guided), ("original", truth)], strict=True
):
    ax.imshow(image)
    ax.set_title(title)
    ax.axis("off")
for hint in hints:
    axes[1].scatter([hint.x], [hint.y], s=60, c=[[v / 255 for v in hint.rgb]], edgecolors="white")
plt.show()

# %%
# PSNR against the number of hints
# --------------------------------
# :func:`pixcolor.hint_eval.evaluate_hints` samples ``N`` hints per photo from the truth
# (the mean colour of a 5x5 patch, fixed seed) and scores the model given them beside two
# methods that use no model at all: Levin et al.'s optimisation and a Gaussian-weighted
# average of the hints, applied to the gray photo. ``pixcolor evaluate MODEL PHOTOS --hints
# 0 --hints 10`` prints the same table. Three small photos make an illustration; the
# :doc:`/hints` page gives the scores on 47 held-out photos.

photos = [ASSETS / name for name in ("chelsea.jpg", "coffee.jpg", "quokka.jpg")]
counts = [0, 3, 10, 30]
results = evaluate_hints(colorizer, photos, counts, progress=False)
print(pixcolor.hint_eval.format_hint_table(results))

fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
for key, name in HINT_METHODS.items():
    ax.plot(counts, [results["rows"][str(n)][key]["psnr"] for n in counts], marker="o", label=name)
ax.set_xscale("symlog", linthresh=1)
ax.set_xticks(counts, [str(n) for n in counts])
ax.set_xlabel("hints per photo")
ax.set_ylabel("PSNR (dB)")
ax.legend()
plt.show()

# %%
# Where the hints were
# --------------------
# ``sample_hints`` is what the evaluation uses: here the 10 hints of one photo.

hints10 = sample_hints(truth, 10, seed=0)
plt.figure(figsize=(5, 3.4))
plt.imshow(colorizer.colorize(gray, hints=hints10))
plt.scatter(
    [h.x for h in hints10],
    [h.y for h in hints10],
    c=[[v / 255 for v in h.rgb] for h in hints10],
    edgecolors="white",
)
plt.axis("off")
plt.show()
