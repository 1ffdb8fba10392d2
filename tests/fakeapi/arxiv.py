"""A fake arXiv query API (``/api/query``) that answers like the real one, warts included.

The feed format follows recordings of the live API made in 2026 (lukasschwab/arxiv.py
``tests/fixtures``): Atom 1.0 with the ``opensearch`` and ``arxiv`` namespaces, a feed
title ``arXiv Query: ...``, entry ids ``http://arxiv.org/abs/IDvN`` while entry links
are ``https://arxiv.org/abs|pdf/IDvN``.

Behaviours a fetcher must survive, all on by default because the real API has them:

- entries come back sorted by ``<published>`` (newest first), *not* in ``id_list`` order;
- a well-formed id that does not exist is silently left out of a 200 reply;
- ``max_results`` defaults to 10: a longer ``id_list`` is silently truncated;
- one malformed id fails the whole request: HTTP 400 with a single Error entry
  (``#incorrect_id_format_for_X``, naming the first bad id; whether the live API fails
  the whole batch is unverified, this is the likely and harder case);
  ``srv.error_as_200 = True`` gives the older shape (the same feed with 200);
- an old-style id with a subject class (``math.GT/0309136``) counts as malformed, so the
  fetcher must send the canonical ``math/0309136`` (real behaviour unverified; this is the
  strict reading);
- a GET whose request target is longer than ``srv.max_url_length`` (8000 characters,
  about Apache's 8190-byte request-line limit: 100 ids pass, the 642 of
  lukasschwab/arxiv.py#15 do not) is answered 414; POST has no such limit;
- faults from the base queue (``status``, ``reset``, ``hang``, ``garbage``, ``truncate``,
  ``slow``) plus ``empty``: a 200 feed with ``totalResults`` 0 and no entries, the
  sporadic glitch behind arxiv.py's ``UnexpectedEmptyPageError``.
  ``srv.rate_limit()`` queues the throttle answer: 429 with the plain-text body
  ``Rate exceeded.``;
- ``srv.miscount = True``: ``totalResults`` counts the ids asked for, found or not (a
  short page, as the old feed gave).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import pytest

from enrich.config import Config

from .server import FakeHandler, FakeServer, Fault

ATOM_NS = "http://www.w3.org/2005/Atom"
ARXIV_NS = "http://arxiv.org/schemas/atom"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"

#: What the fake accepts as an id: new style (loosely, like the live API, which answers
#: ``0000.0000`` with an empty 200) and old style *without* a subject class.
_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(v\d+)?$")
_OLD_ID = re.compile(r"^([a-z]+(?:-[a-z]+)*/\d{7})(v\d+)?$")

_WORDS = ("sparse", "attention", "kernel", "graph", "quantum", "lattice", "diffusion",
          "transformer", "inference", "scaling", "memory", "retrieval", "causal", "robust",
          "streaming", "compiler", "tensor", "federated", "spectral", "latent")
_NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Kurt Gödel", "Emmy Noether",
          "John von Neumann", "Barbara Liskov", "Claude Shannon", "Edsger Dijkstra",
          "Frances Allen", "Donald Knuth", "Leslie Lamport", "Zhang Wei", "Li Na")
_CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "cs.DC", "stat.ML", "math.OC", "quant-ph")


@dataclass
class FakePaper:
    """One paper as the fake knows it; ``versions`` dated one week apart from ``published``."""

    id: str
    title: str
    authors: list[str | tuple[str, str]]
    abstract: str
    versions: int = 1
    published: datetime = field(default_factory=lambda: datetime(2023, 5, 16, 17, 0, tzinfo=UTC))
    primary_category: str = "cs.LG"
    categories: list[str] = field(default_factory=list)
    comment: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    pdf_link: bool = True
    """False reproduces the 2025-11 glitch where the ``title="pdf"`` link went missing."""

    def version_date(self, n: int) -> datetime:
        return self.published + timedelta(days=7 * (n - 1), hours=n - 1)


def split_version(raw: str) -> tuple[str, int | None] | None:
    """``(canonical id, version or None)`` for an id the fake accepts, else None (malformed)."""
    m = _NEW_ID.match(raw) or _OLD_ID.match(raw)
    if m is None:
        return None
    return m.group(1), (int(m.group(2)[1:]) if m.group(2) else None)


class ArxivHandler(FakeHandler):
    server: FakeArxiv

    def endpoint_of(self, method: str, path: str) -> str:
        return "query" if path.rstrip("/") == "/api/query" else path

    def garbage_body(self) -> tuple[str, bytes]:
        return "text/html; charset=utf-8", (
            b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
            b"<body><h1>Service Unavailable</h1><p>Please try again later.</p></body></html>")

    def _apply_fault(self, fault: Fault) -> bool:
        if fault.kind == "empty":
            self.send(200, self.server.feed_xml(query={}, entries=[], total=0), CONTENT_TYPE)
            return True
        return super()._apply_fault(fault)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        srv = self.server
        if self.endpoint_of(method, path) != "query" or method not in ("GET", "POST"):
            self.send(404, b"Not Found", "text/plain; charset=utf-8")
            return
        if method == "GET" and len(self.path) > srv.max_url_length:
            self.send(414, b"<html><body><h1>414 Request-URI Too Long</h1></body></html>",
                      "text/html; charset=iso-8859-1")
            return
        status, xml = srv.answer(query)
        self.send(status, xml, CONTENT_TYPE)


class FakeArxiv(FakeServer):
    """The fake ``export.arxiv.org``. ``srv.url + "/api/query"`` is the API URL."""

    def __init__(self) -> None:
        super().__init__(ArxivHandler)
        self.papers: dict[str, FakePaper] = {}
        self.error_as_200 = False
        self.error_names_id = True
        """False: the Error entry says only ``incorrect id format`` (forces a bisecting client)."""
        self.max_url_length = 8000
        self.scramble = True
        """Sort entries by date (newest first) instead of keeping the requested order."""
        self.miscount = False
        """Count every id asked for in ``totalResults``, found or not (the old feed's
        style): ``totalResults`` then exceeds the entries served, which the arxiv
        package's client reads as a short page and asks for the next one."""
        self._papers_lock = threading.Lock()
        self._next_synthetic = 0

    @property
    def api_url(self) -> str:
        return self.url + "/api/query"

    # -- filling ---------------------------------------------------------------------------

    def add_paper(self, id: str, *, title: str = "A paper", authors: Sequence[str | tuple[str, str]]
                  = ("Ada Lovelace",), abstract: str = "An abstract.", versions: int = 1,
                  published: datetime | None = None, primary_category: str = "cs.LG",
                  categories: Sequence[str] | None = None, comment: str | None = None,
                  doi: str | None = None, journal_ref: str | None = None,
                  pdf_link: bool = True) -> FakePaper:
        """Add (or replace) a paper under its canonical id (``math/0309136``, no version).

        An author is a name, or ``(name, affiliation)``.
        """
        parsed = split_version(id)
        if parsed is None or parsed[1] is not None:
            raise ValueError(f"add_paper wants a canonical id without version, got {id!r}")
        cats = list(categories) if categories is not None else [primary_category]
        if primary_category not in cats:
            cats.insert(0, primary_category)
        paper = FakePaper(
            id=id, title=title, authors=list(authors), abstract=abstract, versions=versions,
            published=published or datetime(2023, 5, 16, 17, 0, tzinfo=UTC),
            primary_category=primary_category, categories=cats, comment=comment, doi=doi,
            journal_ref=journal_ref, pdf_link=pdf_link)
        with self._papers_lock:
            self.papers[id] = paper
        return paper

    def add_synthetic(self, n: int, *, seed: int = 0) -> list[str]:
        """Add ``n`` synthetic papers with valid new-style ids; return the ids in order.

        Publication dates are shuffled, so the fake's date order differs from id order.
        """
        rng = random.Random(seed + self._next_synthetic)
        ids: list[str] = []
        for _ in range(n):
            k = self._next_synthetic
            self._next_synthetic += 1
            yymm = f"{24 + (k // 90000) % 70:02d}{(k // 7500) % 12 + 1:02d}"
            pid = f"{yymm}.{10000 + k % 90000:05d}"
            words = rng.sample(_WORDS, 4)
            cat = rng.choice(_CATEGORIES)
            self.add_paper(
                pid,
                title=f"{words[0].title()} {words[1]} for {words[2]} {words[3]}",
                authors=rng.sample(_NAMES, rng.randint(1, 5)),
                abstract=" ".join(
                    f"We study {rng.choice(_WORDS)} {rng.choice(_WORDS)} in setting {i}."
                    for i in range(rng.randint(3, 8))),
                versions=rng.randint(1, 4),
                published=datetime(2020, 1, 1, tzinfo=UTC)
                + timedelta(minutes=rng.randint(0, 5 * 365 * 24 * 60)),
                primary_category=cat,
                categories=sorted({cat, rng.choice(_CATEGORIES)}),
                comment=f"{rng.randint(4, 40)} pages" if rng.random() < 0.5 else None,
            )
            ids.append(pid)
        return ids

    # -- faults ----------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: float | str | None = None) -> None:
        """Queue arXiv's throttle answer: 429 with the plain-text body ``Rate exceeded.``."""
        headers = {"Content-Type": "text/plain"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        for _ in range(times):
            self.faults.add("query", "status", status=429, headers=dict(headers),
                            body=b"Rate exceeded.")

    def empty_page(self, times: int = 1) -> None:
        """Queue the sporadic glitch: 200, ``totalResults`` 0, no entries."""
        self.faults.add("query", "empty", times=times)

    # -- inspection ------------------------------------------------------------------------

    def id_lists(self) -> list[list[str]]:
        """The ``id_list`` of every logged query request, split on commas."""
        out = []
        for r in self.requests:
            if r.endpoint == "query":
                raw = ",".join(r.query.get("id_list", []))
                out.append([i for i in raw.split(",") if i])
        return out

    # -- answering -------------------------------------------------------------------------

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """Status and Atom body for one query, like the real API."""
        raw_ids = [i.strip() for i in ",".join(query.get("id_list", [])).split(",") if i.strip()]
        try:
            start = int(_first(query, "start", "0"))
            max_results = int(_first(query, "max_results", "10"))
        except ValueError:
            return 400, self.error_xml("start_or_max_results_not_an_integer",
                                       "start and max_results must be integers")
        if start < 0 or max_results < 0 or max_results > 30000:
            return 400, self.error_xml("max_results_out_of_range",
                                       "max_results must be between 0 and 30000")
        wanted: list[tuple[str, int | None]] = []
        for raw in raw_ids:
            parsed = split_version(raw)
            if parsed is None:
                status = 200 if self.error_as_200 else 400
                if not self.error_names_id:
                    return status, self.error_xml("incorrect_id_format", "incorrect id format")
                return status, self.error_xml(f"incorrect_id_format_for_{raw}",
                                              f"incorrect id format for {raw}")
            wanted.append(parsed)
        with self._papers_lock:
            papers = dict(self.papers)
        found: list[tuple[FakePaper, int]] = []
        seen: set[tuple[str, int]] = set()
        if wanted:
            for pid, version in wanted:
                paper = papers.get(pid)
                if paper is None:
                    continue
                v = version or paper.versions
                if v < 1 or v > paper.versions or (pid, v) in seen:
                    continue
                seen.add((pid, v))
                found.append((paper, v))
        else:
            found = [(p, p.versions) for p in papers.values()]
        term = _first(query, "search_query", "").strip()
        if term:
            found = [(p, v) for p, v in found if _matches(p, term)]
        if self.scramble:
            found.sort(key=lambda pv: (pv[0].published, pv[0].id), reverse=True)
        page = found[start:start + max_results]
        total = max(len(found), len(wanted)) if self.miscount else len(found)
        return 200, self.feed_xml(query, [self.entry_xml(p, v) for p, v in page], total)

    def feed_xml(self, query: dict[str, list[str]], entries: Sequence[str], total: int) -> bytes:
        sq = _first(query, "search_query", "")
        ids = ",".join(query.get("id_list", []))
        start = _first(query, "start", "0")
        max_results = _first(query, "max_results", "10")
        title = (f"arXiv Query: search_query={sq}&id_list={ids}&start={start}"
                 f"&max_results={max_results}")
        digest = base64.b64encode(hashlib.sha1(title.encode()).digest()).decode().rstrip("=")
        self_url = (f"https://arxiv.org/api/query?search_query={sq}&start={start}"
                    f"&max_results={max_results}&id_list={ids}")
        head = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            f'<feed xmlns:opensearch="{OPENSEARCH_NS}" xmlns:arxiv="{ARXIV_NS}" '
            f'xmlns="{ATOM_NS}">\n'
            f"  <id>https://arxiv.org/api/{digest}</id>\n"
            f"  <title>{escape(title)}</title>\n"
            f"  <updated>{_stamp(datetime.now(UTC))}</updated>\n"
            f"  <link href={quoteattr(self_url)} type=\"application/atom+xml\"/>\n"
            f"  <opensearch:itemsPerPage>{escape(max_results)}</opensearch:itemsPerPage>\n"
            f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
            f"  <opensearch:startIndex>{escape(start)}</opensearch:startIndex>\n"
        )
        return (head + "".join(entries) + "</feed>\n").encode("utf-8")

    def entry_xml(self, p: FakePaper, version: int) -> str:
        vid = f"{p.id}v{version}"
        lines = [
            "  <entry>",
            f"    <id>http://arxiv.org/abs/{vid}</id>",
            f"    <title>{escape(p.title)}</title>",
            f"    <updated>{_stamp(p.version_date(version))}</updated>",
            f'    <link href="https://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>',
        ]
        if p.pdf_link:
            lines.append(f'    <link href="https://arxiv.org/pdf/{vid}" rel="related" '
                         'type="application/pdf" title="pdf"/>')
        lines.append(f"    <summary>{escape(p.abstract)}</summary>")
        lines += [f'    <category term={quoteattr(c)} scheme="{ARXIV_NS}"/>' for c in p.categories]
        lines.append(f"    <published>{_stamp(p.published)}</published>")
        if p.comment is not None:
            lines.append(f"    <arxiv:comment>{escape(p.comment)}</arxiv:comment>")
        lines.append(f"    <arxiv:primary_category term={quoteattr(p.primary_category)}/>")
        if p.journal_ref is not None:
            lines.append(f"    <arxiv:journal_ref>{escape(p.journal_ref)}</arxiv:journal_ref>")
        for a in p.authors:
            name, aff = (a, None) if isinstance(a, str) else a
            lines.append(f"    <author>\n      <name>{escape(name)}</name>")
            if aff:
                lines.append(f"      <arxiv:affiliation>{escape(aff)}</arxiv:affiliation>")
            lines.append("    </author>")
        if p.doi is not None:
            lines.append(f"    <arxiv:doi>{escape(p.doi)}</arxiv:doi>")
            lines.append(f'    <link rel="related" href={quoteattr("https://doi.org/" + p.doi)} '
                         'title="doi"/>')
        lines.append("  </entry>\n")
        return "\n".join(lines)

    def error_xml(self, anchor: str, summary: str) -> bytes:
        """The Error feed of the 2026 recordings: one entry, no ``<published>``."""
        now = _stamp(datetime.now(UTC))
        url = "https://arxiv.org/api/errors#" + quote(anchor, safe="/._-")
        return (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            f'<feed xmlns:opensearch="{OPENSEARCH_NS}" xmlns:arxiv="{ARXIV_NS}" '
            f'xmlns="{ATOM_NS}">\n'
            "  <id>https://arxiv.org/</id>\n"
            "  <title>arXiv Search Results</title>\n"
            f"  <updated>{now}</updated>\n"
            "  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>\n"
            "  <opensearch:totalResults>1</opensearch:totalResults>\n"
            "  <opensearch:startIndex>0</opensearch:startIndex>\n"
            "  <entry>\n"
            f"    <id>{escape(url)}</id>\n"
            "    <title>Error</title>\n"
            f"    <updated>{now}</updated>\n"
            f'    <link href={quoteattr(url)} rel="alternate" type="text/html"/>\n'
            f"    <summary>{escape(summary)}</summary>\n"
            "    <author>\n      <name>arXiv api core</name>\n    </author>\n"
            "  </entry>\n"
            "</feed>\n"
        ).encode()


