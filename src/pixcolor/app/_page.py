"""The Gradio page of ``pixcolor app``: layout and event wiring over :mod:`._session`."""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from pixcolor.app import _session
from pixcolor.app._session import Session
from pixcolor.colorizer import Colorizer
from pixcolor.errors import ImageError, ImageNotFoundError

logger = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).parent / "examples"
_SESSION_TTL_S = 6 * 3600  # a tab's photo is dropped this long after its last change
_CONCURRENCY = "pixcolor-colorize"  # every event that runs the network queues here, one at a time

_INTRO = (
    "**Upload a black-and-white photo** (or pick an example). **Click on either picture** to "
    "put a colour hint there: it starts with the colour the model gave that spot; change it "
    "with the colour picker. The pictures are a preview; the download is the full-resolution "
    "photo."
)


def build_page(
    colorizer: Colorizer,
    *,
    max_upload_bytes: int | None,
    temp_dir: str | Path | None,
    examples: bool,
) -> gr.Blocks:
    """See :func:`pixcolor.app.build_app`."""
    if temp_dir is None:
        root = Path(tempfile.mkdtemp(prefix="pixcolor-app-"))
    else:
        root = Path(temp_dir)
        root.mkdir(parents=True, exist_ok=True)
    stride, default_size, largest = _render_sizes(colorizer)
    handlers = _Handlers(colorizer, root / "sessions", max_upload_bytes)

    with gr.Blocks(title="pixcolor", analytics_enabled=False, delete_cache=(900, 6 * 3600)) as page:
        state = gr.State(None, time_to_live=_SESSION_TTL_S, delete_callback=_close)
        gr.Markdown("# pixcolor\n" + _INTRO, elem_id="pixcolor-intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                upload = gr.UploadButton(
                    "Upload a photo", type="filepath", file_count="single", variant="primary",
                    elem_id="pixcolor-upload",
                )  # fmt: skip
                gr.Markdown(f"JPEG, PNG, TIFF, WebP, ... up to {_limit(max_upload_bytes)}.")
            gallery = gr.Gallery(
                value=_example_photos() if examples else None, label="Examples", columns=2,
                height=160, allow_preview=False, visible=examples, elem_id="pixcolor-examples",
                scale=2, interactive=False,
            )  # fmt: skip
            with gr.Column(scale=3):
                saturation = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Saturation",
                                       elem_id="pixcolor-saturation")  # fmt: skip
                render_size = gr.Slider(
                    stride, largest, value=default_size, step=stride, elem_id="pixcolor-render-size",
                    label=f"Render size (the model's: {default_size})",
                )  # fmt: skip
        status = gr.Markdown("", elem_id="pixcolor-status")
        with gr.Row(equal_height=True):
            gray = gr.Image(
                label="Black and white (click to add a hint)", type="numpy", format="jpeg",
                interactive=False, elem_id="pixcolor-gray", buttons=["fullscreen"],
            )  # fmt: skip
            result = gr.Image(
                label="Colourised (click to add a hint)", type="numpy", format="jpeg",
                interactive=False, elem_id="pixcolor-result", buttons=["fullscreen"],
            )  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                picker = gr.ColorPicker("#808080", label="Colour of the selected hint",
                                        elem_id="pixcolor-color")  # fmt: skip
                new_color = gr.Radio(
                    ["the model's colour there", "the picker's colour"],
                    value="the model's colour there", type="index",
                    label="A new hint takes", elem_id="pixcolor-new-color",
                )  # fmt: skip
            with gr.Column(scale=2):
                # interactive: a Radio that is only ever an output renders disabled
                hint_list = gr.Radio([], type="index", label="Hints (select one to recolour it)",
                                     interactive=True, elem_id="pixcolor-hints")  # fmt: skip
                with gr.Row():
                    undo = gr.Button("Undo last hint", elem_id="pixcolor-undo", size="sm")
                    clear = gr.Button("Clear hints", elem_id="pixcolor-clear", size="sm")
            with gr.Column(scale=2):
                prepare = gr.Button("Full-resolution downloads", variant="primary",
                                    elem_id="pixcolor-prepare")  # fmt: skip
                photo_file = gr.File(label="Colourised photo", interactive=False, visible=False,
                                     elem_id="pixcolor-result-file")  # fmt: skip
                hints_file = gr.File(label="Hints (JSON for pixcolor colorize --hints)",
                                     interactive=False, visible=False,
                                     elem_id="pixcolor-hints-file")  # fmt: skip

        view = [state, gray, result, hint_list, picker, status, photo_file, hints_file]
        settings = [saturation, render_size]

        def on(event: Any, fn: Callable[..., Any], inputs: list[Any]) -> None:
            event(fn, inputs=inputs, outputs=view, concurrency_id=_CONCURRENCY,
                  trigger_mode="always_last", show_progress="minimal",
                  show_progress_on=[result])  # fmt: skip

        on(upload.upload, handlers.upload, [upload, state, *settings])
        on(gallery.select, handlers.example, [state, *settings])
        on(gray.select, handlers.click, [state, picker, new_color, *settings])
        on(result.select, handlers.click, [state, picker, new_color, *settings])
        # change, not input: typing a hex code only fires change. The page's own updates of
        # the picker fire it too; recolor ignores those (the colour is already the hint's).
        on(picker.change, handlers.recolor, [state, picker, *settings])
        on(hint_list.select, handlers.select, [state, *settings])
        on(undo.click, handlers.undo, [state, *settings])
        on(clear.click, handlers.clear, [state, *settings])
        # input: a drag (live, the latest value wins) or a typed number; not the page's own
        on(saturation.input, handlers.refresh, [state, *settings])
        # a typed size snaps to the nearest the model takes (a multiple of its stride) first
        snapped = render_size.input(handlers.snap_size, inputs=[render_size],
                                    outputs=[render_size], queue=False, show_progress="hidden")  # fmt: skip
        on(snapped.then, handlers.refresh, [state, *settings])
        prepare.click(
            handlers.downloads, inputs=[state, *settings], outputs=[photo_file, hints_file, status],
            concurrency_id=_CONCURRENCY, trigger_mode="once", show_progress_on=[status],
        )  # fmt: skip
        page.unload(handlers.forget_tab)

    if temp_dir is None:
        weakref.finalize(page, shutil.rmtree, root, ignore_errors=True)
    return page


