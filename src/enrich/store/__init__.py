"""The cache: one interface (:class:`CacheStore`), two backends.

- :class:`~enrich.store.sqlite.Store`, SQLite, the embedded default (``cache.path``):
  one host's file, runs kept apart by the run lock.
- :class:`~enrich.store.postgres.PostgresStore`, PostgreSQL (``cache.url``): the same
  schema shared by several hosts, with claims so that an id is fetched once, and the
  arXiv gate's last request start kept in the database.

:func:`open_store` picks the backend from the config. psycopg is imported only when a
PostgreSQL cache is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ..fetch.arxiv_http import SharedTurn
from ..fetch.github import SharedQuota
from ..models import Paper, Repo
from .sqlite import (
    APPLICATION_ID,
    CACHEABLE_STATUSES,
    LATEST_VERSION,
    MIGRATIONS,
    Cached,
    Store,
    paper_key,
    remove_database,
    repo_key,
)

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "APPLICATION_ID",
    "CACHEABLE_STATUSES",
    "LATEST_VERSION",
    "MIGRATIONS",
    "CacheStore",
    "Cached",
    "Store",
    "cache_exists",
    "open_store",
    "paper_key",
    "remove_database",
    "repo_key",
]


class CacheStore(Protocol):
    """What the pipeline and the commands need of a cache, whatever its backend."""

    readonly: bool
    shares_work: bool
    """Whether other hosts use the same cache (then ids are claimed before a fetch)."""

    def get_papers(self, ids: Iterable[str]) -> dict[str, Cached[Paper]]: ...

    def get_repos(self, keys: Iterable[str], credential: str) -> dict[str, Cached[Repo]]: ...

    def star_history(self, key: str) -> list[tuple[datetime, int]]: ...

    def star_histories(self, keys: Iterable[str]) -> dict[str, list[tuple[datetime, int]]]: ...

    def put_papers(self, records: Mapping[str, Paper], now: datetime) -> None: ...

    def put_repos(self, records: Mapping[str, Repo], now: datetime, *, credential: str,
                  etags: Mapping[str, str] | None = None) -> None: ...

    def touch_repos(self, keys: Iterable[str], now: datetime, *, credential: str) -> None: ...

    def stats(self, now: datetime | None = None, *, arxiv_ttl: float | None = None,
              github_ttl: float | None = None, not_found_ttl: float | None = None
              ) -> dict[str, Any]: ...

    def prune(self, now: datetime, *, arxiv_ttl: float, github_ttl: float,
              not_found_ttl: float, history_keep: float = ..., keep_factor: float = ...
              ) -> dict[str, int]: ...

    def clear(self) -> None: ...

    def claim(self, kind: str, keys: Sequence[str], owner: str, lease: float) -> list[str]:
        """Claim ``keys`` of ``kind`` ("paper"/"repo") for ``owner`` for ``lease``
        seconds; returns those now claimed by ``owner`` (free, expired or its own)."""
        ...

    def renew(self, owner: str, lease: float) -> None: ...

    def release(self, kind: str, keys: Sequence[str], owner: str) -> None: ...

    def arxiv_gate(self, api_url: str) -> SharedTurn | None: ...

    def github_quota(self) -> SharedQuota | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> CacheStore: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


def open_store(config: Config, *, readonly: bool = False) -> CacheStore:
    """The cache the config names: PostgreSQL when ``cache.url`` is set, else SQLite."""
    if config.cache.url:
        from .postgres import PostgresStore

        return PostgresStore(config.cache.url, readonly=readonly)
    return Store(config.cache_path, readonly=readonly)


def cache_exists(config: Config) -> bool:
    """Whether there is a cache to read (a PostgreSQL database always counts as one)."""
    return bool(config.cache.url) or config.cache_path.exists()
