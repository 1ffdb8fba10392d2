"""The package version and the User-Agent every request carries."""

from __future__ import annotations

__version__ = "0.1.0"

#: Where the project lives: both APIs ask for an identifiable client (arXiv's block page
#: quotes the User-Agent; GitHub asks for one naming the application), so the
#: User-Agent names the tool, its version and this URL.
PROJECT_URL = "https://github.com/enrich-dev/enrich"

USER_AGENT = f"enrich/{__version__} (+{PROJECT_URL}; research-log enricher)"
