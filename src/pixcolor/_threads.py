"""Threads joined by queues, for :mod:`pixcolor.video`'s pipeline: a worker that hands
its error to the others, and queue operations that give up when told to stop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["END", "POLL_S", "Stopped", "Worker", "drain", "join", "put"]

POLL_S = 0.1
"""Seconds between checks of the stop event while a queue is empty or full."""

END = ("end", None)
"""The item that ends a queue."""


class Worker(threading.Thread):
    """A daemon thread running ``target(*args)``; an error it raises is kept in
    :attr:`error` and sets ``stop`` (the event among ``args``) so the others end."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        super().__init__(daemon=True)
        self._work, self._work_args = target, args
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._work(*self._work_args)
        except Stopped:
            pass
        except BaseException as err:
            self.error = err
            for arg in self._work_args:
                if isinstance(arg, threading.Event):
                    arg.set()


def drain(box: queue.Queue[Any], stop: threading.Event) -> Iterator[tuple[str, Any]]:
    """Items of ``box`` until the end mark; re-raise a producer's error; stop when told."""
    while not stop.is_set():
        try:
            kind, item = box.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield kind, item
    raise Stopped()


class Stopped(Exception):
    """Another thread failed (its error is raised instead)."""


def put(box: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            box.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False


def join(workers: list[Worker], raise_error: bool = True) -> BaseException | None:
    """Wait for the workers; the first error one of them raised is raised (or returned)."""
    for worker in workers:
        while worker.is_alive():
            worker.join(timeout=POLL_S)
    error = next((w.error for w in workers if w.error is not None), None)
    if error is not None and raise_error:
        raise error
    return error
