"""The exceptions enrich raises, all rooted at :class:`EnrichError`.

::

    EnrichError                      anything enrich raises on purpose
    ├── ConfigError                  bad config file, env override or flag (exit 2); names the key
    ├── InputError                   unreadable, binary or undecodable input (exit 2); names it
    ├── CacheError                   cache database unusable (exit 2); names file and fix
    │   └── CacheLockedError         another run holds the cache lock (exit 75)
    └── FetchError                   an API request failed for good (carries url, status, attempt)
        └── RateLimitedError         an API's rate limit stops fetching for this run (carries reset)

Fetch errors are normally caught by the pipeline and turned into record
statuses (``stale``, ``missing``, ``error``); they escape only from the
lower-level fetcher APIs.
"""

from __future__ import annotations

from datetime import datetime


class EnrichError(Exception):
    """Base class of every error enrich raises on purpose."""


class ConfigError(EnrichError):
    """A configuration value is unknown, of the wrong type or out of range."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        self.key = key
        self.source = source
        self.reason = message
        where = f" ({source})" if source else ""
        prefix = f"config key {key!r}{where}: " if key else (f"{source}: " if source else "")
        super().__init__(prefix + message)


class InputError(EnrichError):
    """An input file cannot be used: missing, a directory, binary or undecodable."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class CacheError(EnrichError):
    """The cache database cannot be opened, read or written."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cache {path}: {reason}")


class CacheLockedError(CacheError):
    """Another enrich run holds the cache lock."""


class FetchError(EnrichError):
    """An API request failed and will not be retried further."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        attempt: int = 0,
        transient: bool = True,
    ):
        self.url = url
        self.status = status
        self.attempt = attempt
        self.transient = transient
        super().__init__(message)


class RateLimitedError(FetchError):
    """An API's rate limit stops fetching from it for the rest of the run."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 reset_at: datetime | None = None, wait: float | None = None):
        super().__init__(message, url=url, status=status, transient=True)
        self.reset_at = reset_at
        self.wait = wait
