"""Colorize many files: folders, globs, mirrored output trees, resumable, never destructive.

:func:`colorize_files` is what ``pixcolor colorize`` runs: it expands the inputs, plans one
output per input under the output folder (mirroring each input folder's structure), skips
outputs that exist (so an interrupted run resumes), colorizes in batches, writes each
output atomically in the input's format (JPEG quality and ICC profile kept), and reports
the files that failed instead of stopping at the first. Videos (known by their extension or
their first bytes) go through :func:`pixcolor.video.colorize_video`, one at a time, after
the photos (a clip streams through its own pipeline of threads).

The three steps of a file are separate functions, :func:`decode_file`,
:func:`colorize_loaded` and :func:`encode_file`, so other engines can schedule them. Here
they overlap in a pipeline: a decoding thread reads ahead, the calling thread runs the
network and the full-resolution step on batches of whatever has been decoded, and an
encoding thread writes the results, in input order. Memory stays bounded: a photo is
decoded only while fewer than :data:`MAX_IN_FLIGHT_PIXELS` pixels (and ``2 * batch_size
+ 2`` photos) are decoded and not yet written, so at most that plus one photo is held.
Pillow releases the GIL while it decodes and encodes, numpy and torch while they compute,
so the threads share the cores.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pixcolor import _storage
from pixcolor._report import ReportLog
from pixcolor._storage import Location, RemotePath
from pixcolor._video_io import VIDEO_EXTENSIONS, is_video_file
from pixcolor.data import IMAGE_EXTENSIONS
from pixcolor.errors import NoImagesError
from pixcolor.hints import HintSet
from pixcolor.images import LoadedImage

__all__ = [
    "MAX_IN_FLIGHT_PIXELS", "BatchReport", "colorize_batch", "colorize_files", "colorize_loaded",
    "decode_file", "encode_file", "plan_outputs",
]  # fmt: skip

logger = logging.getLogger(__name__)

# Extensions colorize reads besides the training ones (Pillow decodes them too).
_EXTRA_EXTENSIONS = (".gif", ".jfif", ".jp2")
MAX_IN_FLIGHT_PIXELS = 32 << 20
"""Pixels decoded and not yet written at most (one larger photo is still taken alone)."""
_END = object()
# video_options that check_video_options checks once for a whole run.
_VIDEO_CHECKED = ("temporal", "crf", "preset", "codec")


@dataclass
class BatchReport:
    """What :func:`colorize_files` did: ``written``, ``skipped`` (output existed) and
    ``failed`` (input path -> reason); ``hints_not_applied``: the skipped outputs whose
    input was given hints, which were therefore not applied (``overwrite`` applies them)."""

    written: list[Location] = field(default_factory=list)
    skipped: list[Location] = field(default_factory=list)
    failed: dict[Location, str] = field(default_factory=dict)
    hints_not_applied: list[Location] = field(default_factory=list)

    def summary(self) -> str:
        """One line per outcome, e.g. ``"3 written, 1 skipped (exists), 1 failed"``."""
        parts = [f"{len(self.written)} written", f"{len(self.skipped)} skipped (output exists)"]
        parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def plan_outputs(
    inputs: Sequence[str | os.PathLike[str] | RemotePath],
    output: str | os.PathLike[str] | RemotePath,
    recursive: bool = False,
    *,
    also_inputs: Mapping[str, Any] | None = None,
) -> list[tuple[Location, Location]]:
    """Pair every input image or video with its output path.

    A file ``a/b.jpg`` goes to ``OUTPUT/b.jpg``; a folder ``a`` puts ``a/x/c.png`` at
    ``OUTPUT/a/x/c.png`` (subfolders only with ``recursive``); a glob pattern is expanded.
    Folders and globs take images by extension and videos by extension or content (local
    files; by extension on remote storage); a video whose name has no video extension gets
    ``.mp4`` added. Inputs and output may be fsspec URIs (``s3://bucket/photos``): they are
    planned as :class:`~pixcolor._storage.RemotePath`; ``file://`` URIs are local paths.

    Args:
        inputs: Files, folders and glob patterns.
        output: The output folder.
        recursive: Descend into subfolders (and ``**`` in globs).
        also_inputs: Other files the run reads, by what they are, e.g. ``{"hint image":
            "strokes.png"}``: no output may replace them either (entries that are not
            paths, such as an image in memory or ``None``, are ignored).

    Raises:
        FileNotFoundError: If an input does not exist.
        NoImagesError: If a folder or glob holds no image or video.
        ValueError: If an output would overwrite an input (or a file of ``also_inputs``),
            or two inputs map to one output.
    """
    out_root = _storage.location(output)
    pairs: list[tuple[Location, Location]] = []
    for raw in inputs:
        path = _storage.location(raw)
        if path.is_dir():
            found = sorted(p for p in _storage.files_in(path, recursive) if _is_input(p))
            if not found:
                below = not recursive and any(
                    _is_input(p) for p in _storage.files_in(path, recursive=True)
                )
                hint = "; its subfolders do: pass --recursive (recursive=True)" if below else ""
                raise NoImagesError(
                    f"folder {str(raw)!r} holds no image or video{hint}{'' if below else _KNOWN}"
                )
            pairs += [
                (p, _output(out_root / path.resolve().name / p.relative_to(path), p))  # type: ignore[operator]
                for p in found
            ]
        elif path.exists():
            pairs.append((path, _output(out_root / path.name, path)))
        elif _storage.has_magic(str(raw)):
            files = _storage.glob_files(str(raw), recursive)
            if not files:
                raise FileNotFoundError(f"no file matches {str(raw)!r}")
            matches = sorted(p for p in files if _is_input(p))
            if not matches:
                raise NoImagesError(f"no image or video matches {str(raw)!r}{_KNOWN}")
            pairs += [(p, _output(out_root / p.name, p)) for p in matches]
        else:
            raise FileNotFoundError(f"input {str(raw)!r} does not exist")
    sources = {src.resolve() for src, _ in pairs}
    seen: dict[Location, Location] = {}  # resolved output -> its input
    outputs: dict[Location, Location] = {}  # resolved output -> as planned
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
        outputs[target] = dst
    for what, path in (also_inputs or {}).items():
        if isinstance(path, (str, os.PathLike, RemotePath)):
            dst = outputs.get(_storage.location(path).resolve())
            if dst is not None:
                raise ValueError(
                    f"output {str(dst)!r} would overwrite the {what} {str(path)!r}; "
                    "choose another -o folder"
                )
    return pairs


# After an interrupt, how long the file being written may take to finish (seconds).
_STOP_WAIT = 30.0


def colorize_files(
    colorizer: Any,
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
    video_options: dict[str, object] | None = None,
    hints: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    hint_image: Any = None,
    hints_source: str | os.PathLike[str] | None = None,
) -> BatchReport:
    """Colorize every input image and video into ``output``; see the module docstring.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        inputs: Files, folders and glob patterns (local, or fsspec URIs).
        output: Output folder (created; local, or an fsspec URI).
        recursive: Descend into subfolders of folder inputs (and ``**`` in globs).
        overwrite: Replace existing outputs instead of skipping them (inputs are never
            overwritten).
        render_size: Resolution the network sees (``None``: the model's own).
        saturation: Chroma factor (0 gray, 1 model, > 1 more vivid).
        batch_size: Images per network forward at most (frames, for videos).
        progress: Show a tqdm bar (with photos per second; frames per second for videos).
        report_path: Where to write a JSON Lines report of every file (local or URI;
            ``None``: none), one line per file as it is done: ``{"input", "output",
            "status", "reason"}`` with status ``written``, ``skipped`` or ``failed``.
        video_options: More keyword arguments of :func:`pixcolor.video.colorize_video`
            for videos (``temporal``, ``codec``, ``crf``, ``preset``).
        hints: Colour hints (see :mod:`pixcolor.hints`): a list of hints when the inputs
            are one image, or a mapping from file name (or path) to a list, for several.
        hint_image: An RGBA image of painted hints (path or image); one input only.
        hints_source: The file ``hints`` were read from, named in messages about them
            (``pixcolor colorize`` passes its ``--hints`` file).

    Returns:
        A :class:`BatchReport`.

    Raises:
        ImportError: If there are videos and PyAV (the ``video`` extra) is missing.
        VideoError: If there are videos and ``video_options`` names a codec this FFmpeg
            does not have.
        ValueError: If ``render_size``, ``saturation`` or ``batch_size`` is out of range,
            a list of hints or a hint image is given for several inputs, a mapping
            names a file that is not among the inputs or matches several, or an output
            would overwrite an input or the hint image.
    """
    check = getattr(colorizer, "_check_options", None)
    if check is not None:  # one clear error before any file, not one per file
        check(render_size, saturation, batch_size)
    report = BatchReport()
    per_file: dict[Location, tuple[Any, Any]] = {}
    labels: dict[Location, str] = {}  # input -> what its hints are called in messages
    planned: list[tuple[Location, Location]] = []
    if hints is not None or hint_image is not None:
        planned = plan_outputs(
            inputs, output, recursive=recursive, also_inputs={"hint image": hint_image}
        )
        sources = [src for src, _ in planned]
        source = None if hints_source is None else os.fspath(hints_source)
        per_file, labels = _hints_per_file(sources, hints, hint_image, source)
    with ReportLog(report_path) as log:
        pending = _plan_pending(inputs, output, recursive, overwrite, report, log)
        if per_file:
            hinted = {dst for src, dst in planned if src in per_file}
            report.hints_not_applied = [dst for dst in report.skipped if dst in hinted]
        todo = [(src, dst) for src, dst in pending if not _is_video(src)]
        videos = [(src, dst) for src, dst in pending if _is_video(src)]
        if videos:
            from pixcolor.video import check_video_options

            # one clear error before any work (PyAV missing, a bad encoder option)
            options = video_options or {}
            check_video_options(**{k: options[k] for k in _VIDEO_CHECKED if k in options})
        bar = tqdm(
            total=len(todo), desc="colorize", unit="photo", disable=not progress or not todo,
            dynamic_ncols=True,
        )  # fmt: skip
        pipeline = _Pipeline(todo, 2 * batch_size + 2, overwrite, report, bar, log)
        try:
            for batch in pipeline.batches(batch_size):
                decoded = [(src, item) for src, _, item in batch if isinstance(item, LoadedImage)]
                refused = _misplaced_hints(decoded, per_file, labels)
                decoded = [(src, item) for src, item in decoded if src not in refused]
                loaded = [item for _, item in decoded]
                hint_kwargs: dict[str, Any] = {}
                if per_file:
                    given = [per_file.get(src, (None, None)) for src, _ in decoded]
                    hint_kwargs["hints"] = [these for these, _ in given]
                    hint_kwargs["hint_image"] = [image for _, image in given]
                outputs = iter(
                    colorize_loaded(colorizer, loaded, render_size, saturation, **hint_kwargs)
                )
                for src, dst, item in batch:
                    if src in refused:
                        result: Any = refused[src]
                    else:
                        result = next(outputs) if isinstance(item, LoadedImage) else None
                    pipeline.encode(src, dst, item, result)
                del batch, decoded, loaded, outputs, item, result  # the encoder's alone now
            pipeline.finish()
        except BaseException:
            # Interrupted or failed: let the file being written be finished before
            # unwinding, so that the process's exit does not cut it off, half-written, as a
            # temporary file; one still unfinished after the wait is removed (its write
            # then fails and leaves nothing).
            pipeline.stop()
            pipeline.wait(_STOP_WAIT)
            _storage.remove_temporaries(dst for _, dst in todo)
            raise
        finally:
            pipeline.stop()
        bar.close()
        for src, dst in videos:
            video_kwargs = {
                "render_size": render_size, "saturation": saturation, "batch_size": batch_size,
                "overwrite": overwrite, "progress": progress, **(video_options or {}),
            }  # fmt: skip
            reason = _colorize_video(colorizer, src, dst, per_file.get(src), video_kwargs)
            if reason is None:
                report.written.append(dst)
            else:
                report.failed[src] = reason
            log.write(src, dst, "failed" if reason else "written", reason)
    return report


def decode_file(path: str | os.PathLike[str] | RemotePath) -> LoadedImage:
    """Step 1 of a file: read and decode it (:func:`pixcolor.images.load_image`; a local
    path or an fsspec URI).

    Raises:
        ImageError: If it is not a readable image.
    """
    return _storage.read_image(_storage.location(path))


def colorize_loaded(
    colorizer: Any,
    loaded: Sequence[LoadedImage],
    render_size: int | None = None,
    saturation: float = 1.0,
    *,
    hints: Sequence[Any] | None = None,
    hint_image: Sequence[Any] | None = None,
) -> list[Any]:
    """Step 2: colorize decoded images in one batch; an image that fails is retried alone,
    so one bad image costs only its own result.

    Args:
        colorizer: A :class:`pixcolor.Colorizer`.
        loaded: The decoded images.
        render_size: Resolution the network sees (``None``: the model's own).
        saturation: Chroma factor.
        hints: One entry per image: its colour hints, or ``None`` for none.
        hint_image: One entry per image: its RGBA hint image, or ``None`` for none.

    Returns:
        One entry per image: its output (a PIL image for files), or the exception that
        colorizing it raised.
    """
    if not loaded:
        return []
    kwargs: dict[str, Any] = {"render_size": render_size, "saturation": saturation}
    per_image: list[dict[str, Any]] = [{} for _ in loaded]
    if hints is not None:
        kwargs["hints"] = list(hints)
        for one, these in zip(per_image, hints, strict=True):
            one["hints"] = these
    if hint_image is not None:
        kwargs["hint_image"] = list(hint_image)
        for one, image in zip(per_image, hint_image, strict=True):
            one["hint_image"] = image
    try:
        return list(colorizer.colorize(list(loaded), batch_size=len(loaded), **kwargs))
    except Exception:  # find the image at fault: colorize them one by one
        outputs: list[Any] = []
        for item, one in zip(loaded, per_image, strict=True):
            try:
                one.update(render_size=render_size, saturation=saturation)
                outputs.append(colorizer.colorize(item, **one))
            except Exception as err:
                outputs.append(err)
        return outputs


def encode_file(image: Any, path: Location, like: LoadedImage, overwrite: bool = False) -> Location:
    """Step 3: write ``image`` to ``path`` (a local path or an fsspec location) atomically in
    the format and with the metadata of its source ``like``
    (:func:`pixcolor.images.save_image`), creating folders.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is false.
    """
    _storage.write_image(image, path, like=like, overwrite=overwrite)
    return path


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
            loaded.append((index, decode_file(src)))
        except Exception as err:  # one bad file never stops the run
            errors[index] = str(err)
    hint_kwargs: dict[str, Any] = {}
    if hints:
        given = [hints.get(pairs[index][0], (None, None)) for index, _ in loaded]
        hint_kwargs["hints"] = [these for these, _ in given]
        hint_kwargs["hint_image"] = [image for _, image in given]
    items = [item for _, item in loaded]
    outputs = colorize_loaded(colorizer, items, render_size, saturation, **hint_kwargs)
    for (index, item), image in zip(loaded, outputs, strict=True):
        if isinstance(image, BaseException):
            errors[index] = str(image)
            continue
        dst = pairs[index][1]
        try:
            encode_file(image, dst, item, overwrite)
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
    sources: list[Location], hints: Any, hint_image: Any, source: str | None = None
) -> tuple[dict[Location, tuple[Any, Any]], dict[Location, str]]:
    """``{input: (hints, hint_image)}`` for the inputs that have any, and ``{input:
    label}``: what their hints are called in messages, where that is more than
    ``hints[i]`` (``hints file 'h.json': 'photo.jpg': ``)."""
    if hints is None and hint_image is None:
        return {}, {}
    several = len(sources) != 1
    if hint_image is not None and several:
        raise ValueError(
            f"a hint image belongs to one input image, but the inputs hold {len(sources)} images"
        )
    prefix = "" if source is None else f"hints file {source!r}: "
    if hints is None or not isinstance(hints, Mapping):
        if several:
            raise ValueError(
                f"{prefix}a list of hints belongs to one image, but the inputs hold "
                f"{len(sources)} images; give a mapping from file name to hints: "
                '{"photo.jpg": [...], ...}'
            )
        if not sources:
            return {}, {}
        return {sources[0]: (hints, hint_image)}, ({sources[0]: prefix} if prefix else {})
    out: dict[Location, tuple[Any, Any]] = {}
    labels: dict[Location, str] = {}
    resolved = {src.resolve(): src for src in sources}
    name = "the hints name" if source is None else f"hints file {source!r} names"
    for key, these in hints.items():
        found = [resolved[p] for p in (Path(key).resolve(),) if p in resolved]
        if not found:  # a bare file name
            found = [src for src in sources if src.name == key]
        if not found:
            inputs = ", ".join(repr(str(p)) for p in sources[:3])
            if len(sources) > 3:
                inputs += f", ... ({len(sources)} in all)"
            raise ValueError(f"{name} {key!r}, which is not among the input images ({inputs})")
        if len(found) > 1:
            names = ", ".join(repr(str(p)) for p in found)
            raise ValueError(
                f"{name} {key!r}, which matches several inputs ({names}); use its path"
            )
        out[found[0]] = (these, hint_image)
        labels[found[0]] = f"{prefix}{key!r}: "
    return out, labels


def _misplaced_hints(
    decoded: list[tuple[Location, LoadedImage]],
    per_file: Mapping[Location, tuple[Any, Any]],
    labels: Mapping[Location, str],
) -> dict[Location, ValueError]:
    """The decoded inputs whose point hints lie outside them (or are malformed), each with
    the error that names where the hints came from (the colorizer would say ``hints[0]``)."""
    refused: dict[Location, ValueError] = {}
    for src, item in decoded:
        if src in labels:
            try:
                HintSet.build(item.size, per_file[src][0], None, labels[src])
            except ValueError as err:
                refused[src] = err
    return refused


_KNOWN = f" (images: {', '.join(IMAGE_EXTENSIONS)}; videos: {', '.join(VIDEO_EXTENSIONS)})"


def _is_input(path: Location) -> bool:
    """An image by its extension, or a video by its extension or first bytes."""
    return path.suffix.lower() in IMAGE_EXTENSIONS + _EXTRA_EXTENSIONS or _is_video(path)


def _is_video(path: Location) -> bool:
    """A video by its extension, or (a local file) by its first bytes."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS + _EXTRA_EXTENSIONS:
        return False
    if isinstance(path, RemotePath):
        return suffix in VIDEO_EXTENSIONS
    return is_video_file(path)


def _output(dst: Location, src: Location) -> Location:
    """A video found by its content gets a video extension."""
    if dst.suffix.lower() in VIDEO_EXTENSIONS or not _is_video(src):
        return dst
    return dst.parent / (dst.name + ".mp4")


def _colorize_video(
    colorizer: Any,
    src: Location,
    dst: Location,
    given: tuple[Any, Any] | None,
    kwargs: dict[str, Any],
) -> str | None:
    """One video through :meth:`pixcolor.Colorizer.colorize_video`: ``None`` when written,
    else why it failed."""
    these, painted = given if given is not None else (None, None)
    try:
        if isinstance(src, RemotePath) or isinstance(dst, RemotePath):
            raise ValueError(
                f"videos are read and written as local files; {str(src)!r} -> {str(dst)!r} "
                "is on remote storage (copy it to a local folder first)"
            )
        if painted is not None:
            raise ValueError("a hint image is for photos; give a video's hints as a list")
        colorizer.colorize_video(src, dst, hints=these, **kwargs)
    except Exception as err:  # one bad file never stops the run
        return str(err)
    return None


class _Pipeline:
    """A decoding thread ahead of the caller, an encoding thread behind it, and the
    bound on what is in flight between them (see the module docstring)."""

    def __init__(
        self,
        todo: list[tuple[Location, Location]],
        max_photos: int,
        overwrite: bool,
        report: BatchReport,
        bar: Any,
        log: ReportLog,
    ) -> None:
        self._todo, self._max_photos, self._overwrite = todo, max_photos, overwrite
        self._report, self._bar, self._log = report, bar, log
        self._decoded: queue.Queue[Any] = queue.Queue()
        self._encoded: queue.Queue[Any] = queue.Queue()
        self._room = threading.Condition()
        self._photos = self._pixels = 0
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._guard, args=(self._decode,), daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def batches(self, size: int) -> Iterator[list[tuple[Path, Path, Any]]]:
        """Batches of up to ``size`` decoded files ``(src, dst, LoadedImage or reason)``:
        the first waited for, the rest whatever is ready (waiting for a full batch could
        wait for memory that only this batch's encoding frees)."""
        while True:
            first = self._decoded.get()
            if first is _END:
                return
            batch, done = [first], False
            while len(batch) < size and not done:
                try:
                    item = self._decoded.get_nowait()
                except queue.Empty:
                    break
                done = item is _END
                if not done:
                    batch.append(item)
            yield batch
            if done:
                return

    def encode(self, src: Path, dst: Path, item: Any, result: Any) -> None:
        self._encoded.put((src, dst, item, result))

    def finish(self) -> None:
        """Wait until everything is written; re-raise what a thread raised."""
        self._encoded.put(_END)
        self._threads[1].join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stopped.set()
        self._encoded.put(_END)  # wakes an encoder waiting for work
        with self._room:
            self._room.notify_all()

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the encoder to end (after :meth:`stop`, once
        the file it is writing is written)."""
        self._threads[1].join(timeout)

    def _guard(self, body: Any) -> None:
        try:
            body()
        except BaseException as err:  # re-raised by finish()
            self._error = err
            self.stop()
        finally:
            if body == self._decode:
                self._decoded.put(_END)

    def _decode(self) -> None:
        for src, dst in self._todo:
            with self._room:
                while (
                    not self._stopped.is_set()
                    and self._photos
                    and (self._photos >= self._max_photos or self._pixels >= MAX_IN_FLIGHT_PIXELS)
                ):
                    self._room.wait()
                if self._stopped.is_set():
                    return
            try:
                item: Any = decode_file(src)
                pixels = item.size[0] * item.size[1]
            except Exception as err:  # one bad file never stops the run
                item, pixels = str(err), 0
            with self._room:
                self._photos += 1
                self._pixels += pixels
            self._decoded.put((src, dst, item))
            del item

    def _encode(self) -> None:
        report = self._report
        while not self._stopped.is_set():
            entry = self._encoded.get()
            if entry is _END:
                return
            src, dst, item, result = entry
            del entry
            if not isinstance(item, LoadedImage):
                report.failed[src] = item
            elif isinstance(result, BaseException):
                report.failed[src] = str(result)
            else:
                try:
                    encode_file(result, dst, item, self._overwrite)
                    report.written.append(dst)
                except Exception as err:
                    report.failed[src] = f"cannot write {dst}: {err}"
            reason = report.failed.get(src)
            self._log.write(src, dst, "failed" if reason else "written", reason)
            pixels = item.size[0] * item.size[1] if isinstance(item, LoadedImage) else 0
            del item, result
            with self._room:
                self._photos -= 1
                self._pixels -= pixels
                self._room.notify_all()
            self._bar.update(1)
