"""``pixcolor evaluate``: score a model beside the gray baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pixcolor.cli._common import RENDER_SIZE_HELP, add_network_options, colorizer_from_args, finite

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on colour photos beside the gray baselines",
        description="Colorize every photo in DATA from its luminance and compare with the original: "
        "PSNR, SSIM, colourfulness, delta-CF, CIEDE2000, beside two gray baselines (ab = 0, PIL luma).",
    )
    p.add_argument("model", help="model directory, preset name or Hub repo id")
    p.add_argument("data", help="folder of colour photos")
    p.add_argument(
        "--render-size",
        type=int,
        help=RENDER_SIZE_HELP,
    )
    p.add_argument(
        "--hints",
        type=int,
        action="append",
        metavar="N",
        help="evaluate with N colour hints per photo sampled from the truth (repeatable: "
        "--hints 0 --hints 10), beside the model-free baselines (Levin et al., Gaussian spread)",
    )
    p.add_argument(
        "--hint-seed", type=int, default=0, help="seed of the hint positions (default 0)"
    )
    p.add_argument("--batch-size", type=int, default=8)
    add_network_options(p)
    p.add_argument(
        "--json",
        dest="json_path",
        default="evaluation.json",
        help="where to write the results (default evaluation.json)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor._atomic import write_atomically
    from pixcolor.metrics import evaluate, format_table

    out = Path(args.json_path)
    if out.exists() and not args.overwrite:
        raise FileExistsError(
            f"--json {out} exists; pass --overwrite to replace it or choose another path"
        )
    colorizer = colorizer_from_args(args.model, args)
    if args.hints:
        from pixcolor.hint_eval import evaluate_hints, format_hint_table

        if any(n < 0 for n in args.hints):
            raise ValueError(f"--hints must be >= 0, got {min(args.hints)}")
        results = evaluate_hints(
            colorizer, args.data, args.hints, seed=args.hint_seed,
            render_size=args.render_size, batch_size=args.batch_size,
        )  # fmt: skip
        table = format_hint_table(results)
    else:
        results = evaluate(
            colorizer, args.data, render_size=args.render_size, batch_size=args.batch_size
        )
        table = format_table(results)
    results["model_name"] = str(args.model)
    results["data"] = str(args.data)
    print(table)
    text = json.dumps(finite(results), indent=2, allow_nan=False) + "\n"
    write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"wrote {out}")
    return 0
