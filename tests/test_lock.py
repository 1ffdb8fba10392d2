"""The run lock: a second holder is refused at once; a dead holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enrich.errors import CacheLockedError
from enrich.lock import RunLock


def test_second_lock_is_refused_at_once(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    with RunLock(cache):
        t0 = time.monotonic()
        with pytest.raises(CacheLockedError, match="another enrich run"):
            RunLock(cache).acquire()
        assert time.monotonic() - t0 < 1.0
    with RunLock(cache):  # free again after release
        pass


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    code = (
        "import sys, time; from pathlib import Path; from enrich.lock import RunLock\n"
        f"l = RunLock(Path({str(cache)!r})); l.acquire(); print('held', flush=True);"
        " time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(CacheLockedError, match=f"pid {proc.pid}"):
            RunLock(cache).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        with RunLock(cache):
            pass
    finally:
        proc.kill()
        proc.wait()
