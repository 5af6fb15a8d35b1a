"""Import checkpoints of fastai ``DynamicUnet`` colorizers into pixcolor models.

The colorization tutorial by Moein Shariatnia ("Colorizing black & white images with U-Net
and conditional GAN") and the repositories that follow it build their generator as::

    DynamicUnet(create_body(resnet18(), n_in=1, pretrained=True, cut=-2), 2, (256, 256))

and publish either its state dict (``res18-unet.pt``: keys ``layers.*``) or the state dict
of a whole ``MainModel`` (keys ``net_G.layers.*``, ``net_D.model.*`` for the PatchGAN and
``GANcriterion.real_label`` / ``fake_label``). :func:`convert_fastai` maps such a file
one-to-one onto ``UNetGenerator(encoder="resnet18" | "resnet34", norm="none",
output_activation="none")`` (and ``PatchDiscriminator(n_layers=3)``) and saves them with
``save_pretrained``. The converted models compute exactly what the originals computed.

Only DynamicUnet's defaults are supported (``blur=False``, ``self_attention=False``,
``last_cross=True``, ``bottle=False``, ``norm_type=None``, no ``y_range``): layers with
weights that differ show up as unexpected or missing keys, but ``blur`` and ``y_range``
have no weights and cannot be detected.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from pixcolor._atomic import temporary_dir
from pixcolor._fastai_sources import FASTAI_SOURCES
from pixcolor._weights_only import load_weights_only
from pixcolor.errors import CheckpointError
from pixcolor.models import PatchDiscriminator, UNetGenerator

__all__ = ["FASTAI_SOURCES", "convert_fastai", "fastai_generator"]

logger = logging.getLogger(__name__)

# State-dict keys of the checkpoint that carry no weights of either network.
_IGNORED_KEYS = ("GANcriterion.real_label", "GANcriterion.fake_label")
# Keys under which trainers nest the state dict (fastai's Learner.save: "model").
_NESTING_KEYS = ("state_dict", "model")
# Prefixes added by DataParallel / DistributedDataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# fastai body index (children of torchvision's ResNet minus pool and fc) -> module name.
_BODY = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
_RESNETS = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet34"}


def convert_fastai(
    checkpoint: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    source: str = "tutorial",
    overwrite: bool = False,
) -> Path:
    """Convert a fastai ``DynamicUnet`` checkpoint into pixcolor models.

    Accepted files (read with ``torch.load(weights_only=True)``: no code is ever unpickled):

    * a ``DynamicUnet`` state dict (keys ``layers.*``), e.g. the tutorial's ``res18-unet.pt``;
    * a ``MainModel`` state dict: ``net_G.layers.*``, optionally ``net_D.model.*`` (the
      tutorial's ``PatchDiscriminator(input_c=3, n_down=3)``) and ``GANcriterion.*``;
    * either one nested under a ``"state_dict"`` or ``"model"`` key (fastai's
      ``Learner.save`` also stores ``"opt"``, which is ignored), with or without the
      ``module.`` prefix of ``DataParallel`` or the ``_orig_mod.`` of ``torch.compile``.

    The encoder (``resnet18`` or ``resnet34``), the input channels and the widths are read
    from the tensors. Every tensor of the file must map onto exactly one tensor of the
    pixcolor model and the other way round; anything else is an error.

    Writes ``output_dir/generator`` (a :class:`~pixcolor.UNetGenerator`) and, if the file
    has a discriminator, ``output_dir/discriminator`` (a :class:`~pixcolor.PatchDiscriminator`),
    each loadable with ``from_pretrained``. Everything is written to a temporary directory
    beside ``output_dir`` and renamed into place, so ``output_dir`` is either complete or
    untouched.

    Args:
        checkpoint: The ``.pt`` / ``.pth`` file.
        output_dir: Directory to create. It must not exist or be empty unless ``overwrite``.
        source: How the checkpoint's training code normalised L and ab (a key of
            :data:`FASTAI_SOURCES`): ``"tutorial"`` (``L / 50 - 1``, ``ab / 110``) or
            ``"seed001"`` (``L / 100``, ``ab / 128``). The weights do not record it.
        overwrite: Replace the contents of a non-empty ``output_dir``.

    Returns:
        ``output_dir``.

    Raises:
        ValueError: If ``source`` is unknown.
        FileNotFoundError: If ``checkpoint`` does not exist.
        FileExistsError: If ``output_dir`` is a file, or is a non-empty directory and
            ``overwrite`` is false.
        CheckpointError: If the file is not a plain state dict (pickled objects are
            refused), or its keys or shapes do not match a supported layout; the message
            lists the offending keys.

    Example:
        >>> import tempfile, torch, pixcolor
        >>> from pixcolor.convert import convert_fastai
        >>> convert_fastai("res18-unet.pt", "res18-unet")  # doctest: +SKIP
        PosixPath('res18-unet')
        >>> gen = pixcolor.UNetGenerator.from_pretrained("res18-unet/generator")  # doctest: +SKIP

        A file that is not a state dict is refused before anything is written:

        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +IGNORE_EXCEPTION_DETAIL
        ...     torch.save({"epoch": 3}, f"{tmp}/bad.pt")
        ...     convert_fastai(f"{tmp}/bad.pt", f"{tmp}/out")
        Traceback (most recent call last):
        pixcolor.errors.CheckpointError: .../bad.pt is not a state dict
    """
    if source not in FASTAI_SOURCES:
        raise ValueError(f"source must be one of {sorted(FASTAI_SOURCES)}, got {source!r}")
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    _check_output_dir(output_dir, overwrite)
    state = _read_state_dict(checkpoint)
    generator_state, discriminator_state, prefix = _split_main_model(state, checkpoint)
    models: dict[str, UNetGenerator | PatchDiscriminator] = {
        "generator": _convert_generator(generator_state, FASTAI_SOURCES[source], checkpoint, prefix)
    }
    if discriminator_state is not None:
        models["discriminator"] = _convert_discriminator(discriminator_state, checkpoint)
    _write_atomically(models, output_dir, overwrite)
    logger.info("converted %s (%s) to %s: %s", checkpoint, source, output_dir, ", ".join(models))
    return output_dir


def fastai_generator(
    checkpoint: str | os.PathLike[str],
    normalisation: str | Mapping[str, float] = "tutorial",
    *,
    untrusted: bool = True,
) -> UNetGenerator:
    """Read the generator of a fastai ``DynamicUnet`` checkpoint into a :class:`UNetGenerator`.

    The in-memory half of :func:`convert_fastai`, for one file and its generator only (a
    ``MainModel``'s discriminator is left out): the ``"fastai"`` preset format
    (:data:`pixcolor.presets.FORMATS`) converts with it.

    Args:
        checkpoint: The ``.pt`` / ``.pth`` file, in any layout :func:`convert_fastai` reads.
        normalisation: A key of :data:`FASTAI_SOURCES`, or the model's ``l_center``,
            ``l_scale`` and ``ab_scale`` themselves.
        untrusted: The file comes from elsewhere: refused on torch < 2.6, whose
            weights-only loader could be made to run code. ``False`` for your own files.

    Returns:
        The generator, in eval mode, computing what the fastai model computed.

    Raises:
        ValueError: If ``normalisation`` is an unknown name or lacks a constant.
        FileNotFoundError: If ``checkpoint`` does not exist.
        CheckpointError: As :func:`convert_fastai`.
    """
    if isinstance(normalisation, str):
        if normalisation not in FASTAI_SOURCES:
            raise ValueError(
                f"normalisation must be one of {sorted(FASTAI_SOURCES)} or a mapping, "
                f"got {normalisation!r}"
            )
        normalisation = FASTAI_SOURCES[normalisation]
    needed = {"l_center", "l_scale", "ab_scale"}
    if set(normalisation) != needed:
        raise ValueError(
            f"normalisation must have exactly the keys {sorted(needed)}, got {sorted(normalisation)}"
        )
    checkpoint = Path(checkpoint)
    state = _read_state_dict(checkpoint, untrusted=untrusted)
    generator_state, _, prefix = _split_main_model(state, checkpoint)
    return _convert_generator(generator_state, normalisation, checkpoint, prefix)


def _read_state_dict(path: Path, untrusted: bool = False) -> dict[str, torch.Tensor]:
    """Load ``path`` without unpickling code and return a flat ``str -> Tensor`` dict."""
    obj = load_weights_only(path, untrusted=untrusted)
    if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        for key in _NESTING_KEYS:
            if isinstance(obj.get(key), Mapping):
                ignored = sorted(str(k) for k in obj if k != key)
                logger.info("using %s[%r]; ignoring top-level keys %s", path, key, ignored)
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, expected a state dict (a mapping of parameter "
            f"names to tensors, possibly under a {' or '.join(map(repr, _NESTING_KEYS))} key)"
        )
    bad = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not _is_tensor_item(k, v)]
    if bad:
        raise CheckpointError(
            f"{path} is not a state dict: these entries are not str -> Tensor: {_shorten(bad)}"
        )
    return {_strip_wrappers(k): v for k, v in obj.items()}


def _split_main_model(
    state: dict[str, torch.Tensor], path: Path
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, str]:
    """Split a ``MainModel`` state dict: generator part, discriminator part, generator prefix."""
    if not any(k.startswith("net_G.") for k in state):
        if not any(k.startswith("layers.") for k in state):
            raise CheckpointError(
                f"{path} is neither a fastai DynamicUnet state dict (keys 'layers.*') nor a "
                f"MainModel one (keys 'net_G.layers.*'); its keys: {_shorten(sorted(state))}"
            )
        return state, None, ""
    generator, discriminator, leftover = {}, {}, []
    for key, value in state.items():
        if key.startswith("net_G."):
            generator[_strip_wrappers(key[len("net_G.") :])] = value
        elif key.startswith("net_D."):
            discriminator[_strip_wrappers(key[len("net_D.") :])] = value
        elif key in _IGNORED_KEYS:
            logger.debug("ignoring %s = %s (a loss constant, not a weight)", key, value.tolist())
        else:
            leftover.append(key)
    if leftover:
        raise CheckpointError(
            f"{path}: MainModel state dict has keys outside net_G/net_D: {_shorten(leftover)}"
        )
    if any(k.startswith("model.") for k in generator):
        raise CheckpointError(
            f"{path}: net_G is the tutorial's from-scratch pix2pix 'Unet' (keys net_G.model.*), "
            "not a fastai DynamicUnet (keys net_G.layers.*); convert_fastai reads only the latter"
        )
    return generator, discriminator or None, "net_G."


def _convert_generator(
    state: dict[str, torch.Tensor], normalisation: Mapping[str, float], path: Path, prefix: str
) -> UNetGenerator:
    conv1 = state.get("layers.0.0.weight")
    if conv1 is None or conv1.dim() != 4:
        raise CheckpointError(
            f"{path} has no 4-d 'layers.0.0.weight' (the ResNet's first convolution); "
            "is it a DynamicUnet built on create_body(resnet18/34, cut=-2)?"
        )
    if any(re.match(r"layers\.0\.\d+\.\d+\.conv3\.", k) for k in state):
        raise CheckpointError(
            f"{path} has a ResNet with bottleneck blocks (conv3: resnet50 or deeper); "
            f"supported encoders: {sorted(_RESNETS.values())}"
        )
    counts = tuple(
        len({m[1] for k in state if (m := re.match(rf"layers\.0\.{i}\.(\d+)\.", k))})
        for i in (4, 5, 6, 7)
    )
    if counts not in _RESNETS:
        raise CheckpointError(
            f"{path}: ResNet stages have {counts} blocks; supported: "
            + ", ".join(f"{v} {k}" for k, v in _RESNETS.items())
        )
    key_map = _generator_key_map(state)
    head = next((s for s, t in key_map.items() if t == "net.head.weight"), None)
    model = UNetGenerator(
        encoder=_RESNETS[counts],
        in_channels=conv1.shape[1],
        out_channels=state[head].shape[0] if head else 2,
        base_channels=conv1.shape[0],
        norm="none",
        output_activation="none",
        **normalisation,
    )
    _load_mapped(model, state, key_map, path, prefix)
    if model.config.in_channels != 1:
        logger.warning(
            "the generator in %s takes %d input channels; pixcolor's Colorizer feeds it 1 (L)",
            path,
            model.config.in_channels,
        )
    return model


def _generator_key_map(state: Mapping[str, torch.Tensor]) -> dict[str, str | None]:
    """fastai ``DynamicUnet`` key -> pixcolor key (``None``: no counterpart).

    ``layers``: 0 body, 1 BatchNorm, 2 ReLU, 3 middle convs, then one ``UnetBlock`` per
    skip (found by their ``shuf``), then ``PixelShuffle_ICNR``, ``ResBlock`` and the 1x1
    ``ConvLayer`` in that order; the weight-less layers between them (``ResizeToOrig``,
    ``MergeLayer``) moved between fastai releases, so the tail is matched by order.
    """
    indices = {int(m[1]) for k in state if (m := re.match(r"layers\.(\d+)\.", k))}
    blocks = sorted({int(m[1]) for k in state if (m := re.match(r"layers\.(\d+)\.shuf\.", k))})
    tail = sorted(i for i in indices if i > max(blocks, default=3))
    roles = {0: "net.encoder", 1: "net.bottleneck_bn", 3: "net.middle"}
    roles.update({b: f"net.decoder.{n}" for n, b in enumerate(blocks)})
    roles.update(zip(tail, ("net.final_shuf", "net.res_block", "net.head"), strict=False))
    key_map: dict[str, str | None] = {}
    for key in state:
        m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
        role = roles.get(int(m[1])) if m else None
        target = None
        if m and role == "net.encoder":
            child, _, rest = m[2].partition(".")
            target = f"net.encoder.{_BODY[child]}.{rest}" if child in _BODY else None
        elif m and role == "net.head":
            target = f"net.head.{m[2][2:]}" if m[2].startswith("0.") else None
        elif m and role:
            target = f"{role}.{m[2]}"
        key_map[key] = target
    return key_map


def _convert_discriminator(state: dict[str, torch.Tensor], path: Path) -> PatchDiscriminator:
    first = state.get("model.0.0.weight")
    if first is None or first.dim() != 4:
        raise CheckpointError(
            f"{path}: net_D has no 4-d 'net_D.model.0.0.weight'; expected the tutorial's "
            "PatchDiscriminator (keys net_D.model.<block>.<layer>.*)"
        )
    blocks = {int(m[1]) for k in state if (m := re.match(r"model\.(\d+)\.", k))}
    n_layers = max(blocks) - 1
    model = PatchDiscriminator(
        in_channels=first.shape[1], base_channels=first.shape[0], n_layers=max(n_layers, 0)
    )
    _load_mapped(model, state, _discriminator_key_map(state, n_layers), path, prefix="net_D.")
    return model


def _discriminator_key_map(
    state: Mapping[str, torch.Tensor], n_layers: int
) -> dict[str, str | None]:
    """Tutorial key ``model.<block>.<layer>.*`` -> pixcolor's flat ``model.<index>.*``.

    Block 0 is conv + LeakyReLU, blocks ``1..n`` conv + BatchNorm + LeakyReLU, block
    ``n + 1`` the last conv; pixcolor lays the same layers out in one ``nn.Sequential``.
    """
    key_map: dict[str, str | None] = {}
    for key in state:
        m = re.fullmatch(r"model\.(\d+)\.(\d+)\.(.+)", key)
        target = None
        if m:
            block, layer = int(m[1]), int(m[2])
            if block == 0 and layer == 0:
                target = f"model.0.{m[3]}"
            elif 1 <= block <= n_layers and layer in (0, 1):
                target = f"model.{3 * block - 1 + layer}.{m[3]}"
            elif block == n_layers + 1 and layer == 0:
                target = f"model.{3 * n_layers + 2}.{m[3]}"
        key_map[key] = target
    return key_map


def _load_mapped(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    key_map: Mapping[str, str | None],
    path: Path,
    prefix: str = "",
) -> None:
    """Load ``state`` renamed by ``key_map``; one error lists every key that does not fit."""
    expected = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected, duplicate, mismatched = [], [], []
    for key, target in key_map.items():
        if target is None or target not in expected:
            unexpected.append(prefix + key)
        elif target in mapped:
            duplicate.append(prefix + key)
        elif state[key].shape != expected[target].shape:
            mismatched.append(
                f"{prefix}{key}: file {tuple(state[key].shape)} vs {tuple(expected[target].shape)}"
            )
        else:
            mapped[target] = state[key]
    missing = sorted(set(expected) - set(mapped) - {t for t in key_map.values() if t})
    problems = _mapping_problems(unexpected, mismatched, missing, duplicate)
    if problems:
        raise CheckpointError(
            f"{path} does not match a {type(model).__name__}({_describe(model)}); "
            + "; ".join(problems)
        )
    model.load_state_dict(mapped, strict=True)
    model.eval()


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output_dir {str(output_dir)!r} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output_dir {str(output_dir)!r} is not empty; pass overwrite=True to replace it"
        )


def _write_atomically(
    models: Mapping[str, UNetGenerator | PatchDiscriminator], output_dir: Path, overwrite: bool
) -> None:
    """Save every model under a temporary sibling of ``output_dir``, then rename it in place."""
    parent = output_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_dir(output_dir)
    try:
        for name, model in models.items():
            model.save_pretrained(tmp / name)
        _check_output_dir(output_dir, overwrite)
        if output_dir.exists():
            old = parent / f".{output_dir.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(output_dir, old)
            try:
                os.replace(tmp, output_dir)
            except BaseException:
                os.replace(old, output_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_tensor_item(key: object, value: object) -> bool:
    return isinstance(key, str) and isinstance(value, torch.Tensor)


def _is_tensor_dict(obj: Mapping[object, object]) -> bool:
    return bool(obj) and all(_is_tensor_item(k, v) for k, v in obj.items())


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def _describe(model: nn.Module) -> str:
    config = model.config  # type: ignore[union-attr]
    fields = ("encoder", "in_channels", "base_channels", "n_layers")
    return ", ".join(f"{f}={getattr(config, f)!r}" for f in fields if hasattr(config, f))


def _mapping_problems(
    unexpected: Sequence[str],
    mismatched: Sequence[str],
    missing: Sequence[str],
    duplicate: Sequence[str] = (),
) -> list[str]:
    """What keeps a checkpoint's tensors from loading into a model, one phrase per kind."""
    return [
        f"{label}: {_shorten(list(items))}"
        for label, items in (
            ("keys with no counterpart in pixcolor", unexpected),
            ("keys mapped twice", duplicate),
            ("shape mismatch", mismatched),
            ("pixcolor tensors absent from the file", missing),
        )
        if items
    ]


def _shorten(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
