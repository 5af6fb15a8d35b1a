"""Colorize many files: folders, globs, mirrored output trees, resumable, never destructive.

:func:`colorize_files` is what ``pixcolor colorize`` runs: it expands the inputs, plans one
output per input under the output folder (mirroring each input folder's structure), skips
outputs that exist (so an interrupted run resumes), colorizes in batches, writes each
output atomically in the input's format (JPEG quality and ICC profile kept), and reports
the files that failed instead of stopping at the first.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pixcolor import images
from pixcolor.data import IMAGE_EXTENSIONS

__all__ = ["BatchReport", "colorize_files", "plan_outputs"]

logger = logging.getLogger(__name__)

# Extensions colorize reads besides the training ones (Pillow decodes them too).
_EXTRA_EXTENSIONS = (".gif", ".jfif", ".jp2")


@dataclass
class BatchReport:
    """What :func:`colorize_files` did: ``written``, ``skipped`` (output existed) and
    ``failed`` (input path -> reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per outcome, e.g. ``"3 written, 1 skipped (exists), 1 failed"``."""
        parts = [f"{len(self.written)} written", f"{len(self.skipped)} skipped (output exists)"]
        parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def plan_outputs(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    recursive: bool = False,
) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path.

    A file ``a/b.jpg`` goes to ``OUTPUT/b.jpg``; a folder ``a`` puts ``a/x/c.png`` at
    ``OUTPUT/a/x/c.png`` (subfolders only with ``recursive``); a glob pattern is expanded.

    Raises:
        FileNotFoundError: If an input matches nothing.
        ValueError: If an output would overwrite an input, or two inputs map to one output.
    """
    out_root = Path(output)
    pairs: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if p.is_file() and _is_image_name(p))
            pairs += [(p, out_root / path.resolve().name / p.relative_to(path)) for p in found]
        elif path.exists():
            pairs.append((path, out_root / path.name))
        elif glob.has_magic(str(raw)):
            matches = sorted(
                Path(p) for p in glob.glob(str(raw), recursive=recursive) if Path(p).is_file()
            )
            if not matches:
                raise FileNotFoundError(f"no file matches {str(raw)!r}")
            pairs += [(p, out_root / p.name) for p in matches]
        else:
            raise FileNotFoundError(f"input {str(raw)!r} does not exist")
    sources = {src.resolve() for src, _ in pairs}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        target = dst.resolve()
        if target in sources:
            raise ValueError(
                f"output {str(dst)!r} would overwrite the input {str(src)!r}; choose another -o folder"
            )
        if target in seen:
            raise ValueError(
                f"{str(src)!r} and {str(seen[target])!r} would both be written to {str(dst)!r}"
            )
        seen[target] = src
    return pairs


def colorize_files(
    colorizer: object,
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    recursive: bool = False,
    overwrite: bool = False,
    render_size: int | None = None,
    saturation: float = 1.0,
    batch_size: int = 4,
    progress: bool = True,
    hints: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    hint_image: Any = None,
) -> BatchReport:
    """Colorize every input image into ``output``; see the module docstring.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        inputs: Files, folders and glob patterns.
        output: Output folder (created).
        recursive: Descend into subfolders of folder inputs (and ``**`` in globs).
        overwrite: Replace existing outputs instead of skipping them (inputs are never
            overwritten).
        render_size: Resolution the network sees (``None``: the model's own).
        saturation: Chroma factor (0 gray, 1 model, > 1 more vivid).
        batch_size: Images per network forward.
        progress: Show a tqdm bar.
        hints: Colour hints (see :mod:`pixcolor.hints`): a list of hints when the inputs
            are one image, or a mapping from file name (or path) to a list, for several.
        hint_image: An RGBA image of painted hints (path or image); one input only.

    Returns:
        A :class:`BatchReport`.

    Raises:
        ValueError: If a list of hints or a hint image is given for several inputs, or a
            mapping names a file that is not among the inputs or matches several.
    """
    report = BatchReport()
    todo = []
    pairs = plan_outputs(inputs, output, recursive=recursive)
    per_file = _hints_per_file([src for src, _ in pairs], hints, hint_image)
    for src, dst in pairs:
        if dst.exists() and not overwrite:
            report.skipped.append(dst)
        else:
            todo.append((src, dst))
    bar = tqdm(
        total=len(todo), desc="colorize", unit="image", disable=not progress, dynamic_ncols=True
    )
    for start in range(0, len(todo), batch_size):
        loaded = []
        for src, dst in todo[start : start + batch_size]:
            try:
                loaded.append((src, dst, images.load_image(src)))
            except Exception as err:  # one bad file never stops the run
                report.failed[src] = str(err)
                bar.update(1)
        if not loaded:
            continue
        kwargs: dict[str, Any] = {"render_size": render_size, "saturation": saturation}
        if per_file:
            kwargs["hints"] = [per_file.get(src, (None, None))[0] for src, _, _ in loaded]
            kwargs["hint_image"] = [per_file.get(src, (None, None))[1] for src, _, _ in loaded]
        try:
            outs = colorizer.colorize([item for _, _, item in loaded], **kwargs)  # type: ignore[attr-defined]
        except Exception:  # find the image at fault: colorize them one by one
            outs = []
            for src, _, item in loaded:
                one = dict(kwargs)
                if per_file:
                    one["hints"], one["hint_image"] = per_file.get(src, (None, None))
                try:
                    outs.append(colorizer.colorize(item, **one))  # type: ignore[attr-defined]
                except Exception as err:
                    report.failed[src] = str(err)
                    outs.append(None)
        for (src, dst, item), image in zip(loaded, outs, strict=True):
            bar.update(1)
            if image is None:
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                images.save_image(image, dst, like=item, overwrite=overwrite)
                report.written.append(dst)
            except Exception as err:
                report.failed[src] = f"cannot write {dst}: {err}"
    bar.close()
    return report


def _hints_per_file(
    sources: list[Path], hints: Any, hint_image: Any
) -> dict[Path, tuple[Any, Any]]:
    """``{input: (hints, hint_image)}`` for the inputs that have any."""
    if hints is None and hint_image is None:
        return {}
    several = len(sources) != 1
    if hint_image is not None and several:
        raise ValueError(
            f"a hint image belongs to one input image, but the inputs hold {len(sources)} images"
        )
    if hints is None or not isinstance(hints, Mapping):
        if several:
            raise ValueError(
                f"a list of hints belongs to one image, but the inputs hold {len(sources)} "
                'images; give a mapping from file name to hints: {"photo.jpg": [...], ...}'
            )
        return {sources[0]: (hints, hint_image)} if sources else {}
    out: dict[Path, tuple[Any, Any]] = {}
    resolved = {src.resolve(): src for src in sources}
    for key, these in hints.items():
        found = [resolved[p] for p in (Path(key).resolve(),) if p in resolved]
        if not found:  # a bare file name
            found = [src for src in sources if src.name == key]
        if not found:
            raise ValueError(f"the hints name {key!r}, which is not among the input images")
        if len(found) > 1:
            names = ", ".join(repr(str(p)) for p in found)
            raise ValueError(
                f"the hints name {key!r}, which matches several inputs ({names}); use its path"
            )
        out[found[0]] = (these, hint_image)
    return out


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS + _EXTRA_EXTENSIONS
