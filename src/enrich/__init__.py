"""enrich: find arXiv papers and GitHub repositories in a research log and annotate it.

::

    import enrich
    links = enrich.extract(text)                 # list[enrich.Link]; no network
    doc = enrich.enrich_text(text)               # sync convenience -> EnrichedDocument
    async with enrich.Enricher(config) as e:     # async, shares one cache and client
        doc = await e.enrich_text(text)
    report = enrich.run_files(paths, config)     # what `enrich run` does, lock included
    doc.model_dump_json()                        # the JSON (docs/format.md)
    enrich.render_markdown(text, doc)            # the enriched markdown
    config = enrich.Config.load("config.yaml")
"""

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
from .extract import extract
from .models import EnrichedDocument, Link, Paper, Repo, RunReport
from .pipeline import Enricher, enrich_text
from .run import run_files
from .write.markdown import render_markdown

__all__ = [
    "CacheError",
    "CacheLockedError",
    "Config",
    "ConfigError",
    "EnrichError",
    "EnrichedDocument",
    "Enricher",
    "FetchError",
    "InputError",
    "Link",
    "Paper",
    "RateLimitedError",
    "Repo",
    "RunReport",
    "__version__",
    "enrich_text",
    "extract",
    "render_markdown",
    "run_files",
]
