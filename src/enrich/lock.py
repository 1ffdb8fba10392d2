"""The run lock: one ``enrich run`` at a time per cache (a cron job must never overlap itself).

An advisory ``flock`` on ``<cache>.lock``, taken without waiting: the second run
exits 75 at once. The kernel drops the lock when the process dies, even by
``kill -9``, so a crashed run never leaves a stale lock behind. The library
never takes it; the cache stays consistent through SQLite transactions.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType

from .errors import CacheError, CacheLockedError


class RunLock:
    def __init__(self, cache_path: Path):
        self.path = cache_path.with_name(cache_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a lock file planted as a link to another file must not get
            # that file truncated and overwritten with our pid.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                reason = ("the lock file is a symbolic link; it is never opened through a "
                          "link: remove it")
            else:
                reason = f"cannot create or open the lock file: {exc.strerror}"
            raise CacheError(str(self.path), reason) from None
        problem = _not_a_plain_file(fd)
        if problem:
            os.close(fd)
            raise CacheError(str(self.path), f"the lock file {problem}: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise CacheLockedError(
                str(self.path),
                f"another enrich run holds the lock{who}; try again when it has finished",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _not_a_plain_file(fd: int) -> str:
    """Why the open lock file must not be written (a hard link to another file, a
    device...), or "" when it is an ordinary file of its own."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_nlink != 1:
        return "has other hard links (it may be another file)"
    return ""
