"""Model presets: short names for ``from_pretrained``, and the checkpoint formats they use.

A :class:`Preset` says where a model's files are and what they hold. Most presets are in
pixcolor's own format (``config.json`` + ``model.safetensors``), inside the package or in a
Hugging Face Hub repository. A preset can also point at a single checkpoint file in another
format, such as a fastai ``DynamicUnet`` state dict saved with ``torch.save``, at a pinned
commit of a Hub repository. The first ``from_pretrained`` of such a preset downloads the
file, reads it with ``torch.load(weights_only=True)`` (tensors only: no code in it is run),
converts it with the converter that :data:`FORMATS` names for its ``format``, and saves the
result as ``config.json`` + ``model.safetensors`` under :func:`cache_root`. Every later load,
online or offline, reads only that conversion.

Adding a format is one entry in :data:`FORMATS`: a function ``(checkpoint path, preset) ->
model`` whose model has ``save_pretrained`` (its ``config.json`` records the class, so
``from_pretrained`` of that class loads the conversion). A converter reads the file with
:func:`pixcolor._weights_only.load_weights_only`, naming in ``allowed_globals`` any Python
global its format needs beyond tensors (none for fastai state dicts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLED",
    "FORMATS",
    "PRESETS",
    "CheckpointFormat",
    "Preset",
    "cache_root",
]

PIXCOLOR_FORMAT = "pixcolor"
DEOLDIFY_REPO = "spensercai/DeOldify"
# pixcolor.models.DEOLDIFY_VARIANTS without render_size (importing it here would be circular)
_DEOLDIFY_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "artistic": {"encoder": "resnet34", "decoder": "deep", "nf_factor": 1.5},
    "stable": {"encoder": "resnet101", "decoder": "wide", "nf_factor": 2.0},
    "video": {"encoder": "resnet101", "decoder": "wide", "nf_factor": 2.0},
}
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Preset:
    """A short model name: where its files are and what they hold.

    Args:
        repo_id: Hugging Face Hub repository (``None`` for a model inside the package).
        revision: Branch, tag or commit to load. A preset in another format than
            ``"pixcolor"`` must pin a full 40-character commit hash (its conversion is
            cached under it), unless ``pinned=False``.
        subfolder: Folder inside the repository holding ``config.json`` (pixcolor format).
        path: Folder inside the installed ``pixcolor`` package holding the files (the
            bundled model); used instead of the Hub.
        description: What the model is, in one line, for listings and error messages.
        filename: The checkpoint file inside the repository, for a preset in another format.
        format: ``"pixcolor"`` (``config.json`` + ``model.safetensors``) or a key of
            :data:`FORMATS`, such as ``"fastai"`` (a ``DynamicUnet`` state dict).
        architecture: Config values the converted model must have, e.g.
            ``{"encoder": "resnet18", "in_channels": 1, "out_channels": 2}``; a file that
            converts to anything else is refused.
        normalisation: How the checkpoint's training code scaled its inputs and outputs, as
            the converted model's config takes it (fastai: ``l_center``, ``l_scale``,
            ``ab_scale``). The weights do not record it.
        config: Other config values of the converted model that its checkpoint does not
            record, passed to the converter (DeOldify: ``render_size``).
        size: Download size in bytes (about), for listings and the disk-space check.
        license: The licence of the weights, as their uploader states it.
        provenance: Who made and uploaded the weights, in one line.
        pinned: ``False`` for a converted preset whose commit hash is not known yet:
            ``revision`` may then be a branch. Its conversion is still cached under the
            commit that the branch pointed to when the file was downloaded (the Hugging
            Face cache's ``snapshots/<commit>``), and offline loads find it through the
            cache's ``refs/<branch>``.

    Example:
        >>> import pixcolor
        >>> preset = pixcolor.PRESETS["coco"]
        >>> preset.format, preset.filename
        ('fastai', 'res18-unet.pt')
    """

    repo_id: str | None = None
    revision: str = "main"
    subfolder: str | None = None
    path: str | None = None
    description: str = ""
    filename: str | None = None
    format: str = PIXCOLOR_FORMAT
    architecture: Mapping[str, Any] = field(default_factory=dict)
    normalisation: Mapping[str, float] = field(default_factory=dict)
    size: int | None = None
    license: str | None = None
    provenance: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    pinned: bool = True

    def __post_init__(self) -> None:
        if (self.repo_id is None) == (self.path is None):
            raise ValueError(
                f"a Preset needs exactly one of repo_id and path, got repo_id={self.repo_id!r}, "
                f"path={self.path!r}"
            )
        if self.format != PIXCOLOR_FORMAT:
            if self.repo_id is None or not self.filename:
                raise ValueError(
                    f"a Preset in format {self.format!r} needs repo_id and filename, got "
                    f"repo_id={self.repo_id!r}, filename={self.filename!r}"
                )
            if self.pinned and not _COMMIT.fullmatch(self.revision):
                raise ValueError(
                    f"a Preset in format {self.format!r} must pin a full 40-character commit "
                    f"hash as revision (its conversion is cached under it), got "
                    f"{self.revision!r}; pinned=False allows a branch"
                )
            if not self.revision:
                raise ValueError("a Preset needs a revision (a commit hash or a branch)")

    @property
    def converted(self) -> bool:
        """Whether the preset's file is converted on first use (format other than pixcolor)."""
        return self.format != PIXCOLOR_FORMAT


@dataclass(frozen=True)
class CheckpointFormat:
    """How to turn a checkpoint file of one format into a pixcolor model.

    Args:
        convert: ``convert(checkpoint, preset)`` returns the model (anything with
            ``save_pretrained``, in eval mode) that the file at ``checkpoint`` holds, read
            according to ``preset`` (its ``normalisation`` and ``architecture``). It must
            read the file with :func:`pixcolor._weights_only.load_weights_only` (and may
            name extra allowed globals there), and raise
            :class:`~pixcolor.CheckpointError` for a file it cannot map exactly.
        version: Raise it whenever ``convert`` changes what it writes: conversions cached
            by an earlier version are then rebuilt.
        description: One line for listings.
    """

    convert: Callable[[Path, Preset], Any]
    version: int = 1
    description: str = ""


def _convert_fastai(checkpoint: Path, preset: Preset) -> Any:
    from pixcolor.convert import fastai_generator

    return fastai_generator(checkpoint, dict(preset.normalisation), untrusted=True)


def _convert_deoldify(checkpoint: Path, preset: Preset) -> Any:
    from pixcolor.convert_deoldify import deoldify_from_state_dict, load_deoldify_checkpoint

    state = load_deoldify_checkpoint(checkpoint, untrusted=True)
    return deoldify_from_state_dict(state, source=checkpoint, **dict(preset.config))


FORMATS: dict[str, CheckpointFormat] = {
    "fastai": CheckpointFormat(
        convert=_convert_fastai,
        version=1,
        description="fastai DynamicUnet(resnet18/34) state dict (torch.save), converted by "
        "pixcolor.convert.fastai_generator",
    ),
    "deoldify": CheckpointFormat(
        convert=_convert_deoldify,
        version=1,
        description="DeOldify generator (fastai v1 Learner.save: 'model' state dict, slices "
        "allowed), converted by pixcolor.convert_deoldify.deoldify_from_state_dict",
    ),
}
"""Checkpoint formats a preset can use besides ``"pixcolor"``: ``{format: CheckpointFormat}``."""

BUNDLED = "bundled"
"""Name of the preset inside the package, the default of ``Colorizer.from_pretrained()``."""

PRESETS: dict[str, Preset] = {
    BUNDLED: Preset(
        path="weights/bundled",
        description="small pix2pix U-Net shipped inside pixcolor: works offline (see its README.md)",
        license="MIT",
        provenance="trained by the pixcolor developers (scripts/train_bundled_model.py)",
    ),
    "coco": Preset(
        repo_id="sankhyikii/res18-recolor-unet.pt",
        revision="c32131463195b6edce1e6a885bc26109281f5048",
        filename="res18-unet.pt",
        format="fastai",
        description="the colorization tutorial's ResNet-18 U-Net generator trained on 8k "
        "COCO images, 256 px; third-party weights, quality not measured by pixcolor",
        architecture={"encoder": "resnet18", "in_channels": 1, "out_channels": 2},
        normalisation={"l_center": 50.0, "l_scale": 50.0, "ab_scale": 110.0},
        # torch.save of this architecture's state dict is 124,505,429 bytes; the uploaded
        # file itself could not be measured from here.
        size=124_500_000,
        license="creativeml-openrail-m",
        provenance="uploaded to the Hugging Face Hub by 'sankhyikii' with the note 'gan "
        "generator pretrained model': DynamicUnet(resnet18, n_in=1, n_out=2, 256x256) of "
        "Moein Shariatnia's tutorial 'Colorizing black & white images with U-Net and "
        "conditional GAN' (whose code is MIT-licensed)",
    ),
    **{
        name: Preset(
            repo_id=DEOLDIFY_REPO,
            # The commit of the upload could not be read from here (no Hub access): the
            # branch is followed, and each conversion is cached under the commit it came from.
            revision="main",
            pinned=False,
            filename=filename,
            format="deoldify",
            description=f"DeOldify's {variant} generator (Jason Antic), {about}; "
            "third-party weights, quality not measured by pixcolor",
            architecture=_DEOLDIFY_ARCHITECTURES[variant],
            config={"render_size": render_size},
            size=size,
            license="MIT",
            provenance="DeOldify (github.com/jantic/DeOldify, MIT), the generator saved by "
            f"its fastai v1 Learner as {filename}; mirrored on the Hugging Face Hub by "
            "'spensercai'",
        )
        # 4 bytes x DeOldify's 63.6 M (artistic) and 218.2 M (stable, video) parameters is
        # 254.6 and 872.9 MB; the uploaded files themselves could not be measured from here.
        for name, variant, filename, size, render_size, about in (
            (
                "deoldify",
                "artistic",
                "ColorizeArtistic_gen.pth",
                255_000_000,
                560,
                "vivid colour: ResNet-34 DynamicUnetDeep, 560 px",
            ),
            (
                "deoldify-stable",
                "stable",
                "ColorizeStable_gen.pth",
                874_000_000,
                560,
                "fewer artefacts on portraits and landscapes: ResNet-101 DynamicUnetWide, 560 px",
            ),
            (
                "deoldify-video",
                "video",
                "ColorizeVideo_gen.pth",
                874_000_000,
                336,
                "for film frames, steadier colour: ResNet-101 DynamicUnetWide, 336 px",
            ),
        )
    },
}
"""Model names that ``from_pretrained`` understands: ``{name: Preset}``."""


def cache_root() -> Path:
    """Where pixcolor caches what it derives from models (converted presets, ONNX exports,
    measured inference settings): ``$PIXCOLOR_CACHE``, else ``$XDG_CACHE_HOME/pixcolor``,
    else ``~/.cache/pixcolor``.

    Each conversion is a directory ``converted/<owner>--<repo>/<revision>/<filename>/``
    holding ``config.json``, ``model.safetensors`` and ``conversion.json`` (what was
    converted, from which file, by which pixcolor). Deleting it is safe: the next load
    converts again.

    Returns:
        The directory (it may not exist yet).
    """
    configured = os.environ.get("PIXCOLOR_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "pixcolor"
