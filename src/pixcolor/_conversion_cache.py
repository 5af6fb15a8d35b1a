"""The cache of converted presets: download once, convert once, then safetensors only.

:func:`converted_dir` returns a directory of ``config.json`` + ``model.safetensors`` for a
preset in another format than pixcolor's (:attr:`pixcolor.presets.Preset.converted`):

1. if a valid conversion is cached under :func:`pixcolor.presets.cache_root` for the
   preset's pinned commit, that directory, without asking the Hub anything;
2. else the checkpoint from the Hub (:func:`pixcolor._remote.fetch_checkpoint`), read with
   ``torch.load(weights_only=True)`` only, converted by the preset format's converter
   (:data:`pixcolor.presets.FORMATS`) and saved into a temporary directory that is renamed
   into place when complete, under a file lock so that two processes never convert the
   same file at once.

A conversion is valid when its ``conversion.json`` names the same file, commit, converter
version and settings, its ``config.json`` reads, and ``model.safetensors`` has its recorded
size and a readable header. Anything else (a damaged copy, one from an older converter) is
rebuilt from the checkpoint, or reported with what to do when the checkpoint is gone and
the Hub cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixcolor._atomic import temporary_dir, write_atomically
from pixcolor._remote import check_space, disk_full_is_clear, fetch_checkpoint
from pixcolor._weights_only import check_safe_torch
from pixcolor.errors import CheckpointError
from pixcolor.hub import CONFIG_NAME, WEIGHTS_NAME
from pixcolor.presets import _COMMIT, FORMATS, PRESETS, CheckpointFormat, Preset, cache_root

__all__ = ["CONVERSION_RECORD", "cache_state", "converted_dir", "is_conversion"]

logger = logging.getLogger(__name__)

CONVERSION_RECORD = "conversion.json"
_NOT_CONVERTED = "not converted yet"


def converted_dir(
    name: str,
    preset: Preset,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    rebuild: bool = False,
) -> Path:
    """The cached conversion of ``preset``, downloading and converting it if needed.

    Args:
        name: The preset's name, for messages.
        preset: A preset whose ``format`` is a key of :data:`pixcolor.presets.FORMATS`.
        revision: Another commit, branch or tag than the preset's pinned one.
        cache_dir: Hugging Face cache for the checkpoint (default: ``HF_HUB_CACHE``).
        local_files_only: Never use the network.
        token: Hugging Face token.
        rebuild: Convert again even if the cached conversion looks valid (it failed to
            load).

    Returns:
        A directory holding ``config.json``, ``model.safetensors`` and ``conversion.json``.

    Raises:
        ModelNotFoundError: If the checkpoint is needed but cannot be downloaded; the
            message says why and names the bundled model as the offline alternative.
        CheckpointError: If the checkpoint holds anything but tensors, does not match the
            preset's architecture, or torch is older than 2.6.
        DiskSpaceError: If the download or the conversion does not fit on the disk.
    """
    fmt = _format_of(name, preset)
    revision = revision or preset.revision
    problem = "it could not be loaded" if rebuild else _NOT_CONVERTED
    known = revision if _COMMIT.fullmatch(revision) else None
    if known is None and (local_files_only or _hub_offline()):
        # A branch, offline: the commit it pointed to at the last download, if any.
        known = _cached_ref(preset, revision, cache_dir)
    if known is not None and not rebuild:
        found = _problem(_target(preset, known), preset, fmt, known)
        if found is None:
            return _target(preset, known)
        problem = found
    check_safe_torch(f"converting the {name!r} model (its {preset.filename} is pickled)")
    state = (
        f"is not converted in {cache_root()} yet"
        if problem == _NOT_CONVERTED
        else f"has a converted copy in {cache_root()} that cannot be used ({problem})"
    )
    checkpoint = fetch_checkpoint(name, preset, revision, cache_dir, local_files_only, token, state)
    commit = _commit_of(checkpoint, str(preset.filename)) or revision
    target = _target(preset, commit)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target):
        if not rebuild and _problem(target, preset, fmt, commit) is None:
            return target  # another process converted it while this one waited
        if problem != _NOT_CONVERTED:
            logger.warning("converting %r again: its cached conversion %s", name, problem)
        _remove_leftovers(target)
        return _convert(name, preset, fmt, checkpoint, target, commit)


def is_conversion(directory: Path) -> bool:
    """Whether ``directory`` was written by :func:`converted_dir`."""
    return (directory / CONVERSION_RECORD).is_file()


def cache_state(name: str, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Where preset ``name`` stands on this machine, in a few words for ``pixcolor models``.

    Never uses the network: ``"in the package"``, ``"converted"``, ``"downloaded, not
    converted"``, ``"downloaded"``, ``"no"`` or ``"missing from this installation"``.
    """
    from huggingface_hub import try_to_load_from_cache

    preset = PRESETS[name]
    if preset.path is not None:
        directory = Path(__file__).parent / preset.path
        found = (directory / WEIGHTS_NAME).is_file()
        return "in the package" if found else "missing from this installation"
    assert preset.repo_id is not None
    if preset.converted:
        fmt = FORMATS.get(preset.format)
        commit = (
            preset.revision
            if _COMMIT.fullmatch(preset.revision)
            else _cached_ref(preset, preset.revision, cache_dir)
        )
        if (
            commit
            and fmt is not None
            and not _problem(_target(preset, commit), preset, fmt, commit)
        ):
            return "converted"
        filename = str(preset.filename)
    else:
        filename = f"{preset.subfolder}/{WEIGHTS_NAME}" if preset.subfolder else WEIGHTS_NAME
    cached = try_to_load_from_cache(
        preset.repo_id, filename, cache_dir=cache_dir, revision=preset.revision
    )
    if isinstance(cached, str):
        return "downloaded, not converted" if preset.converted else "downloaded"
    return "no"


