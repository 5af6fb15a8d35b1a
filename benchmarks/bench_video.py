"""Video colourisation: quality, flicker, faithfulness and speed of ``colorize_video``.

Measured in one run with one model (default: the bundled one):

(a) **Shared clips** (``CLIPS``: a folder of colour videos, e.g. ``../shared/data/videos``),
    turned gray and scored by :func:`pixcolor.video_metrics.evaluate_video`: PSNR and
    flicker of the temporal filter against independent per-frame colourisation through the
    same pipeline (codec loss included in both). Targets: flicker ratio <= 0.8, PSNR at
    most 0.3 dB below.
(b) **Old film**: ``--films N`` photos of ``--photos`` (every k-th file) each made into a
    static 40-frame clip with per-frame gain jitter up to 6 % and Gaussian noise of sigma 3
    (8-bit levels), written losslessly (FFV1), then scored as in (a). Target: flicker
    ratio <= 0.5. Column ``floor``: the same ratio for a perfectly steady colour (the
    filter at strength 0.999 with no change detection and a lookahead past the clip's end:
    every frame gets the clip's mean colour). The output's own luma (noise and gain jitter
    included) still moves its a/b, so no filter of the colour can go below it.
(c) **Faithfulness** of the outputs of (a): frame count, timestamps (in presentation
    order) and audio packets (bytes) against the source.
(d) **Throughput** on ``--speed-clip``: ``colorize_video`` (decode, network, chroma,
    filter, encode) against ``Colorizer.colorize`` on the same frames as a list of gray
    numpy images (decoded beforehand, not timed, nothing encoded), interleaved over
    ``--repeat`` rounds; the ratio is the median of per-round ratios. Target: >= 0.8.
(e) **Encoder settings** (``--encoders``): each clip's first 120 frames (as decoded,
    ``yuv420p``) encoded by libx264 at several (preset, CRF) pairs: file size, PSNR of the
    luma and chroma planes against the frames encoded, wall and CPU seconds, for x264's
    own presets and for pixcolor's default (``veryfast`` with P-frames only, no adaptive
    quantisation: ``X264_DEFAULTS``, CRF 17).

Run: ``python benchmarks/bench_video.py CLIPS [--photos DIR] [--films 8] [--model M]
[--speed-clip FILE] [--repeat 3] [--threads 2] [--skip quality,films,speed] [--encoders]
[--codec libx264 --crf 0]``. Flicker through a lossy codec includes the codec's own: it
moves a steady chroma plane by a level or so from frame to frame (about 0.5 a/b units);
``--crf 0`` (lossless) shows what the filter itself does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from pixcolor import Colorizer, TemporalFilter
from pixcolor._video_io import X264_DEFAULTS
from pixcolor.video import colorize_video, is_video_file
from pixcolor.video_metrics import evaluate_video

FILM_FRAMES = 40
FILM_GAIN = 0.06
FILM_NOISE = 3.0
FILM_SIDE = 640
TEMPORAL = TemporalFilter()
ENCODER: dict[str, object] = {"codec": None, "crf": None}  # of the scored outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clips", type=Path, help="folder of colour videos")
    parser.add_argument("--photos", type=Path, help="colour photos for the old-film clips")
    parser.add_argument("--films", type=int, default=8)
    parser.add_argument("--model", default=None)
    parser.add_argument("--speed-clip", type=Path, help="clip for (d) (default: the shortest)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip", default="", help="comma-separated: quality, films, speed")
    parser.add_argument(
        "--filter", default=None,
        help='TemporalFilter settings as JSON, e.g. \'{"strength": 0.95}\' (default: the default)',
    )  # fmt: skip
    parser.add_argument(
        "--max-frames", type=int, default=0,
        help="score the first N frames of each clip (re-encoded at CRF 10, audio copied)",
    )  # fmt: skip
    parser.add_argument("--encoders", action="store_true", help="run (e)")
    parser.add_argument(
        "--codec", default=None,
        help="encoder of the scored outputs in (a) and (b) (default: colorize_video's)",
    )  # fmt: skip
    parser.add_argument(
        "--crf", type=int, default=None,
        help="its CRF; --codec libx264 --crf 0 scores the filter without codec noise",
    )  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    global TEMPORAL
    if args.filter:
        TEMPORAL = TemporalFilter(**json.loads(args.filter))
    ENCODER.update(codec=args.codec, crf=args.crf)
    print(f"temporal filter: {TEMPORAL}; scored outputs encoded with {ENCODER} (None: default)")
    _print_machine()
    colorizer = Colorizer.from_pretrained(args.model, device="cpu")
    print(f"model: {args.model or 'bundled'}, {colorizer}, torch threads {torch.get_num_threads()}")
    clips = sorted(p for p in args.clips.iterdir() if p.is_file() and is_video_file(p))
    cut_dir = tempfile.TemporaryDirectory()
    if args.max_frames:
        clips = [_truncate(p, args.max_frames, Path(cut_dir.name)) for p in clips]
        print(f"clips cut to their first {args.max_frames} frames (H.264 CRF 10, audio copied)")
    if "quality" not in skip:
        print("\n(a) shared clips turned gray: temporal filter against per-frame colourisation")
        _quality(colorizer, clips, args.batch_size, faithful=True)
    if "films" not in skip and args.photos:
        print(f"\n(b) old film: {FILM_FRAMES} frames of one photo, gain jitter <= "
              f"{FILM_GAIN:.0%}, noise sigma {FILM_NOISE:g}")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            films = _make_films(args.photos, args.films, Path(tmp))
            _quality(colorizer, films, args.batch_size, faithful=False, floor=True)
    if "speed" not in skip:
        clip = args.speed_clip or min(clips, key=_frame_count)
        print(f"\n(d) throughput on {clip.name}: colorize_video against colorize(list of frames)")
        _speed(colorizer, clip, args.batch_size, args.repeat)
    if args.encoders:
        print("\n(e) libx264 settings on the first 120 frames of each clip")
        for clip in clips:
            _encoders(clip, Path(cut_dir.name))
    _print_machine(load_only=True)


STEADY = TemporalFilter(strength=0.999, sigma=1e6, lookahead=2 * FILM_FRAMES)


def _quality(
    colorizer: Colorizer, clips: list[Path], batch_size: int, faithful: bool, floor: bool = False
) -> None:
    header = (f"{'clip':<28} {'frames':>6} {'PSNR t':>7} {'PSNR f':>7} {'dPSNR':>6} "
              f"{'flick t':>7} {'flick f':>7} {'truth':>6} {'ratio':>6}")  # fmt: skip
    print(header + (f" {'floor':>6}" if floor else ""))
    ratios, deltas = [], []
    for clip in clips:
        res = evaluate_video(
            colorizer, clip, batch_size=batch_size, temporal=TEMPORAL, progress=False, **ENCODER
        )
        t, f = res["temporal"], res["per_frame"]
        ratio = t["flicker"] / f["flicker"] if f["flicker"] else float("nan")
        ratios.append(ratio)
        deltas.append(t["psnr"] - f["psnr"])
        steady = ""
        if floor:
            best = evaluate_video(
                colorizer, clip, batch_size=batch_size, temporal=STEADY, progress=False,
                **ENCODER,
            )  # fmt: skip
            steady = f" {best['temporal']['flicker'] / f['flicker']:>6.2f}"
        print(
            f"{clip.name[:28]:<28} {res['n_frames']:>6} {t['psnr']:>7.2f} {f['psnr']:>7.2f} "
            f"{t['psnr'] - f['psnr']:>+6.2f} {t['flicker']:>7.3f} {f['flicker']:>7.3f} "
            f"{res['truth']['flicker']:>6.3f} {ratio:>6.2f}{steady}",
            flush=True,
        )
        if faithful:
            _faithful(colorizer, clip, batch_size)
    print(
        f"{'mean':<28} {'':>6} {'':>7} {'':>7} {np.mean(deltas):>+6.2f} {'':>7} {'':>7} "
        f"{'':>6} {np.mean(ratios):>6.2f}   (worst ratio {max(ratios):.2f}, worst dPSNR "
        f"{min(deltas):+.2f})"
    )


def _faithful(colorizer: Colorizer, clip: Path, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out{clip.suffix}"
        colorize_video(
            colorizer, clip, out, batch_size=batch_size, temporal=TEMPORAL, progress=False
        )
        src, dst = _stamps(clip), _stamps(out)
        src_audio, dst_audio = _audio(clip), _audio(out)
    same_times = len(src) == len(dst) and all(
        abs(a - b) < 1e-6 for a, b in zip(src, dst, strict=False)
    )
    print(
        f"    faithful: frames {len(src)} -> {len(dst)}, timestamps equal: {same_times}, "
        f"audio streams {len(src_audio)} -> {len(dst_audio)}, packets bit-identical: "
        f"{src_audio == dst_audio}"
    )


def _stamps(path: Path) -> list[float]:
    """Frame times in seconds, in presentation order (sorted: files whose timestamps are
    decode-order ones give them unsorted). AVI stores no timestamps, only each frame's
    place: its frames' times are their packets' (FFmpeg's demuxer reports H.264 frames in
    AVI one frame later than their place, a guess at a B-frame delay, B-frames or not)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if c.format.name == "avi":
            return sorted(float(p.dts * stream.time_base) for p in c.demux(stream) if p.size)
        return sorted(float(f.pts * stream.time_base) for f in c.decode(stream))


