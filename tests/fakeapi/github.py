"""A fake GitHub API (REST ``/repos`` + ``/repositories``, GraphQL ``/graphql``, ``/rate_limit``).

It serves on 127.0.0.1 and mimics what the fetcher relies on, as recorded in
``shared/api-facts.md`` sections 3.2 and 3.3:

- REST ``GET /repos/{owner}/{repo}``: the full-repository JSON with GitHub's
  field names, case-insensitive lookup, ``full_name`` in display case; 301 with
  ``Location: {base}/repositories/{id}`` for a renamed repository; 404, 451
  (DMCA block body), 401 for a bad token.
- Weak ETags that differ per credential for the same data (github/docs#34689);
  a matching ``If-None-Match`` gets 304 with no body. An authenticated 304 does
  not spend the primary limit, an anonymous one does (the design assumption of
  api-facts 3.2).
- ``x-ratelimit-*`` headers, 60/h anonymous and 5000/h with a token, tracked per
  credential and per resource (``core`` and ``graphql``). When the limit is
  spent: 403 (or 429, ``primary_status``) with remaining 0, and for GraphQL a
  200 carrying a ``RATE_LIMITED`` error.
- Secondary limits queued with :meth:`FakeGitHub.secondary_limit`.
- GraphQL: every query is parsed and validated with graphql-core against
  ``github_schema.graphql`` (the part of GitHub's schema enrich uses, with its real
  names, arguments and nullability) and executed against it: a misspelt field, a
  missing argument or a wrong type is refused as GitHub refuses it (200, ``errors``
  only, no ``data``). Per-alias errors carry GitHub's top-level ``type``
  (``NOT_FOUND`` beside the other aliases' data); renames are followed unless
  ``followRenames: false``.
- Query limits: ``graphql_max_nodes`` (GitHub's 500,000; a query over it gets
  ``MAX_NODE_LIMIT_EXCEEDED`` and no data), ``graphql_resource_limit`` (lookups
  past it fail with ``RESOURCE_LIMITS_EXCEEDED`` beside the others' data), and
  ``graphql_slow_over`` (a query with more lookups runs past GitHub's 10 s: 502).

A DMCA-blocked repository: REST answers 451 with a ``block`` object; GraphQL gives
the alias ``null`` and an error of type ``graphql_blocked_type`` (``FORBIDDEN`` by
default; ``NOT_FOUND`` is the other shape seen), which only REST can tell from
other refusals.

Every request is logged by the base class (``srv.count(endpoint=..., credential=...)``,
the credential being the token value or ``anon``); answers are counted by
status (``srv.count_status(304)``) and the peak number of requests in flight is
kept in ``srv.max_inflight``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from enrich.config import Config

from .server import FakeHandler, FakeServer

DOCS = "https://docs.github.com/rest"
REST_REPO_DOCS = "https://docs.github.com/rest/repos/repos#get-a-repository"
REDIRECT_DOCS = "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = RATE_DOCS + "#about-secondary-rate-limits"
GRAPHQL_DOCS = "https://docs.github.com/graphql"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID "
    "0000:1111:2222:3333:44444444."
)

_REPOS_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)/?$")
_BY_ID_PATH = re.compile(r"^/repositories/(\d+)/?$")
#: The part of GitHub's GraphQL schema enrich uses (tests/fakeapi/github_schema.graphql):
#: every query is validated against it and executed by graphql-core.
SCHEMA = build_schema((Path(__file__).parent / "github_schema.graphql").read_text("utf-8"))
#: GitHub's body for a query that ran past its 10 s (with HTTP 502).
TIMEOUT_MESSAGE = ("Something went wrong while executing your query. This may be the result "
                   "of a timeout, or it could be a GitHub bug. Please include "
                   "`0000:1111:2222:3333:44444444` when reporting this issue.")


@dataclass
class FakeRepo:
    """One repository as the fake stores it; ``full_name`` is in display case."""

    id: int
    full_name: str
    stars: int = 0
    forks: int = 0
    license: tuple[str, str] | str | None = None
    description: str | None = None
    topics: list[str] = field(default_factory=list)
    language: str | None = None
    archived: bool = False
    fork: bool = False
    homepage: str | None = None
    pushed_at: str = "2024-05-01T12:00:00Z"
    created_at: str = "2020-01-15T08:30:00Z"
    updated_at: str = "2024-05-02T09:00:00Z"
    blocked: bool = False

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


@dataclass
class _Bucket:
    limit: int
    used: int = 0
    reset: int = 0


@dataclass
class _Secondary:
    status: int
    retry_after: float | None


class FakeGitHub(FakeServer):
    """The fake GitHub API; fill it with :meth:`add_repo` and point the fetcher at ``url``."""

    def __init__(self) -> None:
        super().__init__(GitHubHandler)
        self.repos: dict[str, FakeRepo] = {}  # lower-case full_name -> repo
        self.by_id: dict[int, FakeRepo] = {}
        self.redirects: dict[str, int] = {}  # lower-case old name -> repo id
        self.tokens: dict[str, str] = {}  # valid token -> user login
        self.anon_limit = 60
        self.token_limit = 5000
        self.graphql_limit = 5000
        self.primary_status = 403
        self.graphql_ratelimit_type = "RATE_LIMITED"
        self.graphql_blocked_type = "FORBIDDEN"
        #: GitHub's node limit (500,000); a query over it gets MAX_NODE_LIMIT_EXCEEDED
        self.graphql_max_nodes = 500_000
        #: repository lookups a query may make before the others fail with
        #: RESOURCE_LIMITS_EXCEEDED (partial data), None: no such limit
        self.graphql_resource_limit: int | None = None
        #: a query with more repository lookups than this runs past GitHub's 10 s: 502
        self.graphql_slow_over: int | None = None
        #: queries refused by schema validation
        self.invalid_queries = 0
        #: lower-case owner/name -> an error ``type`` GraphQL answers for that alias instead
        self.graphql_errors: dict[str, str] = {}
        self.redirect_base: str | None = None  # where 301s point; default: this server
        self.max_inflight = 0
        self.statuses: list[tuple[str, str, int]] = []  # (endpoint, credential, status)
        self._inflight = 0
        self._next_id = 100_000
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._secondary: dict[str, deque[_Secondary]] = {"rest": deque(), "graphql": deque()}
        self._state = threading.RLock()

    # -- filling -------------------------------------------------------------------

    def add_repo(self, full_name: str, **fields: Any) -> FakeRepo:
        """Add (or replace) a repository; ``fields`` are :class:`FakeRepo` attributes."""
        with self._state:
            self._next_id += 1
            repo = FakeRepo(id=self._next_id, full_name=full_name, **fields)
            self.repos[full_name.lower()] = repo
            self.by_id[repo.id] = repo
            return repo

    def add_synthetic(self, n: int) -> list[str]:
        """Add ``n`` repositories named ``Synth-Owner-i/Repo-i.x``; return their lower-case keys.

        The names carry hyphens and dots on purpose: neither is valid in a GraphQL alias.
        """
        keys = []
        for i in range(n):
            name = f"Synth-Owner-{i}/Repo-{i}.x"
            self.add_repo(name, stars=i * 10, forks=i, license=("MIT", "MIT License"),
                          description=f"Synthetic repository number {i}",
                          topics=["synthetic", f"t{i % 7}"], language="Python")
            keys.append(name.lower())
        return keys

    def rename(self, old: str, new: str) -> FakeRepo:
        """Rename (or transfer) a repository; the old name then redirects, as on GitHub."""
        with self._state:
            repo = self.repos.pop(old.lower())
            self.redirects[old.lower()] = repo.id
            repo.full_name = new
            self.repos[new.lower()] = repo
            return repo

    def block(self, key: str) -> None:
        """Block a repository for legal reasons (DMCA): REST answers 451."""
        with self._state:
            repo = self._lookup(key)[0]
            assert repo is not None, key
            repo.blocked = True

    def set_stars(self, key: str, stars: int) -> None:
        """Change a repository's stars (and so its ETag)."""
        with self._state:
            repo = self._lookup(key)[0]
            assert repo is not None, key
            repo.stars = stars
            repo.updated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # -- rate limits and faults ----------------------------------------------------

    def exhaust(self, credential: str = "anon", reset_in: float = 3600.0,
                resource: str | None = None) -> None:
        """Spend a credential's primary limit (``core``, ``graphql`` or both when None)."""
        with self._state:
            for res in ("core", "graphql") if resource is None else (resource,):
                b = self._bucket(credential, res)
                b.used = b.limit
                b.reset = math.ceil(time.time() + reset_in)

    def secondary_limit(self, times: int = 1, retry_after: float | None = None,
                        status: int = 403, endpoint: str = "rest") -> None:
        """Answer the next ``times`` requests of ``endpoint`` with a secondary rate limit."""
        with self._state:
            for _ in range(times):
                self._secondary[endpoint].append(_Secondary(status, retry_after))

    def count_status(self, status: int, endpoint: str | None = None,
                     credential: str | None = None) -> int:
        """How many answers had this status (faults included; resets and hangs have none)."""
        with self._state:
            return sum(1 for ep, cred, st in self.statuses
                       if st == status and (endpoint is None or ep == endpoint)
                       and (credential is None or cred == credential))

    def etag_for(self, key: str, credential: str = "anon") -> str:
        """The ETag this fake gives ``credential`` for the repository named ``key``."""
        with self._state:
            repo = self._lookup(key)[0]
            assert repo is not None, key
            return self._etag(repo, credential)

    # -- internals (called by the handler) -----------------------------------------

    def _lookup(self, key: str) -> tuple[FakeRepo | None, bool]:
        """(repo, redirected) for an ``owner/name`` in any case; repos win over redirects."""
        low = key.lower()
        if low in self.repos:
            return self.repos[low], False
        if low in self.redirects:
            return self.by_id.get(self.redirects[low]), True
        return None, False

    def _bucket(self, credential: str, resource: str) -> _Bucket:
        key = (credential, resource)
        b = self._buckets.get(key)
        now = time.time()
        if b is None:
            if resource == "graphql":
                limit = self.graphql_limit
            else:
                limit = self.anon_limit if credential == "anon" else self.token_limit
            b = self._buckets[key] = _Bucket(limit=limit, reset=math.ceil(now + 3600))
        elif now >= b.reset:
            b.used = 0
            b.reset = math.ceil(now + 3600)
        return b

    def _etag(self, repo: FakeRepo, credential: str) -> str:
        payload = json.dumps(rest_repo_json(repo, "http://x"), sort_keys=True)
        digest = hashlib.sha256(f"{credential}\n{payload}".encode()).hexdigest()
        return f'W/"{digest}"'

    def _take_secondary(self, endpoint: str) -> _Secondary | None:
        q = self._secondary.get(endpoint)
        return q.popleft() if q else None

    def _record_status(self, endpoint: str, credential: str, status: int) -> None:
        with self._state:
            self.statuses.append((endpoint, credential, status))

    def _enter(self) -> None:
        with self._state:
            self._inflight += 1
            self.max_inflight = max(self.max_inflight, self._inflight)

    def _leave(self) -> None:
        with self._state:
            self._inflight -= 1


