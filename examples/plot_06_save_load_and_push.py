"""
Save, reload and share a model
==============================

A pixcolor model on disk is a directory of two files: ``config.json`` (the constructor
arguments) and ``model.safetensors`` (the weights; no pickle, so loading one never runs
code). This example saves a generator, loads it back, and pushes it to the Hugging Face
Hub, where anyone can load it by name.

**About the push**: the documentation is built without network access and without an
account, so ``huggingface_hub.HfApi`` is replaced by a :mod:`unittest.mock` object below.
Nothing is uploaded; what you see is exactly what pixcolor *asks* the Hub client to do.
Run the same code without the ``mock.patch`` block, logged in (``hf auth login``, or a
``HF_TOKEN`` environment variable), to really publish a model.
"""

# %%
import json
import tempfile
from pathlib import Path
from unittest import mock

import torch

import pixcolor

torch.set_num_threads(2)

# %%
# Save
# ----
# Any :class:`pixcolor.UNetGenerator` (or :class:`pixcolor.PatchDiscriminator`) saves
# itself with ``save_pretrained``. Here a small, untrained one stands in for a model you
# trained (see :doc:`plot_04_train_a_small_model`).

torch.manual_seed(0)
generator = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=16, num_downs=5)
folder = Path(tempfile.mkdtemp(prefix="pixcolor-model-"))
generator.save_pretrained(folder / "my-colorizer")
for path in sorted((folder / "my-colorizer").iterdir()):
    print(f"{path.name:18s} {path.stat().st_size:>9,d} bytes")
print(json.dumps(json.loads((folder / "my-colorizer" / "config.json").read_text()), indent=1))

# %%
# Reload
# ------
# ``from_pretrained`` rebuilds the network from ``config.json`` and loads the weights with
# ``strict=True``: a missing, unexpected or mis-shaped tensor is an error that names it,
# never a silently half-loaded model. It returns the model in eval mode.

again = pixcolor.UNetGenerator.from_pretrained(folder / "my-colorizer")
generator.eval()
lightness = torch.rand(1, 1, 64, 64) * 2 - 1  # normalised L, (B, 1, H, W)
with torch.no_grad():
    same = torch.equal(generator(lightness), again(lightness))
print("same predictions after reloading:", same)

# The same directory works wherever a model name is accepted:
colorizer = pixcolor.Colorizer.from_pretrained(folder / "my-colorizer", device="cpu")
print(colorizer)

# %%
# Push to the Hub (mocked)
# ------------------------
# ``push_to_hub`` creates the repository if needed, writes the two files to a temporary
# folder with ``save_pretrained`` and uploads that folder in one commit. The mock records
# each call; ``upload_folder`` is given a stand-in that lists the files it would upload.

uploaded = {}


def fake_upload_folder(*, folder_path: str, **kwargs: object) -> str:
    uploaded.update({p.name: p.stat().st_size for p in sorted(Path(folder_path).iterdir())})
    return "CommitInfo(...)"  # what the real client returns describes the commit


with mock.patch("huggingface_hub.HfApi") as hf_api:
    hf_api.return_value.upload_folder.side_effect = fake_upload_folder
    generator.push_to_hub("your-name/my-colorizer", private=True)

api = hf_api.return_value
print("HfApi(...)          ", hf_api.call_args)
print("create_repo(...)    ", api.create_repo.call_args)
upload_args = api.upload_folder.call_args.kwargs  # folder_path: a temporary folder, gone
print("upload_folder(...)  ", {k: v for k, v in upload_args.items() if k != "folder_path"})
print("files it would send ", uploaded)

# %%
# On the command line the push is ``pixcolor push DIRECTORY your-name/my-colorizer``.
# Once really pushed, anyone loads it by its repo id, on the command line too
# (``pixcolor colorize photo.jpg --model your-name/my-colorizer``)::
#
#     colorizer = pixcolor.Colorizer.from_pretrained("your-name/my-colorizer")
#
# Downloads go through the Hugging Face cache, so the second time needs no network;
# ``revision=``, ``token=`` (private repositories), ``local_files_only=True`` and
# ``HF_HUB_OFFLINE=1`` are honoured.
#
# Offline and not cached
# ----------------------
# Without a network and without a cached copy, loading fails with one
# :class:`pixcolor.ModelNotFoundError` that says what to do. ``local_files_only=True``
# (like ``HF_HUB_OFFLINE=1``) guarantees no request is made; an empty cache folder makes
# sure nothing is found:

try:
    pixcolor.Colorizer.from_pretrained(
        "your-name/my-colorizer", local_files_only=True, cache_dir=folder / "empty-cache"
    )
except pixcolor.ModelNotFoundError as error:
    print(type(error).__name__, ":", error)

import shutil  # noqa: E402

shutil.rmtree(folder)  # the model was in a temporary folder
