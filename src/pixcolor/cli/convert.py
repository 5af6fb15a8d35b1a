"""``pixcolor convert``: import checkpoints from other colorization code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    from pixcolor._fastai_sources import FASTAI_SOURCES

    p = sub.add_parser(
        "convert",
        help="import a checkpoint from other colorization code",
        description="Convert a fastai DynamicUnet(resnet18/34) state dict (e.g. the tutorial's res18-unet.pt, "
        "or a whole MainModel with net_G/net_D) into pixcolor's config.json + model.safetensors. The file is "
        "read with torch.load(weights_only=True): anything but tensors is refused.",
    )
    p.add_argument("format", choices=("fastai",), help="source format")
    p.add_argument("checkpoint", help="the .pt/.pth state dict")
    p.add_argument("output", help="directory to write (generator/ and, if present, discriminator/)")
    p.add_argument("--source", default="tutorial", choices=sorted(FASTAI_SOURCES),
                   help="normalisation the source used (tutorial: L/50-1, ab/110; seed001: L/100, ab/128)")  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty output directory"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor.convert import convert_fastai

    out = convert_fastai(args.checkpoint, args.output, source=args.source, overwrite=args.overwrite)
    print(
        f"wrote {out}; colorize with: pixcolor colorize photo.jpg --model {Path(out) / 'generator'}"
    )
    return 0
