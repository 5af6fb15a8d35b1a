"""The JSON Lines report of ``pixcolor colorize --report``: one line per input file, written
as each file is done, so that a job stopped half-way still leaves a truthful report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pixcolor import _storage
from pixcolor._storage import Location, RemotePath

STATUSES = ("written", "skipped", "failed")


class ReportLog:
    """Write ``{"input", "output", "status", "reason"}`` lines to ``target`` (a local path
    or a URI); ``None`` writes nothing. ``status`` is one of :data:`STATUSES`.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "report.jsonl"
        >>> with ReportLog(path) as log:
        ...     log.write(Path("in/a.jpg"), Path("out/a.jpg"), "failed", "cannot decode")
        >>> path.read_text()
        '{"input": "in/a.jpg", "output": "out/a.jpg", "status": "failed", "reason": "cannot decode"}\\n'
    """

    def __init__(self, target: str | os.PathLike[str] | RemotePath | None) -> None:
        self.target: Location | None = None if target is None else _storage.location(target)
        self._file: IO[str] | None = None

    def __enter__(self) -> ReportLog:
        if isinstance(self.target, Path):
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.target, "w", encoding="utf-8", buffering=1)
        elif isinstance(self.target, RemotePath):
            self._file = self.target.fs.open(self.target.path, "w", encoding="utf-8")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, src: Location, dst: Location, status: str, reason: str | None = None) -> None:
        """Record one file's outcome."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if self._file is None:
            return
        line: dict[str, Any] = {"input": str(src), "output": str(dst), "status": status}
        line["reason"] = reason
        self._file.write(json.dumps(line) + "\n")
