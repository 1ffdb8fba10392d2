"""The SQLite cache (the embedded default): paper and repository records, ETags and star history.

Why it looks the way it does:

- **Cache facts, not failures.** Only definitive answers are stored: ``ok``,
  ``not_found`` (kept for the short ``not_found_ttl``) and ``unavailable``
  (e.g. HTTP 451). ``stale``, ``missing`` and ``error`` describe one run's
  trouble, not the world, so :meth:`Store.put_papers` / :meth:`Store.put_repos`
  refuse them with :class:`ValueError`; a cached transient error would hide a
  paper until it expired (lychee#2190).
- **Keys are normalised before every lookup and write**: repositories as
  lower-case ``owner/repo`` (GitHub names are case-insensitive), papers as
  canonical arXiv ids (no ``vN``, no ``arXiv:`` prefix, no subject class in
  old-style ids), so ``Owner/Repo`` and ``owner/repo`` are one record.
- **ETags are per credential** (github/docs#34689): a 304 is only given for the
  ETag issued to the same token. They live in their own table keyed by
  ``(kind, key, credential)`` where ``credential`` is the opaque id from
  :func:`enrich.fetch.policy.credential_id`; a token is never stored. An ETag
  names one representation, so whenever a key's data is replaced every ETag
  of that key is dropped and only the new one (if any) is recorded.
- **Star history** is a list of observations ``(key, observed_at, stars)``: a
  200 with stars adds one, and so does a 304 (it confirms the cached count at
  that time). Trends are computed from it; the computed ``trend`` and the
  per-document ``linked_from`` are never stored.
- **One file shared by cron and library users.** WAL lets readers run while a
  writer writes; ``busy_timeout`` makes a second writer wait instead of failing;
  ``synchronous=NORMAL`` is durable enough for a cache in WAL mode (a power cut
  can lose the last transactions, never corrupt the file). Every write is one
  ``BEGIN IMMEDIATE`` transaction, so a process killed mid-write leaves the
  previous state. One connection per :class:`Store`, guarded by a lock, so the
  pipeline may call it from worker threads.
- **Migrations** are a list of functions; ``PRAGMA user_version`` is how many
  have run. Pending ones run in one transaction on open. A file we cannot use
  (not SQLite, another program's database, written by a newer enrich, in a
  folder we cannot create) raises :class:`~enrich.errors.CacheError` saying how
  to recover; the file is never wiped or modified.
- Dates are stored as fixed-width ISO-8601 UTC text (``2026-11-29T03:00:00.000000Z``)
  so that string order is time order and SQL can compare them.

Prune rule (:meth:`Store.prune`): a ``not_found`` record goes as soon as it
expires (an expired verdict is refetched anyway, so it is worth nothing); an
``ok`` or ``unavailable`` record goes once it has not been confirmed for
``keep_factor`` (default 4) times its TTL: until then it still serves as the
``stale`` fallback when an API fails and as the base of a cheap 304
revalidation. ETags of removed records go with them, and star observations
older than ``history_keep`` (default 400 days) are dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from ..errors import CacheError
from ..models import Paper, Repo

__all__ = [
    "CACHEABLE_STATUSES",
    "LATEST_VERSION",
    "MIGRATIONS",
    "Cached",
    "Store",
    "paper_key",
    "remove_database",
    "repo_key",
]

logger = logging.getLogger(__name__)

R = TypeVar("R", Paper, Repo)

#: Statuses that are facts about the world and may be cached.
CACHEABLE_STATUSES = frozenset({"ok", "not_found", "unavailable"})

#: ``PRAGMA application_id`` of an enrich cache ("enri"), so that we never
#: migrate (write our tables into) another program's database.
APPLICATION_ID = 0x656E7269

#: Fields never stored: ``fetched_at`` has its own column, ``trend`` is
#: computed from the star history, ``linked_from`` belongs to one document.
_NOT_STORED: set[str] = {"fetched_at", "trend", "linked_from"}

_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_WAL_SIZE_LIMIT = 16 * 1024 * 1024


# --------------------------------------------------------------------------- keys


_ARXIV_PREFIX = re.compile(r"^(?:arxiv:\s*)", re.IGNORECASE)
_ARXIV_VERSION = re.compile(r"v\d+$")
_ARXIV_OLD = re.compile(r"^([A-Za-z-]+)(?:\.[A-Za-z-]+)?/(\d{7})$")
_ARXIV_NEW_CANONICAL = re.compile(r"\d{4}\.\d{4,5}")


def paper_key(raw: str) -> str:
    """Canonical arXiv id: no ``arXiv:`` prefix, no ``vN``, no old-style subject class.

    ``arXiv:2305.09781v2`` -> ``2305.09781``; ``math.GT/0309136`` -> ``math/0309136``.
    """
    if _ARXIV_NEW_CANONICAL.fullmatch(raw):  # already canonical (the usual case): as is
        return raw
    key = _ARXIV_PREFIX.sub("", raw.strip())
    key = _ARXIV_VERSION.sub("", key)
    m = _ARXIV_OLD.match(key)
    if m:
        return f"{m.group(1).lower()}/{m.group(2)}"
    return key


def repo_key(raw: str) -> str:
    """Canonical repository key: lower-case ``owner/repo`` (GitHub names ignore case)."""
    key = raw.strip().strip("/").lower()
    if key.endswith(".git"):
        key = key[:-4]
    return key


# --------------------------------------------------------------------------- dates


def _require_aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required (got naive {when!r}); use UTC")
    return when.astimezone(UTC)


def _fmt(when: datetime) -> str:
    return _require_aware(when).strftime(_DATE_FORMAT)


def _parse(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _ago(now: datetime, seconds: float) -> str:
    """``now - seconds`` formatted; clamped so that huge TTLs do not overflow."""
    try:
        return _fmt(_require_aware(now) - timedelta(seconds=seconds))
    except OverflowError:
        return "0001-01-01T00:00:00.000000Z"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Cached(Generic[R]):
    """One cached record with the time the API last confirmed it.

    ``record.fetched_at`` equals ``fetched_at``. ``etag`` is set only for
    repositories, and only the ETag issued to the credential that was asked about.
    """

    record: R
    fetched_at: datetime
    etag: str | None = None

    def is_fresh(self, ttl: float, not_found_ttl: float, now: datetime) -> bool:
        """Whether the record is younger than its TTL (``not_found_ttl`` for ``not_found``).

        A TTL of 0 makes every record expired (``--refresh``). A ``fetched_at``
        in the future (written before the clock was set back) counts as expired:
        otherwise the record would stay fresh until the clock caught up.
        """
        limit = not_found_ttl if self.record.status == "not_found" else ttl
        if now.tzinfo is not UTC:  # UTC already (the pipeline's clock): nothing to convert
            now = _require_aware(now)
        age = (now - self.fetched_at).total_seconds()
        return 0 <= age < limit


def load_rows(model: type[R], rows: Iterable[tuple[str, str, str, str | None]], where: str
              ) -> dict[str, Cached[R]]:
    """Rebuild records from ``(key, fetched_at, data, etag)`` rows, by key; an
    unreadable row is logged and left out (treated as absent: refetched)."""
    out: dict[str, Cached[R]] = {}
    for key, fetched_at, data, etag in rows:
        try:
            when = _parse(fetched_at)
            record = model.model_validate_json(data)
        except (ValidationError, ValueError) as exc:
            logger.warning("cache %s: ignoring unreadable %s record %r: %s",
                           where, model.__name__.lower(), key, exc)
            continue
        record.fetched_at = when
        out[key] = Cached(record, when, etag)
    return out


def histories_of(rows: Iterable[tuple[str, str, int]]) -> dict[str, list[tuple[datetime, int]]]:
    """Star observations by key from ``(key, observed_at, stars)`` rows in order."""
    out: dict[str, list[tuple[datetime, int]]] = {}
    times: dict[str, datetime] = {}  # one put stamps all its observations alike
    for key, observed_at, stars in rows:
        when = times.get(observed_at)
        if when is None:
            when = times[observed_at] = _parse(observed_at)
        out.setdefault(key, []).append((when, int(stars)))
    return out


def record_rows(records: Mapping[str, R], normalise: Callable[[str], str], stamp: str
                ) -> dict[str, tuple[str, str, str, str]]:
    """``{key: (key, status, fetched_at, data)}`` to store; transient statuses and
    empty keys raise ValueError."""
    rows: dict[str, tuple[str, str, str, str]] = {}
    for raw, record in records.items():
        if record.status not in CACHEABLE_STATUSES:
            raise ValueError(
                f"{raw!r}: status {record.status!r} is a transient outcome and is never "
                f"cached (only {', '.join(sorted(CACHEABLE_STATUSES))})"
            )
        key = normalise(raw)
        if not key:
            raise ValueError(f"empty cache key {raw!r}")
        rows[key] = (key, record.status, stamp, record.model_dump_json(exclude=_NOT_STORED))
    return rows


# --------------------------------------------------------------------------- migrations


def _m001_records(conn: sqlite3.Connection) -> None:
    """Records and ETags.

    Record tables keep their rowid (rows of 1-2 KB of JSON are too big for
    WITHOUT ROWID, which halves lookup speed) and have no index on
    ``fetched_at``: only the rare prune and stats scan it, while every put
    would pay for it.
    """
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for table, key in (("papers", "id"), ("repos", "key")):
        conn.execute(
            f"""CREATE TABLE {table} (
                {key} TEXT PRIMARY KEY,
                status TEXT NOT NULL CHECK (status IN ('ok', 'not_found', 'unavailable')),
                fetched_at TEXT NOT NULL,
                data TEXT NOT NULL
            )"""
        )
    conn.execute(
        """CREATE TABLE etags (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            credential TEXT NOT NULL,
            etag TEXT NOT NULL,
            PRIMARY KEY (kind, key, credential)
        ) WITHOUT ROWID"""
    )


def _m002_star_history(conn: sqlite3.Connection) -> None:
    """Star observations, for trends (no index on time: only prune scans it)."""
    conn.execute(
        """CREATE TABLE star_history (
            key TEXT NOT NULL,
            observed_at TEXT NOT NULL,
            stars INTEGER NOT NULL,
            PRIMARY KEY (key, observed_at)
        ) WITHOUT ROWID"""
    )


#: Schema migrations, in order. ``PRAGMA user_version`` counts those applied.
#: Append only: never edit or reorder a released migration.
MIGRATIONS: Sequence[Callable[[sqlite3.Connection], None]] = (
    _m001_records,
    _m002_star_history,
)
LATEST_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------- errors


def _reason(exc: BaseException, busy_timeout: float) -> str:
    """A sentence saying what went wrong with the cache and how to recover."""
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return (f"not a usable SQLite database ({text}); it holds only cached API data: "
                "move it aside or delete it and enrich will build a new one")
    if "locked" in low or "busy" in low:
        return (f"the cache stayed locked by another process for more than {busy_timeout:g} s "
                f"({text}); try again when the other run has finished")
    if "readonly" in low or "read-only" in low:
        return f"the cache cannot be written ({text}); check the permissions of the file and folder"
    if "unable to open" in low:
        return (f"cannot open the database file ({text}); check that its folder exists, "
                "is writable and that the path is not a folder, or set cache.path elsewhere")
    if "disk" in low and ("full" in low or "i/o" in low):
        return f"disk problem ({text}); free space or set cache.path elsewhere"
    return f"{type(exc).__name__}: {text}"


def remove_database(path: str | os.PathLike[str]) -> list[Path]:
    """Delete a cache file and its ``-wal``/``-shm`` companions; returns what was removed.

    For a cache too damaged to open (``enrich cache clear`` on a corrupt file):
    it is only a cache, so deleting it loses nothing that cannot be fetched again
    (except star history).
    """
    base = Path(path)
    removed: list[Path] = []
    for candidate in (base, Path(f"{base}-wal"), Path(f"{base}-shm"), Path(f"{base}-journal")):
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CacheError(str(base), f"cannot delete {candidate}: {exc.strerror}") from exc
        removed.append(candidate)
    return removed


# --------------------------------------------------------------------------- store


class Store:
    """The cache database. Thread-safe; several processes may share one file.

    ``readonly=True`` never changes the database (``--dry-run``, ``cache stats``;
    SQLite may still create its ``-wal``/``-shm`` companions): a missing file
    behaves as an empty cache and creates nothing, and a file from an older
    enrich is upgraded in memory only. Write methods then raise
    :class:`~enrich.errors.CacheError`.

    ``busy_timeout`` is how long a write waits for another process's write
    before giving up with :class:`~enrich.errors.CacheError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open()

    # ------------------------------------------------------------------ opening

    def _fail(self, reason: str) -> CacheError:
        return CacheError(str(self.path), reason)

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise self._fail("is a folder, not a database file; set cache.path to a file path")
        if self.readonly:
            return self._open_readonly()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(
                f"cannot create the folder {self.path.parent} ({exc.strerror or exc}); "
                "set cache.path to a writable location"
            ) from exc
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise self._fail(
                f"the folder {self.path.parent} is not writable; "
                "fix its permissions or set cache.path to a writable location"
            )
        conn = self._connect(str(self.path), uri=False)
        try:
            if self._check_identity(conn) == 0:
                # Only takes effect on an empty file, before WAL is set; lets
                # prune() and clear() give freed pages back to the file system.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._set_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            self._migrate(conn)
        except CacheError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._fail(_reason(exc, self.busy_timeout)) from exc
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            conn = self._connect(":memory:", uri=False)
            self._migrate(conn)
            return conn
        try:
            return self._open_file_readonly("mode=ro")
        except CacheError:
            if os.access(self.path.parent, os.W_OK):
                raise
        # A folder this user may not write (another user's cache): SQLite cannot create
        # the -shm file that WAL readers share, so the file is read as immutable. Only a
        # -wal file left by a crash would then go unread (a -wal that a running writer
        # keeps comes with its -shm, and then mode=ro works).
        return self._open_file_readonly("mode=ro&immutable=1")

    def _open_file_readonly(self, query: str) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + "?" + query
        conn = self._connect(uri, uri=True)
        try:
            version = self._check_identity(conn)
            if version < LATEST_VERSION:
                # Upgrade a private in-memory copy: the file stays as it is.
                memory = self._connect(":memory:", uri=False)
                conn.backup(memory)
                conn.close()
                conn = memory
                self._migrate(conn)
        except CacheError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._fail(_reason(exc, self.busy_timeout)) from exc
        return conn

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target,
                uri=uri,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise self._fail(_reason(exc, self.busy_timeout)) from exc
        return conn

    def _check_identity(self, conn: sqlite3.Connection) -> int:
        """Refuse files that are not an enrich cache we understand; return user_version.

        The three reads see one snapshot: outside a transaction they are run in a
        read transaction of their own. Otherwise a process creating the cache at this
        moment could commit between them, and its half-seen schema (tables, but no
        version yet) would look like another program's database.
        """
        if conn.in_transaction:
            version, app_id, has_tables = self._identity(conn)
        else:
            conn.execute("BEGIN")
            try:
                version, app_id, has_tables = self._identity(conn)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")  # it only read
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and (version or has_tables)):
            raise self._fail(
                "is an SQLite database of another program, not an enrich cache; "
                "left untouched: set cache.path to another file"
            )
        if version > LATEST_VERSION:
            raise self._fail(
                f"written by a newer enrich (cache schema version {version}, this enrich "
                f"knows up to {LATEST_VERSION}); upgrade enrich, or set cache.path to "
                "another file (the newer cache is left untouched)"
            )
        return version

    @staticmethod
    def _identity(conn: sqlite3.Connection) -> tuple[int, int, int]:
        """``(user_version, application_id, number of tables)``."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        tables = int(conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0])
        return version, app_id, tables

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a brief exclusive lock; when another process is
        # opening the same file at this moment the busy handler is not always
        # invoked, so retry for up to busy_timeout.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        if str(mode).lower() != "wal":
            logger.warning("cache %s: journal_mode is %s, not wal", self.path, mode)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= LATEST_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked again inside the write transaction that creates the schema: another
            # process may have created or migrated it while we waited for the lock (then
            # there is nothing left to do), and a newer enrich is never downgraded.
            version = self._check_identity(conn)
            for number in range(version, LATEST_VERSION):
                logger.info("cache %s: migration %d (%s)", self.path, number + 1,
                            MIGRATIONS[number].__name__)
                MIGRATIONS[number](conn)
            conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                if not self.readonly:
                    conn.execute("PRAGMA optimize")
            conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", readonly" if self.readonly else ""
        return f"Store({str(self.path)!r}{mode})"

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise self._fail("the cache has been closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._fail(_reason(exc, self.busy_timeout)) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: all of it lands, or none."""
        if self.readonly:
            raise self._fail("opened read-only; nothing can be written")
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ work sharing

    #: A SQLite cache is one host's: runs exclude each other with the run lock, so
    #: there is no work to share and no claim to take.
    shares_work = False

    def claim(self, kind: str, keys: Sequence[str], owner: str, lease: float) -> list[str]:
        """Every key is this run's to fetch (no other host shares the file)."""
        return list(keys)

    def renew(self, owner: str, lease: float) -> None:
        """Nothing to renew."""

    def release(self, kind: str, keys: Sequence[str], owner: str) -> None:
        """Nothing to release."""

    def arxiv_gate(self, api_url: str) -> None:
        """No gate beyond the process's own."""
        return None

    def github_quota(self) -> None:
        """No rate-limit state beyond the run's own."""
        return None

    # ------------------------------------------------------------------ reads

    def get_papers(self, ids: Iterable[str]) -> dict[str, Cached[Paper]]:
        """Cached papers by canonical id (ids are normalised first; absent ones left out)."""
        keys = sorted({paper_key(i) for i in ids})
        if not keys:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, fetched_at, data, NULL FROM papers "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(keys),),
            ).fetchall()
        return self._load(Paper, rows)

    def get_repos(self, keys: Iterable[str], credential: str) -> dict[str, Cached[Repo]]:
        """Cached repositories by lower-case key, each with the ETag issued to ``credential``."""
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT r.key, r.fetched_at, r.data, e.etag FROM repos AS r "
                "LEFT JOIN etags AS e ON e.kind = 'repo' AND e.key = r.key AND e.credential = ? "
                "WHERE r.key IN (SELECT value FROM json_each(?))",
                (credential, json.dumps(wanted)),
            ).fetchall()
        return self._load(Repo, rows)

    def _load(self, model: type[R], rows: Iterable[tuple[str, str, str, str | None]]
              ) -> dict[str, Cached[R]]:
        return load_rows(model, rows, str(self.path))

    def star_history(self, key: str) -> list[tuple[datetime, int]]:
        """Star observations of one repository, oldest first."""
        return self.star_histories([key]).get(repo_key(key), [])

    def star_histories(self, keys: Iterable[str]) -> dict[str, list[tuple[datetime, int]]]:
        """Star observations by lower-case key, oldest first; keys without any are left out."""
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, observed_at, stars FROM star_history "
                "WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key, observed_at",
                (json.dumps(wanted),),
            ).fetchall()
        return histories_of(rows)

    # ------------------------------------------------------------------ writes

    def put_papers(self, records: Mapping[str, Paper], now: datetime) -> None:
        """Store papers fetched at ``now`` (one transaction). Transient statuses: ValueError."""
        rows = record_rows(records, paper_key, _fmt(now))
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO papers (id, status, fetched_at, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "fetched_at = excluded.fetched_at, data = excluded.data",
                rows.values(),
            )

    def put_repos(
        self,
        records: Mapping[str, Repo],
        now: datetime,
        *,
        credential: str,
        etags: Mapping[str, str] | None = None,
    ) -> None:
        """Store repositories fetched at ``now`` with ``credential`` (one transaction).

        Each key's previous data and ETags are replaced (a ``not_found`` verdict
        replaces ``ok`` data); ``etags`` are recorded for ``credential`` only, and
        only for ``ok`` records. Every ``ok`` record with stars adds a star
        observation. Transient statuses raise ValueError before anything is written.
        """
        stamp = _fmt(now)
        rows = record_rows(records, repo_key, stamp)
        if not rows:
            return
        etag_rows: list[tuple[str, str, str]] = []
        for raw, etag in (etags or {}).items():
            key = repo_key(raw)
            if key in rows and rows[key][1] == "ok" and etag:
                etag_rows.append((key, credential, etag))
        history = [
            (key, stamp, record.stars)
            for key, record in ((repo_key(k), r) for k, r in records.items())
            if record.status == "ok" and record.stars is not None
        ]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO repos (key, status, fetched_at, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
                "fetched_at = excluded.fetched_at, data = excluded.data",
                rows.values(),
            )
            conn.execute(
                "DELETE FROM etags WHERE kind = 'repo' "
                "AND key IN (SELECT value FROM json_each(?))",
                (json.dumps(list(rows)),),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO etags (kind, key, credential, etag) "
                "VALUES ('repo', ?, ?, ?)",
                etag_rows,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO star_history (key, observed_at, stars) VALUES (?, ?, ?)",
                history,
            )

    def touch_repos(self, keys: Iterable[str], now: datetime, *, credential: str) -> None:
        """Record 304s: the cached data (and ETag) is current as of ``now``.

        Also adds a star observation with the cached count, which the 304 confirms.
        Keys not in the cache are ignored. ``credential`` is the one that got the
        304; it is only used for the log.
        """
        wanted = sorted({repo_key(k) for k in keys})
        if not wanted:
            return
        stamp = _fmt(now)
        param = json.dumps(wanted)
        with self._write() as conn:
            touched = conn.execute(
                "UPDATE repos SET fetched_at = ? WHERE key IN (SELECT value FROM json_each(?))",
                (stamp, param),
            ).rowcount
            conn.execute(
                "INSERT OR REPLACE INTO star_history (key, observed_at, stars) "
                "SELECT key, ?, json_extract(data, '$.stars') FROM repos "
                "WHERE key IN (SELECT value FROM json_each(?)) AND status = 'ok' "
                "AND json_extract(data, '$.stars') IS NOT NULL",
                (stamp, param),
            )
        if touched != len(wanted):
            logger.debug("cache %s: touch_repos (%s): %d of %d keys not cached",
                         self.path, credential, len(wanted) - touched, len(wanted))

    # ------------------------------------------------------------------ maintenance

    def stats(
        self,
        now: datetime | None = None,
        *,
        arxiv_ttl: float | None = None,
        github_ttl: float | None = None,
        not_found_ttl: float | None = None,
    ) -> dict[str, Any]:
        """Counts for ``enrich cache stats``.

        ``{"path", "schema_version", "size_bytes" (file + WAL), "papers": {"total",
        "by_status": {status: n}, "fresh", "expired", "oldest", "newest"}, "repos": {...},
        "etags", "history_rows", "history_repos"}``. ``fresh``/``expired`` are given
        only when the TTLs for that table are (``now`` defaults to the current time).
        """
        when = _require_aware(now) if now is not None else datetime.now(UTC)
        out: dict[str, Any] = {"path": str(self.path), "schema_version": LATEST_VERSION}
        with self._read() as conn:
            for table, ttl in (("papers", arxiv_ttl), ("repos", github_ttl)):
                by_status = dict(conn.execute(
                    f"SELECT status, count(*) FROM {table} GROUP BY status ORDER BY status"
                ).fetchall())
                oldest, newest = conn.execute(
                    f"SELECT min(fetched_at), max(fetched_at) FROM {table}"
                ).fetchone()
                total = sum(by_status.values())
                section: dict[str, Any] = {
                    "total": total,
                    "by_status": by_status,
                    "oldest": _parse(oldest) if oldest else None,
                    "newest": _parse(newest) if newest else None,
                }
                if ttl is not None and not_found_ttl is not None:
                    fresh = conn.execute(
                        f"SELECT count(*) FROM {table} WHERE fetched_at <= ? AND ("
                        "(status = 'not_found' AND fetched_at > ?) OR "
                        "(status != 'not_found' AND fetched_at > ?))",
                        (_fmt(when), _ago(when, not_found_ttl), _ago(when, ttl)),
                    ).fetchone()[0]
                    section["fresh"] = fresh
                    section["expired"] = total - fresh
                out[table] = section
            out["etags"] = conn.execute("SELECT count(*) FROM etags").fetchone()[0]
            out["history_rows"], out["history_repos"] = conn.execute(
                "SELECT count(*), count(DISTINCT key) FROM star_history"
            ).fetchone()
        out["size_bytes"] = self._file_size()
        return out

    def _file_size(self) -> int:
        size = 0
        for candidate in (self.path, Path(f"{self.path}-wal")):
            with contextlib.suppress(OSError):
                size += candidate.stat().st_size
        return size

    def prune(
        self,
        now: datetime,
        *,
        arxiv_ttl: float,
        github_ttl: float,
        not_found_ttl: float,
        history_keep: float = 400 * 86400,
        keep_factor: float = 4.0,
    ) -> dict[str, int]:
        """Drop what is no longer worth keeping (rule in the module docstring).

        Returns how many ``papers``, ``repos``, ``etags`` and ``history`` rows went.
        Freed pages are given back to the file system incrementally (no full VACUUM,
        which would rewrite the whole file under an exclusive lock).
        """
        nf_cutoff = _ago(now, not_found_ttl)
        removed: dict[str, int] = {}
        with self._write() as conn:
            for table, ttl in (("papers", arxiv_ttl), ("repos", github_ttl)):
                removed[table] = conn.execute(
                    f"DELETE FROM {table} WHERE "
                    "(status = 'not_found' AND fetched_at <= ?) OR "
                    "(status != 'not_found' AND fetched_at <= ?)",
                    (nf_cutoff, _ago(now, ttl * keep_factor)),
                ).rowcount
            removed["etags"] = conn.execute(
                "DELETE FROM etags WHERE (kind = 'repo' AND key NOT IN (SELECT key FROM repos)) "
                "OR (kind = 'paper' AND key NOT IN (SELECT id FROM papers))"
            ).rowcount
            removed["history"] = conn.execute(
                "DELETE FROM star_history WHERE observed_at <= ?", (_ago(now, history_keep),)
            ).rowcount
        self._reclaim()
        logger.info("cache %s: pruned %s", self.path, removed)
        return removed

    def clear(self) -> None:
        """Remove every record, ETag and star observation; the schema stays."""
        with self._write() as conn:
            for table in ("papers", "repos", "etags", "star_history"):
                conn.execute(f"DELETE FROM {table}")
        self._reclaim()

    def _reclaim(self) -> None:
        with self._read() as conn:
            conn.execute("PRAGMA incremental_vacuum").fetchall()
