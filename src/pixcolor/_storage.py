"""Where ``pixcolor colorize`` reads photos and writes outputs: local paths or fsspec URIs.

A location is a :class:`~pathlib.Path` on the local file system or a :class:`RemotePath`,
any `fsspec <https://filesystem-spec.readthedocs.io>`_ URI (``s3://``, ``gs://``,
``abfs://``, ``hdfs://``, ``memory://``, ...; the protocol's package, such as ``s3fs``,
must be installed). ``file://`` URIs are local paths. Both engines of ``pixcolor
colorize`` plan, read and write through this module, so they behave alike everywhere:

* :func:`read_image` decodes a photo exactly as :func:`pixcolor.images.load_image` does
  with a path.
* :func:`write_image` writes what :func:`pixcolor.images.save_image` writes, atomically: a
  local file through a temporary file and a rename (or a hard link, which cannot clobber
  an output that appeared meanwhile); on object stores an object is uploaded whole in one
  request, and appears complete or not at all; on other remote file systems through a
  temporary file and a rename.
"""

from __future__ import annotations

import glob
import io
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from pixcolor import images
from pixcolor.errors import ImageError, ImageNotFoundError
from pixcolor.images import LoadedImage

# Protocols whose uploads are all-or-nothing (one PUT, or a committed multipart upload).
_OBJECT_STORES = frozenset(
    {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "r2", "memory"}
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*(::[^/]*)?://")


@dataclass(frozen=True, order=True)
class RemotePath:
    """A file or folder on an fsspec file system, named by its URI (``s3://bucket/a.jpg``).

    The few :class:`~pathlib.Path` operations that planning needs work on it: ``/``,
    ``name``, ``suffix``, ``parent``, ``exists``, ``is_dir``, ``is_file``,
    ``relative_to`` and ``resolve``. It pickles as its URI (the file system is opened
    again where it is used, with credentials from that machine's environment).

    Example:
        >>> photo = RemotePath("s3://archive/albums") / "1950/beach.jpg"
        >>> str(photo), photo.name, photo.suffix, str(photo.parent)
        ('s3://archive/albums/1950/beach.jpg', 'beach.jpg', '.jpg', 's3://archive/albums/1950')
    """

    uri: str

    def __post_init__(self) -> None:
        if not _URI.match(self.uri):
            raise ValueError(
                f"a remote path must be a URI such as s3://bucket/key, got {self.uri!r}"
            )
        root = self.uri.index("://") + 3
        if len(self.uri) > root and self.uri.endswith("/"):
            object.__setattr__(self, "uri", self.uri[:root] + self.uri[root:].rstrip("/"))

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, part: str | PurePath) -> RemotePath:
        tail = part.as_posix() if isinstance(part, PurePath) else str(part)
        return RemotePath(f"{self.uri}/{tail.strip('/')}")

    @property
    def name(self) -> str:
        """The last component."""
        return self.uri.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """The extension of :attr:`name`, with its dot (``""`` if none)."""
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> RemotePath:
        """The folder holding this path."""
        head = self.uri.rsplit("/", 1)[0]
        return RemotePath(head if "://" in head else self.uri)

    @property
    def fs(self) -> Any:
        """The fsspec file system (fsspec caches instances, so this is cheap)."""
        return _url_to_fs(self.uri)[0]

    @property
    def path(self) -> str:
        """The path on :attr:`fs` (the URI without its protocol)."""
        return _url_to_fs(self.uri)[1]

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def resolve(self) -> RemotePath:
        return self

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(PurePosixPath(other.path))


Location = Path | RemotePath
"""A local path or a :class:`RemotePath`."""


