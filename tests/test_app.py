"""``pixcolor app`` without a browser: the session logic (preview, hints, downloads), the
page object, and the command line. The page in a real browser: test_app_browser.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pixcolor
from helpers import write_png_bomb
from pixcolor import lab
from pixcolor.app import _session
from pixcolor.app._session import UploadTooLargeError
from pixcolor.cli import build_parser, main
from pixcolor.errors import ImageError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "data" / "expedition_1897.jpg"
needs_gradio = pytest.mark.skipif(find_spec("gradio") is None, reason="Gradio is not installed")


@pytest.fixture(scope="module")
def colorizer() -> pixcolor.Colorizer:
    return pixcolor.Colorizer.from_pretrained(device="cpu", precision="fp32")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 1200 x 833 gray JPEG, larger than the preview."""
    path = tmp_path / "upload" / "old photo.jpg"
    path.parent.mkdir()
    Image.open(EXAMPLE).convert("L").resize((1200, 833), Image.BICUBIC).save(path, quality=88)
    return path


@pytest.fixture
def small_photo(tmp_path: Path) -> Path:
    """An 800 x 555 gray JPEG, just above the preview's size: for full-resolution work."""
    path = tmp_path / "upload" / "old photo.jpg"
    path.parent.mkdir(exist_ok=True)
    Image.open(EXAMPLE).convert("L").resize((800, 555), Image.BICUBIC).save(path, quality=88)
    return path


# --- opening a photo -------------------------------------------------------------------


def test_open_photo_makes_a_preview_and_its_gray(photo: Path, tmp_path: Path) -> None:
    session = _session.open_photo(photo, tmp_path / "tabs")
    assert session.size == (833, 1200)
    assert session.preview.shape == (533, 768, 3) and session.preview.dtype == np.uint8
    assert session.name == "old photo.jpg" and session.stem == "old_photo"
    assert session.folder.is_dir() and session.folder.parent == tmp_path / "tabs"
    assert session.hints == [] and session.selected is None and session.result is None
    # The gray picture is the preview's own lightness (a gray JPEG: the same pixels).
    np.testing.assert_allclose(session.gray.astype(int), session.preview.astype(int), atol=1)
    session.close()
    assert not session.folder.exists()


def test_open_photo_colour_upload_shows_its_lightness(tmp_path: Path) -> None:
    path = tmp_path / "colour.png"
    Image.open(ROOT / "tests" / "assets" / "chelsea.jpg").save(path)
    session = _session.open_photo(path, tmp_path)
    gray = torch.from_numpy(session.gray).permute(2, 0, 1).float() / 255
    preview = torch.from_numpy(session.preview).permute(2, 0, 1).float() / 255
    assert float(gray.std(dim=0).max()) == 0.0  # gray
    torch.testing.assert_close(lab.rgb_to_l(gray), lab.rgb_to_l(preview), atol=0.6, rtol=0)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not a photo\n" * 50, "cannot identify"),
        ("truncated", "truncated"),
        ("bomb", "too large to decode safely"),
        (b"", "empty"),
    ],
)
def test_open_photo_refuses_bad_files_naming_the_upload(
    content: bytes | str, words: str, photo: Path, tmp_path: Path
) -> None:
    path = tmp_path / "upload.bin"
    if content == "truncated":
        path.write_bytes(photo.read_bytes()[:5000])
    elif content == "bomb":
        write_png_bomb(path, side=15_000)
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=words) as info:
        _session.open_photo(path, tmp_path / "tabs", name="holiday.jpg")
    assert "'holiday.jpg'" in str(info.value) and str(path) not in str(info.value)
    assert not (tmp_path / "tabs").exists()  # nothing made for a refused upload


def test_open_photo_size_cap(photo: Path, tmp_path: Path) -> None:
    size = photo.stat().st_size
    with pytest.raises(UploadTooLargeError, match=r"'old photo.jpg' is \d+ kB; .* up to \d+ kB"):
        _session.open_photo(photo, tmp_path, max_bytes=size - 1)
    with pytest.raises(UploadTooLargeError, match=r"is 1.1 MB; .* up to 1.0 MB"):
        big = tmp_path / "big.jpg"
        big.write_bytes(photo.read_bytes() + b"\0" * 2**20)
        _session.open_photo(big, tmp_path, max_bytes=2**20)
    assert _session.open_photo(photo, tmp_path, max_bytes=size).size == (833, 1200)


