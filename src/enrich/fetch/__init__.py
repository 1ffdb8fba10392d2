"""Fetchers: turn canonical ids into records, spending as few requests as the APIs allow.

Each fetcher returns a :class:`FetchResult`; the pipeline merges it with the
cache. Fetchers never raise for a single id's failure: they report it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from ..models import Paper, Repo

R = TypeVar("R", Paper, Repo)

#: Awaited with each batch's records (id -> record) as soon as they are made, so that
#: the pipeline caches them while later batches are fetched. The same records are in
#: the :class:`FetchResult` at the end.
OnBatch = Callable[[dict[str, R]], Awaitable[None]]


@dataclass
class FetchResult(Generic[R]):
    """What one fetcher did for a set of ids.

    - ``records``: fresh data or a definitive verdict (status ``ok``,
      ``not_found`` or ``unavailable``), to be cached.
    - ``not_modified``: ids answered 304: the cached data is still current.
    - ``etags``: new ETags (for this fetcher's credential) by id.
    - ``failed``: transient failures (network, 5xx, retries exhausted): id -> message.
      Never cached; the pipeline serves the cached record as ``stale`` or marks ``error``.
    - ``missing``: ids not attempted because a rate limit or the wait budget
      stopped fetching: id -> message (``stale`` if cached, else ``missing``).
    - ``requests``: HTTP requests sent (retries included).
    - ``rate_limit_reset``: when the exhausted limit resets, if one was hit.
    """

    records: dict[str, R] = field(default_factory=dict)
    not_modified: set[str] = field(default_factory=set)
    etags: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    rate_limit_reset: datetime | None = None
