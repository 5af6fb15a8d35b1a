"""``pixcolor app`` in a real browser: Debian's headless Chromium driven by Playwright.

The server is the real command (``tests/app_server.py`` runs ``pixcolor app`` with audit
hooks that record every file written and every network look-up), started on 127.0.0.1 with
its own empty TMPDIR and working folder. The tests upload photos, click colour hints, read
the pixels the page shows and the files it offers, and finally stop the server and check
that it wrote nothing outside its temporary folder, left that folder empty, and never
reached beyond this machine; the browser, too, only ever talks to the server.

Needs Gradio (``pip install -e ".[app]"``), Playwright (the ``dev`` extra; it never
downloads a browser here) and Chromium (``apt-get install chromium``). Without one of them
the tests are skipped with the reason, which ``pytest -ra`` prints.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import pixcolor
from helpers import write_png_bomb

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).with_name("app_server.py")
EXAMPLE = ROOT / "examples" / "data" / "expedition_1897.jpg"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What works offline (see the machine notes): no background requests, no first-run UI.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
MAX_UPLOAD_MB = 2
TIMEOUT_MS = 90_000  # one colourisation on a loaded 2-core machine, with margin
SCREENSHOT = os.environ.get("PIXCOLOR_APP_SCREENSHOT")  # e.g. docs/_static/app.jpg


def _missing() -> str | None:
    if find_spec("gradio") is None:
        return 'Gradio is not installed: pip install -e ".[app]"'
    if find_spec("playwright") is None:
        return "Playwright is not installed: pip install playwright (the dev extra)"
    if CHROMIUM is None:
        return "Chromium is not installed: apt-get install chromium (Debian's package)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_missing() is not None, reason=f"browser tests skipped: {_missing()}"),
]


# --- fixtures ------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    tmp: Path
    cwd: Path
    audit: Path
    output: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("app")
    tmp, cwd = base / "tmp", base / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    # The environment a user has: none of the settings this test process made (importing
    # torch here set TORCHINDUCTOR_CACHE_DIR to a folder in the system's /tmp).
    unset = ("GRADIO_ANALYTICS_ENABLED", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(TMPDIR=str(tmp), PIXCOLOR_AUDIT_LOG=str(base / "audit.jsonl"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")  # fmt: skip
    port = _free_port()
    command = [sys.executable, str(SERVER), "--port", str(port), "--device", "cpu",
               "--max-upload-mb", str(MAX_UPLOAD_MB)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    running = Server(f"http://127.0.0.1:{port}", process, tmp, cwd, base / "audit.jsonl")
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line)
            if f"127.0.0.1:{port}" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 240
    while not started.wait(0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("pixcolor app did not start:\n" + "".join(running.output))
    yield running
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Tab:
    """One browser tab on the page, with every URL it requested."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.server = server
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(server.url)
        self.page.wait_for_selector("#pixcolor-upload")

    def upload(self, path: Path) -> None:
        """Click the upload button and choose ``path`` in the file dialog."""
        with self.page.expect_file_chooser() as chooser:
            self.page.click("#pixcolor-upload")
        chooser.value.set_files(str(path))

    def status(self) -> str:
        return self.page.inner_text("#pixcolor-status")

    def wait_status(self, pattern: str) -> str:
        """Wait until the message line matches ``pattern`` (a regex); return it."""
        from playwright.sync_api import expect

        expect(self.page.locator("#pixcolor-status")).to_have_text(
            re.compile(pattern), timeout=TIMEOUT_MS
        )
        return self.status()

    def picture(self, which: str) -> np.ndarray:
        """The picture ``which`` ("gray" or "result") as the page shows it, ``(h, w, 3)``."""
        src = self.page.get_attribute(f"#pixcolor-{which} img", "src")
        return np.array(Image.open(io.BytesIO(self.fetch(src))).convert("RGB"))

    def fetch(self, url: str) -> bytes:
        response = self.page.request.get(url)
        assert response.ok, f"{url}: {response.status}"
        return response.body()

    def click(self, which: str, fx: float, fy: float) -> tuple[int, int]:
        """Click the picture at fractions ``(fx, fy)`` of its size; returns the clicked
        pixel of the picture's own (natural) size."""
        image = self.page.locator(f"#pixcolor-{which} img")
        box = image.bounding_box()
        natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        image.click(position={"x": fx * box["width"], "y": fy * box["height"]})
        return int(fx * natural[0]), int(fy * natural[1])

    def hints(self) -> list[str]:
        return [t.strip() for t in self.page.locator("#pixcolor-hints label").all_inner_texts()]

    def wait_hints(self, count: int, contains: str = "") -> list[str]:
        self.page.wait_for_function(
            """([count, contains]) => {
                const labels = [...document.querySelectorAll('#pixcolor-hints label')];
                return labels.length === count && labels.map(l => l.innerText).join('\\n').includes(contains);
            }""",
            arg=[count, contains],
        )
        return self.hints()

    def wait_new_picture(self, which: str, old_src: str | None) -> None:
        self.page.wait_for_function(
            """([selector, old]) => {
                const img = document.querySelector(selector);
                return img && img.complete && img.naturalWidth > 0 && img.src !== old;
            }""",
            arg=[f"#pixcolor-{which} img", old_src],
        )

    def src(self, which: str) -> str | None:
        locator = self.page.locator(f"#pixcolor-{which} img")
        return locator.get_attribute("src") if locator.count() else None

    def set_color(self, color: str) -> None:
        """Type ``color`` into the colour picker's hex field, as a user does."""
        self.page.click("#pixcolor-color button.dialog-button")
        field = self.page.locator("#pixcolor-color input[type=text]")
        field.fill(color)
        field.press("Enter")
        self.page.click("#pixcolor-intro")  # closes the picker's dialog

    def download(self, element: str) -> bytes:
        link = self.page.locator(f"#pixcolor-{element} a").first
        link.wait_for()
        return self.fetch(link.get_attribute("href"))

    def assert_only_local_requests(self) -> None:
        foreign = [
            u for u in self.requests if not u.startswith((self.server.url, "data:", "blob:"))
        ]
        assert not foreign, f"the page requested other hosts: {foreign}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    opened = Tab(browser, server)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1200 x 833 black-and-white JPEG: larger than the page's preview, so the hint
    coordinates of the download must be scaled back to the photo."""
    path = tmp_path_factory.mktemp("photos") / "expedition.jpg"
    Image.open(EXAMPLE).convert("L").resize((1200, 833), Image.BICUBIC).save(path, quality=92)
    return path


# --- tests ---------------------------------------------------------------------------


def test_page_loads_offline(tab: Tab) -> None:
    tab.page.wait_for_selector("#pixcolor-examples img")
    assert "pixcolor" in tab.page.title()
    assert tab.page.locator("#pixcolor-gray").is_visible()
    tab.assert_only_local_requests()


def test_click_a_hint_and_pick_its_colour(tab: Tab, photo: Path) -> None:
    tab.upload(photo)
    tab.wait_status(r"expedition\.jpg: 1200 x 833 pixels")
    before = tab.picture("result")
    height, width = before.shape[:2]
    assert max(height, width) < 1200  # a preview, not the photo
    fx, fy = 0.15, 0.88  # the grass in front of the men
    src = tab.src("result")
    x, y = tab.click("result", fx, fy)
    (label,) = tab.wait_hints(1)
    # The new hint starts with the model's colour there (up to the preview's JPEG noise).
    default = _hex_color(label)
    assert np.abs(default - _patch(before, x, y)).max() < 24, (label, _patch(before, x, y))

    target = "#3a8f2e"
    tab.set_color(target)
    tab.wait_hints(1, contains=target)
    tab.wait_new_picture("result", src)
    after = tab.picture("result")
    moved = _chroma_distance(_patch(after, x, y), target)
    was = _chroma_distance(_patch(before, x, y), target)
    assert moved < 0.4 * was, f"chroma distance to {target}: {was:.1f} before, {moved:.1f} after"
    # Markers are drawn on the gray picture only; the result keeps the photo's own luma.
    assert _luma_error(after, tab.picture("gray")) < 3.0

    shot = Image.open(io.BytesIO(tab.page.screenshot(full_page=True))).convert("RGB")
    assert np.asarray(shot).std() > 20  # the page, not a blank or half-drawn one

    tab.page.click("#pixcolor-prepare")
    full = Image.open(io.BytesIO(tab.download("result-file")))
    assert (full.format, full.size) == ("JPEG", (1200, 833))
    hints = json.loads(tab.download("hints-file"))
    assert len(hints) == 1 and hints[0]["color"] == target
    # In the photo's pixels (the preview is smaller), where the click was (within the two
    # preview pixels that the browser's and Gradio's rounding may differ by).
    scale_x, scale_y = 1200 / width, 833 / height
    assert abs(hints[0]["x"] - ((x + 0.5) * scale_x - 0.5)) <= 2 * scale_x
    assert abs(hints[0]["y"] - ((y + 0.5) * scale_y - 0.5)) <= 2 * scale_y
    assert f"x {hints[0]['x']:g}, y {hints[0]['y']:g}" in label
    full_rgb = np.asarray(full.convert("RGB"))
    full_patch = _patch(full_rgb, round(hints[0]["x"]), round(hints[0]["y"]), radius=6)
    assert _chroma_distance(full_patch, target) < 0.4 * was
    tab.assert_only_local_requests()


def test_picker_colour_mode_undo_and_clear(tab: Tab, photo: Path) -> None:
    tab.upload(photo)
    tab.wait_status(r"expedition\.jpg")
    plain = tab.picture("result")
    tab.page.get_by_label("the picker's colour").check()
    blue = "#1f4fd0"
    tab.set_color(blue)  # no hint selected yet: only sets the colour of the next ones
    pictures = []
    for i, (fx, fy) in enumerate([(0.2, 0.2), (0.8, 0.85)]):
        src = tab.src("result")
        tab.click("gray", fx, fy)
        labels = tab.wait_hints(i + 1, contains=blue)
        tab.wait_new_picture("result", src)
        pictures.append(tab.picture("result"))
    assert all(blue in label for label in labels)
    src = tab.src("result")
    tab.page.click("#pixcolor-undo")
    assert tab.wait_hints(1) == labels[:1]  # the first one is left
    tab.wait_new_picture("result", src)
    assert np.abs(tab.picture("result").astype(int) - pictures[0]).mean() < 1.0
    src = tab.src("result")
    tab.page.click("#pixcolor-clear")
    tab.wait_hints(0)
    tab.wait_new_picture("result", src)
    # Without hints the page shows the model's own colours again.
    assert np.abs(tab.picture("result").astype(int) - plain).mean() < 1.0


def test_select_an_earlier_hint_in_the_list_and_recolour_it(tab: Tab) -> None:
    from playwright.sync_api import expect

    tab.page.click("#pixcolor-examples img >> nth=0")  # expedition_1897.jpg
    tab.wait_status(r"expedition_1897\.jpg")
    for count, (fx, fy) in enumerate([(0.15, 0.88), (0.5, 0.06)], start=1):
        src = tab.src("result")
        tab.click("result", fx, fy)
        tab.wait_hints(count)
        tab.wait_new_picture("result", src)
    first, second = tab.hints()  # the picker edits the second, the latest
    radio = tab.page.locator("#pixcolor-hints input[type=radio]").first
    expect(radio).to_be_enabled(timeout=5_000)  # an output-only Radio renders disabled
    radio.check()
    expect(radio).to_be_checked()
    target = "#c0392b"
    src = tab.src("result")
    tab.set_color(target)
    labels = tab.wait_hints(2, contains=target)
    tab.wait_new_picture("result", src)
    assert labels[0] == re.sub(r"#[0-9a-f]{6}", target, first)  # hint 1 recoloured
    assert labels[1] == second  # hint 2 untouched


def test_saturation_slider(tab: Tab) -> None:
    tab.page.click("#pixcolor-examples img >> nth=0")  # expedition_1897.jpg
    tab.wait_status(r"expedition_1897\.jpg: 500 x 347 pixels")
    coloured = tab.picture("result")
    assert _chroma(coloured) > 3.0
    src = tab.src("result")
    number = tab.page.locator("#pixcolor-saturation input[type=number]")
    number.fill("0")
    number.press("Enter")
    tab.wait_new_picture("result", src)
    gray = tab.picture("result")
    assert _chroma(gray) < 1.0  # saturation 0: gray, with the photo's own luma
    assert _luma_error(gray, coloured) < 1.0


def test_a_typed_render_size_snaps_to_a_multiple_of_the_stride(tab: Tab) -> None:
    from playwright.sync_api import expect

    tab.page.click("#pixcolor-examples img >> nth=1")  # yawn.jpg
    tab.wait_status(r"yawn\.jpg: 419 x 500")
    number = tab.page.locator("#pixcolor-render-size input[type=number]")
    number.fill("130")  # the bundled model takes multiples of 128
    number.press("Enter")
    expect(number).to_have_value("128")
    tab.click("result", 0.5, 0.5)  # every click failed with 130
    tab.wait_hints(1)
    assert "Error" not in tab.status()


def test_bad_files_give_a_message_and_the_server_keeps_serving(
    tab: Tab, photo: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo\n" * 100)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, side=20_000)  # 400 megapixels in about 50 kB
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(int((MAX_UPLOAD_MB + 0.5) * 2**20)))

    tab.upload(photo)
    tab.wait_status(r"expedition\.jpg: 1200 x 833")
    shown = tab.src("result")
    for path, words in [
        (text, r"notes\.jpg.*cannot"),
        (truncated, r"truncated\.jpg.*(truncated|cannot decode)"),
        (bomb, r"bomb\.png.*too large to decode safely"),
    ]:
        tab.upload(path)
        message = tab.wait_status(rf"Error: This file cannot be used: .*{words}")
        assert "/tmp" not in message and str(tab.server.tmp) not in message  # no server paths
        assert tab.src("result") == shown  # the last good photo stays
    tab.upload(big)  # refused by the browser, before sending (Gradio's own message)
    tab.page.get_by_text(re.compile(r"exceed the maximum allowed size of 2.*big\.png")).wait_for()
    tab.upload(EXAMPLE)
    tab.wait_status(r"expedition_1897\.jpg: 500 x 347 pixels")


def test_tabs_do_not_mix(browser: Any, server: Server, photo: Path) -> None:
    first, second = Tab(browser, server), Tab(browser, server)
    try:
        first.upload(photo)
        first.wait_status(r"expedition\.jpg: 1200 x 833")
        first.click("result", 0.5, 0.5)
        first.wait_hints(1)
        second.page.click("#pixcolor-examples img >> nth=1")  # yawn.jpg
        second.wait_status(r"yawn\.jpg: 419 x 500")
        assert second.hints() == []
        second.click("gray", 0.3, 0.3)
        second.wait_hints(1)
        second.click("gray", 0.6, 0.6)
        second.wait_hints(2)
        assert len(first.hints()) == 1
        assert first.picture("gray").shape == (533, 768, 3)  # its own photo's preview
        assert second.picture("gray").shape == (500, 419, 3)
        for one, size in [(first, (1200, 833)), (second, (419, 500))]:
            one.page.click("#pixcolor-prepare")
            assert Image.open(io.BytesIO(one.download("result-file"))).size == size
        assert len(json.loads(first.download("hints-file"))) == 1
        assert len(json.loads(second.download("hints-file"))) == 2
        assert len(_tab_folders(server)) >= 2
    finally:
        first.close()
        second.close()
    # A closed tab's files go at once (the other tests' tabs are closed too by now).
    deadline = time.monotonic() + 60
    while _tab_folders(server) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _tab_folders(server) == []


@pytest.mark.skipif(not SCREENSHOT, reason="PIXCOLOR_APP_SCREENSHOT=docs/_static/app.jpg writes it")
def test_screenshot_for_the_docs(tab: Tab) -> None:
    """The README's and the docs' picture of the page: a few hints on the 1897 photo."""
    tab.page.click("#pixcolor-examples img >> nth=0")
    tab.wait_status(r"expedition_1897\.jpg")
    tab.page.get_by_label("the picker's colour").check()
    hints = [((0.1, 0.92), "#4f7a2a"), ((0.5, 0.06), "#9cc0e0"), ((0.55, 0.27), "#d9a07f"),
             ((0.18, 0.55), "#3b3f5c"), ((0.33, 0.75), "#b59e78")]  # fmt: skip
    for count, ((fx, fy), color) in enumerate(hints, start=1):
        tab.set_color(color)
        src = tab.src("result")
        tab.click("gray", fx, fy)
        tab.wait_hints(count, contains=color)
        tab.wait_new_picture("result", src)
    Image.open(io.BytesIO(tab.page.screenshot(full_page=True))).convert("RGB").save(
        SCREENSHOT, quality=85, optimize=True
    )


def test_server_stops_cleanly_and_wrote_only_its_temp_folder(server: Server) -> None:
    """Last: stops the server."""
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, "".join(server.output)
    # Importing torchvision makes torch's compile-cache folder; that one is not the app's.
    left = [p for p in server.tmp.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], f"left in the temporary folder: {left}"
    assert list(server.cwd.iterdir()) == []
    records = [json.loads(line) for line in server.audit.read_text().splitlines()]
    outside = {
        r["what"] for r in records
        if r["kind"] == "write" and not _inside(r["what"], server.tmp) and r["what"] != "/dev/null"
    }  # fmt: skip
    assert not outside, f"wrote outside its temporary folder: {sorted(outside)}"
    network = [r for r in records if r["kind"] in ("lookup", "connect")]
    assert not network, f"reached beyond this machine: {network}"


# --- helpers -------------------------------------------------------------------------


def _tab_folders(server: Server) -> list[Path]:
    """The per-tab download folders the server holds now."""
    return sorted(server.tmp.glob("pixcolor-app-*/tabs/sessions/session-*"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _patch(rgb: np.ndarray, x: int, y: int, radius: int = 2) -> np.ndarray:
    """Mean colour of the ``(2 r + 1)^2`` pixels around ``(x, y)``."""
    window = rgb[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
    return window.reshape(-1, 3).mean(axis=0)


def _hex_color(label: str) -> np.ndarray:
    (code,) = re.findall(r"#[0-9a-f]{6}", label)
    return np.array([int(code[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _chroma_distance(rgb: np.ndarray, color: str) -> float:
    """Distance in the a/b plane of CIE Lab between an RGB colour (0-255) and ``color``."""
    target = _hex_color(color)
    both = torch.tensor(np.stack([rgb, target]) / 255.0, dtype=torch.float32).view(2, 3, 1, 1)
    ab = pixcolor.lab.rgb_to_lab(both)[:, 1:, 0, 0]
    return float((ab[0] - ab[1]).norm())


def _chroma(rgb: np.ndarray) -> float:
    """Mean chroma (length of a/b in CIE Lab) of an RGB picture (0-255)."""
    ab = pixcolor.lab.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)[1:]
    return float(ab.norm(dim=0).mean())


def _luma_error(rgb: np.ndarray, gray: np.ndarray) -> float:
    """Median |Rec. 601 luma| difference in levels, over pixels away from the gray picture's
    hint markers (the Colorizer keeps a photo's luma: docs/speed.rst)."""
    weights = np.array([0.299, 0.587, 0.114])
    difference = np.abs(rgb.astype(float) @ weights - gray.astype(float) @ weights)
    return float(np.median(difference))
