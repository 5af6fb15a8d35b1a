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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pixcolor import _fullres, _yuv
from pixcolor._atomic import publish, temporary_file
from pixcolor._hint_schedule import HintSchedule
from pixcolor._temporal import TemporalFilter
from pixcolor._threads import END, POLL_S, Stopped, Worker, drain, join, put
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
    luma_plane,
    muxer_for,
    plane_array,
    resolve_codec,
)
from pixcolor.hints import HintSet, hint_planes_batch
from pixcolor.spread import RESIDUAL_DECAY, spread_hints, working_size

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "PRESETS",
    "VIDEO_EXTENSIONS",
    "X264_DEFAULTS",
    "TemporalFilter",
    "VideoReport",
    "colorize_video",
    "is_video_file",
]

logger = logging.getLogger(__name__)

# Batches of frames the queues between the threads hold (memory: a few batches of frames).
_QUEUE_BATCHES = 2


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
    filt = _temporal_filter(temporal)
    schedule = HintSchedule(hints)
    if crf is not None and (isinstance(crf, bool) or not isinstance(crf, int) or crf < 0):
        raise ValueError(f"crf must be an integer >= 0, got {crf!r}")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
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
            colorizer, reader, dst, muxer, _Options(render_size, saturation, batch_size),
            filt, schedule, codec, crf, preset, progress, started,
        )  # fmt: skip
    finally:
        reader.close()


# --- the pipeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    render_size: int
    saturation: float
    batch_size: int


@dataclass
class _Frame:
    """A source frame on its way: its luma plane, timestamp and display rotation, and its
    gray shrunk for the network (and to the grid the colour joins on)."""

    index: int
    luma: torch.Tensor  # (H, W) uint8
    pts: int
    rotation: float
    small: torch.Tensor  # (1, r, r) gray in [0, 1] on the device
    joined: torch.Tensor  # (1, *grid) gray: ``small`` where the grid is the network's