# --- hints -----------------------------------------------------------------------------


def test_add_hint_maps_to_photo_pixels_with_the_shown_colour(
    photo: Path, tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    session = _session.open_photo(photo, tmp_path)
    result = _session.render(colorizer, session)
    assert result.shape == session.preview.shape and result is session.result
    hint = _session.add_hint(session, 100, 50)
    # Pixel centres map to pixel centres: preview 768 -> photo 1200 wide.
    assert hint["x"] == pytest.approx(100.5 * 1200 / 768 - 0.5, abs=0.05)
    assert hint["y"] == pytest.approx(50.5 * 833 / 533 - 0.5, abs=0.05)
    assert hint["color"] == _session.rgb_to_hex(result[50, 100])  # the model's colour there
    assert session.selected == 0
    _session.add_hint(session, 767.9, 532.5, "#3A8F2E")
    assert session.hints[1]["color"] == "#3a8f2e" and session.selected == 1
    assert session.hints[1]["x"] < 1200 and session.hints[1]["y"] < 833
    for x, y in [(-1, 0), (768, 0), (0, 533)]:
        with pytest.raises(ValueError, match="outside the 768 x 533 preview"):
            _session.add_hint(session, x, y)
    with pytest.raises(ValueError, match="'#rrggbb', got 'green'"):
        _session.add_hint(session, 1, 1, "green")
    assert len(session.hints) == 2


def test_hint_list_edits() -> None:
    session = _session.Session(
        Path("unused"), Path("unused"), "a.png", (40, 60),
        np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60, 3), np.uint8),
    )  # fmt: skip
    for x in (1, 2, 3):
        _session.add_hint(session, x, 1, "#102030")
    assert _session.set_hint_color(session, 1, "#FFFFFF") is True
    assert _session.set_hint_color(session, 1, "#ffffff") is False  # no change
    assert _session.set_hint_color(session, 7, "#ffffff") is False
    assert [h["color"] for h in session.hints] == ["#102030", "#ffffff", "#102030"]
    _session.undo_hint(session)
    assert [h["x"] for h in session.hints] == [1, 2] and session.selected == 1
    _session.clear_hints(session)
    assert session.hints == [] and session.selected is None
    _session.undo_hint(session)  # nothing to undo: no error
    assert session.selected is None
    # Painting with the picker's colour: nothing selected, so the picker stays for new ones.
    for x in (1, 2):
        _session.add_hint(session, x, 1, "#102030", select=False)
    _session.undo_hint(session)
    assert len(session.hints) == 1 and session.selected is None


def test_check_color() -> None:
    assert _session.check_color(" #A0b1C2 ") == "#a0b1c2"
    assert _session.check_color("rgb(255, 0, 10)") == "#ff000a"
    assert _session.check_color("rgba(1.4, 2, 3, 0.5)") == "#010203"
    for bad in ("#12345", "#1234567", "red", None, (1, 2, 3)):
        with pytest.raises(ValueError, match="'#rrggbb'"):
            _session.check_color(bad)


def test_hints_json_is_what_colorize_reads() -> None:
    session = _session.Session(
        Path("unused"), Path("unused"), "a.png", (400, 600),
        np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60, 3), np.uint8),
    )  # fmt: skip
    _session.add_hint(session, 10, 20, "#abcdef")
    loaded = json.loads(_session.hints_json(session))
    assert loaded == [{"x": 104.5, "y": 204.5, "color": "#abcdef"}]


def test_markers_on_the_gray_picture(photo: Path, tmp_path: Path) -> None:
    session = _session.open_photo(photo, tmp_path)
    assert _session.draw_markers(session) is session.gray
    _session.add_hint(session, 200, 100, "#ff0000")
    marked = _session.draw_markers(session)
    assert tuple(marked[100, 200]) == (255, 0, 0)
    assert marked.shape == session.gray.shape
    assert (marked != session.gray).any(axis=2).sum() < 400  # a dot, not a smear
    assert session.gray.std(axis=2).max() == 0  # the gray picture itself is untouched


