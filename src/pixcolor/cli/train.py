"""``pixcolor train``: train a generator on a folder of colour photos."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    from pixcolor._recipes import RECIPES

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
    p.add_argument(
        "--batch-size",
        type=int,
        help="photos per optimizer step and process" + _per_recipe("batch_size"),
    )
    p.add_argument("--pretrain-epochs", type=int, help="epochs of L1-only warm-up")
    p.add_argument("--gan-epochs", type=int, help="epochs of L1 x lambda + GAN")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--lr-g", type=float, help="generator learning rate in the GAN phase" + _per_recipe("lr_g")
    )
    p.add_argument("--lr-d", type=float, help="discriminator learning rate" + _per_recipe("lr_d"))
    p.add_argument(
        "--pretrain-lr",
        type=float,
        help="generator learning rate in the L1 warm-up" + _per_recipe("pretrain_lr"),
    )
    p.add_argument(
        "--lr-decay",
        choices=("none", "linear", "cosine"),
        help="decay every learning rate towards 0 within each phase (default none)",
    )
    p.add_argument(
        "--lambda-l1", type=float, help="weight of L1 in the GAN phase" + _per_recipe("lambda_l1")
    )
    p.add_argument(
        "--gan-mode",
        choices=("vanilla", "lsgan", "hinge"),
        help="adversarial loss" + _per_recipe("gan_mode"),
    )
    p.add_argument(
        "--real-label",
        type=float,
        help="discriminator target for real patches (0.9: label smoothing)",
    )
    p.add_argument(
        "--grad-accum-steps",
        type=int,
        help="micro-batches accumulated per optimizer step (default 1)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        help="training arithmetic: fp32 (default), or on CUDA bf16 / fp16 (mixed precision)",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        default=None,
        help="channels-last memory format (faster on some GPUs; default off)",
    )
    p.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the networks"
    )
    p.add_argument("--workers", type=int, dest="num_workers", help="DataLoader workers (default 2)")
    p.add_argument(
        "--save-every", type=int, dest="save_every_steps", help="also checkpoint every N steps"
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seeds the initial weights, data order, augmentation and dropout (default 0): "
        "the same flags give the same model",
    )
    p.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: cuda if available)")
    p.add_argument(
        "--no-pretrained-encoder",
        action="store_true",
        help="do not download ImageNet weights (resnet18 recipe)",
    )
    p.add_argument(
        "--hints",
        action="store_true",
        help="train a hint model (user colour hints as 3 input planes beside L) with simulated "
        "hints: per photo none (--hint-none-fraction) or 1 + geometric (--hint-mean-count), "
        "each the mean true colour of a small patch",
    )
    p.add_argument(
        "--hint-mean-count", type=float, help="mean number of simulated hints (default 12)"
    )
    p.add_argument(
        "--hint-none-fraction",
        type=float,
        help="share of training photos without hints (default 0.1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


_TRAINER_FLAGS = (
    "image_size", "batch_size", "pretrain_epochs", "gan_epochs", "max_steps", "lr_g", "lr_d", "pretrain_lr",
    "lr_decay", "lambda_l1", "gan_mode", "real_label", "grad_accum_steps", "precision", "channels_last", "compile",
    "num_workers", "save_every_steps", "seed", "device", "hint_mean_count", "hint_none_fraction",
)  # fmt: skip


# TrainerConfig's defaults for what a recipe may leave out (tests check they agree).
_TRAINER_DEFAULTS = {
    "batch_size": 16, "pretrain_lr": 1e-4, "lr_g": 2e-4, "lr_d": 2e-4, "lambda_l1": 100.0,
    "gan_mode": "vanilla",
}  # fmt: skip


def _per_recipe(name: str) -> str:
    """`` (default: V)`` or `` (default per recipe: tiny V, ...)`` for a trainer setting."""
    from pixcolor._recipes import RECIPES

    values = {
        k: _text(r.trainer.get(name, _TRAINER_DEFAULTS[name])) for k, r in sorted(RECIPES.items())
    }
    if len(set(values.values())) == 1:
        return f" (default {next(iter(values.values()))})"
    return " (default per recipe: " + ", ".join(f"{k} {v}" for k, v in values.items()) + ")"


def _text(value: Any) -> str:
    """``2e-4`` for a learning rate, ``100`` for a weight, a name as is."""
    if not isinstance(value, (int, float)):
        return str(value)
    if value and abs(value) < 1e-2:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{value:g}"


def run(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from pixcolor import Trainer, TrainerConfig
    from pixcolor.training import recipes

    run = Path(args.output)
    if run.exists() and not run.is_dir():
        raise FileExistsError(f"--output {run} is a file; give a folder for the run")
    overrides = {k: getattr(args, k) for k in _TRAINER_FLAGS if getattr(args, k) is not None}
    saved = run / "config.json"
    resume = args.resume
    if resume == "latest" and saved.is_file() and not _has_checkpoint(run):
        # stopped (or failed) before its first checkpoint: nothing to continue from
        print(f"{run} holds no checkpoint yet: starting its run from the beginning")
        resume = None
    if resume is not None:
        if not saved.is_file():
            raise FileNotFoundError(
                f"--resume: {run} holds no training run (no config.json); start it without --resume"
            )
        config = json.loads(saved.read_text(encoding="utf-8"))
        gen, disc = _saved_networks(config)
        trainer_values = {**config["trainer"], **overrides}
        if args.hints and not gen.hint_channels:
            raise ValueError(
                f"--hints: the run in {run} trains an automatic model (no hint channels); "
                "start a new run with --hints"
            )
    elif args.resume is None:
        if run.exists() and any(run.iterdir()) and not _only_run_config(run):
            raise FileExistsError(
                f"--output {run} is not empty; pass --resume to continue that run, or choose a new directory"
            )
        extra = {"pretrained_encoder": False} if args.no_pretrained_encoder else {}
        if args.hints:
            extra["hint_channels"] = 3
        # --seed also fixes the networks' initial weights (Trainer.fit seeds the rest)
        torch.manual_seed(overrides.get("seed", TrainerConfig.seed))
        gen, disc, defaults = recipes.build(args.recipe, **extra)
        trainer_values = {**defaults, **overrides}
    else:  # --resume of a run that never wrote a checkpoint: its own settings, from scratch
        config = json.loads(saved.read_text(encoding="utf-8"))
        trainer_values = {**config["trainer"], **overrides}
        torch.manual_seed(trainer_values.get("seed", TrainerConfig.seed))
        gen, disc = _saved_networks(config)
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
        state = trainer.fit(args.data, args.val, resume=resume)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if trainer.is_main_process:
        last = state["history"][-1] if state["history"] else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float))
        print(f"trained {state['epoch']} epoch(s), {state['global_step']} steps; {shown}")
        print(f"generator: {run / 'generator'}   best: {run / 'best' / 'generator'}   logs: {run}")
    return 0


def _has_checkpoint(run: Path) -> bool:
    checkpoints = run / "checkpoints"
    return checkpoints.is_dir() and any(p.is_dir() for p in checkpoints.iterdir())


def _only_run_config(run: Path) -> bool:
    """``run`` holds nothing but a run's own ``config.json`` (and empty folders): a run
    stopped or refused before its first checkpoint, which may start again."""
    files = [p for p in run.rglob("*") if not p.is_dir()]
    return [p.relative_to(run) for p in files] == [Path("config.json")]


def _saved_networks(config: dict[str, Any]) -> tuple[Any, Any]:
    """The generator and discriminator (or ``None``) a run's ``config.json`` describes."""
    from pixcolor import PatchDiscriminator, UNetGenerator

    gen = UNetGenerator.from_config(config["generator"])
    disc = config["discriminator"] and PatchDiscriminator.from_config(config["discriminator"])
    return gen, disc or None