_VIEW_SIZE = 8  # outputs of every event but the downloads: see _Handlers._view


class _Handlers:
    """The page's event handlers. Each returns the whole view (see :meth:`_view`), so a tab
    always shows its own session; bad input becomes a message in the page, never an
    exception that would leave the tab in an unknown state."""

    def __init__(self, colorizer: Colorizer, root: Path, max_upload_bytes: int | None) -> None:
        self.colorizer = colorizer
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self.by_tab: dict[str, Session] = {}  # session hash -> session, for unload
        self.stride, self.default_size, self.largest = _render_sizes(colorizer)

    # --- events ------------------------------------------------------------------------

    def upload(self, path: str | None, session: Session | None, saturation: float,
               render_size: float, request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        if not path:
            return self._view(session, "")
        return self._open(Path(path), session, saturation, render_size, request)

    def example(self, session: Session | None, saturation: float, render_size: float,
                request: gr.Request, event: gr.SelectData) -> tuple[Any, ...]:  # fmt: skip
        photos = sorted(EXAMPLES_DIR.glob("*.jpg"))
        return self._open(photos[event.index], session, saturation, render_size, request)

    def click(self, session: Session | None, picked: str, new_color: int, saturation: float,
              render_size: float, event: gr.SelectData) -> tuple[Any, ...]:  # fmt: skip
        if session is None:
            return _message("Upload a photo first.")
        x, y = (float(v) for v in event.index)
        if new_color == 1:  # painting with the picker's colour: the picker stays for new hints
            change = lambda: _session.add_hint(session, x, y, picked, select=False)  # noqa: E731
        else:  # the model's colour there, and the picker now edits this hint
            change = lambda: _session.add_hint(session, x, y)  # noqa: E731
        return self._change(session, saturation, render_size, change)

    def recolor(self, session: Session | None, picked: str, saturation: float,
                render_size: float) -> tuple[Any, ...]:  # fmt: skip
        if session is None or session.selected is None:
            return _SKIP  # the colour new hints take, in the picker's-colour mode
        index = session.selected
        try:
            picked = _session.check_color(picked)
        except ValueError as exc:
            return _message(_error(str(exc)))
        if session.hints[index]["color"] == picked:
            return _SKIP
        return self._change(session, saturation, render_size,
                            lambda: _session.set_hint_color(session, index, picked))  # fmt: skip

    def select(self, session: Session | None, saturation: float, render_size: float,
               event: gr.SelectData) -> tuple[Any, ...]:  # fmt: skip
        if session is not None and 0 <= event.index < len(session.hints):
            session.selected = event.index
        return self._view(session, "")

    def undo(self, session: Session | None, saturation: float,
             render_size: float) -> tuple[Any, ...]:  # fmt: skip
        if session is None:
            return self._view(session, "")
        return self._change(session, saturation, render_size,
                            lambda: _session.undo_hint(session))  # fmt: skip

    def clear(self, session: Session | None, saturation: float,
              render_size: float) -> tuple[Any, ...]:  # fmt: skip
        if session is None:
            return self._view(session, "")
        return self._change(session, saturation, render_size,
                            lambda: _session.clear_hints(session))  # fmt: skip

    def refresh(self, session: Session | None, saturation: float,
                render_size: float) -> tuple[Any, ...]:  # fmt: skip
        if session is None:
            return self._view(session, "")
        return self._change(session, saturation, render_size, lambda: None)

    def downloads(self, session: Session | None, saturation: float,
                  render_size: float) -> tuple[Any, ...]:  # fmt: skip
        if session is None:
            return _HIDDEN, _HIDDEN, "Upload a photo first."
        try:
            photo, hints = _session.save_downloads(
                self.colorizer, session, saturation=saturation,
                render_size=self.snap_size(render_size),
            )  # fmt: skip
        except ImageNotFoundError:
            return _HIDDEN, _HIDDEN, _error("The uploaded file is gone (uploads are removed "
                                            "after six hours); upload the photo again.")  # fmt: skip
        except (ImageError, ValueError, OSError) as exc:
            return _HIDDEN, _HIDDEN, _error(f"The full-resolution photo could not be made: {exc}")
        except Exception as exc:
            logger.exception("full-resolution colorization failed")
            return _HIDDEN, _HIDDEN, _error(f"Something went wrong: {type(exc).__name__}: {exc}")
        height, width = session.size
        hints_update = gr.update(value=str(hints), visible=True) if hints else _HIDDEN
        ready = f"Ready: {width} x {height} pixels."
        return gr.update(value=str(photo), visible=True), hints_update, ready

    def snap_size(self, render_size: float | None) -> int:
        """The render size the model takes nearest to a typed one: a multiple of its stride,
        within the slider's range."""
        if render_size is None or not math.isfinite(render_size):
            return self.default_size
        steps = round(render_size / self.stride)
        return min(max(steps * self.stride, self.stride), self.largest)

    def forget_tab(self, request: gr.Request) -> None:
        """A tab was closed: drop its files at once (its state follows later)."""
        session = self.by_tab.pop(request.session_hash or "", None)
        if session is not None:
            session.close()

    # --- helpers -----------------------------------------------------------------------

    def _open(self, path: Path, session: Session | None, saturation: float,
              render_size: float, request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        try:
            new = _session.open_photo(path, self.root, max_bytes=self.max_upload_bytes)
        except ImageError as exc:
            return _message(_error(f"This file cannot be used: {exc}"))
        except OSError as exc:
            return _message(_error(f"The upload could not be read: {exc}"))
        height, width = new.size
        done = f"{new.name}: {width} x {height} pixels."
        view = self._change(new, saturation, render_size, lambda: None, done=done)
        if view[0] is not new:  # colourising it failed: the tab keeps its photo
            new.close()
            return view
        if session is not None:
            session.close()
        self.by_tab[request.session_hash or ""] = new
        return view

    def _change(self, session: Session, saturation: float, render_size: float,
                change: Callable[[], object], done: str = "") -> tuple[Any, ...]:  # fmt: skip
        before = ([dict(h) for h in session.hints], session.selected)
        try:
            change()
            _session.render(self.colorizer, session, saturation=float(saturation),
                            render_size=self.snap_size(render_size))  # fmt: skip
        except Exception as exc:  # the change is undone: the page shows what it showed
            session.hints[:], session.selected = before
            if isinstance(exc, (ImageError, ValueError)):
                return _message(_error(str(exc)))
            logger.exception("colorization failed")
            return _message(_error(f"Something went wrong: {type(exc).__name__}: {exc}"))
        return self._view(session, done)

    def _view(self, session: Session | None, message: str) -> tuple[Any, ...]:
        """Every output of the page for ``session``: state, pictures, hint list, picker,
        message, and no stale downloads."""
        if session is None:
            return (None, None, None, gr.update(choices=[], value=None), gr.update(), message,
                    _HIDDEN, _HIDDEN)  # fmt: skip
        choices = [
            (f"{i + 1}: x {h['x']:g}, y {h['y']:g}, {h['color']}", i)
            for i, h in enumerate(session.hints)
        ]
        picker = gr.update()
        if session.selected is not None:
            picker = session.hints[session.selected]["color"]
        return (
            session, _session.draw_markers(session), session.result,
            gr.update(choices=choices, value=session.selected), picker, message, _HIDDEN, _HIDDEN,
        )  # fmt: skip


_SKIP = tuple(gr.skip() for _ in range(_VIEW_SIZE))
_HIDDEN = gr.update(value=None, visible=False)  # a download box before (or after) a change


def _message(text: str) -> tuple[Any, ...]:
    """Outputs that change nothing on the page but the message line."""
    return (*_SKIP[:5], text, *_SKIP[6:])


def _render_sizes(colorizer: Colorizer) -> tuple[int, int, int]:
    """The Render size slider's step (the model's stride), default and largest value."""
    stride = colorizer.generator.stride
    default_size = colorizer.generator.config.render_size
    return stride, default_size, max(default_size, 8 * stride, 1024 // stride * stride)


def _limit(max_bytes: int | None) -> str:
    return "any size" if max_bytes is None else f"{max_bytes / 2**20:g} MB"


def _example_photos() -> list[tuple[str, str]]:
    return [(str(p), p.stem.replace("_", " ")) for p in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def _close(session: Session | None) -> None:
    if session is not None:
        session.close()


def _error(message: str) -> str:
    return f"**Error:** {message}"
