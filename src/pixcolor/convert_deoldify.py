"""Import DeOldify's generator checkpoints into :class:`~pixcolor.DeOldifyGenerator`.

DeOldify saves its generators with fastai v1's ``Learner.save``: a pickled dict whose
``"model"`` entry is the state dict of a ``DynamicUnetDeep`` (artistic) or
``DynamicUnetWide`` (stable, video) and whose other entries (an optimizer state, if any)
are ignored. The file also pickles Python ``slice`` objects, which
``torch.load(weights_only=True)`` refuses by default; :func:`load_deoldify_checkpoint`
allows exactly ``builtins.slice`` on top of tensors and containers, and nothing else.

The state dict's spectrally normalised convolutions (``weight_orig``, ``weight_u``,
``weight_v``) and the weight-normalised last upsampling (``weight_g``, ``weight_v``) become
plain weights, computed exactly as torch computes them in eval mode; every other tensor is
copied. The architecture (encoder, deep or wide decoder, ``nf_factor``, self-attention) is
read from the tensors; every tensor must map onto exactly one of the pixcolor model and
the other way round.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from pixcolor._atomic import temporary_dir
from pixcolor._weights_only import load_weights_only
from pixcolor.convert import _check_output_dir, _mapping_problems, _shorten
from pixcolor.errors import CheckpointError
from pixcolor.models.deoldify import DeOldifyGenerator

__all__ = ["convert_deoldify", "deoldify_from_state_dict", "load_deoldify_checkpoint"]

logger = logging.getLogger(__name__)

# torchvision ResNet stage depths (and bottleneck blocks or not) -> encoder name.
_RESNETS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}
# fastai's create_body index -> torchvision module name.
_BODY = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
# DynamicUnet{Deep,Wide} layer index after the four decoder blocks (4-7): 9 is MergeLayer.
_FINAL_SHUF, _RES_BLOCK, _HEAD = 8, 10, 11
_ATTENTION = {"query", "key", "value"}


def convert_deoldify(
    checkpoint: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    **config: Any,
) -> Path:
    """Convert a DeOldify generator checkpoint into a pixcolor model directory.

    Args:
        checkpoint: A ``*_gen.pth`` file (``Learner.save``) or a bare state dict.
        output_dir: Directory to write ``config.json`` + ``model.safetensors`` into. It must
            not exist or be empty unless ``overwrite``; it is written to a temporary folder
            beside it and renamed into place.
        overwrite: Replace the contents of a non-empty ``output_dir``.
        **config: Config values the file does not record, e.g. ``render_size=336`` for
            the video model (see :data:`pixcolor.models.deoldify.DEOLDIFY_VARIANTS`).

    Returns:
        ``output_dir``, loadable with :meth:`DeOldifyGenerator.from_pretrained` and
        :meth:`pixcolor.Colorizer.from_pretrained`.

    Raises:
        FileNotFoundError: If ``checkpoint`` does not exist.
        FileExistsError: If ``output_dir`` is a file, or a non-empty directory without
            ``overwrite``.
        CheckpointError: If the file names a Python global other than ``slice`` (nothing
            in it is run), or is not a DeOldify generator.

    Example:
        >>> from pixcolor import convert_deoldify
        >>> convert_deoldify("models/ColorizeArtistic_gen.pth", "deoldify")  # doctest: +SKIP
        PosixPath('deoldify')
    """
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite)
    model = deoldify_from_state_dict(
        load_deoldify_checkpoint(checkpoint), source=checkpoint, **config
    )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_dir(output_dir)
    try:
        model.save_pretrained(tmp)
        _check_output_dir(output_dir, overwrite)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s to %s", checkpoint, output_dir)
    return output_dir


def load_deoldify_checkpoint(
    path: str | os.PathLike[str], *, untrusted: bool = False
) -> dict[str, torch.Tensor]:
    """Read a DeOldify checkpoint's state dict with the weights-only loader.

    Only tensors, containers, plain values and ``builtins.slice`` are rebuilt; a file
    naming any other Python global is refused before anything in it is called.

    Args:
        path: The ``.pth`` file: a ``Learner.save`` dict (its ``"model"`` entry is used;
            the rest, such as an optimizer state, is read but never used) or a bare state
            dict.
        untrusted: The file is a download: refuse it on a torch older than 2.6 (see
            :func:`pixcolor._weights_only.load_weights_only`).

    Returns:
        The state dict, ``str -> Tensor``.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        CheckpointError: If it holds anything else, or is not a PyTorch file.
    """
    path = Path(path)
    obj = load_weights_only(path, allowed_globals=[slice], untrusted=untrusted)
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        ignored = sorted(str(k) for k in obj if k != "model")
        if ignored:
            logger.info("using %s['model']; ignoring %s", path, ignored)
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, expected a fastai Learner.save dict with a "
            "'model' state dict, or a state dict"
        )
    bad = [repr(k) for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise CheckpointError(
            f"{path}: not a state dict; entries not str -> Tensor: {_shorten(bad)}"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def deoldify_from_state_dict(
    state: Mapping[str, torch.Tensor],
    *,
    source: str | os.PathLike[str] = "state dict",
    **config: Any,
) -> DeOldifyGenerator:
    """Build a :class:`DeOldifyGenerator` holding a DeOldify state dict's weights.

    Args:
        state: The state dict of a ``DynamicUnetDeep`` / ``DynamicUnetWide`` (keys
            ``layers.*``, spectral norm as ``weight_orig`` / ``weight_u`` / ``weight_v``).
        source: Where it came from, for error messages.
        **config: Config values the tensors do not record (``y_range``, ``render_size``,
            ...); the architecture read from the tensors cannot be overridden.

    Returns:
        The model in eval mode. It computes what DeOldify's network computes in eval mode.

    Raises:
        CheckpointError: If the tensors do not form a DeOldify generator.
    """
    folded = _fold_norms(state, source)
    architecture = _architecture(folded, source)
    clash = sorted(set(config) & set(architecture))
    if clash:
        raise CheckpointError(f"{source}: {clash} are read from the tensors and cannot be set")
    try:
        model = DeOldifyGenerator(**architecture, **config)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from err
    expected = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in folded.items():
        target = _target_key(key)
        if target is None or target not in expected or target in mapped:
            unexpected.append(key)
        elif value.shape != expected[target].shape:
            mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(expected[target].shape)}")
        else:
            mapped[target] = value
    for key in set(expected) - set(mapped):
        if key.endswith(".num_batches_tracked"):  # not in files from before torch 0.4.1
            mapped[key] = torch.zeros_like(expected[key])
    missing = sorted(set(expected) - set(mapped))
    problems = _mapping_problems(unexpected, mismatched, missing)
    if problems:
        raise CheckpointError(
            f"{source} does not match DeOldifyGenerator({architecture}); " + "; ".join(problems)
        )
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def _fold_norms(state: Mapping[str, torch.Tensor], source: object) -> dict[str, torch.Tensor]:
    """Replace spectral-norm and weight-norm triples by the weight they stand for in eval mode."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".weight_orig")]:
        prefix = key[: -len("_orig")]
        u, v = state.get(prefix + "_u"), state.get(prefix + "_v")
        if u is None or v is None or prefix in state:
            raise CheckpointError(
                f"{source}: spectral norm at {prefix!r} needs exactly {prefix}_orig, _u and _v"
            )
        weight = state[key]
        # torch.nn.utils.spectral_norm in eval mode: sigma from the stored u and v.
        sigma = torch.dot(u, torch.mv(weight.reshape(weight.shape[0], -1), v))
        out[prefix] = weight / sigma
        for suffix in ("_orig", "_u", "_v"):
            del out[prefix + suffix]
    for key in [k for k in state if k.endswith(".weight_g")]:
        prefix = key[: -len("_g")]
        if prefix + "_v" not in out:
            raise CheckpointError(f"{source}: weight norm at {prefix!r} has no {prefix}_v")
        out[prefix] = torch._weight_norm(out.pop(prefix + "_v"), out.pop(key), 0)
    return out


