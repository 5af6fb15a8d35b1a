"""``pixcolor colorize``: photos and videos in, colourised ones out (files, folders, globs),
on this machine or, for photos, on a Ray cluster (``--engine ray``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pixcolor._signals import term_as_interrupt
from pixcolor._video_io import PRESETS
from pixcolor.cli._common import (
    MODEL_HELP,
    RENDER_SIZE_HELP,
    add_network_options,
    colorizer_from_args,
    non_negative_int,
    non_negative_number,
    positive_int,
)

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "colorize",
        help="colorize photos and videos (files, folders, globs)",
        description="Colorize black-and-white photos and videos at full resolution. Outputs keep each input's format, "
        "JPEG quality and ICC profile, mirror folder structure under -o, are written atomically, and are "
        "skipped when they exist (so an interrupted run resumes). Inputs are never overwritten. Videos "
        "(mp4, mkv, avi, ...: the video extra, pip install 'pixcolor[video]') keep their frame count, "
        "timestamps and audio; their colour is steadied over time. Inputs and output may be fsspec "
        "URIs (s3://bucket/photos, gs://..., file:///...) for photos; videos are local files.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns"
    )
    p.add_argument(
        "-o", "--output", default="colorized", help="output folder (default: ./colorized)"
    )
    p.add_argument("--model", default=None, help=MODEL_HELP + " (default: bundled)")
    p.add_argument("--render-size", type=positive_int, help=RENDER_SIZE_HELP)
    p.add_argument(
        "--saturation",
        type=non_negative_number,
        default=1.0,
        help="chroma factor: 0 gray, 1 as predicted (default), >1 more vivid",
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
    add_network_options(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=4,
        help="photos (or a video's frames) per network batch (default: 4)",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (never inputs, the --hints and --hint-image files included)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    video = p.add_argument_group("videos")
    video.add_argument(
        "--temporal",
        choices=("auto", "none"),
        default="auto",
        help="auto: steady the colour over time (default); none: each frame on its own",
    )
    video.add_argument(
        "--codec",
        help="video encoder, e.g. libx264, libx265, libvpx-vp9 (default: the source's when "
        "it has a constant-quality encoder, else H.264)",
    )
    video.add_argument(
        "--crf",
        type=non_negative_int,
        help="constant rate factor, lower is better (default: 17 for H.264, 20 for HEVC, "
        "24 for VP9 and AV1)",
    )
    video.add_argument(
        "--preset",
        choices=PRESETS,
        help="x264/x265 speed preset: slower makes smaller files at the same --crf "
        "(default: veryfast with P-frames only for H.264, medium for HEVC; a preset given "
        "here is x264's own, B-frames included)",
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write a JSON Lines report of every file (written, skipped, or failed and why)",
    )
    ray = p.add_argument_group(
        "engine",
        "where the work runs: this process, or a Ray cluster (pip install 'pixcolor[ray]')",
    )
    ray.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: an actor pool on Ray Data, one model per worker",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to join (auto, ray://HEAD:10001); default: RAY_ADDRESS, else a "
        "local Ray instance started for this run",
    )
    ray.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Ray workers, each holding a model (default: as many as the cluster's CPUs, or "
        "GPUs / --gpus-per-worker)",
    )
    ray.add_argument(
        "--cpus-per-worker",
        type=float,
        metavar="F",
        help="CPUs each Ray worker reserves, also its torch threads (default: 1)",
    )
    ray.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="F",
        help="GPUs each Ray worker reserves (0.25: four workers share a GPU; default: 0, CPU)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor.hints import load_hints

    hints = load_hints(args.hints) if args.hints else None
    if args.hint_image and not os.path.isfile(args.hint_image):
        raise FileNotFoundError(f"--hint-image {args.hint_image!r} does not exist")
    options = {
        "recursive": args.recursive, "overwrite": args.overwrite, "render_size": args.render_size,
        "saturation": args.saturation, "batch_size": args.batch_size,
        "progress": not args.no_progress, "report_path": args.report,
    }  # fmt: skip
    if args.engine == "ray":
        if hints is not None or args.hint_image:
            raise ValueError(
                "--hints and --hint-image apply with --engine local (hints are for a few "
                "photos; --engine ray is for archives)"
            )
        if args.backend != "torch" or args.calibration:
            raise ValueError(
                f"--backend {args.backend} and --calibration apply with --engine local; "
                "the Ray engine's workers run the torch backend"
            )
        _refuse_video_options(args)
        from pixcolor.distributed import colorize_files as colorize_on_ray

        report = colorize_on_ray(
            args.inputs, args.output, model=args.model, device=args.device,
            precision=args.precision, address=args.ray_address, workers=args.workers,
            cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
            **options,
        )  # fmt: skip
    else:
        _refuse_ray_options(args)
        from pixcolor.batch import colorize_files, plan_outputs

        if hints is not None or args.hint_image:  # they are inputs too: never replaced
            also = {"hints file": args.hints, "hint image": args.hint_image}
            plan_outputs(args.inputs, args.output, recursive=args.recursive, also_inputs=also)

        colorizer = colorizer_from_args(args.model, args)
        video_options = {
            "temporal": args.temporal, "codec": args.codec, "crf": args.crf, "preset": args.preset,
        }  # fmt: skip
        with term_as_interrupt():
            report = colorize_files(
                colorizer, args.inputs, args.output, hints=hints, hint_image=args.hint_image,
                hints_source=args.hints, video_options=video_options, **options,
            )  # fmt: skip
    for path, reason in report.failed.items():
        print(f"failed: {path}: {reason}", file=sys.stderr)
    if report.hints_not_applied:
        print(_hints_not_applied(report.hints_not_applied), file=sys.stderr)
    print(f"{report.summary()} -> {args.output}")
    if args.report:
        print(f"report: {args.report}")
    return 1 if report.failed else 0


def _hints_not_applied(outputs: list[Any]) -> str:
    """One line: the hints of these inputs were not applied, since their outputs existed."""
    count = len(outputs)
    shown = ", ".join(str(p) for p in outputs[:3]) + (", ..." if count > 3 else "")
    whose = (
        "file whose output already exists" if count == 1 else "files whose outputs already exist"
    )
    them = "it" if count == 1 else "them"
    return (
        f"note: the hints were not applied to {count} {whose} "
        f"({shown}); pass --overwrite to colorize {them} again with the hints"
    )


def _refuse_ray_options(args: argparse.Namespace) -> None:
    given = [
        flag
        for flag, value in (
            ("--ray-address", args.ray_address),
            ("--workers", args.workers),
            ("--cpus-per-worker", args.cpus_per_worker),
            ("--gpus-per-worker", args.gpus_per_worker or None),
        )
        if value is not None
    ]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise ValueError(f"{', '.join(given)} only {verb} with --engine ray")


def _refuse_video_options(args: argparse.Namespace) -> None:
    given = [
        flag
        for flag, value in (
            ("--temporal", None if args.temporal == "auto" else args.temporal),
            ("--codec", args.codec),
            ("--crf", args.crf),
            ("--preset", args.preset),
        )
        if value is not None
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} with "
            "--engine local (the Ray engine takes photos)"
        )
