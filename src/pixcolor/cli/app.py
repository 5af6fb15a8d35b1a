"""``pixcolor app``: serve the colourise-and-hint web page (needs ``pixcolor[app]``)."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import ipaddress
import os
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from pixcolor.cli._common import MODEL_HELP, PRECISIONS, TORCH_PRECISION_HELP

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "app",
        help="a web page: colourise photos, click colour hints (needs pixcolor[app])",
        description="Serve a web page to colourise photos and correct them with colour hints: "
        "upload a photo, click where a colour is wrong, pick the right one, download the "
        "full-resolution result and the hints. Runs offline, on 127.0.0.1 unless --host says "
        "otherwise. Needs the optional extra: pip install 'pixcolor[app]'.",
    )
    p.add_argument(
        "--model",
        default=None,
        help=MODEL_HELP + " (default: bundled)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this computer only; 0.0.0.0 "
        "serves the page to your network)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument(
        "--share",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also serve through a public Gradio share link (needs the internet; default: no)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=None,
        help="largest photo file accepted, in MB (default: 100)",
    )
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument(
        "--precision",
        choices=[p for p in PRECISIONS if p != "int8"],  # int8 needs --backend onnxruntime
        default="auto",
        help=TORCH_PRECISION_HELP,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixcolor.app import DEFAULT_MAX_UPLOAD_MB, INSTALL_HINT

    if importlib.util.find_spec("gradio") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    max_mb = DEFAULT_MAX_UPLOAD_MB if args.max_upload_mb is None else args.max_upload_mb
    if not max_mb > 0:
        raise ValueError(f"--max-upload-mb must be positive, got {max_mb:g}")
    open_to_network = _check_address(args.host, args.port)

    from pixcolor.colorizer import Colorizer

    colorizer = Colorizer.from_pretrained(args.model, device=args.device, precision=args.precision)
    # SIGTERM (a service manager, `kill`) stops the server like Ctrl-C does, so that the
    # temporary folder below is removed either way.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _serve(colorizer, args, max_mb, open_to_network)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_address(host: str, port: int) -> bool:
    """Refuse a host or port the server cannot listen on, with a message for this command
    (Gradio calls every such failure a busy port and gives advice for its Python API).
    Returns whether the address serves other computers too (not a loopback address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(
            f"--host {host!r} is not an address to listen on ({reason}); use 127.0.0.1 (this "
            "computer only), 0.0.0.0 (your network) or one of this computer's addresses"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ValueError(
                    f"--host {host!r} is not an address of this computer ({exc.strerror}); use "
                    "127.0.0.1 (this computer only), 0.0.0.0 (your network) or one of its "
                    "addresses"
                ) from None
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"cannot serve on {host}:{port}: the port is in use; choose another --port"
                ) from None
            raise ValueError(f"cannot serve on {host}:{port} ({exc.strerror})") from None
    return not ipaddress.ip_address(address[0].split("%")[0]).is_loopback


def _serve(colorizer: Any, args: argparse.Namespace, max_mb: float, open_to_network: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="pixcolor-app-") as root:
        # Everything the server writes (Gradio's uploads and cached pictures, each tab's
        # downloads; matplotlib's settings folder, which Gradio's event loop imports) goes
        # under this folder, removed when the server stops. Set before Gradio is imported.
        os.environ["GRADIO_TEMP_DIR"] = os.path.join(root, "gradio")
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(root, "matplotlib"))
        from pixcolor.app import build_app

        page = build_app(colorizer, max_upload_mb=max_mb, temp_dir=os.path.join(root, "tabs"))
        try:
            _, local_url, share_url = page.queue(max_size=64).launch(
                server_name=args.host, server_port=args.port, share=args.share,
                max_file_size=int(max_mb * 2**20), show_error=False, quiet=True,
                footer_links=[], ssr_mode=False, prevent_thread_lock=True,
            )  # fmt: skip
        except OSError:  # taken since _check_address; Gradio's message is for launch() callers
            page.close()
            raise ValueError(
                f"cannot serve on {args.host}:{args.port}: the port is in use; choose another --port"
            ) from None
        print(f"pixcolor app: serving {local_url} (Ctrl-C stops it)", flush=True)
        if open_to_network:
            print(
                f"pixcolor app: the page is open to your network, without a login: anyone "
                f"who can reach this computer on port {args.port} can use it",
                flush=True,
            )
        if share_url:
            print(f"pixcolor app: public link {share_url}", flush=True)
        try:
            while page.is_running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            page.close()
        print("pixcolor app: stopped", flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
