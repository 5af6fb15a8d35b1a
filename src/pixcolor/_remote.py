"""Getting model files from the Hugging Face Hub, with errors that say what to do.

:func:`download` fetches a pixcolor repository (``config.json`` + ``model.safetensors``);
:func:`fetch_checkpoint` the single checkpoint file of a preset in another format, which
:mod:`pixcolor._conversion_cache` then converts. Both go through
:func:`huggingface_hub.hf_hub_download`, so its cache, progress bar, ``revision``,
``token``, ``local_files_only`` and ``HF_HUB_OFFLINE`` apply; an interrupted download stays
a ``.incomplete`` file in its cache, which the next try resumes and nothing ever reads.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pixcolor.errors import DiskSpaceError, ModelNotFoundError
from pixcolor.hub import CONFIG_NAME, WEIGHTS_NAME
from pixcolor.presets import PRESETS, Preset

__all__ = [
    "check_space", "disk_full_is_clear", "download", "fetch_checkpoint", "hub_unreachable",
    "megabytes",
]  # fmt: skip

_BUNDLED_HINT = (
    "Or use the model bundled with pixcolor, which works offline: leave out --model on the "
    "command line, or call pixcolor.Colorizer.from_pretrained() with no name."
)
# Free space wanted beyond the files themselves (config, record, filesystem slack).
_MARGIN_BYTES = 16 << 20
# How long the reachability check waits for the Hub's TCP handshake (huggingface_hub's own
# retries of an unreachable Hub take about 25 s before they give up).
_PROBE_SECONDS = 5.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                    "all_proxy")  # fmt: skip


def download(
    repo_id: str,
    name: str,
    revision: str | None,
    subfolder: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
    token: str | bool | None,
) -> Path:
    """Download ``config.json`` and ``model.safetensors`` of a pixcolor Hub repository.

    Returns:
        The local directory holding both (in the Hugging Face cache).

    Raises:
        ModelNotFoundError: Saying what was tried and what to do.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id!r}" + (f" (revision {revision!r})" if revision else "")
    config = f"{subfolder}/{CONFIG_NAME}" if subfolder else CONFIG_NAME
    unreachable = None
    if not local_files_only and not _cached(repo_id, config, cache_dir, revision):
        unreachable = hub_unreachable()
    paths = []
    try:
        for filename in (CONFIG_NAME, WEIGHTS_NAME):
            paths.append(
                hf_hub_download(
                    repo_id,
                    filename,
                    subfolder=subfolder,
                    revision=revision,
                    cache_dir=cache_dir,
                    local_files_only=local_files_only or unreachable is not None,
                    token=token,
                    library_name="pixcolor",
                )
            )
    except HFValidationError as err:
        raise ModelNotFoundError(
            f"{name!r} is not a local directory, a preset ({', '.join(sorted(PRESETS))}) "
            "or a valid Hugging Face Hub repo id ('user/model')"
        ) from err
    except LocalEntryNotFoundError as err:
        raise ModelNotFoundError(
            f"{name!r} is not a local directory, and Hub repo {where} is not in the local "
            f"Hugging Face cache while the Hub cannot be reached ({_why(unreachable)}). "
            "Download it once with network access, or pass a directory made by "
            f"save_pretrained. {_BUNDLED_HINT}"
        ) from err
    except RevisionNotFoundError as err:
        raise ModelNotFoundError(f"Hub repo {where}: revision not found") from err
    except EntryNotFoundError as err:
        inside = f" in subfolder {subfolder!r}" if subfolder else ""
        raise ModelNotFoundError(
            f"Hub repo {where} has no {CONFIG_NAME}/{WEIGHTS_NAME}{inside}"
        ) from err
    except RepositoryNotFoundError as err:
        raise ModelNotFoundError(
            f"{name!r} is not a local directory, a preset ({', '.join(sorted(PRESETS))}), "
            f"or a Hub repo you can access (private repos need token=...)"
        ) from err
    return Path(paths[0]).parent


