"""What only the PostgreSQL cache does: migrations shared by hosts, connection errors,
claims with leases, and the arXiv gate shared across hosts. (The behaviour it shares
with SQLite is tested on both in test_store.py.)"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

import psycopg
import pytest
from fakeapi.github import FakeGitHub, github_config
from pgserver import PgServer
from support import run_cli

from enrich.errors import CacheError
from enrich.fetch import FetchResult
from enrich.fetch.github import GithubFetcher
from enrich.models import Repo
from enrich.store.postgres import PG_LATEST_VERSION, PostgresStore


def test_hosts_opening_a_new_database_at_once_migrate_it_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            PostgresStore(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM enrich_schema").fetchall() == [
            (PG_LATEST_VERSION,)]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE enrich_schema SET version = 99")
    with pytest.raises(CacheError, match="newer enrich"):
        PostgresStore(pg_url)


def test_another_programs_tables_are_left_alone(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE papers (x integer)")
    with pytest.raises(CacheError, match="did not create"):
        PostgresStore(pg_url)


def test_a_database_that_refuses_is_one_line_naming_it_never_the_password(
        pg_server: PgServer, tmp_path: Path) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{pg_server.port}/no_such_db"
    with pytest.raises(CacheError) as info:
        PostgresStore(url)
    text = str(info.value)
    assert "127.0.0.1" in text and "no_such_db" in text
    assert "s3cret" not in text
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"cache:\n  url: {url}\n", encoding="utf-8")
    code, out, err = run_cli("cache", "stats", "--config", str(cfg))
    assert code == 2
    assert "no_such_db" in err and "s3cret" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_a_server_that_cannot_be_reached_is_a_cache_error(pg_server: PgServer) -> None:
    with pytest.raises(CacheError, match="cannot connect") as info:
        PostgresStore("postgresql://bob:pw@127.0.0.1:1/teamdb", connect_timeout=2)
    assert "127.0.0.1:1/teamdb" in str(info.value)
    assert ":pw@" not in str(info.value)


def test_a_claim_is_its_owners_until_released_or_expired(pg_url: str) -> None:
    with PostgresStore(pg_url) as a, PostgresStore(pg_url) as b:
        assert a.claim("paper", ["1", "2"], "A", 30) == ["1", "2"]
        assert b.claim("paper", ["2", "3"], "B", 30) == ["3"]
        assert b.claim("repo", ["2"], "B", 30) == ["2"]  # another kind: another claim
        assert a.claim("paper", ["2"], "A", 30) == ["2"]  # its own: still its
        a.release("paper", ["2"], "A")
        assert b.claim("paper", ["2"], "B", 30) == ["2"]
        assert a.claim("paper", ["1"], "A", 0.2) == ["1"]  # a short lease ...
        time.sleep(0.3)
        assert b.claim("paper", ["1"], "B", 30) == ["1"]  # ... runs out: taken over


def test_renewing_keeps_a_claim(pg_url: str) -> None:
    with PostgresStore(pg_url) as a, PostgresStore(pg_url) as b:
        assert a.claim("paper", ["1"], "A", 0.3) == ["1"]
        time.sleep(0.2)
        a.renew("A", 0.3)
        time.sleep(0.2)
        assert b.claim("paper", ["1"], "B", 30) == []


def test_the_arxiv_gate_is_shared_by_hosts(pg_url: str) -> None:
    """Two 'hosts' (stores with their own pools, each on its own event loop): their
    turns never overlap and starts are spaced by the interval."""
    interval = 0.15
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def host() -> None:
        async def go() -> None:
            with PostgresStore(pg_url) as store:
                gate = store.arxiv_gate("http://127.0.0.1:9/api/query")
                for _ in range(3):
                    async with gate.turn(interval):
                        start = time.monotonic()
                        await asyncio.sleep(0.02)
                        with lock:
                            spans.append((start, time.monotonic()))
        asyncio.run(go())

    threads = [threading.Thread(target=host) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 6
    for (s1, e1), (s2, _) in itertools.pairwise(spans):
        assert s2 >= e1, "two turns overlapped"
        assert s2 - s1 >= interval, f"starts {s2 - s1:.3f} s apart"


def test_a_github_quota_spent_by_one_host_is_not_asked_again_by_another(
        pg_url: str, github_server: FakeGitHub) -> None:
    github_server.anon_limit = 2
    for name in ("a/one", "b/two", "c/three"):
        github_server.add_repo(name, stars=1)
    cfg = github_config(github_server)

    async def host(keys: list[str]) -> FetchResult[Repo]:
        with PostgresStore(pg_url) as store:
            fetcher = GithubFetcher(cfg, shared_quota=store.github_quota())
            try:
                return await fetcher.fetch(keys)
            finally:
                await fetcher.aclose()

    first = asyncio.run(host(["a/one", "b/two"]))  # spends the last of the quota
    assert {r.status for r in first.records.values()} == {"ok"}
    with PostgresStore(pg_url) as store, psycopg.connect(pg_url) as conn:
        assert store.quota_spent_until("anon") is not None
        stored = conn.execute("SELECT credential, remaining FROM github_quota").fetchall()
        assert stored == [("anon", 0)]  # the credential's digest ("anon"), never a token
    github_server.reset_log()
    second = asyncio.run(host(["c/three"]))
    assert github_server.count() == 0
    assert "c/three" in second.missing and "spent" in second.missing["c/three"]