def _architecture(state: Mapping[str, torch.Tensor], source: object) -> dict[str, Any]:
    """Encoder, decoder, nf_factor and self-attention, read from the folded state dict."""
    depths = tuple(
        len({m[1] for k in state if (m := re.match(rf"layers\.0\.{i}\.(\d+)\.", k))})
        for i in (4, 5, 6, 7)
    )
    bottleneck = any(re.match(r"layers\.0\.\d+\.\d+\.conv3\.", k) for k in state)
    encoder = _RESNETS.get((depths, bottleneck))
    if encoder is None:
        raise CheckpointError(
            f"{source}: no torchvision ResNet body under 'layers.0' (stage depths {depths}); "
            "is it a DeOldify generator (keys layers.0.* to layers.11.*)?"
        )
    if "layers.4.conv1.0.weight" in state:
        decoder, conv = "deep", state["layers.4.conv1.0.weight"]
        nf_factor = float(Fraction(conv.shape[0], conv.shape[1]).limit_denominator(64))
    elif "layers.4.conv.0.weight" in state:
        decoder, conv = "wide", state["layers.4.conv.0.weight"]
        nf_factor = 2 * conv.shape[0] / 512
    else:
        raise CheckpointError(
            f"{source}: no first decoder block ('layers.4.conv1.0' of DynamicUnetDeep or "
            "'layers.4.conv.0' of DynamicUnetWide)"
        )
    attention = any(k.endswith(".3.gamma") for k in state)
    return {
        "encoder": encoder,
        "decoder": decoder,
        "nf_factor": nf_factor,
        "self_attention": attention,
    }


