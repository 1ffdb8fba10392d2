"""enrich: find arXiv papers and GitHub repositories in a research log and annotate it."""

from __future__ import annotations

from ._version import __version__
from .config import Config
from .errors import (
    CacheError,
    CacheLockedError,
    ConfigError,
    EnrichError,
    FetchError,
    InputError,
    RateLimitedError,
)
from .models import EnrichedDocument, Link, Paper, Repo, RunReport

__all__ = [
    "CacheError",
    "CacheLockedError",
    "Config",
    "ConfigError",
    "EnrichError",
    "EnrichedDocument",
    "FetchError",
    "InputError",
    "Link",
    "Paper",
    "RateLimitedError",
    "Repo",
    "RunReport",
    "__version__",
]
