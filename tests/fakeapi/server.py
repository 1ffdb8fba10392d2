"""A small threaded HTTP server on 127.0.0.1 with request counting and fault injection.

Each fake API subclasses :class:`FakeHandler` and implements ``route``.
Faults are queued per endpoint and consumed one per request, so a test says
exactly which request misbehaves::

    srv.faults.add("query", "status", status=503, headers={"Retry-After": "0"})
    srv.faults.add("query", "reset")          # connection reset, no answer
    srv.faults.add("query", "hang", seconds=5) # never answers in time
    srv.faults.add("query", "garbage")         # 200 with a body that is not the format
    srv.faults.add("query", "truncate")        # the right headers, half a body
    srv.faults.add("query", "huge", size=12 * 2**20)          # a 200 far over any size cap
    srv.faults.add("query", "drip", interval=0.1, seconds=30)  # slowloris: a byte at a time
    srv.faults.add("*", "redirect")            # 301 to the same URL (a loop while queued)
    srv.faults.add("*", "redirect", headers={"Location": "http://elsewhere/x"})
    srv.faults.add("query", "block", event=ev)  # holds the answer until ``ev.set()``

Every request is logged (endpoint, method, path, query, headers, credential, the time it
came in and the time its answer was done) in ``srv.requests``;
``srv.count(endpoint=None, credential=None)`` counts them.
``latency`` (seconds): every answer leaves that long after its request came in
(the fake's own work included), for benchmarks.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    kind: str  # status | reset | hang | garbage | truncate | slow | block | huge | drip | redirect
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    size: int = 0
    """``huge``: body bytes to send (default 12 MiB)."""
    declare: bool = True
    """``huge``: announce the size in Content-Length (False: no length, close-delimited)."""
    interval: float = 0.0
    """``drip``: seconds between bytes (default 0.1)."""
    whole: bool = False
    """``drip``: drip the status line and headers too, not only the body."""
    event: threading.Event | None = None
    """``block``: the answer waits until this event is set (at most ``seconds``, default
    30), then goes out normally. Synchronises a test with a request in flight, no sleep."""


class FaultQueue:
    """Faults waiting for the next requests of an endpoint (``"*"`` matches any)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()

    def add(self, endpoint: str, kind: str, times: int = 1, **kw: Any) -> None:
        with self._lock:
            for _ in range(times):
                # each fault gets its own headers dict: applying one may pop from it
                own: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                                       for k, v in kw.items()}
                self._queues[endpoint].append(Fault(kind=kind, **own))

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            for key in (endpoint, "*"):
                q = self._queues.get(key)
                if q:
                    return q.popleft()
        return None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())


