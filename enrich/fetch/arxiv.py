"""Fetch paper metadata from the arXiv query API, politely and without losing answers.

Why it looks the way it does (facts in the project's ``api-facts.md``):

- **The arxiv package does the HTTP and the Atom parsing**, configured so that it owns
  neither retries nor spacing (``num_retries=0``, ``delay_seconds=0``): stacking our
  retries on top of its own would multiply requests against arXiv's 3-second rule.
  Its ``requests`` session is replaced by :class:`_ArxivSession`, which sets the
  timeout the package never sets, sends our User-Agent, never sends credentials
  (not even from ``~/.netrc``), caps the body at ``http.max_bytes`` and keeps the raw
  reply, because the package throws away what we need: the parser silently drops
  Error entries (they have no ``<published>``) and a non-200 status loses its
  ``Retry-After`` header.
- **One request at a time, spaced.** Every request to one arXiv host, from any fetcher
  in the process, goes through a process-wide gate: one request in flight, and at
  least ``arxiv.min_interval`` from the *end* of one request to the start of the next
  (so starts are at least that far apart too, retries included).
- **Off the event loop.** The blocking client runs in a worker thread
  (:func:`asyncio.to_thread`), so GitHub fetching proceeds meanwhile.
- **Parsing overlaps the next request.** With two batches or more, two lanes (threads
  sharing the session, its one connection and the gate) take turns: once a batch has
  had a good reply, the other lane sends the next batch while this one is parsed.
  A batch in trouble keeps the turn until it is settled, so retries never interleave
  with new batches.
- **Answers are matched by entry id, never by position**: arXiv returns entries sorted
  by date and silently drops ids that do not exist. ``max_results`` is always the
  batch size, since the API's default of 10 truncates longer lists.

Verdicts per id:

- found -> ``Paper(status="ok")``; absent from a 200 reply -> ``Paper(status="not_found")``.
- **Empty-page rule**: a 200 with *no* usable entry for a batch of two or more ids is
  asked once more before it is believed, because arXiv sporadically serves empty pages
  (arxiv.py#83); an empty answer for a single id is an ordinary ``not_found``.
- An id arXiv rejects as malformed (HTTP 400, or an older-style 200, carrying an
  ``/api/errors#incorrect_id_format_for_X`` entry) goes to ``failed`` with
  ``arXiv says: incorrect id format for X``; the rest of its batch is asked again
  without it. When the Error entry names no id of the batch, the batch is bisected.
  A 400 is never retried as such. A 414 (URL too long) splits the batch in two.
- Transient failures (429, 5xx, 408, connection reset, timeout, truncated or non-Atom
  body, a 200 reading ``Rate exceeded.``) are retried up to ``http.max_retries`` times
  with exponential backoff from ``http.backoff`` capped at ``http.backoff_max``. A
  ``Retry-After`` up to ``http.backoff_max`` is honoured exactly; a longer one (arXiv
  throttles for hours at times) stops arXiv fetching for the run: the batch and every
  later one go to ``missing`` and ``rate_limit_reset`` says when to come back.
- Retries exhausted -> the batch's ids go to ``failed`` with the status, the URL
  (no query) and the attempt count, and later batches are not attempted (``missing``):
  a down or throttling API is not hammered batch after batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from xml.parsers import expat

import arxiv
import requests
import requests.adapters
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .._version import USER_AGENT
from ..config import Config
from ..models import Paper
from . import BatchHook, FetchResult
from .policy import backoff, is_transient, quote_untrusted, retry_after_seconds

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection
    from urllib3.response import HTTPResponse

log = logging.getLogger(__name__)

_ATOM = "{http://www.w3.org/2005/Atom}"
_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(v\d+)?$")
_OLD_ID = re.compile(r"^([a-z]+(?:-[a-z]+)*)(?:\.[A-Za-z]{2})?/(\d{7})(v\d+)?$")
_VERSION = re.compile(r"^(.+?)(v(\d+))?$")
_ERROR_ANCHOR = re.compile(rb"<id>\s*[^<]*/api/errors#([^<\s]*)\s*</id>")
_ERROR_SUMMARY = re.compile(rb"<summary[^>]*>(.*?)</summary>", re.S)
_ID_FORMAT = "incorrect_id_format_for_"
#: Redirect hops followed for one request (same host only) before giving up.
MAX_REDIRECTS = 3
#: Longest a lane that passed the baton on waits for the other lane to send (see
#: ``ArxivFetcher._run_batches``): it is usually a few milliseconds, unless the other
#: lane waits for ``arxiv.min_interval``, and the reply is parsed after that wait.
_HANDOVER_WAIT = 0.1


class _Stopped(Exception):
    """The caller cancelled the fetch; stop at the next wait."""


class _Skipped(Exception):
    """An earlier batch stopped the run while this lane's request waited for its turn."""