# --- downloads -------------------------------------------------------------------------


def test_download_is_saved_like_colorize_saves(
    small_photo: Path, tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    photo = small_photo
    session = _session.open_photo(photo, tmp_path / "tabs")
    path, hints = _session.save_downloads(colorizer, session, saturation=1.3)
    assert path == session.folder / "old_photo_colorized.jpg" and hints is None
    with Image.open(path) as out, Image.open(photo) as src:
        assert (out.format, out.size, out.mode) == ("JPEG", (800, 555), "RGB")
        assert out.quantization[0] == src.quantization[0]  # the upload's quality kept
    expected = colorizer.colorize(Image.open(photo), saturation=1.3)
    saved = np.asarray(Image.open(path), dtype=float)
    assert np.abs(saved - np.asarray(expected, dtype=float)).mean() < 2.0  # JPEG noise only
    # Again (after a change): replaced in place, nothing else written.
    _session.save_downloads(colorizer, session)
    assert sorted(p.name for p in session.folder.iterdir()) == ["old_photo_colorized.jpg"]


def test_download_keeps_png_alpha_and_falls_back_to_png(
    tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    rgba = np.zeros((50, 70, 4), np.uint8)
    rgba[..., :3] = np.linspace(0, 255, 70, dtype=np.uint8)[None, :, None]
    rgba[..., 3] = 200
    png = tmp_path / "a.png"
    Image.fromarray(rgba).save(png)
    path, _ = _session.save_downloads(colorizer, _session.open_photo(png, tmp_path))
    with Image.open(path) as out:
        assert (path.suffix, out.mode) == (".png", "RGBA")
        assert np.asarray(out)[..., 3].min() == 200
    odd = tmp_path / "scan.unknownext"
    Image.fromarray(rgba[..., :3]).save(odd, format="PNG")
    path, _ = _session.save_downloads(colorizer, _session.open_photo(odd, tmp_path))
    assert path.name == "scan_colorized.png"


def test_download_with_hints_matches_colorize_with_the_json(
    small_photo: Path, tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    photo = small_photo
    session = _session.open_photo(photo, tmp_path / "tabs")
    _session.render(colorizer, session)
    _session.add_hint(session, 115, 470, "#3a8f2e")
    preview = _session.render(colorizer, session)
    path, hints_path = _session.save_downloads(colorizer, session)
    hints = json.loads(hints_path.read_text())
    assert pixcolor.load_hints(hints_path) == pixcolor.hints.parse_hints(hints)
    expected = colorizer.colorize(
        Image.open(photo), hints=[(h["x"], h["y"], h["color"]) for h in hints]
    )
    saved = np.asarray(Image.open(path), dtype=float)
    assert np.abs(saved - np.asarray(expected, dtype=float)).mean() < 2.0
    # The preview showed what the download holds (at the preview's scale).
    small = np.asarray(Image.open(path).resize(preview.shape[1::-1], Image.BILINEAR), dtype=float)
    assert np.abs(small - preview).mean() < 4.0


# --- page and command line ---------------------------------------------------------------


@needs_gradio
def test_build_app(colorizer: pixcolor.Colorizer, tmp_path: Path) -> None:
    import gradio as gr

    from pixcolor.app import build_app

    page = build_app(colorizer, temp_dir=tmp_path / "tabs", max_upload_mb=5)
    assert isinstance(page, gr.Blocks)
    assert page.analytics_enabled is False
    with pytest.raises(TypeError, match="must be a pixcolor.Colorizer, got str"):
        build_app("bundled")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_upload_mb must be a positive number or None, got 0"):
        build_app(colorizer, max_upload_mb=0)


def test_importing_pixcolor_needs_no_gradio() -> None:
    code = (
        "import sys; sys.modules['gradio'] = None\n"  # as if not installed: importing fails
        "import pixcolor, pixcolor.app, pixcolor.cli\n"
        "from pixcolor.cli import main\n"
        "sys.exit(main(['app']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == 'pixcolor app needs Gradio: pip install "pixcolor[app]"'
    assert done.stdout == ""


def test_cli_app_options() -> None:
    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.model) == ("127.0.0.1", 7860, False, None)
    args = build_parser().parse_args(["app", "--share", "--port", "8000", "--model", "coco"])
    assert (args.share, args.port, args.model) == (True, 8000, "coco")
    assert build_parser().parse_args(["app", "--no-share"]).share is False


@needs_gradio
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "--port must be between 1 and 65535, got 0"),
        (["--max-upload-mb", "-1"], "--max-upload-mb must be positive, got -1"),
    ],
)
def test_cli_app_bad_options(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["app", *argv]) == 1
    assert capsys.readouterr().err.strip() == f"pixcolor app: error: {message}"


