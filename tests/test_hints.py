"""Colour hints: parsing and errors, hint planes, Colorizer.colorize(hints=...), the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pixcolor import Colorizer, Hint, UNetGenerator, lab, load_hints
from pixcolor.batch import colorize_files
from pixcolor.cli import main
from pixcolor.hints import HintSet, hint_planes, parse_hints, rasterize

ASSETS = Path(__file__).parent / "assets"
RED_AB = (80.0925, 67.2032)  # Lab a/b of sRGB (255, 0, 0), from skimage


# --- parsing ----------------------------------------------------------------------------


def test_hint_forms_agree() -> None:
    forms: list[Any] = [
        Hint(3, 4.5, "#FF0000", radius=2),
        (3, 4.5, (255, 0, 0), 2),
        {"x": 3, "y": 4.5, "color": "#ff0000", "radius": 2},
        [3, 4.5, np.array([255, 0, 0], np.uint8), 2],
    ]
    parsed = parse_hints(forms)
    assert {(h.x, h.y, h.rgb, h.radius) for h in parsed} == {(3, 4.5, (255, 0, 0), 2)}
    np.testing.assert_allclose(parsed[0].ab, RED_AB, atol=1e-3)
    assert parse_hints(None) == []


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ([(1, 2, "red")], "hints[0]: colour 'red' is not '#rrggbb'"),
        ([(1, 2, "#12345")], "'#12345'"),
        ([(1, 2, (255, 0, 0)), (1, 2, (256, 0, 0))], "hints[1]: colour (256, 0, 0)"),
        ([(1, 2, (1.0, 0.5, 0.0))], "integers in 0..255"),
        ([(1, 2, (True, 0, 0))], "integers in 0..255"),
        ([(float("nan"), 2, "#000000")], "hint x must be a finite number, got nan"),
        ([(1, 2, "#000000", -1)], "radius must be >= 0, got -1"),
        ([(1, 2)], "a hint must be a Hint, an (x, y, color[, radius]) tuple or a dict"),
        ([{"x": 1, "y": 2}], "needs keys x, y, color (and optionally radius); missing: 'color'"),
        (
            [{"x": 1, "y": 2, "color": "#000000", "size": 3}],
            "hints[0]: a hint dict has the unknown key(s) 'size'; its keys are x, y, color",
        ),
        (Hint(1, 2, "#000000"), "hints must be a list (sequence) of hints"),
        ("#ff0000", "hints must be a list (sequence) of hints"),
        (
            (10, 10, "#ff0000"),
            "hints must be a list (sequence) of hints, got the single hint (10, 10, '#ff0000'): "
            "write [(10, 10, '#ff0000')]; for a list of images, a list with one list of hints "
            "per image",
        ),
    ],
)
def test_parse_errors_name_the_value(hints: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hints(hints)
    assert message in str(info.value)


def test_outside_the_image() -> None:
    HintSet.build((10, 20), [(19.99, 9.5, "#000000")])  # the last pixel is inside
    for x, y in [(20, 5), (-0.1, 5), (5, 10)]:
        with pytest.raises(ValueError, match=r"hints\[0\]: .* outside the 20x10 image"):
            HintSet.build((10, 20), [(x, y, "#000000")])


def test_load_hints(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(
        json.dumps(
            [
                {"x": 1, "y": 2, "color": "#00ff00"},
                {"x": 3, "y": 4, "color": "#0000ff", "radius": 5},
            ]
        )
    )
    hints = load_hints(one)
    assert isinstance(hints, list) and hints[1] == Hint(3, 4, "#0000ff", 5)
    several = tmp_path / "several.json"
    several.write_text(json.dumps({"a.jpg": [{"x": 1, "y": 2, "color": "#00ff00"}], "b.png": []}))
    assert load_hints(several) == {"a.jpg": [Hint(1, 2, "#00ff00")], "b.png": []}
    bad = tmp_path / "bad.json"
    for text, message in [
        ("[{", "is not valid JSON"),
        ('[{"x": 1, "y": 2, "color": "green"}]', "hints[0]: colour 'green'"),
        ('{"a.jpg": [{"x": 1, "y": 2, "color": "#00"}]}', "'a.jpg'[0]: colour '#00'"),
        ('{"a.jpg": 3}', "'a.jpg' must map to a list"),
        ("3", "must hold a list of hints or an object"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match="bad.json") as info:
            load_hints(bad)
        assert message in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_hints(tmp_path / "missing.json")
    with pytest.raises(ValueError, match=r"hints file '.*' is a folder, not a JSON file"):
        load_hints(tmp_path)
    bad.write_text('[{"x": 1, "y": 2, "colour": "#00ff00"}]')
    with pytest.raises(ValueError, match=r"bad.json'?: hints\[0\]: .* unknown key\(s\) 'colour'"):
        load_hints(bad)


# --- planes (the contract with hint models) -------------------------------------------


def test_planes_contract() -> None:
    hints = [
        Hint(0, 0, "#ff0000"),
        Hint(39.5, 19.5, (0, 0, 255)),
        Hint(20, 10, "#00ff00", radius=5),
    ]
    planes = hint_planes(hints, image_size=(20, 40), render_size=8, ab_scale=110.0)
    assert planes.shape == (1, 3, 8, 8) and planes.dtype == torch.float32
    a, b, mask = planes[0]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask[0, 0] == 1 and mask[7, 7] == 1  # corners: hints at the borders are kept
    torch.testing.assert_close(planes[0, :2, 0, 0], torch.tensor(RED_AB) / 110.0, atol=1e-4, rtol=0)
    # radius 5 px around (20, 10): the cells (5 x 2.5 px) whose centres are within 5 px,
    # columns 3-4 (centres 17.5, 22.5) x rows 2-5 (centres 6.25 ... 13.75)
    expected = torch.zeros(8, 8)
    expected[2:6, 3:5] = 1
    expected[0, 0] = expected[7, 7] = 1
    torch.testing.assert_close(mask, expected)
    assert (a[mask == 0] == 0).all() and (b[mask == 0] == 0).all()
    empty = hint_planes([], (20, 40), 8)
    assert empty.abs().sum() == 0


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (5, 300)])
def test_planes_tiny_images_cover_a_cell(size: tuple[int, int]) -> None:
    height, width = size
    hints = [Hint(width - 0.01, height - 0.01, "#ff0000"), Hint(0, 0, "#ff0000")]
    planes = hint_planes(hints, size, render_size=32, ab_scale=110.0)
    mask = planes[0, 2]
    assert mask.sum() >= 1 and mask[-1, -1] == 1 and mask[0, 0] == 1
    # a painted pixel covers every cell it overlaps, however many
    painted = np.zeros((height, width, 4), np.uint8)
    painted[-1, -1] = (255, 0, 0, 255)
    mask = hint_planes(HintSet.build(size, None, painted), size, 32)[0, 2]
    cells = (-(-32 // height)) * (-(-32 // width))
    assert mask[-1, -1] == 1 and mask.sum() == min(32, -(-32 // height)) * min(32, -(-32 // width))
    assert mask.sum() <= cells


def test_rasterize_averages_overlaps() -> None:
    hints = HintSet.build((4, 4), [(1, 1, "#ff0000"), (1.2, 1.2, "#0000ff")])
    ab, mask = rasterize(hints, (2, 2))
    assert mask.sum() == 1
    torch.testing.assert_close(
        ab[:, 0, 0], torch.tensor(np.mean([hints.ab[0], hints.ab[1]], 0), dtype=torch.float32)
    )


def test_hint_image_strokes_and_errors() -> None:
    strokes = np.zeros((30, 40, 4), np.uint8)
    strokes[10, 5:35] = (255, 0, 0, 255)  # a one-pixel line, thinner than a grid cell
    strokes[20, 20] = (0, 0, 255, 100)  # not opaque enough: ignored
    hints = HintSet.build((30, 40), None, Image.fromarray(strokes))
    assert len(hints) == 30
    planes = hint_planes(hints, (30, 40), render_size=8)
    # row 10 of 30 -> row 2 of 8; columns 5..34 -> cells 1..6 of 8 (5 px each)
    assert planes[0, 2].sum() == 6 and planes[0, 2, 2, 1:7].sum() == 6
    with pytest.raises(ValueError, match="hint_image is 40x31 but the image is 40x30"):
        HintSet.build((30, 40), None, np.zeros((31, 40, 4), np.uint8))
    with pytest.raises(ValueError, match="must have an alpha channel"):
        HintSet.build((30, 40), None, np.zeros((30, 40, 3), np.uint8))


# --- Colorizer.colorize(hints=...) ------------------------------------------------------


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5), device="cpu")


def _ab_at(image: Any, hint: Hint) -> np.ndarray:
    return lab.rgb2lab(np.asarray(image)[..., :3])[int(hint.y), int(hint.x), 1:]


def test_outputs_follow_hints(colorizer: Colorizer) -> None:
    photo = Image.open(ASSETS / "chelsea.jpg").convert("L")
    hints = [Hint(40, 120, "#2e8b57"), Hint(200, 30, (70, 130, 180)), Hint(128, 85, "#cd5c5c")]
    out = colorizer.colorize(photo, render_size=32, hints=hints)
    plain = colorizer.colorize(photo, render_size=32)
    for hint in hints:
        error = np.linalg.norm(_ab_at(out, hint) - np.array(hint.ab))
        assert error < 8.0, (hint, error)
        assert np.linalg.norm(_ab_at(plain, hint) - np.array(hint.ab)) > 20.0
    # the luma is the photo's own, hints or not: back to gray it is the input (within a level)
    gray_again = np.asarray(out.convert("L"), dtype=int)
    assert np.abs(gray_again - np.asarray(photo, dtype=int)).max() <= 1
    # far from the hints (and across edges) the model's colour stays close
    assert colorizer.colorize(photo, render_size=32, hints=[]).tobytes() == plain.tobytes()


def test_lists_with_per_image_hints(colorizer: Colorizer) -> None:
    cat = Image.open(ASSETS / "chelsea.jpg")
    coffee = np.asarray(Image.open(ASSETS / "coffee.jpg"))
    hint = Hint(100, 50, "#1e90ff", radius=3)
    outs = colorizer.colorize(
        [cat, coffee, cat],
        render_size=32,
        hints=[None, [hint], [(10, 10, "#c8a050")]],
        batch_size=2,
    )
    alone = colorizer.colorize(coffee, render_size=32, hints=[hint])
    assert np.array_equal(outs[1], alone)
    assert outs[0].tobytes() == colorizer.colorize(cat, render_size=32).tobytes()
    assert (
        np.linalg.norm(_ab_at(outs[2], Hint(10, 10, "#c8a050")) - Hint(10, 10, "#c8a050").ab) < 8.0
    )
    with pytest.raises(ValueError, match="one entry per image"):
        colorizer.colorize([cat, cat], render_size=32, hints=[[hint]])
    for flat, got in [((10, 10, "#c8a050"), "the single hint"), ([hint, hint], "one list")]:
        with pytest.raises(ValueError, match=f"one list of hints per image .*, got {got}"):
            colorizer.colorize([cat, cat], render_size=32, hints=flat)
    with pytest.raises(ValueError, match=r"got the single hint \(10, 10, '#c8a050'\)"):
        colorizer.colorize(cat, render_size=32, hints=(10, 10, "#c8a050"))
    with pytest.raises(ValueError, match=r"inputs\[1\]: hints\[0\]: .* outside the 256x171 image"):
        colorizer.colorize([cat, coffee], render_size=32, hints=[None, [(300, 5, "#000000")]])
    with pytest.raises(ValueError, match=r"inputs\[0\]: hints\[0\]: colour"):
        colorizer.colorize([cat], render_size=32, hints=[[(3, 5, "#00")]])


def test_hint_image_in_colorize(colorizer: Colorizer) -> None:
    truth = Image.open(ASSETS / "coffee.jpg")
    photo = truth.convert("L")
    colour = truth.getpixel((75, 62))  # in gamut at the photo's lightness there
    strokes = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    strokes.paste((*colour, 255), (60, 60, 90, 64))
    out = colorizer.colorize(photo, render_size=32, hint_image=strokes)
    target = Hint(75, 62, colour)
    assert (
        np.linalg.norm(_ab_at(colorizer.colorize(photo, render_size=32), target) - target.ab) > 15
    )
    assert np.linalg.norm(_ab_at(out, target) - np.array(target.ab)) < 8.0
    with pytest.raises(ValueError, match="hint_image is 10x10"):
        colorizer.colorize(photo, render_size=32, hint_image=Image.new("RGBA", (10, 10)))


class _HintGenerator(UNetGenerator):
    """A tiny hint model (``hint_channels = 3``) that records the planes it is given."""

    def __init__(self) -> None:
        super().__init__(encoder="pix2pix", base_channels=4, num_downs=5, hint_channels=3)
        self.seen: list[torch.Tensor | None] = []

    def forward(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(None if hints is None else hints.clone())
        return super().forward(lightness, hints)


def test_hint_models_get_planes() -> None:
    gen = _HintGenerator()
    # fp32: "auto" picks bf16 on a CPU that runs it natively, and this test reads the planes'
    # values at fp32's precision
    colorizer = Colorizer(gen, device="cpu", precision="fp32")
    photo = np.zeros((20, 30), np.uint8)
    colorizer.colorize([photo, photo], render_size=32, hints=[[(29.99, 0, "#ff0000")], None])
    gen = colorizer.network.network  # what colorize runs: the converted copy of the generator
    planes = gen.seen[-1]
    assert planes is not None and planes.shape == (2, 3, 32, 32)
    assert planes[0, 2, 0, 31] == 1 and planes[0, 2].sum() == 1 and planes[1].abs().sum() == 0
    torch.testing.assert_close(
        planes[0, :2, 0, 31], torch.tensor(RED_AB) / gen.config.ab_scale, atol=1e-4, rtol=0
    )
    colorizer.colorize(photo, render_size=32)
    assert gen.seen[-1] is None


# --- batch and CLI ----------------------------------------------------------------------


def test_cli_hints(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "in" / "cat.png"
    photo.parent.mkdir()
    Image.open(ASSETS / "chelsea.jpg").convert("L").save(photo)
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"x": 40, "y": 120, "color": "#2e8b57", "radius": 3}]))
    common = ["--model", str(model_dir), "--render-size", "32", "--no-progress"]
    assert (
        main(["colorize", str(photo), "-o", str(tmp_path / "out"), "--hints", str(hints), *common])
        == 0
    )
    out = Image.open(tmp_path / "out" / "cat.png")
    assert np.linalg.norm(_ab_at(out, Hint(40, 120, "#2e8b57")) - Hint(40, 120, "#2e8b57").ab) < 8.0

    strokes = tmp_path / "strokes.png"
    layer = Image.new("RGBA", (256, 170), (0, 0, 0, 0))
    colour = Image.open(ASSETS / "chelsea.jpg").getpixel((120, 102))
    layer.paste((*colour, 255), (100, 100, 140, 104))
    layer.save(strokes)
    assert (
        main(
            [
                "colorize",
                str(photo),
                "-o",
                str(tmp_path / "out2"),
                "--hint-image",
                str(strokes),
                *common,
            ]
        )
        == 0
    )
    assert (
        np.linalg.norm(
            _ab_at(Image.open(tmp_path / "out2" / "cat.png"), Hint(120, 102, colour))
            - Hint(0, 0, colour).ab
        )
        < 8.0
    )

    # several inputs: a plain list is refused, a mapping by file name works
    Image.open(ASSETS / "coffee.jpg").save(tmp_path / "in" / "coffee.jpg")
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "out3"),
                "--hints",
                str(hints),
                *common,
            ]
        )
        == 1
    )
    assert "give a mapping from file name to hints" in capsys.readouterr().err
    assert not (tmp_path / "out3").exists()
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"cat.png": [{"x": 40, "y": 120, "color": "#2e8b57"}]}))
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "out3"),
                "--hints",
                str(mapping),
                *common,
            ]
        )
        == 0
    )
    assert (tmp_path / "out3" / "in" / "cat.png").read_bytes() != b""
    mapping.write_text(json.dumps({"dog.png": []}))
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "out4"),
                "--hints",
                str(mapping),
                *common,
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert (
        f"hints file {str(mapping)!r} names 'dog.png', which is not among the input images" in err
    )
    # a hint outside the image: the file fails with a message naming the value
    hints.write_text(json.dumps([{"x": 400, "y": 1, "color": "#2e8b57"}]))
    assert (
        main(["colorize", str(photo), "-o", str(tmp_path / "out5"), "--hints", str(hints), *common])
        == 1
    )
    err = capsys.readouterr().err
    assert f"hints file {str(hints)!r}: hints[0]: (400, 1) is outside the 256x170 image" in err
    mapping.write_text(json.dumps({"cat.png": [{"x": 400, "y": 1, "color": "#2e8b57"}]}))
    out6 = tmp_path / "out6"
    assert main(["colorize", str(tmp_path / "in"), "-o", str(out6), "--hints", str(mapping),
                 *common]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert f"hints file {str(mapping)!r}: 'cat.png': hints[0]: (400, 1) is outside" in err
    assert (out6 / "in" / "coffee.jpg").is_file()  # the other photo is written
    assert main(["colorize", str(photo), "--hints", str(tmp_path), *common]) == 1
    assert f"hints file {str(tmp_path)!r} is a folder, not a JSON file" in capsys.readouterr().err


def test_batch_refuses_hint_image_for_several(tmp_path: Path, colorizer: Colorizer) -> None:
    with pytest.raises(ValueError, match="hint image belongs to one input"):
        colorize_files(
            colorizer,
            [ASSETS / "chelsea.jpg", ASSETS / "coffee.jpg"],
            tmp_path,
            hint_image=ASSETS / "chelsea.jpg",
        )


def test_hint_files_are_inputs_never_overwritten(
    tmp_path: Path, colorizer: Colorizer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    photo = tmp_path / "pic.png"
    Image.open(ASSETS / "chelsea.jpg").convert("L").save(photo)
    out = tmp_path / "out"
    out.mkdir()
    strokes = out / "pic.png"  # where the colourised photo would go
    Image.new("RGBA", Image.open(photo).size, (0, 0, 0, 0)).save(strokes)
    kept = strokes.read_bytes()
    with pytest.raises(ValueError, match="would overwrite the hint image"):
        colorize_files(colorizer, [photo], out, hint_image=strokes, overwrite=True)

    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the hint files were checked")

    monkeypatch.setattr(Colorizer, "from_pretrained", no_model)
    argv = ["colorize", str(photo), "-o", str(out), "--overwrite", "--no-progress"]
    assert main([*argv, "--hint-image", str(strokes)]) == 1
    err = capsys.readouterr().err
    assert f"output {str(strokes)!r} would overwrite the hint image {str(strokes)!r}" in err
    assert strokes.read_bytes() == kept
    hints = out / "pic.png"  # a hints file by any name is an input as well
    hints.write_text(json.dumps([{"x": 1, "y": 1, "color": "#2e8b57"}]))
    assert main([*argv, "--hints", str(hints)]) == 1
    assert "would overwrite the hints file" in capsys.readouterr().err
    assert json.loads(hints.read_text()) == [{"x": 1, "y": 1, "color": "#2e8b57"}]


def test_cli_says_when_hints_are_not_applied_to_existing_outputs(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.png"
    Image.open(ASSETS / "chelsea.jpg").convert("L").save(photo)
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps([{"x": 40, "y": 120, "color": "#2e8b57"}]))
    out = tmp_path / "out"
    argv = ["colorize", str(photo), "-o", str(out), "--model", str(model_dir), "--no-progress"]
    assert main([*argv, "--hints", str(hints)]) == 0
    assert "note" not in capsys.readouterr().err
    first = (out / "photo.png").read_bytes()
    hints.write_text(json.dumps([{"x": 40, "y": 120, "color": "#c0392b"}]))  # edited
    assert main([*argv, "--hints", str(hints)]) == 0  # a skip is no error
    captured = capsys.readouterr()
    assert "0 written, 1 skipped (output exists)" in captured.out
    assert captured.err.strip() == (
        f"note: the hints were not applied to 1 file whose output already exists "
        f"({out / 'photo.png'}); pass --overwrite to colorize it again with the hints"
    )
    assert (out / "photo.png").read_bytes() == first
    assert main(argv) == 0  # without hints, a skip needs no note
    assert capsys.readouterr().err == ""
    assert main([*argv, "--hints", str(hints), "--overwrite"]) == 0
    assert capsys.readouterr().err == ""
    assert (out / "photo.png").read_bytes() != first