def location(value: str | os.PathLike[str] | RemotePath) -> Location:
    """A :class:`~pathlib.Path` for local paths and ``file://`` URIs, else a :class:`RemotePath`.

    Example:
        >>> local, remote = location("file:///tmp/photos"), location("gs://b/photos")
        >>> isinstance(local, Path), str(local), remote
        (True, '/tmp/photos', RemotePath(uri='gs://b/photos'))
    """
    if isinstance(value, (Path, RemotePath)):
        return value
    text = os.fspath(value)
    if not _URI.match(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme == "file" and "::" not in text:
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URIs must name a local path, got {text!r}")
        return Path(unquote(parts.path))
    return RemotePath(text)


def has_magic(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` is a glob pattern (``*``, ``?`` or ``[``)."""
    return glob.has_magic(os.fspath(value))


def files_in(folder: Location, recursive: bool) -> Iterator[Location]:
    """The files in ``folder`` (and its subfolders with ``recursive``), in no set order."""
    if isinstance(folder, RemotePath):
        fs, root = folder.fs, folder.path
        for path in fs.find(root, maxdepth=None if recursive else 1):
            yield folder / PurePosixPath(path).relative_to(PurePosixPath(root))
        return
    for path in folder.glob("**/*" if recursive else "*"):
        if path.is_file():
            yield path


def glob_files(pattern: str, recursive: bool) -> list[Location]:
    """The files matching a glob pattern, sorted (``**`` spans folders with ``recursive``)."""
    found = location(pattern)
    if isinstance(found, RemotePath):
        fs = found.fs
        matches = fs.glob(found.path, detail=True)  # fsspec's ``**`` always spans folders
        return sorted(
            RemotePath(fs.unstrip_protocol(path))
            for path, info in matches.items()
            if info.get("type") == "file"
        )
    return sorted(Path(p) for p in glob.glob(str(found), recursive=recursive) if Path(p).is_file())


def output_exists(target: Location) -> bool:
    """Whether an output exists (a folder counts: it would block the file)."""
    return target.exists()


def read_image(source: Location) -> LoadedImage:
    """Decode the photo at ``source`` as :func:`pixcolor.images.load_image` decodes a path.

    Raises:
        ImageNotFoundError: If it does not exist.
        ImageError: If it is not a readable image.
    """
    if isinstance(source, Path):
        return images.load_image(source)
    what = f"image file {source.uri!r}"
    try:
        data = source.fs.cat_file(source.path)
    except FileNotFoundError:
        raise ImageNotFoundError(f"{what} does not exist") from None
    except IsADirectoryError:
        raise ImageError(f"{source.uri!r} is a directory, not an image file") from None
    if not data:
        raise ImageError(f"{what} is empty (0 bytes)")
    with images._decoding(what), Image.open(io.BytesIO(data)) as img:
        return images._load_pil(img, "path")


def write_image(
    image: Image.Image, target: Location, *, like: LoadedImage | None, overwrite: bool
) -> None:
    """Write ``image`` at ``target`` the way :func:`pixcolor.images.save_image` does,
    atomically (see the module docstring), creating its folder.

    Raises:
        FileExistsError: If ``target`` exists and ``overwrite`` is false.
    """
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        images.save_image(image, target, like=like, overwrite=overwrite)
        return
    fs, path = target.fs, target.path
    if not overwrite and fs.exists(path):
        raise FileExistsError(f"{target.uri!r} exists; pass overwrite=True to replace it")
    data = images.encode_image(image, target.uri, like=like)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.makedirs(parent, exist_ok=True)
    if _protocol(fs) in _OBJECT_STORES:
        fs.pipe_file(path, data)
        return
    tmp = f"{parent}/.{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm_file(tmp)


def remove_temporaries(targets: Iterable[Location]) -> int:
    """Delete the temporary files that an interrupted :func:`write_image` may have left
    beside ``targets`` (a process killed mid-write cannot clean up after itself). One folder
    listing per folder; returns how many were removed. Run it only when no other process
    is writing these outputs."""
    by_folder: dict[Location, set[str]] = {}
    for target in targets:
        if isinstance(target, RemotePath) and _protocol(target.fs) in _OBJECT_STORES:
            continue  # written in one request, never through a temporary object
        by_folder.setdefault(target.parent, set()).add(target.name)
    removed = 0
    for folder, names in by_folder.items():
        for entry in _list_names(folder):
            if entry.startswith(".") and entry.endswith(".tmp"):
                stem = entry[1:].rsplit(".", 2)[0]  # ".NAME.RANDOM.tmp"
                if stem in names:
                    _remove(folder / entry)
                    removed += 1
    return removed


def _list_names(folder: Location) -> list[str]:
    try:
        if isinstance(folder, Path):
            return os.listdir(folder)
        return [PurePosixPath(p).name for p in folder.fs.ls(folder.path, detail=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove(path: Location) -> None:
    if isinstance(path, Path):
        path.unlink(missing_ok=True)
    else:
        path.fs.rm_file(path.path)


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def _url_to_fs(uri: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError as err:  # fsspec comes with huggingface_hub; only an odd install lacks it
        raise ImportError(f"{uri!r} is a URI, which needs fsspec: pip install fsspec") from err
    return url_to_fs(uri)
