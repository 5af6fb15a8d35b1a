"""The ``pixcolor`` command: ``train``, ``evaluate``, ``colorize``, ``convert``, ``export``.

Each subcommand lives in a small function below; run ``pixcolor COMMAND --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]


_RENDER_SIZE_HELP = (
    "resolution the network sees (default: the model's, from its config; 256 for most)"
)


_PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # pixcolor.colorizer.PRECISIONS
_PRECISION_HELP = (
    "the network's arithmetic: auto (bf16 on CPUs with native bfloat16, else fp32), fp32, "
    "bf16 or fp16"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pixcolor`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from pixcolor.errors import PixcolorError

    try:
        return int(args.func(args) or 0)
    except (PixcolorError, FileNotFoundError, FileExistsError, ValueError, ImportError) as err:
        print(f"pixcolor {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pixcolor {args.command}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pixcolor`` command (also used to document it)."""
    from pixcolor import __version__

    parser = argparse.ArgumentParser(
        prog="pixcolor", description="Colorize black-and-white photographs."
    )
    parser.add_argument("--version", action="version", version=f"pixcolor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_colorize(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_convert(sub)
    _add_export(sub)
    _add_push(sub)
    return parser


def _add_colorize(sub: Any) -> None:
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
        help=_RENDER_SIZE_HELP,
    )
    p.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="chroma factor: 0 gray, 1 as predicted, >1 more vivid",
    )
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--precision", choices=_PRECISIONS, default="auto", help=_PRECISION_HELP)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (never inputs)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_colorize)


def _colorize(args: argparse.Namespace) -> int:
    from pixcolor.batch import colorize_files
    from pixcolor.colorizer import Colorizer

    colorizer = Colorizer.from_pretrained(args.model, device=args.device, precision=args.precision)
    report = colorize_files(
        colorizer, args.inputs, args.output, recursive=args.recursive, overwrite=args.overwrite,
        render_size=args.render_size, saturation=args.saturation, batch_size=args.batch_size,
        progress=not args.no_progress,
    )  # fmt: skip
    for path, reason in report.failed.items():
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"{report.summary()} -> {args.output}")
    return 1 if report.failed else 0


def _add_train(sub: Any) -> None:
    from pixcolor.training.recipes import RECIPES

    p = sub.add_parser(
        "train",
        help="train a colorization model on a folder of colour photos",
        description="Train a generator (L1 warm-up, then L1 x lambda + GAN) on a folder of colour photos. "
        "Writes checkpoints, metrics.jsonl, losses.png and samples/ into --output. Runs under "
        "`torchrun --nproc_per_node N -m pixcolor train ...` with DistributedDataParallel.",
        epilog="recipes: " + "; ".join(f"{k}: {v.description}" for k, v in RECIPES.items()),
    )
    p.add_argument("data", help="folder of colour photos (searched recursively)")
    p.add_argument("--output", "-o", required=True, help="run directory to create (or to resume)")
    p.add_argument(
        "--recipe",
        default="tiny",
        choices=sorted(RECIPES),
        help="architecture and defaults (default: tiny)",
    )
    p.add_argument("--val", help="folder of validation photos")
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        help="continue the run in --output (or from this checkpoint)",
    )
    p.add_argument("--size", type=int, dest="image_size", help="training crop size")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--pretrain-epochs", type=int, help="epochs of L1-only warm-up")
    p.add_argument("--gan-epochs", type=int, help="epochs of L1 x lambda + GAN")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--lr-g", type=float)
    p.add_argument("--lr-d", type=float)
    p.add_argument("--pretrain-lr", type=float)
    p.add_argument(
        "--lr-decay",
        choices=("none", "linear", "cosine"),
        help="decay every learning rate towards 0 within each phase (default none)",
    )
    p.add_argument("--lambda-l1", type=float)
    p.add_argument("--gan-mode", choices=("vanilla", "lsgan", "hinge"))
    p.add_argument(
        "--real-label",
        type=float,
        help="discriminator target for real patches (0.9: label smoothing)",
    )
    p.add_argument("--grad-accum-steps", type=int)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--channels-last", action="store_true", default=None)
    p.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the networks"
    )
    p.add_argument("--workers", type=int, dest="num_workers", help="DataLoader workers (default 2)")
    p.add_argument(
        "--save-every", type=int, dest="save_every_steps", help="also checkpoint every N steps"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: cuda if available)")
    p.add_argument(
        "--no-pretrained-encoder",
        action="store_true",
        help="do not download ImageNet weights (resnet18 recipe)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)


_TRAINER_FLAGS = (
    "image_size", "batch_size", "pretrain_epochs", "gan_epochs", "max_steps", "lr_g", "lr_d", "pretrain_lr",
    "lr_decay", "lambda_l1", "gan_mode", "real_label", "grad_accum_steps", "precision", "channels_last", "compile",
    "num_workers", "save_every_steps", "seed", "device",
)  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from pixcolor import PatchDiscriminator, Trainer, TrainerConfig, UNetGenerator
    from pixcolor.training import recipes

    run = Path(args.output)
    overrides = {k: getattr(args, k) for k in _TRAINER_FLAGS if getattr(args, k) is not None}
    saved = run / "config.json"
    if args.resume is not None:
        if not saved.is_file():
            raise FileNotFoundError(
                f"--resume: {run} holds no training run (no config.json); start it without --resume"
            )
        config = json.loads(saved.read_text(encoding="utf-8"))
        gen = UNetGenerator.from_config(config["generator"])
        disc = (
            PatchDiscriminator.from_config(config["discriminator"])
            if config["discriminator"]
            else None
        )
        trainer_values = {**config["trainer"], **overrides}
    else:
        if run.exists() and any(run.iterdir()):
            raise FileExistsError(
                f"--output {run} is not empty; pass --resume to continue that run, or choose a new directory"
            )
        extra = {"pretrained_encoder": False} if args.no_pretrained_encoder else {}
        gen, disc, defaults = recipes.build(args.recipe, **extra)
        trainer_values = {**defaults, **overrides}
    trainer_values.update(output_dir=str(run), progress=not args.no_progress)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        backend = (
            "nccl"
            if torch.cuda.is_available() and trainer_values.get("device") != "cpu"
            else "gloo"
        )
        dist.init_process_group(backend)
    try:
        trainer = Trainer(gen, disc, TrainerConfig(**trainer_values))
        state = trainer.fit(args.data, args.val, resume=args.resume)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if trainer.is_main_process:
        last = state["history"][-1] if state["history"] else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float))
        print(f"trained {state['epoch']} epoch(s), {state['global_step']} steps; {shown}")
        print(f"generator: {run / 'generator'}   best: {run / 'best' / 'generator'}   logs: {run}")
    return 0


