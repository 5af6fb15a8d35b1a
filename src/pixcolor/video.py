"""Colourise video clips: streamed, steady in colour, audio kept.

:func:`colorize_video` (also :meth:`pixcolor.Colorizer.colorize_video` and ``pixcolor
colorize clip.mp4``) decodes a clip with PyAV (the ``video`` extra), colourises its frames
in batches and encodes them into a new file:

* **Luma kept.** A frame's luma plane ``Y'`` is its black-and-white picture: it is copied
  to the output byte for byte (the codec then compresses it as it would any video); only
  the chroma planes are new. They are computed as a photo's colour is (the Colorizer's
  full-resolution step, :mod:`pixcolor._fullres`): the colour offsets from gray of the
  predicted a/b on the frame's gray at render size, upsampled to the chroma planes and
  scaled towards gray where they would leave the gamut.
* **Steady colour.** Colourising each frame on its own flickers: the network's guess for a
  wall changes from frame to frame. The colour (as offsets from gray, at render size) is
  smoothed along time with weights that drop where the picture changes (see
  :class:`TemporalFilter`), after compensating each frame's overall brightness, so old
  film's exposure flicker does not stop the smoothing and moving objects are not smeared.
* **Faithful container.** Same frame count, size, frame rate and timestamps as the source
  (timestamps sorted into presentation order where a file stores them in decode order);
  every audio stream is copied packet for packet; colour tags, sample aspect ratio,
  display rotation and metadata are carried over. Default codec: the source's when a
  constant-quality encoder for it exists (H.264, HEVC, VP8/9, AV1), else H.264, at a high
  quality (CRF 17 at x264's ``veryfast`` preset, P-frames only, for H.264), in
  ``yuv420p`` (``yuv444p`` for odd frame sizes).
* **Streamed.** Decoding (with the shrinking of each frame for the network), the network
  and encoding (with the colour join) run in threads joined by short queues, so memory
  holds a few batches whatever the clip's length, and the codecs work while the network
  does; on the CPU two batches go through the network at once, each on its own cores
  (``docs/video.rst``, Streaming). The output is written to a temporary file beside the target
  and renamed at the end: an interrupted run leaves nothing under the final name.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pixcolor._atomic import publish, temporary_file
from pixcolor._hint_schedule import HintSchedule
from pixcolor._temporal import TemporalFilter
from pixcolor._threads import END, Stopped, Worker, drain, join, put
from pixcolor._video_io import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    PRESETS,
    VIDEO_EXTENSIONS,
    X264_DEFAULTS,
    VideoReader,
    VideoWriter,
    choose_pix_fmt,
    import_av,
    is_video_file,
    muxer_for,
    resolve_codec,
)
from pixcolor._video_stage import QUEUE_BATCHES, ColorizeStage, Frame, Options, network_threads

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "PRESETS",
    "VIDEO_EXTENSIONS",
    "X264_DEFAULTS",
    "TemporalFilter",
    "VideoReport",
    "check_video_options",
    "colorize_video",
    "is_video_file",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoReport:
    """What :func:`colorize_video` wrote.

    Attributes:
        path: The output file.
        frames: Frames written (the source's count).
        codec: Video encoder used.
        pix_fmt: Pixel format written.
        audio_streams: Audio streams copied.
        seconds: Wall-clock time of the run.
    """

    path: Path
    frames: int
    codec: str
    pix_fmt: str
    audio_streams: int
    seconds: float

    @property
    def fps(self) -> float:
        """Frames per second of wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def colorize_video(
    colorizer: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    render_size: int | None = None,
    saturation: float = 1.0,
    hints: Any = None,
    batch_size: int = 8,
    temporal: str | TemporalFilter = "auto",
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> VideoReport:
    """Colourise the video ``src`` into ``dst``; see the module docstring.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        src: The clip: any container and codec FFmpeg decodes (colour clips are taken by
            their luma, i.e. turned gray first).
        dst: The output file; its extension picks the container (one of
            :data:`VIDEO_EXTENSIONS`). Never the input.
        render_size: Side of the square the network sees (``None``: the model's own).
        saturation: Factor on the predicted a/b: 0 gray, above 1 more vivid.
        hints: Colour hints, as :meth:`pixcolor.Colorizer.colorize` takes them for one
            image (coordinates in frame pixels): a sequence of hints for every frame, or a
            mapping ``{first_frame: hints}`` where each entry holds until the next one
            (``{0: [...], 120: [...]}``; ``None`` or ``[]`` ends a range). Needs a colorizer
            that takes hints.
        batch_size: Frames per network forward.
        temporal: ``"auto"`` (the default :class:`TemporalFilter`), ``"none"`` (each frame
            on its own), or a :class:`TemporalFilter`.
        codec: Video encoder (``"libx264"``, ``"h264"``, ``"libx265"``, ``"libvpx-vp9"``,
            ...); ``None``: see the module docstring.
        crf: Constant rate factor for encoders that have one (lower is better; ``None``:
            :data:`DEFAULT_CRF`).
        preset: Speed preset of the x264 / x265 encoders, ``"ultrafast"`` to ``"placebo"``
            (:data:`PRESETS`; ``None``: ``"veryfast"`` for libx264 without B-frames or
            adaptive quantisation (:data:`X264_DEFAULTS`: they make a
            steady colour flicker), x265's own ``"medium"``). An explicit preset is
            x264's own. Slower presets make smaller files at the same ``crf``.
        overwrite: Replace an existing ``dst`` (the input is never replaced).
        progress: Show a tqdm bar counting frames (with frames per second).

    Returns:
        A :class:`VideoReport`.

    Raises:
        ImportError: If PyAV is not installed.
        FileNotFoundError: If ``src`` does not exist.
        FileExistsError: If ``dst`` exists and ``overwrite`` is false.
        ValueError: If an argument is invalid, or ``dst`` is ``src`` or has no video
            extension.
        VideoError: If ``src`` is not a usable video (not a video, corrupt or truncated,
            no video stream, no frame, an unsupported pixel format) or cannot be encoded.
            Nothing is left at ``dst``.

    Example:
        .. code-block:: python

            colorizer = pixcolor.Colorizer.from_pretrained()
            report = colorizer.colorize_video("film.mp4", "film-colour.mp4")
            print(report.frames, f"{report.fps:.1f} frames/s")
    """
    import_av()
    render_size, saturation, batch_size = colorizer._check_options(
        render_size, saturation, batch_size
    )
    filt = check_video_options(temporal, crf, preset)
    schedule = HintSchedule(hints)
    src, dst = Path(src), Path(dst)
    muxer = muxer_for(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"output {str(dst)!r} would overwrite the input; choose another path")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{str(dst)!r} exists; pass overwrite=True to replace it")
    started = time.perf_counter()
    reader = VideoReader(src)
    try:
        return _run(
            colorizer, reader, dst, muxer, Options(render_size, saturation, batch_size),
            filt, schedule, codec, crf, preset, progress, started,
        )  # fmt: skip
    finally:
        reader.close()


# --- the pipeline ----------------------------------------------------------------------


def _run(
    colorizer: Any,
    reader: VideoReader,
    dst: Path,
    muxer: str,
    opts: Options,
    filt: TemporalFilter | None,
    schedule: HintSchedule,
    codec: str | None,
    crf: int | None,
    preset: str | None,
    progress: bool,
    started: float,
) -> VideoReport:
    info = reader.info
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(dst)
    stop = threading.Event()
    inbox: queue.Queue[Any] = queue.Queue(maxsize=opts.batch_size * QUEUE_BATCHES)
    outbox: queue.Queue[Any] = queue.Queue()  # its batches are counted by the stage's slots
    writer: VideoWriter | None = None
    bar = tqdm(
        total=info.frames or None, desc=f"colorize {reader.path.name}", unit="frame",
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    workers: list[Worker] = []
    try:
        encoder = resolve_codec(codec, info.codec, muxer)
        pix_fmt = choose_pix_fmt(encoder, info.width, info.height)
        writer = VideoWriter(tmp, muxer, reader, encoder, crf, pix_fmt, preset)
        stage = ColorizeStage(colorizer, info, pix_fmt, opts, filt, schedule, writer)
        with network_threads(stage.workers, colorizer.device):
            workers = [
                Worker(_produce, reader, inbox, stop, stage.prepare),
                Worker(_consume, writer, outbox, stop, bar, stage),
            ]
            count = stage.run(inbox, outbox, stop)
            put(outbox, END, stop)
            join(workers)
        writer.close()
        publish(tmp, dst)
    except BaseException as err:
        stop.set()
        failure = join(workers, raise_error=False)
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        if failure is not None and isinstance(err, Stopped):
            raise failure from None  # the thread's own error, not the stop it caused
        raise
    finally:
        bar.close()
    report = VideoReport(
        path=dst, frames=count, codec=writer.codec, pix_fmt=pix_fmt,
        audio_streams=info.audio, seconds=time.perf_counter() - started,
    )  # fmt: skip
    logger.info("%s: %d frames, %.1f frames/s", dst, report.frames, report.fps)
    return report


def _produce(
    reader: VideoReader,
    inbox: queue.Queue[Any],
    stop: threading.Event,
    prepare: Callable[[Any], Frame],
) -> None:
    """Reader thread: decoded frames (through ``prepare``) and audio packets, then the end
    mark (or an error)."""
    try:
        for kind, item in reader.items():
            if not put(inbox, (kind, prepare(item) if kind == "video" else item), stop):
                return
        put(inbox, END, stop)
    except Exception as err:  # handed to the caller's thread, which raises it
        put(inbox, ("error", err), stop)


def _consume(
    writer: VideoWriter,
    outbox: queue.Queue[Any],
    stop: threading.Event,
    bar: Any,
    stage: ColorizeStage,
) -> None:
    """Writer thread: encode batches of frames (made by :meth:`ColorizeStage.finish`) and copy
    audio packets until the end mark."""
    for kind, item in drain(outbox, stop):
        if kind == "frames":
            for frame in stage.finish(*item):
                writer.write_video(frame)
                bar.update(1)
            stage.slots.release()
        else:
            writer.write_audio(item)


def check_video_options(
    temporal: object = "auto", crf: object = None, preset: object = None, codec: object = None
) -> TemporalFilter | None:
    """Check :func:`colorize_video`'s encoder and filter options once, before any clip is
    opened (a folder of clips then fails with one error, not one per clip); returns the
    temporal filter ``temporal`` stands for.

    Raises:
        ValueError: If ``temporal``, ``crf`` or ``preset`` is not a valid value.
        VideoError: If ``codec`` is not a video encoder of this FFmpeg.
    """
    filt = _temporal_filter(temporal)
    if crf is not None and (isinstance(crf, bool) or not isinstance(crf, int) or crf < 0):
        raise ValueError(f"crf must be an integer >= 0, got {crf!r}")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if codec is not None:
        resolve_codec(str(codec), "", "")
    return filt


def _temporal_filter(temporal: object) -> TemporalFilter | None:
    if isinstance(temporal, TemporalFilter):
        return temporal
    if temporal == "auto":
        return TemporalFilter()
    if temporal == "none":
        return None
    raise ValueError(f"temporal must be 'auto', 'none' or a TemporalFilter, got {temporal!r}")
