"""Temporary files and folders for atomic writes (write beside the target, then rename).

``tempfile`` creates them private (0600 / 0700) and a rename keeps that mode, which would
leave a user's saved model or colorized photo unreadable to everyone else; these helpers
give them the permissions a plain ``open``/``mkdir`` would (``umask`` applied).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def temporary_file(target: Path) -> Path:
    """An empty file beside ``target`` with normal permissions, to be renamed onto it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def temporary_dir(target: Path) -> Path:
    """An empty folder beside ``target`` with normal permissions, to be renamed onto it."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``target``, then rename it over
    ``target``; on any failure the temporary file is removed and ``target`` is untouched."""
    tmp = temporary_file(target)
    try:
        write(tmp)
        publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(tmp: Path, target: Path) -> None:
    """Give ``tmp`` normal permissions (a writer may have re-created it) and rename it onto
    ``target``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


def _umask() -> int:
    """The process's current umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
