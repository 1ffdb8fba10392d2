"""The library calls behind the CLI's smaller commands: ``extract``, ``cache`` and
``trends``. Each returns data; printing it is the CLI's business."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import Any

from .config import Config
from .errors import CacheError, CacheLockedError
from .extract import extract
from .lock import RunLock
from .models import Link, StarTrend
from .store import cache_exists, open_store, remove_database
from .textio import read_text
from .trends import star_trend
from .write.markdown import strip_blocks


def extract_file(path: str | PathLike[str]) -> list[Link]:
    """The links of a log file (earlier enrich blocks left out); no network."""
    return extract(strip_blocks(read_text(path)))


def cache_stats(config: Config) -> dict[str, Any] | None:
    """What the cache holds, or None when it does not exist yet (nothing is created)."""
    if not cache_exists(config):
        return None
    with open_store(config, readonly=True) as store:
        return store.stats(datetime.now(UTC), arxiv_ttl=config.cache.arxiv_ttl,
                           github_ttl=config.cache.github_ttl,
                           not_found_ttl=config.cache.not_found_ttl)


def cache_prune(config: Config) -> dict[str, int] | None:
    """Remove expired records (under the run lock of a SQLite cache); the counts removed
    per kind, or None when the cache does not exist (nothing is created)."""
    if not cache_exists(config):
        return None
    with _lock(config), open_store(config) as store:
        return store.prune(datetime.now(UTC), arxiv_ttl=config.cache.arxiv_ttl,
                           github_ttl=config.cache.github_ttl,
                           not_found_ttl=config.cache.not_found_ttl)


def cache_clear(config: Config) -> tuple[list[str], str | None]:
    """Empty the cache (under the run lock of a SQLite cache). A SQLite file that is not
    a usable cache is removed instead, since ``clear`` is the documented way out: then
    the files removed, and why the cache was unusable."""
    if config.cache.url:
        with open_store(config) as shared:
            shared.clear()
        return [], None
    with RunLock(config.cache_path):
        try:
            with open_store(config) as store:
                store.clear()
        except CacheLockedError:
            raise
        except CacheError as exc:
            return [str(p) for p in remove_database(config.cache_path)], exc.reason
    return [], None


def _lock(config: Config) -> AbstractContextManager[object]:
    """The run lock beside a SQLite cache; none for a shared PostgreSQL cache."""
    return contextlib.nullcontext() if config.cache.url else RunLock(config.cache_path)


@dataclass
class TrendRow:
    name: str
    stars: int | None
    trend: StarTrend


def star_trends(path: str | PathLike[str], config: Config) -> list[TrendRow] | None:
    """The star growth of a log's repositories, fastest-growing week first; None when
    the cache does not exist yet."""
    keys = list(dict.fromkeys(lk.id for lk in extract_file(path) if lk.kind == "github"))
    if not cache_exists(config):
        return None
    with open_store(config, readonly=True) as store:
        histories = store.star_histories(keys)
        cached = store.get_repos(keys, "anon")
    now = datetime.now(UTC)
    rows = []
    for key in keys:
        hist = histories.get(key, [])
        c = cached.get(key)
        name = c.record.full_name if c is not None and c.record.full_name else key
        rows.append(TrendRow(name, hist[-1][1] if hist else None, star_trend(hist, now)))
    # fastest-growing first: over the week when some repository has a week of history,
    # else by the latest change; repositories without the figure last, by name
    by = "week" if any(r.trend.week is not None for r in rows) else "since_previous"

    def growth(r: TrendRow) -> tuple[bool, int, str]:
        value = getattr(r.trend, by)
        return value is None, -(value or 0), r.name.lower()

    rows.sort(key=growth)
    return rows


def trends_table(rows: list[TrendRow]) -> list[str]:
    """The ``enrich trends`` table."""
    lines = [f"{'REPOSITORY':<50} {'STARS':>9} {'LAST':>8} {'WEEK':>8} {'MONTH':>8}  HISTORY"]
    for row in rows:
        t = row.trend
        lines.append(f"{row.name:<50} {_num(row.stars):>9} {_signed(t.since_previous):>8} "
                     f"{_signed(t.week):>8} {_signed(t.month):>8}  {t.sparkline or ''}")
    return lines


def _num(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _signed(n: int | None) -> str:
    return "-" if n is None else f"{n:+,}"


def links_json(links: Sequence[Link]) -> str:
    """``enrich extract --json``: the links, and the sorted unique ids of each kind."""
    return json.dumps({
        "links": [lk.model_dump(mode="json") for lk in links],
        "arxiv": sorted({lk.id for lk in links if lk.kind == "arxiv"}),
        "github": sorted({lk.id for lk in links if lk.kind == "github"}),
    }, ensure_ascii=False, indent=2)


def links_table(links: Sequence[Link]) -> list[str]:
    """The ``enrich extract`` table: where each link is, what it is, as written."""
    if not links:
        return ["no links found"]
    rows = [(f"{lk.line}:{lk.column}", lk.kind, lk.id, lk.version or "", lk.text) for lk in links]
    heads = ("LINE:COL", "KIND", "ID", "VER", "AS WRITTEN")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads[:-1])]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    n_a = len({lk.id for lk in links if lk.kind == "arxiv"})
    n_g = len({lk.id for lk in links if lk.kind == "github"})
    return [fmt.format(*heads), *(fmt.format(*r) for r in rows),
            f"{len(links)} links: {n_a} arXiv papers, {n_g} GitHub repositories"]


def stats_lines(stats: dict[str, Any], indent: str = "") -> list[str]:
    """``enrich cache stats``: one line per figure, nested sections indented."""
    lines = []
    for key, value in stats.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += stats_lines(value, indent + "  ")
        elif isinstance(value, datetime):
            lines.append(f"{indent}{key}: {value.isoformat(timespec='seconds')}")
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines
