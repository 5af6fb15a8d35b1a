"""Batch colorization of files and the `pixcolor colorize` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pixcolor import Colorizer, batch
from pixcolor.batch import colorize_files, plan_outputs
from pixcolor.cli import main

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "album"
    (root / "sub").mkdir(parents=True)
    Image.open(ASSETS / "gray_camera.jpg").save(root / "camera.jpg", quality=80)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.open(ASSETS / "chelsea.jpg").convert("L").save(root / "sub" / "cat.png", icc_profile=None)
    Image.open(ASSETS / "coffee.jpg").save(
        root / "sub" / "coffee.jpg", quality=70, icc_profile=srgb
    )
    (root / "notes.txt").write_text("not an image")
    return root


def test_plan_mirrors_folders(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flat = plan_outputs([tree], out)
    assert [d.relative_to(out).as_posix() for _, d in flat] == ["album/camera.jpg"]
    deep = plan_outputs([tree], out, recursive=True)
    assert sorted(d.relative_to(out).as_posix() for _, d in deep) == [
        "album/camera.jpg", "album/sub/cat.png", "album/sub/coffee.jpg",
    ]  # fmt: skip
    globbed = plan_outputs([str(tree / "sub" / "*.jpg")], out)
    assert [d.name for _, d in globbed] == ["coffee.jpg"]


def test_plan_refuses_to_overwrite_inputs(tree: Path) -> None:
    with pytest.raises(ValueError, match="would overwrite the input"):
        plan_outputs([tree / "camera.jpg"], tree)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plan_outputs([tree / "missing.jpg"], tree.parent / "out")
    with pytest.raises(ValueError, match="would both be written"):
        plan_outputs(
            [tree / "sub" / "coffee.jpg", tree / "camera.jpg", str(tree / "sub" / "*.jpg")],
            tree.parent / "o",
        )


def test_colorize_files_keeps_format_and_resumes(
    tree: Path, tmp_path: Path, model_dir: Path
) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    out = tmp_path / "out"
    report = colorize_files(colorizer, [tree], out, recursive=True, render_size=64, progress=False)
    assert len(report.written) == 3 and not report.failed
    coffee_in, coffee_out = (
        Image.open(tree / "sub" / "coffee.jpg"),
        Image.open(out / "album/sub/coffee.jpg"),
    )
    assert coffee_out.format == "JPEG" and coffee_out.size == coffee_in.size
    assert coffee_out.info.get("icc_profile") == coffee_in.info.get("icc_profile")
    assert coffee_out.quantization == coffee_in.quantization  # JPEG quality kept
    assert Image.open(out / "album/sub/cat.png").format == "PNG"
    stamp = (out / "album/camera.jpg").stat().st_mtime_ns
    again = colorize_files(colorizer, [tree], out, recursive=True, render_size=64, progress=False)
    assert len(again.skipped) == 3 and not again.written
    assert (out / "album/camera.jpg").stat().st_mtime_ns == stamp
    forced = colorize_files(
        colorizer, [tree], out, recursive=True, overwrite=True, render_size=64, progress=False
    )
    assert len(forced.written) == 3


def test_cli_reports_bad_files_and_continues(
    tree: Path, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "cli_out"
    code = main(["colorize", str(tree / "camera.jpg"), str(tree / "broken.jpg"), "-o", str(out),
                 "--model", str(model_dir), "--render-size", "64", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert (
        "broken.jpg" in captured.err and "1 written" in captured.out and "1 failed" in captured.out
    )
    assert (out / "camera.jpg").is_file() and not (out / "broken.jpg").exists()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_cli_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["colorize", "--help"])
    text = capsys.readouterr().out
    for flag in ("--output", "--model", "--render-size", "--saturation", "--device", "--batch-size",
                 "--recursive", "--overwrite", "--precision", "--backend", "--calibration"):  # fmt: skip
        assert flag in text


def _gray_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    photo = Image.open(ASSETS / "gray_camera.jpg")
    paths = []
    for i in range(count):
        path = folder / f"p{i:02d}.png"
        photo.rotate(7 * i).save(path)
        paths.append(path)
    return paths


def test_pipeline_writes_what_colorize_gives_in_order_and_records_failures(
    tmp_path: Path, model_dir: Path
) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    paths = _gray_files(tmp_path / "in", 7)
    paths[2].write_bytes(b"not a png")  # fails to decode
    out = tmp_path / "out"
    (out / "in" / "p04.png").mkdir(parents=True)  # cannot be written: a folder is in the way
    report = colorize_files(
        colorizer, [tmp_path / "in"], out, render_size=32, batch_size=3, overwrite=True,
        progress=False,
    )  # fmt: skip
    assert [p.name for p in report.written] == [
        "p00.png",
        "p01.png",
        "p03.png",
        "p05.png",
        "p06.png",
    ]
    assert set(report.failed) == {paths[2], paths[4]}
    assert "cannot write" in report.failed[paths[4]]
    for written in report.written:
        expected = colorizer.colorize(paths[int(written.stem[1:])], render_size=32)
        # Batches are whatever was decoded in time; a batch of another size may round
        # the network's output differently: one level at most.
        got = np.asarray(Image.open(written), dtype=int)
        assert np.abs(got - np.asarray(expected, dtype=int)).max() <= 1


def test_pipeline_holds_a_bounded_number_of_photos(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    _gray_files(tmp_path / "in", 6)
    held, most = [0], [0]
    decode, encode = batch.decode_file, batch.encode_file

    def counting_decode(path: Path) -> object:
        held[0] += 1
        most[0] = max(most[0], held[0])
        return decode(path)

    def counting_encode(*args: object) -> Path:
        out = encode(*args)  # type: ignore[arg-type]
        held[0] -= 1
        return out

    monkeypatch.setattr(batch, "decode_file", counting_decode)
    monkeypatch.setattr(batch, "encode_file", counting_encode)
    monkeypatch.setattr(batch, "MAX_IN_FLIGHT_PIXELS", 1)  # less than a photo: one at a time
    report = colorize_files(colorizer, [tmp_path / "in"], tmp_path / "out", render_size=32,
                            progress=False)  # fmt: skip
    assert len(report.written) == 6 and most[0] == 1
    monkeypatch.setattr(batch, "MAX_IN_FLIGHT_PIXELS", 1 << 30)  # photos bound: 2 * 1 + 2
    most[0] = 0
    colorize_files(colorizer, [tmp_path / "in"], tmp_path / "out2", render_size=32, batch_size=1,
                   progress=False)  # fmt: skip
    assert 1 <= most[0] <= 4


def test_steps_are_usable_alone(tmp_path: Path, model_dir: Path) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    paths = _gray_files(tmp_path / "in", 2)
    loaded = [batch.decode_file(p) for p in paths]
    outputs = batch.colorize_loaded(colorizer, loaded, render_size=32)
    written = batch.encode_file(outputs[0], tmp_path / "o" / "a.png", loaded[0])
    assert written.is_file() and Image.open(written).size == Image.open(paths[0]).size
    bad = batch.colorize_loaded(colorizer, [loaded[1], "oops"], render_size=32)  # type: ignore[list-item]
    assert isinstance(bad[0], Image.Image) and isinstance(bad[1], Exception)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-size", "0", "argument --batch-size: must be an integer >= 1, got '0'"),
        ("--render-size", "-3", "argument --render-size: must be an integer >= 1, got '-3'"),
        ("--saturation", "nan", "argument --saturation: must be a finite number >= 0, got 'nan'"),
        ("--saturation", "-1", "argument --saturation: must be a finite number >= 0, got '-1'"),
        ("--crf", "-5", "argument --crf: must be an integer >= 0, got '-5'"),
    ],
)
def test_cli_refuses_bad_numbers_as_usage_errors(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(["colorize", str(tree), "-o", str(tmp_path / "out"), flag, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_options_fail_once_before_any_file(
    tree: Path, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    colorizer = Colorizer.from_pretrained(model_dir, device="cpu")
    for options, message in (
        ({"render_size": 100}, "render_size must be a positive multiple of 32, got 100"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"saturation": -1.0}, "saturation must be a finite number >= 0, got -1.0"),
    ):
        with pytest.raises(ValueError, match=message):
            colorize_files(colorizer, [tree], tmp_path / "out", recursive=True, progress=False,
                           **options)  # fmt: skip
    assert not (tmp_path / "out").exists()
    code = main(["colorize", str(tree), "-r", "-o", str(tmp_path / "out"), "--model",
                 str(model_dir), "--render-size", "100", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "pixcolor colorize: error: render_size must be a positive multiple of 32, got 100\n"
    )


def test_interrupt_waits_for_the_file_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the encoder thread writes a photo: colorize_files unwinds only once that
    write is over, so the process's exit cannot leave a half-written temporary file."""
    import threading

    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(src / f"p{i}.png")
    writing = threading.Event()

    def slow_encode(image, path, like, overwrite=False):  # type: ignore[no-untyped-def]
        def write(tmp: Path) -> None:
            writing.set()
            threading.Event().wait(0.5)  # a big photo being written
            image.save(tmp, format="PNG")

        from pixcolor._atomic import write_atomically

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, write)
        return path

    calls = []

    def colorize_then_interrupt(colorizer, loaded, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(loaded))
        if len(calls) > 1:
            writing.wait(5)
            raise KeyboardInterrupt
        return [Image.new("RGB", (16, 16), (200, 80, 40)) for _ in loaded]

    monkeypatch.setattr(batch, "encode_file", slow_encode)
    monkeypatch.setattr(batch, "colorize_loaded", colorize_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        colorize_files(object(), [src], tmp_path / "out", batch_size=1, progress=False)
    left = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert not [name for name in left if name.endswith(".tmp")], left
    assert left  # the photo being written when Ctrl-C came was finished


def test_folder_with_photos_only_in_subfolders_suggests_recursive(tmp_path: Path) -> None:
    from pixcolor.errors import NoImagesError

    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "in" / "sub" / "a.png")
    with pytest.raises(NoImagesError, match=r"its subfolders do: pass --recursive"):
        plan_outputs([tmp_path / "in"], tmp_path / "out")
    assert len(plan_outputs([tmp_path / "in"], tmp_path / "out", recursive=True)) == 1
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(NoImagesError, match=r"holds no image or video \(images: ") as err:
        plan_outputs([tmp_path / "empty"], tmp_path / "out")
    assert "recursive" not in str(err.value)