# ----------------------------------------------------------------------------- checking
def _format_of(name: str, preset: Preset) -> CheckpointFormat:
    if preset.format not in FORMATS:
        raise CheckpointError(
            f"preset {name!r} has format {preset.format!r}; this pixcolor converts "
            f"{sorted(FORMATS)} (and reads 'pixcolor' directly)"
        )
    return FORMATS[preset.format]


def _target(preset: Preset, commit: str) -> Path:
    assert preset.repo_id is not None and preset.filename is not None
    repo = preset.repo_id.replace("/", "--")
    return cache_root() / "converted" / repo / commit / preset.filename.replace("/", "--")


def _expected_record(preset: Preset, fmt: CheckpointFormat, commit: str) -> dict[str, Any]:
    record = {
        "format": preset.format,
        "format_version": fmt.version,
        "repo_id": preset.repo_id,
        "revision": commit,
        "filename": preset.filename,
        "architecture": dict(preset.architecture),
        "normalisation": dict(preset.normalisation),
    }
    if preset.config:  # recorded only where used, so older records stay valid
        record["config"] = dict(preset.config)
    return record


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _cached_ref(
    preset: Preset, branch: str, cache_dir: str | os.PathLike[str] | None
) -> str | None:
    """The commit that ``branch`` of the preset's repo pointed to at its last download, from
    the Hugging Face cache's ``refs/<branch>`` (``None`` if never downloaded)."""
    from huggingface_hub import constants

    assert preset.repo_id is not None
    hub_cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    ref = hub_cache / f"models--{preset.repo_id.replace('/', '--')}" / "refs" / branch
    try:
        commit = ref.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if _COMMIT.fullmatch(commit) else None


