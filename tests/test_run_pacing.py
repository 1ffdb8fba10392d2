"""Pacing, TTLs, offline, exit codes and interruption of a whole ``enrich run``.

Everything here is read from the outside: the fakes' request logs (each request's
arrival and end time, the most requests answered at once), the outputs, the exit status
and stderr. The example log holds 14 arXiv papers and 10 repositories, two of them
renamed (a REST lookup of each answers 301, then the new address is asked).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import EXAMPLE, RENAMES, load_json, populate, run_cli, write_config

TOKEN = "tok-pacing-5150"
#: Slack for the fakes' clocks: a request is stamped when its handler thread reads it.
SLACK = 0.02


@pytest.fixture
def log(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> Path:
    populate(arxiv_server, github_server, EXAMPLE.read_text(encoding="utf-8"))
    dst = tmp_path / "logs" / "000.txt"
    dst.parent.mkdir()
    shutil.copyfile(EXAMPLE, dst)
    return dst


def _config(tmp_path: Path, arxiv_srv: FakeArxiv, github_srv: FakeGitHub, /,
            **sections: object) -> Path:
    return write_config(tmp_path / "config.yaml", arxiv_srv, github_srv, **sections)


def _run(log: Path, cfg: Path, *flags: str) -> tuple[int, str]:
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), *flags)
    return code, err


def _wait_for(cond: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def _ended(srv: FakeArxiv | FakeGitHub) -> None:
    """The handlers stamp a request's end just after its last write: wait for the stamps."""
    _wait_for(lambda: all(r.ended is not None for r in srv.requests), timeout=5)


# -- pacing --------------------------------------------------------------------------------


