"""extract -> plan -> fetch -> store -> document. The only module that knows every stage.

:class:`Enricher` owns the lifetimes of the cache and the HTTP clients; it is
an async context manager so a library user (or one CLI run over several
files) shares one cache connection and one client across texts. Ids from all
texts given to :meth:`Enricher.enrich_many` are fetched once, together.

How a record is served (per id):

- fresh in the cache (younger than its TTL) and not ``refresh``: served, no request;
- ``offline``: served from the cache as ``stale`` if expired, else ``missing``;
- otherwise fetched (ETag-revalidated for repositories without a token). A
  definitive answer (ok, not_found, unavailable) is cached; a transient failure
  never is: the cached data is served as ``stale``, or the id is ``error`` /
  ``missing`` when there was none.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import logging
import math
import threading
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .config import Config
from .extract import extract, find_pages_links
from .fetch import FetchResult
from .fetch.policy import credential_id
from .models import (
    EnrichedDocument,
    ErrorEntry,
    FileReport,
    Link,
    Paper,
    Record,
    Repo,
    SourceCounts,
    SourceInfo,
)
from .store import Cached, Store
from .trends import star_trend

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    import queue
    import ssl

    from .fetch.arxiv import ArxivFetcher
    from .fetch.github import GithubFetcher
else:

    class _Asyncio:
        """``asyncio``, imported when first used: a CLI run the cache serves entirely
        runs no event loop (see :func:`run_sync`), and importing asyncio (ssl,
        subprocess, concurrent.futures...) was ~0.03 s of such a run."""

        def __getattr__(self, name: str) -> Any:
            import asyncio

            return getattr(asyncio, name)

    asyncio = _Asyncio()

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R", bound=Record)
Origin = Literal["cache", "fetched", "failed"]
ProgressHook = Callable[[str, int], None]
"""Called as ``hook(source, n)``: ``n`` more ids of ``source`` ("arxiv"/"github") are done."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SourcePlan:
    """What a run would do for one source (``--dry-run``)."""

    found: int = 0
    fresh: int = 0
    revalidate: int = 0
    fetch: int = 0
    requests: int = 0
    request_kind: str = ""


@dataclass
class Plan:
    arxiv: SourcePlan = field(default_factory=SourcePlan)
    github: SourcePlan = field(default_factory=SourcePlan)


@dataclass
class Resolution:
    """Records for a set of ids, with where each came from."""

    papers: dict[str, Paper] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    origin: dict[tuple[str, str], Origin] = field(default_factory=dict)
    messages: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    code_of: dict[str, list[str]] = field(default_factory=dict)
    papers_of: dict[str, list[str]] = field(default_factory=dict)
    histories: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)
    placed: set[tuple[str, str]] = field(default_factory=set)
    """Records :func:`build_document` has given a document (its own, updated in place):
    later documents get copies."""

    def absorb(self, other: Resolution) -> None:
        """Add a later round's records (the ids do not overlap)."""
        self.papers.update(other.papers)
        self.repos.update(other.repos)
        self.origin.update(other.origin)
        self.messages.update(other.messages)
        for k, v in other.requests.items():
            self.requests[k] = self.requests.get(k, 0) + v


#: At most this many code links per paper and paper links per repository (first named
#: first): what a record links to is fetched too, so a survey's abstract must not fan out.
MAX_CROSS_LINKS = 5


