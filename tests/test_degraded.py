"""Degraded real APIs (issue 14): a short arXiv page, a dead GitHub, renames on refresh,
guessed GitHub Pages repositories, and a token GitHub rejects. Request counts and times
are asserted against the fakes, with short waits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv, arxiv_config
from fakeapi.github import FakeGitHub, github_config
from harness import fetch_ids
from support import run_cli, write_config

import enrich
from enrich.config import Config

TOKEN = "tok-degraded-secret-5150"


# -- arXiv: a short page ------------------------------------------------------------------


def test_short_pages_are_judged_from_their_entries(arxiv_server: FakeArxiv) -> None:
    # before: 130 papers with 2 unknown ids, totalResults counting them -> the package's
    # client asked for a next page, got it empty, and 100 papers ended as errors after 10
    # requests; now: one request per batch, every id judged from it
    ids = arxiv_server.add_synthetic(128)
    unknown = ["2399.99998", "2399.99999"]
    arxiv_server.miscount = True
    asked = ids[:60] + unknown + ids[60:]
    got = fetch_ids(arxiv_config(arxiv_server), asked)
    assert got.requests["arxiv"] == 2 == arxiv_server.count("query")
    assert got.statuses == {**dict.fromkeys(ids, "ok"), **dict.fromkeys(unknown, "not_found")}
    assert all(r.query["start"] == ["0"] for r in arxiv_server.requests)


# -- GitHub: a dead API -------------------------------------------------------------------


def _down(srv: FakeGitHub, kind: str = "status", **kw: object) -> None:
    """Every answer from now on is this fault (more than any run here can ask)."""
    srv.faults.add("*", kind, times=5000, **kw)


def test_github_answering_500_to_everything_stops_after_8_rest_attempts(
        github_server: FakeGitHub, tmp_path: Path) -> None:
    # before: 5 attempts per repository (33 repositories: 165 requests, 90 s; a 3131-
    # repository log: ~15,600 requests, ~2.4 h); now: 8 requests, whatever the log's size
    keys = github_server.add_synthetic(300)
    cfg = github_config(github_server, cache__path=tmp_path / "c.sqlite3", cache__github_ttl=0)
    seeded = fetch_ids(cfg, repo_keys=keys[:5])
    assert seeded.statuses == dict.fromkeys(keys[:5], "ok")
    github_server.reset_log()
    _down(github_server, status=500)
    t0 = time.monotonic()
    got = fetch_ids(cfg, repo_keys=keys)
    assert time.monotonic() - t0 < 3
    # 8 failed attempts in a row trip the breaker; at most the attempts already in
    # flight (4 at a time) go out after that
    assert 8 <= got.requests["github"] == github_server.count() < 12
    stopped = got.having("missing", "stale")
    assert len(stopped) >= 300 - 4 and got.having("ok") == set()
    assert set(keys[:5]) <= got.having("stale")  # cached data served, marked stale
    cause = {got.messages[k] for k in got.having("missing")}
    assert len(cause) == 1 and "GitHub is failing" in cause.pop()


def test_github_graphql_answering_500_stops_after_one_query_and_one_more_attempt(
        github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(1000)
    _down(github_server, status=500)
    got = fetch_ids(github_config(github_server, token=TOKEN), repo_keys=keys)
    # http.max_retries 4: the first batch's 5 attempts, then 1 of the next batch
    assert got.requests["github"] == 6 == github_server.count()
    assert got.having("missing") | got.having("error") == set(keys)
    assert len(got.having("error")) == 100  # the batch whose retries ran out


def test_a_hanging_github_ends_within_the_timeouts_of_two_rounds(
        github_server: FakeGitHub) -> None:
    # with the defaults (20 s timeout, 4 in flight): ~41 s without a token; with one,
    # 6 attempts of 20 s plus backoff: ~2 min (a blackholed host, ConnectTimeout, stops
    # after one query's 5 attempts)
    keys = github_server.add_synthetic(200)
    _down(github_server, "hang", seconds=1.0)
    t0 = time.monotonic()
    got = fetch_ids(github_config(github_server, http__timeout=0.2), repo_keys=keys)
    assert time.monotonic() - t0 < 2.5
    assert 8 <= got.requests["github"] < 12
    assert got.having("ok") == set()


def test_failures_between_good_answers_do_not_trip_the_breaker(
        github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(30)
    for _ in range(30):
        github_server.faults.add("*", "status", status=502)
        github_server.faults.add("*", "slow", seconds=0.0)  # a good answer
    got = fetch_ids(github_config(github_server, github__concurrency=1), repo_keys=keys)
    assert got.statuses == dict.fromkeys(keys, "ok")
    assert got.requests["github"] == 60


# -- renames ------------------------------------------------------------------------------


def test_refresh_of_a_renamed_repository_asks_its_new_name_once(
        github_server: FakeGitHub, tmp_path: Path) -> None:
    # before: a 301 and /repositories/ID on every run; now: the canonical name learned
    # (the cached full_name) is asked directly, conditionally: 1 request, a 304
    repo = github_server.add_repo("old/name", stars=8)
    github_server.rename("old/name", "Fresh/Name")
    cfg = github_config(github_server, cache__path=tmp_path / "c.sqlite3")
    first = fetch_ids(cfg, repo_keys=["old/name"])
    assert [r.path for r in github_server.requests] == [
        "/repos/old/name", f"/repositories/{repo.id}"]
    github_server.reset_log()
    again = fetch_ids(cfg, repo_keys=["old/name"], refresh=True)
    (req,) = github_server.requests
    assert req.path == "/repos/Fresh/Name" and req.headers.get("If-None-Match")
    assert github_server.count_status(304) == 1
    rec = again.repos["old/name"]  # the key stays the log's, renamed_from stays
    assert rec.full_name == "Fresh/Name" and rec.renamed_from == "old/name"
    assert rec == first.repos["old/name"].model_copy(update={"fetched_at": rec.fetched_at})


def test_a_repository_renamed_again_is_found_through_the_logs_name(
        github_server: FakeGitHub, tmp_path: Path) -> None:
    github_server.add_repo("old/name", stars=8)
    github_server.rename("old/name", "Fresh/Name")
    cfg = github_config(github_server, cache__path=tmp_path / "c.sqlite3")
    fetch_ids(cfg, repo_keys=["old/name"])
    github_server.repos.pop("fresh/name")  # the learned name is gone for good
    github_server.redirects.pop("old/name")
    github_server.add_repo("Newest/Name", stars=9)
    github_server.redirects["old/name"] = github_server.repos["newest/name"].id
    github_server.reset_log()
    got = fetch_ids(cfg, repo_keys=["old/name"], refresh=True)
    assert [r.path.split("/")[1] for r in github_server.requests] == [
        "repos", "repos", "repositories"]  # learned name 404, the log's name 301, by id
    rec = got.repos["old/name"]
    assert rec.full_name == "Newest/Name" and rec.renamed_from == "old/name"


# -- GitHub Pages guesses -----------------------------------------------------------------


def test_a_pages_guess_that_does_not_exist_is_cached_as_not_found(
        arxiv_server: FakeArxiv, github_server: FakeGitHub, tmp_path: Path) -> None:
    cfg = Config.load(env={}, overrides={
        "arxiv.api_url": arxiv_server.api_url, "arxiv.min_interval": 0,
        "github.api_url": github_server.url, "http.timeout": 2,
        "cache.path": str(tmp_path / "c.sqlite3")})
    text = "demo: https://someone.github.io/nothing-here/ and https://other.github.io/x/\n"
    first = enrich.enrich_text(text, cfg)
    assert first.repos == {}  # guesses that do not exist are no links
    assert sorted(r.path for r in github_server.requests) == [
        "/repos/other/x", "/repos/someone/nothing-here"]

    async def cached() -> dict[str, str]:
        async with enrich.Enricher(cfg) as e:
            return {k: c.record.status for k, c in
                    e.store.get_repos(["someone/nothing-here", "other/x"], "anon").items()}

    assert asyncio.run(cached()) == {"someone/nothing-here": "not_found",
                                     "other/x": "not_found"}
    github_server.reset_log()
    enrich.enrich_text(text, cfg)  # within not_found_ttl: no anonymous quota spent
    assert github_server.count() == 0


# -- a token GitHub rejects ---------------------------------------------------------------


@pytest.mark.parametrize("token_env", ["GITHUB_TOKEN", "ENRICH_GH"])
def test_a_rejected_token_is_exit_2_with_one_line_naming_the_variable(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        monkeypatch: pytest.MonkeyPatch, token_env: str) -> None:
    arxiv_server.add_paper("2301.00001")
    github_server.add_repo("o/r")  # the fake knows no token: every one is rejected
    log = tmp_path / "000.txt"
    log.write_text("https://arxiv.org/abs/2301.00001 https://github.com/o/r\n",
                   encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server,
                       github={"token_env": token_env})
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv(token_env, TOKEN)
    code, out, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 2
    assert err.splitlines() == [
        f"enrich: GitHub rejected the token in {token_env} (HTTP 401): set a valid token "
        f"in {token_env}, or unset it to fetch without one"]
    assert TOKEN not in out + err
    assert not list(tmp_path.rglob("*.enriched.*"))  # nothing written
    assert github_server.count() == 1
