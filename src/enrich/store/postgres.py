"""The PostgreSQL cache (``cache.url``): one database shared by several hosts.

- **The same schema** as the SQLite cache (records as JSON text, dates as fixed-width
  ISO-8601 UTC text, ETags per credential digest, star history), created by versioned
  migrations: the table ``enrich_schema`` holds how many have run. Two hosts opening
  a new database at once are safe: migrations run in one transaction under an
  advisory lock, and the version is read again once the lock is held. The schema is
  created on open even by a read-only store (it holds no data).
- **Claims** (migration 3): before a run fetches ids it claims them, each for a lease
  (``cache.lease``) that it renews while it works; another run needing a claimed id
  waits for the result instead of asking the API too. A claim whose lease ran out (the
  claimer died) may be taken over. Lease times use the database's clock, so hosts'
  clocks need not agree.
- **The arXiv gate** (:class:`PgGate`): one row per arXiv server with the last request's
  start and end, read and written under an advisory lock held for the whole request:
  every host sharing the cache sends one request at a time, spaced by ``min_interval``.
- **GitHub's rate limit** (remaining, reset) is kept per credential digest
  (:func:`enrich.fetch.policy.credential_id`, never the token): a host does not spend
  a quota another host has used up, it waits for the reset as if it had spent it.
- **Connections** come from a psycopg_pool pool in autocommit mode; every write is one
  explicit transaction. Rows are written in key order, so two hosts writing the same
  keys wait for each other rather than deadlock.

Errors become :class:`~enrich.errors.CacheError` naming ``user@host:port/dbname``,
never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from ..errors import CacheError
from ..fetch.arxiv_http import SPACING_MARGIN, server_of
from ..models import Paper, Repo
from .sqlite import (
    Cached,
    _ago,
    _fmt,
    _parse,
    _require_aware,
    histories_of,
    load_rows,
    paper_key,
    record_rows,
    repo_key,
)

__all__ = ["PG_LATEST_VERSION", "PG_MIGRATIONS", "PgGate", "PostgresStore", "describe_url"]

logger = logging.getLogger(__name__)

#: First key of every advisory lock enrich takes ("enri"); the second names the lock.
_LOCK_SPACE = 0x656E7269
_MIGRATION_LOCK = 1
#: How often a gate waiting for another host's turn tries the lock again.
_GATE_POLL = 0.02

_RECORDS = """CREATE TABLE {table} (
    {key} TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('ok', 'not_found', 'unavailable')),
    fetched_at TEXT NOT NULL,
    data TEXT NOT NULL
)"""

#: Migrations, in order, each a list of statements; ``enrich_schema.version`` counts
#: those applied. 1 and 2 are the SQLite cache's; 3 is what sharing needs.
#: Append only: never edit or reorder a released migration.
PG_MIGRATIONS: Sequence[Sequence[str]] = (
    (
        _RECORDS.format(table="papers", key="id"),
        _RECORDS.format(table="repos", key="key"),
        """CREATE TABLE etags (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            credential TEXT NOT NULL,
            etag TEXT NOT NULL,
            PRIMARY KEY (kind, key, credential)
        )""",
    ),
    (
        """CREATE TABLE star_history (
            key TEXT NOT NULL,
            observed_at TEXT NOT NULL,
            stars INTEGER NOT NULL,
            PRIMARY KEY (key, observed_at)
        )""",
    ),
    (
        """CREATE TABLE claims (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (kind, key)
        )""",
        "CREATE INDEX claims_owner ON claims (owner)",
        """CREATE TABLE arxiv_gate (
            server TEXT PRIMARY KEY,
            last_start TIMESTAMPTZ,
            last_end TIMESTAMPTZ
        )""",
        """CREATE TABLE github_quota (
            credential TEXT PRIMARY KEY,
            remaining INTEGER NOT NULL,
            reset_at TIMESTAMPTZ NOT NULL
        )""",
    ),
)
PG_LATEST_VERSION = len(PG_MIGRATIONS)


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/dbname``: the URL as messages show it, no password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unreadable cache.url)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


def _reason(exc: BaseException, password: str | None) -> str:
    """One line on what went wrong, with the password (if any) masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if password:
        text = text.replace(password, "***")
    return text


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode()) - 2**31