def _audio(path: Path) -> list[list[bytes]]:
    with av.open(str(path)) as c:
        streams = list(c.streams.audio)
        packets: list[list[bytes]] = [[] for _ in streams]
        for packet in c.demux(streams) if streams else ():
            if packet.size:
                packets[streams.index(packet.stream)].append(bytes(packet))
    return packets


def _truncate(clip: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames (in presentation order) of ``clip`` re-encoded nearly
    losslessly (libx264 CRF 10, the source's timestamps), with the audio packets up to
    their end copied."""
    dst = out / f"{clip.stem}.mkv"
    with av.open(str(clip)) as src:
        vin = src.streams.video[0]
        decoded = []
        for frame in src.decode(vin):
            decoded.append(frame)
            if len(decoded) >= frames + 32:
                break
        kept = sorted(decoded, key=lambda f: f.pts)[:frames]
        end = float((kept[-1].pts + 1) * vin.time_base)
    with av.open(str(clip)) as src, av.open(str(dst), "w") as container:
        vin = src.streams.video[0]
        vout = container.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt, vout.time_base, vout.options = "yuv420p", vin.time_base, {"crf": "10"}
        ains = list(src.streams.audio)
        aouts = [container.add_stream_from_template(a) for a in ains]
        for frame in kept:
            frame.pict_type = av.video.frame.PictureType.NONE
            container.mux(vout.encode(frame))
        container.mux(vout.encode(None))
        for packet in src.demux(*ains) if ains else ():
            if packet.size and packet.pts is not None and packet.pts * packet.time_base < end:
                packet.stream = aouts[ains.index(packet.stream)]
                container.mux(packet)
    return dst


def _make_films(photos: Path, n: int, out: Path) -> list[Path]:
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    chosen = files[:: max(1, len(files) // n)][:n]
    rng = np.random.default_rng(0)
    clips = []
    for index, path in enumerate(chosen):
        img = Image.open(path).convert("RGB")
        scale = min(1.0, FILM_SIDE / max(img.size))
        size = (int(img.width * scale) // 2 * 2, int(img.height * scale) // 2 * 2)
        rgb = np.asarray(img.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
        clip = out / f"{index}-{path.stem.split('__')[-1][:40]}.mkv"  # unique, readable
        with av.open(str(clip), "w") as c:
            stream = c.add_stream("ffv1", rate=Fraction(24))
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv444p"
            for i in range(FILM_FRAMES):
                gain = rng.uniform(1 - FILM_GAIN, 1 + FILM_GAIN)
                noisy = rgb * gain + rng.normal(0.0, FILM_NOISE, rgb.shape)
                frame = av.VideoFrame.from_ndarray(
                    np.clip(np.round(noisy), 0, 255).astype(np.uint8), format="rgb24"
                ).reformat(format="yuv444p", dst_colorspace="ITU601", dst_color_range="MPEG")
                frame.pts = i
                c.mux(stream.encode(frame))
            c.mux(stream.encode(None))
        clips.append(clip)
    return clips


def _speed(colorizer: Colorizer, clip: Path, batch_size: int, repeat: int) -> None:
    with av.open(str(clip)) as c:
        frames = [np.ascontiguousarray(f.to_ndarray(format="gray")) for f in c.decode(video=0)]
    n = len(frames)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out{clip.suffix}"

        def video() -> None:
            colorize_video(
                colorizer, clip, out, batch_size=batch_size, temporal=TEMPORAL,
                overwrite=True, progress=False,
            )  # fmt: skip

        def images() -> None:
            for start in range(0, n, 64):  # chunks: the list would not fit a long clip
                colorizer.colorize(frames[start : start + 64], batch_size=batch_size)

        video()  # warm-up
        images()
        times: dict[str, list[float]] = {"video": [], "images": []}
        for _ in range(repeat):
            for name, fn in (("video", video), ("images", images)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    ratios = [i / v for v, i in zip(times["video"], times["images"], strict=True)]
    print(
        f"{n} frames {frames[0].shape[1]}x{frames[0].shape[0]}: colorize_video "
        f"{n / statistics.median(times['video']):.1f} frames/s, colorize(list) "
        f"{n / statistics.median(times['images']):.1f} frames/s, ratio (video speed / list "
        f"speed) median {statistics.median(ratios):.2f} (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})"
    )


# (preset, CRF, P-frames only): the last, pixcolor's default (X264_DEFAULTS: no B-frames,
# no adaptive quantisation) beside x264's own settings for the preset.
ENCODER_SETTINGS = (("medium", 18, False), ("veryfast", 16, False), ("veryfast", 18, True),
                    ("veryfast", 17, True), ("faster", 18, False), ("superfast", 18, False),
                    ("veryfast", 16, True))  # fmt: skip


def _encoders(clip: Path, tmp: Path) -> None:
    with av.open(str(clip)) as c:
        planes = []
        for frame in c.decode(video=0):
            planes.append(frame.reformat(format="yuv420p").to_ndarray())
            if len(planes) == 120:
                break
    height = planes[0].shape[0] * 2 // 3
    width = planes[0].shape[1]
    out = tmp / "encoded.mp4"
    for preset, crf, flat in ENCODER_SETTINGS:
        wall, cpu = time.perf_counter(), time.process_time()
        with av.open(str(out), "w") as c:
            stream = c.add_stream("libx264", rate=Fraction(30))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, **(X264_DEFAULTS if flat else {})}
            for i, array in enumerate(planes):
                frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
                frame.pts = i
                c.mux(stream.encode(frame))
            c.mux(stream.encode(None))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with av.open(str(out)) as c:
            decoded = [f.to_ndarray() for f in c.decode(video=0)]
        err = [(a.astype(np.float64) - d) ** 2 for a, d in zip(planes, decoded, strict=True)]
        luma = 10 * np.log10(255**2 / np.mean([e[:height].mean() for e in err]))
        chroma = 10 * np.log10(255**2 / np.mean([e[height:].mean() for e in err]))
        name = f"{preset}{' P-only' if flat else ''}"
        print(f"{clip.name[:20]:<20} {name:>15} CRF {crf}: {out.stat().st_size / 1e3:7.0f} kB, "
              f"PSNR Y {luma:5.2f} dB, CbCr {chroma:5.2f} dB, {wall:5.2f} s wall, "
              f"{cpu:5.2f} CPU-s", flush=True)  # fmt: skip


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return c.streams.video[0].frames or 10**9


def _print_machine(load_only: bool = False) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    if load_only:
        print(f"\nload average at the end: {load}")
        return
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        lines = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = lines.get("Model name", model).strip()
        flags = lines.get("Flags", "")
        model += f" ({os.cpu_count()} CPUs; avx512_bf16: {'avx512_bf16' in flags})"
    except (OSError, subprocess.CalledProcessError):
        pass
    print(f"CPU: {model}; load average at the start: {load}; PyAV {av.__version__}")


if __name__ == "__main__":
    main()
