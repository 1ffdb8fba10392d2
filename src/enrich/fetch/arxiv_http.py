"""One request to arXiv's query API, and what its answer says.

- **The spacing gate.** arXiv's terms ask for "no more than one request every three
  seconds" and "a single connection at a time". Every request to one arXiv host, from
  any fetcher in the process, takes a turn at a process-wide :class:`Gate`: one request
  in flight, each start at least ``arxiv.min_interval`` (plus :data:`SPACING_MARGIN`)
  after the previous *start*. After a 429 the fetcher asks for the stricter spacing,
  counted from the previous request's *end*, for the rest of its run. The gate is an
  asyncio wait around a threading lock (acquire a permit, wait until the limiter is
  ready, send), so fetchers on different event loops share it too. With a PostgreSQL
  cache a second gate, shared by every host of the cache (:class:`SharedTurn`), is
  taken inside the process's own: one request at a time across hosts, spaced by the
  start time recorded in the database.
- **httpx does the HTTP**, as for GitHub: a timeout on every request (the arxiv
  package's client has none and cannot be given one through its public surface), a
  total deadline of ``http.timeout`` for the whole exchange (a server that drips one
  byte a second is cut off), the body capped at ``http.max_bytes``, our User-Agent, no
  credentials, and at most :data:`MAX_REDIRECTS` same-host redirects.
- **The arxiv package reads the Atom feed** (:func:`parse_feed`), off the event loop.
  Its parser recovers from broken XML and drops arXiv's Error entries (they have no
  ``<published>``), so the raw body is checked first: an Error entry names a malformed
  id, and a feed that is not well-formed is a transient failure, not a short answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit
from xml.parsers import expat

import arxiv
import httpx

from .policy import is_transient, quote_untrusted, retry_after_seconds

log = logging.getLogger(__name__)

#: Redirect hops followed for one request (same server only) before giving up.
MAX_REDIRECTS = 3
#: Added to ``arxiv.min_interval`` between two starts: clocks and proxies are not exact,
#: and a request that arrives a hair early counts against the terms.
SPACING_MARGIN = 0.05
#: How often a fetcher waiting for another one's turn (another event loop) looks again.
_POLL = 0.02

_ATOM_FEED = "http://www.w3.org/2005/Atom}feed"
_ERROR_ANCHOR = re.compile(rb"<id>\s*[^<]*/api/errors#([^<\s]*)\s*</id>")
_ERROR_SUMMARY = re.compile(rb"<summary[^>]*>(.*?)</summary>", re.S)
_ID_FORMAT = "incorrect_id_format_for_"


def _feed_parser() -> Any:
    """The arxiv package's Atom parser: ``arxiv._feed.parse(bytes) -> ParsedFeed``.

    It is the one part of the package enrich uses that is not its documented client
    (whose requests have no timeout, no byte cap and lose ``Retry-After``); the
    version range is pinned in ``pyproject.toml`` and this check fails loudly at import
    if a release moves it, rather than letting enrich misread feeds.
    """
    feed = getattr(arxiv, "_feed", None)
    parse = getattr(feed, "parse", None)
    if not callable(parse):  # pragma: no cover - only with an unsupported arxiv release
        raise ImportError(f"arxiv {getattr(arxiv, '__version__', '?')} has no _feed.parse; "
                          "enrich needs arxiv>=4.0,<4.1")
    return parse


_PARSE = _feed_parser()


# -- the gate ------------------------------------------------------------------------------


class Gate:
    """Turn-taking for one arXiv host: one request in flight, starts spaced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_start: float | None = None
        self._last_end: float | None = None

    @contextlib.asynccontextmanager
    async def turn(self, interval: float, *, from_end: bool = False) -> AsyncIterator[None]:
        """Hold the turn while sending: wait for the permit, then for the spacing."""
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(_POLL)
        try:
            last = self._last_end if from_end else self._last_start
            if last is not None and interval > 0:
                wait = last + interval + SPACING_MARGIN - time.monotonic()
                if wait > 0:
                    log.debug("arXiv spacing: waiting %.2f s", wait)
                    await asyncio.sleep(wait)
            self._last_start = time.monotonic()
            try:
                yield
            finally:
                self._last_end = time.monotonic()
        finally:
            self._lock.release()