def test_arxiv_requests_start_min_interval_apart_one_at_a_time(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    arxiv_server.latency = 0.05
    cfg = _config(tmp_path, arxiv_server, github_server,
                  arxiv={"min_interval": "200ms", "batch_size": 4})
    code, err = _run(log, cfg)
    assert code == 0, err
    _ended(arxiv_server)
    reqs = sorted(arxiv_server.requests, key=lambda r: r.time)
    assert len(reqs) == 4  # 14 ids, 4 a batch
    assert sorted(i for ids in arxiv_server.id_lists() for i in ids) == sorted(
        load_json(log.with_name("000.enriched.json"))["papers"])
    for prev, nxt in pairwise(reqs):
        assert nxt.time - prev.time >= 0.2 - SLACK, (prev.time, nxt.time)
        assert prev.ended is not None and nxt.time >= prev.ended  # never two in flight
    assert arxiv_server.peak_answering == 1


def test_rest_requests_without_a_token_stay_within_the_concurrency_cap(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    github_server.latency = 0.1
    cfg = _config(tmp_path, arxiv_server, github_server, github={"concurrency": 2})
    code, err = _run(log, cfg)
    assert code == 0, err
    assert github_server.count(endpoint="rest") == 10 + len(RENAMES)
    assert github_server.count(endpoint="graphql") == 0
    assert github_server.count(credential="anon") == github_server.count()
    # the cap is reached (the requests do overlap) and never exceeded
    assert github_server.max_inflight == 2
    assert github_server.peak_answering == 2


def test_graphql_queries_with_a_token_go_one_at_a_time(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    github_server.tokens[TOKEN] = "alice"
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github_server.latency = 0.1
    cfg = _config(tmp_path, arxiv_server, github_server,
                  github={"batch_size": 3, "concurrency": 4})
    code, err = _run(log, cfg)
    assert code == 0, err
    assert github_server.count(endpoint="graphql", credential=TOKEN) == 4  # 10 repos, 3 a query
    assert github_server.count(endpoint="rest") == 0
    assert github_server.max_inflight == 1
    _ended(github_server)
    queries = sorted(github_server.requests, key=lambda r: r.time)
    for prev, nxt in pairwise(queries):
        assert prev.ended is not None and nxt.time >= prev.ended
    doc = load_json(log.with_name("000.enriched.json"))
    assert {r["status"] for r in doc["repos"].values()} == {"ok"}


# -- TTLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", ["250ms", "1h"])
@pytest.mark.parametrize("source", ["arxiv", "github"])
def test_records_past_their_ttl_are_fetched_again_without_refresh(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        source: str, ttl: str) -> None:
    cfg = _config(tmp_path, arxiv_server, github_server, cache={f"{source}_ttl": ttl})
    code, err = _run(log, cfg)
    assert code == 0, err
    before = {"arxiv": arxiv_server.count(), "github": github_server.count()}
    assert before["arxiv"] == 1 and before["github"] == 10 + len(RENAMES)
    time.sleep(0.4)  # past 250 ms, far within an hour
    code, err = _run(log, cfg)
    assert code == 0, err
    after = {"arxiv": arxiv_server.count(), "github": github_server.count()}
    other = "github" if source == "arxiv" else "arxiv"
    assert after[other] == before[other]  # the other source's TTL is the default (days)
    if ttl == "1h":
        assert after[source] == before[source]
        return
    doc = load_json(log.with_name("000.enriched.json"))
    if source == "arxiv":
        assert after["arxiv"] == before["arxiv"] + 1
        again = {i for ids in arxiv_server.id_lists()[1:] for i in ids}
        assert again == set(doc["papers"])
    else:
        asked = {r.path.removeprefix("/repos/").lower()
                 for r in github_server.requests[before["github"]:]
                 if r.path.startswith("/repos/")}
        # each repository once, by its canonical name (a renamed one by the name
        # learned on the first run: no more 301 and second request)
        assert asked == {r["full_name"].lower() for r in doc["repos"].values()}
        assert after["github"] - before["github"] == len(doc["repos"])
    assert {r["status"] for r in [*doc["papers"].values(), *doc["repos"].values()]} == {"ok"}


# -- offline -------------------------------------------------------------------------------


def _expired_cache(tmp_path: Path, log: Path, arxiv: FakeArxiv, github: FakeGitHub) -> Path:
    """Fill the cache with every record of ``log``, then let them all expire."""
    cfg = _config(tmp_path, arxiv, github,
                  cache={"arxiv_ttl": "100ms", "github_ttl": "100ms", "not_found_ttl": "100ms"})
    code, err = _run(log, cfg)
    assert code == 0, err
    time.sleep(0.25)
    return cfg


def test_offline_serves_expired_records_as_stale_and_exits_0(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    cfg = _expired_cache(tmp_path, log, arxiv_server, github_server)
    online = load_json(log.with_name("000.enriched.json"))
    n = arxiv_server.count() + github_server.count()
    code, err = _run(log, cfg, "--offline")
    assert code == 0, err
    assert arxiv_server.count() + github_server.count() == n
    doc = load_json(log.with_name("000.enriched.json"))
    assert {p["status"] for p in doc["papers"].values()} == {"stale"}
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}
    # each stale record is noted, as expired, without making the run fail
    assert {(e["kind"], e["id"]) for e in doc["errors"]} == {
        *(("arxiv", p) for p in doc["papers"]), *(("github", r) for r in doc["repos"])}
    assert all("expired" in e["message"] for e in doc["errors"])
    for key, rec in doc["repos"].items():
        assert rec["stars"] == online["repos"][key]["stars"]
    for pid, rec in doc["papers"].items():
        assert rec["title"] == online["papers"][pid]["title"]


def test_offline_marks_ids_never_fetched_missing_and_exits_1(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    cfg = _expired_cache(tmp_path, log, arxiv_server, github_server)
    more = log.with_name("001.txt")
    added = "* 5、新加的：Mixtral arXiv:2401.04088，代码 github.com/mistralai/mistral-src\n"
    more.write_text(log.read_text(encoding="utf-8") + added, encoding="utf-8")
    n = arxiv_server.count() + github_server.count()
    code, err = _run(more, cfg, "--offline", "--verbose")
    assert code == 1
    assert arxiv_server.count() + github_server.count() == n
    assert "2401.04088" in err and "mistralai/mistral-src" in err  # --verbose: per id
    assert "arXiv: 1 paper not fetched: offline: never fetched" in err  # one per cause
    doc = load_json(more.with_name("001.enriched.json"))
    assert doc["papers"].pop("2401.04088")["status"] == "missing"
    assert doc["repos"].pop("mistralai/mistral-src")["status"] == "missing"
    assert {p["status"] for p in doc["papers"].values()} == {"stale"}
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}
    never = {e["id"] for e in doc["errors"] if "never fetched" in e["message"]}
    assert never == {"2401.04088", "mistralai/mistral-src"}
    assert {e["id"] for e in doc["errors"] if "expired" in e["message"]} == {
        *doc["papers"], *doc["repos"]}


# -- several files -------------------------------------------------------------------------


def test_the_exit_status_is_the_worst_of_the_files(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    cfg = _config(tmp_path, arxiv_server, github_server)
    assert _run(log, cfg)[0] == 0
    partial = log.with_name("001.txt")
    partial.write_text("只记了一篇还没抓取的论文 arXiv:2401.04088\n", encoding="utf-8")
    absent = log.with_name("absent.txt")
    outputs = [p.with_name(f"{p.stem}.enriched.{ext}") for p in (log, partial)
               for ext in ("md", "json")]

    def run(*files: Path) -> tuple[int, str]:
        for out in outputs:
            out.unlink(missing_ok=True)
        args = [a for f in files for a in ("--file", str(f))]
        code, _, err = run_cli("run", *args, "--config", str(cfg), "--offline")
        return code, err

    assert run(log)[0] == 0
    assert run(log, partial)[0] == 1
    assert run(partial, log)[0] == 1
    assert all(out.exists() for out in outputs)
    for files in ((absent, log, partial), (log, partial, absent), (partial, absent, log)):
        code, err = run(*files)
        assert code == 2, files
        assert "absent.txt" in err and "Traceback" not in err
        assert all(out.exists() for out in outputs), files  # the other files are written
        assert not list(tmp_path.glob("**/absent.enriched.*"))
    code, err = run(log, absent)
    assert code == 2 and all(out.exists() for out in outputs[:2])


# -- interruption --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slow_api", ["github", pytest.param("arxiv", marks=pytest.mark.slow)])
def test_sigint_mid_fetch_exits_130_and_frees_the_lock(
        tmp_path: Path, log: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        slow_api: str) -> None:
    cfg = _config(tmp_path, arxiv_server, github_server, github={"concurrency": 2})
    held = threading.Event()  # the slow API's answers wait for this (at most 30 s)
    slow = github_server if slow_api == "github" else arxiv_server
    slow.faults.add("rest" if slow_api == "github" else "query", "block", times=50, event=held)
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "enrich", "run", "--file", str(log), "--config", str(cfg)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: slow.count() >= 1)
        time.sleep(0.1)  # the other API's requests go on meanwhile
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        held.set()
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    if slow_api == "github":
        # requests in flight are abandoned, not waited for (an arXiv request in flight is
        # waited for today, until http.timeout: 2 s in this config)
        assert took < 1.5
    assert not list(log.parent.glob("*.enriched.*"))
    # the lock is free: the next run proceeds (it would exit 75 otherwise)
    code, err2 = _run(log, cfg)
    assert code == 0, err2
    doc = load_json(log.with_name("000.enriched.json"))
    assert {r["status"] for r in [*doc["papers"].values(), *doc["repos"].values()]} == {"ok"}
