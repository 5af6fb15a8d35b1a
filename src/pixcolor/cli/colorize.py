"""``pixcolor colorize``: photos in, colourised photos out (files, folders, globs)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pixcolor.cli._common import PRECISION_HELP, PRECISIONS, RENDER_SIZE_HELP

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "colorize",
        help="colorize photos (files, folders, globs)",
        description="Colorize black-and-white photos at full resolution. Outputs keep each input's format, "
        "JPEG quality and ICC profile, mirror folder structure under -o, are written atomically, and are "
        "skipped when they exist (so an interrupted run resumes). Inputs are never overwritten.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns"
    )
    p.add_argument(
        "-o", "--output", default="colorized", help="output folder (default: ./colorized)"
    )
    p.add_argument(
        "--model",
        default=None,
        help="model directory, preset name or Hub repo id (default: the bundled model)",
    )
    p.add_argument(
        "--render-size",
        type=int,
        help=RENDER_SIZE_HELP,
    )
    p.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="chroma factor: 0 gray, 1 as predicted, >1 more vivid",
    )
    p.add_argument(
        "--hints",
        metavar="JSON",
        help='colour hints: a JSON list [{"x": 120, "y": 80, "color": "#2e8b57", "radius": 4}, ...] '
        "in the input's pixels (one input), or an object mapping file names to such lists",
    )
    p.add_argument(
        "--hint-image",
        metavar="PNG",
        help="an RGBA image of the input's size whose opaque pixels are painted colour hints "
        "(one input)",
    )
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (never inputs)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor.batch import colorize_files
    from pixcolor.colorizer import Colorizer
    from pixcolor.hints import load_hints

    hints = load_hints(args.hints) if args.hints else None
    if args.hint_image and not os.path.isfile(args.hint_image):
        raise FileNotFoundError(f"--hint-image {args.hint_image!r} does not exist")
    colorizer = Colorizer.from_pretrained(args.model, device=args.device, precision=args.precision)
    report = colorize_files(
        colorizer, args.inputs, args.output, recursive=args.recursive, overwrite=args.overwrite,
        render_size=args.render_size, saturation=args.saturation, batch_size=args.batch_size,
        progress=not args.no_progress, hints=hints, hint_image=args.hint_image,
    )  # fmt: skip
    for path, reason in report.failed.items():
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"{report.summary()} -> {args.output}")
    return 1 if report.failed else 0
