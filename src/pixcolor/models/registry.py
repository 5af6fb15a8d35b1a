"""The generator classes a saved model can hold, and loading one without naming its class."""

from __future__ import annotations

import os
from typing import Any

from pixcolor.errors import CheckpointError
from pixcolor.hub import CONFIG_NAME, _read_config, resolve_model_dir
from pixcolor.models.deoldify import DeOldifyGenerator
from pixcolor.models.unet import UNetGenerator

__all__ = ["GENERATORS", "Generator", "load_generator"]

Generator = UNetGenerator | DeOldifyGenerator
"""What :class:`pixcolor.Colorizer` runs."""

GENERATORS: dict[str, type[UNetGenerator] | type[DeOldifyGenerator]] = {
    "UNetGenerator": UNetGenerator,
    "DeOldifyGenerator": DeOldifyGenerator,
}
"""``_class_name`` in ``config.json`` -> generator class."""


def load_generator(name_or_path: str | os.PathLike[str], **hub_kwargs: Any) -> Generator:
    """Load a saved generator of whichever class its ``config.json`` names.

    Args:
        name_or_path: A local directory, a preset name or a Hub repo id.
        **hub_kwargs: ``revision``, ``subfolder``, ``cache_dir``, ``local_files_only``,
            ``token``, ``map_location``: as for ``from_pretrained``.

    Returns:
        The generator (a :class:`~pixcolor.UNetGenerator` or
        :class:`~pixcolor.DeOldifyGenerator`), in eval mode.

    Raises:
        ModelNotFoundError: If the model cannot be found.
        CheckpointError: If ``config.json`` names no generator class.
    """
    lookup = {k: v for k, v in hub_kwargs.items() if k != "map_location"}
    directory = resolve_model_dir(name_or_path, **lookup)
    class_name = _read_config(directory / CONFIG_NAME).get("_class_name")
    cls = GENERATORS.get(str(class_name))
    if cls is None:
        raise CheckpointError(
            f"{directory / CONFIG_NAME} holds a {class_name!r}, not a generator "
            f"({', '.join(GENERATORS)})"
        )
    return cls.from_pretrained(name_or_path, **hub_kwargs)
