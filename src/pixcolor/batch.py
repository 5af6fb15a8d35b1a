"""Colorize many files: folders, globs, mirrored output trees, resumable, never destructive.

:func:`colorize_files` is what ``pixcolor colorize`` runs: it expands the inputs, plans one
output per input under the output folder (mirroring each input folder's structure), skips
outputs that exist (so an interrupted run resumes), colorizes in batches, writes each
output atomically in the input's format (JPEG quality and ICC profile kept), and reports
the files that failed instead of stopping at the first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pixcolor import _storage
from pixcolor._report import ReportLog
from pixcolor._storage import Location, RemotePath
from pixcolor.data import IMAGE_EXTENSIONS
from pixcolor.images import LoadedImage

__all__ = ["BatchReport", "colorize_batch", "colorize_files", "plan_outputs"]

logger = logging.getLogger(__name__)

# Extensions colorize reads besides the training ones (Pillow decodes them too).
_EXTRA_EXTENSIONS = (".gif", ".jfif", ".jp2")


@dataclass
class BatchReport:
    """What :func:`colorize_files` did: ``written``, ``skipped`` (output existed) and
    ``failed`` (input path -> reason)."""

    written: list[Location] = field(default_factory=list)
    skipped: list[Location] = field(default_factory=list)
    failed: dict[Location, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per outcome, e.g. ``"3 written, 1 skipped (exists), 1 failed"``."""
        parts = [f"{len(self.written)} written", f"{len(self.skipped)} skipped (output exists)"]
        parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def plan_outputs(
    inputs: Sequence[str | os.PathLike[str] | RemotePath],
    output: str | os.PathLike[str] | RemotePath,
    recursive: bool = False,
) -> list[tuple[Location, Location]]:
    """Pair every input image with its output path.

    A file ``a/b.jpg`` goes to ``OUTPUT/b.jpg``; a folder ``a`` puts ``a/x/c.png`` at
    ``OUTPUT/a/x/c.png`` (subfolders only with ``recursive``); a glob pattern is expanded.
    Inputs and output may be fsspec URIs (``s3://bucket/photos``): they are planned as
    :class:`~pixcolor._storage.RemotePath`; ``file://`` URIs are local paths.

    Raises:
        FileNotFoundError: If an input matches nothing.
        ValueError: If an output would overwrite an input, or two inputs map to one output.
    """
    out_root = _storage.location(output)
    pairs: list[tuple[Location, Location]] = []
    for raw in inputs:
        path = _storage.location(raw)
        if path.is_dir():
            found = sorted(p for p in _storage.files_in(path, recursive) if _is_image_name(p))
            pairs += [(p, out_root / path.resolve().name / p.relative_to(path)) for p in found]  # type: ignore[arg-type]
        elif path.exists():
            pairs.append((path, out_root / path.name))
        elif _storage.has_magic(str(raw)):
            matches = _storage.glob_files(str(raw), recursive)
            if not matches:
                raise FileNotFoundError(f"no file matches {str(raw)!r}")
            pairs += [(p, out_root / p.name) for p in matches]
        else:
            raise FileNotFoundError(f"input {str(raw)!r} does not exist")
    sources = {src.resolve() for src, _ in pairs}
    seen: dict[Location, Location] = {}
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
    inputs: Sequence[str | os.PathLike[str] | RemotePath],
    output: str | os.PathLike[str] | RemotePath,
    *,
    recursive: bool = False,
    overwrite: bool = False,
    render_size: int | None = None,
    saturation: float = 1.0,
    batch_size: int = 4,
    progress: bool = True,
    report_path: str | os.PathLike[str] | RemotePath | None = None,
    hints: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    hint_image: Any = None,
) -> BatchReport:
    """Colorize every input image into ``output``; see the module docstring.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        inputs: Files, folders and glob patterns (local, or fsspec URIs).
        output: Output folder (created; local, or an fsspec URI).
        recursive: Descend into subfolders of folder inputs (and ``**`` in globs).
        overwrite: Replace existing outputs instead of skipping them (inputs are never
            overwritten).
        render_size: Resolution the network sees (``None``: the model's own).
        saturation: Chroma factor (0 gray, 1 model, > 1 more vivid).
        batch_size: Images per network forward.
        progress: Show a tqdm bar.
        report_path: Where to write a JSON Lines report of every file (local or URI;
            ``None``: none), one line per file as it is done: ``{"input", "output",
            "status", "reason"}`` with status ``written``, ``skipped`` or ``failed``.
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
    per_file: dict[Location, tuple[Any, Any]] = {}
    if hints is not None or hint_image is not None:
        sources = [src for src, _ in plan_outputs(inputs, output, recursive=recursive)]
        per_file = _hints_per_file(sources, hints, hint_image)
    with ReportLog(report_path) as log:
        todo = _plan_pending(inputs, output, recursive, overwrite, report, log)
        bar = tqdm(
            total=len(todo), desc="colorize", unit="image", disable=not progress, dynamic_ncols=True
        )
        for start in range(0, len(todo), batch_size):
            pairs = todo[start : start + batch_size]
            for (src, dst), error in zip(pairs, colorize_batch(colorizer, pairs, overwrite=overwrite,
                                         render_size=render_size, saturation=saturation,
                                         hints=per_file), strict=True):  # fmt: skip
                bar.update(1)
                if error is None:
                    report.written.append(dst)
                else:
                    report.failed[src] = error
                log.write(src, dst, "failed" if error else "written", error)
        bar.close()
    return report


def colorize_batch(
    colorizer: object,
    pairs: Sequence[tuple[Location, Location]],
    *,
    overwrite: bool = False,
    render_size: int | None = None,
    saturation: float = 1.0,
    hints: Mapping[Location, tuple[Any, Any]] | None = None,
) -> list[str | None]:
    """Decode, colorize (one network batch) and write ``(input, output)`` pairs: the step
    that every engine of :func:`colorize_files` runs, so that they write the same bytes.
    ``hints`` maps an input to its ``(hints, hint_image)``, if it has any.

    Returns:
        For each pair, ``None`` if its output was written, else why it failed (a bad file
        fails alone: the others are still written).
    """
    errors: list[str | None] = [None] * len(pairs)
    loaded: list[tuple[int, LoadedImage]] = []
    for index, (src, _) in enumerate(pairs):
        try:
            loaded.append((index, _storage.read_image(src)))
        except Exception as err:  # one bad file never stops the run
            errors[index] = str(err)
    if not loaded:
        return errors
    kwargs: dict[str, Any] = {"render_size": render_size, "saturation": saturation}
    if hints:
        given = [hints.get(pairs[index][0], (None, None)) for index, _ in loaded]
        kwargs["hints"], kwargs["hint_image"] = [h for h, _ in given], [i for _, i in given]
    try:
        outs = colorizer.colorize([item for _, item in loaded], **kwargs)  # type: ignore[attr-defined]
    except Exception:  # find the image at fault: colorize them one by one
        outs = []
        for index, item in loaded:
            one = dict(kwargs)
            if hints:
                one["hints"], one["hint_image"] = hints.get(pairs[index][0], (None, None))
            try:
                outs.append(colorizer.colorize(item, **one))  # type: ignore[attr-defined]
            except Exception as err:
                errors[index] = str(err)
                outs.append(None)
    for (index, item), image in zip(loaded, outs, strict=True):
        if image is None:
            continue
        dst = pairs[index][1]
        try:
            _storage.write_image(image, dst, like=item, overwrite=overwrite)
        except Exception as err:
            errors[index] = f"cannot write {dst}: {err}"
    return errors


def _plan_pending(
    inputs: Sequence[str | os.PathLike[str] | RemotePath],
    output: str | os.PathLike[str] | RemotePath,
    recursive: bool,
    overwrite: bool,
    report: BatchReport,
    log: ReportLog,
) -> list[tuple[Location, Location]]:
    """:func:`plan_outputs` less the outputs that exist (recorded as skipped), unless
    ``overwrite``: what every engine has to do."""
    todo = []
    for src, dst in plan_outputs(inputs, output, recursive=recursive):
        if _storage.output_exists(dst) and not overwrite:
            report.skipped.append(dst)
            log.write(src, dst, "skipped", "output exists")
        else:
            todo.append((src, dst))
    return todo


def _hints_per_file(
    sources: list[Location], hints: Any, hint_image: Any
) -> dict[Location, tuple[Any, Any]]:
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
    out: dict[Location, tuple[Any, Any]] = {}
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


def _is_image_name(path: Location) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS + _EXTRA_EXTENSIONS