def _license_json(lic: tuple[str, str] | str | None) -> dict[str, Any] | None:
    if lic is None:
        return None
    if isinstance(lic, str):  # "other": a licence GitHub does not recognise
        return {"key": "other", "name": "Other", "spdx_id": "NOASSERTION", "url": None,
                "node_id": "MDc6TGljZW5zZTA="}
    spdx, name = lic
    return {"key": spdx.lower(), "name": name, "spdx_id": spdx,
            "url": f"https://api.github.com/licenses/{spdx.lower()}",
            "node_id": "MDc6TGljZW5zZTEz"}


def rest_repo_json(repo: FakeRepo, base: str) -> dict[str, Any]:
    """The full-repository JSON of ``GET /repos/{owner}/{repo}`` (GitHub's field names)."""
    api = f"{base}/repos/{repo.full_name}"
    html = f"https://github.com/{repo.full_name}"
    return {
        "id": repo.id,
        "node_id": f"R_kgDO{repo.id:08d}",
        "name": repo.name,
        "full_name": repo.full_name,
        "private": False,
        "owner": {
            "login": repo.owner, "id": repo.id + 7, "node_id": f"U_kgDO{repo.id + 7:08d}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{repo.id + 7}?v=4",
            "url": f"{base}/users/{repo.owner}", "html_url": f"https://github.com/{repo.owner}",
            "type": "User", "site_admin": False,
        },
        "html_url": html,
        "description": repo.description,
        "fork": repo.fork,
        "url": api,
        "clone_url": html + ".git",
        "homepage": repo.homepage,
        "size": 1234,
        "created_at": repo.created_at,
        "updated_at": repo.updated_at,
        "pushed_at": repo.pushed_at,
        "stargazers_count": repo.stars,
        "watchers_count": repo.stars,
        "forks_count": repo.forks,
        "forks": repo.forks,
        "watchers": repo.stars,
        "language": repo.language,
        "has_issues": True,
        "has_wiki": True,
        "has_pages": False,
        "archived": repo.archived,
        "disabled": False,
        "open_issues_count": 3,
        "open_issues": 3,
        "license": _license_json(repo.license),
        "allow_forking": True,
        "is_template": False,
        "topics": list(repo.topics),
        "visibility": "public",
        "default_branch": "main",
        "network_count": repo.forks,
        "subscribers_count": 5,
    }


