"""``pixcolor app``: a web page to colourise photos and to correct them with colour hints.

Needs the optional extra ``pixcolor[app]`` (Gradio); importing :mod:`pixcolor` never does.

Example:
    >>> import pixcolor
    >>> from pixcolor.app import build_app
    >>> page = build_app(pixcolor.Colorizer.from_pretrained(device="cpu"))  # doctest: +SKIP
    >>> page.launch()  # http://127.0.0.1:7860  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixcolor.colorizer import Colorizer

if TYPE_CHECKING:
    import gradio

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "build_app"]

DEFAULT_MAX_UPLOAD_MB = 100
"""Largest upload the page accepts by default, in megabytes (a 24-megapixel JPEG is 5-15)."""

INSTALL_HINT = 'pixcolor app needs Gradio: pip install "pixcolor[app]"'
"""What to tell a user who runs the app without the extra."""


def build_app(
    colorizer: Colorizer,
    *,
    max_upload_mb: float | None = DEFAULT_MAX_UPLOAD_MB,
    temp_dir: str | os.PathLike[str] | None = None,
    examples: bool = True,
) -> gradio.Blocks:
    """The page of ``pixcolor app`` as a :class:`gradio.Blocks`, to launch or embed.

    Upload a photo (or pick a bundled example) and see it gray and colourised side by side;
    saturation and render-size sliders; a click on either picture adds a colour hint there
    (its colour starts as the model's colour at that spot, and the colour picker changes
    it), with a hint list, undo and clear; downloads of the full-resolution result (saved
    like ``pixcolor colorize`` saves it) and of the hints as JSON for
    ``pixcolor colorize --hints``. Each browser tab has its own photo and hints. Pictures
    on the page are previews (longest side 768 pixels), so a change shows in well under a
    second whatever the photo's size.

    Args:
        colorizer: The colorizer the page runs.
        max_upload_mb: Larger files are refused with a message in the page (``None``: no
            limit). Also pass it to ``launch(max_file_size=...)`` so that the browser
            refuses them before sending, as ``pixcolor app`` does.
        temp_dir: Folder for each tab's downloadable files; ``None`` makes a new temporary
            folder, removed when the page is garbage-collected or the process exits.
            Gradio keeps its own uploads and cached pictures in ``GRADIO_TEMP_DIR``.
        examples: Offer the bundled example photos.

    Returns:
        The page. Launch it with ``page.launch()`` (127.0.0.1:7860 by default) or mount it
        in a FastAPI app with ``gradio.mount_gradio_app``.

    Raises:
        ImportError: If Gradio is not installed (install ``pixcolor[app]``).
        TypeError: If ``colorizer`` is not a :class:`~pixcolor.Colorizer`.
        ValueError: If ``max_upload_mb`` is not positive.
    """
    if not isinstance(colorizer, Colorizer):
        raise TypeError(f"colorizer must be a pixcolor.Colorizer, got {type(colorizer).__name__}")
    if max_upload_mb is not None and not max_upload_mb > 0:
        raise ValueError(f"max_upload_mb must be a positive number or None, got {max_upload_mb!r}")
    _require_gradio()
    from pixcolor.app._page import build_page

    return build_page(
        colorizer,
        max_upload_bytes=None if max_upload_mb is None else int(max_upload_mb * 2**20),
        temp_dir=None if temp_dir is None else Path(temp_dir),
        examples=examples,
    )


def _require_gradio() -> Any:
    """Import Gradio with its usage analytics off (unless the user set them on)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return gradio
