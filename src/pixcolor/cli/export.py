"""``pixcolor export``: a generator to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixcolor.cli._common import MODEL_HELP

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a generator to ONNX",
        description="Export a generator to ONNX with dynamic batch, height and width (multiples of its stride). "
        "Input 'L' is normalised L, output 'ab' normalised ab; the constants are in the file's metadata. "
        "A hint model (such as bundled) also takes 'hints' and traces its edge-aware spreads: its export "
        "takes minutes (3 on 2 CPU cores), a plain U-Net's seconds.",
    )
    p.add_argument("format", choices=("onnx",), help="target format")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset (16-20; default 17, or 18 for hint models with hint_spread)",
    )
    p.add_argument("--static", action="store_true", help="fix the input size to --size")
    p.add_argument(
        "--size", type=int, default=256, help="example (or, with --static, the only) input side"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor import UNetGenerator
    from pixcolor.export import export_onnx

    if Path(args.output).exists() and not args.overwrite:
        raise FileExistsError(f"{args.output!r} exists; pass --overwrite to replace it")
    model = UNetGenerator.from_pretrained(args.model)
    out = export_onnx(model, args.output, opset=args.opset, dynamic=not args.static,
                      input_size=(args.size, args.size), overwrite=args.overwrite)  # fmt: skip
    print(f"wrote {out}")
    return 0