def graphql_repo(repo: FakeRepo) -> dict[str, Any]:
    """A GraphQL ``Repository`` with every field of the schema; execution keeps what the
    query asks for (``repositoryTopics`` honours its ``first``)."""
    lic = _license_json(repo.license)
    topics = [{"id": f"RT_{repo.id}_{n}", "url": f"https://github.com/topics/{t}",
               "resourcePath": f"/topics/{t}", "topic": {"id": f"T_{t}", "name": t}}
              for n, t in enumerate(repo.topics)]

    def repository_topics(info: Any, first: int | None = None, last: int | None = None,
                          after: str | None = None, before: str | None = None
                          ) -> dict[str, Any]:
        if first is None and last is None:
            raise GraphQLError("You must provide a `first` or `last` value to properly "
                               "paginate the `repositoryTopics` connection.",
                               extensions={"type": "MISSING_PAGINATION_BOUNDARIES"})
        page = topics[:first] if first is not None else topics[-(last or 0):]
        return {"nodes": page, "edges": [{"cursor": str(n), "node": t}
                                         for n, t in enumerate(page)],
                "totalCount": len(topics),
                "pageInfo": {"hasNextPage": len(page) < len(topics), "hasPreviousPage": False,
                             "startCursor": None, "endCursor": None}}

    return {
        "id": f"R_kgDO{repo.id:08d}",
        "name": repo.name,
        "nameWithOwner": repo.full_name,
        "url": f"https://github.com/{repo.full_name}",
        "description": repo.description,
        "homepageUrl": repo.homepage,
        "stargazerCount": repo.stars,
        "forkCount": repo.forks,
        "licenseInfo": None if lic is None else {
            "id": lic["node_id"], "spdxId": lic["spdx_id"], "name": lic["name"],
            "key": lic["key"], "nickname": None, "url": lic["url"]},
        "repositoryTopics": repository_topics,
        "primaryLanguage": None if repo.language is None else {
            "id": f"L_{repo.language}", "name": repo.language, "color": None},
        "isArchived": repo.archived,
        "isFork": repo.fork,
        "isPrivate": False,
        "pushedAt": repo.pushed_at,
        "createdAt": repo.created_at,
        "updatedAt": repo.updated_at,
    }


