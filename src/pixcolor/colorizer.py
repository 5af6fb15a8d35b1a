"""Colorizer: a black-and-white (or colour) image in, a colourised image of the same kind out.

The network runs at ``render_size x render_size``; the predicted a/b is upsampled to the
input's own size and joined with the input's full-resolution L, so the output keeps every
detail and the exact luminance of the input (richzhang/colorization's idea). The aspect
ratio is not kept at the network's size: a 4:3 photo is squeezed to a square, which is how
the generators are trained (random resized crops) and costs nothing visible since only the
smooth chroma comes from that size.

A predicted colour outside the sRGB gamut is not clipped channel by channel (that would
change its luminance): :func:`pixcolor.lab.recolor` moves it towards the gray of the same
luminance until it fits, so the output's L is the input's L up to 8-bit rounding.

Everything at full resolution (RGB -> L, upsampling a/b, Lab -> RGB, conversion to the
output dtype) runs in horizontal strips on the model's device, so a 24-megapixel photo
never exists as more than its input planes (8-bit photos stay 8-bit: the strips use lookup
tables for them) plus the output buffer.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixcolor import images, lab
from pixcolor.errors import ImageError
from pixcolor.hints import HintLike, HintRequest, bind_hints, hint_planes_batch, hint_requests
from pixcolor.images import ImageInput, LoadedImage
from pixcolor.models import DeOldifyGenerator, UNetGenerator
from pixcolor.models.registry import Generator, load_generator
from pixcolor.presets import BUNDLED
from pixcolor.spread import spread_chunk

__all__ = ["PRECISIONS", "Colorizer"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""What :class:`Colorizer` accepts as ``precision``."""
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

logger = logging.getLogger(__name__)

ImageOutput = Image.Image | np.ndarray | torch.Tensor

# Pixels per full-resolution strip: its float temporaries stay around 100 MB.
_STRIP_PIXELS = 1 << 20
# A chunk of inputs (loaded, colourised, then released) stops growing past this many pixels.
_CHUNK_PIXELS = 1 << 24