def _problem(target: Path, preset: Preset, fmt: CheckpointFormat, commit: str) -> str | None:
    """Why the conversion at ``target`` cannot be used, or ``None`` if it can."""
    if not target.is_dir():
        return _NOT_CONVERTED
    record = _read_json(target / CONVERSION_RECORD)
    if record is None:
        return f"{target / CONVERSION_RECORD} is missing or unreadable"
    expected = _expected_record(preset, fmt, commit)
    if record.get("format_version") != fmt.version:
        return (
            f"it was converted by pixcolor {record.get('pixcolor_version', '?')} with "
            f"{preset.format} converter version {record.get('format_version')!r}; this "
            f"pixcolor's is version {fmt.version}"
        )
    changed = [k for k in expected if record.get(k) != expected[k]]
    if changed:
        return f"it was converted with other settings ({', '.join(changed)} differ)"
    config = _read_json(target / CONFIG_NAME)
    if config is None or "_class_name" not in config:
        return f"{target / CONFIG_NAME} is missing, unreadable or has no '_class_name'"
    weights = target / WEIGHTS_NAME
    size = weights.stat().st_size if weights.is_file() else None
    if size != record.get("weights_bytes"):
        return f"{weights} has {size} bytes, {record.get('weights_bytes')} were written"
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except Exception as err:  # safetensors raises its own error types for a bad header
        return f"{weights} has no readable safetensors header ({err})"
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _commit_of(checkpoint: Path, filename: str) -> str | None:
    """The commit of ``<cache>/snapshots/<commit>/<filename>``, or ``None``."""
    snapshot = checkpoint
    for _ in Path(filename).parts:
        snapshot = snapshot.parent
    if snapshot.parent.name == "snapshots" and _COMMIT.fullmatch(snapshot.name):
        return snapshot.name
    return None


# ----------------------------------------------------------------------------- converting
def _convert(
    name: str, preset: Preset, fmt: CheckpointFormat, checkpoint: Path, target: Path, commit: str
) -> Path:
    from pixcolor import __version__

    source_bytes = checkpoint.stat().st_size
    check_space(target.parent, source_bytes, f"convert {name!r} into {target}")
    logger.info("converting %s (%s) into %s", checkpoint, preset.format, target)
    source_sha256 = _sha256(checkpoint)
    model = fmt.convert(checkpoint, preset)
    _check_architecture(model, preset, checkpoint)
    record = _expected_record(preset, fmt, commit) | {
        "class_name": type(model).__name__,
        "pixcolor_version": __version__,
        "source_bytes": source_bytes,
        "source_sha256": source_sha256,
    }
    tmp = temporary_dir(target)
    try:
        with disk_full_is_clear(f"converting {name!r} into {target}"):
            model.save_pretrained(tmp)
            record["weights_bytes"] = (tmp / WEIGHTS_NAME).stat().st_size
            text = json.dumps(dict(sorted(record.items())), indent=2) + "\n"
            write_atomically(
                tmp / CONVERSION_RECORD, lambda p: p.write_text(text, encoding="utf-8")
            )
            _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s to %s", checkpoint, target)
    return target


def _check_architecture(model: Any, preset: Preset, checkpoint: Path) -> None:
    config = model.config_dict()
    wrong = [
        f"{key}={config.get(key)!r} (preset: {value!r})"
        for key, value in preset.architecture.items()
        if config.get(key) != value
    ]
    if wrong:
        raise CheckpointError(
            f"{checkpoint} converts to a {type(model).__name__} with {', '.join(wrong)}; "
            "it is not the model the preset describes"
        )


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` onto ``target``, replacing a stale conversion there."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _lock(target: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(target.parent / f".{target.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("waiting for another process converting into %s", target)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _remove_leftovers(target: Path) -> None:
    """Temporary directories of conversions killed before their rename (the lock is held,
    so no live process owns them)."""
    for pattern in (f".{target.name}.*.tmp", f".{target.name}.*.old"):
        for leftover in target.parent.glob(pattern):
            logger.info("removing %s, left by an interrupted conversion", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