def cross_links(papers: dict[str, Paper], repos: dict[str, Repo]
                ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Paper -> code and repository -> papers, both ways, from the records' own text.

    A GitHub repository named in a paper's abstract or comment is its code; an
    arXiv id in a repository's description or homepage is its paper. Each
    link is recorded on both sides.
    """
    code_of: dict[str, list[str]] = {}
    papers_of: dict[str, list[str]] = {}

    def add(pid: str, key: str) -> None:
        code, papers_ = code_of.get(pid, []), papers_of.get(key, [])
        if key in code or pid in papers_:
            return
        if len(code) >= MAX_CROSS_LINKS or len(papers_) >= MAX_CROSS_LINKS:
            return  # a survey naming fifty repositories is not fifty "code" links
        code_of.setdefault(pid, code).append(key)
        papers_of.setdefault(key, papers_).append(pid)

    # One extraction over every record's text rather than one per record (thousands of
    # small calls were a tenth of a warm run): no link spans a line break, so records
    # joined by blank lines yield each record's own links, in the same order.
    record_texts = (
        *((True, pid, p.abstract, p.comment) for pid, p in papers.items()),
        *((False, key, r.description, r.homepage) for key, r in repos.items()),
    )
    owners: list[tuple[bool, str]] = []  # (is a paper, its id or key), per text
    starts: list[int] = []
    texts: list[str] = []
    pos = 0
    for is_paper, owner, first, second in record_texts:
        if first or second:
            texts.append(f"{first or ''}\n{second or ''}")
            owners.append((is_paper, owner))
            starts.append(pos)
            pos += len(texts[-1]) + 2
    for lk in extract("\n\n".join(texts)):
        is_paper, owner = owners[bisect.bisect_right(starts, lk.start) - 1]
        if is_paper and lk.kind == "github":
            add(owner, lk.id)
        elif not is_paper and lk.kind == "arxiv":
            add(lk.id, owner)
    return code_of, papers_of


def papers_of_ids(code_of: dict[str, list[str]], papers_of: dict[str, list[str]]) -> list[str]:
    return [*code_of, *(p for ps in papers_of.values() for p in ps)]


def repos_of_ids(code_of: dict[str, list[str]], papers_of: dict[str, list[str]]) -> list[str]:
    return [*papers_of, *(k for ks in code_of.values() for k in ks)]


class Enricher:
    """Enrich texts with arXiv and GitHub metadata, sharing one cache and one client.

    ::

        async with Enricher(Config.load()) as e:
            doc = await e.enrich_text(text)

    ``offline`` serves only from the cache; ``refresh`` ignores the TTLs and
    revalidates everything. The library never takes the CLI's run lock: the
    cache stays consistent under concurrent use through SQLite transactions.
    ``store``, an open :class:`~enrich.store.Store`, is used instead of opening
    ``config.cache_path``, and is left open on exit for its owner to close.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        offline: bool = False,
        refresh: bool = False,
        progress: ProgressHook | None = None,
        now: Callable[[], datetime] = _utcnow,
        store: Store | None = None,
    ) -> None:
        self.config = config if config is not None else Config.load()
        self.offline = offline
        self.refresh = refresh
        self._progress = progress
        self._now = now
        # A cache handed in stays the caller's to close; else one is opened on entry
        # (config.cache_path) and closed on exit.
        self._store: Store | None = store
        self._own_store = store is None
        self._arxiv: ArxivFetcher | None = None
        self._github: GithubFetcher | None = None
        self._setup: dict[str, concurrent.futures.Future[Any]] = {}
        self.requests: dict[str, int] = {"arxiv": 0, "github": 0}

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> Enricher:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def open(self) -> None:
        if self._store is None:
            self._store = Store(self.config.cache_path)

    async def aclose(self) -> None:
        if self._github is not None:
            await self._github.aclose()
            self._github = None
        if self._arxiv is not None:
            self._arxiv.close()
            self._arxiv = None
        if self._store is not None and self._own_store:
            self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self.open()
        assert self._store is not None
        return self._store

    def _arxiv_fetcher(self) -> ArxivFetcher:
        if self._arxiv is None:
            from .fetch.arxiv import ArxivFetcher

            self._arxiv = ArxivFetcher(self.config)
        return self._arxiv

    def _prepare_fetchers(self) -> None:
        """Start setting up both fetchers on worker threads, once a request is sure to
        come: importing the arxiv package (with requests and lxml), and building the TLS
        context of GitHub's client. OpenSSL reads the CA bundle without holding the GIL,
        so the second core does that while the imports and the cache reads run."""
        if self._arxiv is None and "arxiv" not in self._setup:
            self._setup["arxiv"] = _in_thread(_import_arxiv_fetcher)
        if self._github is None and "tls" not in self._setup:
            self._setup["tls"] = _in_thread(_tls_context)

    async def _github_ready(self) -> GithubFetcher:
        """The GitHub fetcher, built with the TLS context :meth:`_prepare_fetchers` started."""
        if self._github is None:
            self._prepare_fetchers()
            # While the TLS context is being built: httpx, and what its first request
            # would import (anyio's asyncio backend, loaded by httpcore on its first
            # connection), so that nothing is loaded between the first query and the wire.
            from .fetch.github import GithubFetcher

            with contextlib.suppress(ImportError):  # a warm-up: anyio may name it otherwise
                import anyio._backends._asyncio  # noqa: F401
            tls = await asyncio.wrap_future(self._setup["tls"])
            if self._github is None:  # another task may have built it meanwhile
                self._github = GithubFetcher(self.config, tls=tls)
        return self._github

    @property
    def credential(self) -> str:
        token = self.config.token
        return credential_id(token.get_secret_value() if token is not None else None)

    # -- public API ----------------------------------------------------------------------

    async def enrich_text(self, text: str, *, source: SourceInfo | None = None) -> EnrichedDocument:
        """Enrich one text (already stripped of enrich blocks)."""
        docs = await self.enrich_many([(text, source)])
        return docs[0]

    async def enrich_many(
        self, items: Sequence[tuple[str, SourceInfo | None]]
    ) -> list[EnrichedDocument]:
        """Enrich several texts, fetching the union of their ids once."""
        docs, _ = await self.enrich_many_resolved(items)
        return docs

    async def enrich_many_resolved(
        self, items: Sequence[tuple[str, SourceInfo | None]]
    ) -> tuple[list[EnrichedDocument], Resolution]:
        """:meth:`enrich_many`, also returning where each record came from.

        Round one fetches every id named in the texts, plus the repositories
        behind ``OWNER.github.io/REPO`` links (kept only where they exist).
        Round two fetches what those records link to (a repository named in a
        paper's abstract, a paper named in a repository's description) that
        round one did not have: one level deep, never a crawl.
        """
        all_links = [extract(text) for text, _ in items]
        all_pages = [find_pages_links(text) for text, _ in items]
        arxiv_ids = _unique(lk.id for links in all_links for lk in links if lk.kind == "arxiv")
        repo_keys = _unique(lk.id for links in all_links for lk in links if lk.kind == "github")
        known = set(repo_keys)
        page_keys = [k for k in _unique(lk.id for pages in all_pages for lk in pages)
                     if k not in known]
        res = await self._resolve_any(arxiv_ids, repo_keys + page_keys)

        code_of, papers_of = cross_links(res.papers, res.repos)
        extra_p = [i for i in _unique(papers_of_ids(code_of, papers_of)) if i not in res.papers]
        extra_r = [k for k in _unique(repos_of_ids(code_of, papers_of)) if k not in res.repos]
        if extra_p or extra_r:
            more = await self._resolve_any(extra_p, extra_r)
            res.absorb(more)
            code_of, papers_of = cross_links(res.papers, res.repos)
        res.code_of, res.papers_of = code_of, papers_of
        res.histories = self.store.star_histories(res.repos)

        generated = self._now().replace(microsecond=0)
        docs = []
        for links, pages, (_, source) in zip(all_links, all_pages, items, strict=True):
            verified = [lk for lk in pages
                        if (rec := res.repos.get(lk.id)) is not None
                        and rec.status in ("ok", "stale")]
            if verified:
                links = sorted([*links, *verified], key=lambda lk: (lk.start, lk.end))
            docs.append(build_document(links, res, source=source, generated_at=generated))
        return docs, res

    def plan(self, arxiv_ids: Sequence[str], repo_keys: Sequence[str],
             store: Store | None) -> Plan:
        """What :meth:`resolve` would do, without any request or write (``--dry-run``)."""
        now = self._now()
        cfg = self.config
        plan = Plan()
        cached_p = store.get_papers(arxiv_ids) if store else {}
        cached_r = store.get_repos(repo_keys, self.credential) if store else {}
        for ids, cached, sp, ttl in (
            (arxiv_ids, cached_p, plan.arxiv, cfg.cache.arxiv_ttl),
            (repo_keys, cached_r, plan.github, cfg.cache.github_ttl),
        ):
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
        todo_p = plan.arxiv.revalidate + plan.arxiv.fetch
        todo_r = plan.github.revalidate + plan.github.fetch
        if self.offline:
            plan.arxiv.request_kind = plan.github.request_kind = "offline"
            return plan
        plan.arxiv.requests = math.ceil(todo_p / cfg.arxiv.batch_size)
        plan.arxiv.request_kind = "arXiv API queries"
        if self.config.token is not None:
            plan.github.requests = math.ceil(todo_r / cfg.github.batch_size)
            plan.github.request_kind = "GraphQL queries"
        else:
            plan.github.requests = todo_r
            revalidate_etag = sum(
                1 for k in repo_keys
                if (c := cached_r.get(k)) is not None and c.etag
                and (self.refresh or not c.is_fresh(cfg.cache.github_ttl,
                                                    cfg.cache.not_found_ttl, now))
            )
            plan.github.request_kind = f"REST requests ({revalidate_etag} conditional)"
        return plan

    async def resolve(self, arxiv_ids: Sequence[str], repo_keys: Sequence[str]) -> Resolution:
        """Records for these canonical ids: from the cache, or fetched and cached."""
        cfg = self.config
        now = self._now()
        store = self.store
        res = Resolution()
        cred = self.credential
        cached_p = store.get_papers(arxiv_ids)
        cached_r = store.get_repos(repo_keys, cred)

        fetch_p = self._triage("arxiv", arxiv_ids, cached_p, cfg.cache.arxiv_ttl, now, res)
        fetch_r = self._triage("github", repo_keys, cached_r, cfg.cache.github_ttl, now, res)
        if self._progress is not None:  # what the cache served is done already
            self._progress("arxiv", len(arxiv_ids) - len(fetch_p))
            self._progress("github", len(repo_keys) - len(fetch_r))
        etags = {k: c.etag for k in fetch_r if (c := cached_r.get(k)) is not None
                 and c.etag and c.record.status == "ok"}

        async def none_p() -> FetchResult[Paper]:
            return FetchResult()

        async def none_r() -> FetchResult[Repo]:
            return FetchResult()

        # Batches are cached as they arrive, while later ones are on the wire (the
        # process mostly waits then); what a batch hook could not take is cached below.
        early = _EarlyWrites(self, cached_p, cred)
        if fetch_p or fetch_r:
            self._prepare_fetchers()
        # GitHub first: with a token its queries take a little longer than arXiv's.
        task_r = asyncio.ensure_future(
            (await self._github_ready()).fetch(fetch_r, etags, refresh=self.refresh,
                                               on_batch=early.repos)
            if fetch_r else none_r())
        try:
            if fetch_p and self._arxiv is None:
                await asyncio.wrap_future(self._setup["arxiv"])
            task_p = asyncio.ensure_future(
                self._arxiv_fetcher().fetch(fetch_p, on_batch=early.papers)
                if fetch_p else none_p())
        except BaseException:
            task_r.cancel()
            early.finish(check=False)
            raise
        try:
            got_p, got_r = await asyncio.gather(task_p, task_r)
        finally:
            early.finish(check=False)  # nothing is left writing behind this call
        early.finish()
        _keep_known_papers(got_p, cached_p)
        res.requests = {"arxiv": got_p.requests, "github": got_r.requests}
        self.requests["arxiv"] += got_p.requests
        self.requests["github"] += got_r.requests
        done = self._now()

        definitive_p = {k: v for k, v in got_p.records.items()
                        if v.status in _CACHEABLE and ("arxiv", k) not in early.stamped}
        definitive_r = {k: v for k, v in got_r.records.items()
                        if v.status in _CACHEABLE and ("github", k) not in early.stamped}
        if definitive_p:
            store.put_papers(definitive_p, done)
        if definitive_r or got_r.etags:
            store.put_repos(definitive_r, done, credential=cred, etags=got_r.etags)
        if got_r.not_modified:
            store.touch_repos(got_r.not_modified, done, credential=cred)

        self._merge("arxiv", fetch_p, got_p, cached_p, res, done, early.stamped)
        self._merge("github", fetch_r, got_r, cached_r, res, done, early.stamped)
        if self._progress is not None:
            self._progress("arxiv", len(fetch_p))
            self._progress("github", len(fetch_r))
        return res

    # -- internals ----------------------------------------------------------------------------

    async def _resolve_any(self, arxiv_ids: Sequence[str], repo_keys: Sequence[str]
                           ) -> Resolution:
        """:meth:`resolve`; or, while :func:`run_sync` drives the call without an event
        loop (``loop_on_demand``), :meth:`_from_cache` when it can serve every id, and
        otherwise an event loop is started first."""
        if _driven_without_loop():
            res = self._from_cache(arxiv_ids, repo_keys)
            if res is not None:
                return res
            if not self.offline:
                self._prepare_fetchers()  # while asyncio is imported and started
            await _EventLoopNeeded()
        return await self.resolve(arxiv_ids, repo_keys)

    def _from_cache(self, arxiv_ids: Sequence[str], repo_keys: Sequence[str]
                    ) -> Resolution | None:
        """What :meth:`resolve` returns when it has no request to make (every id fresh in
        the cache, or ``offline``), without an event loop; None when some id must be
        fetched, having served nothing.

        The stored times alone tell first (no record read) whether every id is fresh;
        the records are then served as :meth:`resolve` serves them, by :meth:`_triage`,
        and should one have changed meanwhile (another process), None.
        """
        cfg = self.config
        now = self._now()
        store = self.store
        if not self.offline:
            if self.refresh:
                return None
            not_found_ttl = cfg.cache.not_found_ttl
            if not (store.all_fresh("papers", arxiv_ids, now, ttl=cfg.cache.arxiv_ttl,
                                    not_found_ttl=not_found_ttl)
                    and store.all_fresh("repos", repo_keys, now, ttl=cfg.cache.github_ttl,
                                        not_found_ttl=not_found_ttl)):
                return None
        res = Resolution()
        cached_p = store.get_papers(arxiv_ids)
        cached_r = store.get_repos(repo_keys, self.credential)
        if (self._triage("arxiv", arxiv_ids, cached_p, cfg.cache.arxiv_ttl, now, res)
                or self._triage("github", repo_keys, cached_r, cfg.cache.github_ttl, now, res)):
            return None
        if self._progress is not None:  # the calls resolve() makes
            self._progress("arxiv", len(arxiv_ids))
            self._progress("github", len(repo_keys))
            self._progress("arxiv", 0)
            self._progress("github", 0)
        res.requests = {"arxiv": 0, "github": 0}
        return res

    def _triage(self, kind: str, ids: Sequence[str], cached: dict[str, Any], ttl: float,
                now: datetime, res: Resolution) -> list[str]:
        """Serve what the cache can; return the ids that need a request."""
        to_fetch: list[str] = []
        not_found_ttl = self.config.cache.not_found_ttl
        serve_fresh = not self.refresh
        # what _put does, for the usual case (thousands of fresh records per warm run)
        served: dict[str, Any] = res.papers if kind == "arxiv" else res.repos
        origin = res.origin
        for i in ids:
            c = cached.get(i)
            fresh = c is not None and c.is_fresh(ttl, not_found_ttl, now)
            if c is not None and fresh and serve_fresh:
                served[i] = c.record
                origin[(kind, i)] = "cache"
            elif self.offline:
                if c is not None:
                    rec = c.record if fresh else _as_stale(c.record)
                    _put(res, kind, i, rec, "cache")
                    if not fresh:
                        res.messages[(kind, i)] = "offline: cached data has expired"
                else:
                    _put(res, kind, i, _blank(kind, "missing"), "failed")
                    res.messages[(kind, i)] = "offline: never fetched"
            else:
                to_fetch.append(i)
        return to_fetch

    def _merge(self, kind: str, asked: Sequence[str], got: FetchResult[Any],
               cached: dict[str, Cached[Any]], res: Resolution, now: datetime,
               stamped: set[tuple[str, str]]) -> None:
        for i in asked:
            c = cached.get(i)
            if i in got.records:
                rec = got.records[i]
                if rec.status in _CACHEABLE:
                    # the time the cache records, so a later read serves the same record
                    if (kind, i) not in stamped:
                        _stamp(rec, now)
                    _put(res, kind, i, rec, "fetched")
                    continue
                msg = f"{rec.status}"
            elif i in got.not_modified and c is not None:
                _put(res, kind, i, c.record.model_copy(update={"fetched_at": now}), "fetched")
                continue
            elif i in got.missing:
                msg = got.missing[i]
                if c is not None:
                    _put(res, kind, i, _as_stale(c.record), "failed")
                else:
                    _put(res, kind, i, _blank(kind, "missing"), "failed")
                res.messages[(kind, i)] = msg
                continue
            else:
                msg = got.failed.get(i, "no answer for this id")
            if c is not None:
                _put(res, kind, i, _as_stale(c.record), "failed")
            else:
                _put(res, kind, i, _blank(kind, "error"), "failed")
            res.messages[(kind, i)] = msg


