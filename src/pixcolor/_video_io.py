"""Reading and writing video files with PyAV, for :mod:`pixcolor.video`.

:class:`VideoReader` opens and checks a clip, then yields its video frames (in presentation
order, with strictly increasing timestamps) and its audio packets (untouched) in file order.
:class:`VideoWriter` encodes frames into a new container and copies audio packets into it
unchanged. Every PyAV failure becomes a :class:`~pixcolor.errors.VideoError` that names the
file.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pixcolor.errors import VideoError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".flv", ".wmv", ".3gp",
)  # fmt: skip
"""File name endings (compared case-insensitively) taken for videos."""

# Output extension -> FFmpeg muxer.
_MUXERS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".avi": "avi", ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts", ".m2ts": "mpegts",
    ".mts": "mpegts", ".flv": "flv", ".wmv": "asf", ".3gp": "3gp",
}  # fmt: skip
# Source codec -> encoders with a constant-quality mode, first available wins.
_QUALITY_ENCODERS = {
    "h264": ("libx264",), "hevc": ("libx265",), "vp9": ("libvpx-vp9",), "vp8": ("libvpx",),
    "av1": ("libsvtav1", "libaom-av1"),
}  # fmt: skip
# What each of them calls high quality: visually lossless on our clips at these values
# (libx264 at its default settings below: CRF 17 at "veryfast" with P-frames only codes the
# shared clips' luma better than CRF 18 at "medium", benchmarks/bench_video.py --encoders).
DEFAULT_CRF = {"libx264": 17, "libx265": 20, "libvpx-vp9": 24, "libvpx": 10, "libsvtav1": 24,
               "libaom-av1": 24}  # fmt: skip
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow", "placebo")  # fmt: skip
"""Speed presets of the x264 and x265 encoders, fastest first (``preset=`` / ``--preset``)."""
# Encoders taking a PRESETS name -> their default here. libx264 at "veryfast" spends about
# a third of the CPU time of its own default ("medium") on our clips: on a CPU the encoder
# would otherwise take a third of the run (bench_video.py --encoders).
DEFAULT_PRESET = {"libx264": "veryfast", "libx265": "medium"}
# With its default preset, libx264 also codes every frame as a P-frame at one quality (no
# B-frames, no adaptive quantisation): a steady chroma plane then stays steady from frame to
# frame. B-frames (coded at a higher quantiser) and adaptive quantisation made the output's
# a/b flicker by up to half a unit where the colour itself stood still, which more than
# doubled the flicker ratio of still old films. On our colourised clips CRF 17 without them
# takes 30 % less encoder time than CRF 16 with them, codes the luma 1.1 dB better and
# makes 21 % larger files (docs/video_results.inc). An explicit preset gets x264's own.
X264_DEFAULTS = {"bf": "0", "x264-params": "aq-mode=0"}
"""libx264 options added to the default preset: no B-frames, no adaptive quantisation."""
_WEBM_CODECS = ("vp8", "vp9", "av1")
# Decoded frames may arrive out of presentation-time order in files whose timestamps are
# decode-order ones (a B-frame stream muxed without composition offsets): this many frames
# are held to put them back in order (H.264 and HEVC reorder at most 16).
_REORDER_WINDOW = 16
# Container magic numbers for inputs without a video extension: (offset, bytes).
_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"FLV\x01"), (0, b"\x00\x00\x01\xba"),
          (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"))  # fmt: skip
# Colour matrices: FFmpeg AVColorSpace -> (name, Kr, Kb).
_MATRICES = {1: ("bt709", 0.2126, 0.0722), 5: ("bt601", 0.299, 0.114),
             6: ("bt601", 0.299, 0.114), 9: ("bt2020", 0.2627, 0.0593)}  # fmt: skip
SWS_MATRIX = {"bt601": "ITU601", "bt709": "ITU709", "bt2020": "BT2020"}
"""Matrix name -> the name PyAV's ``reformat`` takes."""
_HW_FORMATS = ("vaapi", "vdpau", "cuda", "qsv", "d3d11", "dxva2", "videotoolbox", "vulkan",
               "drm_prime", "mediacodec", "opencl", "mmal")  # fmt: skip


def import_av() -> Any:
    """The ``av`` module, or one clear :class:`ImportError` saying how to get it."""
    try:
        import av
    except ImportError as err:
        raise ImportError(
            "video needs PyAV, which is not installed: pip install 'pixcolor[video]'"
        ) from err
    return av


