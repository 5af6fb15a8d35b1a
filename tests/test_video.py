"""Video colourisation: the container kept, the luma kept, steady colour, clean failures."""

from __future__ import annotations

import re
import sys
import threading
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason="video tests need PyAV (pip install 'pixcolor[video]')")

from pixcolor import (  # noqa: E402
    Colorizer,
    Hint,
    UNetGenerator,
    VideoError,
    _video_stage,
)
from pixcolor._hint_schedule import HintSchedule  # noqa: E402
from pixcolor._temporal import TemporalFilter  # noqa: E402
from pixcolor.video import colorize_video  # noqa: E402

RENDER = 32


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    torch.manual_seed(0)
    gen = UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5)
    return Colorizer(gen, device="cpu", precision="fp32")


def make_clip(
    path: Path,
    *,
    frames: int = 10,
    size: tuple[int, int] = (48, 32),
    audio: bool = False,
    pts: list[int] | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """A small colour clip: a moving bar over a gradient, optionally with AAC audio; ``pts``
    in milliseconds makes a variable frame rate."""
    width, height = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if options:
            stream.options = options
        if pts is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=8000)
            sound.layout = "mono"
        for i in range(frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = np.linspace(30, 220, width, dtype=np.uint8)[None]
            img[..., 2] = 90
            img[:, (3 * i) % width : (3 * i) % width + 6, 1] = 230
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i if pts is None else pts[i]
            container.mux(stream.encode(frame))
            if sound is not None:
                samples = (rng.standard_normal((1, 800)) * 0.1).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 8000, i * 800
                container.mux(sound.encode(chunk))
        container.mux(stream.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path


def read_clip(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        info = {
            "pts": [f.pts * stream.time_base for f in frames],
            "luma": [_luma(f) for f in frames],
            "size": (stream.codec_context.width, stream.codec_context.height),
            "pix_fmt": stream.codec_context.format.name,
            "rate": stream.average_rate,
            "chroma": [f.to_ndarray()[f.height :] for f in frames if f.format.name == "yuv420p"],
        }
    with av.open(str(path)) as container:
        info["audio"] = [bytes(p) for p in container.demux(audio=0) if p.size] if (
            container.streams.audio
        ) else []  # fmt: skip
    return info


def _luma(frame: object) -> np.ndarray:
    plane = frame.planes[0]  # type: ignore[attr-defined]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width].copy()


def _chroma(path: Path) -> np.ndarray:
    """``(frames, 2, h, w)`` Cb and Cr planes of a clip."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    out = []
    for frame in frames:
        planes = []
        for plane in frame.planes[1:3]:
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            planes.append(rows[:, : plane.width].astype(np.float64))
        out.append(np.stack(planes))
    return np.stack(out)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- the container ---------------------------------------------------------------------


def test_frames_timestamps_and_audio_are_kept(tmp_path: Path, colorizer: Colorizer) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=12, audio=True)
    report = colorizer.colorize_video(src, tmp_path / "out.mp4", render_size=RENDER, progress=False)
    before, after = read_clip(src), read_clip(tmp_path / "out.mp4")
    assert report.frames == 12 and report.audio_streams == 1 and report.codec == "libx264"
    assert after["pts"] == before["pts"] and after["size"] == before["size"] == (48, 32)
    assert after["rate"] == before["rate"] and after["pix_fmt"] == "yuv420p"
    assert before["audio"] and after["audio"] == before["audio"]  # packets copied bit for bit
    assert leftovers(tmp_path) == []


def test_luma_is_the_source_luma(tmp_path: Path, colorizer: Colorizer) -> None:
    src = make_clip(tmp_path / "in.mkv", frames=6)
    out = tmp_path / "out.mkv"
    colorize_video(colorizer, src, out, render_size=RENDER, codec="ffv1", progress=False)
    before, after = read_clip(src), read_clip(out)
    for a, b in zip(before["luma"], after["luma"], strict=True):  # a lossless codec
        np.testing.assert_array_equal(a, b)
    colorize_video(
        colorizer, src, out, render_size=RENDER, codec="ffv1", saturation=0.0, overwrite=True,
        progress=False,
    )  # fmt: skip
    assert all((c == 128).all() for c in read_clip(out)["chroma"])  # gray: neutral chroma


def test_odd_size_and_variable_frame_rate(tmp_path: Path, colorizer: Colorizer) -> None:
    src = make_clip(tmp_path / "odd.mkv", frames=5, size=(33, 25), pix_fmt="yuv444p")
    report = colorize_video(
        colorizer, src, tmp_path / "odd_out.mkv", render_size=RENDER, progress=False
    )
    assert report.pix_fmt == "yuv444p"  # 4:2:0 needs even sides
    assert read_clip(tmp_path / "odd_out.mkv")["size"] == (33, 25)
    stamps = [0, 40, 100, 230, 240, 400, 410, 500]
    src = make_clip(tmp_path / "vfr.mp4", frames=8, pts=stamps)
    colorize_video(colorizer, src, tmp_path / "vfr_out.mp4", render_size=RENDER, progress=False)
    times = read_clip(tmp_path / "vfr_out.mp4")["pts"]
    assert [round(float(t) * 1000) for t in times] == stamps


def test_decode_order_timestamps_are_sorted(tmp_path: Path, colorizer: Colorizer) -> None:
    """A B-frame stream muxed with pts = dts (as some recorders do): frames decode in
    presentation order but carry decode-order timestamps; the output has them sorted."""
    good = make_clip(
        tmp_path / "good.mp4", frames=16, options={"x264-params": "bframes=2:b-adapt=0"}
    )
    broken = tmp_path / "broken.mp4"
    with av.open(str(good)) as src, av.open(str(broken), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is None:
                continue
            packet.pts = packet.dts
            packet.stream = stream
            dst.mux(packet)
    stamps = read_clip(broken)["pts"]
    assert stamps != sorted(stamps)  # the premise: out of order
    colorize_video(colorizer, broken, tmp_path / "out.mp4", render_size=RENDER, progress=False)
    assert read_clip(tmp_path / "out.mp4")["pts"] == sorted(stamps)


def test_rotation_and_sniffed_container(tmp_path: Path, colorizer: Colorizer) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=4)
    rotated = tmp_path / "rotated"  # no extension: found by its content
    with av.open(str(src)) as a, av.open(str(rotated), "w", format="mp4") as b:
        stream = b.add_stream_from_template(a.streams.video[0])
        stream.set_display_rotation(90)
        for packet in a.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                b.mux(packet)
    colorize_video(colorizer, rotated, tmp_path / "out.mp4", render_size=RENDER, progress=False)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert next(c.decode(video=0)).rotation == 90


# --- failures ------------------------------------------------------------------------------


def _truncated_mp4(tmp_path: Path) -> Path:
    good = make_clip(tmp_path / "whole.mp4", frames=30, container_options={"movflags": "faststart"})
    data = good.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _truncated_mp4_index_at_end(tmp_path: Path) -> Path:
    good = make_clip(tmp_path / "whole.mp4", frames=30)
    path = tmp_path / "cut.mp4"
    path.write_bytes(good.read_bytes()[:-200])
    return path


def _truncated_mkv(tmp_path: Path) -> Path:
    good = make_clip(tmp_path / "whole.mkv", frames=30)
    data = good.read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    return path


def _no_frames(tmp_path: Path) -> Path:
    """A video stream without a frame (beside a little audio, so the file is written)."""
    return _audio_only(tmp_path, video=True)


def _audio_only(tmp_path: Path, video: bool = False) -> Path:
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as c:
        if video:
            stream = c.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        sound = c.add_stream("aac", rate=8000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        chunk.sample_rate, chunk.pts = 8000, 0
        c.mux(sound.encode(chunk))
        c.mux(sound.encode(None))
    return path


def _alpha(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "alpha.mkv", frames=3, codec="ffv1", pix_fmt="yuva420p")


def _not_video(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video at all\n" * 20)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_not_video, "not a readable video"),
        (_truncated_mp4, "truncated"),
        (_truncated_mp4_index_at_end, "damaged or truncated"),
        (_truncated_mkv, "truncated"),
        (_no_frames, "no video frame"),
        (_audio_only, "no video stream"),
        (_alpha, "alpha"),
    ],
)
def test_bad_inputs_give_one_error_and_no_output(
    tmp_path: Path, colorizer: Colorizer, make: object, message: str
) -> None:
    src = make(tmp_path)  # type: ignore[operator]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(VideoError, match=message):
        colorize_video(colorizer, src, out_dir / "clip.mp4", render_size=RENDER, progress=False)
    assert list(out_dir.iterdir()) == []


def test_interrupt_leaves_nothing(
    tmp_path: Path, colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=20, audio=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calls = []
    original = colorizer._predict_ab

    def interrupted(*args: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(colorizer, "_predict_ab", interrupted)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        colorize_video(
            colorizer, src, out_dir / "out.mp4", render_size=RENDER, batch_size=4, progress=False
        )
    assert list(out_dir.iterdir()) == []
    assert torch.get_num_threads() == threads  # the network's thread count is restored


def test_two_batches_at_once_on_the_cpu_change_nothing(
    tmp_path: Path, colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the CPU two batches run through the network at once, in threads of their own
    with one core each (of two); the clip is the same as one batch at a time gives, and
    torch's thread count is restored."""
    src = make_clip(tmp_path / "in.mkv", frames=12, size=(40, 24), audio=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen: list[tuple[str, int]] = []
        original = colorizer._predict_ab

        def spy(*args: object) -> torch.Tensor:
            seen.append((threading.current_thread().name, torch.get_num_threads()))
            return original(*args)

        monkeypatch.setattr(colorizer, "_predict_ab", spy)
        options = dict(render_size=RENDER, batch_size=2, codec="libx264", crf=0, progress=False)
        colorize_video(colorizer, src, tmp_path / "two.mkv", **options)
        assert torch.get_num_threads() == 2
        assert len(seen) == 6 and {n for _, n in seen} == {1}
        assert len({name for name, _ in seen}) == 2
        assert all(name.startswith("pixcolor-network") for name, _ in seen)
        monkeypatch.setattr(_video_stage, "network_workers", lambda colorizer: 1)
        colorize_video(colorizer, src, tmp_path / "one.mkv", **options)
        assert {n for _, n in seen[6:]} == {2}  # one at a time: every core for the network
    finally:
        torch.set_num_threads(previous)
    one, two = _chroma(tmp_path / "one.mkv"), _chroma(tmp_path / "two.mkv")
    assert one.shape == two.shape and np.abs(one - two).max() <= 1
    assert read_clip(tmp_path / "one.mkv")["audio"] == read_clip(tmp_path / "two.mkv")["audio"]


def test_arguments_are_checked(tmp_path: Path, colorizer: Colorizer) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(ValueError, match="would overwrite the input"):
        colorize_video(colorizer, src, src, overwrite=True)
    with pytest.raises(ValueError, match="extension must be one of"):
        colorize_video(colorizer, src, tmp_path / "out.txt")
    (tmp_path / "exists.mp4").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        colorize_video(colorizer, src, tmp_path / "exists.mp4")
    assert (tmp_path / "exists.mp4").read_bytes() == b"mine"
    with pytest.raises(ValueError, match="temporal must be"):
        colorize_video(colorizer, src, tmp_path / "o.mp4", temporal="smooth")
    with pytest.raises(ValueError, match="render_size"):
        colorize_video(colorizer, src, tmp_path / "o.mp4", render_size=33)
    with pytest.raises(VideoError, match="not a video encoder"):
        colorize_video(colorizer, src, tmp_path / "o.mp4", codec="nonsense", progress=False)
    with pytest.raises(VideoError, match="crf does not apply"):
        colorize_video(colorizer, src, tmp_path / "o.mkv", codec="ffv1", crf=10, progress=False)
    with pytest.raises(ValueError, match="preset must be one of ultrafast, .*got 'quick'"):
        colorize_video(colorizer, src, tmp_path / "o.mp4", preset="quick")
    with pytest.raises(VideoError, match="preset does not apply to the ffv1 encoder"):
        colorize_video(colorizer, src, tmp_path / "o.mkv", codec="ffv1", preset="fast",
                       progress=False)  # fmt: skip
    with pytest.raises(FileNotFoundError):
        colorize_video(colorizer, tmp_path / "missing.mp4", tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mkv").exists()


def test_missing_pyav_says_what_to_install(
    tmp_path: Path, colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"pixcolor\[video\]"):
        colorize_video(colorizer, tmp_path / "in.mp4", tmp_path / "out.mp4")


# --- hints -------------------------------------------------------------------------------------


def test_hint_schedule_ranges() -> None:
    red, green = Hint(1, 2, "#ff0000"), Hint(3, 4, "#00ff00")
    schedule = HintSchedule({8: [(3, 4, "#00ff00")], 0: [(1, 2, "#ff0000")], 5: None})
    assert schedule.hints_at(0) == schedule.hints_at(4) == [red]
    assert schedule.hints_at(5) == schedule.hints_at(7) == []
    assert schedule.hints_at(100) == [green]
    assert HintSchedule([(1, 2, "#ff0000")]).hints_at(50) == [red]
    bound = schedule.bind((8, 8))
    assert bound.at(5) is None and len(bound.at(4)) == 1 and len(bound.at(9)) == 1
    with pytest.raises(ValueError, match="outside the 4x4 image"):
        HintSchedule({0: [(1, 2, "#ff0000")], 3: [(6, 1, "#00ff00")]}).bind((4, 4))
    with pytest.raises(ValueError, match=r"hints\[3\]: .*colou?r"):
        HintSchedule({3: [(1, 2, "nonsense")]})
    with pytest.raises(ValueError, match="frame indices"):
        HintSchedule({-1: []})
    with pytest.raises(ValueError, match="sequence of hints or a mapping"):
        HintSchedule("#ff0000")


def test_hints_carry_through_the_clip(tmp_path: Path, colorizer: Colorizer) -> None:
    """Hints given from frame 0 colour every frame (spread model-free for this model), and
    a range ended by ``None`` stops them."""
    src = make_clip(tmp_path / "in.mp4", frames=6, size=(48, 32))
    hint = [(24, 16, "#ff0000", 40)]
    plain, hinted, ranged = (tmp_path / f"{n}.mp4" for n in ("plain", "hinted", "ranged"))
    kwargs = {"temporal": "none", "progress": False, "crf": 0, "render_size": 32}
    colorize_video(colorizer, src, plain, **kwargs)
    colorize_video(colorizer, src, hinted, hints=hint, **kwargs)
    colorize_video(colorizer, src, ranged, hints={0: hint, 3: None}, **kwargs)
    cr = [_chroma(p)[:, 1].mean(axis=(1, 2)) for p in (plain, hinted, ranged)]
    assert np.all(cr[1] > cr[0] + 20)  # every frame redder (Cr up) than without hints
    assert np.all(cr[2][:3] > cr[0][:3] + 20) and np.allclose(cr[2][3:], cr[0][3:], atol=1)
    with pytest.raises(ValueError, match="outside"):
        colorize_video(colorizer, src, tmp_path / "bad.mp4", hints=[(99, 1, "#ff0000")], **kwargs)
    assert not (tmp_path / "bad.mp4").exists()


# --- the temporal filter ----------------------------------------------------------------------


def _guide(frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, 16, 16, generator=g).repeat(frames, 1, 1, 1) * 0.8 + 0.1


def test_filter_keeps_constants_and_calms_noise() -> None:
    filt = TemporalFilter()
    guide = _guide(30)
    constant = torch.full((30, 2, 24, 24), 7.0)
    torch.testing.assert_close(filt(guide, constant), constant)
    noise = torch.randn(30, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    out = filt(guide, noise)
    assert (out[1:] - out[:-1]).abs().mean() < 0.3 * (noise[1:] - noise[:-1]).abs().mean()


def test_filter_sees_through_brightness_flicker_but_not_a_cut() -> None:
    filt = TemporalFilter()
    gains = 1 + 0.06 * torch.sin(torch.arange(30.0) * 2.1)
    flicker = (_guide(30) * gains.view(-1, 1, 1, 1)).clamp(0, 1)
    noise = torch.randn(30, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    steadied = filt(flicker, noise)
    assert (steadied[1:] - steadied[:-1]).abs().mean() < 0.3 * (noise[1:] - noise[:-1]).abs().mean()
    cut = torch.cat([_guide(15, 0), _guide(15, 1)])
    signal = torch.cat([torch.zeros(15, 2, 16, 16), torch.full((15, 2, 16, 16), 10.0)])
    out = filt(cut, signal)
    assert out[:15].abs().max() < 0.05 and (out[15:] - 10).abs().max() < 0.05  # no bleed


def test_filter_streamed_in_batches_equals_whole_clip() -> None:
    filt = TemporalFilter(lookahead=40)
    guide, signal = _guide(37), torch.randn(37, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    stream = filt.stream()
    parts = [stream.push(guide[i : i + 5], signal[i : i + 5]) for i in range(0, 37, 5)]
    torch.testing.assert_close(torch.cat([*parts, stream.flush()]), filt(guide, signal))
    short = TemporalFilter(lookahead=4).stream()
    assert len(short.push(guide[:10], signal[:10])) == 6  # holds lookahead frames back


@pytest.mark.parametrize(
    "kwargs",
    [{"strength": 1.0}, {"strength": -0.1}, {"sigma": 0}, {"radius": -1}, {"lookahead": 1.5}],
)
def test_filter_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TemporalFilter(**kwargs)


# --- command line ---------------------------------------------------------------------


def test_cli_colorizes_a_folder_of_videos(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main

    clips = tmp_path / "clips"
    clips.mkdir()
    make_clip(clips / "a.mp4", frames=4, audio=True)
    make_clip(clips / "b.mkv", frames=3)
    (clips / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    args = [
        "colorize",
        str(clips),
        "-o",
        str(out),
        "--model",
        str(model_dir),
        "--render-size",
        "32",
    ]
    assert main([*args, "--temporal", "none", "--crf", "30", "--preset", "ultrafast"]) == 0
    captured = capsys.readouterr()
    assert "2 written" in captured.out and "frame" in captured.err  # a bar counting frames
    encoded = (out / "clips" / "a.mp4").read_bytes()
    assert b" crf=30.0 " in encoded and b" subme=0 " in encoded  # x264's ultrafast
    assert read_clip(out / "clips" / "a.mp4")["audio"] == read_clip(clips / "a.mp4")["audio"]
    assert read_clip(out / "clips" / "b.mkv")["size"] == (48, 32)
    assert main([*args, "--no-progress"]) == 0  # resumed: nothing to do
    assert "2 skipped" in capsys.readouterr().out

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing to colourise")
    assert main(["colorize", str(empty), "-o", str(out), "--model", str(model_dir)]) == 1
    assert "holds no image or video" in capsys.readouterr().err


def test_cli_evaluate_video_writes_json_only_when_asked(
    tmp_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from pixcolor.cli import main

    clip = make_clip(tmp_path / "colour.mp4", frames=6)
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", str(model_dir), str(clip), "--render-size", "32"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "flicker" in table and "per frame" in table and "truth" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.mp4"]  # no file written
    assert main([*args, "--json", "eval.json"]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())["videos"][0]
    assert result["n_frames"] == 6 and len(result["temporal"]["psnr_frames"]) == 6
    assert result["truth"]["flicker"] > 0 and result["temporal"]["flicker"] >= 0


def test_frame_colour_is_the_photo_colour(tmp_path: Path, colorizer: Colorizer) -> None:
    # A frame is coloured as Colorizer.colorize colours its gray picture (the same network
    # call and full-resolution join): lossless 4:4:4, no filter, strong colour (gamut fit).
    src = make_clip(tmp_path / "in.mkv", frames=2, size=(47, 33), pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    colorize_video(
        colorizer, src, out, render_size=RENDER, saturation=20.0, temporal="none",
        codec="libx264", crf=0, progress=False,
    )  # fmt: skip
    with av.open(str(src)) as container:
        frame = next(container.decode(video=0)).reformat(format="yuv444p")
        luma = np.frombuffer(frame.planes[0], np.uint8).reshape(frame.height, -1)
        luma = luma[:, : frame.width].astype(np.float64)
    with av.open(str(out)) as container:
        got = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    gray = np.clip(np.round((luma - 16) / 219 * 255), 0, 255).astype(np.uint8)  # studio range
    photo = colorizer.colorize(gray, render_size=RENDER, saturation=20.0).astype(int)
    assert np.abs(photo - gray[..., None]).mean() > 2  # coloured, not gray
    assert np.abs(got - photo).max() <= 3  # rounding: studio-range chroma, the shrink


def test_ray_engine_refuses_videos(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from pixcolor import distributed
    from pixcolor.cli import main

    clip = make_clip(tmp_path / "a.mp4", frames=2)
    # no cluster is started: a Ray that says it runs already, and has nothing else
    fake_ray = types.SimpleNamespace(is_initialized=lambda: True)
    monkeypatch.setattr(distributed, "_import_ray", lambda: fake_ray)
    with pytest.raises(ValueError, match=r"Ray engine colorizes photos; '.*a\.mp4' is a video"):
        distributed.colorize_files([clip], tmp_path / "out", model=str(model_dir))
    assert not (tmp_path / "out").exists()
    code = main(["colorize", str(clip), "-o", str(tmp_path / "out"), "--engine", "ray",
                 "--codec", "libx264", "--crf", "20", "--preset", "fast"])  # fmt: skip
    assert code == 1
    assert "--codec, --crf, --preset only apply with --engine local" in capsys.readouterr().err


def test_folder_mixing_photos_and_videos_with_report(tmp_path: Path, colorizer: Colorizer) -> None:
    import json

    from PIL import Image

    from pixcolor.batch import colorize_files

    folder = tmp_path / "mixed"
    folder.mkdir()
    make_clip(folder / "clip.mp4", frames=3)
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(folder / "photo.png")
    (folder / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 not really matroska")
    report = colorize_files(
        colorizer, [folder], tmp_path / "out", render_size=RENDER, progress=False,
        report_path=tmp_path / "log.jsonl",
    )  # fmt: skip
    assert sorted(p.name for p in report.written) == ["clip.mp4", "photo.png"]
    assert list(report.failed) == [folder / "broken.mkv"]
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    status = {Path(line["input"]).name: line["status"] for line in lines}
    assert status == {"photo.png": "written", "clip.mp4": "written", "broken.mkv": "failed"}
    assert read_clip(tmp_path / "out" / "mixed" / "clip.mp4")["size"] == (48, 32)
    assert not (tmp_path / "out" / "mixed" / "broken.mkv").exists()


def test_folder_of_clips_checks_encoder_options_once(tmp_path: Path, colorizer: Colorizer) -> None:
    from pixcolor.batch import colorize_files
    from pixcolor.video import check_video_options

    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(folder / name, frames=2)
    for options, error, message in (
        ({"codec": "nonsense"}, VideoError, "codec 'nonsense' is not a video encoder"),
        ({"crf": -1}, ValueError, "crf must be an integer >= 0, got -1"),
        ({"preset": "quick"}, ValueError, "preset must be one of ultrafast"),
        ({"temporal": "smooth"}, ValueError, "temporal must be"),
    ):
        with pytest.raises(error, match=message):
            colorize_files(colorizer, [folder], tmp_path / "out", render_size=RENDER,
                           progress=False, video_options=options)  # fmt: skip
        with pytest.raises(error, match=message):
            check_video_options(**options)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
    assert check_video_options("none", 20, "fast", "libx264") is None


@pytest.mark.parametrize(
    ("preset", "settings"),
    [
        (None, (rb"subme=2 ", rb" bframes=0 ", rb" aq=\d:0\.00")),
        ("medium", (rb"subme=7 ", rb" bframes=3 ", rb" aq=1:1\.00")),
    ],
)
def test_x264_preset_reaches_the_encoder(
    tmp_path: Path, colorizer: Colorizer, preset: str | None, settings: tuple[bytes, ...]
) -> None:
    """x264 writes its settings into the stream: the default preset is veryfast (sub-pixel
    refinement 2) without B-frames or adaptive quantisation; "medium" is x264's own (sub-pixel
    refinement 7, three B-frames, adaptive quantisation)."""
    src = make_clip(tmp_path / "in.mp4", frames=3)
    out = colorize_video(
        colorizer, src, tmp_path / "o.mp4", preset=preset, temporal="none", progress=False
    )
    assert out.codec == "libx264"
    data = (tmp_path / "o.mp4").read_bytes()
    assert b"x264 - core" in data and b" crf=17.0 " in data
    options = data[data.index(b"x264 - core") :].split(b"\x00")[0]
    for setting in settings:  # (no adaptive quantisation reads "aq=1:0.00": strength 0)
        assert re.search(setting, options), (setting, options)