_CACHEABLE = frozenset({"ok", "not_found", "unavailable"})


def _stamp(rec: _R, when: datetime) -> _R:
    """Give a record just fetched the time the cache records for it, so that a later
    read serves the same record. In place: the fetcher's records are this run's own
    (a copy of each cost ~17 µs, 0.07 s for 4000 records)."""
    rec.fetched_at = when
    return rec


def _import_arxiv_fetcher() -> None:
    from .fetch import arxiv  # noqa: F401


def _tls_context() -> ssl.SSLContext:
    from .fetch.tls import tls_context

    return tls_context()


def _in_thread(fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
    """``fn()`` on a new daemon thread (no event loop needed to start it); its result or
    exception comes back through the future."""
    import concurrent.futures

    done: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:  # handed to whoever awaits it
            done.set_exception(exc)

    threading.Thread(target=run, name=f"enrich-{fn.__name__}", daemon=True).start()
    return done


class _EarlyWrites:
    """The batch hooks of one :meth:`Enricher.resolve`: cache each batch's definitive
    records as soon as they arrive, stamped with the time they were cached.

    The writes are made in order by one worker thread, off the event loop: SQLite
    works (and checkpoints its log) without holding the GIL, and the event loop stays
    free to read the next answer the moment it arrives. :meth:`finish` waits for them.

    ``stamped`` holds the ids cached; their records now carry the cache's stamp as
    ``fetched_at``, so that a later run serves the same records. A failure to write (the
    cache locked, read-only, the disk full) stops the early writes and is raised by
    :meth:`finish` once fetching is over, as a failure of the final write would be.
    """

    def __init__(self, enricher: Enricher, cached_p: dict[str, Cached[Paper]],
                 credential: str) -> None:
        self._enricher = enricher
        self._cached_p = cached_p
        self._credential = credential
        self.stamped: set[tuple[str, str]] = set()
        self._failure: Exception | None = None
        self._jobs: queue.SimpleQueue[_WriteJob | None] | None = None
        self._writer: threading.Thread | None = None

    def papers(self, made: dict[str, Paper]) -> None:
        recs = {k: v for k, v in made.items() if v.status in _CACHEABLE
                and not _is_glitch(v, self._cached_p.get(k))}
        store = self._enricher.store
        self._write("arxiv", recs, lambda when: store.put_papers(recs, when))

    def repos(self, made: dict[str, Repo]) -> None:
        recs = {k: v for k, v in made.items() if v.status in _CACHEABLE}
        store, cred = self._enricher.store, self._credential
        self._write("github", recs, lambda when: store.put_repos(recs, when, credential=cred))

    def _write(self, kind: str, recs: Mapping[str, Record],
               put: Callable[[datetime], None]) -> None:
        if not recs or self._failure is not None:
            return
        if self._jobs is None:
            import queue

            self._jobs = queue.SimpleQueue()
            self._writer = threading.Thread(target=self._drain, args=(self._jobs,),
                                            name="enrich-cache-writer", daemon=True)
            self._writer.start()
        self._jobs.put((kind, recs, put))

    def _drain(self, jobs: queue.SimpleQueue[_WriteJob | None]) -> None:
        while (job := jobs.get()) is not None:
            kind, recs, put = job
            if self._failure is not None:
                continue
            when = self._enricher._now()
            try:
                put(when)
            except Exception as exc:  # raised by finish(), in the caller's flow
                self._failure = exc
                continue
            for k, v in recs.items():
                _stamp(v, when)
                self.stamped.add((kind, k))

    def finish(self, *, check: bool = True) -> None:
        """Wait for the writes; then, with ``check``, raise the first failure if any."""
        if self._jobs is not None and self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
            self._jobs = self._writer = None
        if check and self._failure is not None:
            raise self._failure


#: An early write: the kind, the records, and the call that stores them at a time.
_WriteJob = tuple[str, Mapping[str, Record], Callable[[datetime], None]]


def _is_glitch(rec: Paper, cached: Cached[Paper] | None) -> bool:
    """See :func:`_keep_known_papers`."""
    return rec.status == "not_found" and cached is not None and cached.record.status == "ok"


def _keep_known_papers(got: FetchResult[Paper], cached: dict[str, Cached[Paper]]) -> None:
    """A ``not_found`` for a paper the cache holds is a glitch: keep the paper.

    arXiv never removes a paper (a withdrawn one keeps its entry), while it
    sporadically serves empty pages (api-facts 3.1). Believing one would overwrite
    good cached data with a verdict kept for ``not_found_ttl``; instead the id
    counts as failed, so the cached record is served as ``stale``.
    """
    for pid, rec in list(got.records.items()):
        if _is_glitch(rec, cached.get(pid)):
            del got.records[pid]
            got.failed[pid] = ("arXiv answered no entry for a paper it served before "
                               "(an empty page?); kept the cached record")


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _put(res: Resolution, kind: str, key: str, rec: Record, origin: Origin) -> None:
    if kind == "arxiv":
        assert isinstance(rec, Paper)
        res.papers[key] = rec
    else:
        assert isinstance(rec, Repo)
        res.repos[key] = rec
    res.origin[(kind, key)] = origin


def _as_stale(rec: Any) -> Any:
    """Cached data kept because a refresh failed or we are offline; verdicts stay verdicts."""
    if rec.status == "ok":
        return rec.model_copy(update={"status": "stale"})
    return rec


def _blank(kind: str, status: Literal["missing", "error"]) -> Paper | Repo:
    return Paper(status=status) if kind == "arxiv" else Repo(status=status)


def build_document(links: list[Link], res: Resolution, *, source: SourceInfo | None,
                   generated_at: datetime) -> EnrichedDocument:
    """The document of one text: its links, the records they name, and what those link to."""
    papers: dict[str, Paper] = {}
    repos: dict[str, Repo] = {}
    errors: list[ErrorEntry] = []
    named_p = _unique(lk.id for lk in links if lk.kind == "arxiv")
    named_r = _unique(lk.id for lk in links if lk.kind == "github")
    linked_p: dict[str, list[str]] = {}
    linked_r: dict[str, list[str]] = {}
    for pid in named_p:
        for key in res.code_of.get(pid, []):
            if key not in named_r:
                linked_r.setdefault(key, []).append(pid)
    for key in named_r:
        for pid in res.papers_of.get(key, []):
            if pid not in named_p:
                linked_p.setdefault(pid, []).append(key)

    code_of, papers_of, histories = res.code_of, res.papers_of, res.histories
    placed, messages = res.placed, res.messages
    for kind, named, linked, pool, target in (
        ("arxiv", named_p, linked_p, res.papers, papers),
        ("github", named_r, linked_r, res.repos, repos),
    ):
        is_paper = kind == "arxiv"
        for key in [*named, *linked]:
            rec: Any = pool.get(key)
            if rec is None:
                continue
            update: dict[str, Any] = {}
            if key in linked:
                update["linked_from"] = linked[key]
            if is_paper:
                update["code"] = code_of.get(key, [])
            else:
                update["papers"] = papers_of.get(key, [])
                hist = histories.get(key)
                # one observation gives no change to report (and no sparkline, which
                # needs three): the trend of every repository on its first day
                if hist and len(hist) >= 2 and rec.status in ("ok", "stale"):
                    trend = star_trend(hist, hist[-1][0])
                    if trend.since_previous is not None or trend.week is not None:
                        update["trend"] = trend
            ident = (kind, key)
            if ident not in placed:
                # The first document naming a record takes the resolution's own record,
                # updated in place: no copy (4000 copies were ~0.07 s of a cold run). A
                # later document naming it gets its own copy, so no two documents share
                # a record.
                placed.add(ident)
                for name, value in update.items():
                    if name not in rec.__pydantic_fields_set__ or getattr(rec, name) != value:
                        setattr(rec, name, value)
                target[key] = rec
            else:  # what the first document set that this one does not, set back
                update.setdefault("linked_from", None)
                target[key] = rec.model_copy(update=update)
            msg = messages.get(ident)
            if msg is not None:
                errors.append(ErrorEntry(kind="arxiv" if kind == "arxiv" else "github",
                                         id=key, message=msg))
    return EnrichedDocument(
        source=source,
        generated_at=generated_at,
        links=links,
        papers=dict(sorted(papers.items())),
        repos=dict(sorted(repos.items())),
        errors=errors,
    )


def source_info(path: str, raw: bytes) -> SourceInfo:
    return SourceInfo(path=path, sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw))


