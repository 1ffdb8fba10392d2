"""Several hosts (``python -m enrich run`` processes, each in its own folder) sharing one
PostgreSQL cache against the fake APIs: each id is fetched once in total, arXiv's
requests never overlap and keep ``min_interval`` across hosts, every output is
complete, a later host makes no request, and a host killed mid-run is taken over once
its lease runs out."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import load_json, run_cli, write_config

INTERVAL = 0.1
LEASE = 1.0


def _log(arxiv: FakeArxiv, github: FakeGitHub, papers: int, repos: int) -> str:
    ids = arxiv.add_synthetic(papers)
    lines = [f"- read https://arxiv.org/abs/{pid} today" for pid in ids]
    for n in range(repos):
        github.add_repo(f"Team{n}/tool{n}", stars=10 + n, description=f"Tool {n}")
        lines.append(f"- code: https://github.com/team{n}/tool{n}")
    return "\n".join(lines) + "\n"


def _hosts(tmp_path: Path, text: str, n: int) -> list[Path]:
    folders = []
    for i in range(n):
        folder = tmp_path / f"host{i}"
        folder.mkdir()
        (folder / "log.txt").write_text(text, encoding="utf-8")
        folders.append(folder)
    return folders


def _config(tmp_path: Path, arxiv: FakeArxiv, github: FakeGitHub, url: str) -> Path:
    return write_config(tmp_path / "config.yaml", arxiv, github,
                        cache={"url": url, "lease": f"{LEASE}s", "poll_interval": "50ms"},
                        arxiv={"min_interval": INTERVAL, "batch_size": 5},
                        github={"concurrency": 2})


def _spawn(folder: Path, cfg: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    return subprocess.Popen([sys.executable, "-m", "enrich", "run", "--file", "log.txt",
                             "--config", str(cfg), "--quiet"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _complete(folder: Path, papers: int, repos: int) -> None:
    doc = load_json(folder / "log.enriched.json")
    assert len(doc["papers"]) == papers and len(doc["repos"]) == repos
    assert {r["status"] for r in [*doc["papers"].values(), *doc["repos"].values()]} == {"ok"}


def _assert_spaced(arxiv: FakeArxiv) -> None:
    queries = sorted((r for r in arxiv.requests if r.endpoint == "query"), key=lambda r: r.time)
    for before, after in itertools.pairwise(queries):
        assert before.ended is not None and after.time >= before.ended, "requests overlapped"
        assert after.time - before.time >= INTERVAL, (
            f"starts {after.time - before.time:.3f} s apart")


def test_hosts_sharing_a_cache_fetch_each_id_once_and_keep_arxivs_pace(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        pg_url: str) -> None:
    papers, repos = 30, 12
    text = _log(arxiv_server, github_server, papers, repos)
    github_server.latency = 0.05
    cfg = _config(tmp_path, arxiv_server, github_server, pg_url)
    folders = _hosts(tmp_path, text, 4)
    procs = [_spawn(folder, cfg) for folder in folders[:3]]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()  # never 75: no lock with PostgreSQL
    fetched = collections.Counter(i for ids in arxiv_server.id_lists() for i in ids)
    assert len(fetched) == papers and set(fetched.values()) == {1}
    per_repo = collections.Counter(r.path.lower() for r in github_server.requests)
    assert len(per_repo) == repos and set(per_repo.values()) == {1}
    _assert_spaced(arxiv_server)
    for folder in folders[:3]:
        _complete(folder, papers, repos)

    arxiv_server.reset_log()
    github_server.reset_log()
    os.chdir(folders[3])
    code, _, err = run_cli("run", "--file", "log.txt", "--config", str(cfg))
    assert code == 0, err
    assert arxiv_server.count() == github_server.count() == 0
    _complete(folders[3], papers, repos)


def test_a_host_killed_mid_run_is_taken_over_when_its_lease_runs_out(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        pg_url: str) -> None:
    papers, repos = 20, 4
    text = _log(arxiv_server, github_server, papers, repos)
    cfg = _config(tmp_path, arxiv_server, github_server, pg_url)
    first, second = _hosts(tmp_path, text, 2)
    doomed = _spawn(first, cfg)
    deadline = time.monotonic() + 20
    while arxiv_server.count("query") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    started = time.monotonic()
    code, _, err = _run_in(second, cfg)
    took = time.monotonic() - started
    assert code == 0, err
    _complete(second, papers, repos)
    # one lease, then the rest of the work (at most 4 arXiv requests at 0.1 s, GitHub)
    assert took < LEASE + 3.0, f"took {took:.1f} s"
    assert not (first / "log.enriched.json").exists()


def _run_in(folder: Path, cfg: Path) -> tuple[int, str, str]:
    os.chdir(folder)
    return run_cli("run", "--file", "log.txt", "--config", str(cfg))


@pytest.mark.parametrize("command", ["stats", "prune", "clear"])
def test_cache_commands_work_on_a_shared_cache(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub, pg_url: str,
        command: str) -> None:
    text = _log(arxiv_server, github_server, 3, 2)
    cfg = _config(tmp_path, arxiv_server, github_server, pg_url)
    (folder,) = _hosts(tmp_path, text, 1)
    assert _run_in(folder, cfg)[0] == 0
    code, out, err = run_cli("cache", command, "--config", str(cfg))
    assert code == 0, err
    code, out, _ = run_cli("cache", "stats", "--config", str(cfg))
    assert "postgresql://postgres@127.0.0.1" in out
    total = "total: 0" if command == "clear" else "total: 3"
    assert total in out
    assert not (tmp_path / "cache").exists()  # no SQLite file, no lock file
