"""Weights I/O: ``config.json`` + ``model.safetensors`` on disk and on the Hugging Face Hub.

A saved model is a directory holding

* ``config.json``: the constructor arguments, sorted, plus ``_class_name`` and
  ``_pixcolor_version``;
* ``model.safetensors``: the state dict. Loading is ``strict=True``; no pickle is ever
  read.

:meth:`PretrainedMixin.from_pretrained` accepts a local directory, a preset name from
:data:`PRESETS`, or a Hub repo id (downloaded through :func:`huggingface_hub.hf_hub_download`,
so its cache, ``revision``, ``token``, ``local_files_only`` and ``HF_HUB_OFFLINE`` apply).
A preset in another format (a fastai ``.pt``) is converted once into a cached directory of
these two files, and read from there (:mod:`pixcolor.presets`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pixcolor._atomic import write_atomically
from pixcolor.errors import CheckpointError, ModelNotFoundError
from pixcolor.presets import BUNDLED as BUNDLED  # re-exported: pixcolor.hub.BUNDLED
from pixcolor.presets import PRESETS, Preset

__all__ = [
    "CONFIG_NAME",
    "PRESETS",
    "WEIGHTS_NAME",
    "Preset",
    "PretrainedMixin",
    "resolve_model_dir",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


_M = TypeVar("_M", bound="PretrainedMixin")


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` to a model.

    A model using it sets ``config_class`` (a dataclass of its constructor arguments) and
    stores the instance as ``self.config``.
    """

    config_class: ClassVar[type]
    config: Any

    @classmethod
    def from_config(cls: type[_M], config: Mapping[str, Any] | Any) -> _M:
        """Build a model (random weights) from a config dataclass or dictionary.

        Raises:
            CheckpointError: If the dictionary has keys the config does not know.
        """
        if dataclasses.is_dataclass(config):
            config = dataclasses.asdict(config)
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        values = {k: v for k, v in config.items() if not k.startswith("_")}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise CheckpointError(
                f"config for {cls.__name__} has unknown keys {unknown}; known keys: {sorted(fields)}"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)

    def config_dict(self) -> dict[str, Any]:
        """The config as written to ``config.json``: sorted keys, class name and version."""
        from pixcolor import __version__

        data = dataclasses.asdict(self.config)
        data.update(_class_name=type(self).__name__, _pixcolor_version=__version__)
        return dict(sorted(data.items()))

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``save_directory``.

        Each file is written to a temporary name and renamed into place, so an interrupted
        save never leaves a half-written file behind.

        Args:
            save_directory: Directory to create (parents too) or update.

        Returns:
            The directory.

        Example:
            >>> import tempfile, torch, pixcolor
            >>> disc = pixcolor.PatchDiscriminator(base_channels=8)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = disc.save_pretrained(tmp)
            ...     again = pixcolor.PatchDiscriminator.from_pretrained(tmp)
            >>> torch.equal(disc.model[0].weight, again.model[0].weight)
            True
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(
                f"save_directory {str(directory)!r} exists and is not a directory"
            )
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        write_atomically(
            directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"})
        )
        text = json.dumps(self.config_dict(), indent=2) + "\n"
        write_atomically(directory / CONFIG_NAME, lambda p: p.write_text(text, encoding="utf-8"))
        logger.debug("saved %s to %s", type(self).__name__, directory)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[_M],
        name_or_path: str | os.PathLike[str],
        *,
        revision: str | None = None,
        subfolder: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
    ) -> _M:
        """Load a model saved by :meth:`save_pretrained`, in eval mode.

        Args:
            name_or_path: A local directory, a preset name (see :data:`PRESETS`) or a Hub
                repo id such as ``"user/my-colorizer"``.
            revision: Hub branch, tag or commit (a preset's own revision by default).
            subfolder: Folder inside the directory or repository.
            cache_dir: Hugging Face cache directory (default: the ``HF_HUB_CACHE`` one).
            local_files_only: Only use the cache, never the network.
            token: Hugging Face token for private repositories.
            map_location: Device to put the weights on.

        Returns:
            The model, on ``map_location``, in eval mode.

        Raises:
            ModelNotFoundError: If the directory, preset or repository cannot be found, or
                the Hub cannot be reached and the files are not cached.
            CheckpointError: If the files are for another class, or the tensors do not
                match the architecture in ``config.json``.
        """
        resolve = functools.partial(
            resolve_model_dir,
            name_or_path,
            revision=revision,
            subfolder=subfolder,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
        directory = resolve()
        config = _read_config_of(cls, directory)
        try:
            model = _build_and_load(cls, config, directory)
        except CheckpointError as err:
            if not _is_conversion(directory):
                raise
            # A converted preset that no longer loads (damaged, or written by another
            # pixcolor): convert it again from its checkpoint, once.
            logger.warning("%s does not load (%s); converting it again", directory, err)
            directory = resolve(rebuild=True)
            model = _build_and_load(cls, _read_config_of(cls, directory), directory)
        return model.to(map_location).eval()  # type: ignore[attr-defined,no-any-return]

    def push_to_hub(
        self,
        repo_id: str,
        *,
        subfolder: str | None = None,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
    ) -> Any:
        """Upload ``config.json`` and ``model.safetensors`` to a Hub repository.

        Creates the repository if needed (``private`` applies then).

        Returns:
            The :class:`huggingface_hub.CommitInfo` of the upload.
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                path_in_repo=subfolder,
                commit_message=commit_message or f"Upload {type(self).__name__} with pixcolor",
                revision=revision,
                create_pr=create_pr,
            )


def resolve_model_dir(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    subfolder: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    rebuild: bool = False,
) -> Path:
    """Return a local directory holding ``config.json`` and ``model.safetensors``.

    Looks ``name_or_path`` up as a local directory, then as a preset name, then as a Hub
    repo id (downloading into the Hugging Face cache). A preset in another format is
    downloaded and converted on first use, then read from its cached conversion
    (:func:`pixcolor.presets.cache_root`).

    Args:
        name_or_path, revision, subfolder, cache_dir, local_files_only, token: As
            :meth:`PretrainedMixin.from_pretrained`.
        rebuild: For a preset in another format: convert again even if a cached
            conversion exists.

    Raises:
        ModelNotFoundError: With what was tried and how to fix it.
        ValueError: If ``subfolder`` is given for a preset that is a single file.
        CheckpointError: If a preset's checkpoint cannot be converted.
        DiskSpaceError: If a preset's download or conversion does not fit on the disk.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        directory = path / subfolder if subfolder else path
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise ModelNotFoundError(
                    f"{directory} has no {name}; is it a directory made by save_pretrained?"
                )
        return directory
    name = str(name_or_path)
    if name in PRESETS and PRESETS[name].path is not None:
        directory = Path(__file__).parent / str(PRESETS[name].path)
        if not (directory / WEIGHTS_NAME).is_file():
            raise ModelNotFoundError(
                f"the {name!r} model is missing from this installation of pixcolor ({directory})"
            )
        return directory
    if name in PRESETS and PRESETS[name].converted:
        if subfolder:
            raise ValueError(
                f"preset {name!r} is a single {PRESETS[name].format} file "
                f"({PRESETS[name].filename}); subfolder={subfolder!r} does not apply"
            )
        from pixcolor._conversion_cache import converted_dir

        return converted_dir(
            name,
            PRESETS[name],
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            rebuild=rebuild,
        )
    if name in PRESETS:
        preset = PRESETS[name]
        assert preset.repo_id is not None
        repo_id, revision = preset.repo_id, revision or preset.revision
        subfolder = subfolder or preset.subfolder
    else:
        repo_id = name
    from pixcolor._remote import download

    return download(repo_id, name, revision, subfolder, cache_dir, local_files_only, token)


def _read_config_of(cls: type, directory: Path) -> dict[str, Any]:
    """``directory``'s config, checked to describe a ``cls``."""
    config = _read_config(directory / CONFIG_NAME)
    class_name = config.get("_class_name")
    if class_name != cls.__name__:
        raise CheckpointError(
            f"{directory / CONFIG_NAME} holds a {class_name!r}, not a {cls.__name__!r}; "
            f"load it with pixcolor.{class_name}.from_pretrained"
            if class_name
            else f"{directory / CONFIG_NAME} has no '_class_name'; it was not written by pixcolor"
        )
    return config


def _build_and_load(cls: type[_M], config: Mapping[str, Any], directory: Path) -> _M:
    model = cls.from_config(config)
    state = _read_weights(directory / WEIGHTS_NAME)
    _check_state_dict(model, state, directory / WEIGHTS_NAME)
    model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
    return model


def _is_conversion(directory: Path) -> bool:
    from pixcolor._conversion_cache import is_conversion

    return is_conversion(directory)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err


def _check_state_dict(model: Any, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Raise one ``CheckpointError`` listing missing, unexpected and mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", mismatched),
    ):
        if items:
            shown = ", ".join(items[:5]) + (
                f", ... ({len(items)} in all)" if len(items) > 5 else ""
            )
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(
            f"{path} does not match the {type(model).__name__} described by its config.json; "
            + "; ".join(problems)
        )
