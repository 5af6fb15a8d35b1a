"""Run ``pixcolor app`` as a user does, for tests/test_app_browser.py, and record through
audit hooks (PEP 578) every file system write and every network look-up or connection the
server process makes, one JSON line each, in the file named by ``PIXCOLOR_AUDIT_LOG``.

Usage: ``python tests/app_server.py [pixcolor app options]``.
"""

from __future__ import annotations

import json
import os
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {  # event -> (indices of its path arguments written to, index of its dir_fd)
    "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2), "os.replace": ((0, 1), 2),
    "os.link": ((1,), None), "os.symlink": ((1,), 2), "os.remove": ((0,), 1),
    "os.rmdir": ((0,), 1), "os.truncate": ((0,), None), "os.chmod": ((0,), 2),
    "os.utime": ((0,), 3), "shutil.copyfile": ((1,), None), "shutil.copytree": ((1,), None),
    "shutil.move": ((1,), None), "shutil.rmtree": ((0,), 1),
}  # fmt: skip
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}


def main() -> int:
    log = open(os.environ["PIXCOLOR_AUDIT_LOG"], "w", buffering=1)  # noqa: SIM115

    def record(kind: str, what: object) -> None:
        log.write(json.dumps({"kind": kind, "what": str(what)}) + "\n")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
            if writing and isinstance(path, (str, bytes, os.PathLike)):
                record("write", _absolute(os.fsdecode(path), None))
        elif event in _PATH_EVENTS:
            indices, dir_fd_index = _PATH_EVENTS[event]
            dir_fd = args[dir_fd_index] if dir_fd_index is not None else None
            for index in indices:
                path = args[index]
                if isinstance(path, (str, bytes, os.PathLike)):
                    record("write", _absolute(os.fsdecode(path), dir_fd))
        elif event == "socket.getaddrinfo":
            if args[0] not in _LOCAL_HOSTS and not str(args[0]).startswith("127."):
                record("lookup", args[0])
        elif event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else None
            if host not in _LOCAL_HOSTS and not str(host).startswith("127."):
                record("connect", address)

    sys.addaudithook(hook)
    from pixcolor.cli import main as pixcolor

    return pixcolor(["app", *sys.argv[1:]])


def _absolute(path: str, dir_fd: object) -> str:
    """``path`` made absolute; relative to the folder open as ``dir_fd`` if given (as
    ``shutil.rmtree`` removes files)."""
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
        try:
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:  # no /proc: say which folder is unknown
            return f"<folder of fd {dir_fd}>/{path}"
    return os.path.abspath(path)


if __name__ == "__main__":
    raise SystemExit(main())
