"""extract -> plan -> fetch -> store -> document: the stages of enriching texts.

:class:`Enricher` owns the lifetimes of the cache and the HTTP clients; it is an async
context manager so a library user (or one run over several files) shares one cache
connection and one client across texts. Ids from all texts given to
:meth:`Enricher.enrich_many` are fetched once, together.

How a record is served (per id):

- fresh in the cache (younger than its TTL) and not ``refresh``: served, no request;
- ``offline``: served from the cache as ``stale`` if expired, else ``missing``;
- otherwise fetched (ETag-revalidated for repositories without a token). A
  definitive answer (ok, not_found, unavailable) is cached as soon as its batch
  arrives; a transient failure never is: the cached data is served as ``stale``, or
  the id is ``error`` / ``missing`` when there was none.

One concurrency model: asyncio. arXiv and GitHub are fetched side by side, each
batch cached (on a worker thread, :func:`asyncio.to_thread`) as it arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol

from .config import Config
from .document import (
    MAX_CROSS_LINKS,
    Resolution,
    build_document,
    cross_links,
    linked_ids,
    unique,
)
from .errors import EnrichError
from .extract import extract, find_pages_links
from .fetch import FetchResult
from .fetch.arxiv import ArxivFetcher
from .fetch.github import GithubFetcher
from .fetch.policy import credential_id
from .models import EnrichedDocument, Link, Paper, Record, Repo, SourceInfo
from .store import Cached, CacheStore, open_store

log = logging.getLogger(__name__)

_CACHEABLE = frozenset({"ok", "not_found", "unavailable"})


ProgressHook = Callable[[str, int], None]
"""Called as ``hook(source, n)``: ``n`` more ids of ``source`` ("arxiv"/"github") are
done; with ``n`` ids to do in ``on_total``."""


class Progress(Protocol):
    """A progress display for :func:`enrich.run_files`: ids to do (each round of a run
    adds its own), and ids done, per source (``"arxiv"`` or ``"github"``)."""

    def add_total(self, source: str, n: int) -> None: ...

    def advance(self, source: str, n: int) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Wanted:
    """What a set of texts asks for: their links, and the ids of the first round."""

    links: list[list[Link]]
    pages: list[list[Link]]
    arxiv_ids: list[str]
    repo_keys: list[str]
    """The repositories the texts name, then the ``OWNER.github.io/REPO`` candidates."""

    @classmethod
    def of(cls, texts: Sequence[str]) -> Wanted:
        links = [extract(text) for text in texts]
        pages = [find_pages_links(text) for text in texts]
        arxiv_ids = unique(lk.id for ls in links for lk in ls if lk.kind == "arxiv")
        repo_keys = unique(lk.id for ls in links for lk in ls if lk.kind == "github")
        named = set(repo_keys)
        candidates = [k for k in unique(lk.id for ps in pages for lk in ps) if k not in named]
        return cls(links, pages, arxiv_ids, repo_keys + candidates)

    @property
    def page_candidates(self) -> int:
        named = {lk.id for ls in self.links for lk in ls if lk.kind == "github"}
        return len(self.repo_keys) - len(named)


@dataclass
class SourcePlan:
    """What a run would do for one source (``--dry-run``)."""

    found: int = 0
    fresh: int = 0
    revalidate: int = 0
    fetch: int = 0
    requests: int = 0
    request_kind: str = ""
    linked_more: int = 0
    """Up to this many more ids, named by the records (the cross-link round)."""
    linked_requests: int = 0


@dataclass
class Plan:
    arxiv: SourcePlan = field(default_factory=SourcePlan)
    github: SourcePlan = field(default_factory=SourcePlan)
    page_candidates: int = 0

    def lines(self) -> list[str]:
        """The plan as ``--dry-run`` prints it."""
        out = [f"{name}: {sp.found} found, {sp.fresh} fresh in cache, {sp.revalidate} to "
               f"revalidate, {sp.fetch} to fetch -> {sp.requests} {sp.request_kind}"
               for name, sp in (("arXiv", self.arxiv), ("GitHub", self.github))]
        if self.page_candidates:
            out.append(f"GitHub Pages: {self.page_candidates} OWNER.github.io/REPO "
                       "candidates (counted above)")
        for name, sp, what in (("arXiv", self.arxiv, "papers"),
                               ("GitHub", self.github, "repos")):
            if sp.linked_more:
                out.append(f"cross-links: up to {sp.linked_more} more {what} named by the "
                           f"records -> up to {sp.linked_requests} more {name} requests")
        return out


class Enricher:
    """Enrich texts with arXiv and GitHub metadata, sharing one cache and one client.

    ::

        async with Enricher(Config.load()) as e:
            doc = await e.enrich_text(text)

    ``offline`` serves only from the cache; ``refresh`` ignores the TTLs and
    revalidates everything. The library never takes the run lock: the cache stays
    consistent under concurrent use through the database's transactions. ``store``, an
    open :class:`~enrich.store.CacheStore`, is used instead of opening the cache the
    config names, and is left open on exit for its owner to close.

    With a cache shared by several hosts (PostgreSQL, ``cache.url``), the ids to fetch
    are first claimed (:meth:`CacheStore.claim`, renewed every third of
    ``cache.lease``); ids another run has claimed are waited for (looked for every
    ``cache.poll_interval``) and fetched here only if their claim is let go without a
    result or runs out.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        offline: bool = False,
        refresh: bool = False,
        progress: ProgressHook | None = None,
        on_total: ProgressHook | None = None,
        now: Callable[[], datetime] = _utcnow,
        store: CacheStore | None = None,
    ) -> None:
        self.config = config if config is not None else Config.load()
        self.offline = offline
        self.refresh = refresh
        self._progress = progress
        self._on_total = on_total
        self._now = now
        self._store: CacheStore | None = store
        self._own_store = store is None
        self._arxiv: ArxivFetcher | None = None
        self._github: GithubFetcher | None = None
        self.requests: dict[str, int] = {"arxiv": 0, "github": 0}
        self._owner = uuid.uuid4().hex
        """Names this run's claims in a shared cache."""

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> Enricher:
        self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def open(self) -> None:
        if self._store is None:
            self._store = open_store(self.config)

    async def aclose(self) -> None:
        if self._github is not None:
            await self._github.aclose()
            self._github = None
        if self._arxiv is not None:
            await self._arxiv.aclose()
            self._arxiv = None
        if self._store is not None and self._own_store:
            self._store.close()
            self._store = None

    @property
    def store(self) -> CacheStore:
        if self._store is None:
            self.open()
        assert self._store is not None
        return self._store

    @property
    def credential(self) -> str:
        token = self.config.token
        return credential_id(token.get_secret_value() if token is not None else None)

    # -- public API ----------------------------------------------------------------------

    async def enrich_text(self, text: str, *, source: SourceInfo | None = None) -> EnrichedDocument:
        """Enrich one text (already stripped of enrich blocks)."""
        docs = await self.enrich_many([(text, source)])
        return docs[0]

    async def enrich_many(self, items: Sequence[tuple[str, SourceInfo | None]]
                          ) -> list[EnrichedDocument]:
        """Enrich several texts, fetching the union of their ids once."""
        docs, _ = await self.enrich_many_resolved(items)
        return docs

    async def enrich_many_resolved(self, items: Sequence[tuple[str, SourceInfo | None]]
                                   ) -> tuple[list[EnrichedDocument], Resolution]:
        """:meth:`enrich_many`, also returning where each record came from.

        Round one fetches every id named in the texts, plus the repositories
        behind ``OWNER.github.io/REPO`` links (kept only where they exist).
        Round two fetches what those records link to (a repository named in a
        paper's abstract, a paper named in a repository's description) that
        round one did not have: one level deep, never a crawl.
        """
        wanted = Wanted.of([text for text, _ in items])
        res = await self.resolve(wanted.arxiv_ids, wanted.repo_keys)
        code_of, papers_of = cross_links(res.papers, res.repos)
        more_p, more_r = linked_ids(code_of, papers_of)
        more_p = [i for i in more_p if i not in res.papers]
        more_r = [k for k in more_r if k not in res.repos]
        if more_p or more_r:
            res.absorb(await self.resolve(more_p, more_r))
            code_of, papers_of = cross_links(res.papers, res.repos)
        res.code_of, res.papers_of = code_of, papers_of
        res.histories = self.store.star_histories(res.repos)

        generated = self._now().replace(microsecond=0)
        docs = []
        for links, pages, (_, source) in zip(wanted.links, wanted.pages, items, strict=True):
            verified = [lk for lk in pages
                        if (rec := res.repos.get(lk.id)) is not None
                        and rec.status in ("ok", "stale")]
            if verified:
                links = sorted([*links, *verified], key=lambda lk: (lk.start, lk.end))
            docs.append(build_document(links, res, source=source, generated_at=generated))
        return docs, res

    def plan(self, texts: Sequence[str], store: CacheStore | None) -> Plan:
        """What :meth:`enrich_many` would do, without any request or write (``--dry-run``).

        The ids are the run's own (:class:`Wanted`: named ids and Pages candidates).
        The cross-link round is known exactly for the records the cache serves; for
        each record to fetch it may add up to :data:`MAX_CROSS_LINKS` more ids.
        """
        wanted = Wanted.of(texts)
        now, cfg = self._now(), self.config
        plan = Plan(page_candidates=wanted.page_candidates)
        cached_p = store.get_papers(wanted.arxiv_ids) if store else {}
        cached_r = store.get_repos(wanted.repo_keys, self.credential) if store else {}
        for ids, cached, sp, ttl in (
                (wanted.arxiv_ids, cached_p, plan.arxiv, cfg.cache.arxiv_ttl),
                (wanted.repo_keys, cached_r, plan.github, cfg.cache.github_ttl)):
            sp.found = len(ids)
            for i in ids:
                c = cached.get(i)
                if c is not None and not self.refresh and c.is_fresh(
                        ttl, cfg.cache.not_found_ttl, now):
                    sp.fresh += 1
                elif c is not None:
                    sp.revalidate += 1
                else:
                    sp.fetch += 1
        if self.offline:
            plan.arxiv.request_kind = plan.github.request_kind = "offline"
            return plan
        known_p = {k: c.record for k, c in cached_p.items()}
        known_r = {k: c.record for k, c in cached_r.items()}
        more_p, more_r = linked_ids(*cross_links(known_p, known_r))
        unknown_p = plan.arxiv.revalidate + plan.arxiv.fetch
        unknown_r = plan.github.revalidate + plan.github.fetch
        plan.arxiv.linked_more = len([i for i in more_p if i not in known_p]) \
            + MAX_CROSS_LINKS * unknown_r
        plan.github.linked_more = len([k for k in more_r if k not in known_r]) \
            + MAX_CROSS_LINKS * unknown_p
        self._count_requests(plan, wanted.repo_keys, cached_r, now)
        return plan

    def _count_requests(self, plan: Plan, repo_keys: Sequence[str],
                        cached_r: dict[str, Cached[Repo]], now: datetime) -> None:
        cfg = self.config
        todo_p = plan.arxiv.revalidate + plan.arxiv.fetch
        todo_r = plan.github.revalidate + plan.github.fetch
        plan.arxiv.requests = math.ceil(todo_p / cfg.arxiv.batch_size)
        plan.arxiv.linked_requests = math.ceil(plan.arxiv.linked_more / cfg.arxiv.batch_size)
        plan.arxiv.request_kind = "arXiv API queries"
        if cfg.token is not None:
            plan.github.requests = math.ceil(todo_r / cfg.github.batch_size)
            plan.github.linked_requests = math.ceil(plan.github.linked_more
                                                    / cfg.github.batch_size)
            plan.github.request_kind = "GraphQL queries"
            return
        plan.github.requests = todo_r
        plan.github.linked_requests = plan.github.linked_more
        conditional = sum(
            1 for k in repo_keys
            if (c := cached_r.get(k)) is not None and c.etag
            and (self.refresh or not c.is_fresh(cfg.cache.github_ttl,
                                                cfg.cache.not_found_ttl, now)))
        plan.github.request_kind = f"REST requests ({conditional} conditional)"

    async def resolve(self, arxiv_ids: Sequence[str], repo_keys: Sequence[str]) -> Resolution:
        """Records for these canonical ids: from the cache, or fetched and cached."""
        store, cred = self.store, self.credential
        res = Resolution()
        cached_p = store.get_papers(arxiv_ids)
        cached_r = store.get_repos(repo_keys, cred)
        fetch_p = self._triage("arxiv", arxiv_ids, cached_p, res)
        fetch_r = self._triage("github", repo_keys, cached_r, res)
        for source, ids, todo in (("arxiv", arxiv_ids, fetch_p), ("github", repo_keys, fetch_r)):
            if self._on_total is not None:
                self._on_total(source, len(ids))
            if self._progress is not None:
                self._progress(source, len(ids) - len(todo))
        if store.shares_work and (fetch_p or fetch_r):
            await self._fetch_shared(fetch_p, fetch_r, cached_p, cached_r, res)
        else:
            await self._fetch_and_merge(fetch_p, fetch_r, cached_p, cached_r, res)
        return res

    async def _fetch_and_merge(self, fetch_p: list[str], fetch_r: list[str],
                               cached_p: dict[str, Cached[Paper]],
                               cached_r: dict[str, Cached[Repo]], res: Resolution) -> None:
        """Fetch these ids, cache the definitive answers and put every id in ``res``."""
        store, cred = self.store, self.credential
        known = {k: c for k in fetch_r if (c := cached_r.get(k)) is not None
                 and c.record.status == "ok"}
        etags = {k: c.etag for k, c in known.items() if c.etag}
        # the canonical name learned for a renamed repository: asked for directly
        names = {k: c.record.full_name for k, c in known.items() if c.record.full_name}
        written_p: set[str] = set()  # ids cached batch by batch (arXiv, GraphQL)
        written_r: set[str] = set()
        papers = asyncio.ensure_future(self._fetch_papers(fetch_p, cached_p, written_p))
        repos = asyncio.ensure_future(self._fetch_repos(fetch_r, etags, names, written_r))
        try:
            got_p, got_r = await asyncio.gather(papers, repos)
        except BaseException:
            # one source failed for good (a token GitHub rejects is a ConfigError): the
            # other stops too rather than run on unattended
            papers.cancel()
            repos.cancel()
            await asyncio.gather(papers, repos, return_exceptions=True)
            raise
        for source, n in (("arxiv", got_p.requests), ("github", got_r.requests)):
            res.requests[source] = res.requests.get(source, 0) + n
            self.requests[source] += n

        # What no batch cached: REST answers with their ETags, verdicts made without a
        # request; and the 304s, which confirm the cached data.
        done = self._now()
        rest_p = {k: v for k, v in got_p.records.items() if k not in written_p}
        rest_r = {k: v for k, v in got_r.records.items() if k not in written_r}
        await self._cache_batch(rest_p, store.put_papers, when=done)
        await self._cache_batch(rest_r, lambda recs, when: store.put_repos(
            recs, when, credential=cred, etags=got_r.etags), when=done)
        if got_r.not_modified:
            await asyncio.to_thread(store.touch_repos, got_r.not_modified, done,
                                    credential=cred)
        self._merge("arxiv", fetch_p, got_p, cached_p, res, done)
        self._merge("github", fetch_r, got_r, cached_r, res, done)
        if self._progress is not None:
            self._progress("arxiv", len(fetch_p))
            self._progress("github", len(fetch_r))

    async def _fetch_shared(self, fetch_p: list[str], fetch_r: list[str],
                            cached_p: dict[str, Cached[Paper]],
                            cached_r: dict[str, Cached[Repo]], res: Resolution) -> None:
        """:meth:`_fetch_and_merge` for a cache shared with other runs: fetch what this
        run could claim, wait for the rest, take over what is let go or runs out."""
        store, owner, cfg = self.store, self._owner, self.config.cache
        renewing = asyncio.ensure_future(self._renew_claims())
        try:
            wait_p, wait_r = fetch_p, fetch_r
            while True:
                mine_p = set(await asyncio.to_thread(store.claim, "paper", wait_p, owner,
                                                     cfg.lease))
                mine_r = set(await asyncio.to_thread(store.claim, "repo", wait_r, owner,
                                                     cfg.lease))
                wait_p = [i for i in wait_p if i not in mine_p]
                wait_r = [k for k in wait_r if k not in mine_r]
                if mine_p or mine_r:
                    try:
                        await self._fetch_and_merge([i for i in fetch_p if i in mine_p],
                                                    [k for k in fetch_r if k in mine_r],
                                                    cached_p, cached_r, res)
                    finally:
                        await asyncio.to_thread(store.release, "paper", sorted(mine_p), owner)
                        await asyncio.to_thread(store.release, "repo", sorted(mine_r), owner)
                if not wait_p and not wait_r:
                    return
                log.debug("waiting for %d papers and %d repositories another run is "
                          "fetching", len(wait_p), len(wait_r))
                await asyncio.sleep(cfg.poll_interval)
                wait_p = self._served_by_others("arxiv", wait_p, cached_p, res)
                wait_r = self._served_by_others("github", wait_r, cached_r, res)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _renew_claims(self) -> None:
        """Keep this run's claims alive while it works (every third of the lease)."""
        lease = self.config.cache.lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await asyncio.to_thread(self.store.renew, self._owner, lease)
            except EnrichError as exc:  # the next try may work; the lease is 3 tries long
                log.warning("could not renew this run's claims: %s", exc)

    def _served_by_others(self, kind: str, waiting: list[str], cached: dict[str, Any],
                          res: Resolution) -> list[str]:
        """Put in ``res`` the ids another run has cached since the triage; return the
        ids still waited for."""
        if not waiting:
            return []
        now = (self.store.get_papers(waiting) if kind == "arxiv"
               else self.store.get_repos(waiting, self.credential))
        still = []
        for i in waiting:
            c, before = now.get(i), cached.get(i)
            if c is not None and (before is None or c.fetched_at > before.fetched_at):
                res.put(kind, i, c.record, "cache")
                if self._progress is not None:
                    self._progress(kind, 1)
            else:
                still.append(i)
        return still

    # -- internals ----------------------------------------------------------------------------

    async def _fetch_papers(self, ids: list[str], cached: dict[str, Cached[Paper]],
                            written: set[str]) -> FetchResult[Paper]:
        if not ids:
            return FetchResult()
        if self._arxiv is None:
            self._arxiv = ArxivFetcher(
                self.config, shared_gate=self.store.arxiv_gate(self.config.arxiv.api_url))

        async def cache(made: dict[str, Paper]) -> None:
            await self._cache_batch(
                {k: v for k, v in made.items() if not _is_glitch(v, cached.get(k))},
                self.store.put_papers, written)

        got = await self._arxiv.fetch(ids, on_batch=cache)
        _keep_known_papers(got, cached)
        return got

    async def _fetch_repos(self, keys: list[str], etags: dict[str, str],
                           names: dict[str, str], written: set[str]) -> FetchResult[Repo]:
        if not keys:
            return FetchResult()
        if self._github is None:
            self._github = GithubFetcher(self.config, shared_quota=self.store.github_quota())
        cred = self.credential

        async def cache(made: dict[str, Repo]) -> None:
            await self._cache_batch(made, lambda recs, when: self.store.put_repos(
                recs, when, credential=cred), written)

        return await self._github.fetch(keys, etags, names=names, on_batch=cache)

    async def _cache_batch(self, made: dict[str, Any],
                           put: Callable[[dict[str, Any], datetime], None],
                           written: set[str] | None = None, *,
                           when: datetime | None = None) -> None:
        """Cache the definitive records of ``made`` on a worker thread, stamped as the
        cache records them (so that a later run serves the same records); their ids go
        to ``written``. A failure to write ends the run (CacheError)."""
        recs = {k: v for k, v in made.items() if v.status in _CACHEABLE}
        if not recs:
            return
        when = when or self._now()
        await asyncio.to_thread(put, recs, when)
        for rec in recs.values():
            rec.fetched_at = when
        if written is not None:
            written.update(recs)

    def _triage(self, kind: str, ids: Sequence[str], cached: dict[str, Any],
                res: Resolution) -> list[str]:
        """Serve what the cache can; return the ids that need a request."""
        cfg, now = self.config, self._now()
        ttl = cfg.cache.arxiv_ttl if kind == "arxiv" else cfg.cache.github_ttl
        to_fetch: list[str] = []
        for i in ids:
            c = cached.get(i)
            fresh = c is not None and c.is_fresh(ttl, cfg.cache.not_found_ttl, now)
            if c is not None and fresh and not self.refresh:
                res.put(kind, i, c.record, "cache")
            elif not self.offline:
                to_fetch.append(i)
            elif c is not None:
                res.put(kind, i, c.record if fresh else _as_stale(c.record), "cache",
                        None if fresh else "offline: cached data has expired")
            else:
                res.put(kind, i, _blank(kind, "missing"), "failed", "offline: never fetched")
        return to_fetch

    def _merge(self, kind: str, asked: Sequence[str], got: FetchResult[Any],
               cached: dict[str, Cached[Any]], res: Resolution, now: datetime) -> None:
        for i in asked:
            c = cached.get(i)
            rec = got.records.get(i)
            if rec is not None and rec.status in _CACHEABLE:
                res.put(kind, i, rec, "fetched")
            elif rec is None and i in got.not_modified and c is not None:
                res.put(kind, i, c.record.model_copy(update={"fetched_at": now}), "fetched")
            else:
                msg = (rec.status if rec is not None else got.missing.get(i)
                       or got.failed.get(i, "no answer for this id"))
                if c is not None:
                    res.put(kind, i, _as_stale(c.record), "failed", msg)
                else:
                    blank: Literal["missing", "error"] = (
                        "missing" if rec is None and i in got.missing else "error")
                    res.put(kind, i, _blank(kind, blank), "failed", msg)


def _is_glitch(rec: Paper, cached: Cached[Paper] | None) -> bool:
    """See :func:`_keep_known_papers`."""
    return rec.status == "not_found" and cached is not None and cached.record.status == "ok"


def _keep_known_papers(got: FetchResult[Paper], cached: dict[str, Cached[Paper]]) -> None:
    """A ``not_found`` for a paper the cache holds is a glitch: keep the paper.

    arXiv never removes a paper (a withdrawn one keeps its entry), while it
    sporadically serves empty pages (lukasschwab/arxiv.py#83). Believing one would overwrite
    good cached data with a verdict kept for ``not_found_ttl``; instead the id
    counts as failed, so the cached record is served as ``stale``.
    """
    for pid, rec in list(got.records.items()):
        if _is_glitch(rec, cached.get(pid)):
            del got.records[pid]
            got.failed[pid] = ("arXiv answered no entry for a paper it served before "
                               "(an empty page?); kept the cached record")


def _as_stale(rec: Record) -> Any:
    """Cached data kept because a refresh failed or we are offline; verdicts stay verdicts."""
    if rec.status == "ok":
        return rec.model_copy(update={"status": "stale"})
    return rec


def _blank(kind: str, status: Literal["missing", "error"]) -> Paper | Repo:
    return Paper(status=status) if kind == "arxiv" else Repo(status=status)


def enrich_text(text: str, config: Config | None = None, *, offline: bool = False,
                refresh: bool = False) -> EnrichedDocument:
    """Synchronous convenience: enrich one text with a short-lived :class:`Enricher`.

    Safe to call from code that already runs an event loop (it then runs in a
    worker thread).
    """

    done: list[EnrichedDocument] = []

    async def go() -> None:
        # the document is handed back here, not as the main task's result: asyncio.run
        # formats that result when it restores the SIGINT handler (slow for big ones)
        async with Enricher(config, offline=offline, refresh=refresh) as e:
            done.append(await e.enrich_text(text))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(go())
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, go()).result()
    return done[0]