def file_report(path: str, doc: EnrichedDocument, res: Resolution, *, offline: bool) -> FileReport:
    """Counts for the summary line, and the exit code this file earns (0 or 1)."""
    rep = FileReport(path=path)
    bad = False
    origins = res.origin
    failing = ("missing", "error") if offline else ("missing", "error", "stale")
    for kind, records, counts in (("arxiv", doc.papers, rep.papers),
                                  ("github", doc.repos, rep.repos)):
        assert isinstance(counts, SourceCounts)
        # counted in local ints, set once: a pydantic attribute set per record per
        # figure was ~0.01 s of a warm run of 4000 records
        failed = fetched = 0
        for key, rec in records.items():
            if rec.status in failing:
                failed += 1
            elif origins.get((kind, key), "cache") == "fetched":
                fetched += 1
        # only the figures that are not 0 are set, as the increments did
        for name, value in (("found", len(records)), ("failed", failed),
                            ("fetched", fetched),
                            ("from_cache", len(records) - failed - fetched)):
            if value:
                setattr(counts, name, value)
        bad = bad or failed > 0
    rep.exit_code = 1 if bad else 0
    return rep


def enrich_text(text: str, config: Config | None = None, *, offline: bool = False,
                refresh: bool = False) -> EnrichedDocument:
    """Synchronous convenience: enrich one text with a short-lived :class:`Enricher`.

    Safe to call from code that already runs an event loop (it then runs in a
    worker thread).
    """

    async def go() -> EnrichedDocument:
        async with Enricher(config, offline=offline, refresh=refresh) as e:
            return await e.enrich_text(text)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_sync(go())
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run_sync, go()).result()


