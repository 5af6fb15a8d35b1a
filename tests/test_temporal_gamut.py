"""Video colour joins: the temporal filter's headroom (the colour fitted to the gamut of
the brightest and darkest version of each place in the frames around it, so that
flickering highlights keep a steady colour: ``TemporalFilter(steady_gamut=True)``), and
the gray of each chroma sample computed from 8-bit luma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixcolor import _fullres, _yuv
from pixcolor._temporal import TemporalFilter

_GAINS = torch.tensor([1.0, 0.94, 1.03, 0.97, 1.06, 0.95, 1.0, 1.04, 0.96, 1.02] * 3)


def _flickering(frames: int = 30) -> torch.Tensor:
    """A still picture (16 x 16 gray) whose exposure jitters by 6 %."""
    base = torch.linspace(0.1, 0.9, 16).view(1, 1, 16, 1).expand(1, 1, 16, 16)
    return (base * _GAINS[:frames].view(-1, 1, 1, 1)).clamp(0, 1)


def test_headroom_spans_the_brightest_and_darkest_frame_of_a_still_shot() -> None:
    guide = _flickering()
    signal = torch.zeros(len(guide), 2, 16, 16)
    out = TemporalFilter(lookahead=40).stream(headroom=True)
    result = torch.cat([out.push(guide, signal), out.flush()])
    assert result.shape == (30, 4, 16, 16)
    above, below = result[:, 2:3], result[:, 3:4]
    assert (above >= 0).all() and (below >= 0).all()
    # every frame's headroom reaches (nearly) the clip's brightest and darkest frame
    torch.testing.assert_close(guide + above, guide.amax(0, keepdim=True).expand_as(guide),
                               atol=0.01, rtol=0)  # fmt: skip
    torch.testing.assert_close(guide - below, guide.amin(0, keepdim=True).expand_as(guide),
                               atol=0.01, rtol=0)  # fmt: skip


def test_headroom_is_not_carried_across_a_cut() -> None:
    first = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.2
    second = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.5
    guide = torch.cat([first.expand(10, -1, -1, -1), second.expand(10, -1, -1, -1)])  # a cut
    stream = TemporalFilter().stream(headroom=True)
    result = torch.cat([stream.push(guide, torch.zeros(20, 2, 16, 16)), stream.flush()])
    assert result[:, 2:].abs().max() < 0.01  # no frame is fitted to the other shot


def test_headroom_streamed_in_batches_equals_whole_clip() -> None:
    guide = _flickering()
    signal = torch.randn(30, 5, 24, 24, generator=torch.Generator().manual_seed(1))
    whole = TemporalFilter(lookahead=40).stream(headroom=True)
    expected = torch.cat([whole.push(guide, signal), whole.flush()])
    stream = TemporalFilter(lookahead=40).stream(headroom=True)
    parts = [stream.push(guide[i : i + 4], signal[i : i + 4]) for i in range(0, 30, 4)]
    torch.testing.assert_close(torch.cat([*parts, stream.flush()]), expected)
    assert expected.shape == (30, 7, 24, 24)  # the signal's size
    short = TemporalFilter(lookahead=4).stream(headroom=True)
    assert short.push(guide[:10], signal[:10]).shape == (6, 7, 24, 24)
    assert TemporalFilter().stream(headroom=True).push(guide[:3], signal[:3]).shape[1] == 7


def test_steady_gamut_is_checked() -> None:
    with pytest.raises(ValueError, match="steady_gamut"):
        TemporalFilter(steady_gamut=1)  # type: ignore[arg-type]


def _offsets(frames: int, size: int = 8) -> torch.Tensor:
    rgb = torch.tensor([0.9, 0.6, 0.3]).view(1, 3, 1, 1).expand(frames, 3, size, size)
    return _fullres.rgb_offsets(rgb)


def test_chroma_without_headroom_is_the_per_frame_fit() -> None:
    gray = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    offsets = _offsets(3)
    matrix = ("bt601", 0.299, 0.114)
    plain = _yuv.chroma_planes(gray, offsets, "yuv420p", matrix, False)
    none = torch.cat([offsets, torch.zeros(3, 2, 8, 8)], dim=1)
    torch.testing.assert_close(_yuv.chroma_planes(gray, none, "yuv420p", matrix, False), plain)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_chroma_fits_the_gamut_of_the_whole_headroom(pix_fmt: str) -> None:
    """The colour joined to each gray level from ``gray - below`` to ``gray + above`` stays
    inside ``[0, 1]``, and is the same whichever frame's own gray it is fitted on."""
    matrix = ("bt601", 0.299, 0.114)
    kr, kb = matrix[1], matrix[2]
    gray = torch.linspace(0.0, 1.0, 16).view(1, 1, 1, 16).expand(2, 1, 16, 16).contiguous()
    gray[1] = (gray[1] * 0.94).clamp(0, 1)  # the same place, a darker exposure
    above = torch.stack([torch.zeros(1, 16, 16), gray[0] - gray[1]])  # to the brightest
    below = torch.stack([gray[0] - gray[1], torch.zeros(1, 16, 16)])  # to the darkest
    offsets = torch.cat([_offsets(2, 16), above, below], dim=1)
    chroma = _yuv.chroma_planes(gray, offsets, pix_fmt, matrix, True)
    torch.testing.assert_close(chroma[0], chroma[1], atol=1e-4, rtol=0)
    cb, cr = (chroma[0] - 128) / 255  # back to the decoder's R', G', B' at either gray
    if pix_fmt == "yuv420p":
        gray = torch.nn.functional.avg_pool2d(gray, 2)
    for level in gray[:, 0]:
        red = level + 2 * (1 - kr) * cr
        blue = level + 2 * (1 - kb) * cb
        green = (level - kr * red - kb * blue) / (1 - kr - kb)
        for channel in (red, green, blue):
            assert channel.min() >= -1e-4 and channel.max() <= 1 + 1e-4


