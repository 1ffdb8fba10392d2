"""Every test gets its own temp working folder, cache home and a clean environment.

No test touches the live network: the fake APIs of ``tests/fakeapi`` serve on
127.0.0.1 and enrich is pointed at them through config ``api_url`` keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeapi.arxiv import arxiv_server  # noqa: F401
from fakeapi.github import github_server  # noqa: F401


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("ENRICH_") or name in ("GITHUB_TOKEN", "GH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