def run_sync(coro: Coroutine[Any, Any, _T], *, loop_on_demand: bool = False) -> _T:
    """``asyncio.run(coro)``, without asyncio ever formatting the result.

    On its way out ``asyncio.run`` restores the SIGINT handler, and
    ``signal.signal`` then builds (and throws away) an error message holding the
    repr of the main task, result included: for a document of 4000 records that
    repr alone took 0.3 s. The main task here returns None.

    ``loop_on_demand`` is for a coroutine of this module that awaits nothing but
    :class:`Enricher` methods: it is run without an event loop until it needs one (a
    request to make), and only then in ``asyncio.run``. A run the cache serves entirely
    never imports asyncio (~0.03 s).
    """
    box: list[_T] = []

    async def main() -> None:
        box.append(await coro)

    if not loop_on_demand:
        asyncio.run(main())
        return box[0]
    step = main()
    outer = _DRIVER.without_loop
    _DRIVER.without_loop = True
    try:
        signal = step.send(None)
    except StopIteration:
        return box[0]  # done, with no event loop
    finally:
        _DRIVER.without_loop = outer
    if signal is not _EventLoopNeeded.SIGNAL:
        step.close()
        raise RuntimeError("run_sync(loop_on_demand=True): the coroutine awaited "
                           f"{signal!r} outside an event loop")
    try:
        asyncio.run(_resumed(step))  # it goes on from where it asked for the loop
    finally:
        step.close()  # a no-op once it has run to its end; else it unwinds here
    return box[0]


class _Driver(threading.local):
    without_loop = False
    """True while :func:`run_sync` runs a coroutine by hand, in this thread."""


_DRIVER = _Driver()


def _driven_without_loop() -> bool:
    return _DRIVER.without_loop


class _EventLoopNeeded:
    """Awaited (by hand, see :func:`run_sync`) to hand the coroutine to an event loop."""

    SIGNAL = object()

    def __await__(self) -> Generator[Any, None, None]:
        if _DRIVER.without_loop:
            yield self.SIGNAL


async def _resumed(step: Coroutine[Any, Any, None]) -> None:
    """Go on with a coroutine that :func:`run_sync` started by hand, in the event loop."""

    class _Rest:
        def __await__(self) -> Generator[Any, None, None]:
            return (yield from step.__await__())

    await _Rest()
