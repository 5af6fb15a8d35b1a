"""Fold batch norms into the convolutions before them, for any network, verified.

:func:`fold_batch_norms` finds every ``Conv -> BatchNorm`` pair by running the network once
with hooks (so it sees the real data flow: it works on networks that ``torch.fx`` cannot
trace, such as our U-Nets, whose forward branches on shapes), folds each pair into one
convolution with :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`, and checks the folded
network against the original on the same input. A pair whose folding changes the output
(the convolution's output was also used elsewhere, for instance) is left as it was.

:func:`bake_reparametrizations` first turns weight re-parametrisations (spectral norm and
weight norm, hook-based or ``torch.nn.utils.parametrize``-based) into plain weights, as
they are in eval mode, so that they are neither recomputed on every call nor in the way of
folding (DeOldify's generator uses spectral norm).

Both change the module they are given: call them on a copy.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils._pytree import tree_leaves

__all__ = ["bake_reparametrizations", "fold_batch_norms"]

logger = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Folding rounds differently from conv + norm: outputs may move by this much (relative to
# the output's largest magnitude, at least 1).
_TOLERANCE = 1e-4


def bake_reparametrizations(module: nn.Module) -> int:
    """Replace spectral / weight norm re-parametrisations by the weights they compute in
    eval mode. Returns how many were baked."""
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    baked = 0
    for m in module.modules():
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations.keys()):  # type: ignore[union-attr]
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
                baked += 1
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                torch.nn.utils.remove_spectral_norm(m, hook.name)
                baked += 1
            elif isinstance(hook, WeightNorm):
                torch.nn.utils.remove_weight_norm(m, hook.name)
                baked += 1
    return baked


@torch.no_grad()
def fold_batch_norms(module: nn.Module, example: Any) -> int:
    """Fold every eval-mode batch norm that directly follows a convolution into it.

    Args:
        module: The network, in eval mode (changed in place).
        example: An input it accepts (a tensor, or a tuple of its positional arguments).

    Returns:
        The number of pairs folded.
    """
    args = example if isinstance(example, tuple) else (example,)
    pairs = _find_pairs(module, args)
    if not pairs:
        return 0
    reference = [t.clone() for t in tree_leaves(module(*args)) if isinstance(t, torch.Tensor)]
    names = {m: name for name, m in module.named_modules(remove_duplicate=False)}
    folded = 0
    # All at once (the usual case), else one by one, keeping those that change nothing.
    for batch in ([pairs], [[p] for p in pairs]) if len(pairs) > 1 else ([pairs],):
        for group in batch:
            undo = [_fold(module, names, conv, norm) for conv, norm in group]
            if _matches(module, args, reference):
                folded += len(group)
                continue
            for restore in reversed(undo):
                restore()
        if folded:
            break
    if folded < len(pairs):
        logger.info("folded %d of %d conv + batch-norm pairs", folded, len(pairs))
    return folded


def _find_pairs(module: nn.Module, args: tuple[Any, ...]) -> list[tuple[nn.Module, nn.Module]]:
    """``(conv, norm)`` pairs where the norm, called once, received the unchanged output of
    the conv, called once, in one forward pass."""
    produced: dict[int, tuple[nn.Module, torch.Tensor, int]] = {}
    calls: Counter[nn.Module] = Counter()
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def after_conv(conv: nn.Module, _: Any, out: Any) -> None:
        calls[conv] += 1
        if isinstance(out, torch.Tensor):
            produced[id(out)] = (conv, out, out._version)  # the reference keeps the id unique

    def before_norm(norm: nn.Module, inputs: tuple[Any, ...]) -> None:
        calls[norm] += 1
        x = inputs[0] if inputs else None
        entry = produced.get(id(x))
        if entry is not None and entry[1] is x and x._version == entry[2]:  # type: ignore[union-attr]
            pairs.append((entry[0], norm))

    handles = []
    for m in module.modules():
        if isinstance(m, _CONVS + _TRANSPOSED):
            handles.append(m.register_forward_hook(after_conv))
        elif isinstance(m, _NORMS) and _foldable_norm(m):
            handles.append(m.register_forward_pre_hook(before_norm))
    try:
        module(*args)
    finally:
        for handle in handles:
            handle.remove()
        produced.clear()
    shared = {
        m
        for m, n in Counter(m for _, m in module.named_modules(remove_duplicate=False)).items()
        if n > 1
    }
    return [
        (conv, norm)
        for conv, norm in pairs
        if calls[conv] == 1 and calls[norm] == 1 and not {conv, norm} & shared
    ]


def _foldable_norm(norm: nn.Module) -> bool:
    return (
        not norm.training
        and getattr(norm, "track_running_stats", False)
        and norm.running_mean is not None  # type: ignore[union-attr]
        and norm.running_var is not None  # type: ignore[union-attr]
    )


def _fold(module: nn.Module, names: dict[nn.Module, str], conv: nn.Module, norm: nn.Module) -> Any:
    """Put the folded conv in ``conv``'s place and an identity in ``norm``'s; return a
    function that undoes it."""
    fused = fuse_conv_bn_eval(conv, norm, transpose=isinstance(conv, _TRANSPOSED))  # type: ignore[arg-type]
    _replace(module, names[conv], fused)
    _replace(module, names[norm], nn.Identity())

    def undo() -> None:
        _replace(module, names[conv], conv)
        _replace(module, names[norm], norm)

    return undo


def _replace(module: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, child, new)


def _matches(module: nn.Module, args: tuple[Any, ...], reference: list[torch.Tensor]) -> bool:
    outputs = [t for t in tree_leaves(module(*args)) if isinstance(t, torch.Tensor)]
    if len(outputs) != len(reference):
        return False
    for out, ref in zip(outputs, reference, strict=True):
        if out.shape != ref.shape or not torch.isfinite(out).all():
            return False
        scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
        if out.numel() and float((out.float() - ref.float()).abs().max()) > _TOLERANCE * scale:
            return False
    return True