class _TooLarge(Exception):
    """The reply is larger than ``http.max_bytes``."""


class _BadBody(Exception):
    """A 200 whose body is not a complete Atom feed (garbage, truncated, plain text)."""


class _Redirected(Exception):
    """A redirect we do not follow: to another host, or one hop too many (a loop)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class _ErrorFeed(Exception):
    """A 200 carrying arXiv's Error entry (the older shape of a 400)."""

    def __init__(self, named: str | None, message: str):
        super().__init__(message)
        self.named = named
        self.message = message


# -- the process-wide gate ---------------------------------------------------------------


class _Gate:
    """Turn-taking for one arXiv host: one request in flight, spaced by ``min_interval``.

    arXiv's terms ask for a single connection at a time and one request every three
    seconds across everything a user runs; sharing the gate process-wide keeps two
    fetchers (two ``Enricher`` objects, say) from doubling the rate.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_end: float | None = None

    @contextmanager
    def turn(self, min_interval: float, stop: threading.Event) -> Iterator[None]:
        while not self._lock.acquire(timeout=0.05):
            if stop.is_set():
                raise _Stopped
        try:
            if self._last_end is not None:
                wait = self._last_end + min_interval - time.monotonic()
                if wait > 0:
                    log.debug("arXiv spacing: waiting %.2f s", wait)
                    if stop.wait(wait):
                        raise _Stopped
            try:
                yield
            finally:
                self._last_end = time.monotonic()
        finally:
            self._lock.release()


def _halve_or_fail(ids: list[str], queue: list[list[str]], run: _Run, failure: str,
                   why: str | None) -> None:
    """A batch that cannot be answered as a whole: ask for its halves instead (first in
    ``queue``), or, for a single id, record ``failure`` for it."""
    if len(ids) == 1:
        run.failed[ids[0]] = failure
        return
    mid = len(ids) // 2
    if why is not None:
        log.info("%s; splitting the batch of %d", why, len(ids))
    queue[:0] = [ids[:mid], ids[mid:]]


class _Turn:
    """A lane's hold on the baton (see ``ArxivFetcher._run_batches``), released once."""

    def __init__(self, baton: threading.Lock, stop: threading.Event) -> None:
        while not baton.acquire(timeout=0.05):
            if stop.is_set():
                raise _Stopped
        self._baton: threading.Lock | None = baton

    def release(self) -> None:
        baton, self._baton = self._baton, None
        if baton is not None:
            baton.release()


class _Order:
    """Turns taken in the order of tickets (see ``ArxivFetcher._run_batches``): a
    ticket's turn comes once every earlier ticket has been passed on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._passed: set[int] = set()

    def wait(self, ticket: int, stop: threading.Event) -> None:
        with self._cond:
            while self._next < ticket:
                if stop.is_set():
                    raise _Stopped
                self._cond.wait(0.05)

    def pass_on(self, ticket: int) -> None:
        """Done with ``ticket`` (its turn taken, or never to be): later ones may go."""
        with self._cond:
            if ticket < self._next:
                return
            self._passed.add(ticket)
            while self._next in self._passed:
                self._passed.discard(self._next)
                self._next += 1
            self._cond.notify_all()


_GATES: dict[str, _Gate] = {}
_GATES_LOCK = threading.Lock()


def _gate_for(url: str) -> _Gate:
    parts = urlsplit(url)
    key = f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    with _GATES_LOCK:
        return _GATES.setdefault(key, _Gate())


# -- the session -------------------------------------------------------------------------


@dataclass
class _Exchange:
    """One HTTP reply as received (the body already capped and read)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Watchdog:
    """The total deadline of one request: past it, the request's sockets are shut down.

    ``requests`` only has a timeout per socket operation, so a server that sends one
    byte a second (slowloris), in the headers or the body, is never cut off by it.
    The watchdog thread shuts down every connection the request used once
    ``seconds`` have passed; the blocked read then fails at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._conns: list[BaseHTTPConnection] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arxiv-deadline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, conn: BaseHTTPConnection) -> None:
        with self._lock:
            self._conns.append(conn)

    def cancel(self) -> None:
        self._done.set()

    def _run(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.fired = True
        # Until the request gives up: a connection still being set up at the deadline
        # has no socket yet, so keep shutting down whatever appears.
        while True:
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            if self._done.wait(0.05):
                return


_WATCH = threading.local()


def _watch(conn: BaseHTTPConnection) -> None:
    dog: _Watchdog | None = getattr(_WATCH, "dog", None)
    if dog is not None:
        dog.watch(conn)


def _sent() -> None:
    """The request is on the wire: call this thread's ``sent`` hook, once."""
    hook: Callable[[], None] | None = getattr(_WATCH, "sent", None)
    if hook is not None:
        _WATCH.sent = None
        hook()


