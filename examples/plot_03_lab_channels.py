"""
The L, a and b channels
=======================

pixcolor works in CIE L*a*b* (Lab): ``L`` is lightness, from 0 (black) to 100 (white);
``a`` runs from green (negative) to red (positive) and ``b`` from blue (negative) to
yellow (positive). A black-and-white photo *is* an L channel, so colourising it means
predicting a and b: two numbers per pixel, whatever the lightness.

This example splits a colour photo into its channels with :mod:`pixcolor.lab`, puts it
back together, and shows what the network sees and predicts.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import skimage.color
import torch
from PIL import Image

from pixcolor import lab

torch.set_num_threads(2)

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

# %%
# From RGB to Lab
# ---------------
# :func:`pixcolor.lab.rgb_to_lab` takes ``(*, 3, H, W)`` float tensors of sRGB in
# ``[0, 1]``, batched and on any device, and returns L, a, b in the same layout.

photo = Image.open(ASSETS / "astronaut.jpg")
rgb = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255  # (3, H, W)
lab_image = lab.rgb_to_lab(rgb)
lightness, a, b = lab_image
for name, channel in (("L", lightness), ("a", a), ("b", b)):
    print(f"{name}: {channel.min().item():7.2f} to {channel.max().item():6.2f}")

# %%
# The three channels, one by one. a and b are drawn with colour maps whose ends are the
# colours they stand for, around a common zero.

fig, axes = plt.subplots(2, 2, figsize=(9, 9), layout="constrained")
axes = axes.flatten()
axes[0].imshow(photo)
axes[0].set_title("photo (sRGB)")
axes[1].imshow(lightness, cmap="gray", vmin=0, vmax=100)
axes[1].set_title("L: lightness, 0 to 100")
limit = max(a.abs().max().item(), b.abs().max().item())
shown = axes[2].imshow(a, cmap="PiYG_r", vmin=-limit, vmax=limit)
axes[2].set_title("a: green (-) to red (+)")
fig.colorbar(shown, ax=axes[2], shrink=0.8)
shown = axes[3].imshow(b, cmap="RdYlBu_r", vmin=-limit, vmax=limit)
axes[3].set_title("b: blue (-) to yellow (+)")
fig.colorbar(shown, ax=axes[3], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# Lightness without colour, colour without lightness
# --------------------------------------------------
# Setting a = b = 0 keeps only the lightness: exactly the gray photo a colorizer starts
# from. Fixing L at 70 instead keeps only the colour: this is what the network has to
# invent. The colour carries little detail; its edges are soft and it would still look
# right at a quarter of the resolution, which is why pixcolor can predict it at a small
# size and join it with the photo's full-resolution lightness (see :doc:`/how_it_works`).

gray = lab.lab_to_rgb(torch.cat([lightness[None], torch.zeros(2, *lightness.shape)]))
flat = lab.lab_to_rgb(torch.cat([torch.full_like(lightness[None], 70.0), a[None], b[None]]))
small = torch.nn.functional.interpolate(lab_image[None, 1:], scale_factor=0.25, mode="area")
soft_ab = torch.nn.functional.interpolate(small, size=lightness.shape, mode="bilinear")[0]
rejoined = lab.lab_to_rgb(torch.cat([lightness[None], soft_ab]))

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
panels = {
    "L only (a = b = 0)": gray,
    "a and b only (L = 70)": flat,
    "full L + a, b at 1/4 size": rejoined,
}
for ax, (title, image) in zip(axes, panels.items(), strict=True):
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %%
# Exact and reversible
# --------------------
# The conversion uses scikit-image's constants (sRGB, D65 white point), so it agrees with
# :func:`skimage.color.rgb2lab`, and :func:`pixcolor.lab.lab_to_rgb` inverts it.

reference = skimage.color.rgb2lab(np.asarray(photo))
ours = lab_image.permute(1, 2, 0).numpy()  # (H, W, 3), like scikit-image
round_trip = lab.lab_to_rgb(lab_image)
print(f"largest difference from scikit-image: {np.abs(ours - reference).max():.1e}")
print(f"round trip RGB -> Lab -> RGB, largest error: {(round_trip - rgb).abs().max():.1e}")

# %%
# What the network sees
# ---------------------
# The generator never sees raw Lab. Its input is the lightness mapped to ``[-1, 1]``
# (:func:`pixcolor.lab.normalize_l`: ``L / 50 - 1``) and it predicts ``ab / 110``
# (:func:`pixcolor.lab.normalize_ab`), which a ``tanh`` output keeps within about
# ``[-1, 1]``. Both constants are stored in each model's ``config.json``.

net_in = lab.normalize_l(lightness)
net_target = lab.normalize_ab(lab_image[1:])
print(f"network input  L/50 - 1 : {net_in.min().item():+.2f} to {net_in.max().item():+.2f}")
print(f"network target ab/110   : {net_target.min().item():+.2f} to {net_target.max().item():+.2f}")

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.hist(net_target[0].flatten(), bins=100, alpha=0.6, label="a / 110", color="tab:red")
ax.hist(net_target[1].flatten(), bins=100, alpha=0.6, label="b / 110", color="tab:olive")
ax.set_yscale("log")
ax.set_xlabel("normalised value")
ax.set_ylabel("pixels")
ax.legend()
ax.set_title("most pixels are nearly gray: the targets crowd around 0")
plt.show()
