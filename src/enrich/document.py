"""From records to documents: what each text names, what those records link to, and the
counts a run reports per file. Pure functions of records: no I/O.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .extract import extract
from .models import (
    EnrichedDocument,
    ErrorEntry,
    FileReport,
    Link,
    Paper,
    Repo,
    SourceCounts,
    SourceInfo,
)
from .trends import star_trend

Origin = Literal["cache", "fetched", "failed"]

#: At most this many code links per paper and paper links per repository (first named
#: first): what a record links to is fetched too, so a survey's abstract must not fan out.
MAX_CROSS_LINKS = 5


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

    def put(self, kind: str, key: str, rec: Paper | Repo, origin: Origin,
            message: str | None = None) -> None:
        if isinstance(rec, Paper):
            self.papers[key] = rec
        else:
            self.repos[key] = rec
        self.origin[(kind, key)] = origin
        if message is not None:
            self.messages[(kind, key)] = message

    def absorb(self, other: Resolution) -> None:
        """Add a later round's records (the ids do not overlap)."""
        self.papers.update(other.papers)
        self.repos.update(other.repos)
        self.origin.update(other.origin)
        self.messages.update(other.messages)
        for k, v in other.requests.items():
            self.requests[k] = self.requests.get(k, 0) + v


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

    # One extraction over every record's text: no link spans a blank line, so records
    # joined by blank lines yield each record's own links, in the same order.
    owners: list[tuple[bool, str]] = []  # (is a paper, its id or key), per text
    starts: list[int] = []
    texts: list[str] = []
    pos = 0
    record_texts = [
        *((True, pid, p.abstract, p.comment) for pid, p in papers.items()),
        *((False, key, r.description, r.homepage) for key, r in repos.items()),
    ]
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


def linked_ids(code_of: dict[str, list[str]], papers_of: dict[str, list[str]]
               ) -> tuple[list[str], list[str]]:
    """Every paper and repository a cross-link names, first named first."""
    papers = [*code_of, *(p for ps in papers_of.values() for p in ps)]
    repos = [*papers_of, *(k for ks in code_of.values() for k in ks)]
    return unique(papers), unique(repos)


def unique(ids: Any) -> list[str]:
    return list(dict.fromkeys(ids))


def build_document(links: list[Link], res: Resolution, *, source: SourceInfo | None,
                   generated_at: datetime) -> EnrichedDocument:
    """The document of one text: its links, the records they name, and what those link to.

    A record gets the fields that depend on the document (``linked_from``) or on the
    whole run (``code``, ``papers``, ``trend``) in a copy; records are never changed in
    place.
    """
    named_p = unique(lk.id for lk in links if lk.kind == "arxiv")
    named_r = unique(lk.id for lk in links if lk.kind == "github")
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

    papers: dict[str, Paper] = {}
    repos: dict[str, Repo] = {}
    errors: list[ErrorEntry] = []
    for pid in [*named_p, *linked_p]:
        paper = res.papers.get(pid)
        if paper is not None:
            papers[pid] = _with(paper, {"linked_from": linked_p.get(pid),
                                        "code": res.code_of.get(pid, [])})
            _note_error(res, "arxiv", pid, errors)
    for key in [*named_r, *linked_r]:
        repo = res.repos.get(key)
        if repo is not None:
            update: dict[str, Any] = {"linked_from": linked_r.get(key),
                                      "papers": res.papers_of.get(key, [])}
            trend = _trend(repo, res.histories.get(key))
            if trend is not None:
                update["trend"] = trend
            repos[key] = _with(repo, update)
            _note_error(res, "github", key, errors)
    return EnrichedDocument(
        source=source,
        generated_at=generated_at,
        links=links,
        papers=dict(sorted(papers.items())),
        repos=dict(sorted(repos.items())),
        errors=errors,
    )


def _with(rec: Any, update: dict[str, Any]) -> Any:
    """``rec`` with ``update`` applied: a copy when that changes something, else ``rec``
    itself (records are never changed once built, so documents may share them)."""
    if all(getattr(rec, name) == value for name, value in update.items()):
        return rec
    return rec.model_copy(update=update)


def _trend(repo: Repo, hist: list[tuple[datetime, int]] | None) -> Any:
    """The star trend worth showing: one observation gives no change to report (and
    no sparkline, which needs three), the trend of every repository on its first day."""
    if not hist or len(hist) < 2 or repo.status not in ("ok", "stale"):
        return None
    trend = star_trend(hist, hist[-1][0])
    if trend.since_previous is None and trend.week is None:
        return None
    return trend


def _note_error(res: Resolution, kind: Literal["arxiv", "github"], key: str,
                errors: list[ErrorEntry]) -> None:
    msg = res.messages.get((kind, key))
    if msg is not None:
        errors.append(ErrorEntry(kind=kind, id=key, message=msg))


def source_info(path: str, raw: bytes) -> SourceInfo:
    return SourceInfo(path=path, sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw))


def file_report(path: str, doc: EnrichedDocument, res: Resolution, *, offline: bool) -> FileReport:
    """Counts for the summary line, and the exit code this file earns (0 or 1)."""
    rep = FileReport(path=path)
    failing = ("missing", "error") if offline else ("missing", "error", "stale")
    for kind, records, counts in (("arxiv", doc.papers, rep.papers),
                                  ("github", doc.repos, rep.repos)):
        failed = sum(1 for rec in records.values() if rec.status in failing)
        fetched = sum(1 for key, rec in records.items() if rec.status not in failing
                      and res.origin.get((kind, key), "cache") == "fetched")
        _set_counts(counts, found=len(records), failed=failed, fetched=fetched,
                    from_cache=len(records) - failed - fetched)
    rep.exit_code = 1 if rep.papers.failed or rep.repos.failed else 0
    return rep


def _set_counts(counts: SourceCounts, **values: int) -> None:
    # only the figures that are not 0 are set: a report's JSON shows what happened
    for name, value in values.items():
        if value:
            setattr(counts, name, value)
