"""One stable way for tests to fetch: run the orchestrator for some ids, get the records.

Fetch tests go through :class:`enrich.Enricher` and its ``resolve`` (the cache, the
triage, the fetchers and the merge), never through a fetcher class, so that the
fetchers' internals can change shape without touching the tests::

    got = fetch_ids(arxiv_config(arxiv_server), ["2301.00001"])
    assert got.statuses == {"2301.00001": "ok"} and got.requests["arxiv"] == 1

What a fetcher used to report maps onto what a run shows:

- a record (``ok``/``not_found``/``unavailable``): ``papers``/``repos``, origin ``fetched``;
- a transient failure: status ``error`` (``stale`` if cached), its text in ``messages``;
- not attempted (a rate limit, the wait budget): status ``missing``, its text in ``messages``;
- a 304: the cached record, origin ``fetched``; revalidation is seeded by a first run
  on the same cache and asked for by a second one with ``refresh=True``.

Several rounds in one run (one :class:`~enrich.Enricher`, whose fetchers remember a
spent quota across rounds): ``async with open_enricher(cfg) as e`` and
:func:`resolve_ids` per round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fakeapi.server import FakeServer, LoggedRequest

from enrich import Enricher
from enrich.config import Config
from enrich.models import Paper, Repo


@dataclass
class Fetched:
    """What one ``resolve`` gave, by id (paper ids and repository keys never overlap)."""

    papers: dict[str, Paper] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    """id -> ``cache``, ``fetched`` or ``failed``."""
    messages: dict[str, str] = field(default_factory=dict)
    """id -> why it is not a fresh record (a failure, not attempted, offline)."""
    requests: dict[str, int] = field(default_factory=dict)
    """``arxiv``/``github`` -> HTTP requests sent, retries included (as the run counts)."""
    logged: dict[str, list[LoggedRequest]] = field(default_factory=dict)
    """``arxiv``/``github`` -> what the fake given for that source logged during the call."""

    @property
    def records(self) -> dict[str, Paper | Repo]:
        return {**self.papers, **self.repos}

    @property
    def statuses(self) -> dict[str, str]:
        return {k: v.status for k, v in self.records.items()}

    def having(self, *statuses: str) -> set[str]:
        """The ids whose record has one of ``statuses``."""
        return {k for k, v in self.records.items() if v.status in statuses}


@asynccontextmanager
async def open_enricher(config: Config, *, offline: bool = False, refresh: bool = False,
                        store_path: str | Path | None = None) -> AsyncIterator[Enricher]:
    """An entered :class:`Enricher` for ``config`` (its cache at ``store_path`` if given)."""
    if store_path is not None:
        config = config.model_copy(deep=True)
        config.cache.path = Path(store_path)
    async with Enricher(config, offline=offline, refresh=refresh) as enricher:
        yield enricher


async def resolve_ids(enricher: Enricher, arxiv_ids: Sequence[str] = (),
                      repo_keys: Sequence[str] = (), *, arxiv: FakeServer | None = None,
                      github: FakeServer | None = None) -> Fetched:
    """One ``resolve`` of these ids; ``arxiv``/``github``: fakes whose new log lines to keep."""
    if both := set(arxiv_ids) & set(repo_keys):
        raise ValueError(f"ids named both as papers and repositories: {sorted(both)}")
    fakes = {name: (srv, len(srv.requests)) for name, srv in
             (("arxiv", arxiv), ("github", github)) if srv is not None}
    res = await enricher.resolve(list(arxiv_ids), list(repo_keys))
    return Fetched(
        papers=dict(res.papers),
        repos=dict(res.repos),
        origins={key: origin for (_, key), origin in res.origin.items()},
        messages={key: msg for (_, key), msg in res.messages.items()},
        requests={"arxiv": 0, "github": 0, **res.requests},
        logged={name: list(srv.requests[start:]) for name, (srv, start) in fakes.items()},
    )


async def afetch_ids(config: Config, arxiv_ids: Sequence[str] = (),
                     repo_keys: Sequence[str] = (), *, offline: bool = False,
                     refresh: bool = False, store_path: str | Path | None = None,
                     arxiv: FakeServer | None = None,
                     github: FakeServer | None = None) -> Fetched:
    """:func:`fetch_ids` in a running event loop."""
    async with open_enricher(config, offline=offline, refresh=refresh,
                             store_path=store_path) as enricher:
        return await resolve_ids(enricher, arxiv_ids, repo_keys, arxiv=arxiv, github=github)


def fetch_ids(config: Config, arxiv_ids: Sequence[str] = (), repo_keys: Sequence[str] = (),
              *, offline: bool = False, refresh: bool = False,
              store_path: str | Path | None = None, arxiv: FakeServer | None = None,
              github: FakeServer | None = None) -> Fetched:
    """Run the orchestrator once for these ids (a fresh event loop, cache and clients).

    The cache is ``config``'s (``store_path`` overrides it): a second call on the same
    cache serves what the first cached, unless ``refresh`` (or an expired TTL) asks
    again, with the cached ETags.
    """
    return asyncio.run(afetch_ids(config, arxiv_ids, repo_keys, offline=offline,
                                  refresh=refresh, store_path=store_path, arxiv=arxiv,
                                  github=github))


async def wait_for_requests(srv: FakeServer, n: int, *, endpoint: str | None = None,
                            timeout: float = 10.0) -> None:
    """Until ``srv`` has logged ``n`` requests (of ``endpoint``); AssertionError after
    ``timeout`` seconds. A condition polled, not a guess at how long things take."""
    deadline = time.monotonic() + timeout
    while srv.count(endpoint) < n:
        assert time.monotonic() < deadline, (
            f"{srv.count(endpoint)} requests logged after {timeout} s, waited for {n}")
        await asyncio.sleep(0.005)
