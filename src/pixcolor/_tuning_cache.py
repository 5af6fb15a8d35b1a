"""The on-disk cache of ``precision="auto"`` / ``memory_format="auto"`` choices.

:class:`pixcolor.InferenceModel` times its candidates at construction (a few seconds for a
big network at its render size); the choice is kept in memory for the process and, through
this module, in a small JSON file per measurement under
``<cache>/inference/<key>.json`` (``<cache>``: :func:`pixcolor.presets.cache_root`,
``$PIXCOLOR_CACHE`` or ``~/.cache/pixcolor``), so that the next process on the same machine
skips the measurement.

The key is a hash of everything the speed depends on: the CPU (model name and the flags
that matter for convolutions, :data:`FLAGS`) or GPU name, torch's version and CPU
capability, the thread count, the network's structure (module type and parameter shapes),
the probe's shape and the candidates. A file that cannot be read or does not hold a valid
choice is ignored (and measured again); a cache that cannot be written is left alone
(logged). Deleting the folder is safe: the next construction measures again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any

import torch

from pixcolor._atomic import write_atomically
from pixcolor.presets import cache_root

__all__ = ["FLAGS", "load", "machine", "save"]

logger = logging.getLogger(__name__)

FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
         "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")  # fmt: skip
"""CPU flags that change which precision and layout is fastest (Linux names)."""


@functools.cache
def machine() -> dict[str, Any]:
    """The CPU's model name and its :data:`FLAGS` (Linux ``/proc/cpuinfo``; elsewhere
    :func:`platform.processor`), with torch's version and CPU capability."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() == "flags":
            present = set(value.split())
            flags = [f for f in FLAGS if f in present]
            break
    return {
        "cpu": name,
        "flags": flags,
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def _path(key: tuple[Any, ...]) -> Path:
    text = json.dumps([machine(), repr(key)], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return cache_root() / "inference" / f"{digest}.json"


def load(key: tuple[Any, ...], candidates: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The cached choice for ``key``, if one was saved and is still a candidate."""
    path = _path(key)
    try:
        record = json.loads(path.read_text())
        choice = (str(record["choice"][0]), str(record["choice"][1]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
        logger.debug("ignoring the unreadable tuning record %s: %s", path, err)
        return None
    if choice not in candidates:
        return None
    logger.info("inference: %s (measured before, %s)", " ".join(choice), path)
    return choice


def save(
    key: tuple[Any, ...], choice: tuple[str, str], times: dict[tuple[str, str], float]
) -> None:
    """Record ``choice`` (and the times it was chosen by, in ms) for ``key``."""
    path = _path(key)
    record = {
        "choice": list(choice),
        "ms": {" ".join(name): round(t * 1e3, 2) for name, t in times.items()},
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "key": repr(key)[:2000],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    except OSError as err:
        logger.info("could not save the tuning record %s: %s", path, err)
