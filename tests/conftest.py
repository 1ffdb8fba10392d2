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
from pgserver import PgServer, start_server


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session, started by the first test that needs
    it (see tests/pgserver.py); those tests skip only when no server binaries exist."""
    server = start_server()
    if isinstance(server, str):
        if os.environ.get("CI"):  # CI has the binaries: their absence is a failure there
            pytest.fail(server)
        pytest.skip(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database of the session's server."""
    return pg_server.new_database()
