"""`enrich run` as a real process: kill -9 mid-run, two runs at once, very large inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import EXAMPLE, load_json, populate, run_cli, write_config

from enrich.write.markdown import strip_blocks


def _spawn(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    return subprocess.Popen(
        [sys.executable, "-m", "enrich", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(cond: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def setup(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> tuple[Path, Path]:
    populate(arxiv_server, github_server, EXAMPLE.read_text(encoding="utf-8"))
    log = tmp_path / "000.txt"
    shutil.copyfile(EXAMPLE, log)
    cfg = write_config(
        tmp_path / "config.yaml", arxiv_server, github_server, github={"concurrency": 2}
    )
    return log, cfg


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_mid_run_leaves_no_partial_output_and_a_usable_cache(
    setup: tuple[Path, Path], arxiv_server: FakeArxiv, github_server: FakeGitHub, tmp_path: Path
) -> None:
    log, cfg = setup
    github_server.latency = 0.15
    proc = _spawn("run", "--file", str(log), "--config", str(cfg), cwd=tmp_path)
    try:
        _wait_for(lambda: github_server.count() >= 4)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert not log.with_name("000.enriched.md").exists()
    assert not log.with_name("000.enriched.json").exists()
    db = tmp_path / "cache" / "enrich.sqlite3"
    if db.exists():
        assert _integrity(db) == "ok"
    github_server.latency = 0.0
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    doc = load_json(log.with_name("000.enriched.json"))
    assert all(r["status"] == "ok" for r in doc["repos"].values())
    md = log.with_name("000.enriched.md").read_text(encoding="utf-8")
    assert strip_blocks(md) == log.read_text(encoding="utf-8")
    assert _integrity(db) == "ok"


@pytest.mark.slow
def test_two_runs_at_once_one_exits_75_and_the_other_finishes(
    setup: tuple[Path, Path], github_server: FakeGitHub, tmp_path: Path
) -> None:
    log, cfg = setup
    github_server.latency = 0.4  # 10 repositories, 2 in flight: the first run takes ~2 s
    first = _spawn("run", "--file", str(log), "--config", str(cfg), cwd=tmp_path)
    _wait_for(lambda: github_server.count() >= 1)
    second = _spawn("run", "--file", str(log), "--config", str(cfg), cwd=tmp_path)
    _, err2 = second.communicate(timeout=30)
    _, err1 = first.communicate(timeout=60)
    assert second.returncode == 75, err2.decode()
    assert b"another enrich run" in err2 and b"Traceback" not in err2
    assert first.returncode == 0, err1.decode()
    json.loads(log.with_name("000.enriched.json").read_text(encoding="utf-8"))


def test_a_100_mb_file_without_links_is_processed(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, cfg = setup
    big = tmp_path / "big.txt"
    line = ("今天读了很多论文，但是没有记下任何链接。" * 4 + "plain ascii words here\n").encode()
    with big.open("wb") as f:
        for _ in range((100 * 10**6) // (len(line) * 1000) + 1):
            f.write(line * 1000)
    code, _, err = run_cli("run", "--file", str(big), "--config", str(cfg), "--format", "json")
    assert code == 0, err
    doc = load_json(tmp_path / "big.enriched.json")
    assert doc["links"] == [] and doc["source"]["bytes"] == big.stat().st_size
    assert doc["source"]["bytes"] >= 100 * 10**6


def test_a_file_of_very_long_lines_finds_its_links(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    _, cfg = setup
    path = tmp_path / "long.txt"
    filler = "长" * 500_000
    path.write_text(
        f"{filler} https://arxiv.org/abs/1706.03762 {filler}\n"
        f"{filler}github.com/karpathy/nanoGPT。{filler}\n",
        encoding="utf-8",
    )
    code, out, err = run_cli("extract", "--file", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["arxiv"] == ["1706.03762"] and data["github"] == ["karpathy/nanogpt"]
    assert [lk["column"] for lk in data["links"]] == [500_002, 500_001]
    code, _, err = run_cli("run", "--file", str(path), "--config", str(cfg))
    assert code == 0, err
    md = (tmp_path / "long.enriched.md").read_text(encoding="utf-8")
    assert strip_blocks(md) == path.read_text(encoding="utf-8")


def test_the_process_ends_with_everything_printed_and_the_commands_status(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    """All the command printed arrives through a real pipe (more than a pipe holds, the
    last lines still in the stream's buffer at exit), and the status is the command's."""
    _, cfg = setup
    many = tmp_path / "many.txt"
    many.write_text(
        "".join(f"读 arXiv:2301.{i:05d} 和 github.com/o{i}/r{i}\n" for i in range(3000)),
        encoding="utf-8",
    )
    # the table is printed a line at a time: its last lines sit in the stream's buffer
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-m", "enrich", "extract", "--file", str(many)],
        capture_output=True,
        timeout=60,
        env=buffered,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode("utf-8").splitlines()
    assert len(done.stdout) > 1 << 18  # more than a pipe holds
    assert len(lines) == 1 + 6000 + 1 and "o2999/r2999" in lines[-2]
    assert lines[-1] == "6000 links: 3000 arXiv papers, 3000 GitHub repositories"
    missing = tmp_path / "absent.txt"
    done = subprocess.run(
        [sys.executable, "-m", "enrich", "run", "--file", str(missing), "--config", str(cfg)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"absent.txt" in done.stderr and b"Traceback" not in done.stderr
