"""Colorizer: a black-and-white (or colour) image in, a colourised image of the same kind out.

The network runs at ``render_size x render_size`` on the input's CIE L; its predicted a/b
becomes a colour offset from gray that is upsampled to the input's own size and added to
the input's full-resolution **Rec. 601 luma** (:mod:`pixcolor._fullres`), so the output
keeps every detail and the exact luma of the input: converted back to gray (PIL's
``convert("L")``) it gives the input within one level (richzhang/colorization's idea, as
a YCbCr merge). The aspect ratio is not kept at the network's size: a 4:3 photo is
squeezed to a square, which is how the generators are trained (random resized crops) and
costs nothing visible since only the smooth chroma comes from that size.

A colour that would leave the sRGB gamut is not clipped channel by channel (that would
change its luma): its offset is scaled towards the gray of the same luma until it fits.

The network itself runs as an :class:`~pixcolor.InferenceModel`: batch norms
folded, weights cast once to the precision, in the memory format (both chosen by a short
measurement when ``"auto"``), or exported to ONNX Runtime (``backend="onnxruntime"``,
optionally int8). The full-resolution work runs in strips (8-bit photos stay 8-bit), so a
24-megapixel photo never exists as more than its input planes plus the output buffer.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixcolor import _fullres, images, lab
from pixcolor._devices import parse_device
from pixcolor._inference import BACKENDS, MEMORY_FORMATS, InferenceModel
from pixcolor._inference import DTYPES as _DTYPES
from pixcolor._inference import PRECISIONS as PRECISIONS
from pixcolor._lab8 import lightness_uint8
from pixcolor._temporal import TemporalFilter
from pixcolor.errors import ImageError
from pixcolor.hints import HintLike, HintRequest, bind_hints, hint_planes_batch, hint_requests
from pixcolor.images import ImageInput, LoadedImage
from pixcolor.models import DeOldifyGenerator, UNetGenerator
from pixcolor.models.registry import Generator, load_generator
from pixcolor.presets import BUNDLED
from pixcolor.spread import spread_chunk

__all__ = ["BACKENDS", "MEMORY_FORMATS", "PRECISIONS", "Colorizer"]

logger = logging.getLogger(__name__)

ImageOutput = Image.Image | np.ndarray | torch.Tensor

# A chunk of inputs (loaded, colourised, then released) stops growing past this many pixels.
_CHUNK_PIXELS = 1 << 24
# Calibration photos used for int8 at most.
_CALIBRATION_PHOTOS = 64


class Colorizer:
    """Colourise images with a :class:`~pixcolor.UNetGenerator` or a
    :class:`~pixcolor.DeOldifyGenerator`.

    The generator's ``network_input`` turns the render-size RGB image into what its network
    takes (normalised L; DeOldify: normalised gray RGB), its ``predicted_ab`` turns the
    network's output into a/b (in Lab units), whose colour is joined with the input's own
    full-resolution luma.

    Args:
        generator: The trained generator. It is moved to ``device`` and put in eval mode;
            colorize runs a copy converted here (:attr:`network`), so after changing the
            generator's weights make a new colorizer.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a :class:`torch.device`, or
            ``None`` for the first available of CUDA, MPS and CPU.
        precision: The network's arithmetic, its weights cast once: ``"fp32"``, ``"bf16"``,
            ``"fp16"``; ``"int8"`` (static quantisation, with ``backend="onnxruntime"`` and
            ``calibration``); or ``"auto"``: the fastest of the precisions this device runs
            natively whose output stays within 0.02 of fp32's on a probe (on CPU, bf16 only
            where the CPU has AVX512-BF16 or AMX; measured once per process, see
            :class:`~pixcolor.InferenceModel`). Colour conversion stays in float32.
        backend: ``"torch"`` (default, see the docs' speed page) or ``"onnxruntime"``
            (CPU only, ``pip install pixcolor[onnx]``; the exported model is cached under
            ``~/.cache/pixcolor``). A hint model (the bundled model is one) runs its calls
            without hints on ONNX Runtime and its calls with hints on torch in fp32.
        memory_format: ``"auto"`` (measured with the precision), ``"channels_last"`` or
            ``"contiguous"``.
        calibration: For ``precision="int8"``: photos like the ones you will colourise (a
            folder, or a list of paths or images; the first 64 are used) to calibrate the
            activation ranges.

    Attributes:
        precision: The resolved precision, ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"``.
        network: The :class:`~pixcolor.InferenceModel` colorize calls.

    Raises:
        TypeError: If ``generator`` is not a :class:`~pixcolor.UNetGenerator` or a
            :class:`~pixcolor.DeOldifyGenerator`.
        ValueError: If ``precision``, ``backend`` or ``memory_format`` is not one of
            :data:`PRECISIONS`, :data:`BACKENDS`, :data:`MEMORY_FORMATS`, or the device
            cannot run it.

    Example:
        >>> import numpy as np
        >>> from pixcolor import UNetGenerator
        >>> gen = UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        >>> colorizer = Colorizer(gen, device="cpu")
        >>> colorizer.colorize(np.zeros((37, 53), np.uint8), render_size=64).shape
        (37, 53, 3)
    """

    def __init__(
        self,
        generator: Generator,
        device: str | torch.device | None = None,
        precision: str = "auto",
        *,
        backend: str = "torch",
        memory_format: str = "auto",
        calibration: str | os.PathLike | Sequence[ImageInput] | None = None,
    ) -> None:
        if not isinstance(generator, (UNetGenerator, DeOldifyGenerator)):
            raise TypeError(
                "generator must be a UNetGenerator or a DeOldifyGenerator, "
                f"got {type(generator).__name__}"
            )
        self.device = parse_device(device) if device is not None else _default_device()
        self.generator = generator.to(self.device).eval()
        config = generator.config
        size = int(config.render_size)  # type: ignore[arg-type]
        inputs = None
        if precision == "int8" and calibration is not None:
            inputs = self._calibration_inputs(calibration, size)
        self.network = InferenceModel(
            self.generator,
            self.device,
            (config.in_channels, size, size),
            precision=precision,
            memory_format=memory_format,
            backend=backend,
            calibration=inputs,
        )
        self.precision = self.network.precision

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
        backend: str = "torch",
        memory_format: str = "auto",
        calibration: str | os.PathLike | Sequence[ImageInput] | None = None,
        **hub_kwargs: Any,
    ) -> Colorizer:
        """Load a generator (of the class its ``config.json`` names) and wrap it.

        Args:
            name_or_path: A local directory, a preset name or a Hub repo id; ``None`` is
                the model bundled with pixcolor (preset ``"bundled"``), which needs no network.
            device: See :class:`Colorizer`.
            precision: See :class:`Colorizer`.
            backend: See :class:`Colorizer`.
            memory_format: See :class:`Colorizer`.
            calibration: See :class:`Colorizer`.
            **hub_kwargs: ``revision``, ``subfolder``, ``cache_dir``, ``local_files_only``,
                ``token``: passed to the generator's ``from_pretrained``.

        Returns:
            The colorizer.

        Raises:
            ModelNotFoundError: If the model cannot be found.
            CheckpointError: If its files do not hold a valid generator.
            ValueError: If ``device`` is not a device name or not available here.
        """
        if device is not None:
            device = parse_device(device)  # before the model is loaded or downloaded
        name = BUNDLED if name_or_path is None else name_or_path
        generator = load_generator(name, **hub_kwargs)
        return cls(
            generator,
            device,
            precision,
            backend=backend,
            memory_format=memory_format,
            calibration=calibration,
        )

    def __repr__(self) -> str:
        config = self.generator.config
        return (
            f"Colorizer(encoder={config.encoder!r}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, backend={self.network.backend!r})"
        )

    def autocast(self) -> Any:
        """A :func:`torch.autocast` context to :attr:`precision` (disabled for fp32 and
        int8), to call :attr:`generator` itself in about the colorizer's precision.
        colorize runs :attr:`network`, whose weights are cast once instead."""
        dtype = _DTYPES.get(self.precision, torch.float32)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    @overload
    def colorize(
        self, x: Sequence[ImageInput], render_size: int | None = ..., saturation: float = ...,
        batch_size: int = ..., *, hints: Sequence[Sequence[HintLike] | None] | None = ...,
        hint_image: Sequence[Any] | None = ...,
    ) -> list[ImageOutput]: ...  # fmt: skip

    @overload
    def colorize(
        self,
        x: ImageInput,
        render_size: int | None = ...,
        saturation: float = ...,
        batch_size: int = ...,
        *,
        hints: Sequence[HintLike] | None = ...,
        hint_image: Any = ...,
    ) -> ImageOutput: ...

    def colorize(
        self,
        x: ImageInput | Sequence[ImageInput],
        render_size: int | None = None,
        saturation: float = 1.0,
        batch_size: int = 8,
        *,
        hints: Any = None,
        hint_image: Any = None,
    ) -> ImageOutput | list[ImageOutput]:
        """Colourise one image or a list of images, at their full resolution.

        Args:
            x: A path, PIL image, numpy array or tensor (see :func:`pixcolor.images.load_image`),
                or a list or tuple of them.
            render_size: Side of the square the network sees; a positive multiple of the
                generator's stride. ``None``: the model's own (``generator.config.render_size``,
                the scale it was trained for; 256 unless its config says otherwise).
                Outputs keep their input's size whatever it is.
            saturation: Factor on the predicted a/b: 0 gives gray, above 1 more vivid.
            batch_size: Images per network forward.
            hints: User colour hints (see :mod:`pixcolor.hints`): for one image a sequence
                of :class:`~pixcolor.Hint`, ``(x, y, color)`` tuples or dicts in its pixel
                coordinates; for a list of images a list of such sequences (``None`` for
                none). A model with hint channels takes them as input planes; any other
                model's colours are corrected by the hints' residuals, spread along the
                photo's edges (:func:`pixcolor.spread.spread_hints`). The hints' colours
                are kept exactly (``saturation`` does not scale them).
            hint_image: An RGBA image of the input's size (path, PIL, array, tensor) whose
                opaque pixels are painted hints; for a list, a list (``None`` for none).

        Returns:
            For one input, one output of the same kind: a PIL image for PIL and path inputs
            (``RGB``, or ``RGBA`` with alpha), a numpy array ``(H, W, 3|4)`` or a tensor
            ``(3|4, H, W)`` of the input's dtype (and device). For a list, a list.

        Raises:
            ValueError: If ``render_size``, ``saturation`` or ``batch_size`` is invalid, or a
                hint is malformed or outside its image, or a hint image is not RGBA of its
                image's size (before that image is processed).
            ImageError: If an input is not a valid image (for a list, the message starts
                with its index, ``inputs[3]: ...``); inputs before it have been processed
                and are lost.
        """
        render_size, saturation, batch_size = self._check_options(
            render_size, saturation, batch_size
        )
        single = not isinstance(x, (list, tuple))
        items: Sequence[Any] = [x] if single else x  # type: ignore[list-item]
        requests = hint_requests(len(items), single, hints, hint_image)
        outputs: list[ImageOutput] = []
        for chunk in _load_chunks(items, batch_size, label=not single):
            start = len(outputs)
            todo = requests[start : start + len(chunk)] if requests else None
            outputs.extend(self._colorize_chunk(chunk, render_size, saturation, todo))
        return outputs[0] if single else outputs

    def colorize_video(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        render_size: int | None = None,
        saturation: float = 1.0,
        hints: Any = None,
        batch_size: int = 8,
        temporal: str | TemporalFilter = "auto",
        **options: Any,
    ) -> Any:
        """Colourise a video file into ``dst``: streamed, flicker-free, audio kept.

        A thin front to :func:`pixcolor.video.colorize_video` (which documents every
        argument, ``codec``, ``crf``, ``preset``, ``overwrite`` and ``progress`` among ``options``);
        needs the ``video`` extra (``pip install 'pixcolor[video]'``).

        Returns:
            A :class:`pixcolor.video.VideoReport`.
        """
        from pixcolor.video import colorize_video

        return colorize_video(
            self, src, dst, render_size=render_size, saturation=saturation, hints=hints,
            batch_size=batch_size, temporal=temporal, **options,
        )  # fmt: skip

    def _check_options(
        self, render_size: object, saturation: object, batch_size: object
    ) -> tuple[int, float, int]:
        """Validated ``(render_size, saturation, batch_size)``; ``None`` render size: the
        model's own."""
        stride = self.generator.stride
        if render_size is None:
            render_size = self.generator.config.render_size
        if not _is_int(render_size) or render_size <= 0 or render_size % stride:
            raise ValueError(
                f"render_size must be a positive multiple of {stride}, got {render_size!r}"
            )
        if not _is_real(saturation) or not math.isfinite(saturation) or saturation < 0:
            raise ValueError(f"saturation must be a finite number >= 0, got {saturation!r}")
        if not _is_int(batch_size) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return int(render_size), float(saturation), int(batch_size)  # type: ignore[arg-type]

    @torch.no_grad()
    def _colorize_chunk(
        self,
        chunk: list[LoadedImage],
        render_size: int,
        saturation: float,
        requests: list[HintRequest | None] | None = None,
    ) -> list[ImageOutput]:
        hint_sets = bind_hints(requests, chunk)  # checks every hint before any work
        # The network input and colour offsets are computed per kind of photo (gray or
        # colour, 8-bit or float; _by_kind): a gray photo keeps the exact gray lookup table
        # beside colour photos, whatever batch it lands in.
        smalls = [self._shrink(item.pixels, render_size) for item in chunk]
        planes = None
        if self.network.hint_channels and hint_sets is not None:
            config = self.generator.config
            planes = hint_planes_batch(hint_sets, render_size, config.ab_scale)
        ab = self._predict_ab(smalls, planes) * saturation
        offsets = _by_kind(_fullres.chroma_offsets, smalls, ab)
        if hint_sets is not None and not self.network.hint_channels:
            # A model without hint channels follows hints model-free: the hints' residuals
            # spread along the photo's edges on the working grid (its aspect ratio), and
            # the offsets from gray taken there, from the photo shrunk to that grid.
            spread = spread_chunk(list(ab.split(1)), chunk, hint_sets)
            for index, (item, hints) in enumerate(zip(chunk, hint_sets, strict=True)):
                if len(hints):
                    grid = (int(spread[index].shape[-2]), int(spread[index].shape[-1]))
                    shrunk = self._shrink(item.pixels, grid)
                    offsets[index] = _fullres.chroma_offsets(shrunk, spread[index])
        return [self._full_resolution(item, offsets[i][0]) for i, item in enumerate(chunk)]

    def _predict_ab(
        self, smalls: list[torch.Tensor], hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's a/b ``(B, 2, r, r)`` for the shrunk inputs (each ``(1, 3, r, r)``),
        run as one batch (and a hint model's hint planes ``(B, hint_channels, r, r)``),
        through the generator's ``predicted_ab`` (DeOldify: the CIE a/b of its RGB output)."""
        batch = torch.cat(_by_kind(self._network_input, smalls))
        pred = self.network(batch, hints)
        return self.generator.predicted_ab(pred.float())

    def _network_input(self, small: torch.Tensor) -> torch.Tensor:
        """The network's input for shrunk inputs (float in ``[0, 1]`` or uint8): normalised
        L ``(B, 1, r, r)``; DeOldify: its normalised gray RGB ``(B, 3, r, r)``."""
        if isinstance(self.generator, DeOldifyGenerator):
            rgb = small.float().div(255.0) if small.dtype == torch.uint8 else small
            return self.generator.network_input(rgb)
        config = self.generator.config
        if small.dtype == torch.uint8:  # lookup tables: no transcendental per pixel
            lightness = lightness_uint8(small[:, :1] if small.stride(1) == 0 else small)
        else:
            lightness = lab.rgb_to_l(small)
        return lab.normalize_l(lightness, config.l_center, config.l_scale)

    def _full_resolution(self, item: LoadedImage, offsets: torch.Tensor) -> ImageOutput:
        """``item`` at its own size: its luma plus the upsampled colour ``offsets``
        (``(5, h, w)``, :func:`pixcolor._fullres.chroma_offsets`), as its source's kind."""
        return _fullres.render(item, offsets)

    def _shrink(self, pixels: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
        """``(3, H, W)`` -> ``(1, 3, size, size)`` (or ``(1, 3, *size)``) on the device,
        antialiased bilinear: uint8 levels for 8-bit pixels on the CPU, else float in
        ``[0, 1]``."""
        shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        planes = pixels[:1] if pixels.stride(0) == 0 else pixels  # a gray input: one plane
        if planes.shape[-2:] != shape and _is_8bit_plane(planes):
            # Pillow's antialiased bilinear: the same result as torch's (within one level)
            # on a gray 8-bit plane, 2.5x faster (and in bands over the worker threads).
            planes = torch.from_numpy(_fullres.shrink_plane(planes[0].numpy(), shape))[None]
        planes = planes[None]
        if planes.dtype == torch.uint8 and planes.device.type != "cpu":
            planes = planes.float().div_(255.0)  # 8-bit antialiased resizing is CPU-only
        if planes.shape[-2:] != shape:
            # On 8-bit levels: 3x faster than on floats, within one level of it; 10x
            # faster again on interleaved (channels-last) colour, as images are decoded.
            planes = F.interpolate(
                planes, size=shape, mode="bilinear", align_corners=False, antialias=True
            )
        return planes.contiguous().to(self.device).expand(-1, 3, -1, -1)

    def _calibration_inputs(
        self, photos: str | os.PathLike | Sequence[ImageInput], size: int
    ) -> list[torch.Tensor]:
        """Network inputs ``(1, C, size, size)`` of up to 64 calibration photos."""
        if isinstance(photos, (str, os.PathLike)):
            from pixcolor.data import find_images

            photos = find_images(photos)
        inputs = []
        for chunk in _load_chunks(list(photos)[:_CALIBRATION_PHOTOS], 1, label=True):
            inputs.append(self._network_input(self._shrink(chunk[0].pixels, size)).cpu())
        return inputs


def _load_chunks(items: Sequence[Any], batch_size: int, label: bool) -> Iterator[list[LoadedImage]]:
    """Load inputs lazily in chunks of at most ``batch_size`` images (fewer once a chunk
    holds :data:`_CHUNK_PIXELS` pixels), so a long list never sits in memory at once."""
    chunk: list[LoadedImage] = []
    pixels = 0
    for index, item in enumerate(items):
        try:
            loaded = images.load_image(item)
        except ImageError as exc:
            if not label:
                raise
            raise type(exc)(f"inputs[{index}]: {exc}") from exc
        chunk.append(loaded)
        pixels += loaded.size[0] * loaded.size[1]
        del loaded
        if len(chunk) == batch_size or pixels >= _CHUNK_PIXELS:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk


def _by_kind(
    fn: Callable[..., torch.Tensor], smalls: list[torch.Tensor], *rows: torch.Tensor
) -> list[torch.Tensor]:
    """``fn(small, *(t[i : i + 1] for t in rows))`` for each shrunk photo ``smalls[i]``
    (``(1, 3, h, w)``, a gray one expanded from one plane), run once per kind of photo
    (dtype, gray or colour, size) on all photos of that kind at once: the same values
    (``fn`` works pixel by pixel), with a handful of tensor operations per chunk instead
    of per photo (on small tensors each costs more than its arithmetic). On the CPU they
    run on one thread: split over threads, each of these small operations waits for all
    of them, which on a busy machine (a thread not scheduled) costs milliseconds each."""
    kinds: dict[tuple[Any, ...], list[int]] = {}
    for index, small in enumerate(smalls):
        key = (small.dtype, small.device, small.stride(1) == 0, tuple(small.shape[-2:]))
        kinds.setdefault(key, []).append(index)
    results: list[torch.Tensor] = [smalls[0]] * len(smalls)
    for (*_, gray, _size), indices in kinds.items():
        if len(indices) == 1:
            group = smalls[indices[0]]
        elif gray:  # stays one plane expanded, as each photo was
            group = torch.cat([smalls[i][:, :1] for i in indices]).expand(-1, 3, -1, -1)
        else:
            group = torch.cat([smalls[i] for i in indices])
        picked = torch.tensor(indices, device=rows[0].device) if rows else None
        with _one_thread(group.device):
            out = fn(group, *(t.index_select(0, picked) for t in rows))
        for row, index in enumerate(indices):
            results[index] = out[row : row + 1]
    return results


@contextlib.contextmanager
def _one_thread(device: torch.device) -> Iterator[None]:
    """Torch's CPU operations in this thread on one thread (for the ``with`` block)."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _is_8bit_plane(planes: torch.Tensor) -> bool:
    """One contiguous 8-bit plane ``(1, H, W)`` on the CPU (Pillow can read it in place)."""
    return (
        planes.shape[0] == 1
        and planes.dtype == torch.uint8
        and planes.device.type == "cpu"
        and planes[0].is_contiguous()
    )


def _default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