class SharedTurn(Protocol):
    """A gate shared with other hosts (:class:`enrich.store.postgres.PgGate`)."""

    def turn(self, interval: float, *, from_end: bool = False
             ) -> AbstractAsyncContextManager[None]: ...


_GATES: dict[str, Gate] = {}
_GATES_LOCK = threading.Lock()


def server_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: what a gate is for."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def gate_for(url: str) -> Gate:
    """The process-wide gate of ``url``'s server."""
    with _GATES_LOCK:
        return _GATES.setdefault(server_of(url), Gate())


# -- one answer ----------------------------------------------------------------------------

ReplyKind = Literal["ok", "bad_id", "too_long", "transient", "final", "unreadable"]


@dataclass
class Reply:
    """One answer of arXiv, classified.

    - ``ok``: a readable feed; ``results`` are the arxiv package's ``Result`` objects.
    - ``bad_id``: an Error entry (HTTP 400, or the older 200 shape); ``bad_id`` is the
      id it names, if any.
    - ``too_long``: HTTP 414, the batch must be split.
    - ``transient``: worth another try (429, 5xx, timeouts, resets, broken bodies).
    - ``final``: an answer that repeating will not change (other 4xx, too large).
    - ``unreadable``: a well-formed feed the package cannot read (the batch is halved).
    """

    kind: ReplyKind
    message: str = ""
    results: list[Any] = field(default_factory=list)
    status: int | None = None
    retry_after: float | None = None
    bad_id: str | None = None