def fetch_checkpoint(
    name: str,
    preset: Preset,
    revision: str,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
    token: str | bool | None,
    state: str,
) -> Path:
    """Download ``preset``'s checkpoint file at ``revision`` (or find it in the cache).

    Args:
        name: The preset's name, for messages.
        preset: The preset (its ``repo_id``, ``filename`` and ``size``).
        revision: Commit, branch or tag.
        cache_dir: Hugging Face cache (default: ``HF_HUB_CACHE``).
        local_files_only: Never use the network.
        token: Hugging Face token.
        state: What the offline error says about the preset's conversion, e.g. "is not
            converted in ~/.cache/pixcolor yet".

    Returns:
        The file, inside the Hugging Face cache (``snapshots/<commit>/<filename>``).

    Raises:
        ModelNotFoundError: If the file cannot be had, saying why and what to do.
        DiskSpaceError: If the download does not fit on the disk.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    assert preset.repo_id is not None and preset.filename is not None
    where = f"file {preset.filename!r} of Hub repo {preset.repo_id!r} at revision {revision!r}"
    cached = try_to_load_from_cache(
        preset.repo_id, preset.filename, cache_dir=cache_dir, revision=revision
    )
    unreachable = None
    if not isinstance(cached, str) and not (local_files_only or constants.HF_HUB_OFFLINE):
        hub_cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
        check_space(hub_cache, preset.size, f"download {name!r} ({where})")
        unreachable = hub_unreachable()
    try:
        with disk_full_is_clear(f"downloading {name!r} ({where})"):
            return Path(
                hf_hub_download(
                    preset.repo_id,
                    preset.filename,
                    revision=revision,
                    cache_dir=cache_dir,
                    local_files_only=local_files_only or unreachable is not None,
                    token=token,
                    library_name="pixcolor",
                )
            )
    except LocalEntryNotFoundError as err:
        raise ModelNotFoundError(
            f"{name!r} ({where}, {megabytes(preset.size)}) {state}, and its checkpoint is not "
            f"in the local Hugging Face cache while the Hub cannot be reached "
            f"({_why(unreachable)}). Load it once with network access: "
            f"it is downloaded and converted once, and loads offline from then on. {_BUNDLED_HINT}"
        ) from err
    except RevisionNotFoundError as err:
        raise ModelNotFoundError(f"{where}: revision not found") from err
    except EntryNotFoundError as err:
        raise ModelNotFoundError(f"{where}: the repository has no such file") from err
    except (RepositoryNotFoundError, HFValidationError) as err:
        raise ModelNotFoundError(
            f"preset {name!r}: {where} does not exist or is not accessible "
            "(private repos need token=...)"
        ) from err


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached from here, or ``None`` if it can (or may).

    One TCP connection to the Hub's endpoint (``HF_ENDPOINT``), at most a few seconds, so
    that a machine without network access gets its error at once instead of after
    huggingface_hub's retries. Not checked (``None``) in offline mode or behind a proxy
    (``HTTPS_PROXY`` and the like), where only the proxy knows.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    endpoint = urlsplit(constants.ENDPOINT)
    if not endpoint.hostname:
        return None
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=_PROBE_SECONDS).close()
    except OSError as err:
        return f"{constants.ENDPOINT}: {err.strerror or err}"
    return None


def _why(unreachable: str | None) -> str:
    """The reason in "the Hub cannot be reached (...)"."""
    if unreachable is not None:
        return unreachable
    return "offline, HF_HUB_OFFLINE=1 or local_files_only=True"


def _cached(
    repo_id: str, filename: str, cache_dir: str | os.PathLike[str] | None, revision: str | None
) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    except Exception:  # an invalid repo id: hf_hub_download says so
        return True
    return isinstance(found, str)


def check_space(directory: Path, needed: int | None, what: str) -> None:
    """Raise :class:`~pixcolor.DiskSpaceError` unless ``directory`` (or its nearest existing
    parent) has ``needed`` bytes free, and some margin; ``what`` names what needs them."""
    if not needed:
        return
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed + _MARGIN_BYTES:
        raise DiskSpaceError(
            f"not enough disk space to {what}: it needs about {megabytes(needed)} in "
            f"{existing}, which has {megabytes(free)} free. Free some space, or point "
            "PIXCOLOR_CACHE (conversions) or HF_HUB_CACHE (downloads) at another disk."
        )


@contextmanager
def disk_full_is_clear(what: str) -> Iterator[None]:
    """Turn a "no space left on device" (or quota) ``OSError`` into a ``DiskSpaceError``."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskSpaceError(
            f"the disk filled up while {what} ({err}); nothing half-written is kept. Free "
            "some space, or point PIXCOLOR_CACHE (conversions) or HF_HUB_CACHE (downloads) "
            "at another disk, and try again."
        ) from err


def megabytes(size: int | None) -> str:
    """``"about 125 MB"`` for messages and listings."""
    return f"about {size / 1e6:.1f} MB" if size else "size unknown"