def _add_evaluate(sub: Any) -> None:
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
        help=_RENDER_SIZE_HELP,
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--precision", choices=_PRECISIONS, default="auto", help=_PRECISION_HELP)
    p.add_argument(
        "--json",
        dest="json_path",
        default="evaluation.json",
        help="where to write the results (default evaluation.json)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from pixcolor._atomic import write_atomically
    from pixcolor.colorizer import Colorizer
    from pixcolor.metrics import evaluate, format_table

    out = Path(args.json_path)
    if out.exists() and not args.overwrite:
        raise FileExistsError(
            f"--json {out} exists; pass --overwrite to replace it or choose another path"
        )
    colorizer = Colorizer.from_pretrained(args.model, device=args.device, precision=args.precision)
    results = evaluate(
        colorizer, args.data, render_size=args.render_size, batch_size=args.batch_size
    )
    results["model_name"] = str(args.model)
    results["data"] = str(args.data)
    print(format_table(results))
    text = json.dumps(_finite(results), indent=2, allow_nan=False) + "\n"
    write_atomically(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"wrote {out}")
    return 0


def _add_convert(sub: Any) -> None:
    from pixcolor.convert import FASTAI_SOURCES

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
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from pixcolor.convert import convert_fastai

    out = convert_fastai(args.checkpoint, args.output, source=args.source, overwrite=args.overwrite)
    print(
        f"wrote {out}; colorize with: pixcolor colorize photo.jpg --model {Path(out) / 'generator'}"
    )
    return 0


def _add_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a generator to ONNX",
        description="Export a generator to ONNX with dynamic batch, height and width (multiples of its stride). "
        "Input 'L' is normalised L, output 'ab' normalised ab; the constants are in the file's metadata.",
    )
    p.add_argument("format", choices=("onnx",), help="target format")
    p.add_argument("model", help="model directory, preset name or Hub repo id")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (16-20, default 17)")
    p.add_argument("--static", action="store_true", help="fix the input size to --size")
    p.add_argument(
        "--size", type=int, default=256, help="example (or, with --static, the only) input side"
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from pixcolor import UNetGenerator
    from pixcolor.export import export_onnx

    model = UNetGenerator.from_pretrained(args.model)
    out = export_onnx(model, args.output, opset=args.opset, dynamic=not args.static,
                      input_size=(args.size, args.size), overwrite=args.overwrite)  # fmt: skip
    print(f"wrote {out}")
    return 0


def _add_push(sub: Any) -> None:
    p = sub.add_parser(
        "push",
        help="upload a model to the Hugging Face Hub",
        description="Upload a model directory (config.json + model.safetensors) to a Hub repository, "
        "creating it if needed. Authenticate with --token or `hf auth login`.",
    )
    p.add_argument("model", help="model directory (e.g. runs/x/generator), preset or repo id")
    p.add_argument("repo_id", help="target repository, e.g. user/pixcolor-coco")
    p.add_argument(
        "--subfolder", help="folder inside the repository (the coco preset uses 'generator')"
    )
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to push to")
    p.add_argument("--token", help="Hugging Face token (default: the logged-in one)")
    p.add_argument("--message", help="commit message")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    from pixcolor import UNetGenerator

    model = UNetGenerator.from_pretrained(args.model)
    info = model.push_to_hub(args.repo_id, subfolder=args.subfolder, token=args.token,
                             private=args.private or None, revision=args.revision,
                             commit_message=args.message)  # fmt: skip
    print(f"pushed {args.model} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null (a perfect PSNR is inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
