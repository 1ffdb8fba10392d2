"""Hostile timing: kill -9 anywhere, runs started together, a locked, unwritable or full cache.

A nightly cron job dies, overlaps itself and meets full disks. Each case checks:
outputs are absent or complete (never a partial file), the cache passes ``PRAGMA
integrity_check`` with every record it had, errors are one clear line (never a
traceback, never a hang), and the next run completes.

Full disks and read-only folders use a real tmpfs mounted for the test when the
process may mount one (root in a container, as in CI); otherwise the same
failures are produced by making the write fail (``ENOSPC`` / ``EROFS``) or by
capping the database size, so every case runs everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import load_json, run_cli, write_config

from enrich.store import Store
from enrich.write.json import load_schema
from enrich.write.markdown import BLOCK_END, strip_blocks

KILLS = 20


class Night:
    """Two log files, the fakes serving their ids, a config and a cache."""

    def __init__(self, tmp: Path, arxiv: FakeArxiv, github: FakeGitHub, n: int = 12) -> None:
        self.tmp, self.arxiv, self.github = tmp, arxiv, github
        github.anon_limit = 10**6
        ids = arxiv.add_synthetic(2 * n)
        keys = github.add_synthetic(2 * n)
        self.logs: list[Path] = []
        self.texts: dict[Path, str] = {}
        self.expected: dict[Path, tuple[set[str], set[str]]] = {}
        folder = tmp / "logs"
        folder.mkdir()
        for f, name in enumerate(("monday", "tuesday")):
            # the second file repeats a third of the first one's ids
            mine_p = ids[f * n - f * n // 3: (f + 1) * n]
            mine_r = keys[f * n - f * n // 3: (f + 1) * n]
            lines = [f"# {name}", ""]
            for i, (pid, key) in enumerate(zip(mine_p, mine_r, strict=True)):
                lines.append(f"{i}. https://arxiv.org/abs/{pid} "
                             f"https://github.com/{github.repos[key].full_name}")
            path = folder / f"{name}.txt"
            text = "\n".join(lines) + "\n"
            path.write_text(text, encoding="utf-8")
            self.logs.append(path)
            self.texts[path] = text
            self.expected[path] = (set(mine_p), set(mine_r))
        self.keys = keys
        self.config = write_config(tmp / "config.yaml", arxiv, github,
                                   arxiv={"batch_size": 5}, github={"concurrency": 2},
                                   http={"timeout": 2})
        self.db = tmp / "cache" / "enrich.sqlite3"

    def args(self, *extra: str) -> list[str]:
        files = [a for p in self.logs for a in ("--file", str(p))]
        return ["run", *files, "--config", str(self.config), *extra]

    def spawn(self, *extra: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
        return subprocess.Popen([sys.executable, "-m", "enrich", *self.args(*extra)],
                                cwd=self.tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def requests(self) -> int:
        return self.arxiv.count() + self.github.count()

    def outputs(self, path: Path) -> tuple[Path, Path]:
        return path.with_suffix(".enriched.md"), path.with_suffix(".enriched.json")

    def check_outputs(self, *, required: bool = True) -> dict[Path, dict[str, Any] | None]:
        """Every output absent (if allowed) or complete; returns the JSON documents."""
        docs: dict[Path, dict[str, Any] | None] = {}
        for path in self.logs:
            md, js = self.outputs(path)
            if not required and not md.exists() and not js.exists():
                docs[path] = None
                continue
            doc = load_json(js)  # a partial file would not parse
            jsonschema.validate(doc, load_schema())
            papers, repos = self.expected[path]
            assert set(doc["papers"]) == papers and set(doc["repos"]) == repos
            text = md.read_text(encoding="utf-8")
            assert strip_blocks(text) == self.texts[path]
            assert text.endswith(BLOCK_END + "\n")  # the summary block closes the file
            docs[path] = doc
        leftovers = [p.name for p in self.logs[0].parent.iterdir()
                     if p not in self.logs and p.name.endswith((".md", ".json"))
                     and not p.name.startswith(".")]
        assert sorted(leftovers) == sorted(
            o.name for p in self.logs for o in self.outputs(p) if o.exists())
        return docs

    def check_cache(self, keys: set[tuple[str, str]]) -> None:
        assert integrity(self.db) == "ok"
        conn = sqlite3.connect(self.db)
        try:
            have = {("arxiv", k) for (k,) in conn.execute(
                "SELECT id FROM papers WHERE status = 'ok'")}
            have |= {("github", k) for (k,) in conn.execute(
                "SELECT key FROM repos WHERE status = 'ok'")}
        finally:
            conn.close()
        assert keys <= have, sorted(keys - have)[:5]

    def all_keys(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for papers, repos in self.expected.values():
            out |= {("arxiv", p) for p in papers} | {("github", r) for r in repos}
        return out


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def night(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> Night:
    return Night(tmp_path, arxiv_server, github_server)


def _wait(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


# -- kill -9 ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_kill_9_at_random_points_lose_nothing(night: Night) -> None:
    """kill -9 at random delays: during start-up, fetching, cache writes and (one kill in
    five aimed there) output writes."""
    w = night
    code, _, err = run_cli(*w.args())
    assert code == 0, err
    keys = w.all_keys()
    w.check_cache(keys)
    w.arxiv.latency = w.github.latency = 0.02
    # how long a run is busy from its first request to its last output
    last = w.outputs(w.logs[-1])[1]
    stamp = last.stat().st_mtime_ns
    w.arxiv.reset_log()
    w.github.reset_log()
    proc = w.spawn("--refresh")
    assert _wait(lambda: w.requests() > 0, 20)
    t0 = time.monotonic()
    assert _wait(lambda: last.stat().st_mtime_ns != stamp, 20)
    busy = time.monotonic() - t0
    assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    rng = random.Random(20261129)
    landed: Counter[str] = Counter()
    for i in range(KILLS):
        for key in w.keys:  # every run writes different outputs
            w.github.set_stars(key, 100 * i + 7)
        w.arxiv.reset_log()
        w.github.reset_log()
        proc = w.spawn("--refresh")
        first = w.outputs(w.logs[0])[0]
        first_stamp = first.stat().st_mtime_ns
        if i % 5 == 0:  # start-up: imports, config, lock, cache open and migrations
            time.sleep(rng.uniform(0.0, 0.9))
        elif i % 5 == 4:  # while the outputs are being written
            _wait(lambda p=proc, f=first, t=first_stamp: f.stat().st_mtime_ns != t
                  or p.poll() is not None, 20)
            time.sleep(rng.uniform(0.0, 0.015))
        else:
            assert _wait(lambda p=proc: w.requests() > 0 or p.poll() is not None, 20)
            time.sleep(rng.uniform(0.0, busy * 1.1))
        os.kill(proc.pid, signal.SIGKILL)
        rc = proc.wait(10)
        assert rc in (0, -signal.SIGKILL), rc  # never 75: a dead run leaves no lock behind
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        docs = w.check_outputs()
        w.check_cache(keys)
        stars = {doc["repos"][k]["stars"] for doc in docs.values() if doc
                 for k in doc["repos"]}
        if rc == 0:
            landed["after the run had finished"] += 1
        elif stars == {100 * i + 7}:
            landed["after both outputs were written"] += 1
        elif 100 * i + 7 in stars:
            landed["between the two files' outputs"] += 1
        elif w.requests() == 0:
            landed["before any request"] += 1
        else:
            landed["while fetching or writing the cache"] += 1
    assert sum(landed.values()) == KILLS
    assert landed["while fetching or writing the cache"] >= KILLS // 3, landed
    # the next run completes, and finds the lock free
    w.arxiv.latency = w.github.latency = 0.0
    code, _, err = run_cli(*w.args("--refresh"))
    assert code == 0, err
    docs = w.check_outputs()
    assert all(doc and {r["status"] for r in doc["repos"].values()} == {"ok"}
               for doc in docs.values())
    w.check_cache(keys)


# -- runs started together ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
def test_runs_started_together_on_one_cache_take_turns(night: Night, n: int) -> None:
    w = night
    w.arxiv.latency = w.github.latency = 0.1  # a run lasts seconds: they do overlap
    procs = [w.spawn() for _ in range(n)]
    results = []
    for p in procs:
        _, raw = p.communicate(timeout=60)
        results.append((p.returncode, raw.decode()))
    codes = sorted(rc for rc, _ in results)
    assert codes == [0] + [75] * (n - 1), results
    for rc, err in results:
        assert "Traceback" not in err
        if rc == 75:
            assert "another enrich run holds the lock" in err
    w.check_outputs()
    w.check_cache(w.all_keys())
    # each id was fetched once: only the run holding the lock sent requests
    assert w.arxiv.count() == -(-len(set().union(*(p for p, _ in w.expected.values()))) // 5)


# -- a cache locked by another process -------------------------------------------------------------

_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@contextlib.contextmanager
def locked(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(db), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_a_cache_locked_briefly_by_another_process_is_waited_for(night: Night) -> None:
    w = night
    assert run_cli(*w.args())[0] == 0
    with locked(w.db, 0.8):
        started = time.monotonic()
        code, _, err = run_cli(*w.args("--refresh"))
        took = time.monotonic() - started
    assert code == 0, err
    assert took >= 0.5  # it waited for the lock instead of failing
    w.check_outputs()
    w.check_cache(w.all_keys())


def test_a_cache_locked_for_long_fails_clearly_within_busy_timeout(
        night: Night, monkeypatch: pytest.MonkeyPatch) -> None:
    w = night
    assert run_cli(*w.args())[0] == 0
    before = {p: [o.read_bytes() for o in w.outputs(p)] for p in w.logs}
    defaults = Store.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "busy_timeout", 1.0)
    with locked(w.db, 120):
        started = time.monotonic()
        code, _, err = run_cli(*w.args("--refresh"))
        took = time.monotonic() - started
    assert took < 6, took  # busy_timeout (1 s) per write, not forever
    assert code == 2
    assert "locked" in err and str(w.db) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # nothing half-done: the outputs are the previous ones, the cache is whole
    assert {p: [o.read_bytes() for o in w.outputs(p)] for p in w.logs} == before
    w.check_cache(w.all_keys())
    assert run_cli(*w.args("--refresh"))[0] == 0


# -- tiny and read-only file systems -----------------------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``where``; yields False (an empty folder) when this
    process may not mount one."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                               str(where)], capture_output=True, timeout=10)
        mounted = done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True, timeout=10)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` until only ``leave`` bytes are free."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_a_cache_folder_under_a_regular_file_is_a_clear_error(night: Night,
                                                              tmp_path: Path) -> None:
    w = night
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cfg = write_config(w.config, w.arxiv, w.github,
                       cache={"path": str(blocker / "cache" / "enrich.sqlite3")})
    code, _, err = run_cli(*w.args())
    assert cfg == w.config
    assert code == 2 and str(blocker) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not any(o.exists() for p in w.logs for o in w.outputs(p))


def test_a_read_only_cache_folder_is_a_clear_error_and_stays_intact(
        night: Night, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = night
    folder = tmp_path / "ro-cache"
    with tmpfs(folder, "4m") as mounted:
        db = folder / "enrich.sqlite3"
        write_config(w.config, w.arxiv, w.github, cache={"path": str(db)})
        assert run_cli(*w.args())[0] == 0
        w.db = db
        before = db.read_bytes()
        outputs = {p: [o.read_bytes() for o in w.outputs(p)] for p in w.logs}
        if mounted:
            remount(folder, "ro")
        else:  # simulated: every open for writing in that folder fails as on a ro mount
            real_open = os.open

            def ro_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
                if str(path).startswith(str(folder)) and flags & (os.O_WRONLY | os.O_RDWR):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
                return real_open(path, flags, *args, **kwargs)

            monkeypatch.setattr(os, "open", ro_open)
        code, _, err = run_cli(*w.args("--refresh"))
        monkeypatch.undo()
        assert code == 2, err
        assert str(folder) in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert {p: [o.read_bytes() for o in w.outputs(p)] for p in w.logs} == outputs
        if mounted:
            remount(folder, "rw")
        assert db.read_bytes() == before
        w.check_cache(w.all_keys())
        assert run_cli(*w.args("--refresh"))[0] == 0


def test_a_full_disk_under_the_outputs_keeps_the_old_ones_whole(
        night: Night, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = night
    out = tmp_path / "out"
    with tmpfs(out, "256k") as mounted:
        assert run_cli(*w.args("--out-dir", str(out)))[0] == 0
        names = sorted(p.name for p in out.iterdir())
        before = {name: (out / name).read_bytes() for name in names}
        for key in w.keys:  # the next outputs differ from these
            w.github.set_stars(key, 123456789)
        if mounted:
            filler = fill(out, leave=2048)
        else:
            def no_space(fd: int) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr("enrich.write.atomic.os.fsync", no_space)
        code, _, err = run_cli(*w.args("--refresh", "--out-dir", str(out)))
        monkeypatch.undo()
        assert code == 2
        assert "No space left on device" in err and "Traceback" not in err
        now = sorted(p.name for p in out.iterdir() if p.name != "filler.bin")
        assert now == names  # no temporary file left behind
        assert {name: (out / name).read_bytes() for name in names} == before
        if mounted:
            filler.unlink()
        code, _, err = run_cli(*w.args("--refresh", "--out-dir", str(out)))
        assert code == 0, err
        assert b"123456789" in (out / "monday.enriched.json").read_bytes()


def test_a_full_disk_under_the_cache_fails_clearly_and_loses_nothing(
        night: Night, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = night
    folder = tmp_path / "full-cache"
    with tmpfs(folder, "1m") as mounted:
        db = folder / "enrich.sqlite3"
        write_config(w.config, w.arxiv, w.github, cache={"path": str(db)})
        w.db = db
        first = w.logs[:1]
        code, _, err = run_cli("run", "--file", str(first[0]), "--config", str(w.config))
        assert code == 0, err
        cached = {("arxiv", p) for p in w.expected[first[0]][0]}
        cached |= {("github", r) for r in w.expected[first[0]][1]}
        outputs = {p: [o.read_bytes() for o in w.outputs(p)] for p in w.logs
                   if w.outputs(p)[0].exists()}
        if mounted:
            filler = fill(folder, leave=0)
        else:  # simulated: the database may not grow by a single page
            real_connect = Store._connect

            def capped(self: Store, target: str, *, uri: bool) -> sqlite3.Connection:
                conn = real_connect(self, target, uri=uri)
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {pages}")
                return conn

            monkeypatch.setattr(Store, "_connect", capped)
        # a third of the second file's records are new to the cache and must be written
        code, _, err = run_cli(*w.args("--refresh"))
        monkeypatch.undo()
        assert code == 2, err
        assert str(db) in err and ("full" in err or "disk" in err) and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert {p: [o.read_bytes() for o in w.outputs(p)] for p in outputs} == outputs
        if mounted:
            filler.unlink()
        w.check_cache(cached)
        code, _, err = run_cli(*w.args("--refresh"))
        assert code == 0, err
        w.check_cache(w.all_keys())


def test_temporary_files_a_killed_run_left_behind_are_cleared_by_a_later_run(
        night: Night) -> None:
    """A kill between a temporary output's creation and its rename leaves it (hidden);
    the next run removes such leftovers once they are clearly not a write in progress."""
    w = night
    folder = w.logs[0].parent
    old = folder / ".monday.enriched.md.k1ll3d.tmp"
    fresh = folder / ".monday.enriched.json.wr1t1ng.tmp"
    other = folder / ".notes.txt.k1ll3d.tmp"  # not ours: never touched
    for p in (old, fresh, other):
        p.write_text("half an output")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    code, _, err = run_cli(*w.args())
    assert code == 0, err
    assert not old.exists()
    assert fresh.exists() and other.exists()  # a write in progress, someone else's file
    w.check_outputs()