def is_video_file(path: Path) -> bool:
    """Whether ``path`` is a video: by its extension, else by its first bytes (MP4/MOV,
    Matroska/WebM, FLV, MPEG-PS, ASF, AVI, MPEG-TS)."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(377)
    except OSError:
        return False
    if any(head[at : at + len(magic)] == magic for at, magic in _MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47  # MPEG-TS sync


def muxer_for(path: Path) -> str:
    """The FFmpeg muxer that writes ``path``'s extension.

    Raises:
        ValueError: If the extension is not a video one pixcolor writes.
    """
    muxer = _MUXERS.get(path.suffix.lower())
    if muxer is None:
        raise ValueError(
            f"cannot write a video to {str(path)!r}: its extension must be one of "
            f"{', '.join(_MUXERS)}"
        )
    return muxer


@dataclass(frozen=True)
class SourceInfo:
    """What :class:`VideoReader` found in a clip.

    Attributes:
        width: Frame width in pixels.
        height: Frame height in pixels.
        pix_fmt: Decoded pixel format (``"yuv420p"``, ...).
        codec: Video codec (``"h264"``, ...).
        frames: Frames the container declares (0: unknown).
        duration: Seconds the container declares (``None``: unknown).
        rate: Average frame rate (``None``: unknown).
        time_base: Time base of the video stream.
        full_range: Whether luma uses the full 0-255 range (JPEG range) rather than 16-235.
        matrix: ``(name, Kr, Kb)`` of the YCbCr matrix the clip is tagged with (BT.601 for
            untagged clips up to 576 lines, BT.709 above, as players assume).
        tags: ``colorspace``, ``color_primaries``, ``color_trc`` codes to copy to the output.
        audio: Number of audio streams.
    """

    width: int
    height: int
    pix_fmt: str
    codec: str
    frames: int
    duration: float | None
    rate: Fraction | None
    time_base: Fraction
    full_range: bool
    matrix: tuple[str, float, float]
    tags: dict[str, int]
    audio: int


class VideoReader:
    """Open and check a video file; :meth:`items` streams its frames and audio packets.

    Args:
        path: The clip.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        VideoError: If it is not a readable video, has no video stream, a codec this FFmpeg
            cannot decode, or a pixel format pixcolor cannot colourise (alpha, Bayer,
            hardware surfaces).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        av = import_av()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video {str(self.path)!r} does not exist")
        try:
            self.container = av.open(str(self.path), metadata_errors="replace")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
            raise VideoError(
                f"{self._name} is not a readable video (not a video, or damaged or "
                f"truncated): {_reason(err)}"
            ) from err
        try:
            self.info = self._inspect()
        except BaseException:
            self.container.close()
            raise

    @property
    def _name(self) -> str:
        return repr(str(self.path))

    def _inspect(self) -> SourceInfo:
        av = import_av()
        still = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
        videos = [s for s in self.container.streams.video if not s.disposition & still]
        if not videos:
            kinds = sorted({s.type for s in self.container.streams}) or ["none"]
            raise VideoError(
                f"{self._name} has no video stream (streams: {', '.join(map(str, kinds))})"
            )
        if len(videos) > 1:
            logger.warning("%s: colourising its first video stream of %d", self._name, len(videos))
        self.stream = stream = videos[0]
        context = stream.codec_context
        if context is None or not stream.codec_context.codec.is_decoder:
            raise VideoError(f"{self._name}: this FFmpeg cannot decode its video codec")
        stream.thread_type = "AUTO"
        fmt = context.format
        if fmt is None or not context.width or not context.height:
            raise VideoError(
                f"{self._name} holds no video frame that can be decoded (its video stream "
                "has no known size or pixel format)"
            )
        _check_pix_fmt(fmt, self._name)
        self.audio = list(self.container.streams.audio)
        colorspace = int(context.colorspace or 2)
        matrix = _MATRICES.get(colorspace) or (
            _MATRICES[5] if context.height <= 576 else _MATRICES[1]
        )
        full = int(context.color_range or 0) == 2 or fmt.name.startswith("yuvj") or fmt.is_rgb
        tags = {
            "colorspace": colorspace if colorspace in _MATRICES else _code(matrix[0]),
            "color_primaries": int(context.color_primaries or 2),
            "color_trc": int(context.color_trc or 2),
        }
        duration = None
        if stream.duration:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration:
            duration = self.container.duration / 1_000_000
        return SourceInfo(
            width=int(context.width),
            height=int(context.height),
            pix_fmt=fmt.name,
            codec=context.codec.name,
            frames=int(stream.frames or 0),
            duration=duration,
            rate=stream.average_rate or stream.guessed_rate or None,
            time_base=stream.time_base or Fraction(1, 90000),
            full_range=full,
            matrix=matrix,
            tags=tags,
            audio=len(self.audio),
        )

    def items(self) -> Iterator[tuple[str, Any]]:
        """``("video", frame)`` for each decoded frame in presentation order, and
        ``("audio", packet)`` for each audio packet, in file order.

        Frame timestamps (``frame.pts``, in the stream's time base) are the source's,
        sorted into presentation order (over a window of 16 frames) and made strictly
        increasing; a frame without one gets its predecessor's plus one frame interval.

        Raises:
            VideoError: If the file is corrupt or truncated, or holds no video frame.
        """
        av = import_av()
        streams = [self.stream, *self.audio]
        order = _Reorder(self._frame_step())
        count, last_end = 0, None
        try:
            for packet in self.container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None and packet.size:
                        yield "audio", packet
                    continue
                for frame in packet.decode():
                    for ready in order.push(frame):
                        count += 1
                        yield "video", ready
            for ready in order.flush():
                count += 1
                last_end = ready.pts + order.step
                yield "video", ready
        except av.FFmpegError as err:
            raise VideoError(
                f"{self._name} is corrupt or truncated (after {count} frames): {_reason(err)}"
            ) from err
        self._check_complete(count, last_end)

    def close(self) -> None:
        """Close the file."""
        self.container.close()

    def _frame_step(self) -> int:
        """One frame interval in time-base units (1 if the rate is unknown)."""
        rate, base = self.info.rate, self.info.time_base
        if not rate:
            return 1
        return max(1, round(1 / (rate * base)))

    def _check_complete(self, count: int, last_end: int | None) -> None:
        if count == 0:
            raise VideoError(f"{self._name} holds no video frame")
        declared = self.info.frames
        if declared and count < declared - max(2, declared // 100):
            raise VideoError(
                f"{self._name} is truncated: it declares {declared} frames but only "
                f"{count} could be decoded"
            )
        if not declared and self.info.duration and last_end is not None and self.info.rate:
            end = float(last_end * self.info.time_base)
            expected = self.info.duration
            if end < expected - max(2 / float(self.info.rate), expected / 100):
                raise VideoError(
                    f"{self._name} is truncated: it declares {expected:.2f} s but its frames "
                    f"end at {end:.2f} s"
                )


class VideoWriter:
    """Encode frames into a new video file and copy audio packets into it unchanged.

    Args:
        path: The file to write (its container follows ``muxer``, not its name).
        muxer: FFmpeg muxer name (see :func:`muxer_for`).
        source: The reader whose video and audio streams are reproduced.
        codec: Encoder name (``"libx264"``, ``"h264"``, ...); ``None``: the source's codec
            when a constant-quality encoder for it is available, else H.264 (VP9 in WebM).
        crf: Constant rate factor for encoders that have one (lower is better);
            ``None``: :data:`DEFAULT_CRF`.
        pix_fmt: Pixel format of the frames that will be written.
        preset: Speed preset of libx264 / libx265 (one of :data:`PRESETS`); ``None``:
            :data:`DEFAULT_PRESET`.

    Raises:
        VideoError: If the codec is unknown, not an encoder, does not take ``crf`` or
            ``preset``, or the container refuses a stream.
    """

    def __init__(
        self,
        path: Path,
        muxer: str,
        source: VideoReader,
        codec: str | None,
        crf: int | None,
        pix_fmt: str,
        preset: str | None = None,
    ) -> None:
        av = import_av()
        info = source.info
        self.codec = resolve_codec(codec, info.codec, muxer)
        try:
            # The muxer waits for every stream's packets however far audio runs ahead of
            # video (the pipeline bounds how far: a few batches and the encoder's delay).
            self.container = av.open(
                str(path), "w", format=muxer, container_options={"max_interleave_delta": "0"}
            )
        except av.FFmpegError as err:
            raise VideoError(f"cannot write {str(path)!r}: {_reason(err)}") from err
        try:
            self.stream = self._add_video(source, crf, pix_fmt, muxer, preset)
            self.audio = {s.index: self.container.add_stream_from_template(s) for s in source.audio}
            self.container.metadata.update(
                {k: v for k, v in source.container.metadata.items() if k != "encoder"}
            )
        except BaseException:
            self.container.close()
            raise
        self._opened = False

    def _add_video(
        self, source: VideoReader, crf: int | None, pix_fmt: str, muxer: str, preset: str | None
    ) -> Any:
        info = source.info
        stream = self.container.add_stream(self.codec, rate=info.rate)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, pix_fmt
        stream.time_base = info.time_base
        context = stream.codec_context
        context.time_base = info.time_base
        for name, code in info.tags.items():
            setattr(context, name, code)
        context.color_range = 2 if info.full_range else 1
        sar = source.stream.sample_aspect_ratio
        if sar:
            context.sample_aspect_ratio = sar
        options: dict[str, str] = {}
        if self.codec in DEFAULT_CRF:
            options["crf"] = str(DEFAULT_CRF[self.codec] if crf is None else crf)
            if self.codec.startswith("libvpx"):
                options["b"] = "0"  # constant quality, no bitrate cap
        elif crf is not None:
            raise VideoError(
                f"crf does not apply to the {self.codec} encoder; it does to "
                f"{', '.join(DEFAULT_CRF)}"
            )
        elif source.stream.bit_rate:
            context.bit_rate = int(source.stream.bit_rate)
        if self.codec in DEFAULT_PRESET:
            options["preset"] = DEFAULT_PRESET[self.codec] if preset is None else preset
            if self.codec == "libx264" and preset is None:
                options.update(X264_DEFAULTS)
        elif preset is not None:
            raise VideoError(
                f"preset does not apply to the {self.codec} encoder; it does to "
                f"{', '.join(DEFAULT_PRESET)}"
            )
        if muxer == "avi" and self.codec in ("libx264", "libx265"):
            options["bf"] = "0"  # AVI keeps no presentation timestamps: no B-frames
        stream.options = options
        metadata = {k: v for k, v in source.stream.metadata.items() if k != "handler_name"}
        stream.metadata.update(metadata)
        return stream

    def set_rotation(self, degrees: float) -> None:
        """Tag the video with a display rotation (as the source's display matrix)."""
        if degrees:
            self.stream.set_display_rotation(degrees)

    def write_video(self, frame: Any) -> None:
        """Encode one frame (its ``pts`` in the source stream's time base)."""
        av = import_av()
        try:
            self.container.mux(self.stream.encode(frame))
        except av.FFmpegError as err:
            raise VideoError(f"cannot encode with {self.codec}: {_reason(err)}") from err

    def write_audio(self, packet: Any) -> None:
        """Copy one audio packet of the source unchanged."""
        av = import_av()
        packet.stream = self.audio[packet.stream.index]
        try:
            self.container.mux(packet)
        except av.FFmpegError as err:
            raise VideoError(
                f"cannot copy the {packet.stream.codec_context.name} audio into this "
                f"container ({_reason(err)}); choose another output extension"
            ) from err

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        av = import_av()
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except av.FFmpegError as err:
            raise VideoError(f"cannot finish the video: {_reason(err)}") from err

    def abort(self) -> None:
        """Close the file without flushing (it is about to be deleted)."""
        try:
            self.container.close()
        except Exception:  # a half-open muxer may refuse to write its trailer
            logger.debug("closing an aborted video output failed", exc_info=True)


def resolve_codec(codec: str | None, source_codec: str, muxer: str) -> str:
    """The encoder to use: ``codec`` checked, or the default for the source and container.

    Raises:
        VideoError: If ``codec`` is not an encoder this FFmpeg has, or no default fits.
    """
    av = import_av()
    if codec is not None:
        try:
            found = av.codec.Codec(codec, "w")
        except Exception as err:
            raise VideoError(
                f"codec {codec!r} is not a video encoder of this FFmpeg; try libx264, "
                "libx265, libvpx-vp9, mpeg4 or ffv1"
            ) from err
        if found.type != "video":
            raise VideoError(f"codec {codec!r} is a {found.type} encoder, not a video one")
        return str(found.name)
    candidates = list(_QUALITY_ENCODERS.get(source_codec, ()))
    if muxer == "webm":
        candidates = [c for c in candidates if c.startswith(("libvpx", "libsvt", "libaom"))]
        candidates.append("libvpx-vp9")
    else:
        candidates.append("libx264")
    for name in candidates:
        if name in av.codecs_available:
            return name
    raise VideoError(f"no default encoder ({', '.join(candidates)}) in this FFmpeg; pass codec=")


def choose_pix_fmt(codec: str, width: int, height: int) -> str:
    """``yuv420p``, or ``yuv444p`` when a side is odd (4:2:0 needs even sides) or the
    encoder takes no 4:2:0.

    Raises:
        VideoError: If the encoder takes neither.
    """
    av = import_av()
    formats = av.codec.Codec(codec, "w").video_formats
    names = [f.name for f in formats] if formats else ["yuv420p", "yuv444p"]
    wanted = ["yuv444p"] if width % 2 or height % 2 else ["yuv420p", "yuv444p"]
    for name in wanted:
        if name in names:
            return name
    raise VideoError(
        f"the {codec} encoder takes none of {', '.join(wanted)} for a {width}x{height} video; "
        "choose another codec"
    )


def luma_plane(frame: Any, pix_fmt: str, info: SourceInfo) -> Any:
    """The luma plane of a decoded frame converted to ``pix_fmt``, as a ``(H, W)`` uint8
    numpy copy: a YUV source's own luma levels (range kept), else ``Y'`` computed from RGB,
    gray or palette pixels with the clip's matrix (:attr:`SourceInfo.matrix`)."""
    color_range = "JPEG" if info.full_range else "MPEG"
    if frame.format.name.startswith("yuv"):  # luma stays as it is: no matrix involved
        converted = frame.reformat(
            format=pix_fmt, src_color_range=color_range, dst_color_range=color_range
        )
    else:
        converted = frame.reformat(
            format=pix_fmt, dst_colorspace=SWS_MATRIX[info.matrix[0]],
            src_color_range="JPEG", dst_color_range=color_range,
        )  # fmt: skip
    return plane_array(converted.planes[0]).copy()


def to_rgb(frame: Any, info: SourceInfo) -> Any:
    """A decoded frame of a clip described by ``info`` (or of its colourised output) as an
    ``(H, W, 3)`` uint8 RGB array, read with the clip's matrix and range."""
    if not frame.format.name.startswith("yuv"):
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(
        format="rgb24", src_colorspace=SWS_MATRIX[info.matrix[0]],
        src_color_range="JPEG" if info.full_range else "MPEG",
    ).to_ndarray()  # fmt: skip


def plane_array(plane: Any) -> Any:
    """A writable ``(height, width)`` uint8 numpy view of a frame plane (no padding)."""
    import numpy as np

    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


class _Reorder:
    """Give frames (which arrive in presentation order) the source's timestamps sorted."""

    def __init__(self, step: int) -> None:
        self.step = step
        self._frames: deque[Any] = deque()
        self._stamps: list[int] = []
        self._last_in: int | None = None
        self._last_out: int | None = None

    def push(self, frame: Any) -> Iterator[Any]:
        pts = frame.pts
        if pts is None:
            pts = 0 if self._last_in is None else self._last_in + self.step
        self._last_in = pts
        heapq.heappush(self._stamps, pts)
        self._frames.append(frame)
        while len(self._frames) > _REORDER_WINDOW:
            yield self._pop()

    def flush(self) -> Iterator[Any]:
        while self._frames:
            yield self._pop()

    def _pop(self) -> Any:
        frame = self._frames.popleft()
        pts = heapq.heappop(self._stamps)
        if self._last_out is not None and pts <= self._last_out:
            pts = self._last_out + 1
        frame.pts = self._last_out = pts
        return frame


def _check_pix_fmt(fmt: Any, name: str) -> None:
    if any(c.is_alpha for c in fmt.components):
        raise VideoError(
            f"{name}: pixel format {fmt.name!r} has an alpha channel, which video output "
            "cannot keep; accepted: formats without alpha (YUV, RGB, gray, palette)"
        )
    if fmt.is_bayer or fmt.name.startswith(_HW_FORMATS) or not fmt.components:
        raise VideoError(
            f"{name}: pixel format {fmt.name!r} is not supported; accepted: YUV, RGB, gray "
            "and palette formats"
        )


def _code(matrix: str) -> int:
    return 1 if matrix == "bt709" else 9 if matrix == "bt2020" else 5


def _reason(err: BaseException) -> str:
    return str(getattr(err, "strerror", None) or err)
