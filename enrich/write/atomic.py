"""Atomic file replacement: a reader (or a crash) sees the old output or the new one,
never half of one (spec section 3: "a crash never leaves a half-written output").
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile

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


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *,
                 encoding: str = "utf-8", errors: str = "strict") -> None:
    """Replace ``path`` with ``data`` atomically.

    Writes a temporary file in the same folder (so the final ``os.replace`` is a
    rename within one filesystem), flushes and fsyncs it, renames it onto ``path``
    and fsyncs the folder. On any error the temporary file is removed, the
    previous file (if any) is untouched, and the error propagates. The new file
    keeps the permission bits of the file it replaces, or gets ``0o666 & ~umask``
    (what ``open()`` would give) when there was none. If ``path`` is a symbolic
    link, the file it points to is replaced and the link stays.

    Text is encoded with ``encoding`` and no newline translation, so ``\\r\\n``
    and lone ``\\r`` line endings reach the disk as given; ``errors`` is passed to
    :meth:`str.encode` (``"xmlcharrefreplace"`` suits markdown written back in a
    legacy encoding that cannot hold every character: the entity renders the same).
    """
    target = os.fspath(path)
    if os.path.islink(target):
        target = os.path.realpath(target)
    folder = os.path.dirname(os.path.abspath(target))
    payload = data.encode(encoding, errors) if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        mode="wb", dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp",
        delete=False)
    try:
        with tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_dir(folder)
    logger.debug("wrote %s (%d bytes)", target, len(payload))
