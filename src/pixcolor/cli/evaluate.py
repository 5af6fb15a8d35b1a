"""``pixcolor evaluate``: score a model beside the gray baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pixcolor.cli._common import (
    MODEL_HELP,
    RENDER_SIZE_HELP,
    add_network_options,
    colorizer_from_args,
    finite,
    positive_int,
)

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on colour photos or videos beside the gray baselines",
        description="Colorize every photo in DATA from its luminance and compare with the original: "
        "PSNR, SSIM, colourfulness, delta-CF, CIEDE2000, beside two gray baselines (ab = 0, PIL luma). "
        "For colour videos (a video file, or a folder holding videos and no photos): each clip is "
        "turned gray, colourised with and without the temporal filter (codec included) and scored "
        "frame by frame: PSNR, colourfulness, delta-CF and flicker (mean frame-to-frame change of "
        "a/b) beside the truth's own flicker.",
    )
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "data",
        help="folder of colour photos, a colour photo, a colour video, or a folder of videos",
    )
    p.add_argument("--render-size", type=positive_int, help=RENDER_SIZE_HELP)
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
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="photos (or a video's frames) per network batch (default: 8)",
    )
    add_network_options(p)
    p.add_argument(
        "--json",
        dest="json_path",
        default=None,
        help="also write the results to this JSON file (default: print only)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor._atomic import write_atomically

    out = Path(args.json_path) if args.json_path else None
    if out is not None:  # before any work: the results are written last
        _check_json_path(out, args.overwrite)
    colorizer = colorizer_from_args(args.model, args)
    videos = _videos(Path(args.data))
    if videos and args.hints:
        raise ValueError(f"--hints scores photos; {args.data!r} holds videos")
    if videos:
        results: dict[str, Any] = _evaluate_videos(colorizer, videos, args)
        table = None
    elif args.hints:
        from pixcolor.hint_eval import evaluate_hints, format_hint_table

        if any(n < 0 for n in args.hints):
            raise ValueError(f"--hints must be >= 0, got {min(args.hints)}")
        results = evaluate_hints(
            colorizer, args.data, args.hints, seed=args.hint_seed,
            render_size=args.render_size, batch_size=args.batch_size,
        )  # fmt: skip
        table = format_hint_table(results)
    else:
        from pixcolor.metrics import evaluate, format_table

        results = evaluate(
            colorizer, args.data, render_size=args.render_size, batch_size=args.batch_size
        )
        table = format_table(results)
    results["model_name"] = str(args.model)
    results["data"] = str(args.data)
    if table is not None:
        print(table)
    if out is not None:
        text = json.dumps(finite(results), indent=2, allow_nan=False) + "\n"
        write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"wrote {out}")
    return 0


def _check_json_path(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise FileExistsError(
            f"--json {out} is a folder; give a file path such as {out / 'results.json'}"
        )
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"--json {out} exists; pass --overwrite to replace it or choose another path"
        )
    folder = out.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"--json {out}: its folder {str(folder)!r} {what}; create it first")


def _videos(data: Path) -> list[Path]:
    """The videos to score: ``data`` if it is one, else those of a folder without photos."""
    from pixcolor._video_io import is_video_file
    from pixcolor.data import find_images

    if data.is_file():
        return [data] if is_video_file(data) else []
    if not data.is_dir() or find_images(data):
        return []
    return sorted(p for p in data.rglob("*") if p.is_file() and is_video_file(p))


def _evaluate_videos(
    colorizer: Any, videos: list[Path], args: argparse.Namespace
) -> dict[str, Any]:
    from pixcolor.video_metrics import evaluate_video, format_video_table

    clips = []
    for path in videos:
        result = evaluate_video(
            colorizer, path, render_size=args.render_size, batch_size=args.batch_size
        )
        print(format_video_table(result))
        clips.append(result)
    return {"videos": clips}
