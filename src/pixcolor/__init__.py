"""pixcolor: automatic colorization of black-and-white photographs.

A U-Net generator predicts the a/b channels of CIE L*a*b* from the L channel; a PatchGAN
discriminator judges (L, ab) pairs (pix2pix, Isola et al. 2017).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pixcolor import hints, images, lab, spread
    from pixcolor._inference import InferenceModel
    from pixcolor._temporal import TemporalFilter
    from pixcolor.colorizer import Colorizer
    from pixcolor.convert import convert_fastai
    from pixcolor.convert_deoldify import convert_deoldify
    from pixcolor.data import PhotoFolder, prepare_batch, split_files
    from pixcolor.errors import (
        CheckpointError,
        ClusterError,
        DiskSpaceError,
        ImageError,
        ImageNotFoundError,
        ModelNotFoundError,
        NoImagesError,
        PixcolorError,
        VideoError,
    )
    from pixcolor.hints import Hint, load_hints
    from pixcolor.models import (
        DeOldifyConfig,
        DeOldifyGenerator,
        PatchDiscriminator,
        PatchDiscriminatorConfig,
        UNetConfig,
        UNetGenerator,
    )
    from pixcolor.presets import PRESETS, Preset
    from pixcolor.training import Callback, Trainer, TrainerConfig

# What ``import pixcolor`` offers, imported on first use (PEP 562): the command line's
# ``--help`` and the start of a run then do not wait for torch, and Ctrl-C while torch
# loads ends like Ctrl-C anywhere else. name -> (module, attribute; None: the module).
_LAZY: dict[str, tuple[str, str | None]] = {
    "hints": ("pixcolor.hints", None),
    "images": ("pixcolor.images", None),
    "lab": ("pixcolor.lab", None),
    "spread": ("pixcolor.spread", None),
    "InferenceModel": ("pixcolor._inference", "InferenceModel"),
    "TemporalFilter": ("pixcolor._temporal", "TemporalFilter"),
    "Colorizer": ("pixcolor.colorizer", "Colorizer"),
    "convert_fastai": ("pixcolor.convert", "convert_fastai"),
    "convert_deoldify": ("pixcolor.convert_deoldify", "convert_deoldify"),
    "PhotoFolder": ("pixcolor.data", "PhotoFolder"),
    "prepare_batch": ("pixcolor.data", "prepare_batch"),
    "split_files": ("pixcolor.data", "split_files"),
    "CheckpointError": ("pixcolor.errors", "CheckpointError"),
    "ClusterError": ("pixcolor.errors", "ClusterError"),
    "DiskSpaceError": ("pixcolor.errors", "DiskSpaceError"),
    "ImageError": ("pixcolor.errors", "ImageError"),
    "ImageNotFoundError": ("pixcolor.errors", "ImageNotFoundError"),
    "ModelNotFoundError": ("pixcolor.errors", "ModelNotFoundError"),
    "NoImagesError": ("pixcolor.errors", "NoImagesError"),
    "PixcolorError": ("pixcolor.errors", "PixcolorError"),
    "VideoError": ("pixcolor.errors", "VideoError"),
    "Hint": ("pixcolor.hints", "Hint"),
    "load_hints": ("pixcolor.hints", "load_hints"),
    "DeOldifyConfig": ("pixcolor.models", "DeOldifyConfig"),
    "DeOldifyGenerator": ("pixcolor.models", "DeOldifyGenerator"),
    "PatchDiscriminator": ("pixcolor.models", "PatchDiscriminator"),
    "PatchDiscriminatorConfig": ("pixcolor.models", "PatchDiscriminatorConfig"),
    "UNetConfig": ("pixcolor.models", "UNetConfig"),
    "UNetGenerator": ("pixcolor.models", "UNetGenerator"),
    "PRESETS": ("pixcolor.presets", "PRESETS"),
    "Preset": ("pixcolor.presets", "Preset"),
    "Callback": ("pixcolor.training", "Callback"),
    "Trainer": ("pixcolor.training", "Trainer"),
    "TrainerConfig": ("pixcolor.training", "TrainerConfig"),
}

__all__ = [
    "PRESETS",
    "Callback",
    "CheckpointError",
    "ClusterError",
    "Colorizer",
    "DeOldifyConfig",
    "DeOldifyGenerator",
    "DiskSpaceError",
    "Hint",
    "ImageError",
    "ImageNotFoundError",
    "InferenceModel",
    "ModelNotFoundError",
    "NoImagesError",
    "PatchDiscriminator",
    "PatchDiscriminatorConfig",
    "PhotoFolder",
    "PixcolorError",
    "Preset",
    "TemporalFilter",
    "Trainer",
    "TrainerConfig",
    "UNetConfig",
    "UNetGenerator",
    "VideoError",
    "__version__",
    "convert_deoldify",
    "convert_fastai",
    "hints",
    "images",
    "lab",
    "load_hints",
    "prepare_batch",
    "split_files",
    "spread",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'pixcolor' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
