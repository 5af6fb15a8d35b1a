"""
Colorize a photo
================

Load the model that ships inside pixcolor and colorize two photos: a real black-and-white
photograph, which has no colours to compare with, and a colour photo turned gray, whose
original colours show what the model got right and what it got wrong.
"""

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

import pixcolor

torch.set_num_threads(2)  # the documentation is built on 2 CPU cores

try:
    ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
except NameError:  # sphinx-gallery runs examples from their folder, without __file__
    ASSETS = Path.cwd().parent / "tests" / "assets"

# %%
# Load the bundled model
# ----------------------
# :meth:`pixcolor.Colorizer.from_pretrained` with no name loads the small model that is
# installed with pixcolor (the ``"bundled"`` preset): nothing is downloaded, so this works
# offline. Give it a preset name, a Hugging Face Hub repo id or a directory written by
# ``save_pretrained`` to load another model (see :doc:`/model_zoo`).

colorizer = pixcolor.Colorizer.from_pretrained(device="cpu")
print(colorizer)
print("render sizes must be multiples of", colorizer.generator.stride)

# %%
# A real black-and-white photograph
# ---------------------------------
# ``colorize`` takes a path, a PIL image, a NumPy array or a tensor and returns the same
# kind (a path gives a PIL image). The output has the input's size: the network runs at
# ``render_size`` (256 by default) and only its colour is scaled up (see
# :doc:`/how_it_works`).

gray = Image.open(ASSETS / "gray_camera.jpg")
colour = colorizer.colorize(gray)
print(f"input {gray.mode} {gray.size} -> output {colour.mode} {colour.size}")

fig, axes = plt.subplots(1, 2, figsize=(8, 4.2), layout="constrained")
for ax, image, title in zip(axes, (gray, colour), ("black and white", "pixcolor"), strict=True):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %%
# A colour photo turned gray
# --------------------------
# With a colour photo we can compare. Turning it gray keeps only its luminance; the model
# has to guess every colour from shapes and textures alone.

original = Image.open(ASSETS / "chelsea.jpg")
guessed = colorizer.colorize(original.convert("L"))

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
panels = (original.convert("L"), guessed, original)
for ax, image, title in zip(axes, panels, ("input", "pixcolor", "original"), strict=True):
    ax.imshow(image, cmap="gray")
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %%
# The output keeps the input's gray values
# ----------------------------------------
# pixcolor never changes the brightness of a photo, only its colour: turned back to gray
# (PIL's ``convert("L")``, the Rec. 601 luma), the output is the input, up to 8-bit
# rounding. That is why fine details, grain and sharpness survive whatever the network's
# resolution.

gray_in = np.asarray(original.convert("L"), dtype=np.int16)
gray_out = np.asarray(guessed.convert("L"), dtype=np.int16)
print(f"largest change of a gray value: {np.abs(gray_out - gray_in).max()} (of 0-255)")

# %%
# Several photos at once
# ----------------------
# A list is colourised in batches and comes back as a list, each output of its input's
# kind and size: here a file path and a NumPy array.

outputs = colorizer.colorize([ASSETS / "quokka.jpg", np.asarray(gray)])
print([type(out).__name__ for out in outputs])
print([getattr(out, "size", None) or out.shape for out in outputs])