class PostgresStore:
    """The cache in a PostgreSQL database; thread-safe (a pool of connections).

    ``readonly=True`` never writes records (write methods raise
    :class:`~enrich.errors.CacheError`), but creates the schema if it is missing.
    """

    shares_work = True

    def __init__(self, url: str, *, readonly: bool = False, connect_timeout: float = 10.0,
                 max_connections: int = 8) -> None:
        self.url = url
        self.path = describe_url(url)
        self.readonly = readonly
        try:
            password = conninfo_to_dict(url).get("password")
        except psycopg.ProgrammingError as exc:
            raise self._fail(f"cache.url is not a usable connection URL ({exc})") from None
        self._password = str(password) if password else None
        self._kwargs: dict[str, Any] = {"autocommit": True,
                                        "connect_timeout": max(1, round(connect_timeout))}
        self._migrate()
        self._pool: ConnectionPool | None = ConnectionPool(
            url, min_size=1, max_size=max_connections, kwargs=self._kwargs, open=True,
            timeout=connect_timeout, name="enrich-cache")

    # ------------------------------------------------------------------ opening

    def _fail(self, reason: str) -> CacheError:
        return CacheError(self.path, reason)

    def _migrate(self) -> None:
        try:
            conn = psycopg.connect(self.url, **self._kwargs)
        except psycopg.Error as exc:
            raise self._fail("cannot connect: " + _reason(exc, self._password)) from None
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s::int4, %s::int4)",
                             (_LOCK_SPACE, _MIGRATION_LOCK))
                version = self._version(conn)
                if version > PG_LATEST_VERSION:
                    raise self._fail(
                        f"written by a newer enrich (cache schema version {version}, this "
                        f"enrich knows up to {PG_LATEST_VERSION}); upgrade enrich")
                for number in range(version, PG_LATEST_VERSION):
                    logger.info("cache %s: migration %d", self.path, number + 1)
                    for statement in PG_MIGRATIONS[number]:
                        conn.execute(statement)
                conn.execute("UPDATE enrich_schema SET version = %s", (PG_LATEST_VERSION,))
        except psycopg.Error as exc:
            raise self._fail(_reason(exc, self._password)) from None
        finally:
            conn.close()

    def _version(self, conn: psycopg.Connection[Any]) -> int:
        """The schema version (0 for an empty database); refuses another program's
        tables."""
        row = conn.execute("SELECT to_regclass('enrich_schema') IS NOT NULL, "
                           "to_regclass('papers') IS NOT NULL").fetchone()
        has_schema, has_papers = row if row is not None else (False, False)
        if not has_schema:
            if has_papers:
                raise self._fail("holds a papers table that enrich did not create (another "
                                 "program's database?); left untouched: use another database")
            conn.execute("CREATE TABLE enrich_schema (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO enrich_schema (version) VALUES (0)")
            return 0
        got = conn.execute("SELECT version FROM enrich_schema").fetchone()
        return int(got[0]) if got is not None else 0

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", readonly" if self.readonly else ""
        return f"PostgresStore({self.path!r}{mode})"

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is None:
            raise self._fail("the cache has been closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:  # the pool's PoolTimeout is one too
            raise self._fail(_reason(exc, self._password)) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction: all of it lands, or none."""
        if self.readonly:
            raise self._fail("opened read-only; nothing can be written")
        with self._conn() as conn, conn.transaction():
            yield conn

    # ------------------------------------------------------------------ reads

    def get_papers(self, ids: Iterable[str]) -> dict[str, Cached[Paper]]:
        """Cached papers by canonical id (ids are normalised first; absent ones left out)."""
        keys = sorted({paper_key(i) for i in ids})
        if not keys:
            return {}
        with self._conn() as conn:
            rows = conn.execute("SELECT id, fetched_at, data, NULL FROM papers "
                                "WHERE id = ANY(%s)", (keys,)).fetchall()
        return load_rows(Paper, rows, self.path)

    def get_repos(self, keys: Iterable[str], credential: str) -> dict[str, Cached[Repo]]:
        """Cached repositories by lower-case key, each with the ETag issued to ``credential``."""
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT r.key, r.fetched_at, r.data, e.etag FROM repos AS r "
                "LEFT JOIN etags AS e ON e.kind = 'repo' AND e.key = r.key "
                "AND e.credential = %s WHERE r.key = ANY(%s)", (credential, wanted)).fetchall()
        return load_rows(Repo, rows, self.path)

    def star_history(self, key: str) -> list[tuple[datetime, int]]:
        """Star observations of one repository, oldest first."""
        return self.star_histories([key]).get(repo_key(key), [])

    def star_histories(self, keys: Iterable[str]) -> dict[str, list[tuple[datetime, int]]]:
        """Star observations by lower-case key, oldest first; keys without any are left out."""
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT key, observed_at, stars FROM star_history WHERE key = ANY(%s) "
                "ORDER BY key, observed_at", (wanted,)).fetchall()
        return histories_of(rows)

    # ------------------------------------------------------------------ writes

    def put_papers(self, records: Mapping[str, Paper], now: datetime) -> None:
        """Store papers fetched at ``now`` (one transaction). Transient statuses: ValueError."""
        rows = record_rows(records, paper_key, _fmt(now))
        if not rows:
            return
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO papers (id, status, fetched_at, data) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "fetched_at = excluded.fetched_at, data = excluded.data",
                [rows[k] for k in sorted(rows)])

    def put_repos(self, records: Mapping[str, Repo], now: datetime, *, credential: str,
                  etags: Mapping[str, str] | None = None) -> None:
        """Store repositories fetched at ``now`` with ``credential``: as
        :meth:`enrich.store.Store.put_repos`."""
        stamp = _fmt(now)
        rows = record_rows(records, repo_key, stamp)
        if not rows:
            return
        etag_rows = sorted(
            (key, credential, etag) for key, etag in
            ((repo_key(raw), etag) for raw, etag in (etags or {}).items())
            if key in rows and rows[key][1] == "ok" and etag)
        history = sorted({
            key: (key, stamp, record.stars)
            for key, record in ((repo_key(k), r) for k, r in records.items())
            if record.status == "ok" and record.stars is not None}.values())
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO repos (key, status, fetched_at, data) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
                "fetched_at = excluded.fetched_at, data = excluded.data",
                [rows[k] for k in sorted(rows)])
            cur.execute("DELETE FROM etags WHERE kind = 'repo' AND key = ANY(%s)",
                        (sorted(rows),))
            if etag_rows:
                cur.executemany(
                    "INSERT INTO etags (kind, key, credential, etag) "
                    "VALUES ('repo', %s, %s, %s) ON CONFLICT (kind, key, credential) "
                    "DO UPDATE SET etag = excluded.etag", etag_rows)
            if history:
                cur.executemany(
                    "INSERT INTO star_history (key, observed_at, stars) VALUES (%s, %s, %s) "
                    "ON CONFLICT (key, observed_at) DO UPDATE SET stars = excluded.stars",
                    history)

    def touch_repos(self, keys: Iterable[str], now: datetime, *, credential: str) -> None:
        """Record 304s: as :meth:`enrich.store.Store.touch_repos`."""
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return
        stamp = _fmt(now)
        with self._write() as conn:
            touched = conn.execute("UPDATE repos SET fetched_at = %s WHERE key = ANY(%s)",
                                   (stamp, wanted)).rowcount
            conn.execute(
                "INSERT INTO star_history (key, observed_at, stars) "
                "SELECT key, %s, (data::jsonb ->> 'stars')::integer FROM repos "
                "WHERE key = ANY(%s) AND status = 'ok' AND (data::jsonb ->> 'stars') IS NOT NULL "
                "ORDER BY key ON CONFLICT (key, observed_at) DO UPDATE SET stars = excluded.stars",
                (stamp, wanted))
        if touched != len(wanted):
            logger.debug("cache %s: touch_repos (%s): %d of %d keys not cached",
                         self.path, credential, len(wanted) - touched, len(wanted))

    # ------------------------------------------------------------------ maintenance

    def stats(self, now: datetime | None = None, *, arxiv_ttl: float | None = None,
              github_ttl: float | None = None, not_found_ttl: float | None = None
              ) -> dict[str, Any]:
        """Counts for ``enrich cache stats``: as :meth:`enrich.store.Store.stats`
        (``path`` is the URL without password; ``size_bytes`` the tables' size)."""
        when = _require_aware(now) if now is not None else datetime.now(UTC)
        out: dict[str, Any] = {"path": self.path, "schema_version": PG_LATEST_VERSION}
        with self._conn() as conn:
            for table, ttl in (("papers", arxiv_ttl), ("repos", github_ttl)):
                by_status = {str(s): int(n) for s, n in conn.execute(
                    f"SELECT status, count(*) FROM {table} "
                    "GROUP BY status ORDER BY status").fetchall()}
                bounds = conn.execute(
                    f"SELECT min(fetched_at), max(fetched_at) FROM {table}"
                ).fetchone()
                oldest, newest = bounds if bounds is not None else (None, None)
                total = sum(by_status.values())
                section: dict[str, Any] = {
                    "total": total, "by_status": by_status,
                    "oldest": _parse(oldest) if oldest else None,
                    "newest": _parse(newest) if newest else None,
                }
                if ttl is not None and not_found_ttl is not None:
                    fresh = self._count(conn, (
                        f"SELECT count(*) FROM {table} WHERE fetched_at <= %s AND ("
                        "(status = 'not_found' AND fetched_at > %s) OR "
                        "(status != 'not_found' AND fetched_at > %s))"),
                        (_fmt(when), _ago(when, not_found_ttl), _ago(when, ttl)))
                    section["fresh"] = fresh
                    section["expired"] = total - fresh
                out[table] = section
            out["etags"] = self._count(conn, "SELECT count(*) FROM etags")
            out["history_rows"] = self._count(conn, "SELECT count(*) FROM star_history")
            out["history_repos"] = self._count(conn,
                                               "SELECT count(DISTINCT key) FROM star_history")
            out["size_bytes"] = self._count(
                conn, "SELECT sum(pg_total_relation_size(t::regclass))::bigint FROM "
                "unnest(ARRAY['papers', 'repos', 'etags', 'star_history']) AS t")
        return out

    @staticmethod
    def _count(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> int:
        row = conn.execute(sql, params).fetchone()
        return int(row[0] or 0) if row is not None else 0

    def prune(self, now: datetime, *, arxiv_ttl: float, github_ttl: float,
              not_found_ttl: float, history_keep: float = 400 * 86400,
              keep_factor: float = 4.0) -> dict[str, int]:
        """Drop what is no longer worth keeping: as :meth:`enrich.store.Store.prune`
        (and claims whose lease ran out)."""
        nf_cutoff = _ago(now, not_found_ttl)
        removed: dict[str, int] = {}
        with self._write() as conn:
            for table, ttl in (("papers", arxiv_ttl), ("repos", github_ttl)):
                removed[table] = conn.execute(
                    f"DELETE FROM {table} WHERE "
                    "(status = 'not_found' AND fetched_at <= %s) OR "
                    "(status != 'not_found' AND fetched_at <= %s)",
                    (nf_cutoff, _ago(now, ttl * keep_factor))).rowcount
            removed["etags"] = conn.execute(
                "DELETE FROM etags WHERE (kind = 'repo' AND key NOT IN (SELECT key FROM repos)) "
                "OR (kind = 'paper' AND key NOT IN (SELECT id FROM papers))").rowcount
            removed["history"] = conn.execute(
                "DELETE FROM star_history WHERE observed_at <= %s",
                (_ago(now, history_keep),)).rowcount
            conn.execute("DELETE FROM claims WHERE expires_at < clock_timestamp()")
        logger.info("cache %s: pruned %s", self.path, removed)
        return removed

    def clear(self) -> None:
        """Remove every record, ETag and star observation; the schema stays."""
        with self._write() as conn:
            conn.execute("DELETE FROM papers")
            conn.execute("DELETE FROM repos")
            conn.execute("DELETE FROM etags")
            conn.execute("DELETE FROM star_history")

    # ------------------------------------------------------------------ work sharing

    def claim(self, kind: str, keys: Sequence[str], owner: str, lease: float) -> list[str]:
        """Claim ``keys`` for ``owner`` for ``lease`` seconds: those free, expired or
        already ``owner``'s are returned (now claimed); the others are another run's."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                "INSERT INTO claims (kind, key, owner, expires_at) "
                "SELECT %s, k, %s, clock_timestamp() + make_interval(secs => %s) "
                "FROM unnest(%s::text[]) AS k ORDER BY k "
                "ON CONFLICT (kind, key) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE claims.expires_at < clock_timestamp() OR claims.owner = excluded.owner "
                "RETURNING key", (kind, owner, lease, wanted)).fetchall()
        return [str(r[0]) for r in rows]

    def renew(self, owner: str, lease: float) -> None:
        """Extend every claim of ``owner`` by ``lease`` seconds from now."""
        with self._conn() as conn:
            conn.execute("UPDATE claims SET expires_at = clock_timestamp() + "
                         "make_interval(secs => %s) WHERE owner = %s", (lease, owner))

    def release(self, kind: str, keys: Sequence[str], owner: str) -> None:
        """Give up ``owner``'s claims on ``keys`` (their results are cached, or failed)."""
        if not keys:
            return
        with self._conn() as conn:
            conn.execute("DELETE FROM claims WHERE kind = %s AND key = ANY(%s) AND owner = %s",
                         (kind, sorted(set(keys)), owner))

    def github_quota(self) -> PostgresStore:
        """The GitHub rate-limit state shared by the hosts: this store."""
        return self

    def note_quota(self, credential: str, remaining: int, reset: datetime) -> None:
        """Record what GitHub said of ``credential``'s quota (the latest window, and in
        it the lowest count, wins)."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO github_quota (credential, remaining, reset_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (credential) DO UPDATE SET "
                "remaining = excluded.remaining, reset_at = excluded.reset_at "
                "WHERE excluded.reset_at > github_quota.reset_at "
                "OR excluded.remaining < github_quota.remaining",
                (credential, remaining, _require_aware(reset)))

    def quota_spent_until(self, credential: str) -> datetime | None:
        """When ``credential``'s spent quota resets, if a host saw it spent; else None."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT reset_at FROM github_quota WHERE credential = %s "
                "AND remaining = 0 AND reset_at > clock_timestamp()", (credential,)).fetchone()
        return row[0].astimezone(UTC) if row is not None else None

    def arxiv_gate(self, api_url: str) -> PgGate:
        """The gate every host of this cache shares for the arXiv server of ``api_url``."""
        if self._pool is None:
            raise self._fail("the cache has been closed")
        return PgGate(self, server_of(api_url))

    def _pool_or_fail(self) -> ConnectionPool:
        if self._pool is None:
            raise self._fail("the cache has been closed")
        return self._pool


class PgGate:
    """The arXiv gate across hosts: one request at a time, starts spaced.

    A turn holds a session advisory lock (named after the server) on a connection of
    its own for the whole request, then spaces its start from the previous one as the
    ``arxiv_gate`` row records it, by the database's clock. A host that dies mid-request
    loses its session, and with it the lock.
    """

    def __init__(self, store: PostgresStore, server: str) -> None:
        self._store = store
        self.server = server
        self._key = _lock_key(server)

    @contextlib.asynccontextmanager
    async def turn(self, interval: float, *, from_end: bool = False) -> AsyncIterator[None]:
        pool = self._store._pool_or_fail()
        conn = await asyncio.to_thread(pool.getconn)
        try:
            while not await asyncio.to_thread(self._try_lock, conn):
                await asyncio.sleep(_GATE_POLL)
            try:
                wait = await asyncio.to_thread(self._wait, conn, interval, from_end)
                if wait > 0:
                    logger.debug("arXiv spacing (shared): waiting %.2f s", wait)
                    await asyncio.sleep(wait)
                await asyncio.to_thread(self._mark, conn, "last_start")
                try:
                    yield
                finally:
                    await asyncio.to_thread(self._mark, conn, "last_end")
            finally:
                await asyncio.to_thread(self._unlock, conn)
        except psycopg.Error as exc:
            raise self._store._fail(_reason(exc, self._store._password)) from None
        finally:
            pool.putconn(conn)

    def _try_lock(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                           (_LOCK_SPACE, self._key)).fetchone()
        return bool(row and row[0])

    def _unlock(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (_LOCK_SPACE, self._key))

    def _wait(self, conn: psycopg.Connection[Any], interval: float, from_end: bool) -> float:
        """Seconds until the next request may start (the margin included)."""
        conn.execute("INSERT INTO arxiv_gate (server) VALUES (%s) ON CONFLICT DO NOTHING",
                     (self.server,))
        column = "last_end" if from_end else "last_start"
        row = conn.execute(
            f"SELECT extract(epoch FROM {column} + make_interval(secs => %s) "
            "- clock_timestamp()) FROM arxiv_gate WHERE server = %s",
            (interval + SPACING_MARGIN, self.server)).fetchone()
        if row is None or row[0] is None or interval <= 0:
            return 0.0
        return float(row[0])

    def _mark(self, conn: psycopg.Connection[Any], column: str) -> None:
        conn.execute(f"UPDATE arxiv_gate SET {column} = clock_timestamp() "
                     "WHERE server = %s", (self.server,))
