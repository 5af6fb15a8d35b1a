"""pixcolor: automatic colorization of black-and-white photographs.

A U-Net generator predicts the a/b channels of CIE L*a*b* from the L channel; a PatchGAN
discriminator judges (L, ab) pairs (pix2pix, Isola et al. 2017).
"""

from __future__ import annotations

__version__ = "0.1.0"

from pixcolor import hints, images, lab, spread
from pixcolor._inference import InferenceModel
from pixcolor._temporal import TemporalFilter
from pixcolor.colorizer import Colorizer
from pixcolor.convert import convert_fastai
from pixcolor.convert_deoldify import convert_deoldify
from pixcolor.data import PhotoFolder, prepare_batch, split_files
from pixcolor.errors import (
    CheckpointError,
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

__all__ = [
    "PRESETS",
    "Callback",
    "CheckpointError",
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
