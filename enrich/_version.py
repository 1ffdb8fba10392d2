"""The package version and the User-Agent every request carries."""

from __future__ import annotations

__version__ = "0.1.0"

#: arXiv's block page quotes the client's User-Agent; name the tool and where it lives.
USER_AGENT = f"enrich/{__version__} (research-log enricher)"
