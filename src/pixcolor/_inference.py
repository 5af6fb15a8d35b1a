"""The network as it runs at inference: converted once, for the device it runs on.

Import :class:`InferenceModel` from :mod:`pixcolor` (``pixcolor.InferenceModel``). It wraps any generator (``nn.Module`` from input tensor to output
tensor) and prepares a copy of it once, at construction:

1. weight re-parametrisations (spectral / weight norm) baked into plain weights, and every
   ``Conv -> BatchNorm`` pair folded into one convolution (:mod:`pixcolor._fold`, checked
   against the original on a probe input, cropped to 64 pixels a side: the check runs the
   network three times);
2. the weights cast to the precision (``fp32``, ``bf16`` or ``fp16``: cast once, not
   autocast on every call) and laid out in the memory format (``channels_last`` or
   ``contiguous``);
3. or, with ``backend="onnxruntime"``, exported to ONNX and run by ONNX Runtime, in fp32 or
   statically quantised to int8 (:mod:`pixcolor._onnxruntime`).

Hint models (``network.config.hint_channels > 0``) take their hint planes as a second
argument, ``model(lightness, hints)``. With ``backend="onnxruntime"`` a hint model is split
by call:

* calls **without hints** (``hints=None``, or planes whose mask is all zero: the model
  then skips its edge-aware spreads and runs the plain network beside zero hint planes)
  run on ONNX Runtime, on the exported *no-hint graph* (one input, cached under its own
  name; fp32, or int8 calibrated like a plain model's);
* calls **with hints** run on the torch backend, in fp32, on a copy of the same network
  taken at construction and prepared (folded, laid out) at the first hinted call: the
  spreads take minutes to export and the int8 ranges of hint planes would depend on the
  hints. Automatic colorization, the common case, never pays for that preparation.

``precision="auto"`` and ``memory_format="auto"`` are chosen by a short measurement on a
probe input of the network's input shape: every candidate this device can run well is
called once to warm up, then timed (interleaved, best of up to three calls, fewer for a
network that takes seconds) and the fastest accurate one is kept. A candidate is accurate
when its output on the probe is finite and within :data:`_MAX_DEVIATION` of the fp32
output. The choice is cached per device, thread count, network structure and input shape,
in memory and on disk (:mod:`pixcolor._tuning_cache`): the next process on the same
machine does not measure again. Candidates per device:

* CPU: fp32; bf16 where the CPU has native bfloat16 (AVX512-BF16 or AMX), fp16 where it has
  AMX-FP16 (elsewhere oneDNN emulates them, several times slower than fp32); each in
  channels-last and contiguous layout.
* CUDA: fp32, fp16 and (where supported) bf16, each in both layouts.
* MPS: fp32 and fp16, contiguous (channels-last support is patchy there).
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from pixcolor import _tuning_cache
from pixcolor._fold import bake_reparametrizations, fold_batch_norms

__all__ = ["BACKENDS", "MEMORY_FORMATS", "PRECISIONS", "InferenceModel", "check_options"]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
"""What ``precision`` accepts (``"int8"`` with ``backend="onnxruntime"`` only)."""
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
BACKENDS = ("torch", "onnxruntime")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
# A reduced-precision candidate whose output on the probe differs from fp32 by more than
# this (the output's own units; 0.02 is about 2 a/b units for a tanh head with scale 110)
# is not chosen by "auto".
_MAX_DEVIATION = 0.02
# Timing rounds of the "auto" measurement: at most _ROUNDS, and no new round once
# _TUNE_BUDGET_S seconds of timing have passed (a big network at its render size: one round).
_ROUNDS, _TUNE_BUDGET_S = 3, 2.0
# Side of the input on which conv + batch-norm folding is found and checked.
_FOLD_SIDE = 64
_TUNED: dict[tuple[Any, ...], tuple[str, str]] = {}
CPU = torch.device("cpu")


class InferenceModel:
    """A network prepared once for fast inference on ``device``; call it like the network.

    Args:
        network: The generator: a module from ``(B, C, H, W)`` input to output tensors.
            It is not changed (a copy is converted).
        device: Where it runs.
        input_shape: ``(C, H, W)`` of a typical input (the render size): the probe for
            the ``"auto"`` measurement (folding is checked on a crop of it).
        precision: ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``; ``"int8"`` with
            ``backend="onnxruntime"``.
        memory_format: ``"auto"``, ``"channels_last"`` or ``"contiguous"``.
        backend: ``"torch"`` or ``"onnxruntime"`` (CPU only; ``pip install pixcolor[onnx]``).
            A hint model on ``"onnxruntime"`` runs its calls without hints there and its
            calls with hints on torch fp32, prepared lazily at the first one (so that
            automatic colorization never pays for it; a copy of the weights is kept from
            construction, so both halves run the same weights).
        calibration: For ``"int8"``: network inputs (tensors ``(B, C, H, W)``) from photos
            like the ones to be processed, to calibrate the activation ranges.
        hint_channels: Planes of the network's second input, ``hints`` (0: none). ``None``:
            ``network.config.hint_channels`` where the network has one, else 0.

    Attributes:
        precision: The resolved precision.
        memory_format: The resolved memory format (``"contiguous"`` for onnxruntime).
        backend: The backend that runs the network. For a hint model on
            ``"onnxruntime"``: the backend of calls without hints; calls with hints run on
            torch in fp32 (see the module docstring).
        hint_channels: The resolved number of hint planes.
        folded: How many conv + batch-norm pairs were folded (torch backend).

    Raises:
        ValueError: For an unknown precision, memory format or backend, or a combination
            the device cannot run.

    Example:
        >>> import torch, pixcolor
        >>> gen = pixcolor.UNetGenerator(encoder="pix2pix", base_channels=8, num_downs=5)
        >>> model = pixcolor.InferenceModel(gen, "cpu", (1, 64, 64), precision="fp32")
        >>> model(torch.zeros(2, 1, 64, 64)).shape, model.folded
        (torch.Size([2, 2, 64, 64]), 7)
    """

    def __init__(
        self,
        network: nn.Module,
        device: str | torch.device,
        input_shape: tuple[int, int, int],
        *,
        precision: str = "auto",
        memory_format: str = "auto",
        backend: str = "torch",
        calibration: Iterable[torch.Tensor] | None = None,
        hint_channels: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        check_options(self.device, precision, memory_format, backend)
        self.hint_channels = _hint_channels(network, hint_channels)
        self.backend = backend
        self.folded = 0
        self._forward: Callable[..., torch.Tensor]
        # A hint model on onnxruntime: its calls with hints run on a torch InferenceModel of
        # this copy, made at the first such call (_hinted_model).
        self._hinted_source: nn.Module | None = None
        self._hinted_options: tuple[tuple[int, int, int], str] = (input_shape, memory_format)
        self._hinted: InferenceModel | None = None
        self._hinted_lock = threading.Lock()
        if backend == "onnxruntime":
            from pixcolor._onnxruntime import OnnxRuntimeModel

            self.precision = "fp32" if precision == "auto" else precision
            self.memory_format = "contiguous"
            self._forward = OnnxRuntimeModel(
                network, self.device, _probe(input_shape, CPU), self.precision, calibration,
                prepare=_prepared, without_hints=bool(self.hint_channels),
            )  # fmt: skip
            if self.hint_channels:
                # A snapshot: hinted calls must use the weights the export was made from.
                self._hinted_source = copy.deepcopy(network).to(CPU).eval()
                logger.info(
                    "hint model on onnxruntime (%s): calls without hints run on ONNX Runtime, "
                    "calls with hints on torch fp32",
                    self.precision,
                )
            return
        probe = _probe(input_shape, self.device)
        base, self.folded = _prepared(network, probe, self.hint_channels)
        precisions = _precisions(self.device) if precision == "auto" else [precision]
        formats = _formats(self.device) if memory_format == "auto" else [memory_format]
        candidates = [(p, f) for p in precisions for f in formats]
        if len(candidates) == 1:
            self.precision, self.memory_format = candidates[0]
        else:
            key = (_device_key(self.device), torch.get_num_threads(), _structure(base), probe.shape)
            key += (tuple(candidates),)
            if key not in _TUNED:
                choice = _tuning_cache.load(key, candidates)
                if choice is None:
                    choice, times = _fastest(base, probe, candidates)
                    _tuning_cache.save(key, choice, times)
                _TUNED[key] = choice
            self.precision, self.memory_format = _TUNED[key]
        self.network = _convert(base, self.precision, self.memory_format)
        self._dtype = DTYPES[self.precision]
        self._format = _FORMATS[self.memory_format]
        self._forward = self._torch_forward

    def __repr__(self) -> str:
        return (
            f"InferenceModel(backend={self.backend!r}, precision={self.precision!r}, "
            f"memory_format={self.memory_format!r}, device={str(self.device)!r})"
        )

    def __call__(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network on ``x`` (float, on any device); float32 contiguous output on
        :attr:`device`.

        Args:
            x: The network's input ``(B, C, H, W)``.
            hints: For a hint model, its hint planes ``(B, hint_channels, H, W)`` (``None``:
                no hints).

        Raises:
            ValueError: If ``hints`` are given to a network without hint channels, or (a
                hint model on onnxruntime) do not have the shape
                ``(B, hint_channels, H, W)`` of ``x``.
        """
        if hints is None:
            return self._forward(x)
        if not self.hint_channels:
            raise ValueError(
                "this network has no hint channels (hint_channels=0) but hints were given"
            )
        if self._hinted_source is None:
            return self._forward(x, hints)
        want = (x.shape[0], self.hint_channels, *x.shape[-2:])
        if not isinstance(hints, torch.Tensor) or tuple(hints.shape) != want:
            got = tuple(hints.shape) if isinstance(hints, torch.Tensor) else type(hints).__name__
            raise ValueError(
                f"hints must have shape {want} (B, hint_channels, H, W like the input), got {got}"
            )
        if not bool(hints[:, -1].any()):  # an all-zero mask: no hint, as the model sees it
            return self._forward(x)
        return self._hinted_model()(x, hints)

    def _hinted_model(self) -> InferenceModel:
        """The torch fp32 model that runs a hint model's calls with hints on the
        onnxruntime backend, prepared at the first call (out of any inference mode the
        caller is in: folding checks tensor versions, which inference tensors lack)."""
        with self._hinted_lock, torch.inference_mode(False):
            if self._hinted is None:
                assert self._hinted_source is not None
                shape, memory_format = self._hinted_options
                self._hinted = InferenceModel(
                    self._hinted_source,
                    self.device,
                    shape,
                    precision="fp32",
                    memory_format=memory_format,
                    hint_channels=self.hint_channels,
                )
            return self._hinted

    @torch.inference_mode()
    def _torch_forward(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        x = x.to(self.device, self._dtype)
        if x.dim() == 4:
            x = x.contiguous(memory_format=self._format)
        if hints is None:
            out = self.network(x)
        else:
            hints = hints.to(self.device, self._dtype).contiguous(memory_format=self._format)
            out = self.network(x, hints)
        return out.to(torch.float32).contiguous()


def check_options(device: torch.device, precision: str, memory_format: str, backend: str) -> None:
    """Raise the ValueError :class:`InferenceModel` would for these options, without a
    network: also checked where the network is built elsewhere (a Ray cluster's workers)."""
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("memory_format", memory_format, MEMORY_FORMATS)
    _check_choice("backend", backend, BACKENDS)
    if backend == "onnxruntime":
        if precision in ("bf16", "fp16"):
            raise ValueError(
                f"precision {precision!r} is not offered by the onnxruntime backend; "
                "use 'auto', 'fp32' or 'int8'"
            )
        if memory_format == "channels_last":
            raise ValueError("the onnxruntime backend chooses its own memory format")
        return
    if precision == "int8":
        raise ValueError("precision 'int8' needs backend='onnxruntime'")
    if precision not in ("auto", "fp32") and not _device_runs(device, precision):
        raise ValueError(f"precision {precision!r} is not available on {device.type!r}; use 'fp32'")


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (elsewhere oneDNN emulates it, slowly)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: stay in float32
        return False


def cpu_has_float16() -> bool:
    """Whether this CPU has native float16 matrix arithmetic (AMX-FP16)."""
    try:
        return bool(torch.cpu._is_amx_fp16_supported())
    except AttributeError:
        return False


def _prepared(
    network: nn.Module, probe: torch.Tensor, hint_channels: int = 0
) -> tuple[nn.Module, int]:
    """A copy of ``network`` on ``probe``'s device, in eval mode, re-parametrisations baked
    and batch norms folded (checked with hint planes too for a hint model); and how many
    were folded."""
    base = copy.deepcopy(network).to(probe.device).eval()
    bake_reparametrizations(base)
    probe = _fold_probe(base, probe)
    example: Any = probe
    if hint_channels:
        example = (probe, _hint_probe(probe, hint_channels))
    return base, fold_batch_norms(base, example)


def _fold_probe(network: nn.Module, probe: torch.Tensor) -> torch.Tensor:
    """``probe`` cropped to at most :data:`_FOLD_SIDE` (rounded up to a multiple of the
    network's ``stride``) a side: which batch norms fold, and whether the folded network
    matches, do not depend on the input's size, and the check runs the network three times
    (seconds each for a big network at its render size). Unchanged for a network without
    an integer ``stride``."""
    stride = getattr(network, "stride", None)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0:
        return probe
    side = -(-_FOLD_SIDE // stride) * stride
    height, width = probe.shape[-2:]
    if height % stride or width % stride or (height <= side and width <= side):
        return probe
    return probe[..., : min(height, side), : min(width, side)].contiguous()


def _hint_channels(network: nn.Module, hint_channels: int | None) -> int:
    if hint_channels is None:
        hint_channels = getattr(getattr(network, "config", None), "hint_channels", 0) or 0
    if not isinstance(hint_channels, int) or hint_channels < 0:
        raise ValueError(f"hint_channels must be an int >= 0, got {hint_channels!r}")
    return hint_channels


def _hint_probe(probe: torch.Tensor, channels: int) -> torch.Tensor:
    """Hint planes for ``probe``: a few seeded hints (values, then a mask plane of ones
    where a hint is), zeros elsewhere."""
    batch, _, height, width = probe.shape
    generator = torch.Generator().manual_seed(1)
    planes = torch.zeros(batch, channels, height, width)
    for _ in range(4):
        y = int(torch.randint(height, (1,), generator=generator))
        x = int(torch.randint(width, (1,), generator=generator))
        planes[:, : channels - 1, y, x] = torch.rand(channels - 1, generator=generator) - 0.5
        planes[:, channels - 1, y, x] = 1.0
    return planes.to(probe.device)


def _precisions(device: torch.device) -> list[str]:
    """The precisions "auto" considers on ``device``, fp32 first."""
    if device.type == "cpu":
        return ["fp32"] + ["bf16"] * cpu_has_bfloat16() + ["fp16"] * cpu_has_float16()
    if device.type == "cuda":
        return ["fp32", "fp16"] + ["bf16"] * torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "mps":
        return ["fp32", "fp16"]
    return ["fp32"]


def _formats(device: torch.device) -> list[str]:
    return ["contiguous"] if device.type == "mps" else ["channels_last", "contiguous"]


def _device_runs(device: torch.device, precision: str) -> bool:
    """Whether ``device`` can run ``precision`` at all (not whether it is fast there)."""
    if device.type in ("cpu", "cuda"):
        return True
    return device.type == "mps" and precision == "fp16"


def _convert(base: nn.Module, precision: str, memory_format: str) -> nn.Module:
    """A copy of ``base`` in ``precision`` and ``memory_format``."""
    net = copy.deepcopy(base)
    return net.to(dtype=DTYPES[precision], memory_format=_FORMATS[memory_format]).eval()


@torch.inference_mode()
def _fastest(
    base: nn.Module, probe: torch.Tensor, candidates: list[tuple[str, str]]
) -> tuple[tuple[str, str], dict[tuple[str, str], float]]:
    """Time each candidate on ``probe`` and return the fastest whose output stays within
    :data:`_MAX_DEVIATION` of fp32's, with the best time of each (seconds).

    Every candidate is called once first (a first call builds kernels and caches: 1.3 to
    1.4 times as long as the next for a ResNet-18 U-Net on a CPU; timing it would favour
    whichever candidate ran later), then the candidates are timed in turn, round after round: up to
    :data:`_ROUNDS` rounds, as many as fit in :data:`_TUNE_BUDGET_S` seconds (at least
    one), keeping each one's best call. The fp32 reference call that checks the accuracy
    of reduced precisions is only made when there is one among the candidates.
    """
    reference = None
    if any(precision != "fp32" for precision, _ in candidates):
        reference = base(probe).float()
    runs: dict[tuple[str, str], Callable[[], torch.Tensor]] = {}
    for precision, fmt in candidates:
        net = _convert(base, precision, fmt)
        x = probe.to(DTYPES[precision]).contiguous(memory_format=_FORMATS[fmt])
        run = runs[(precision, fmt)] = lambda net=net, x=x: net(x)
        out = run().float()  # warm-up
        if reference is not None and precision != "fp32":  # fp32 is the reference numerics
            deviation = float((out - reference).abs().max())
            if not (bool(torch.isfinite(out).all()) and deviation <= _MAX_DEVIATION):
                logger.info("%s %s: off by %.3g on the probe, not considered", precision,
                            fmt, deviation)  # fmt: skip
                del runs[(precision, fmt)]
    best = {name: math.inf for name in runs}
    start = time.perf_counter()
    for _ in range(_ROUNDS):
        for name, run in runs.items():
            best[name] = min(best[name], _timed(run, probe.device))
        if time.perf_counter() - start >= _TUNE_BUDGET_S:
            break
    choice = min(best, key=best.__getitem__)
    logger.info(
        "inference: %s (%s)",
        " ".join(choice),
        ", ".join(f"{p} {f} {t * 1e3:.1f} ms" for (p, f), t in best.items()),
    )
    return choice, best


def _timed(run: Callable[[], torch.Tensor], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    run()
    _synchronize(device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _probe(input_shape: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """A seeded input in ``[-1, 1]``, smooth like a photo's normalised L, batch 1."""
    if len(input_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, input_shape[0], 8, 8, generator=generator) * 2 - 1
    smooth = nn.functional.interpolate(coarse, size=input_shape[1:], mode="bilinear")
    noise = torch.randn(1, *input_shape, generator=generator) * 0.05
    return (smooth + noise).clamp_(-1, 1).to(device)


def _device_key(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{torch.backends.cpu.get_cpu_capability()}"
    return str(device)


def _structure(module: nn.Module) -> tuple[Any, ...]:
    """What the speed of ``module`` depends on: its type and parameter shapes."""
    shapes = tuple((name, tuple(p.shape)) for name, p in module.named_parameters())
    return (type(module).__qualname__, shapes)


def _check_choice(name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(accepted)}; got {value!r}")
