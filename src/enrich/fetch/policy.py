"""The one place for retry decisions: which answers are transient, how long to wait.

Decisions are data (status sets) plus small pure functions, so both fetchers
share them and tests can check them without a network. GitHub's rules
(docs "Rate limits for the REST API", "Best practices"): honour
``Retry-After``; else if ``x-ratelimit-remaining`` is 0 wait until
``x-ratelimit-reset``; else wait at least a minute, then back off
exponentially. arXiv asks for one request every 3 s and answers 429/503 when
throttling.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import RetryCallState

#: Statuses worth another try (after a wait).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Statuses that are an answer, never retried.
FINAL_STATUSES = frozenset({400, 401, 404, 410, 414, 422, 451})


def is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES


#: Longest wait a ``Retry-After`` can ask for: any longer is "not this run" anyway, and
#: a server's ``inf`` or ``1e308`` must not overflow the date arithmetic that follows.
MAX_RETRY_AFTER = 366 * 86400.0


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    Clamped to 0..:data:`MAX_RETRY_AFTER`; ``nan`` is no answer.
    """
    raw = _get(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return None if math.isnan(value) else min(MAX_RETRY_AFTER, max(0.0, value))
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - now))


def ratelimit_reset(headers: Mapping[str, str]) -> datetime | None:
    """``x-ratelimit-reset`` (UTC epoch seconds) as a datetime, or None."""
    raw = _get(headers, "x-ratelimit-reset")
    if raw is None:
        return None
    try:
        return datetime.fromtimestamp(int(raw.strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def ratelimit_remaining(headers: Mapping[str, str]) -> int | None:
    raw = _get(headers, "x-ratelimit-remaining")
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt``, jittered to 50–100 %, capped."""
    r = (rng or random).random()
    raw = base * (2 ** max(0, attempt))
    return float(min(cap, raw * (0.5 + 0.5 * r)))


class WaitBudget:
    """The total time one run may spend waiting on rate limits (``github.max_wait``)."""

    def __init__(self, limit: float):
        self.limit = limit
        self.spent = 0.0

    def allows(self, seconds: float) -> bool:
        return self.spent + seconds <= self.limit

    def spend(self, seconds: float) -> None:
        self.spent += seconds


def credential_id(token: str | None) -> str:
    """An identity for a credential that reveals nothing of it: ETags are per credential.

    ``anon`` without a token; otherwise a short salted digest (never the token).
    """
    if not token:
        return "anon"
    digest = hashlib.sha256(b"enrich-credential:" + token.encode("utf-8")).hexdigest()
    return "tok-" + digest[:16]


#: Longest piece of API text quoted in an error message.
MAX_QUOTED = 200
_INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def quote_untrusted(text: object, limit: int = MAX_QUOTED, secrets: Iterable[str] = ()) -> str:
    """API text (an error message, a URL) made fit to quote in a message or a log line.

    Error bodies come from the server and may say anything: echo the token we sent,
    carry terminal escape sequences (a cron mail or a terminal would obey them), line
    breaks that forge log lines, bidi overrides, or megabytes. Every ``secrets``
    value is replaced by ``[redacted]`` *before* clipping (a clip must never keep
    half a token), then control and bidi characters go, whitespace collapses and
    the text is cut to ``limit`` characters.
    """
    s = str(text)
    for secret in secrets:
        if secret:
            s = s.replace(secret, "[redacted]")
    s = "".join(" " if ch.isspace() else ch for ch in s
                if ch.isspace() or not (ch in _INVISIBLE or unicodedata.category(ch) == "Cc"))
    s = " ".join(s.split())
    return s if len(s) <= limit else s[:limit] + "…"


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


# -- GitHub rate limits ------------------------------------------------------------------

#: Statuses GitHub uses for primary and secondary rate limits (REST docs: "403 or 429").
RATE_LIMIT_STATUSES = frozenset({403, 429})
#: GraphQL error ``type`` values meaning "rate limited" (RATE_LIMITED is documented;
#: RATE_LIMIT was seen in 2026, yanyongyu/githubkit#271).
GRAPHQL_RATE_LIMIT_TYPES = frozenset({"RATE_LIMITED", "RATE_LIMIT"})


@dataclass(frozen=True)
class RateLimit:
    """A rate-limit answer from GitHub and how long it asks us to wait.

    ``primary``: the hourly quota is spent (``x-ratelimit-remaining: 0``), so
    nothing will succeed before ``reset_at``. ``wait``: seconds GitHub asked for
    (``Retry-After``, or until ``x-ratelimit-reset``); None when it named no
    time and the caller must choose (GitHub: at least a minute, then
    exponential backoff).
    """

    primary: bool
    wait: float | None
    reset_at: datetime | None
    until_reset: bool = False
    """True when ``wait`` runs until ``x-ratelimit-reset`` (not a ``Retry-After``)."""


def github_rate_limit(status: int, headers: Mapping[str, str], message: str | None = None, *,
                      throttled: bool = False, now: float | None = None) -> RateLimit | None:
    """Classify a GitHub answer as a rate limit (and how long to wait), or None.

    GitHub's rules (REST docs "Rate limits", "Best practices"): honour
    ``Retry-After``; else if ``x-ratelimit-remaining`` is 0 wait until
    ``x-ratelimit-reset``; else wait and back off. A 403 is a rate limit only
    when something says so: a 429, ``Retry-After``, remaining 0, or a body
    message about a rate limit (body-only throttles exist, see PostHog PR
    #56241). ``throttled`` marks an answer already known to be one (a GraphQL
    200 with a ``RATE_LIMITED`` error).
    """
    msg = (message or "").lower()
    if not throttled and status not in RATE_LIMIT_STATUSES:
        return None
    retry = retry_after_seconds(headers, now)
    remaining = ratelimit_remaining(headers)
    reset = ratelimit_reset(headers)
    says_so = "rate limit" in msg or "abuse" in msg
    if not (throttled or status == 429 or retry is not None or remaining == 0 or says_so):
        return None
    primary = remaining == 0 and "secondary" not in msg
    if retry is not None:
        return RateLimit(primary=primary, wait=retry, reset_at=reset)
    if remaining == 0 and reset is not None:
        now = time.time() if now is None else now
        return RateLimit(primary=primary, wait=max(0.0, reset.timestamp() - now), reset_at=reset,
                         until_reset=True)
    return RateLimit(primary=primary, wait=None, reset_at=reset)


# -- tenacity's wait ---------------------------------------------------------------------


class BackoffOrRetryAfter:
    """A tenacity ``wait``: what the last answer asked for (``retry_after_of`` its result
    or exception: a ``Retry-After``, say), else :func:`backoff` by attempt number.

    :meth:`too_long` is the matching ``stop``: an answer asking for more than ``cap`` is
    not waited for (arXiv throttles for hours at times: that is for the next run).
    """

    def __init__(self, base: float, cap: float,
                 retry_after_of: Callable[[Any], float | None],
                 rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.retry_after_of = retry_after_of
        self.rng = rng

    def asked(self, state: RetryCallState) -> float | None:
        outcome = state.outcome
        if outcome is None:
            return None
        value = outcome.exception() if outcome.failed else outcome.result()
        return self.retry_after_of(value)

    def __call__(self, state: RetryCallState) -> float:
        asked = self.asked(state)
        if asked is not None:
            return asked
        return backoff(state.attempt_number - 1, self.base, self.cap, self.rng)

    def too_long(self, state: RetryCallState) -> bool:
        asked = self.asked(state)
        return asked is not None and asked > self.cap
