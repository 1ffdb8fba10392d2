"""enrich used as a library, the way another tool would (CI type-checks this file
against the installed package: ``cd examples && mypy --strict use_library.py``).

Run it: ``python examples/use_library.py research-log.txt`` (uses the network, or
``--offline`` for the cache alone).
"""

from __future__ import annotations

import sys
from pathlib import Path

import enrich


def summary(path: str, offline: bool) -> int:
    config = enrich.Config.load()
    text = Path(path).read_text(encoding="utf-8")
    links: list[enrich.Link] = enrich.extract(text)
    print(f"{len(links)} links in {path}")
    doc: enrich.EnrichedDocument = enrich.enrich_text(text, config, offline=offline)
    for pid, paper in doc.papers.items():
        print(f"{pid}: {paper.status} {paper.title or ''}")
    for key, repo in doc.repos.items():
        stars = f"★ {repo.stars}" if repo.stars is not None else ""
        print(f"{key}: {repo.status} {stars}")
    report: enrich.RunReport = enrich.run_files([path], config, offline=offline)
    return report.exit_code


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--offline"]
    sys.exit(summary(args[0] if args else "research-log.txt", "--offline" in sys.argv))
