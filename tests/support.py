"""Helpers for end-to-end tests: fill the fakes from a text, write a config, run the CLI."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import yaml
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub

from enrich.cli import main
from enrich.extract import extract

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "research-log.txt"

#: Repositories that live under another name now (the log uses the old one).
RENAMES = {"facebookresearch/llama": "meta-llama/llama",
           "ggerganov/llama.cpp": "ggml-org/llama.cpp"}


def populate(arxiv: FakeArxiv, github: FakeGitHub, text: str) -> tuple[list[str], list[str]]:
    """Serve every id of ``text`` from the fakes; return (arxiv ids, repo keys)."""
    links = extract(text)
    ids = list(dict.fromkeys(lk.id for lk in links if lk.kind == "arxiv"))
    keys = list(dict.fromkeys(lk.id for lk in links if lk.kind == "github"))
    for n, pid in enumerate(ids):
        arxiv.add_paper(pid, title=f"Paper number {n} about {pid}",
                        authors=["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
                        abstract=f"We present result {n}.", versions=2, primary_category="cs.CL")
    for n, key in enumerate(keys):
        display = "/".join(part.title() if i == 0 else part for i, part in
                           enumerate(key.split("/")))
        github.add_repo(display, stars=1000 + n, forks=n, license=("MIT", "MIT License"),
                        description=f"Repository {n}", topics=["ml"], language="Python")
        if key in RENAMES:
            github.rename(display, RENAMES[key])
    return ids, keys


def write_config(path: Path, arxiv_srv: FakeArxiv, github_srv: FakeGitHub,
                 **sections: Any) -> Path:
    """A config file pointed at the fakes with short waits; ``sections`` merge over it."""
    data: dict[str, Any] = {
        "cache": {"path": "cache/enrich.sqlite3"},
        "arxiv": {"api_url": arxiv_srv.api_url, "min_interval": 0},
        "github": {"api_url": github_srv.url, "graphql_url": github_srv.url + "/graphql",
                   "secondary_wait": "50ms", "max_wait": "2s"},
        "http": {"timeout": "2s", "backoff": "10ms", "backoff_max": "50ms", "max_retries": 2},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
