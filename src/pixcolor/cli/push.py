"""``pixcolor push``: upload a model to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "push",
        help="upload a model to the Hugging Face Hub",
        description="Upload a model directory (config.json + model.safetensors) to a Hub repository, "
        "creating it if needed. Authenticate with --token or `hf auth login`.",
    )
    p.add_argument("model", help="model directory (e.g. runs/x/generator), preset or repo id")
    p.add_argument("repo_id", help="target repository, e.g. user/pixcolor-coco")
    p.add_argument(
        "--subfolder",
        help="folder inside the repository to hold config.json and model.safetensors "
        "(default: its root)",
    )
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to push to")
    p.add_argument("--token", help="Hugging Face token (default: the logged-in one)")
    p.add_argument("--message", help="commit message")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor.models.registry import load_generator

    model = load_generator(args.model)  # of the class its config.json names
    info = model.push_to_hub(args.repo_id, subfolder=args.subfolder, token=args.token,
                             private=args.private or None, revision=args.revision,
                             commit_message=args.message)  # fmt: skip
    print(f"pushed {args.model} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0