def _run(
    colorizer: Any,
    reader: VideoReader,
    dst: Path,
    muxer: str,
    opts: _Options,
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
    inbox: queue.Queue[Any] = queue.Queue(maxsize=opts.batch_size * _QUEUE_BATCHES)
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
        stage = _Colorize(colorizer, info, pix_fmt, opts, filt, schedule, writer)
        with _network_threads(stage.workers, colorizer.device):
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


class _Colorize:
    """The stage around the network. The reader thread turns each decoded frame into a
    :class:`_Frame` (:meth:`prepare`: its luma plane, shrunk for the network); the caller's
    thread runs batches of them through the network and the temporal filter (:meth:`run`);
    the writer thread joins their colour with their luma into frames to encode
    (:meth:`finish`)."""

    def __init__(
        self,
        colorizer: Any,
        info: Any,
        pix_fmt: str,
        opts: _Options,
        filt: TemporalFilter | None,
        schedule: HintSchedule,
        writer: VideoWriter,
    ) -> None:
        self.colorizer, self.info, self.pix_fmt, self.opts = colorizer, info, pix_fmt, opts
        self.filter = filt.stream(filt.steady_gamut) if filt is not None else None
        self.schedule = schedule.bind((info.height, info.width))
        self.writer = writer
        self.device = colorizer.device
        self.pending: deque[_Frame] = deque()  # frames whose colour the filter still holds
        self.prepared = 0  # frames prepared (by the reader thread)
        # Batches run through the network at once, each in a thread of its own (see
        # _network_threads); in order, the oldest first, with their frames.
        self.workers = _network_workers(colorizer)
        self.inflight: deque[tuple[list[_Frame], Future[Any]]] = deque()
        # Batches passed to the writer and not yet written (memory: a few batches).
        self.slots = threading.Semaphore(_QUEUE_BATCHES)
        # The grid the colour is filtered and joined on: the network's square, or the
        # frames' working grid when a model without hint channels spreads hints on it.
        size = opts.render_size
        self.grid = (size, size)
        if any(self.schedule.sets) and not colorizer.network.hint_channels:
            self.grid = working_size(info.height, info.width)

    def prepare(self, frame: Any) -> _Frame:
        """A decoded frame -> :class:`_Frame` (in the reader thread)."""
        luma = torch.from_numpy(luma_plane(frame, self.pix_fmt, self.info))
        size = (self.opts.render_size,) * 2
        small = self._shrink(luma[None, None], size)[0]
        joined = small if self.grid == size else self._shrink(luma[None, None], self.grid)[0]
        rotation = float(getattr(frame, "rotation", 0) or 0)
        index, self.prepared = self.prepared, self.prepared + 1
        return _Frame(index, luma, int(frame.pts), rotation, small, joined)

    def run(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any], stop: threading.Event) -> int:
        self.outbox, self.stop = outbox, stop
        batch: list[_Frame] = []
        held: list[Any] = []  # audio before the first frame: the header waits for its rotation
        count = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pixcolor-network") as pool:
            for kind, item in drain(inbox, stop):
                if kind == "audio":
                    if count:
                        self._put(("audio", item))
                    else:
                        held.append(item)
                    continue
                if not count:
                    self.writer.set_rotation(item.rotation)
                    for packet in held:
                        self._put(("audio", packet))
                batch.append(item)
                count += 1
                if len(batch) == self.opts.batch_size:
                    self._submit(pool, batch)
                    batch = []
            if batch:
                self._submit(pool, batch)
            while self.inflight:
                self._collect()
        if self.filter is not None and self.pending:
            self._emit(self.filter.flush())
        return count

    def _submit(self, pool: ThreadPoolExecutor, batch: list[_Frame]) -> None:
        """Start a batch through the network; with :attr:`workers` batches under way, wait
        for the oldest and pass it on."""
        self.inflight.append((batch, pool.submit(self._colour, batch)))
        while len(self.inflight) >= self.workers:
            self._collect()

    def _collect(self) -> None:
        """The oldest batch under way, steadied by the filter and passed on."""
        batch, future = self.inflight.popleft()
        joined, offsets = future.result()
        self.pending.extend(batch)
        self._emit(offsets if self.filter is None else self.filter.push(joined, offsets))

    @torch.inference_mode()
    def _colour(self, batch: list[_Frame]) -> tuple[torch.Tensor, torch.Tensor]:
        """The gray a batch's colour joins on and its colour offsets from gray (at render
        size, as for a photo: :func:`pixcolor._fullres.chroma_offsets`), in a network
        thread."""
        small = torch.stack([f.small for f in batch])
        joined = small if self.grid == small.shape[-2:] else torch.stack([f.joined for f in batch])
        return joined, _fullres.chroma_offsets(joined, self._predict(small, batch))

    def _shrink(self, luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """8-bit luma ``(B, 1, H, W)`` -> gray ``(B, 1, *size)`` in ``[0, 1]`` on the device
        (antialiased bilinear, on 8-bit levels on the CPU)."""
        small = luma.to(self.device)
        if small.device.type != "cpu":  # 8-bit antialiased resizing is CPU-only
            small = small.float()
        if tuple(small.shape[-2:]) != size:
            small = F.interpolate(
                small, size=size, mode="bilinear", align_corners=False, antialias=True
            )
        if small.dtype != torch.uint8:
            small = small.round_().clamp_(0, 255)
        return _yuv.luma_to_gray(small, self.info.full_range)

    def _predict(self, small: torch.Tensor, batch: list[_Frame]) -> torch.Tensor:
        """a/b of a batch on :attr:`grid` (times the saturation), through the colorizer's
        network (:meth:`pixcolor.Colorizer._predict_ab`). ``small`` is the batch's gray at
        render size. Hints go into a hint model's input, or are spread along each frame's
        edges for others (as for a photo)."""
        colorizer = self.colorizer
        smalls = [one[None].expand(-1, 3, -1, -1) for one in small]
        sets = [self.schedule.at(f.index) for f in batch]
        hint_model = bool(colorizer.network.hint_channels)
        hint_sets = None
        planes = None
        if any(sets):
            size = (self.info.height, self.info.width)
            hint_sets = [s if s is not None else HintSet.build(size) for s in sets]
            if hint_model:
                ab_scale = colorizer.generator.config.ab_scale
                planes = hint_planes_batch(hint_sets, self.opts.render_size, ab_scale)
        ab = colorizer._predict_ab(smalls, planes) * self.opts.saturation
        if hint_sets is None or hint_model:
            return _resize_ab(ab, self.grid)
        frames = []
        for one, frame, hints in zip(ab, batch, hint_sets, strict=True):
            if len(hints):
                gray = _yuv.luma_to_gray(frame.luma[None], self.info.full_range)
                one = spread_hints(one, gray.expand(3, -1, -1), hints, decay=RESIDUAL_DECAY)
            frames.append(_resize_ab(one[None], self.grid))
        return torch.cat(frames)

    def _emit(self, offsets: torch.Tensor) -> None:
        """Pass the oldest ``len(offsets)`` pending frames with their colour offsets to the
        writer thread (:meth:`finish`)."""
        if not len(offsets):
            return
        frames = [self.pending.popleft() for _ in range(len(offsets))]
        while not self.slots.acquire(timeout=POLL_S):
            if self.stop.is_set():
                raise Stopped()
        self._put(("frames", (frames, offsets)))

    @torch.inference_mode()
    def finish(self, frames: list[_Frame], offsets: torch.Tensor) -> list[Any]:
        """Frames to encode: the colour ``offsets`` of ``frames`` joined with their luma
        (:func:`pixcolor._yuv.chroma_planes`), in the writer thread."""
        luma = torch.stack([f.luma for f in frames])[:, None].to(self.device)
        gray = _yuv.chroma_gray(luma, self.pix_fmt, self.info.full_range)
        info = self.info
        chroma = _yuv.chroma_planes(
            gray, offsets, self.pix_fmt, info.matrix, info.full_range, pooled=True
        )
        planes = _yuv.quantize_chroma(chroma, info.full_range).cpu().numpy()
        return [self._av_frame(f, p) for f, p in zip(frames, planes, strict=True)]

    def _av_frame(self, frame: _Frame, chroma: np.ndarray) -> Any:
        av = import_av()
        out = av.VideoFrame(self.info.width, self.info.height, self.pix_fmt)
        plane_array(out.planes[0])[...] = frame.luma.numpy()
        plane_array(out.planes[1])[...] = chroma[0]
        plane_array(out.planes[2])[...] = chroma[1]
        out.pts = frame.pts
        out.time_base = self.info.time_base
        out.color_range = 2 if self.info.full_range else 1
        out.colorspace = self.info.tags["colorspace"]
        return out

    def _put(self, item: Any) -> None:
        put(self.outbox, item, self.stop)


def _produce(
    reader: VideoReader,
    inbox: queue.Queue[Any],
    stop: threading.Event,
    prepare: Callable[[Any], _Frame],
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
    stage: _Colorize,
) -> None:
    """Writer thread: encode batches of frames (made by :meth:`_Colorize.finish`) and copy
    audio packets until the end mark."""
    for kind, item in drain(outbox, stop):
        if kind == "frames":
            for frame in stage.finish(*item):
                writer.write_video(frame)
                bar.update(1)
            stage.slots.release()
        else:
            writer.write_audio(item)


def _network_workers(colorizer: Any) -> int:
    """Batches the network runs at once: two on the CPU with torch (and at least two
    cores), else one."""
    network = colorizer.network
    on_cpu = colorizer.device.type == "cpu" and getattr(network, "backend", "torch") == "torch"
    return 2 if on_cpu and torch.get_num_threads() > 1 else 1


@contextmanager
def _network_threads(workers: int, device: torch.device) -> Iterator[None]:
    """While a clip runs on the CPU with two network workers, torch's intra-op threads
    (which the threads started meanwhile take) are the cores torch uses, less one for the
    codecs, shared among the workers (at least one each); restored afterwards.

    Why: the codecs and the colour join run in threads of their own, and an OpenMP
    parallel op waits for its slowest thread, so one network spread over every core stalls
    whenever a codec thread takes a core (on 2 cores, box's 120 frames: 4.9 CPU-seconds
    against 3.6 to 3.8 with one thread each, see ``docs/video.rst``); two batches at once, each
    on its own cores, keep the cores busy without that wait."""
    threads = torch.get_num_threads()
    if workers <= 1 or device.type != "cpu":
        yield
        return
    torch.set_num_threads(max(1, (threads - 1) // workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _temporal_filter(temporal: object) -> TemporalFilter | None:
    if isinstance(temporal, TemporalFilter):
        return temporal
    if temporal == "auto":
        return TemporalFilter()
    if temporal == "none":
        return None
    raise ValueError(f"temporal must be 'auto', 'none' or a TemporalFilter, got {temporal!r}")


def _resize_ab(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(ab.shape[-2:]) == tuple(size):
        return ab
    return F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