@dataclass
class LoggedRequest:
    endpoint: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    credential: str
    body: bytes
    time: float
    fault: str | None = None
    """The kind of fault this request was answered with, if any."""
    ended: float | None = None
    """``time.time()`` when the handler was done with the request (None while in flight)."""


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # listen() backlog: the default of 5 drops the SYNs of a burst of concurrent
    # connections, which then fail with a connect timeout the test did not ask for
    request_queue_size = 128

    def __init__(self, handler: type[FakeHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.faults = FaultQueue()
        self.requests: list[LoggedRequest] = []
        self.latency = 0.0
        self.handler_errors = 0
        #: Most requests being answered at once, and the client ports they came from
        #: (one port per connection): what "one connection at a time" is checked by.
        self.peak_answering = 0
        self.client_ports: set[int] = set()
        self._answering = 0
        self._log_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # lifecycle
    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # accounting
    def log(self, req: LoggedRequest) -> None:
        with self._log_lock:
            self.requests.append(req)

    def count(self, endpoint: str | None = None, credential: str | None = None,
              status: int | None = None) -> int:
        with self._log_lock:
            return sum(
                1 for r in self.requests
                if (endpoint is None or r.endpoint == endpoint)
                and (credential is None or r.credential == credential)
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer (what faults provoke) is no error worth a
        traceback on stderr, where it would mix with the output of the run under test."""
        self.handler_errors += 1

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()


class FakeHandler(BaseHTTPRequestHandler):
    """Base handler: parses the request, logs it, applies a queued fault or routes it."""

    server: FakeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms stall

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    # subclasses implement these
    def endpoint_of(self, method: str, path: str) -> str:
        return path

    def credential_of(self) -> str:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return "anon"
        return auth.split(None, 1)[-1]

    def route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        raise NotImplementedError

    def garbage_body(self) -> tuple[str, bytes]:
        return "text/html; charset=utf-8", b"<html><body><h1>502 Bad Gateway</h1></body></html>"

    # plumbing
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _handle(self, method: str) -> None:
        srv = self.server
        with srv._log_lock:
            srv._answering += 1
            srv.peak_answering = max(srv.peak_answering, srv._answering)
            srv.client_ports.add(int(self.client_address[1]))
        self._logged: LoggedRequest | None = None
        try:
            self._answer(method)
        finally:
            with srv._log_lock:
                srv._answering -= 1
                if self._logged is not None:
                    self._logged.ended = time.time()

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = parse_qs(parts.query, keep_blank_values=True)
        if method == "POST" and self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"):
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
                query.setdefault(k, []).extend(v)
        endpoint = self.endpoint_of(method, parts.path)
        logged = LoggedRequest(endpoint, method, parts.path, query, dict(self.headers),
                               self.credential_of(), body, time.time())
        self._logged = logged
        self.server.log(logged)
        # The answer leaves ``latency`` after the request came in, however long the
        # fake took to build it: an API that answers in 50 ms, not 50 ms plus our work.
        self._due = time.monotonic() + self.server.latency if self.server.latency else None
        fault = self.server.faults.take(endpoint)
        if fault is not None:
            logged.fault = fault.kind
            self._wait_due()
        if fault is not None and self._apply_fault(fault):
            return
        self.route(method, parts.path, query, body)

    def _apply_fault(self, fault: Fault) -> bool:
        """Apply a fault; False means 'then answer normally' (e.g. after a slow start)."""
        if fault.kind == "status":
            body = fault.body or json.dumps({"message": "fault"}).encode()
            ctype = fault.headers.pop("Content-Type", None) or (
                "text/plain" if not body.startswith(b"{") else "application/json")
            self.send(fault.status, body, ctype, fault.headers)
            return True
        if fault.kind == "reset":
            self.close_connection = True
            linger = struct.pack("ii", 1, 0)
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()
            except OSError:
                pass
            return True
        if fault.kind == "hang":
            time.sleep(fault.seconds or 30)
            self.close_connection = True
            return True
        if fault.kind == "garbage":
            ctype, body = (fault.headers.get("Content-Type", "text/html"), fault.body) \
                if fault.body else self.garbage_body()
            self.send(200, body, ctype)
            return True
        if fault.kind == "truncate":
            body = fault.body or b"<?xml version='1.0'?><feed><entry><id>"
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body) * 4))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return True
        if fault.kind == "slow":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "block":
            if fault.event is None:
                raise ValueError("a 'block' fault needs event=threading.Event()")
            fault.event.wait(fault.seconds or 30.0)
            return False
        if fault.kind == "huge":
            self._send_huge(fault)
            return True
        if fault.kind == "drip":
            self._drip(fault)
            return True
        if fault.kind == "redirect":
            # To the very URL asked (a loop for as long as such faults are queued),
            # or wherever ``headers["Location"]`` says (another host, say).
            headers = dict(fault.headers)
            headers.setdefault("Location", self.path)
            status = fault.status if fault.status in (301, 302, 303, 307, 308) else 301
            self.send(status, b'{"message": "Moved Permanently"}', "application/json", headers)
            return True
        raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _send_huge(self, fault: Fault) -> None:
        """A 200 of ``fault.size`` bytes (12 MiB by default), sent as fast as the client reads.

        The body starts like the real format (``fault.body``, else a JSON string) so that
        only its size is wrong; without ``declare`` there is no Content-Length and the
        connection closes at the end, so a client cannot refuse it up front.
        """
        size = fault.size or 12 * 2**20
        head = (fault.body or b'{"message": "')[:size]
        ctype = fault.headers.get("Content-Type", "application/json")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if fault.declare:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"A" * 65536
        try:
            self.wfile.write(head)
            sent = len(head)
            while sent < size:
                part = chunk[: size - sent]
                self.wfile.write(part)
                sent += len(part)
            self.wfile.flush()
        except OSError:
            pass  # the client gave up, as it should

    def _drip(self, fault: Fault) -> None:
        """Slowloris: a 200 sent one byte every ``fault.interval`` seconds (0.1 by default).

        Each byte arrives well within any read timeout, so only a total deadline per
        request stops a client from waiting for the whole body; ``fault.seconds`` (30 by
        default) bounds the server side. With ``whole`` the status line and headers drip
        too.
        """
        ctype, body = self.garbage_body()
        if fault.body:
            body = fault.body
            ctype = fault.headers.get("Content-Type", ctype)
        body = body + b" " * 4096  # long enough to outlast any sane deadline
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        self.close_connection = True
        interval = fault.interval or 0.1
        stop = time.monotonic() + (fault.seconds or 30.0)
        payload = head + body
        try:
            if not fault.whole:
                self.wfile.write(head)
                self.wfile.flush()
                payload = body
            for i in range(len(payload)):
                if time.monotonic() > stop:
                    break
                self.wfile.write(payload[i:i + 1])
                self.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass  # the client hung up: what a client should do

    def _wait_due(self) -> None:
        due, self._due = getattr(self, "_due", None), None
        if due is not None and (wait := due - time.monotonic()) > 0:
            time.sleep(wait)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._wait_due()
        super().send_response(code, message)

    def send(self, status: int, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