def _target_key(key: str) -> str | None:
    """DeOldify key (norms folded) -> pixcolor key, or ``None``."""
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
    if m is None:
        return None
    index, rest = int(m[1]), m[2]
    if index == 0:
        child, _, tail = rest.partition(".")
        return f"encoder.{_BODY[child]}.{tail}" if child in _BODY else None
    if index == 1:
        return f"bottleneck_bn.{rest}"
    if index == 3:
        return _conv_relu_bn(rest, "middle.")
    if 4 <= index <= 7:
        block = f"decoder.{index - 4}."
        if rest.startswith("bn."):
            return block + "skip_bn." + rest[3:]
        if rest.startswith("shuf.conv."):
            layer, _, tail = rest[len("shuf.conv.") :].partition(".")
            sub = {"0": "shuf.conv.", "1": "shuf.bn."}.get(layer)
            return block + sub + tail if sub else None
        name, _, tail = rest.partition(".")
        return (
            _conv_relu_bn(tail, f"{block}{name}.") if name in ("conv", "conv1", "conv2") else None
        )
    if index == _FINAL_SHUF and rest.startswith("conv.0."):
        return "final_shuf.conv." + rest[len("conv.0.") :]
    if index == _RES_BLOCK and (r := re.fullmatch(r"layers\.([01])\.0\.(.+)", rest)):
        return f"res_block.conv{int(r[1]) + 1}.{r[2]}"
    if index == _HEAD and rest.startswith("0."):
        return "head." + rest[2:]
    return None


def _conv_relu_bn(rest: str, prefix: str) -> str | None:
    """``custom_conv_layer`` keys: ``0`` conv, ``2`` BatchNorm, ``3`` SelfAttention;
    ``rest`` may start with the index of the layer in a Sequential of them."""
    m = re.fullmatch(r"(?:(\d+)\.)?([023])\.(.+)", rest)
    if m is None:
        return None
    head = prefix + (f"{m[1]}." if m[1] is not None else "")
    layer, tail = m[2], m[3]
    if layer == "0":
        return head + "conv." + tail
    if layer == "2":
        return head + "bn." + tail
    name = tail.partition(".")[0]
    return head + "attention." + tail if name in _ATTENTION or tail == "gamma" else None
