"""Before/after pictures for the README, made with the bundled model.

For each photo: the input as the model sees it (gray) beside the colorized output, saved as
one JPEG under ``docs/_static/readme/``. Colour photos are shown with their original on the
right, so the comparison is honest.

Run: ``python scripts/make_readme_images.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

import pixcolor

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "readme"
HEIGHT = 260


def _row(images: list[Image.Image], labels: list[str]) -> Image.Image:
    scaled = [
        im.convert("RGB").resize((round(im.width * HEIGHT / im.height), HEIGHT), Image.LANCZOS)
        for im in images
    ]
    canvas = Image.new(
        "RGB", (sum(im.width for im in scaled) + 8 * (len(scaled) + 1), HEIGHT + 30), "white"
    )
    draw = ImageDraw.Draw(canvas)
    x = 8
    for im, label in zip(scaled, labels, strict=True):
        canvas.paste(im, (x, 26))
        draw.text((x, 6), label, fill=(0, 0, 0))
        x += im.width + 8
    return canvas


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    colorizer = pixcolor.Colorizer.from_pretrained(device="cpu")
    for name in ("expedition_1897", "yawn"):
        gray = Image.open(ROOT / "examples" / "data" / f"{name}.jpg")
        out = colorizer.colorize(gray)
        _row([gray, out], ["black-and-white input", "pixcolor (bundled model)"]).save(
            OUT / f"{name}.jpg", quality=88
        )
    for name in ("coffee", "chelsea", "rocket"):
        truth = Image.open(ROOT / "tests" / "assets" / f"{name}.jpg").convert("RGB")
        gray = truth.convert("L")
        out = colorizer.colorize(gray)
        _row(
            [gray, out, truth], ["input (made gray)", "pixcolor (bundled model)", "original"]
        ).save(OUT / f"{name}.jpg", quality=88)
        print("wrote", OUT / f"{name}.jpg")


if __name__ == "__main__":
    main()
