"""Device names as users give them (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), checked
once, with an error that names the value and what is accepted instead of torch's own."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["parse_device"]

_ACCEPTED = "'cpu', 'cuda', 'cuda:N' or 'mps'"


def parse_device(device: Any, check_available: bool = True) -> torch.device:
    """``device`` as a :class:`torch.device`.

    Args:
        device: A name such as ``"cuda:1"``, or a :class:`torch.device`.
        check_available: Also check that this machine has it (off where the work runs
            elsewhere, e.g. on a Ray cluster's workers).

    Raises:
        ValueError: If ``device`` is not a device name, or (with ``check_available``) this
            machine's torch cannot use it.

    Example:
        >>> parse_device("cpu")
        device(type='cpu')
        >>> parse_device("tpu")
        Traceback (most recent call last):
        ...
        ValueError: device 'tpu' is not a device name torch knows; use 'cpu', 'cuda', 'cuda:N' or 'mps'
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise ValueError(
                f"device {device!r} is not a device name torch knows; use {_ACCEPTED}"
            ) from None
    else:
        raise ValueError(f"device must be a name such as {_ACCEPTED}, got {device!r}")
    if check_available:
        _check_available(dev, device)
    return dev


def _check_available(dev: torch.device, given: Any) -> None:
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(given)!r} is not available here: this torch finds no CUDA GPU "
                "(torch.cuda.is_available() is False); use 'cpu'"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {str(given)!r} is not available here: this machine has {count} CUDA "
                f"GPU(s), cuda:0 to cuda:{count - 1}"
            )
        return
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device {str(given)!r} is not available here: this torch has no Apple "
                "Metal (MPS) support on this machine; use 'cpu'"
            )
        return
    backend = getattr(torch, dev.type, None)
    available = getattr(backend, "is_available", None)
    if not callable(available) or not available():
        raise ValueError(
            f"device {str(given)!r} is not available here; use {_ACCEPTED} (where present)"
        )
