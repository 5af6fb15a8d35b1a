"""
Render size and saturation
==========================

Two arguments of :meth:`pixcolor.Colorizer.colorize` change the result without changing
the model:

* ``render_size``: the side of the square the network sees. Only the colour comes from that
  size; the output always keeps the input's own resolution and gray values.
* ``saturation``: a factor on the predicted colour (the a/b channels of CIE L*a*b*):
  0 gives a gray image, 1 what the model predicted, above 1 more vivid colours.
"""

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

import pixcolor
from pixcolor.metrics import colorfulness

torch.set_num_threads(2)

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

colorizer = pixcolor.Colorizer.from_pretrained(device="cpu")
photo = Image.open(ASSETS / "coffee.jpg").convert("L")
print("photo:", photo.size)

# %%
# Render size
# -----------
# ``render_size`` must be a positive multiple of the generator's stride (its total
# downsampling; 2 to the number of levels of a pix2pix U-Net, 32 for ResNet encoders).
# A larger size gives the network more pixels to recognise things, at a cost that grows
# with its square; beyond the size a model was trained at it sees objects larger than it
# learned them, which does not always help. The default is the model's own
# ``generator.config.render_size``, the scale it was trained at.

print("this model's default render_size:", colorizer.generator.config.render_size)

stride = colorizer.generator.stride
sizes = sorted({max(stride, size // stride * stride) for size in (128, 256, 512)})
colorizer.colorize(photo)  # the first call pays one-off costs: leave it out of the timings
results = {}
for size in sizes:
    start = time.perf_counter()
    results[size] = colorizer.colorize(photo, render_size=size)
    print(f"render_size={size}: {time.perf_counter() - start:.2f} s, output {results[size].size}")

fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3), layout="constrained")
for ax, (size, image) in zip(np.atleast_1d(axes), results.items(), strict=True):
    ax.imshow(image)
    ax.set_title(f"render_size={size}")
    ax.set_axis_off()
plt.show()

# %%
# Saturation
# ----------
# A model trained with an L1 loss hedges its bets: when it is unsure between blue and red it
# predicts something in between, grayish. ``saturation`` scales the predicted a/b channels
# after the fact. The colourfulness metric of Hasler and Süsstrunk (0 for a gray image; they
# call 33 "moderately" and 59 "quite" colourful) measures the effect. Colours that would
# leave the sRGB gamut are pulled towards gray at constant luma, so even a strong
# factor keeps the photo's gray values.

factors = (0.0, 0.5, 1.0, 1.5, 2.0)
fig, axes = plt.subplots(1, len(factors), figsize=(10, 2.3), layout="constrained")
for ax, factor in zip(axes, factors, strict=True):
    image = colorizer.colorize(photo, saturation=factor)
    rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    ax.imshow(image)
    ax.set_title(f"saturation={factor:g}\ncolourfulness {colorfulness(rgb).item():.1f}")
    ax.set_axis_off()
plt.show()

original = Image.open(ASSETS / "coffee.jpg")
truth = torch.from_numpy(np.array(original)).permute(2, 0, 1)[None].float() / 255
print(f"colourfulness of the original colour photo: {colorfulness(truth).item():.1f}")
