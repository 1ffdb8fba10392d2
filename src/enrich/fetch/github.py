"""GitHub fetcher: repository metadata for lower-case ``owner/repo`` keys.

Two modes, chosen by whether a token is configured (GitHub's docs on the REST and
GraphQL rate limits):

- **With a token: GraphQL.** Up to ``github.batch_size`` repositories per query
  as aliases ``r0``, ``r1``, ... (``owner-repo`` is not a valid GraphQL alias),
  so 250 repositories cost 3 requests and about 3 points of the 5000/h. A
  missing repository is a per-alias ``NOT_FOUND`` error beside the others'
  data; renames are followed (``nameWithOwner`` is the new name).
- **Without a token: REST** ``GET /repos/{owner}/{repo}``, at most
  ``github.concurrency`` in flight, each carrying the stored ETag as
  ``If-None-Match`` exactly as received. A 304 confirms the cached record. The
  anonymous limit is 60/h per IP and, by our design assumption, an anonymous
  304 still costs one of them: ETags save bandwidth, not quota.

Rate limits follow GitHub's rules: ``Retry-After`` if present, else until
``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0, else
``github.secondary_wait`` doubling on each further hit. Every wait is charged to
one :class:`~enrich.fetch.policy.WaitBudget` of ``github.max_wait`` per fetcher
(the pipeline keeps one fetcher per run). When a wait does not fit, or the
primary limit is spent until later than the budget allows, all GitHub fetching
stops for the run: the keys not done go to ``FetchResult.missing`` with the
reset time, and later :meth:`GithubFetcher.fetch` calls on the same fetcher
send nothing until that reset.

The token goes only into the ``Authorization`` header of requests to the
configured ``api_url``/``graphql_url`` origins; redirects are followed by hand
and only on the ``api_url`` origin, so the token never reaches another host.
It never appears in a log line, an error message or a result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from .._version import USER_AGENT
from ..config import Config
from ..errors import ConfigError, FetchError
from ..models import Repo
from . import FetchResult, OnBatch
from .policy import (
    GRAPHQL_RATE_LIMIT_TYPES,
    RateLimit,
    WaitBudget,
    backoff,
    credential_id,
    github_rate_limit,
    is_transient,
    quote_untrusted,
    ratelimit_remaining,
    ratelimit_reset,
)

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
#: Topics asked of GraphQL per repository (a connection needs ``first``; 20 covers
#: GitHub's own cap of 20 topics per repository).
TOPICS_FIRST = 20
#: Redirect hops followed for one repository before giving up.
MAX_REDIRECTS = 3
#: Longest GitHub error message quoted in a failure (it is untrusted text).
_MAX_MESSAGE = 200
#: Consecutive failed REST attempts (5xx, timeouts, resets, unusable bodies; any
#: repositories) after which GitHub is not asked again this run: two rounds at the
#: default concurrency. GraphQL's limit is one query's retries plus one attempt
#: (``http.max_retries + 2``), so that a query failing for good can still be split.
OUTAGE_REST_ATTEMPTS = 8
#: GraphQL error types saying the query is too big for GitHub (not the repositories):
#: the batch is asked again in halves.
TOO_BIG_TYPES = frozenset({"MAX_NODE_LIMIT_EXCEEDED", "RESOURCE_LIMITS_EXCEEDED"})
#: Statuses GitHub gives a query that ran past its 10 s: twice in a row for one query
#: (one retry), they too make the batch smaller.
TOO_SLOW_STATUSES = frozenset({502, 504})
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_TOO_LONG = re.compile(_OWNER.pattern + r"/[A-Za-z0-9._-]{101,}")

_REPO_FIELDS = f"""fragment RepoFields on Repository {{
  nameWithOwner url description homepageUrl stargazerCount forkCount
  licenseInfo {{ spdxId name key }}
  repositoryTopics(first: {TOPICS_FIRST}) {{ nodes {{ topic {{ name }} }} }}
  primaryLanguage {{ name }}
  isArchived isFork pushedAt
}}"""


def split_key(key: str) -> tuple[str, str]:
    """``owner``, ``repo`` of a key, validated against the grammar of docs/format.md.

    Raises ValueError for anything else (``../x``, ``a/b%2F..``, ``a/b/c``, ...), so
    that no key can build a path outside ``/repos/{owner}/{repo}``.
    """
    parts = key.split("/")
    if len(parts) != 2:
        raise ValueError(f"not an owner/repo key: {key!r}")
    owner, repo = parts
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not a valid GitHub owner in {key!r}")
    if not _REPO.fullmatch(repo) or repo in (".", ".."):
        raise ValueError(f"not a valid GitHub repository name in {key!r}")
    return owner, repo


def build_graphql_query(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """A query looking up ``pairs`` as aliases ``r0..rN``, with the names as variables.

    Variables rather than inlined strings: names are validated anyway, but data
    never becomes query syntax.
    """
    decls = ", ".join(f"$o{i}: String!, $n{i}: String!" for i in range(len(pairs)))
    lines = [f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...RepoFields }}"
             for i in range(len(pairs))]
    query = ("query Repositories(" + decls + ") {\n" + "\n".join(lines)
             + "\n  rateLimit { cost remaining resetAt limit used }\n}\n" + _REPO_FIELDS)
    variables: dict[str, str] = {}
    for i, (owner, name) in enumerate(pairs):
        variables[f"o{i}"] = owner
        variables[f"n{i}"] = name
    return query, variables


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Garbage(Exception):
    """A body that is not what the API promised: retried like a server error."""


class _TooLarge(Exception):
    """A body over ``http.max_bytes``: an error for that key, not retried."""


class _Stopped(Exception):
    """A rate limit (or the wait budget) has stopped GitHub fetching for this run."""


class _Transient(Exception):
    """An attempt worth repeating (tenacity's retry predicate)."""

    def __init__(self, message: str, status: int | None = None, *,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


class _Throttled(_Transient):
    """A rate-limit answer already waited for (or the run stopped): repeat at once."""


class _AuthFailed(Exception):
    """The token was rejected (401): no further request is worth sending."""


class _TooBig(Exception):
    """GitHub found a GraphQL query too big or too slow: ask for fewer repositories."""


_UNREAD: Any = object()
_NOT_JSON: Any = object()  # what _Answer.decoded() gives for a body that is not JSON


@dataclass
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL
    parsed: Any = None
    _doc: Any = field(default=_UNREAD, repr=False, compare=False)

    def decoded(self) -> Any:
        """The body as JSON, or :data:`_NOT_JSON`; decoded once, since the rate-limit
        check, the message and the record all read it (a 100-repository GraphQL
        answer is 50 KB). Readers must not modify it."""
        if self._doc is _UNREAD:
            try:
                self._doc = json.loads(self.body)
            except (ValueError, UnicodeDecodeError):
                self._doc = _NOT_JSON
        return self._doc

    def json(self) -> Any:
        doc = self.decoded()
        if doc is _NOT_JSON:
            raise _Garbage(f"HTTP {self.status} with a body that is not JSON")
        return doc

    def message(self) -> str:
        """GitHub's ``message`` (or GraphQL's first error message), else ''."""
        doc = self.decoded()
        if doc is _NOT_JSON:
            # Whole, not a slice: a cut could split an echoed token that redaction
            # (GithubFetcher._quote) must see entire. The body is capped anyway.
            return self.body.decode("utf-8", "replace")
        if isinstance(doc, dict):
            if isinstance(doc.get("message"), str):
                return str(doc["message"])
            errors = doc.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                return str(errors[0].get("message", ""))
        return ""


def _error_dicts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """GraphQL ``errors`` as a list of objects, whatever the server put there."""
    errors = doc.get("errors")
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


@dataclass
class _Tries:
    """One request's tries so far: transient failures, and rate-limit answers."""

    failures: int = 0
    limited: int = 0
    too_slow: int = 0
    """502/504 answers in a row."""


@dataclass
class _Run:
    """State of one :meth:`GithubFetcher.fetch` call shared by its concurrent requests."""

    result: FetchResult[Repo]
    secondary_streak: int = 0
    auth_error: str | None = None
    done: set[str] = field(default_factory=set)
    on_batch: OnBatch[Repo] | None = None


class SharedQuota(Protocol):
    """GitHub's rate-limit state shared by the hosts of a cache, per credential digest
    (:class:`enrich.store.postgres.PostgresStore`)."""

    def note_quota(self, credential: str, remaining: int, reset: datetime) -> None: ...

    def quota_spent_until(self, credential: str) -> datetime | None: ...


class GithubFetcher:
    """Fetch repository records from the GitHub API (GraphQL with a token, REST without).

    One instance serves one run: the rate-limit wait budget (``github.max_wait``)
    and an exhausted primary limit are remembered across :meth:`fetch` calls.
    :meth:`aclose` closes its :class:`httpx.AsyncClient`.
    """

    #: Seconds added to a wait until ``x-ratelimit-reset``: the reset is in whole
    #: seconds and our clock may run a little ahead of GitHub's.
    reset_margin: float = 1.0

    def __init__(self, config: Config, *, shared_quota: SharedQuota | None = None) -> None:
        self._config = config
        secret = config.token
        self._token: str | None = secret.get_secret_value() if secret is not None else None
        self._shared_quota = shared_quota
        """With a shared cache: a quota another host spent is waited for here too."""
        self._credential = credential_id(self._token)
        self._api_base = config.github.api_url.rstrip("/")
        self._api_url = httpx.URL(self._api_base)
        self._graphql_url = httpx.URL(config.github.graphql_url)
        self._token_origins = {_origin(self._api_url), _origin(self._graphql_url)}
        self._timeout = httpx.Timeout(config.http.timeout)
        self._headers = {
            "User-Agent": config.http.user_agent or USER_AGENT,
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False,
                                         headers=self._headers)
        self._budget = WaitBudget(config.github.max_wait)
        self._resume_at = 0.0  # monotonic time before which no request is sent
        self._stop_message: str | None = None
        self._stop_reset: datetime | None = None
        self._stop_ends_at_reset = False  # a spent quota ends at reset; a spent budget does not
        self._rng = random.Random()
        self._batch_size = config.github.batch_size
        """Repositories per GraphQL query: halved when GitHub finds a query too big, and
        kept for the rest of the run."""
        self._failures = 0
        """Failed attempts in a row (any request): the circuit breaker's count."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def _quote(self, text: object, limit: int = _MAX_MESSAGE) -> str:
        """Server text fit for a message or a log line: the token redacted, no control
        characters, clipped (an error body may echo the Authorization header)."""
        secrets = [self._token, quote(self._token, safe="")] if self._token else []
        return quote_untrusted(text, limit, secrets)

    async def fetch(self, keys: Sequence[str], etags: Mapping[str, str] | None = None, *,
                    names: Mapping[str, str] | None = None,
                    on_batch: OnBatch[Repo] | None = None) -> FetchResult[Repo]:
        """Fetch ``keys`` (lower-case ``owner/repo``); never raises for one key's failure.

        ``etags`` are the cached ETags of this fetcher's credential (REST only; GraphQL
        has none): a revalidation is a conditional request, or one cheap GraphQL pass.
        ``names`` are the canonical names learned for renamed repositories (the cached
        ``full_name``): REST asks for those directly, one request instead of a 301 and
        ``/repositories/ID`` (GraphQL follows renames in the same query anyway).

        Raises :class:`~enrich.errors.ConfigError` when GitHub rejects the configured
        token (401): a configuration error, not a network failure.
        """
        run = _Run(result=FetchResult(), on_batch=on_batch)
        wanted: dict[str, tuple[str, str]] = {}
        for key in dict.fromkeys(keys):
            try:
                wanted[key] = split_key(key)
            except ValueError as exc:
                if _TOO_LONG.fullmatch(key):
                    # well-formed but longer than GitHub allows (100): no such repository
                    # can exist, a verdict worth caching rather than an error every night
                    run.result.records[key] = Repo(status="not_found", fetched_at=_now())
                else:
                    run.result.failed[key] = str(exc)
        if not wanted:
            return run.result
        self._clear_stale_stop()
        if self._stop_message is not None:
            self._mark_missing(run, list(wanted))
            return run.result
        if self._token:
            await self._fetch_graphql(run, wanted)
        else:
            await self._fetch_rest(run, wanted, etags or {}, names or {})
        if run.auth_error is not None and self._token:
            raise ConfigError(run.auth_error)
        result = run.result
        logger.debug("github: %d keys, %d requests, %d ok, %d not modified, %d failed, "
                     "%d missing", len(wanted), result.requests, len(result.records),
                     len(result.not_modified), len(result.failed), len(result.missing))
        return result

    # -- REST ------------------------------------------------------------------------

    async def _fetch_rest(self, run: _Run, wanted: Mapping[str, tuple[str, str]],
                          etags: Mapping[str, str], names: Mapping[str, str]) -> None:
        sem = asyncio.Semaphore(self._config.github.concurrency)

        async def one(key: str, owner: str, repo: str) -> None:
            async with sem:
                await self._guarded(run, key, lambda: self._rest_one(
                    run, key, owner, repo, etags.get(key), _canonical(key, names)))

        await asyncio.gather(*(one(k, o, r) for k, (o, r) in wanted.items()))

    async def _guarded(self, run: _Run, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run one key's job, turning its failure into a ``failed``/``missing`` entry."""
        if self._stop_message is not None:
            self._mark_missing(run, [key])
            return
        try:
            await job()
        except _Stopped:
            self._mark_missing(run, [key])
        except _AuthFailed as exc:
            run.result.failed[key] = str(exc)
        except FetchError as exc:
            run.result.failed[key] = str(exc)
        except _Garbage as exc:
            run.result.failed[key] = f"GitHub gave an unusable answer for {key}: {exc}"
        run.done.add(key)

    def _repo_url(self, owner: str, repo: str) -> httpx.URL:
        path = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
        url = httpx.URL(self._api_base + path)
        if not url.raw_path.decode("ascii").endswith(path):  # defence in depth
            raise FetchError(f"refusing to build a request path for {owner}/{repo}",
                             transient=False)
        return url

    async def _rest_one(self, run: _Run, key: str, owner: str, repo: str,
                        etag: str | None, canonical: tuple[str, str] | None = None) -> None:
        """``GET /repos/{owner}/{repo}``, or the canonical name learned last time for a
        renamed repository (conditional all the same: the ETag is the repository's)."""
        url = self._repo_url(*(canonical or (owner, repo)))
        for _hop in range(MAX_REDIRECTS + 1):
            headers = {"If-None-Match": etag} if etag else {}
            ans = await self._exchange(run, "GET", url, headers=headers,
                                       parse=lambda a: self._record_from_rest(key, a))
            status = ans.status
            if status == 200:
                run.result.records[key] = ans.parsed
                new_etag = ans.headers.get("etag")
                if new_etag:
                    run.result.etags[key] = new_etag
                return
            if status == 304:
                run.result.not_modified.add(key)
                return
            if status in (301, 302, 303, 307, 308):
                url = self._redirect_target(key, ans)
                continue
            if status in (404, 410) and canonical is not None:
                # the name learned last time is gone (renamed again, or deleted): the
                # log's name decides, as on a first fetch
                logger.debug("github %s: the name learned before answers %d; asking %s",
                             key, status, key)
                canonical, etag, url = None, None, self._repo_url(owner, repo)
                continue
            if status in (404, 410):
                run.result.records[key] = Repo(status="not_found", fetched_at=_now())
                return
            if status == 451 or (status == 403 and b'"block"' in ans.body):
                run.result.records[key] = Repo(status="unavailable", fetched_at=_now())
                return
            if status == 401:
                raise self._auth_error(run, ans)
            raise FetchError(
                f"GitHub answered HTTP {status} for {key}: {self._quote(ans.message())}",
                url=str(ans.url), status=status, transient=is_transient(status))
        raise FetchError(f"too many redirects for {key}", url=str(url), transient=False)

    def _redirect_target(self, key: str, ans: _Answer) -> httpx.URL:
        location = ans.headers.get("location")
        if not location:
            raise FetchError(f"GitHub answered HTTP {ans.status} for {key} without a Location",
                             url=str(ans.url), status=ans.status, transient=False)
        try:
            target = ans.url.join(location)
            origin = _origin(target)
        except (httpx.InvalidURL, ValueError):
            raise FetchError(f"GitHub answered HTTP {ans.status} for {key} with an unusable "
                             "Location", url=str(ans.url), status=ans.status,
                             transient=False) from None
        if origin != _origin(self._api_url):
            where = self._quote(f"{target.scheme}://{target.host}", 100)
            raise FetchError(f"GitHub redirected {key} to another host ({where}); not followed",
                             url=str(ans.url), status=ans.status, transient=False)
        logger.debug("github %s moved (HTTP %d) to %s", key, ans.status,
                     self._quote(target, 300))
        return target

    def _record_from_rest(self, key: str, ans: _Answer) -> Repo:
        doc = ans.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("full_name"), str):
            raise _Garbage("a repository answer without full_name")
        lic = doc.get("license")
        return self._make_repo(key, {
            "full_name": doc["full_name"],
            "html_url": doc.get("html_url"),
            "description": doc.get("description"),
            "homepage": doc.get("homepage"),
            "stars": doc.get("stargazers_count"),
            "forks": doc.get("forks_count"),
            "license": _license(lic.get("spdx_id"), lic.get("name"))
            if isinstance(lic, dict) else None,
            "topics": doc.get("topics") or [],
            "language": doc.get("language"),
            "archived": doc.get("archived"),
            "fork": doc.get("fork"),
            "pushed_at": doc.get("pushed_at"),
        })

    def _make_repo(self, key: str, data: dict[str, Any]) -> Repo:
        full_name = str(data["full_name"])
        data["homepage"] = data.get("homepage") or None
        data["renamed_from"] = key if full_name.lower() != key.lower() else None
        try:
            return Repo.model_validate({"status": "ok", "fetched_at": _now(), **data})
        except ValidationError as exc:
            raise _Garbage(f"unexpected repository fields ({exc.error_count()} errors)") from None

    # -- GraphQL ---------------------------------------------------------------------

    async def _fetch_graphql(self, run: _Run, wanted: Mapping[str, tuple[str, str]]) -> None:
        """One query per batch, one at a time (GitHub asks for serial requests).

        A query GitHub finds too big (``MAX_NODE_LIMIT_EXCEEDED``,
        ``RESOURCE_LIMITS_EXCEEDED``, or a 502/504 persisting after a retry) is asked
        again in halves, and the size that works is kept for the rest of the run.
        """
        todo = list(wanted.items())
        while todo:
            batch, todo = todo[:self._batch_size], todo[self._batch_size:]
            if self._stop_message is not None:
                self._mark_missing(run, [k for k, _ in batch])
                continue
            try:
                ans = await self._graphql_send(run, batch)
                fallback = self._graphql_records(run, batch, ans)
            except _Stopped:
                self._mark_missing(run, [k for k, _ in batch])
                continue
            except _TooBig as exc:
                if len(batch) > 1:
                    self._batch_size = (len(batch) + 1) // 2
                    logger.info("GitHub GraphQL: %s for %d repositories; asking %d per "
                                "query from now on", exc, len(batch), self._batch_size)
                    todo = batch + todo
                else:
                    run.result.failed[batch[0][0]] = f"GitHub GraphQL: {exc}"
                continue
            except (_AuthFailed, FetchError) as exc:
                for key, _ in batch:
                    run.result.failed[key] = str(exc)
                continue
            if run.on_batch is not None:
                made = {k: run.result.records[k] for k, _ in batch if k in run.result.records}
                if made:
                    await run.on_batch(made)
            if fallback:
                await self._fetch_rest(run, {k: wanted[k] for k in fallback}, {}, {})

    async def _graphql_send(self, run: _Run, batch: Sequence[tuple[str, tuple[str, str]]]
                            ) -> _Answer:
        """The GraphQL query for ``batch``, sent until it gets an answer worth reading."""
        query, variables = build_graphql_query([pair for _, pair in batch])
        body = json.dumps({"query": query, "variables": variables}).encode()
        try:
            return await self._exchange(run, "POST", self._graphql_url, content=body,
                                        headers={"Content-Type": "application/json"},
                                        graphql=True, parse=_graphql_document)
        except FetchError as exc:
            if exc.status in TOO_SLOW_STATUSES:
                raise _TooBig(f"HTTP {exc.status} after {exc.attempt} attempts (GitHub "
                              "stops a query after 10 s)") from None
            raise

    def _graphql_records(self, run: _Run, batch: Sequence[tuple[str, tuple[str, str]]],
                         ans: _Answer) -> list[str]:
        """The records of one GraphQL answer; returns keys to ask REST about instead."""
        if ans.status == 401:
            raise self._auth_error(run, ans)
        if ans.status != 200:
            raise FetchError(
                f"GitHub GraphQL answered HTTP {ans.status}: {self._quote(ans.message())}",
                url=str(ans.url), status=ans.status, transient=is_transient(ans.status))
        doc: dict[str, Any] = ans.parsed
        raw_data = doc.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        errors = _error_dicts(doc)
        too_big = next((e for e in errors if e.get("type") in TOO_BIG_TYPES), None)
        if too_big is not None:
            raise _TooBig(f"{self._quote(too_big.get('type'), 40)}: "
                          f"{self._quote(too_big.get('message', ''), 120)}")
        by_alias, general = self._errors_by_alias(errors)
        fallback: list[str] = []
        for i, (key, _pair) in enumerate(batch):
            alias = f"r{i}"
            node = data.get(alias)
            alias_err = by_alias.get(alias)
            if isinstance(node, dict):
                try:
                    run.result.records[key] = self._record_from_graphql(key, node)
                except _Garbage as exc:
                    run.result.failed[key] = f"GitHub GraphQL gave an unusable record: {exc}"
            elif alias_err is not None:
                etype = str(alias_err.get("type", ""))
                if etype == "NOT_FOUND":  # a blocked repository may be one too
                    run.result.records[key] = Repo(status="not_found", fetched_at=_now())
                else:
                    # FORBIDDEN (how GraphQL shows a blocked repository, among other
                    # refusals) or an undocumented type: only REST tells a 451 (DMCA)
                    # from the rest, with documented answers (404, 451).
                    logger.debug("github GraphQL error %s for %s; asking REST",
                                 self._quote(etype, 60), key)
                    fallback.append(key)
            else:
                why = "; ".join(m for m in general if m) or "no data and no error"
                run.result.failed[key] = f"GitHub GraphQL returned nothing for {key}: {why}"
            run.done.add(key)
        remaining = ratelimit_remaining(ans.headers)
        logger.debug("github GraphQL batch of %d: %d records, remaining %s", len(batch),
                     sum(1 for k, _ in batch if k in run.result.records), remaining)
        return fallback

    def _errors_by_alias(self, errors: list[dict[str, Any]]
                         ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """GraphQL errors: the first per alias (``path[0]``), and the others' messages."""
        by_alias: dict[str, dict[str, Any]] = {}
        general: list[str] = []
        for err in errors:
            path = err.get("path")
            if isinstance(path, list) and path and isinstance(path[0], str):
                by_alias.setdefault(path[0], err)
            else:
                general.append(self._quote(err.get("message", "")))
        return by_alias, general

    def _record_from_graphql(self, key: str, node: dict[str, Any]) -> Repo:
        if not isinstance(node.get("nameWithOwner"), str):
            raise _Garbage("no nameWithOwner")
        lic = node.get("licenseInfo")
        topics_conn = node.get("repositoryTopics")
        topics: list[Any] = []
        if isinstance(topics_conn, dict):
            for n in topics_conn.get("nodes") or []:
                if isinstance(n, dict) and isinstance(n.get("topic"), dict):
                    topics.append(n["topic"].get("name"))
        lang = node.get("primaryLanguage")
        return self._make_repo(key, {
            "full_name": node["nameWithOwner"],
            "html_url": node.get("url"),
            "description": node.get("description"),
            "homepage": node.get("homepageUrl"),
            "stars": node.get("stargazerCount"),
            "forks": node.get("forkCount"),
            "license": _license(lic.get("spdxId"), lic.get("name"))
            if isinstance(lic, dict) else None,
            "topics": topics,
            "language": lang.get("name") if isinstance(lang, dict) else None,
            "archived": node.get("isArchived"),
            "fork": node.get("isFork"),
            "pushed_at": node.get("pushedAt"),
        })

    # -- one request, with retries and rate limits ------------------------------------

    async def _exchange(self, run: _Run, method: str, url: httpx.URL, *,
                        headers: Mapping[str, str] | None = None, content: bytes | None = None,
                        graphql: bool = False,
                        parse: Callable[[_Answer], Any] | None = None) -> _Answer:
        """Send one request until it gets an answer worth interpreting.

        tenacity repeats :meth:`_attempt` while it raises :class:`_Transient`
        (connection errors, timeouts, transient statuses, garbage bodies: ``parse``
        raising :class:`_Garbage` on a 200; its value lands in ``parsed``) up to
        ``http.max_retries`` times with jittered exponential backoff; a rate limit is
        waited out within the budget (or stops the run) and does not count as a
        failure. Anything else (200, 304, redirects, 4xx) goes back to the caller.
        """
        cfg = self._config.http
        tries = _Tries()

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, _Throttled):
                return 0.0  # the pause is taken by _wait_gate before the next attempt
            return backoff(tries.failures - 1, cfg.backoff, cfg.backoff_max, self._rng)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient), wait=wait, reraise=True,
            stop=lambda _state: tries.failures > cfg.max_retries or (
                graphql and tries.too_slow >= 2),
            before_sleep=lambda state: logger.debug(
                "github %s %s: %s; retry %d", method, self._quote(url.path, 300),
                state.outcome.exception() if state.outcome else "", tries.failures))
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(run, tries, method, url, headers, content,
                                               graphql, parse)
        except _Transient as exc:
            if exc.unreachable:
                # Nothing listens (no network, DNS down): every other repository would
                # wait out the same retries. Stop GitHub for this run; the cache serves
                # the rest as stale, or they are missing.
                self._stop(f"cannot connect to {url.host} ({exc})", None,
                           primary=False, over_budget=False)
            raise FetchError(f"GitHub request failed after {tries.failures} attempts: {exc}",
                             url=str(url), status=exc.status, attempt=tries.failures) from None
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    async def _attempt(self, run: _Run, tries: _Tries, method: str, url: httpx.URL,
                       headers: Mapping[str, str] | None, content: bytes | None,
                       graphql: bool, parse: Callable[[_Answer], Any] | None) -> _Answer:
        """One try; raises :class:`_Transient` (or :class:`_Throttled`) to be repeated."""
        if self._shared_quota is not None:
            await self._heed_shared_quota()
        await self._wait_gate()
        try:
            ans = await self._send(run, method, url, headers, content)
        except _TooLarge as exc:
            raise FetchError(str(exc), url=str(url), transient=False) from None
        except httpx.InvalidURL:
            # httpx builds the next request of any redirect, followed or not, and
            # fails on a Location that is no URL (``javascript:...``)
            raise FetchError(f"GitHub answered {method} {url.host} with a redirect to "
                             "an unusable Location", url=str(url), transient=False) from None
        except (httpx.RequestError, TimeoutError) as exc:
            tries.failures += 1
            tries.too_slow = 0
            why = f"{type(exc).__name__} talking to {url.host}"
            self._count_failure(graphql, why)
            # refused (nothing listens) or no answer to connect (a blackholed host)
            unreachable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise _Transient(why, unreachable=unreachable) from None
        self._note_quota(ans)
        if self._shared_quota is not None:
            await self._share_quota(ans)
        verdict = self._rate_limit_of(ans, graphql)
        if verdict is not None:
            tries.limited += 1
            self._pause_for(run, verdict, ans, tries.limited)
            raise _Throttled(f"HTTP {ans.status} rate limit from {url.host}", ans.status)
        run.secondary_streak = 0
        if is_transient(ans.status):
            tries.failures += 1
            tries.too_slow = tries.too_slow + 1 if ans.status in TOO_SLOW_STATUSES else 0
            self._count_failure(graphql, f"HTTP {ans.status} from {url.host}")
            raise _Transient(f"HTTP {ans.status} from {url.host}", ans.status)
        if ans.status == 200 and parse is not None:
            try:
                ans.parsed = parse(ans)
            except _Garbage as exc:
                tries.failures += 1
                tries.too_slow = 0
                self._count_failure(graphql, f"{exc} from {url.host}")
                raise _Transient(f"{exc} from {url.host}", ans.status) from None
        self._failures = 0
        return ans

    def _count_failure(self, graphql: bool, why: str) -> None:
        """The circuit breaker: after a few failed attempts in a row, whatever the
        repositories, GitHub is down for this run: stop asking it (the cache serves the
        rest as stale, or they are missing) instead of retrying every repository.
        Raises :class:`_Stopped` when it trips."""
        self._failures += 1
        limit = (self._config.http.max_retries + 2) if graphql else OUTAGE_REST_ATTEMPTS
        if self._failures >= limit:
            self._stop(f"GitHub is failing ({self._failures} attempts in a row failed, the "
                       f"last with {self._quote(why, 120)})", None, primary=False,
                       over_budget=False)
            raise _Stopped
    async def _send(self, run: _Run, method: str, url: httpx.URL,
                    headers: Mapping[str, str] | None, content: bytes | None) -> _Answer:
        """One HTTP request with the body capped at ``http.max_bytes``."""
        if self._stop_message is not None:
            raise _Stopped
        hdrs = dict(self._headers)
        hdrs.update(headers or {})
        hdrs.update(self._authorization(url))
        limit = self._config.http.max_bytes
        run.result.requests += 1
        # httpx's timeout bounds each read; this bounds a server that drips bytes.
        deadline = self._config.http.timeout * 3
        async with asyncio.timeout(deadline):
            async with self._client.stream(method, url, headers=hdrs, content=content,
                                           timeout=self._timeout,
                                           follow_redirects=False) as resp:
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _TooLarge(f"GitHub answer larger than http.max_bytes ({limit} bytes)")
                buf = bytearray()
                async for chunk in resp.aiter_bytes():
                    buf += chunk
                    if len(buf) > limit:
                        raise _TooLarge(
                            f"GitHub answer larger than http.max_bytes ({limit} bytes)")
        logger.debug("github %s %s -> %d (%d bytes)", method, self._quote(url.path, 300),
                     resp.status_code, len(buf))
        return _Answer(resp.status_code, resp.headers, bytes(buf), url)

    def _authorization(self, url: httpx.URL) -> dict[str, str]:
        """The Authorization header for ``url``: only on the configured API origins."""
        if self._token and _origin(url) in self._token_origins:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def _rate_limit_of(self, ans: _Answer, graphql: bool) -> RateLimit | None:
        if graphql and ans.status == 200:
            doc = ans.decoded()
            if not isinstance(doc, dict):
                return None
            errors = _error_dicts(doc)
            data = doc.get("data")
            throttled = any(
                str(e.get("type", "")) in GRAPHQL_RATE_LIMIT_TYPES
                or "rate limit" in str(e.get("message", "")).lower()
                for e in errors if not e.get("path"))
            if not throttled or (isinstance(data, dict) and any(
                    v is not None for k, v in data.items() if k != "rateLimit")):
                return None
            return github_rate_limit(ans.status, ans.headers, ans.message(), throttled=True)
        return github_rate_limit(ans.status, ans.headers, ans.message())

    def _note_quota(self, ans: _Answer) -> None:
        """After a good answer that spent the last of the quota, do not ask again before reset."""
        if ans.status in (403, 429) or ratelimit_remaining(ans.headers) != 0:
            return
        reset = ratelimit_reset(ans.headers)
        if reset is None:
            return
        wait = reset.timestamp() - time.time()
        if wait > 0:
            self._pause(wait + self.reset_margin, reset, primary=True,
                        why="the GitHub API rate limit is spent")

    async def _heed_shared_quota(self) -> None:
        """Another host sharing the cache spent this credential's quota: do not ask
        before its reset (the wait is charged to the budget, as for our own)."""
        assert self._shared_quota is not None
        reset = await asyncio.to_thread(self._shared_quota.quota_spent_until, self._credential)
        if reset is None:
            return
        wait = reset.timestamp() - time.time()
        if wait > 0:
            self._pause(wait + self.reset_margin, reset, primary=True,
                        why="the GitHub API rate limit is spent (by a host sharing the cache)")

    async def _share_quota(self, ans: _Answer) -> None:
        """Tell the hosts sharing the cache what GitHub said of the quota."""
        assert self._shared_quota is not None
        remaining, reset = ratelimit_remaining(ans.headers), ratelimit_reset(ans.headers)
        if remaining is not None and reset is not None:
            await asyncio.to_thread(self._shared_quota.note_quota, self._credential,
                                    remaining, reset)

    def _pause_for(self, run: _Run, verdict: RateLimit, ans: _Answer, limited: int) -> None:
        """Wait as a rate limit asks (charged to the budget), or stop the run."""
        gh = self._config.github
        reset = verdict.reset_at
        kind = "primary" if verdict.primary else "secondary"
        if limited > self._config.http.max_retries:
            # GitHub: continuing while rate limited may get the integration banned.
            self._stop(f"GitHub kept answering with {kind} rate limits ({limited} in a row)",
                       reset, primary=verdict.primary, over_budget=False)
            raise _Stopped
        if verdict.wait is not None:
            wait = verdict.wait + (self.reset_margin if verdict.until_reset else 0.0)
        else:
            wait = gh.secondary_wait * (2 ** run.secondary_streak)
            run.secondary_streak += 1
        if reset is None and verdict.wait is not None:
            reset = datetime.fromtimestamp(time.time() + verdict.wait, tz=UTC)
        self._pause(wait, reset, primary=verdict.primary, why=f"GitHub {kind} rate limit")
        if self._stop_message is not None:
            raise _Stopped
        logger.info("GitHub %s rate limit (HTTP %d); waiting %.1fs (%.1fs of %gs budget used)",
                    kind, ans.status, wait, self._budget.spent, gh.max_wait)

    def _pause(self, wait: float, reset: datetime | None, *, primary: bool, why: str) -> None:
        """Hold every request until ``wait`` seconds from now, if the budget affords it."""
        loop_now = time.monotonic()
        target = loop_now + wait
        if target <= self._resume_at:
            return  # an earlier pause already covers it
        extra = target - max(loop_now, self._resume_at)
        if not self._budget.allows(extra):
            self._stop(why, reset, primary=primary)
            return
        self._budget.spend(extra)
        self._resume_at = target

    def _stop(self, why: str, reset: datetime | None, *, primary: bool,
              over_budget: bool = True) -> None:
        """Stop all GitHub fetching for this run; the message names the reset time if known."""
        if self._stop_message is not None:
            return
        budget = self._config.github.max_wait
        if not over_budget:
            when = f" (the limit resets at {_fmt_time(reset)})" if reset is not None else ""
            msg = f"{why}; not fetched this run{when}"
        elif reset is not None:
            msg = (f"{why}; waiting until it resets at {_fmt_time(reset)} would exceed "
                   f"github.max_wait ({budget:g}s); not fetched this run")
        else:
            msg = (f"{why}; the github.max_wait budget ({budget:g}s) is used up; "
                   "not fetched this run")
        self._stop_message = msg
        self._stop_reset = reset
        self._stop_ends_at_reset = primary and reset is not None
        logger.warning("%s", msg)

    def _clear_stale_stop(self) -> None:
        """A stop caused by a spent quota ends at its reset; a spent budget lasts the run."""
        if (self._stop_message is not None and self._stop_reset is not None
                and self._stop_ends_at_reset and _now() >= self._stop_reset):
            self._stop_message = None
            self._stop_reset = None

    def _mark_missing(self, run: _Run, keys: Sequence[str]) -> None:
        for key in keys:
            if key not in run.result.records and key not in run.result.not_modified:
                run.result.missing[key] = self._stop_message or "not fetched"
        if self._stop_reset is not None:
            run.result.rate_limit_reset = self._stop_reset

    async def _wait_gate(self) -> None:
        while True:
            if self._stop_message is not None:
                raise _Stopped
            delay = self._resume_at - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def _auth_error(self, run: _Run, ans: _Answer) -> _AuthFailed:
        if self._token:
            var = self._config.github.token_env
            msg = (f"GitHub rejected the token in {var} (HTTP 401): set a valid token in "
                   f"{var}, or unset it to fetch without one")
            # nothing more is sent; fetch() raises ConfigError with this one line (no
            # warning logged besides it)
            self._stop_message = msg
        else:
            msg = f"GitHub answered 401 without a token: {self._quote(ans.message())}"
        run.auth_error = msg
        return _AuthFailed(msg)


def _canonical(key: str, names: Mapping[str, str]) -> tuple[str, str] | None:
    """The canonical ``owner``, ``repo`` learned for a renamed ``key``, if it is one and
    a valid name (it came from the API: untrusted)."""
    name = names.get(key)
    if not name or name.lower() == key:
        return None
    try:
        return split_key(name)
    except ValueError:
        return None


def _graphql_document(ans: _Answer) -> dict[str, Any]:
    doc = ans.json()
    if not isinstance(doc, dict) or not ("data" in doc or "errors" in doc):
        raise _Garbage("a GraphQL answer without data or errors")
    if not isinstance(doc.get("data"), dict | None) or not isinstance(doc.get("errors"),
                                                                      list | None):
        raise _Garbage("a GraphQL answer whose data or errors have the wrong type")
    return doc


def _license(spdx_id: Any, name: Any) -> dict[str, Any]:
    """``{spdx_id, name}``; GitHub's ``NOASSERTION`` (an unrecognised licence) is no id."""
    spdx = spdx_id if isinstance(spdx_id, str) and spdx_id != "NOASSERTION" else None
    return {"spdx_id": spdx, "name": name if isinstance(name, str) else None}
