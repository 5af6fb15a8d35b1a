"""The ``pixcolor`` command: one module per subcommand in this package.

Each module has ``add_parser(sub)`` (its arguments) and ``run(args)`` (what it does, imported
lazily so that ``pixcolor --help`` stays fast); run ``pixcolor COMMAND --help``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pixcolor.cli import app, colorize, convert, evaluate, export, models, push, train

__all__ = ["build_parser", "main"]

# Subcommands in the order ``pixcolor --help`` lists them.
_COMMANDS = (colorize, train, evaluate, models, convert, export, push, app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pixcolor`` console script; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("pixcolor: interrupted", file=sys.stderr)
        return 130
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # huggingface_hub prints its warnings through a handler of its own: not a second time
    # through ours (its retries while the Hub cannot be reached would each show twice).
    logging.getLogger("huggingface_hub").propagate = False
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
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
