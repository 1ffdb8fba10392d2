"""The cache: records, TTLs, ETags per credential, star history, stats, prune and clear
on both backends (the ``store`` fixture runs each behaviour test on SQLite and on
PostgreSQL); then SQLite's migrations, unusable files, concurrent writers and crashes,
and PostgreSQL's migrations, claims, connection errors and shared arXiv gate."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enrich.errors import CacheError
from enrich.models import License, Paper, Repo, StarTrend
from enrich.store import (
    APPLICATION_ID,
    LATEST_VERSION,
    MIGRATIONS,
    Cached,
    CacheStore,
    Store,
    paper_key,
    remove_database,
    repo_key,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
DAY = 86400.0


def full_paper() -> Paper:
    return Paper(
        status="ok",
        title="A paper about caches",
        authors=["Ada Lovelace", "Alan Turing"],
        abstract="We cache. 我们缓存。 <b>not html</b>",
        published=datetime(2023, 5, 16, 17, 59, 59, tzinfo=UTC),
        updated=datetime(2023, 6, 1, 8, 0, tzinfo=UTC),
        latest_version="v3",
        primary_category="cs.CL",
        categories=["cs.CL", "cs.LG"],
        doi="10.1000/xyz",
        journal_ref="J. Caches 1 (2023)",
        comment="12 pages",
        abs_url="https://arxiv.org/abs/2305.09781v3",
        pdf_url="https://arxiv.org/pdf/2305.09781v3",
        code=["flexflow/flexflow"],
    )


def full_repo(stars: int = 1234) -> Repo:
    return Repo(
        status="ok",
        full_name="FlexFlow/FlexFlow",
        html_url="https://github.com/flexflow/FlexFlow",
        description="A distributed deep learning framework",
        homepage="https://flexflow.ai",
        stars=stars,
        forks=200,
        license=License(spdx_id="Apache-2.0", name="Apache License 2.0"),
        topics=["deep-learning", "llm"],
        language="C++",
        archived=False,
        fork=False,
        pushed_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        renamed_from="flexflow/oldname",
        papers=["2305.09781"],
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "enrich.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, db: Path) -> Iterator[CacheStore]:
    """An empty cache on each backend."""
    if request.param == "postgres":
        from enrich.store.postgres import PostgresStore

        with PostgresStore(request.getfixturevalue("pg_url")) as pg:
            yield pg
    else:
        with Store(db) as s:
            yield s


def reopen(store: CacheStore, *, readonly: bool = False) -> CacheStore:
    """Another store on the same cache."""
    if isinstance(store, Store):
        return Store(store.path, readonly=readonly)
    from enrich.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url, readonly=readonly)


def execute_raw(store: CacheStore, sql: str) -> None:
    """Run ``sql`` on the cache's database behind the store's back."""
    if isinstance(store, Store):
        conn = sqlite3.connect(store.path)
        conn.execute(sql)
        conn.commit()
        conn.close()
        return
    import psycopg

    from enrich.store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url, autocommit=True) as pg:
        pg.execute(sql)  # type: ignore[call-overload]


def latest_version(store: CacheStore) -> int:
    if isinstance(store, Store):
        return LATEST_VERSION
    from enrich.store.postgres import PG_LATEST_VERSION

    return PG_LATEST_VERSION


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db)


# --------------------------------------------------------------------------- records


def test_paper_roundtrip_keeps_every_field(store: CacheStore) -> None:
    paper = full_paper()
    store.put_papers({"2305.09781": paper}, NOW)
    got = store.get_papers(["2305.09781"])["2305.09781"]
    assert got.fetched_at == NOW
    assert got.etag is None
    assert got.record == paper.model_copy(update={"fetched_at": NOW})


def test_repo_roundtrip_keeps_every_field(store: CacheStore) -> None:
    repo = full_repo()
    store.put_repos({"flexflow/flexflow": repo}, NOW, credential="anon", etags={
        "flexflow/flexflow": 'W/"abc"'})
    got = store.get_repos(["flexflow/flexflow"], "anon")["flexflow/flexflow"]
    assert got.record == repo.model_copy(update={"fetched_at": NOW})
    assert got.etag == 'W/"abc"'


def test_derived_fields_are_not_cached(store: CacheStore) -> None:
    repo = full_repo().model_copy(update={
        "trend": StarTrend(week=5), "linked_from": ["2305.09781"],
        "fetched_at": NOW - timedelta(days=3)})
    store.put_repos({"flexflow/flexflow": repo}, NOW, credential="anon")
    got = store.get_repos(["flexflow/flexflow"], "anon")["flexflow/flexflow"].record
    assert got.trend is None
    assert got.linked_from is None
    assert got.fetched_at == NOW  # the put time, not the record's old value


def test_absent_keys_are_left_out(store: CacheStore) -> None:
    store.put_papers({"2305.09781": full_paper()}, NOW)
    assert set(store.get_papers(["2305.09781", "1706.03762"])) == {"2305.09781"}
    assert store.get_repos(["a/b"], "anon") == {}
    assert store.get_papers([]) == {}


def test_repo_keys_ignore_case(store: CacheStore) -> None:
    store.put_repos({"Owner/Repo": full_repo(1)}, NOW, credential="anon")
    store.put_repos({"owner/repo": full_repo(2)}, NOW + timedelta(hours=1), credential="anon")
    got = store.get_repos(["OWNER/REPO"], "anon")
    assert list(got) == ["owner/repo"]
    assert got["owner/repo"].record.stars == 2
    assert store.stats()["repos"]["total"] == 1
    assert [s for _, s in store.star_history("Owner/REPO")] == [1, 2]


def test_paper_keys_are_canonical(store: CacheStore) -> None:
    store.put_papers({"arXiv:2305.09781v2": full_paper(), "math.GT/0309136": full_paper()}, NOW)
    assert set(store.get_papers(["2305.09781", "math/0309136v1"])) == {
        "2305.09781", "math/0309136"}
    assert paper_key("hep-th/9901001v3") == "hep-th/9901001"
    assert repo_key(" FlexFlow/FlexFlow.git ") == "flexflow/flexflow"


def test_not_found_verdict_replaces_ok_data(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo()}, NOW, credential="anon", etags={"a/b": '"e1"'})
    store.put_repos({"a/b": Repo(status="not_found")}, NOW + timedelta(days=1), credential="anon")
    got = store.get_repos(["a/b"], "anon")["a/b"]
    assert got.record.status == "not_found"
    assert got.record.full_name is None
    assert got.etag is None  # the ETag named data that is gone


# --------------------------------------------------------------------------- freshness


@pytest.mark.parametrize(
    ("status", "age_days", "fresh"),
    [
        ("ok", 0.5, True),
        ("ok", 1.5, False),
        ("unavailable", 0.5, True),
        ("unavailable", 1.5, False),
        ("not_found", 0.05, True),
        ("not_found", 0.5, False),  # not_found_ttl (0.1 d) is shorter than ttl (1 d)
    ],
)
def test_freshness_uses_not_found_ttl_for_not_found(
    store: CacheStore, status: str, age_days: float, fresh: bool
) -> None:
    store.put_repos({"a/b": Repo(status=status)}, NOW, credential="anon")  # type: ignore[arg-type]
    cached = store.get_repos(["a/b"], "anon")["a/b"]
    later = NOW + timedelta(days=age_days)
    assert cached.is_fresh(ttl=DAY, not_found_ttl=0.1 * DAY, now=later) is fresh


def test_zero_ttl_means_always_expired() -> None:
    cached = Cached(record=Paper(status="ok"), fetched_at=NOW)
    assert not cached.is_fresh(0, 0, NOW)
    assert cached.is_fresh(1, 1, NOW)


@pytest.mark.parametrize("status", ["stale", "missing", "error"])
def test_transient_statuses_are_never_cached(store: CacheStore, status: str) -> None:
    with pytest.raises(ValueError, match="never cached"):
        store.put_papers({"1706.03762": full_paper(),
                          "2305.09781": Paper(status=status)}, NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="never cached"):
        store.put_repos({"a/b": full_repo(), "c/d": Repo(status=status)},  # type: ignore[arg-type]
                        NOW, credential="anon")
    # nothing from the refused call was written, not even its good records
    assert store.get_papers(["1706.03762", "2305.09781"]) == {}
    assert store.get_repos(["a/b", "c/d"], "anon") == {}
    assert store.star_history("a/b") == []


def test_naive_datetimes_are_refused(store: CacheStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_papers({"2305.09781": full_paper()}, datetime(2026, 1, 1))


# --------------------------------------------------------------------------- etags


def test_etag_is_returned_only_for_its_credential(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo()}, NOW, credential="tok-alice", etags={"A/B": '"alice"'})
    assert store.get_repos(["a/b"], "tok-alice")["a/b"].etag == '"alice"'
    assert store.get_repos(["a/b"], "tok-bob")["a/b"].etag is None
    assert store.get_repos(["a/b"], "anon")["a/b"].etag is None


def test_new_data_drops_every_old_etag(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo(1)}, NOW, credential="tok-alice", etags={"a/b": '"a1"'})
    store.put_repos({"a/b": full_repo(2)}, NOW, credential="anon", etags={"a/b": '"n1"'})
    assert store.get_repos(["a/b"], "tok-alice")["a/b"].etag is None
    assert store.get_repos(["a/b"], "anon")["a/b"].etag == '"n1"'
    store.put_repos({"a/b": full_repo(3)}, NOW, credential="tok-alice")  # e.g. from GraphQL
    assert store.get_repos(["a/b"], "anon")["a/b"].etag is None


def test_touch_keeps_data_and_etag_and_records_stars(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo(50)}, NOW, credential="anon", etags={"a/b": '"e"'})
    later = NOW + timedelta(days=2)
    store.touch_repos(["A/B", "not/cached"], later, credential="anon")
    got = store.get_repos(["a/b"], "anon")["a/b"]
    assert got.fetched_at == later
    assert got.record.fetched_at == later
    assert got.record == full_repo(50).model_copy(update={"fetched_at": later})
    assert got.etag == '"e"'
    assert store.star_history("a/b") == [(NOW, 50), (later, 50)]
    assert store.get_repos(["not/cached"], "anon") == {}


# --------------------------------------------------------------------------- history


def test_star_history_is_oldest_first(store: CacheStore) -> None:
    for days, stars in ((5, 150), (1, 110), (3, 130)):
        store.put_repos({"a/b": full_repo(stars)}, NOW + timedelta(days=days), credential="anon")
    store.put_repos({"c/d": full_repo(7)}, NOW, credential="anon")
    store.put_repos({"e/f": Repo(status="ok", stars=None)}, NOW, credential="anon")
    assert store.star_history("a/b") == [
        (NOW + timedelta(days=1), 110), (NOW + timedelta(days=3), 130),
        (NOW + timedelta(days=5), 150)]
    histories = store.star_histories(["A/B", "c/d", "e/f", "x/y"])
    assert set(histories) == {"a/b", "c/d"}
    assert histories["c/d"] == [(NOW, 7)]


def test_history_survives_a_not_found_verdict(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo(9)}, NOW, credential="anon")
    store.put_repos({"a/b": Repo(status="not_found")}, NOW + timedelta(days=1), credential="anon")
    store.touch_repos(["a/b"], NOW + timedelta(days=2), credential="anon")
    assert store.star_history("a/b") == [(NOW, 9)]


# --------------------------------------------------------------------------- scale


def test_lookups_of_5000_keys(store: CacheStore) -> None:
    papers = {f"2301.{i:05d}": Paper(status="ok", title=f"t{i}", abstract="x" * 600)
              for i in range(5000)}
    repos = {f"Owner{i}/Repo{i}": Repo(status="ok", full_name=f"Owner{i}/Repo{i}", stars=i)
             for i in range(5000)}
    start = time.perf_counter()
    store.put_papers(papers, NOW)
    store.put_repos(repos, NOW, credential="anon", etags={k: f'"{k}"' for k in repos})
    got_p = store.get_papers([*papers, "9999.99999"])
    got_r = store.get_repos(list(repos), "anon")
    hist = store.star_histories(repos)
    elapsed = time.perf_counter() - start
    assert len(got_p) == 5000
    assert len(got_r) == 5000
    assert got_r["owner4999/repo4999"].etag == '"Owner4999/Repo4999"'
    assert len(hist) == 5000
    assert hist["owner0/repo0"] == [(NOW, 0)]  # zero stars is an observation too
    assert elapsed < 5.0, f"5000-key put/get took {elapsed:.2f} s"


# --------------------------------------------------------------------------- migrations


def test_fresh_database_gets_latest_schema(db: Path) -> None:
    Store(db).close()
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION == len(MIGRATIONS)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"papers", "repos", "etags", "star_history"} <= tables


def test_empty_version_0_database_is_migrated(db: Path) -> None:
    db.parent.mkdir(parents=True)
    sqlite3.connect(db).close()
    db.touch()
    with Store(db) as s:
        s.put_papers({"2305.09781": full_paper()}, NOW)
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


def test_older_schema_is_migrated_keeping_data(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO papers VALUES ('2305.09781', 'ok', '2026-11-01T00:00:00.000000Z', ?)",
        (full_paper().model_dump_json(exclude={"fetched_at"}),))
    conn.close()
    with Store(db) as s:
        assert s.get_papers(["2305.09781"])["2305.09781"].record.title == "A paper about caches"
        s.put_repos({"a/b": full_repo(3)}, NOW, credential="anon")
        assert s.star_history("a/b") == [(NOW, 3)]
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


def test_newer_schema_is_refused_and_left_alone(db: Path) -> None:
    with Store(db) as s:
        s.put_papers({"2305.09781": full_paper()}, NOW)
    raw(db).execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(CacheError, match="newer enrich") as info:
            Store(db, readonly=readonly)
        assert str(db) in str(info.value)
        assert "upgrade enrich" in info.value.reason
    assert db.read_bytes() == before


def test_garbage_file_is_refused_and_left_alone(db: Path) -> None:
    db.parent.mkdir(parents=True)
    garbage = b"this is not a database, just some text \x00\x01\x02" * 100
    db.write_bytes(garbage)
    for readonly in (False, True):
        with pytest.raises(CacheError) as info:
            Store(db, readonly=readonly)
        assert info.value.path == str(db)
        assert str(db) in str(info.value)
        assert "not a usable SQLite database" in info.value.reason
        assert "move it aside" in info.value.reason
    assert db.read_bytes() == garbage
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_another_programs_database_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="another program"):
        Store(db)
    tables = [r[0] for r in raw(db).execute("SELECT name FROM sqlite_master")]
    assert tables == ["invoices"]


def test_folder_that_cannot_be_created_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(CacheError, match="cannot create the folder") as info:
        Store(blocker / "sub" / "enrich.sqlite3")
    assert "cache.path" in info.value.reason


def test_path_that_is_a_folder_is_a_cache_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="is a folder"):
        Store(tmp_path)


def test_closed_store_raises_cache_error(db: Path) -> None:
    s = Store(db)
    s.close()
    s.close()
    with pytest.raises(CacheError, match="closed"):
        s.get_papers(["2305.09781"])


def test_unreadable_row_is_treated_as_absent(
    store: CacheStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.put_papers({"2305.09781": full_paper(), "1706.03762": full_paper()}, NOW)
    execute_raw(store, "UPDATE papers SET data = '{\"status\": \"ok\", \"bogus\": 1}' "
                "WHERE id = '1706.03762'")
    with caplog.at_level(logging.WARNING, logger="enrich.store"):
        got = store.get_papers(["2305.09781", "1706.03762"])
    assert list(got) == ["2305.09781"]
    assert "1706.03762" in caplog.text


# --------------------------------------------------------------------------- read-only


def test_readonly_missing_file_is_an_empty_cache_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "enrich.sqlite3"
    with Store(db, readonly=True) as s:
        assert s.get_papers(["2305.09781"]) == {}
        assert s.stats()["papers"]["total"] == 0
        with pytest.raises(CacheError, match="read-only"):
            s.put_papers({"2305.09781": full_paper()}, NOW)
    assert not db.parent.exists()


def test_readonly_reads_an_older_schema_without_upgrading_it(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = db.read_bytes()
    with Store(db, readonly=True) as s:
        assert s.star_histories(["a/b"]) == {}
    assert db.read_bytes() == before


def test_readonly_sees_committed_data(store: CacheStore) -> None:
    store.put_repos({"a/b": full_repo(5)}, NOW, credential="anon")
    with reopen(store, readonly=True) as ro:
        assert ro.get_repos(["a/b"], "anon")["a/b"].record.stars == 5
        assert ro.star_history("a/b") == [(NOW, 5)]


# --------------------------------------------------------------------------- stats, prune, clear


def test_stats_counts_by_status_and_freshness(store: CacheStore) -> None:
    store.put_papers({"2305.09781": full_paper(), "1706.03762": Paper(status="not_found")},
                     NOW - timedelta(days=10))
    store.put_repos({"a/b": full_repo(1), "c/d": Repo(status="unavailable")}, NOW,
                    credential="anon", etags={"a/b": '"x"'})
    store.put_repos({"e/f": full_repo(2)}, NOW - timedelta(days=3), credential="anon")
    st = store.stats(NOW, arxiv_ttl=30 * DAY, github_ttl=DAY, not_found_ttl=7 * DAY)
    assert st["papers"]["total"] == 2
    assert st["papers"]["by_status"] == {"not_found": 1, "ok": 1}
    assert (st["papers"]["fresh"], st["papers"]["expired"]) == (1, 1)
    assert st["repos"]["by_status"] == {"ok": 2, "unavailable": 1}
    assert (st["repos"]["fresh"], st["repos"]["expired"]) == (2, 1)
    assert st["repos"]["oldest"] == NOW - timedelta(days=3)
    assert st["etags"] == 1
    assert (st["history_rows"], st["history_repos"]) == (2, 2)
    assert st["size_bytes"] > 0
    assert st["schema_version"] == latest_version(store)
    assert "fresh" not in store.stats()["papers"]


def test_prune_follows_the_documented_rule(store: CacheStore) -> None:
    ttl = DAY
    store.put_repos({"old/ok": full_repo(1)}, NOW - timedelta(days=5), credential="anon",
                    etags={"old/ok": '"o"'})
    store.put_repos({"recent/ok": full_repo(2)}, NOW - timedelta(days=3), credential="anon")
    store.put_repos({"old/nf": Repo(status="not_found")}, NOW - timedelta(days=8),
                    credential="anon")
    store.put_repos({"new/nf": Repo(status="not_found")}, NOW - timedelta(days=6),
                    credential="anon")
    store.put_papers({"2305.09781": full_paper()}, NOW - timedelta(days=100))
    store.put_papers({"1706.03762": full_paper()}, NOW - timedelta(days=130))
    removed = store.prune(NOW, arxiv_ttl=30 * DAY, github_ttl=ttl, not_found_ttl=7 * DAY,
                          history_keep=4 * DAY)
    assert removed == {"papers": 1, "repos": 2, "etags": 1, "history": 1}
    assert set(store.get_repos(["old/ok", "recent/ok", "old/nf", "new/nf"], "anon")) == {
        "recent/ok", "new/nf"}
    assert set(store.get_papers(["2305.09781", "1706.03762"])) == {"2305.09781"}
    assert store.star_history("old/ok") == []  # older than history_keep
    assert store.star_history("recent/ok") == [(NOW - timedelta(days=3), 2)]


def test_clear_removes_everything_but_keeps_the_schema(store: CacheStore) -> None:
    store.put_papers({"2305.09781": full_paper()}, NOW)
    store.put_repos({"a/b": full_repo()}, NOW, credential="anon", etags={"a/b": '"x"'})
    store.clear()
    st = store.stats()
    assert st["papers"]["total"] == st["repos"]["total"] == st["etags"] == 0
    assert st["history_rows"] == 0
    store.put_papers({"2305.09781": full_paper()}, NOW)
    assert len(store.get_papers(["2305.09781"])) == 1


def test_remove_database_deletes_file_and_companions(db: Path) -> None:
    with Store(db) as s:
        s.put_papers({"2305.09781": full_paper()}, NOW)
        removed = {p.name for p in remove_database(db)}
    assert db.name in removed
    assert not db.exists()
    assert remove_database(db) == []


# --------------------------------------------------------------------------- concurrency


def test_two_stores_in_two_threads_write_without_lock_errors(db: Path) -> None:
    Store(db).close()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            with Store(db) as s:
                for batch in range(40):
                    s.put_repos({f"{prefix}{batch}/r{i}": full_repo(i) for i in range(25)},
                                NOW, credential="anon")
                    s.get_repos([f"{prefix}0/r0"], "anon")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raw(db).execute("SELECT count(*) FROM repos").fetchone()[0] == 2000


def test_one_store_shared_by_worker_threads(store: CacheStore) -> None:
    def work(n: int) -> None:
        for i in range(30):
            store.put_papers({f"2301.{n:02d}{i:03d}": Paper(status="ok", title="t")}, NOW)
            store.get_papers([f"2301.{n:02d}{i:03d}"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.stats()["papers"]["total"] == 180


_CHILD_PRELUDE = """
import sys, time
from datetime import UTC, datetime
from enrich.models import Repo
from enrich.store import Store
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
"""


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_PRELUDE + textwrap.dedent(code), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_write_concurrently_without_lock_errors(db: Path) -> None:
    code = """
    s = Store(sys.argv[1])
    for batch in range(30):
        s.put_repos({f"{sys.argv[2]}{batch}/r{i}": Repo(status="ok", stars=i)
                     for i in range(20)}, NOW, credential="anon")
        s.touch_repos([f"{sys.argv[2]}0/r1"], NOW, credential="anon")
    s.close()
    print("done")
    """
    children = [_child(code, str(db), prefix) for prefix in ("p", "q")]
    results = [c.communicate(timeout=60) for c in children]
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "done"
    conn = raw(db)
    assert conn.execute("SELECT count(*) FROM repos").fetchone()[0] == 1200
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_writer_blocked_too_long_gets_a_cache_error(db: Path) -> None:
    Store(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Store(db, busy_timeout=0.2) as s:
            assert s.get_papers(["2305.09781"]) == {}  # readers are not blocked (WAL)
            start = time.monotonic()
            with pytest.raises(CacheError, match="locked by another process"):
                s.put_papers({"2305.09781": full_paper()}, NOW)
            assert time.monotonic() - start >= 0.15
    finally:
        holder.execute("ROLLBACK")
        holder.close()


_BATCH = """
def put_batch(s, n, size, width):
    s.put_repos({f"done{n}/r{i}": Repo(status="ok", full_name=f"Done{n}/R{i}", stars=i,
                                       description="d" * width) for i in range(size)},
                NOW, credential="anon", etags={f"done{n}/r{i}": "e" for i in range(size)})
