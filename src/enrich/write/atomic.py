"""Atomic file replacement: a reader (or a crash) sees the old output or the new one,
never half of one: a crash never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)


def _umask() -> int:
    """The process umask, without changing it when /proc tells us (thread-safe there)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it; put it straight back
    os.umask(mask)
    return mask


def _fsync_dir(folder: str) -> None:
    """Make the rename durable; not every platform can open or fsync a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class PartialWriteError(OSError):
    """A group of files was half replaced: a rename failed after others had succeeded.

    ``replaced`` holds the paths that now have their new content, ``kept`` those
    that still have their old one (or none).
    """

    def __init__(self, cause: OSError, replaced: list[str], kept: list[str]):
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.replaced = replaced
        self.kept = kept


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *,
                 encoding: str = "utf-8", errors: str = "strict") -> None:
    """Replace ``path`` with ``data`` atomically.

    Writes a temporary file in the same folder (so the final ``os.replace`` is a
    rename within one filesystem), flushes and fsyncs it, renames it onto ``path``
    and fsyncs the folder. On any error the temporary file is removed, the
    previous file (if any) is untouched, and the error propagates. The new file
    keeps the permission bits of the regular file it replaces, or gets
    ``0o666 & ~umask`` (what ``open()`` would give) when there was none.

    If ``path`` is a symbolic link, the link itself is replaced by the new file:
    the file it pointed to is never written (someone who may create files in the
    folder must not get our writes sent elsewhere).

    Text is encoded with ``encoding`` and no newline translation, so ``\\r\\n``
    and lone ``\\r`` line endings reach the disk as given; ``errors`` is passed to
    :meth:`str.encode` (``"xmlcharrefreplace"`` suits markdown written back in a
    legacy encoding that cannot hold every character: the entity renders the same).
    """
    payload = data.encode(encoding, errors) if isinstance(data, str) else data
    write_files_atomic([(path, payload)])


def write_files_atomic(files: Sequence[tuple[str | os.PathLike[str],
                                             bytes | Callable[[], bytes]]]) -> None:
    """Replace several files, each atomically, as nearly together as possible.

    Every file is first written in full to its temporary file (a callable payload is
    made just before, so that only one output is in memory at a time); only then are
    the temporaries renamed over their paths, one after the other. So a failure while
    writing (a full disk) leaves every path as it was. A rename can still fail
    after others succeeded (rare: the path became a folder, say); that raises
    :class:`PartialWriteError`, which says which paths are new. Temporary files
    are removed on any error.
    """
    targets = [os.fspath(path) for path, _ in files]
    temporaries: list[str] = []
    replaced: list[str] = []
    sizes: list[int] = []
    try:
        for target, (_, payload) in zip(targets, files, strict=True):
            data = payload() if callable(payload) else payload
            sizes.append(len(data))
            temporaries.append(_write_temporary(target, data))
            del data
        for tmp, target in zip(temporaries, targets, strict=True):
            try:
                os.replace(tmp, target)
            except OSError as exc:
                if replaced:
                    raise PartialWriteError(exc, replaced, targets[len(replaced):]) from exc
                raise
            replaced.append(target)
    finally:
        for tmp in temporaries[len(replaced):]:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for folder in sorted({os.path.dirname(os.path.abspath(t)) for t in targets}):
        _fsync_dir(folder)
    for target, size in zip(targets, sizes, strict=True):
        logger.debug("wrote %s (%d bytes)", target, size)


def _write_temporary(target: str, payload: bytes) -> str:
    """Write ``payload`` to a new hidden temporary file beside ``target``; its name.

    The file is flushed to disk and has the mode the output will have.
    """
    folder = os.path.dirname(os.path.abspath(target))
    mode = _mode_for(target)
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        mode="wb", dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp",
        delete=False)
    try:
        with tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    return tmp.name


def _mode_for(target: str) -> int:
    """The permission bits of the regular file at ``target``, else the default ones.

    ``lstat``: the mode of whatever a symbolic link points to is none of our business.
    """
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return 0o666 & ~_umask()
    if stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode)
    return 0o666 & ~_umask()
