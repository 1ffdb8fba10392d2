"""What a run tells its reader about failures: one line per cause, never one per id.

A nightly job that cannot reach an API fails for thousands of ids at once, for one
reason; the cron mail should say that reason once, with how many ids it hit and what
to do. :func:`cause_lines` groups the failures of every file of a run by source and
message (the id taken out of it).
"""

from __future__ import annotations

from .config import Config
from .models import EnrichedDocument, Failure, RunReport


def failures_of(doc: EnrichedDocument) -> list[Failure]:
    """The document's records that are not current, with the message of each."""
    out = []
    for e in doc.errors:
        rec = doc.papers.get(e.id) if e.kind == "arxiv" else doc.repos.get(e.id)
        out.append(Failure(kind=e.kind, id=e.id, status=rec.status if rec else "missing",
                           message=e.message))
    return out


def cause_lines(report: RunReport, config: Config) -> list[str]:
    """One line per cause over the run's files: source, how many ids, what happened to
    them, why, and what to do (``GitHub: 3016 repositories not fetched: ...; set
    GITHUB_TOKEN``)."""
    groups: dict[tuple[str, str], dict[str, str]] = {}  # (kind, cause) -> id -> status
    for rep in report.files:
        for f in rep.failures:
            cause = f.message.replace(f.id, "…") if len(f.id) > 2 else f.message
            groups.setdefault((f.kind, cause), {})[f.id] = f.status
    return [_line(kind, cause, ids, config) for (kind, cause), ids in groups.items()]


def _line(kind: str, cause: str, ids: dict[str, str], config: Config) -> str:
    n = len(ids)
    if kind == "arxiv":
        source, noun = "arXiv", "paper" if n == 1 else "papers"
    else:
        source, noun = "GitHub", "repository" if n == 1 else "repositories"
    stale = sum(1 for status in ids.values() if status == "stale")
    if stale == n:
        what = "served from the cache as stale"
    elif stale:
        what = f"not fetched ({stale} served from the cache as stale)"
    else:
        what = "not fetched"
    return f"{source}: {n} {noun} {what}: {cause}{_advice(kind, cause, config)}"


def _advice(kind: str, cause: str, config: Config) -> str:
    low = cause.lower()
    if kind == "github" and config.token is None and "rate limit" in low:
        return (f"; set {config.github.token_env} (a token allows 5000 requests an hour "
                "instead of 60)")
    if low.startswith("offline"):
        return "; run without --offline to fetch"
    return "; the next run tries again"