"""


def test_kill_9_mid_transaction_leaves_a_consistent_database(db: Path) -> None:
    code = _BATCH + textwrap.dedent("""
    s = Store(sys.argv[1])
    for n in range(3):
        put_batch(s, n, int(sys.argv[2]), 500)
    with s._write() as conn:  # a big transaction that never commits
        conn.executemany(
            "INSERT INTO repos VALUES (?, 'ok', '2026-01-01T00:00:00.000000Z', ?)",
            ((f"half/r{i}", '{"status": "ok"}' + " " * 2000) for i in range(20000)))
        print("mid", flush=True)
        time.sleep(60)
    """)
    child = _child(code, str(db), "200")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "mid", child.stderr.read() if child.stderr else ""
    assert Path(f"{db}-wal").stat().st_size > 1_000_000  # uncommitted pages did reach the WAL
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    _assert_consistent(db, 200, expect_batches=3)


def test_kill_9_during_a_put_loop_leaves_whole_batches(db: Path) -> None:
    code = _BATCH + textwrap.dedent("""
    s = Store(sys.argv[1])
    n = 0
    while True:
        put_batch(s, n, int(sys.argv[2]), 300)
        if n == 0:
            print("started", flush=True)
        n += 1
    """)
    child = _child(code, str(db), "300")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    time.sleep(0.5)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    _assert_consistent(db, 300, expect_batches=None)


def _assert_consistent(db: Path, batch: int, expect_batches: int | None) -> None:
    conn = raw(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    repos = conn.execute("SELECT count(*) FROM repos").fetchone()[0]
    etags = conn.execute("SELECT count(*) FROM etags").fetchone()[0]
    history = conn.execute("SELECT count(*) FROM star_history").fetchone()[0]
    assert repos > 0
    assert repos % batch == 0  # whole transactions or nothing
    assert repos == etags == history
    if expect_batches is not None:
        assert repos == batch * expect_batches
    keys = [r[0] for r in conn.execute("SELECT key FROM repos")]
    assert not any(k.startswith("half/") for k in keys)
    with Store(db) as s:
        got = s.get_repos(keys, "anon")
        assert s.stats()["repos"]["total"] == repos
    assert len(got) == repos
    for key, cached in got.items():
        owner, name = key.split("/")
        assert cached.record.full_name == f"D{owner[1:]}/R{name[1:]}"
        assert cached.record.description is not None
        assert len(cached.record.description) in (300, 500)
        assert cached.etag == "e"
