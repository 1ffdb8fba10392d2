"""The library calls behind the CLI's smaller commands: ``extract``, ``cache`` and
``trends``. Each returns data; printing it is the CLI's business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import Any

from .config import Config
from .errors import CacheError, CacheLockedError
from .extract import extract
from .lock import RunLock
from .models import Link, StarTrend
from .store import Store, remove_database
from .textio import read_text
from .trends import star_trend
from .write.markdown import strip_blocks


def extract_file(path: str | PathLike[str]) -> list[Link]:
    """The links of a log file (earlier enrich blocks left out); no network."""
    return extract(strip_blocks(read_text(path)))


def cache_stats(config: Config) -> dict[str, Any] | None:
    """What the cache holds, or None when it does not exist yet (nothing is created)."""
    if not config.cache_path.exists():
        return None
    with Store(config.cache_path, readonly=True) as store:
        return store.stats(datetime.now(UTC), arxiv_ttl=config.cache.arxiv_ttl,
                           github_ttl=config.cache.github_ttl,
                           not_found_ttl=config.cache.not_found_ttl)


def cache_prune(config: Config) -> dict[str, int]:
    """Remove expired records (under the run lock); the counts removed per kind."""
    with RunLock(config.cache_path), Store(config.cache_path) as store:
        return store.prune(datetime.now(UTC), arxiv_ttl=config.cache.arxiv_ttl,
                           github_ttl=config.cache.github_ttl,
                           not_found_ttl=config.cache.not_found_ttl)


def cache_clear(config: Config) -> tuple[list[str], str | None]:
    """Empty the cache (under the run lock). A file that is not a usable cache is
    removed instead, since ``clear`` is the documented way out: then the files removed,
    and why the cache was unusable."""
    with RunLock(config.cache_path):
        try:
            with Store(config.cache_path) as store:
                store.clear()
        except CacheLockedError:
            raise
        except CacheError as exc:
            return [str(p) for p in remove_database(config.cache_path)], exc.reason
    return [], None


@dataclass
class TrendRow:
    name: str
    stars: int | None
    trend: StarTrend


def star_trends(path: str | PathLike[str], config: Config) -> list[TrendRow] | None:
    """The star growth of a log's repositories, fastest-growing week first; None when
    the cache does not exist yet."""
    keys = list(dict.fromkeys(lk.id for lk in extract_file(path) if lk.kind == "github"))
    if not config.cache_path.exists():
        return None
    with Store(config.cache_path, readonly=True) as store:
        histories = store.star_histories(keys)
        cached = store.get_repos(keys, "anon")
    now = datetime.now(UTC)
    rows = []
    for key in keys:
        hist = histories.get(key, [])
        c = cached.get(key)
        name = c.record.full_name if c is not None and c.record.full_name else key
        rows.append(TrendRow(name, hist[-1][1] if hist else None, star_trend(hist, now)))
    rows.sort(key=lambda r: (-(r.trend.week if r.trend.week is not None else -(10**12)),
                             r.name.lower()))
    return rows