class ArxivApi:
    """Sends queries to one arXiv endpoint through its gate; counts what it sent."""

    def __init__(self, api_url: str, *, timeout: float, max_bytes: int, user_agent: str,
                 min_interval: float, shared_gate: SharedTurn | None = None) -> None:
        self.api_url = api_url
        self.safe_url = safe_url(api_url)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.min_interval = min_interval
        self.strict = False
        """After a 429: spacing counted from the previous request's end, for this run."""
        self.sent = 0
        self._gate = gate_for(api_url)
        self._shared_gate = shared_gate
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept": "application/atom+xml"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def query(self, ids: list[str]) -> Reply:
        """Ask for ``ids`` (one page of ``len(ids)`` entries); never raises for HTTP or
        network trouble."""
        params = {"id_list": ",".join(ids), "max_results": str(len(ids)), "start": "0"}
        try:
            async with self._gate.turn(self.min_interval, from_end=self.strict), \
                    self._shared_turn():
                async with asyncio.timeout(self.timeout):
                    status, headers, body = await self._exchange(params)
        except (TimeoutError, httpx.TimeoutException):
            return Reply("transient", f"timed out after {self.timeout:g} s")
        except _TooLarge as exc:
            return Reply("final", str(exc))
        except _Redirected as exc:
            return Reply("final", str(exc), status=exc.status)
        except httpx.HTTPError as exc:
            return Reply("transient", f"connection failed ({type(exc).__name__})")
        if status == 429:
            self.strict = True
        return await self._classify(status, headers, body)

    def _shared_turn(self) -> AbstractAsyncContextManager[None]:
        if self._shared_gate is None:
            return contextlib.nullcontext()
        return self._shared_gate.turn(self.min_interval, from_end=self.strict)

    async def _exchange(self, params: dict[str, str] | None
                        ) -> tuple[int, httpx.Headers, bytes]:
        url = httpx.URL(self.api_url)
        for _hop in range(MAX_REDIRECTS + 1):
            self.sent += 1
            async with self._client.stream("GET", url, params=params) as resp:
                body = await self._read_capped(resp)
            log.debug("arxiv GET %s -> %d (%d bytes)", _short_url(str(resp.url)),
                      resp.status_code, len(body))
            location = resp.headers.get("location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp.status_code, resp.headers, body
            try:
                target = resp.url.join(location)
            except httpx.InvalidURL:
                raise _Redirected(f"HTTP {resp.status_code} redirect to an unusable "
                                  "Location; not followed", resp.status_code) from None
            if not _same_server(str(url), str(target)):
                host = quote_untrusted(target.host or "?", 80)
                raise _Redirected(f"HTTP {resp.status_code} redirect to another host "
                                  f"({host}); not followed", resp.status_code)
            url, params = target, None  # the Location is the whole new URL
        raise _Redirected(f"more than {MAX_REDIRECTS} redirects (a redirect loop?)",
                          resp.status_code)

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge(f"reply of {declared} bytes exceeds http.max_bytes={self.max_bytes}")
        buf = bytearray()
        async for chunk in resp.aiter_raw():
            buf += chunk
            if len(buf) > self.max_bytes:
                raise _TooLarge(f"reply exceeds http.max_bytes={self.max_bytes}")
        return bytes(buf)

    async def _classify(self, status: int, headers: httpx.Headers, body: bytes) -> Reply:
        error = error_entry(body)
        if error is not None:
            return Reply("bad_id", error[1], status=status, bad_id=error[0])
        if status == 414:
            return Reply("too_long", "HTTP 414 (URL too long)", status=status)
        if status != 200:
            if is_transient(status) or status >= 500:
                text = body[:60].decode("utf-8", "replace").strip()
                detail = f" {text!r}" if text and not text.startswith("<") else ""
                return Reply("transient", f"HTTP {status}{detail}", status=status,
                             retry_after=retry_after_seconds(headers))
            return Reply("final", f"HTTP {status}", status=status)
        problem = not_a_feed(body)
        if problem is not None:
            return Reply("transient", f"HTTP 200 with {problem}", status=200)
        try:
            feed = await asyncio.to_thread(_PARSE, body)
        except Exception as exc:  # the package's parser on a hostile feed
            detail = quote_untrusted(exc, 120)
            return Reply("unreadable", f"a feed that cannot be read ({type(exc).__name__}: "
                         f"{detail})", status=200)
        return Reply("ok", results=list(feed.results), status=200)


class _TooLarge(Exception):
    """The reply is larger than ``http.max_bytes``."""


class _Redirected(Exception):
    """A redirect not followed: to another server, unusable, or one hop too many."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


# -- reading bodies ------------------------------------------------------------------------


def error_entry(body: bytes) -> tuple[str | None, str] | None:
    """``(id named, message)`` if the body carries an arXiv Error entry, else None.

    Looked for in the raw body whatever the status, since the arxiv parser drops
    Error entries (no ``<published>``).
    """
    m = _ERROR_ANCHOR.search(body)
    if m is None:
        return None
    anchor = unquote(m.group(1).decode("utf-8", "replace"))
    s = _ERROR_SUMMARY.search(body, m.end())
    message = quote_untrusted(_unescape(s.group(1).decode("utf-8", "replace"))
                              if s else anchor.replace("_", " "))
    named = _unescape(anchor[len(_ID_FORMAT):]) if anchor.startswith(_ID_FORMAT) else None
    return named, message or "arXiv API error"


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


def not_a_feed(body: bytes) -> str | None:
    """Why ``body`` is not a complete Atom feed, or None if it is one.

    The arxiv parser recovers from broken XML and returns whatever entries it got, so
    a truncated reply would pass as a short answer: well-formedness is checked here
    (expat, no tree built; a DOCTYPE is refused: no entity tricks).
    """
    if body.lstrip().startswith(b"Rate exceeded"):
        return "the plain-text throttle reply 'Rate exceeded.'"
    roots: list[str] = []
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag: str, attrs: Any) -> None:
        roots.append(tag)
        parser.StartElementHandler = None  # only the root matters

    def doctype(*args: Any) -> None:
        raise expat.ExpatError("a DOCTYPE")

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        return f"a body that is not well-formed XML ({len(body)} bytes: {exc})"
    if not roots or roots[0] != _ATOM_FEED:
        root = roots[0] if roots else "none"
        return f"a body that is not an Atom feed (root <{root}>)"
    return None


# -- URLs ----------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: fit for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _same_server(current: str, target: str) -> bool:
    """Whether a redirect stays on the server asked (an http -> https upgrade does)."""
    try:
        a, b = urlsplit(current), urlsplit(target)
        a_port, b_port = a.port, b.port
    except ValueError:  # a port that is not a number
        return False
    if (a.hostname or "").lower() != (b.hostname or "").lower() or not b.hostname:
        return False
    defaults = {"http": 80, "https": 443}
    a_eff, b_eff = a_port or defaults.get(a.scheme), b_port or defaults.get(b.scheme)
    upgrade = a.scheme == "http" and b.scheme == "https" and not a_port and not b_port
    return b.scheme in defaults and (a_eff == b_eff or upgrade)


def _short_url(url: str) -> str:
    """The URL for a log line: never a whole batch of ids."""
    return url if len(url) <= 160 else url[:157] + "..."