class GitHubHandler(FakeHandler):
    server: FakeGitHub
    #: TCP_NODELAY: headers and body go out as separate writes, and Nagle plus delayed
    #: ACKs would otherwise add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def endpoint_of(self, method: str, path: str) -> str:
        if path.rstrip("/") == "/graphql":
            ep = "graphql"
        elif path.rstrip("/") == "/rate_limit":
            ep = "rate_limit"
        elif path.startswith(("/repos/", "/repositories/")):
            ep = "rest"
        else:
            ep = "other"
        self._endpoint = ep
        return ep

    def _handle(self, method: str) -> None:
        self._endpoint = "other"
        self.server._enter()
        try:
            super()._handle(method)
        finally:
            self.server._leave()

    def send_response(self, code: int, message: str | None = None) -> None:
        self.server._record_status(getattr(self, "_endpoint", "other"), self.credential_of(),
                                   code)
        super().send_response(code, message)

    def garbage_body(self) -> tuple[str, bytes]:
        return "application/json; charset=utf-8", b'{"message": "Server Error", "id": '

    # -- helpers ---------------------------------------------------------------------

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        hdrs = {"X-GitHub-Media-Type": "github.v3; format=json",
                "X-GitHub-Request-Id": "0000:1111:2222:3333:44444444"}
        hdrs.update(headers or {})
        self.send(status, body, "application/json; charset=utf-8", hdrs)

    def _rate_headers(self, b: _Bucket, resource: str) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(b.limit),
                "X-RateLimit-Remaining": str(max(0, b.limit - b.used)),
                "X-RateLimit-Used": str(b.used), "X-RateLimit-Reset": str(b.reset),
                "X-RateLimit-Resource": resource}

    def _base(self) -> str:
        return self.server.url

    # -- routing -----------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        ep = self._endpoint
        if ep == "rate_limit" and method == "GET":
            self._rate_limit()
        elif ep == "rest" and method in ("GET", "HEAD"):
            self._rest(path)
        elif ep == "graphql" and method == "POST":
            self._graphql(body)
        else:
            self._json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    def _user(self) -> tuple[str, bool]:
        """(credential, valid): ``anon`` is valid; an unknown token is not."""
        cred = self.credential_of()
        return cred, cred == "anon" or cred in self.server.tokens

    def _rate_limit(self) -> None:
        cred, ok = self._user()
        if not ok:
            self._json(401, {"message": "Bad credentials", "documentation_url": DOCS,
                             "status": "401"})
            return
        srv = self.server
        with srv._state:
            res = {}
            for name in ("core", "graphql"):
                b = srv._bucket(cred, name)
                res[name] = {"limit": b.limit, "used": b.used,
                             "remaining": b.limit - b.used, "reset": b.reset}
        self._json(200, {"resources": res, "rate": res["core"]})

    def _rest(self, raw_path: str) -> None:
        srv = self.server
        cred, ok = self._user()
        if not ok:
            self._json(401, {"message": "Bad credentials", "documentation_url": DOCS,
                             "status": "401"})
            return
        m = _REPOS_PATH.match(raw_path)
        m_id = _BY_ID_PATH.match(raw_path)
        inm = self.headers.get("If-None-Match")
        payload: dict[str, Any] | None
        with srv._state:
            b = srv._bucket(cred, "core")
            if b.used >= b.limit:
                who = (f"user ID {abs(hash(srv.tokens[cred])) % 10**7}" if cred != "anon"
                       else self.client_address[0])
                status, payload = srv.primary_status, {
                    "message": f"API rate limit exceeded for {who}. (But here's the good news: "
                               "Authenticated requests get a higher rate limit. Check out the "
                               "documentation for more details.)",
                    "documentation_url": RATE_DOCS + "#exceeding-the-rate-limit"}
                headers = self._rate_headers(b, "core")
                sec = None
            else:
                sec = srv._take_secondary("rest")
                headers = {}
                status, payload = 0, None
                if sec is None:
                    repo: FakeRepo | None = None
                    redirected = False
                    if m:
                        repo, redirected = srv._lookup(f"{unquote(m.group(1))}/"
                                                       f"{unquote(m.group(2))}")
                    elif m_id:
                        repo = srv.by_id.get(int(m_id.group(1)))
                    etag = srv._etag(repo, cred) if repo is not None else None
                    not_modified = (repo is not None and not redirected and not repo.blocked
                                    and inm is not None and inm == etag)
                    if not (not_modified and cred != "anon"):
                        b.used += 1  # an authenticated 304 is free; anything else costs one
                    headers = self._rate_headers(b, "core")
                    if repo is None:
                        status, payload = 404, {"message": "Not Found",
                                                "documentation_url": REST_REPO_DOCS,
                                                "status": "404"}
                    elif repo.blocked:
                        status, payload = 451, {
                            "message": "Repository access blocked",
                            "block": {"reason": "dmca", "created_at": "2023-03-01T10:00:00Z",
                                      "html_url": "https://github.com/github/dmca/blob/master/"
                                                  "2023/03/2023-03-01-example.md"}}
                    elif redirected:
                        base = srv.redirect_base or self._base()
                        loc = f"{base}/repositories/{repo.id}"
                        headers["Location"] = loc
                        status, payload = 301, {"message": "Moved Permanently", "url": loc,
                                                "documentation_url": REDIRECT_DOCS}
                    elif not_modified:
                        status = 304
                        headers["ETag"] = etag or ""
                    else:
                        status, payload = 200, rest_repo_json(repo, self._base())
                        headers["ETag"] = etag or ""
                        headers["Last-Modified"] = "Thu, 02 May 2024 09:00:00 GMT"
                        headers["Cache-Control"] = "public, max-age=60, s-maxage=60"
                        headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
                else:
                    headers = self._rate_headers(b, "core")
        if sec is not None:
            self._secondary(sec, headers)
            return
        if status == 304:
            self.send_response(304)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        self._json(status, payload, headers)

    def _secondary(self, sec: _Secondary, headers: dict[str, str]) -> None:
        if sec.retry_after is not None:
            headers["Retry-After"] = f"{sec.retry_after:g}"
        self._json(sec.status, {"message": SECONDARY_MESSAGE, "documentation_url": SECONDARY_DOCS},
                   headers)

    def _graphql(self, body: bytes) -> None:
        srv = self.server
        cred = self.credential_of()
        if cred == "anon":
            self._json(401, {"message": "This endpoint requires you to be authenticated.",
                             "documentation_url": GRAPHQL_DOCS + "/guides/forming-calls-with-"
                                                                 "graphql#authenticating-with-graphql"})
            return
        if cred not in srv.tokens:
            self._json(401, {"message": "Bad credentials", "documentation_url": GRAPHQL_DOCS})
            return
        try:
            doc = json.loads(body)
            query = doc["query"]
            variables = doc.get("variables") or {}
            assert isinstance(query, str) and isinstance(variables, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            self._json(400, {"message": "Problems parsing JSON", "documentation_url": GRAPHQL_DOCS})
            return
        with srv._state:
            b = srv._bucket(cred, "graphql")
            if b.used >= b.limit:
                headers = self._rate_headers(b, "graphql")
                uid = abs(hash(srv.tokens[cred])) % 10**7
                payload: dict[str, Any] = {"errors": [{
                    "type": srv.graphql_ratelimit_type,
                    "message": f"API rate limit exceeded for user ID {uid}."}]}
                self._json(200, payload, headers)
                return
            sec = srv._take_secondary("graphql")
            if sec is not None:
                headers = self._rate_headers(b, "graphql")
            else:
                b.used += 1  # a query of <= 100 repositories without big connections: 1 point
                headers = self._rate_headers(b, "graphql")
                status, payload = self._resolve(query, variables, b)
        if sec is not None:
            self._secondary(sec, headers)
            return
        self._json(status, payload, headers)

    def _resolve(self, query: str, variables: dict[str, Any], b: _Bucket
                 ) -> tuple[int, dict[str, Any]]:
        """Validate the query against GitHub's schema, then run it (the server state is
        locked): GitHub's status and body for it."""
        srv = self.server
        try:
            document = parse(query)
        except GraphQLError as exc:
            return 200, {"errors": [github_error(exc)]}
        invalid = validate(SCHEMA, document)
        if invalid:
            srv.invalid_queries += 1
            return 200, {"errors": [github_error(e) for e in invalid]}
        lookups = _root_lookups(document)
        if srv.graphql_slow_over is not None and lookups > srv.graphql_slow_over:
            return 502, {"data": None, "errors": [{"message": TIMEOUT_MESSAGE}]}
        m = re.search(r"repositoryTopics\(first:\s*(\d+)", query)
        nodes = lookups * (1 + (int(m.group(1)) if m else 0))
        if nodes > srv.graphql_max_nodes:
            return 200, {"errors": [{
                "type": "MAX_NODE_LIMIT_EXCEEDED",
                "message": f"This query requests up to {nodes:,} possible nodes which exceeds "
                           f"the maximum limit of {srv.graphql_max_nodes:,}."}]}
        asked = 0

        def repository(info: Any, owner: str, name: str, followRenames: bool = True) -> Any:
            nonlocal asked
            asked += 1
            if srv.graphql_resource_limit is not None and asked > srv.graphql_resource_limit:
                raise GraphQLError("Resource limits for this query exceeded.",
                                   extensions={"type": "RESOURCE_LIMITS_EXCEEDED"})
            forced = srv.graphql_errors.get(f"{owner}/{name}".lower())
            if forced is not None:
                raise GraphQLError(f"Something about '{owner}/{name}' ({forced}).",
                                   extensions={"type": forced})
            repo, redirected = srv._lookup(f"{owner}/{name}")
            if repo is None or (redirected and not followRenames):
                raise GraphQLError(f"Could not resolve to a Repository with the name "
                                   f"'{owner}/{name}'.", extensions={"type": "NOT_FOUND"})
            if repo.blocked:
                raise GraphQLError("Repository access blocked",
                                   extensions={"type": srv.graphql_blocked_type})
            return graphql_repo(repo)

        def rate_limit(info: Any, dryRun: bool = False) -> dict[str, Any]:
            return {"cost": 1, "limit": b.limit, "used": b.used,
                    "remaining": b.limit - b.used, "nodeCount": nodes,
                    "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.reset))}

        result = execute(SCHEMA, document, root_value={"repository": repository,
                                                       "rateLimit": rate_limit},
                         variable_values=variables)
        assert not isinstance(result, Awaitable)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [github_error(e) for e in result.errors]
        return 200, out


def _root_lookups(document: DocumentNode) -> int:
    """How many ``repository`` lookups the query's operations make at the root."""
    return sum(1 for op in document.definitions if isinstance(op, OperationDefinitionNode)
               for sel in op.selection_set.selections
               if isinstance(sel, FieldNode) and sel.name.value == "repository")


def github_error(exc: GraphQLError) -> dict[str, Any]:
    """A GraphQL error in GitHub's shape: ``type`` (NOT_FOUND, FORBIDDEN, ...) at the top
    level beside ``path``, ``locations`` and ``message``."""
    ext = dict(exc.extensions or {})
    out: dict[str, Any] = {}
    if "type" in ext:
        out["type"] = ext.pop("type")
    if exc.path:
        out["path"] = list(exc.path)
    if exc.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    out["message"] = exc.message
    if ext:
        out["extensions"] = ext
    return out


# -- pytest helpers ----------------------------------------------------------------------


@contextmanager
def running_fake_github() -> Iterator[FakeGitHub]:
    """A started :class:`FakeGitHub`, stopped on exit."""
    srv = FakeGitHub()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def github_server() -> Iterator[FakeGitHub]:
    """A started :class:`FakeGitHub`, stopped after the test."""
    with running_fake_github() as srv:
        yield srv


def github_config(srv: FakeServer, token: str | None = None, **overrides: Any) -> Config:
    """A Config pointed at the fake with short waits; ``overrides`` as ``section__key=value``.

    e.g. ``github_config(srv, token="tok-abc", github__concurrency=2, http__timeout=0.5)``.
    """
    values: dict[str, Any] = {
        "github.api_url": srv.url,
        "github.graphql_url": srv.url + "/graphql",
        "github.secondary_wait": 0.05,
        "github.max_wait": 2.0,
        "http.backoff": 0.01,
        "http.backoff_max": 0.1,
        "http.timeout": 2.0,
    }
    for key, value in overrides.items():
        section, sep, name = key.partition("__")
        if not sep:
            raise TypeError(f"override {key!r}: use section__key, e.g. github__concurrency")
        values[f"{section}.{name}"] = value
    cfg = Config.load(env={}, overrides=values)
    cfg.token = token
    return cfg