def _first(query: dict[str, list[str]], key: str, default: str) -> str:
    values = query.get(key)
    return values[0] if values else default


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(p: FakePaper, query: str) -> bool:
    """Minimal ``search_query``: every ``field:term`` (or bare term) must match, ANDed."""
    for part in re.split(r"\s+AND\s+|\s+", query):
        if not part:
            continue
        fld, _, term = part.rpartition(":")
        term = term.strip('"').lower()
        hay = {"ti": p.title, "abs": p.abstract, "au": " ".join(
            a if isinstance(a, str) else a[0] for a in p.authors),
               "cat": " ".join(p.categories)}.get(fld, f"{p.title} {p.abstract}")
        if term not in hay.lower():
            return False
    return True


def arxiv_config(srv: FakeArxiv, cache_path: Path | None = None, **overrides: Any) -> Config:
    """A Config pointed at ``srv`` with short waits; ``arxiv__batch_size=5`` style overrides.

    Defaults: ``arxiv.min_interval`` 0, ``arxiv.throttle_wait`` 0.05 s, ``http.backoff``
    0.01 s (cap 0.05 s),
    ``http.timeout`` 2 s. ``cache_path`` defaults to ``./cache/enrich.sqlite3`` (the
    test's temporary working folder).
    """
    values: dict[str, Any] = {
        "arxiv.api_url": srv.api_url,
        "arxiv.min_interval": 0,
        "arxiv.throttle_wait": 0.05,
        "http.backoff": 0.01,
        "http.backoff_max": 0.05,
        "http.timeout": 2,
        "cache.path": str(cache_path or Path.cwd() / "cache" / "enrich.sqlite3"),
    }
    for key, value in overrides.items():
        values[key.replace("__", ".", 1)] = value
    return Config.load(env={}, overrides=values)


@pytest.fixture
def arxiv_server() -> Iterator[FakeArxiv]:
    """A started :class:`FakeArxiv`, stopped after the test."""
    srv = FakeArxiv()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