class Colorizer:
    """Colourise images with a :class:`~pixcolor.UNetGenerator` or a
    :class:`~pixcolor.DeOldifyGenerator`.

    The generator's ``network_input`` turns the render-size RGB image into what its network
    takes (normalised L; DeOldify: normalised gray RGB), its ``predicted_ab`` turns the
    network's output into a/b (in Lab units), which is joined with the input's own
    full-resolution L.

    Args:
        generator: The trained generator. It is moved to ``device`` (in the channels-last
            memory format, except on MPS) and put in eval mode.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a :class:`torch.device`, or
            ``None`` for the first available of CUDA, MPS and CPU.
        precision: The network's arithmetic: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (mixed
            precision, :func:`torch.autocast`), or ``"auto"``: bf16 on a CPU with native
            bfloat16 instructions (AVX512-BF16 or AMX), where it halves the forward time for
            a change of the predicted a/b under 0.4 (mean 0.06, on a scale where 8-bit
            output rounding alone is about 0.5), else fp32. Only the network is affected;
            colour conversion stays in float32.

    Attributes:
        precision: The resolved precision, ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Raises:
        TypeError: If ``generator`` is not a :class:`~pixcolor.UNetGenerator` or a
            :class:`~pixcolor.DeOldifyGenerator`.
        ValueError: If ``precision`` is not one of :data:`PRECISIONS`, or the device has no
            mixed precision.

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
    ) -> None:
        if not isinstance(generator, (UNetGenerator, DeOldifyGenerator)):
            raise TypeError(
                "generator must be a UNetGenerator or a DeOldifyGenerator, "
                f"got {type(generator).__name__}"
            )
        self.device = torch.device(device) if device is not None else _default_device()
        self.precision = _resolve_precision(precision, self.device)
        # channels_last pays on CPU: paired time ratio to contiguous at 256 x 256 was 0.69
        # (resnet18) and 0.79 (pix2pix) on 2 cores, 0.85 / 0.96 on 1. MPS support is patchy.
        self._channels_last = self.device.type != "mps"
        memory_format = torch.channels_last if self._channels_last else torch.preserve_format
        self.generator = generator.to(self.device, memory_format=memory_format).eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
        **hub_kwargs: Any,
    ) -> Colorizer:
        """Load a generator (of the class its ``config.json`` names) and wrap it.

        Args:
            name_or_path: A local directory, a preset name or a Hub repo id; ``None`` is
                the model bundled with pixcolor (preset ``"bundled"``), which needs no network.
            device: See :class:`Colorizer`.
            precision: See :class:`Colorizer`.
            **hub_kwargs: ``revision``, ``subfolder``, ``cache_dir``, ``local_files_only``,
                ``token``: passed to the generator's ``from_pretrained``.

        Returns:
            The colorizer.

        Raises:
            ModelNotFoundError: If the model cannot be found.
            CheckpointError: If its files do not hold a valid generator.
        """
        name = BUNDLED if name_or_path is None else name_or_path
        return cls(load_generator(name, **hub_kwargs), device, precision)

    def __repr__(self) -> str:
        config = self.generator.config
        return (
            f"Colorizer(encoder={config.encoder!r}, device={str(self.device)!r}, "
            f"precision={self.precision!r})"
        )

    def autocast(self) -> Any:
        """The context the network runs in: :func:`torch.autocast` to :attr:`precision`
        (disabled for ``"fp32"``). Use it to time or call ``generator`` as colorize does."""
        dtype = _DTYPES[self.precision]
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
        single = not isinstance(x, (list, tuple))
        items: Sequence[Any] = [x] if single else x  # type: ignore[list-item]
        requests = hint_requests(len(items), single, hints, hint_image)
        outputs: list[ImageOutput] = []
        for chunk in _load_chunks(items, int(batch_size), label=not single):
            start = len(outputs)
            todo = requests[start : start + len(chunk)] if requests else None
            outputs.extend(self._colorize_chunk(chunk, int(render_size), float(saturation), todo))
        return outputs[0] if single else outputs

    @torch.no_grad()
    def _colorize_chunk(
        self,
        chunk: list[LoadedImage],
        render_size: int,
        saturation: float,
        requests: list[HintRequest | None] | None = None,
    ) -> list[ImageOutput]:
        config = self.generator.config
        hint_sets = bind_hints(requests, chunk)  # checks every hint before any work
        small = torch.cat([self._shrink(item.pixels, render_size) for item in chunk])
        inputs = self.generator.network_input(small)
        if self._channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        hint_model = getattr(config, "hint_channels", 0) > 0
        planes = None
        if hint_model and hint_sets is not None:
            planes = hint_planes_batch(hint_sets, render_size, config.ab_scale)
            planes = planes.to(self.device)
        with torch.inference_mode(), self.autocast():
            if planes is not None:
                pred = self.generator(inputs, hints=planes)
            else:
                pred = self.generator(inputs)
        # Contiguous (the network's output is channels-last): upsampling is 4x faster.
        ab = self.generator.predicted_ab(pred.float().contiguous()) * saturation
        # One a/b per image: a model without hint channels follows hints model-free here.
        per_image = list(ab.split(1))
        if hint_sets is not None and not hint_model:
            per_image = spread_chunk(per_image, chunk, hint_sets)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, item in enumerate(chunk):
            groups.setdefault((item.size, per_image[index].shape), []).append(index)
        outputs: list[Any] = [None] * len(chunk)
        for indices in groups.values():
            group_ab = torch.cat([per_image[i] for i in indices])
            results = self._full_resolution([chunk[i] for i in indices], group_ab)
            for index, result in zip(indices, results, strict=True):
                outputs[index] = result
        return outputs

    def _shrink(self, pixels: torch.Tensor, size: int) -> torch.Tensor:
        """``(3, H, W)`` -> float ``(1, 3, size, size)`` in ``[0, 1]`` on the device,
        antialiased bilinear."""
        planes = pixels[:1] if pixels.stride(0) == 0 else pixels  # a gray input: one plane
        planes = planes.to(self.device)[None]
        if planes.device.type != "cpu":  # 8-bit antialiased resizing is CPU-only
            planes = planes.float()
        if planes.shape[-2:] != (size, size):
            # On 8-bit levels: 3x faster than on floats, within one level of it.
            planes = F.interpolate(
                planes, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        planes = planes.float()
        if pixels.dtype == torch.uint8:
            planes = planes.div_(255.0)
        return planes.expand(-1, 3, -1, -1)

    def _full_resolution(self, group: list[LoadedImage], ab: torch.Tensor) -> list[ImageOutput]:
        """Join same-size images' own L with their upsampled ``ab`` ``(B, 2, r, r)``, strip
        by strip, straight into the output buffers."""
        height, width = group[0].size
        ab = F.interpolate(ab, size=(ab.shape[-2], width), mode="bilinear", align_corners=False)
        writers = [images.OutputWriter(item) for item in group]
        step = max(1, _STRIP_PIXELS // (width * len(group)))
        for top in range(0, height, step):
            bottom = min(height, top + step)
            rows = [item.pixels[:, top:bottom] for item in group]
            if any(r.dtype != torch.uint8 for r in rows):  # else: 8-bit in, 8-bit out
                rows = [images.as_float(r) for r in rows]
            if all(r.stride(0) == 0 for r in rows):  # gray inputs: keep one plane (3x less work)
                rgb = torch.stack([r[:1].to(self.device) for r in rows])
            else:
                rgb = torch.stack([r.to(self.device) for r in rows])
            rgb = lab.recolor(rgb, _upsample_rows(ab, top, bottom, height))
            for writer, rows in zip(writers, rgb, strict=True):
                writer.write(rows, top)
        return [writer.result() for writer in writers]


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


def _upsample_rows(ab: torch.Tensor, top: int, bottom: int, height: int) -> torch.Tensor:
    """Rows ``top:bottom`` of ``ab`` ``(B, C, r, W)`` resized to ``height`` rows, exactly as
    ``F.interpolate(ab, size=(height, W), mode="bilinear", align_corners=False)`` would."""
    rows = ab.shape[-2]
    src = torch.arange(top, bottom, device=ab.device, dtype=torch.float32)
    src = ((src + 0.5) * (rows / height) - 0.5).clamp_(min=0.0)
    lower = src.long().clamp_(max=rows - 1)
    upper = (lower + 1).clamp_(max=rows - 1)
    weight = (src - lower).view(1, 1, -1, 1)
    return torch.lerp(ab.index_select(2, lower), ab.index_select(2, upper), weight)


def _resolve_precision(precision: object, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and _cpu_has_bfloat16() else "fp32"
    if precision != "fp32" and not torch.amp.is_autocast_available(device.type):
        raise ValueError(
            f"precision {precision!r} needs mixed precision, which torch does not offer on "
            f"{device.type!r}; use 'fp32'"
        )
    return str(precision)


def _cpu_has_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (elsewhere oneDNN emulates it, slowly)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: stay in float32
        return False


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
