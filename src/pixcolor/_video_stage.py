"""The stage of :func:`pixcolor.video.colorize_video` around the network: frames shrunk in
the reader thread, batches through the network and the temporal filter (two at once on the
CPU), colour joined with the luma in the writer thread."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pixcolor import _fullres, _yuv
from pixcolor._hint_schedule import HintSchedule
from pixcolor._temporal import TemporalFilter
from pixcolor._threads import POLL_S, Stopped, drain, put
from pixcolor._video_io import VideoWriter, import_av, luma_plane, plane_array
from pixcolor.hints import HintSet, hint_planes_batch
from pixcolor.spread import RESIDUAL_DECAY, spread_hints, working_size

__all__ = [
    "QUEUE_BATCHES",
    "ColorizeStage",
    "Frame",
    "Options",
    "network_threads",
    "network_workers",
]

# Batches of frames the queues between the threads hold (memory: a few batches of frames).
QUEUE_BATCHES = 2


@dataclass(frozen=True)
class Options:
    render_size: int
    saturation: float
    batch_size: int


@dataclass
class Frame:
    """A source frame on its way: its luma plane, timestamp and display rotation, and its
    gray shrunk for the network (and to the grid the colour joins on)."""

    index: int
    luma: torch.Tensor  # (H, W) uint8
    pts: int
    rotation: float
    small: torch.Tensor  # (1, r, r) gray in [0, 1] on the device
    joined: torch.Tensor  # (1, *grid) gray: ``small`` where the grid is the network's


class ColorizeStage:
    """The stage around the network. The reader thread turns each decoded frame into a
    :class:`Frame` (:meth:`prepare`: its luma plane, shrunk for the network); the caller's
    thread runs batches of them through the network and the temporal filter (:meth:`run`);
    the writer thread joins their colour with their luma into frames to encode
    (:meth:`finish`)."""

    def __init__(
        self,
        colorizer: Any,
        info: Any,
        pix_fmt: str,
        opts: Options,
        filt: TemporalFilter | None,
        schedule: HintSchedule,
        writer: VideoWriter,
    ) -> None:
        self.colorizer, self.info, self.pix_fmt, self.opts = colorizer, info, pix_fmt, opts
        self.filter = filt.stream(filt.steady_gamut) if filt is not None else None
        self.schedule = schedule.bind((info.height, info.width))
        self.writer = writer
        self.device = colorizer.device
        self.pending: deque[Frame] = deque()  # frames whose colour the filter still holds
        self.prepared = 0  # frames prepared (by the reader thread)
        # Batches run through the network at once, each in a thread of its own (see
        # network_threads); in order, the oldest first, with their frames.
        self.workers = network_workers(colorizer)
        self.inflight: deque[tuple[list[Frame], Future[Any]]] = deque()
        # Batches passed to the writer and not yet written (memory: a few batches).
        self.slots = threading.Semaphore(QUEUE_BATCHES)
        # The grid the colour is filtered and joined on: the network's square, or the
        # frames' working grid when a model without hint channels spreads hints on it.
        size = opts.render_size
        self.grid = (size, size)
        if any(self.schedule.sets) and not colorizer.network.hint_channels:
            self.grid = working_size(info.height, info.width)

    def prepare(self, frame: Any) -> Frame:
        """A decoded frame -> :class:`Frame` (in the reader thread)."""
        luma = torch.from_numpy(luma_plane(frame, self.pix_fmt, self.info))
        size = (self.opts.render_size,) * 2
        small = self._shrink(luma[None, None], size)[0]
        joined = small if self.grid == size else self._shrink(luma[None, None], self.grid)[0]
        rotation = float(getattr(frame, "rotation", 0) or 0)
        index, self.prepared = self.prepared, self.prepared + 1
        return Frame(index, luma, int(frame.pts), rotation, small, joined)

    def run(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any], stop: threading.Event) -> int:
        self.outbox, self.stop = outbox, stop
        batch: list[Frame] = []
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

    def _submit(self, pool: ThreadPoolExecutor, batch: list[Frame]) -> None:
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
    def _colour(self, batch: list[Frame]) -> tuple[torch.Tensor, torch.Tensor]:
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

    def _predict(self, small: torch.Tensor, batch: list[Frame]) -> torch.Tensor:
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
    def finish(self, frames: list[Frame], offsets: torch.Tensor) -> list[Any]:
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

    def _av_frame(self, frame: Frame, chroma: np.ndarray) -> Any:
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


def network_workers(colorizer: Any) -> int:
    """Batches the network runs at once: two on the CPU with torch (and at least two
    cores), else one."""
    network = colorizer.network
    on_cpu = colorizer.device.type == "cpu" and getattr(network, "backend", "torch") == "torch"
    return 2 if on_cpu and torch.get_num_threads() > 1 else 1


@contextmanager
def network_threads(workers: int, device: torch.device) -> Iterator[None]:
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


def _resize_ab(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(ab.shape[-2:]) == tuple(size):
        return ab
    return F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