@needs_gradio
def test_cli_app_port_in_use(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"pixcolor app: error: cannot serve on 127.0.0.1:{port}" in err
    assert "choose another --port" in err


@needs_gradio
@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("999.1.1.1", "--host '999.1.1.1' is not an address to listen on"),
        ("192.0.2.1", "--host '192.0.2.1' is not an address of this computer"),  # TEST-NET-1
    ],
)
def test_cli_app_bad_host_is_named(
    host: str, message: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pixcolor.Colorizer, "from_pretrained", _no_model)
    assert main(["app", "--host", host, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pixcolor app: error: {message}"), err
    assert "127.0.0.1 (this computer only), 0.0.0.0 (your network)" in err
    assert "port" not in err and "GRADIO" not in err and "launch()" not in err


@needs_gradio
@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_cli_app_reminds_that_the_network_can_reach_the_page(
    host: str, warned: bool, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Page:  # launches nothing, stops at once
        is_running = False

        def queue(self, **kwargs: object) -> Page:
            return self

        def launch(self, **kwargs: object) -> tuple[None, str, None]:
            return None, f"http://{host}:{kwargs['server_port']}/", None

        def close(self) -> None:
            pass

    monkeypatch.setattr(pixcolor.Colorizer, "from_pretrained", lambda *a, **k: None)
    monkeypatch.setattr("pixcolor.app.build_app", lambda *a, **k: Page())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["app", "--host", host, "--port", str(port)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"pixcolor app: serving http://{host}:{port}/ (Ctrl-C stops it)"
    reminder = [line for line in out if "without a login" in line]
    assert reminder == (
        [f"pixcolor app: the page is open to your network, without a login: anyone who can "
         f"reach this computer on port {port} can use it"] if warned else []
    )  # fmt: skip


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model was loaded before the options were checked")


@needs_gradio
def test_a_typed_render_size_snaps_to_the_models_stride(
    small_photo: Path, tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    from pixcolor.app._page import _Handlers

    handlers = _Handlers(colorizer, tmp_path / "tabs", None)
    assert colorizer.generator.stride == 128
    sizes = [handlers.snap_size(v) for v in (130, 191.0, 193, 0, 5000, None, float("nan"))]
    assert sizes == [128, 128, 256, 128, 1024, 128, 128]
    session = _session.open_photo(small_photo, tmp_path / "tabs")
    view = handlers.refresh(session, 1.0, 130)  # a click after typing 130 used to fail
    assert view[5] == ""  # no error message
    np.testing.assert_array_equal(view[2], _session.render(colorizer, session, render_size=128))
    photo, _, message = handlers.downloads(session, 1.0, 130)
    assert message.startswith("Ready") and photo["visible"] is True


@needs_gradio
def test_download_after_the_upload_is_gone(
    small_photo: Path, tmp_path: Path, colorizer: pixcolor.Colorizer
) -> None:
    from pixcolor.app._page import _Handlers

    handlers = _Handlers(colorizer, tmp_path / "tabs", None)
    session = _session.open_photo(small_photo, tmp_path / "tabs")
    small_photo.unlink()  # as Gradio's cache cleaning does after six hours
    photo, hints, message = handlers.downloads(session, 1.0, 128)
    assert photo["visible"] is False and hints["visible"] is False
    assert "upload the photo again" in message
