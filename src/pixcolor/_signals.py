"""SIGTERM handled like Ctrl-C, so that a killed run unwinds (temporary outputs removed,
"interrupted", exit status 130) instead of dying where it stands."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["term_as_interrupt"]


@contextmanager
def term_as_interrupt() -> Iterator[None]:
    """While inside, a SIGTERM raises :class:`KeyboardInterrupt` in the main thread; the
    previous handler (Ray installs its own) is put back afterwards. Signals can only be
    handled in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
