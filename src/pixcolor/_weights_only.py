"""Read pickled PyTorch checkpoints (``.pt`` / ``.pth``) without running any code in them.

Every pickled checkpoint pixcolor opens goes through :func:`load_weights_only`, which is
``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which rebuilds tensors,
containers and plain values and refuses every other global a file names (``os.system``,
``builtins.exec``, any class) *before* calling it. A converter whose format needs one more
harmless global (fastai v1's ``Learner.save`` pickles ``builtins.slice``) passes it in
``allowed_globals``; nothing else is ever allowed.

torch releases before 2.6 had a hole in that unpickler (CVE-2025-32434: a crafted file could
run code even with ``weights_only=True``), so files from elsewhere (``untrusted=True``, the
default) are refused on them.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from pixcolor.errors import CheckpointError

__all__ = ["SAFE_TORCH", "check_safe_torch", "load_weights_only"]

logger = logging.getLogger(__name__)

SAFE_TORCH = (2, 6)
"""The first torch release whose weights-only unpickler has no known way to run code."""


def load_weights_only(
    path: str | os.PathLike[str],
    *,
    allowed_globals: Iterable[Any] = (),
    untrusted: bool = True,
) -> Any:
    """Load a pickled checkpoint with ``torch.load(weights_only=True)`` on the CPU.

    Args:
        path: The ``.pt`` / ``.pth`` file.
        allowed_globals: Python objects (classes or functions) the file may name on top of
            what PyTorch's weights-only unpickler allows, e.g. ``[slice]``. Default: none.
        untrusted: The file comes from elsewhere (a download): refuse to read it on a torch
            older than :data:`SAFE_TORCH`. For a user's own local file, ``False`` only logs
            a warning there.

    Returns:
        What the file holds: tensors in (nested) dicts, lists and tuples, and plain values.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        CheckpointError: If the file names any other Python global (a class, a function
            such as ``os.system``): nothing in it is called. Also if it is not a readable
            PyTorch file, or torch is too old for an untrusted file.

    Example:
        >>> import os, tempfile, torch
        >>> from pixcolor._weights_only import load_weights_only
        >>> class Trap:
        ...     def __reduce__(self):
        ...         return (os.system, ("echo pwned",))
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +ELLIPSIS
        ...     torch.save({"w": Trap()}, f"{tmp}/trap.pt")
        ...     load_weights_only(f"{tmp}/trap.pt")
        Traceback (most recent call last):
        pixcolor.errors.CheckpointError: .../trap.pt names the Python global ...system...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if untrusted:
        check_safe_torch(f"reading {path}")
    elif _torch_version() < SAFE_TORCH:
        logger.warning(
            "torch %s's weights-only loader can be made to run code by a crafted file "
            "(fixed in torch 2.6); reading %s only because it is your own local file",
            torch.__version__,
            path,
        )
    _check_format(path)
    extra = list(allowed_globals)
    try:
        if not extra:
            return torch.load(path, map_location="cpu", weights_only=True)
        if not hasattr(torch.serialization, "safe_globals"):
            raise CheckpointError(
                f"reading {path} needs torch >= 2.5 (torch.serialization.safe_globals); "
                f"this is torch {torch.__version__}"
            )
        with torch.serialization.safe_globals(extra):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        named = (
            f"names the Python global {found[1]}, not only tensors (pickled Python objects)"
            if found
            else "holds pickled Python objects, not only tensors"
        )
        advice = (
            "A checkpoint from elsewhere should hold tensors only; do not load this one with "
            "weights_only=False unless you trust whoever made it."
            if untrusted
            else "If you trust the file, load it yourself and save its state_dict(): "
            "torch.save(model.state_dict(), 'weights.pt')."
        )
        raise CheckpointError(
            f"{path} {named}; pixcolor refused to load it and ran nothing in it. {advice}"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        why = str(err) or type(err).__name__  # an EOFError says nothing of its own
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or damaged?): {why}"
        ) from err


# What files that are not PyTorch checkpoints start with, to name them.
_SIGNATURES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"RIFF": "a RIFF file (WebP, WAV, ...)", b"%PDF": "a PDF document",
    b"\x1f\x8b": "gzip-compressed", b"<": "an HTML or XML page (a download error page?)",
    b"{": "JSON", b"[": "JSON", b"version https://git-lfs": "a Git LFS pointer, not the file",
}  # fmt: skip


def _check_format(path: Path) -> None:
    """Raise unless ``path`` starts as what torch.save writes: a zip archive (torch >= 1.6)
    or a pickle (the legacy format); torch's own errors for other files say nothing useful
    (``KeyError: 101`` for a text file)."""
    with path.open("rb") as file:
        head = file.read(64)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return
    if not head:
        what = "is empty"
    else:
        kind = next((name for sig, name in _SIGNATURES.items() if head.startswith(sig)), None)
        if kind is None and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
            kind = "text"
        what = f"is {kind}" if kind else f"starts with {head[:8]!r}"
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint: it {what}; expected a .pt / .pth file written "
        "by torch.save (a zip archive or a pickle)"
    )


def check_safe_torch(what: str) -> None:
    """Raise unless torch is at least :data:`SAFE_TORCH`; ``what`` says what was refused.

    Raises:
        CheckpointError: On torch < 2.6, naming the installed version and the way out.
    """
    if _torch_version() < SAFE_TORCH:
        raise CheckpointError(
            f"{what} needs torch >= 2.6, this is torch {torch.__version__}: the weights-only "
            "loader of earlier releases can be made to run code by a crafted file "
            "(CVE-2025-32434), so pixcolor does not open downloaded pickled checkpoints "
            "with it. Upgrade torch (pip install -U 'torch>=2.6'), or use a model saved as "
            "safetensors (the bundled model, a pixcolor Hub repo or directory)."
        )


def _torch_version() -> TorchVersion:
    return TorchVersion(str(torch.__version__))
