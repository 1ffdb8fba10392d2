"""Fetch paper metadata from the arXiv query API, politely and without losing answers.

Batches of ``arxiv.batch_size`` ids go one after another through
:class:`~enrich.fetch.arxiv_http.ArxivApi` (the spacing gate, the HTTP, the reading of
the feed); this module turns answers into verdicts per id. Answers are matched by
entry id, never by position: arXiv returns entries sorted by date and silently drops
ids that do not exist. A batch is judged from its one page (``max_results`` is the
batch size): every id asked for is an entry, an Error entry, or absent.

Verdicts per id:

- found -> ``Paper(status="ok")``; absent from a 200 reply -> ``Paper(status="not_found")``.
- **Empty-page rule**: a 200 with *no* usable entry for a batch of two or more ids is
  asked once more before it is believed, because arXiv sporadically serves empty pages
  (arxiv.py#83); an empty answer for a single id is an ordinary ``not_found``.
- An id arXiv rejects as malformed (an Error entry naming it) goes to ``failed`` with
  ``arXiv says: ...``; the rest of its batch is asked again without it. When the Error
  entry names no id of the batch, a 414, or a feed the package cannot read, the batch
  is halved until the culprit stands alone.
- Transient failures (5xx, 408, connection reset, timeout, truncated or non-Atom
  body, a 200 reading ``Rate exceeded.``) are retried by tenacity up to
  ``http.max_retries`` times, waiting the ``Retry-After`` or an exponential backoff
  from ``http.backoff`` capped at ``http.backoff_max``.
- **Throttling** (``arxiv.throttle_wait``): a 429 is waited out once, for its ``Retry-After`` or
  else ``arxiv.throttle_wait`` (60 s; throttling lasts long and early retries lengthen
  it), before one more try. A second 429 in a row, or a ``Retry-After`` longer than
  ``http.backoff_max`` (arXiv throttles for hours at times), stops arXiv fetching for
  the run: the batch and every later one go to ``missing``, with one message, logged
  once as a warning (cached papers are then served as ``stale``).
- Retries exhausted -> the batch's ids go to ``failed`` with the status, the URL (no
  query) and the attempt count, and later batches are not attempted (``missing``): a
  down or throttling API is not hammered batch after batch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_result

from .._version import USER_AGENT
from ..config import Config
from ..models import Paper
from . import FetchResult, OnBatch
from .arxiv_http import ArxivApi, Reply, SharedTurn
from .policy import BackoffOrRetryAfter, quote_untrusted

log = logging.getLogger(__name__)

_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(v\d+)?$")
_OLD_ID = re.compile(r"^([a-z]+(?:-[a-z]+)*)(?:\.[A-Za-z]{2})?/(\d{7})(v\d+)?$")
_VERSION = re.compile(r"^(.+?)(v(\d+))?$")


@dataclass
class _Run:
    """What one :meth:`ArxivFetcher.fetch` call has learned, keyed by the id sent."""

    records: dict[str, Paper] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    stop_reason: str | None = None

    def stop(self, msg: str, *, throttled: bool = False) -> None:
        """Ask arXiv nothing more this run; a throttle gives every id the same message
        (one cause, one line), a failure names the batch that failed."""
        if self.stop_reason is None:
            self.stop_reason = msg if throttled else \
                f"not attempted: an earlier arXiv batch failed ({msg})"
            if throttled:
                log.warning("%s", msg)


class ArxivFetcher:
    """Turns canonical arXiv ids into :class:`~enrich.models.Paper` records."""

    def __init__(self, config: Config, *, shared_gate: SharedTurn | None = None) -> None:
        self.config = config
        self.api = ArxivApi(config.arxiv.api_url, timeout=config.http.timeout,
                            max_bytes=config.http.max_bytes,
                            user_agent=config.http.user_agent or USER_AGENT,
                            min_interval=config.arxiv.min_interval, shared_gate=shared_gate)

    async def aclose(self) -> None:
        await self.api.aclose()

    async def fetch(self, ids: Sequence[str], *,
                    on_batch: OnBatch[Paper] | None = None) -> FetchResult[Paper]:
        """Fetch ``ids`` (canonical, without version), batch after batch."""
        result: FetchResult[Paper] = FetchResult()
        keys_by_sent: dict[str, list[str]] = {}
        for key in dict.fromkeys(ids):
            sent = canonical_query_id(key)
            if sent is None:
                result.failed[key] = f"not an arXiv id: {key!r}"
            else:
                keys_by_sent.setdefault(sent, []).append(key)
        sent_before = self.api.sent
        run = _Run()
        todo = list(keys_by_sent)
        size = self.config.arxiv.batch_size
        for n in range(0, len(todo), size):
            batch = todo[n:n + size]
            if run.stop_reason is not None:
                run.missing.update(dict.fromkeys(batch, run.stop_reason))
                continue
            await self._settle(batch, run)
            if on_batch is not None:
                made = {key: run.records[s] for s in batch if s in run.records
                        for key in keys_by_sent[s]}
                if made:
                    await on_batch(made)
        for sent, keys in keys_by_sent.items():
            for key in keys:
                if sent in run.records:
                    result.records[key] = run.records[sent]
                elif sent in run.failed:
                    result.failed[key] = run.failed[sent]
                else:
                    result.missing[key] = run.missing.get(sent, "not attempted")
        result.requests = self.api.sent - sent_before
        log.info("arXiv: %d ids, %d requests, %d records, %d failed, %d missing", len(ids),
                 result.requests, len(result.records), len(result.failed),
                 len(result.missing))
        return result

    async def _settle(self, batch: list[str], run: _Run) -> None:
        """Give every id of ``batch`` a record, a failure, or a place among the missing."""
        queue: list[list[str]] = [batch]
        while queue:
            ids = queue.pop(0)
            if run.stop_reason is not None:
                run.missing.update(dict.fromkeys(ids, run.stop_reason))
                continue
            reask_empty = len(ids) > 1
            while ids:
                reply, attempts = await self._ask(ids)
                if reply.kind == "ok":
                    found, strays = self._match(reply.results, ids)
                    if not found and reask_empty:
                        reask_empty = False
                        log.info("arXiv answered no entry for %d ids; asking once more", len(ids))
                        continue
                    self._record(ids, found, strays, run)
                elif reply.kind == "bad_id" and reply.bad_id in ids:
                    run.failed[reply.bad_id] = f"arXiv says: {reply.message}"
                    ids = [i for i in ids if i != reply.bad_id]
                    reask_empty = len(ids) > 1
                    continue
                elif reply.kind in ("bad_id", "too_long", "unreadable"):
                    # the same answer every time: halve the batch until the id behind it
                    # stands alone, instead of failing the good ids with it
                    msg = (f"arXiv says: {reply.message}" if reply.kind == "bad_id"
                           else self._message(reply, attempts))
                    _halve_or_fail(ids, queue, run, msg)
                else:
                    self._give_up(ids, reply, attempts, run)
                break

    async def _ask(self, ids: list[str]) -> tuple[Reply, int]:
        """One query for ``ids``, repeated by tenacity while the answer is transient;
        the last reply and the number of attempts.

        A 429 is waited out for its ``Retry-After``, else ``arxiv.throttle_wait``, and
        asked once more; a second 429 in a row ends the loop (:meth:`_give_up` then stops
        arXiv for the run)."""
        http = self.config.http
        throttle_wait = self.config.arxiv.throttle_wait
        backoff = BackoffOrRetryAfter(http.backoff, http.backoff_max,
                                      lambda r: r.retry_after)
        statuses: list[int | None] = []

        def wait(state: RetryCallState) -> float:
            if statuses[-1] == 429:
                asked = backoff.asked(state)
                return throttle_wait if asked is None else asked
            return backoff(state)

        def stop(state: RetryCallState) -> bool:
            return (state.attempt_number > http.max_retries or backoff.too_long(state)
                    or statuses[-2:] == [429, 429])

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda r: r.kind == "transient"),
            stop=stop,
            wait=wait,
            before_sleep=lambda state: log.info(
                "arXiv: %s; retry %d/%d", state.outcome.result().message,
                state.attempt_number, http.max_retries) if state.outcome else None,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        attempts = 0

        async def attempt() -> Reply:
            nonlocal attempts
            attempts += 1
            reply = await self.api.query(ids)
            statuses.append(reply.status)
            return reply

        reply: Reply = await retrying(attempt)
        return reply, attempts

    def _record(self, ids: list[str], found: dict[str, Paper], strays: list[str],
                run: _Run) -> None:
        now = datetime.now(UTC)
        for i in ids:
            if i in found:
                run.records[i] = found[i]
            elif strays:
                # An answer about other papers says nothing about this one: a not_found
                # verdict would be cached on the word of a broken reply.
                run.failed[i] = ("arXiv answered with entries not asked for ("
                                 + ", ".join(strays[:3]) + ") and none for this id")
            else:
                run.records[i] = Paper(status="not_found", fetched_at=now)

    def _give_up(self, ids: list[str], reply: Reply, attempts: int, run: _Run) -> None:
        """A final answer, retries spent, or a rate limit asking for too long a wait."""
        cap = self.config.http.backoff_max
        msg = None
        if reply.kind == "transient" and reply.retry_after is not None and \
                reply.retry_after > cap:
            msg = (f"arXiv rate limit: HTTP {reply.status} asks to wait "
                   f"{reply.retry_after:.0f} s (more than http.backoff_max={cap:g} s); "
                   f"stopped fetching from {self.api.safe_url} for this run")
        elif reply.status == 429:
            msg = (f"arXiv is throttling (HTTP 429 again after waiting); stopped fetching "
                   f"from {self.api.safe_url} for this run")
        if msg is not None:
            run.missing.update(dict.fromkeys(ids, msg))
            run.stop(msg, throttled=True)
            return
        msg = self._message(reply, attempts)
        run.failed.update(dict.fromkeys(ids, msg))
        if reply.kind == "transient" or reply.status is not None:
            run.stop(msg)  # not after a body that is too large: the next batch may do

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
                continue
            found[key] = _paper(r, key, version, now)
        return found, strays

    def _message(self, reply: Reply, attempts: int) -> str:
        plural = "s" if attempts != 1 else ""
        return (f"arXiv query failed: {reply.message} from {self.api.safe_url} "
                f"({attempts} attempt{plural})")


def _halve_or_fail(ids: list[str], queue: list[list[str]], run: _Run, failure: str) -> None:
    """Ask for the halves of a batch that cannot be answered whole (first in ``queue``),
    or record ``failure`` for an id that stands alone."""
    if len(ids) == 1:
        run.failed[ids[0]] = failure
        return
    mid = len(ids) // 2
    log.info("%s; splitting the batch of %d", failure, len(ids))
    queue[:0] = [ids[:mid], ids[mid:]]


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