class _SignallingHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        _sent()
        return super().getresponse()


class _SignallingHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        _sent()
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _SignallingHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        conn = super()._get_conn(timeout)
        _watch(conn)
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _SignallingHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        conn = super()._get_conn(timeout)
        _watch(conn)
        return conn


def _watched(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections the current request's :class:`_Watchdog` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(*args, **kwargs)
        return _watched(manager)


class _NoAuth(requests.auth.AuthBase):
    """Strips any Authorization header; also keeps requests from reading ``~/.netrc``."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


#: The keywords of ``requests.Session.request`` that :class:`_ArxivSession` honours.
_REQUEST_KEYWORDS = frozenset({"params", "headers", "auth", "timeout", "stream",
                               "allow_redirects"})


class _ArxivSession(requests.Session):
    """A session that is safe to hand to ``arxiv.Client``: see the module docstring."""

    def __init__(self, *, timeout: float, max_bytes: int, user_agent: str, gate: _Gate,
                 min_interval: float, stop: Callable[[], threading.Event]) -> None:
        super().__init__()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.gate = gate
        self.min_interval = min_interval
        self._stop = stop
        self.sent = 0
        self._local = threading.local()  # two lanes share the session: see ArxivFetcher
        self.headers["User-Agent"] = user_agent
        self.mount("http://", _WatchedAdapter())
        self.mount("https://", _WatchedAdapter())

    @property
    def last(self) -> _Exchange | None:
        """This thread's last exchange (the reply the package does not keep)."""
        last: _Exchange | None = getattr(self._local, "last", None)
        return last

    @last.setter
    def last(self, value: _Exchange | None) -> None:
        self._local.last = value

    def on_good_reply(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook`` (in this thread) once a 200 with a readable feed has arrived,
        before the package parses it."""
        self._local.hook = hook

    def before_send(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook`` (in this thread) before each request is sent, once it has been
        prepared, ahead of the gate."""
        self._local.before = hook

    @staticmethod
    def on_sent(hook: Callable[[], None] | None) -> None:
        """Call ``hook`` (in this thread) once the next request has been sent, while its
        reply is awaited."""
        _WATCH.sent = hook

    def request(self, method: str | bytes, url: str | bytes,
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = (self.timeout, self.timeout)
        kwargs["headers"] = {"User-Agent": self.user_agent, "Accept": "application/atom+xml"}
        kwargs["auth"] = _NoAuth()
        kwargs["stream"] = True
        kwargs["allow_redirects"] = False  # followed by hand: capped, timed, same host only
        if args or not kwargs.keys() <= _REQUEST_KEYWORDS:
            # the arxiv package sends a plain GET: nothing else is prepared by _prepare
            raise TypeError("_ArxivSession sends GET requests with params and headers only")
        url = url if isinstance(url, str) else url.decode("utf-8", "replace")
        self.last = None
        # Prepared before the turn is taken: the lane waiting for it then only sends.
        prepared = self._prepare(method, url, kwargs)
        before = getattr(self._local, "before", None)
        if before is not None:
            before()
        with self.gate.turn(self.min_interval, self._stop()):
            # http.timeout bounds the whole exchange, redirects included: see _Watchdog.
            dog = _Watchdog(self.timeout)
            _WATCH.dog = dog
            dog.start()
            try:
                resp, body = self._follow(method, url, prepared, kwargs)
                if dog.fired:  # a close-delimited body cut short reads as complete
                    raise requests.exceptions.ReadTimeout("deadline")
            except requests.exceptions.RequestException:
                if dog.fired:
                    raise requests.exceptions.ReadTimeout(
                        f"the reply took longer than {self.timeout:g} s in all") from None
                raise
            finally:
                dog.cancel()
                _WATCH.dog = None
        resp._content = body
        self.last = _Exchange(resp.status_code, dict(resp.headers), body)
        log.debug("arxiv %s %s -> %d (%d bytes)", method if isinstance(method, str) else
                  method.decode(), _short_url(url), resp.status_code, len(body))
        if resp.status_code == 200:
            # Checked here, for every page, because the arxiv parser recovers from broken
            # XML (a truncated reply would pass as a short or partial answer) and drops
            # Error entries (they have no <published>).
            error = _error_entry(body)
            if error is not None:
                raise _ErrorFeed(*error)
            problem = _not_a_feed(body)
            if problem is not None:
                raise _BadBody(problem)
            hook = getattr(self._local, "hook", None)
            if hook is not None:
                self._local.hook = None
                hook()
        return resp

    def _prepare(self, method: str | bytes, url: str,
                 kwargs: dict[str, Any]) -> tuple[requests.PreparedRequest, dict[str, Any]]:
        """The request and the arguments of ``send``, as ``requests.Session.request``
        makes them (the arxiv package passes only a URL and headers, which
        :meth:`request` replaces)."""
        method = method.decode() if isinstance(method, bytes) else method
        prep = self.prepare_request(requests.Request(
            method=method.upper(), url=url, headers=kwargs["headers"],
            params=kwargs.get("params") or {}, auth=kwargs["auth"]))
        settings = self.merge_environment_settings(prep.url, {}, kwargs["stream"], None, None)
        return prep, {"timeout": kwargs["timeout"], "allow_redirects": False, **settings}

    def _follow(self, method: str | bytes, url: str,
                prepared: tuple[requests.PreparedRequest, dict[str, Any]],
                kwargs: dict[str, Any]) -> tuple[requests.Response, bytes]:
        """Send the request, following up to :data:`MAX_REDIRECTS` same-host redirects.

        requests would follow 30 hops, none of them spaced by the gate, reading each
        redirect body without a cap; a redirect loop then costs 30 requests per try.
        """
        current = url
        started = time.monotonic()
        for hop in range(MAX_REDIRECTS + 1):
            self.sent += 1
            if hop:
                prepared = self._prepare(method, current, kwargs)
            prep, send_kwargs = prepared
            resp = self.send(prep, **send_kwargs)
            try:
                body = self._read_capped(resp, started)
            finally:
                resp.close()
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp, body
            target = urljoin(current, location)
            if not _same_server(current, target):
                host = quote_untrusted(urlsplit(target).netloc or "?", 80)
                raise _Redirected(f"HTTP {resp.status_code} redirect to another host ({host}); "
                                  "not followed", resp.status_code)
            log.debug("arxiv: HTTP %d redirect to %s", resp.status_code,
                      _short_url(quote_untrusted(target, 160)))
            current = target
            kwargs["params"] = None  # the Location is the whole new URL
        raise _Redirected(f"more than {MAX_REDIRECTS} redirects (a redirect loop?)",
                          resp.status_code)

    def _read_capped(self, resp: requests.Response, started: float) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge(f"reply of {declared} bytes exceeds http.max_bytes={self.max_bytes}")
        buf = bytearray()
        for chunk in resp.iter_content(chunk_size=64 * 1024):
            buf += chunk
            if len(buf) > self.max_bytes:
                raise _TooLarge(f"reply exceeds http.max_bytes={self.max_bytes}")
            if time.monotonic() - started > self.timeout:
                raise requests.exceptions.ReadTimeout(
                    f"reading the reply took longer than {self.timeout:g} s")
        return bytes(buf)


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


def _short_url(url: str | bytes) -> str:
    """The URL for a log line: path and the first ids of the query, never a whole batch."""
    text = url if isinstance(url, str) else url.decode("utf-8", "replace")
    return text if len(text) <= 160 else text[:157] + "..."


# -- one attempt -------------------------------------------------------------------------

_Kind = Literal["ok", "bad_id", "too_long", "transient", "final", "unreadable", "skipped"]


@dataclass
class _Reply:
    kind: _Kind
    message: str = ""
    results: list[Any] = field(default_factory=list)
    status: int | None = None
    retry_after: float | None = None
    bad_id: str | None = None


@dataclass
class _Run:
    """What one ``fetch`` call has learned, keyed by the id sent to arXiv."""

    records: dict[str, Paper] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    stop_reason: str | None = None
    rate_limit_reset: datetime | None = None
    emit: Callable[[dict[str, Paper]], None] | None = None


class ArxivFetcher:
    """Turns canonical arXiv ids into :class:`~enrich.models.Paper` records.

    One fetcher holds one HTTP session; :meth:`close` releases it. Calls to
    :meth:`fetch` on one fetcher are serialised.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._api_url = config.arxiv.api_url
        self._safe_url = _safe_url(self._api_url)
        self._stop_event = threading.Event()
        self._busy = threading.Lock()
        self.session = _ArxivSession(
            timeout=config.http.timeout,
            max_bytes=config.http.max_bytes,
            user_agent=config.http.user_agent or USER_AGENT,
            gate=_gate_for(self._api_url),
            min_interval=config.arxiv.min_interval,
            stop=lambda: self._stop_event,
        )
        self.client = self._make_client()
        self._lane_client: arxiv.Client | None = None

    def _make_client(self) -> arxiv.Client:
        client = arxiv.Client(page_size=self.config.arxiv.batch_size, delay_seconds=0.0,
                              num_retries=0)
        sep = "&" if "?" in self._api_url else "?"
        client.query_url_format = (
            self._api_url.replace("{", "{{").replace("}", "}}") + sep + "{}")
        client._session = self.session
        return client

    # -- public ------------------------------------------------------------------------

    async def fetch(self, ids: Sequence[str], *,
                    on_batch: BatchHook[Paper] | None = None) -> FetchResult[Paper]:
        """Fetch ``ids`` (canonical, without version) in a worker thread."""
        stop = threading.Event()
        hook: BatchHook[Paper] | None = None
        if on_batch is not None:
            loop = asyncio.get_running_loop()

            def hook(made: dict[str, Paper]) -> None:
                loop.call_soon_threadsafe(on_batch, made)

        try:
            return await asyncio.to_thread(self._fetch_sync, list(ids), stop, hook)
        except asyncio.CancelledError:
            stop.set()
            self._stop_event.set()
            raise

    def close(self) -> None:
        self._stop_event.set()
        self.session.close()

    # -- the work ----------------------------------------------------------------------

    def _fetch_sync(self, ids: list[str], stop: threading.Event,
                    on_batch: BatchHook[Paper] | None = None) -> FetchResult[Paper]:
        with self._busy:
            self._stop_event = stop
            sent_before = self.session.sent
            result: FetchResult[Paper] = FetchResult()
            keys_by_sent: dict[str, list[str]] = {}
            for key in dict.fromkeys(ids):
                sent = canonical_query_id(key)
                if sent is None:
                    result.failed[key] = f"not an arXiv id: {key!r}"
                    continue
                keys_by_sent.setdefault(sent, []).append(key)
            run = _Run()
            if on_batch is not None:
                hook = on_batch

                def emit(made: dict[str, Paper]) -> None:
                    hook({key: rec for sent, rec in made.items()
                          for key in keys_by_sent.get(sent, ())})

                run.emit = emit
            todo = list(keys_by_sent)
            size = self.config.arxiv.batch_size
            try:
                self._run_batches([todo[n:n + size] for n in range(0, len(todo), size)],
                                  run, stop)
            except _Stopped:
                done = run.records.keys() | run.failed.keys() | run.missing.keys()
                run.missing.update({s: "cancelled" for s in todo if s not in done})
            for sent, keys in keys_by_sent.items():
                for key in keys:
                    if sent in run.records:
                        result.records[key] = run.records[sent]
                    elif sent in run.failed:
                        result.failed[key] = run.failed[sent]
                    elif sent in run.missing:
                        result.missing[key] = run.missing[sent]
                    else:  # pragma: no cover - every id gets a verdict above
                        result.failed[key] = "no answer for this id"
            result.requests = self.session.sent - sent_before
            result.rate_limit_reset = run.rate_limit_reset
            log.info("arXiv: %d ids, %d requests, %d ok, %d not found, %d failed, %d missing",
                     len(ids), result.requests,
                     sum(r.status == "ok" for r in result.records.values()),
                     sum(r.status == "not_found" for r in result.records.values()),
                     len(result.failed), len(result.missing))
            return result

    def _run_batches(self, batches: list[list[str]], run: _Run, stop: threading.Event) -> None:
        """Settle the batches in two lanes, so that a reply is parsed while the next
        request is on the wire.

        Parsing a page of 100 entries takes about as long as a fast reply, and arXiv
        allows one request in flight, not one request and its parsing: the gate
        (one request at a time, spaced by ``min_interval``) is all the lanes share on
        the wire. A lane starts a new batch only once the batch before it has had a
        good reply (the *baton*), so a failing API still sees one batch retried and
        then nothing more, exactly as with one lane; follow-up requests of a batch
        (a split, a re-ask) need no baton. A lane takes its next batch and prepares the
        request before it waits for the baton, so that taking it is followed by the
        send alone; if the batch before stopped the run meanwhile, nothing is sent.
        """
        if len(batches) < 2:
            for batch in batches:
                self._settle(batch, run, stop, self.client)
            return
        if self._lane_client is None:
            self._lane_client = self._make_client()
        pending = enumerate(batches)
        take = threading.Lock()  # guards pending, handovers and lanes
        baton = threading.Lock()
        # A lane takes its batch before it waits for the baton: batches take the baton in
        # their order, whichever lane holds them.
        order = _Order()
        errors: list[BaseException] = []
        # A lane that passes the baton on waits, before it parses, until the other lane
        # has sent its request (or has none to send): otherwise the parsing holds the
        # GIL while the other lane prepares and sends, and each of its steps waits for
        # a switch of the GIL (5 ms) before it can go on.
        handovers: list[threading.Event] = []
        lanes = [2]

        def lane(client: arxiv.Client) -> None:
            try:
                while True:
                    with take:
                        ticket, batch = next(pending, (-1, None))
                        if batch is None:
                            lanes[0] -= 1
                            while handovers:  # no request of ours will follow theirs
                                handovers.pop().set()
                    if batch is None:
                        return
                    hold: list[_Turn] = []
                    handed: list[threading.Event] = []

                    def take_turn(hold: list[_Turn] = hold,
                                  handed: list[threading.Event] = handed,
                                  ticket: int = ticket) -> None:
                        # Called once the batch's request is prepared: the baton is taken
                        # as late as possible, and follow-up requests need none.
                        if hold:
                            return
                        order.wait(ticket, stop)
                        try:
                            hold.append(_Turn(baton, stop))
                        finally:
                            order.pass_on(ticket)
                        with take:
                            if handovers:
                                handed.append(handovers.pop())
                        if run.stop_reason is not None:  # the batch before ours stopped it
                            raise _Skipped
                        self.session.on_sent(handed[0].set if handed else None)

                    def hand_over(hold: list[_Turn] = hold) -> None:
                        sent = threading.Event()
                        with take:
                            waits = lanes[0] > 1
                            if waits:
                                handovers.append(sent)
                        hold[0].release()
                        if waits:
                            sent.wait(_HANDOVER_WAIT)

                    self.session.before_send(take_turn)
                    self.session.on_good_reply(hand_over)
                    try:
                        self._settle(batch, run, stop, client)
                    finally:
                        self.session.before_send(None)
                        self.session.on_good_reply(None)
                        self.session.on_sent(None)
                        order.pass_on(ticket)  # a batch that sent nothing gives its turn up
                        if hold:
                            hold[0].release()
                        if handed:
                            handed[0].set()
            except BaseException as exc:  # re-raised in the calling thread
                with take:
                    lanes[0] -= 1
                    while handovers:
                        handovers.pop().set()
                errors.append(exc)

        other = threading.Thread(target=lane, args=(self._lane_client,),
                                 name="enrich-arxiv-lane", daemon=True)
        other.start()
        lane(self.client)
        other.join()
        if errors:
            raise errors[0]

    def _settle(self, batch: list[str], run: _Run, stop: threading.Event,
                client: arxiv.Client) -> None:
        if run.stop_reason is not None:
            run.missing.update(dict.fromkeys(batch, run.stop_reason))
        else:
            self._resolve(batch, run, stop, client)

    def _resolve(self, batch: list[str], run: _Run, stop: threading.Event,
                 client: arxiv.Client) -> None:
        """Settle every id of ``batch``: a record, a failure, or missing."""
        queue: list[list[str]] = [batch]
        while queue:
            ids = queue.pop(0)
            if run.stop_reason is not None:
                run.missing.update(dict.fromkeys(ids, run.stop_reason))
                continue
            attempt = 0
            confirmed_empty = False
            while ids:
                reply = self._attempt(ids, client)
                if reply.kind == "skipped":  # not sent, the run stopped: see _run_batches
                    run.missing.update(dict.fromkeys(ids, run.stop_reason or "not attempted"))
                    break
                if reply.kind == "ok":
                    found, strays = self._match(reply.results, ids)
                    if not found and len(ids) > 1 and not confirmed_empty:
                        confirmed_empty = True
                        log.info("arXiv answered no entry for %d ids; asking once more", len(ids))
                        self._sleep(backoff(0, self.config.http.backoff,
                                            self.config.http.backoff_max), stop)
                        continue
                    now = datetime.now(UTC)
                    for i in ids:
                        if i in found:
                            run.records[i] = found[i]
                        elif strays:
                            # An answer about other papers says nothing about this one: a
                            # not_found verdict would be cached on the word of a broken reply.
                            run.failed[i] = ("arXiv answered with entries not asked for ("
                                             + ", ".join(strays[:3]) + ") and none for this id")
                        else:
                            run.records[i] = Paper(status="not_found", fetched_at=now)
                    if run.emit is not None:
                        run.emit({i: run.records[i] for i in ids if i in run.records})
                    break
                if reply.kind == "unreadable":
                    # A well-formed feed the arxiv package cannot read (a date that is not
                    # one, say): the same answer every time, so halve the batch until the
                    # id behind it stands alone, instead of failing 99 good ids with it.
                    _halve_or_fail(ids, queue, run, self._message(reply, attempt + 1),
                                   f"arXiv: {reply.message}")
                    break
                if reply.kind == "bad_id":
                    if reply.bad_id in ids:
                        run.failed[reply.bad_id] = f"arXiv says: {reply.message}"
                        ids = [i for i in ids if i != reply.bad_id]
                        attempt, confirmed_empty = 0, False
                        continue
                    _halve_or_fail(ids, queue, run, f"arXiv says: {reply.message}", None)
                    break
                if reply.kind == "too_long":
                    _halve_or_fail(ids, queue, run, self._message(reply, attempt + 1),
                                   "arXiv answered 414")
                    break
                if reply.kind == "final":
                    msg = self._message(reply, attempt + 1)
                    run.failed.update(dict.fromkeys(ids, msg))
                    if reply.status is not None:  # a status, not a body that is too large
                        self._trip(run, msg)
                    break
                # transient
                attempt += 1
                cap = self.config.http.backoff_max
                if reply.retry_after is not None and reply.retry_after > cap:
                    msg = (f"arXiv rate limit: HTTP {reply.status} asks to wait "
                           f"{reply.retry_after:.0f} s (more than http.backoff_max={cap:g} s); "
                           f"stopped fetching from {self._safe_url} for this run")
                    run.missing.update(dict.fromkeys(ids, msg))
                    run.rate_limit_reset = datetime.now(UTC) + timedelta(
                        seconds=reply.retry_after)
                    self._trip(run, msg)
                    break
                if attempt > self.config.http.max_retries:
                    msg = self._message(reply, attempt)
                    run.failed.update(dict.fromkeys(ids, msg))
                    self._trip(run, msg)
                    break
                wait = (reply.retry_after if reply.retry_after is not None
                        else backoff(attempt - 1, self.config.http.backoff, cap))
                log.info("arXiv: %s; retry %d/%d in %.2f s", reply.message, attempt,
                         self.config.http.max_retries, wait)
                self._sleep(wait, stop)

    def _attempt(self, ids: list[str], client: arxiv.Client) -> _Reply:
        """One request for ``ids``, classified; never raises for HTTP or network trouble."""
        search = arxiv.Search(id_list=ids, max_results=len(ids))
        client.page_size = len(ids)
        try:
            results = list(client.results(search))
        except arxiv.HTTPError as exc:
            return self._classify_status(int(exc.status))
        except arxiv.UnexpectedEmptyPageError:
            return _Reply("transient", "arXiv served an unexpected empty page")
        except _TooLarge as exc:
            return _Reply("final", str(exc))
        except _ErrorFeed as exc:
            return _Reply("bad_id", exc.message, status=200, bad_id=exc.named)
        except _BadBody as exc:
            return _Reply("transient", f"HTTP 200 with {exc}", status=200)
        except requests.exceptions.Timeout:
            return _Reply("transient", f"timed out after {self.config.http.timeout:g} s")
        except _Redirected as exc:
            return _Reply("final", str(exc), status=exc.status)
        except requests.exceptions.RequestException as exc:
            return _Reply("transient", f"connection failed ({type(exc).__name__})")
        except _Stopped:
            raise
        except _Skipped:
            return _Reply("skipped")
        except Exception as exc:  # the arxiv package's parser on a hostile feed
            detail = quote_untrusted(exc, 120)
            return _Reply("unreadable", f"a feed that cannot be read ({type(exc).__name__}: "
                          f"{detail})", status=200)
        return _Reply("ok", results=results, status=200)

    def _classify_status(self, status: int) -> _Reply:
        last = self.session.last
        body = last.body if last is not None else b""
        headers = last.headers if last is not None else {}
        error = _error_entry(body)
        if error is not None:
            return _Reply("bad_id", error[1], status=status, bad_id=error[0])
        if status == 414:
            return _Reply("too_long", "HTTP 414 (URL too long)", status=status)
        if is_transient(status) or status >= 500:
            text = body[:60].decode("utf-8", "replace").strip()
            detail = f" {text!r}" if text and not text.startswith("<") else ""
            return _Reply("transient", f"HTTP {status}{detail}", status=status,
                          retry_after=retry_after_seconds(_lower(headers)))
        return _Reply("final", f"HTTP {status}", status=status)

    def _match(self, results: list[Any], ids: list[str]) -> tuple[dict[str, Paper], list[str]]:
        """Records by asked id, and the (quoted) ids of entries nobody asked for."""
        wanted = set(ids)
        now = datetime.now(UTC)
        found: dict[str, Paper] = {}
        strays: list[str] = []
        for r in results:
            key, version = split_entry_id(str(r.entry_id))
            if key not in wanted:
                strays.append(quote_untrusted(key, 40))
                log.debug("arXiv returned %s, which was not asked for", strays[-1])
                continue
            found[key] = _paper(r, key, version, now)
        return found, strays

    def _message(self, reply: _Reply, attempts: int) -> str:
        plural = "s" if attempts != 1 else ""
        return (f"arXiv query failed: {reply.message} from {self._safe_url} "
                f"({attempts} attempt{plural})")

    @staticmethod
    def _trip(run: _Run, msg: str) -> None:
        if run.stop_reason is None:
            run.stop_reason = f"not attempted: an earlier arXiv batch failed ({msg})"

    @staticmethod
    def _sleep(seconds: float, stop: threading.Event) -> None:
        if seconds > 0 and stop.wait(seconds):
            raise _Stopped


# -- helpers -----------------------------------------------------------------------------


def canonical_query_id(key: str) -> str | None:
    """The id to put in ``id_list`` for ``key``; None if it cannot be one.

    The version is dropped (we want the latest) and an old-style subject class too:
    ``math.GT/0309136`` -> ``math/0309136``, the only form arXiv documents as canonical.
    Anything else without spaces or commas is sent as is, for arXiv to judge.
    """
    raw = key.strip()
    if not raw or any(c in raw for c in ", \t\r\n"):
        return None
    m = _NEW_ID.match(raw)
    if m:
        return m.group(1)
    m = _OLD_ID.match(raw)
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    return raw


def split_entry_id(entry_id: str) -> tuple[str, str | None]:
    """``http://arxiv.org/abs/math/0309136v2`` -> ``("math/0309136", "v2")``."""
    short = entry_id.strip().split("/abs/", 1)[-1]
    m = _VERSION.match(short)
    if m is None:  # pragma: no cover - the pattern matches any non-empty string
        return short, None
    return m.group(1), (f"v{m.group(3)}" if m.group(3) else None)


def _paper(r: Any, key: str, version: str | None, now: datetime) -> Paper:
    pdf = str(r.pdf_url) if r.pdf_url else f"https://arxiv.org/pdf/{key}"
    return Paper(
        status="ok",
        title=_one_line(r.title),
        authors=[n for a in r.authors if (n := _one_line(a.name))],
        abstract=clean_abstract(r.summary or ""),
        published=r.published,
        updated=r.updated,
        latest_version=version,
        primary_category=r.primary_category or None,
        categories=list(r.categories),
        doi=_one_line(r.doi),
        journal_ref=_one_line(r.journal_ref),
        comment=_one_line(r.comment),
        abs_url=f"https://arxiv.org/abs/{key}",
        pdf_url=re.sub(r"^http://(?=(?:export\.)?arxiv\.org/)", "https://", pdf),
        fetched_at=now,
    )


def _one_line(text: str | None) -> str | None:
    if text is None:
        return None
    out = " ".join(text.split())
    return out or None


def clean_abstract(summary: str) -> str:
    """Unwrap arXiv's hard line breaks, keeping paragraphs.

    A blank line, or a line break followed by an indented line (how arXiv abstracts mark
    a new paragraph), separates paragraphs; other whitespace collapses to one space.
    """
    paragraphs = re.split(r"\n[ \t]*\n|\n(?=[ \t]{2,}\S)", summary.strip())
    return "\n\n".join(p for p in (" ".join(q.split()) for q in paragraphs) if p)


def _error_entry(body: bytes) -> tuple[str | None, str] | None:
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


def _not_a_feed(body: bytes) -> str | None:
    """Why ``body`` is not a complete Atom feed, or None if it is one.

    The arxiv parser recovers from broken XML and returns whatever entries it got, so
    a truncated reply would pass as a short answer: check well-formedness ourselves.
    """
    if body.lstrip().startswith(b"Rate exceeded"):
        return "the plain-text throttle reply 'Rate exceeded.'"
    if b"<!DOCTYPE" not in body:
        # Fast path for every page: expat alone, without building a tree (1 ms instead
        # of 5 for 100 entries). Without a DTD expat and ElementTree accept the same
        # documents; anything else takes the ElementTree path below for its message.
        tag = _root_if_well_formed(body)
        if tag is not None:
            return None if tag == f"{_ATOM}feed" else (
                f"a body that is not an Atom feed (root <{tag}>)")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return f"a body that is not well-formed XML ({len(body)} bytes: {exc})"
    if root.tag != f"{_ATOM}feed":
        return f"a body that is not an Atom feed (root <{root.tag}>)"
    return None


def _root_if_well_formed(body: bytes) -> str | None:
    """The root element's tag as ElementTree names it, or None if expat rejects ``body``."""
    roots: list[str] = []
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag: str, attrs: Any) -> None:
        roots.append("{" + tag if "}" in tag else tag)
        parser.StartElementHandler = None  # only the root matters: parse the rest in C

    parser.StartElementHandler = start
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        return None
    return roots[0] if roots else None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: fit for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