av = pytest.importorskip("av", reason="the video test needs PyAV (pip install 'pixcolor[video]')")


def _highlight_clip(path: Path, frames: int = 24) -> Path:
    """A still picture with a blown-out highlight whose exposure flickers by up to 6 %
    (old film): the highlight is 255 in bright frames and 240 in dim ones."""
    rng = np.random.default_rng(0)
    base = np.zeros((32, 48, 3), np.float64)
    base[...] = np.linspace(60, 200, 48)[None, :, None]
    base[:, 32:] = 250  # the highlight
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv444p"
        for i in range(frames):
            gain = 1.0 + 0.06 * (1 if i % 2 else -1) * rng.uniform(0.5, 1.0)
            img = np.clip(np.round(base * gain), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_flickering_highlight_keeps_its_colour(tmp_path: Path) -> None:
    from pixcolor import Colorizer, UNetGenerator
    from pixcolor.video import colorize_video

    torch.manual_seed(0)
    colorizer = Colorizer(UNetGenerator(encoder="pix2pix", base_channels=4, num_downs=5),
                          device="cpu", precision="fp32")  # fmt: skip
    src = _highlight_clip(tmp_path / "film.mkv")
    change, colour = {}, {}
    for steady in (True, False):
        out = tmp_path / f"out-{steady}.mkv"
        colorize_video(colorizer, src, out, render_size=32, codec="ffv1", saturation=8.0,
                       temporal=TemporalFilter(steady_gamut=steady), progress=False)  # fmt: skip
        with av.open(str(out)) as container:
            planes = np.stack([f.to_ndarray(format="yuv444p") for f in container.decode(video=0)])
        chroma = planes[:, 1:, :, 34:].astype(np.float64)  # the highlight's chroma
        change[steady] = np.abs(np.diff(chroma, axis=0)).mean()
        colour[steady] = np.abs(planes[:, 1:, :, :24].astype(np.float64) - 128).mean()
    assert change[False] > 0.5  # the per-frame fit turns the highlight's colour on and off
    assert change[True] < 0.3 * change[False]
    assert colour[False] > 0.1 and colour[True] > 0.9 * colour[False]  # the rest keeps its colour


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuvj420p"])
@pytest.mark.parametrize("size", [(6, 8), (7, 9)])
@pytest.mark.parametrize("full_range", [False, True])
def test_chroma_gray_is_the_pooled_gray(
    pix_fmt: str, size: tuple[int, int], full_range: bool
) -> None:
    """The gray of each chroma sample taken from 8-bit luma equals pooling the float gray
    (which :func:`pixcolor._yuv.chroma_planes` does when given a full-size gray), levels
    outside the studio range included; the planes are the same either way."""
    luma = torch.randint(0, 256, (2, 1, *size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(4))  # fmt: skip
    pooled = _yuv.chroma_gray(luma, pix_fmt, full_range)
    full = _yuv.luma_to_gray(luma, full_range)
    assert pooled.shape[-2:] == _yuv.chroma_size(*size, pix_fmt)
    sub = {"yuv420p": (2, 2), "yuv422p": (1, 2), "yuv444p": (1, 1), "yuvj420p": (2, 2)}[pix_fmt]
    expected = torch.nn.functional.avg_pool2d(full, sub, ceil_mode=True)
    torch.testing.assert_close(pooled, expected, atol=1e-6, rtol=0)
    matrix = ("bt601", 0.299, 0.114)
    offsets = _offsets(2, 4)
    torch.testing.assert_close(
        _yuv.chroma_planes(pooled, offsets, pix_fmt, matrix, full_range, pooled=True),
        _yuv.chroma_planes(full, offsets, pix_fmt, matrix, full_range),
        atol=1e-4, rtol=0,
    )  # fmt: skip
