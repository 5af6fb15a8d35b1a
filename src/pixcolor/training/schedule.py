"""Learning-rate decay within a training phase, as a pure function of the step."""

from __future__ import annotations

import math

__all__ = ["LR_DECAYS", "lr_factor"]

LR_DECAYS = ("none", "linear", "cosine")


def lr_factor(kind: str, step: int, total: int) -> float:
    """Factor on a phase's base learning rate before its ``step``-th optimizer step.

    ``step`` counts from 0 to ``total - 1``. ``"linear"`` goes from 1 to ``1 / total`` (the
    pix2pix schedule's decay), ``"cosine"`` follows half a cosine from 1 towards 0; both
    reach 0 one step after the phase's last.

    Args:
        kind: ``"none"``, ``"linear"`` or ``"cosine"``.
        step: Optimizer steps already taken in the phase.
        total: Optimizer steps in the whole phase.

    Returns:
        The factor, in ``(0, 1]``.

    Raises:
        ValueError: If ``kind`` is unknown.

    Example:
        >>> [lr_factor("linear", s, 4) for s in range(4)]
        [1.0, 0.75, 0.5, 0.25]
        >>> round(lr_factor("cosine", 2, 4), 3)
        0.5
    """
    if kind not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {kind!r}")
    if kind == "none" or total <= 0:
        return 1.0
    progress = min(max(step, 0), total) / total
    if kind == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))
