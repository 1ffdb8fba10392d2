"""Secrets: the GitHub token never appears in anything a run writes.

The fake GitHub is made hostile: error bodies, GraphQL error messages and
redirect locations echo the token back. A run (a real process, with
``--verbose``) and an in-process run (every log record of every logger
captured) must then leave no trace of it: not in the outputs, not in the cache
database nor its WAL and shared-memory files, not on stderr, not in a log
record. "No trace" means no 12-character piece of the token, so a token cut in
half by a length limit counts too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import load_json, run_cli, write_config

import enrich.cli

TOKEN = "ghp_Zq7SecretTokenForEnrichTests9xY4kW2mN8"
PIECES = [TOKEN[i:i + 12] for i in range(len(TOKEN) - 11)]
ENCODED = [TOKEN.encode("utf-16-le"), TOKEN.encode().hex().encode()]


def traces(data: bytes) -> list[str]:
    """Pieces of the token found in ``data`` (raw, URL-quoted as is, UTF-16 or hex)."""
    found = [p for p in PIECES if p.encode() in data]
    found += [repr(e[:12]) for e in ENCODED if e in data]
    return found


N_REPOS = 12


@pytest.fixture
def hostile(tmp_path: Path, arxiv_server: FakeArxiv,
            github_server: FakeGitHub) -> Iterator[tuple[Path, Path, FakeGitHub]]:
    """A log, a config and a fake GitHub that echoes the token wherever it can."""
    gh = github_server
    gh.tokens[TOKEN] = "victim"
    keys = gh.add_synthetic(N_REPOS)
    ids = arxiv_server.add_synthetic(3)
    # GraphQL fails for half of them in an undocumented way: REST (with the token) is asked
    for key in keys[: N_REPOS // 2]:
        gh.graphql_errors[key] = f"WEIRD_{TOKEN}"
    lines = [f"- https://github.com/{gh.repos[k].full_name}" for k in keys]
    lines += [f"- arXiv:{pid}" for pid in ids]
    log = tmp_path / "log.txt"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, gh, github={"concurrency": 2},
                       http={"timeout": 1, "max_retries": 1})
    yield log, cfg, gh


def echo_token(gh: FakeGitHub) -> None:
    """Queue answers that carry the token back, on both GitHub endpoints."""
    js = {"Content-Type": "application/json"}
    gh.faults.add("graphql", "garbage", headers=js, body=(
        '{"errors": [{"message": "token ' + TOKEN + ' is not allowed here"}]}').encode())
    gh.faults.add("graphql", "status", status=400, headers=js, body=(
        '{"message": "Problems parsing Authorization: Bearer ' + TOKEN + '"}').encode())
    for _ in range(2):
        gh.faults.add("rest", "status", status=403, headers=js, body=(
            '{"message": "Resource not accessible by token ' + TOKEN + '"}').encode())
        gh.faults.add("rest", "status", status=500, body=(
            "Internal error while checking Authorization: Bearer " + TOKEN).encode())
        gh.faults.add("rest", "status", status=418, body=("x" * 190 + TOKEN).encode())
        gh.faults.add("rest", "redirect", headers={
            "Location": f"http://{TOKEN.lower()}.evil.invalid/repos/x/y"})
        gh.faults.add("rest", "redirect", status=307, headers={
            "Location": f"/repos/no/where?access_token={TOKEN}"})


def _scan_folder(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            hits = traces(path.read_bytes())
            if hits:
                found[str(path)] = hits
    return found


def test_nothing_a_verbose_run_writes_holds_the_token(
        hostile: tuple[Path, Path, FakeGitHub], arxiv_server: FakeArxiv,
        tmp_path: Path) -> None:
    log, cfg, gh = hostile
    # a first run builds the cache; a reader then keeps the WAL from being folded away,
    # so that the second run's WAL and shared memory files are scanned too
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    env["GITHUB_TOKEN"] = TOKEN
    cmd = [sys.executable, "-m", "enrich", "run", "--file", str(log), "--config", str(cfg),
           "--verbose"]
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert first.returncode == 0, first.stderr.decode()
    db = tmp_path / "cache" / "enrich.sqlite3"
    reader = sqlite3.connect(db)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM repos").fetchone()
        echo_token(gh)
        second = subprocess.run([*cmd, "--refresh"], cwd=tmp_path, env=env,
                                capture_output=True, timeout=60)
        wal = Path(f"{db}-wal")
        assert wal.exists() and wal.stat().st_size > 0
        found = _scan_folder(tmp_path / "cache")
    finally:
        reader.close()
    assert second.returncode in (0, 1), second.stderr.decode()
    err = second.stderr.decode("utf-8", "replace")
    assert "DEBUG" in err  # --verbose did log every request
    assert "[redacted]" in err or "[redacted]" in log.with_name(
        "log.enriched.json").read_text(encoding="utf-8")  # the echoes were met and cut
    found |= _scan_folder(log.parent)
    for name, stream in (("stdout", first.stdout + second.stdout),
                         ("stderr", first.stderr + second.stderr)):
        if traces(stream):
            found[name] = traces(stream)
    assert found == {}
    doc = load_json(log.with_name("log.enriched.json"))
    assert doc["errors"], "the echoing answers should have failed some repositories"
    # the token went to the configured API origin only, never to arXiv nor elsewhere
    assert all(r.credential == TOKEN for r in gh.requests if r.endpoint == "graphql")
    assert not any("authorization" in (k.lower() for k in r.headers)
                   for r in arxiv_server.requests)
    assert not traces(repr([(r.path, r.query) for r in arxiv_server.requests]).encode())


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_no_log_record_of_any_logger_holds_the_token(
        hostile: tuple[Path, Path, FakeGitHub], monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked at the source: our stderr handler redacts the token as a last resort, so
    this handler sits beside it, unfiltered, on every logger (httpx, httpcore, arxiv...)."""
    log, cfg, gh = hostile
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    capture = _Capture()
    real_setup = enrich.cli._setup_logging

    def setup(verbose: bool, quiet: bool) -> None:
        real_setup(verbose, quiet)
        logging.getLogger("enrich").addHandler(capture)

    monkeypatch.setattr(enrich.cli, "_setup_logging", setup)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        assert run_cli("run", "--file", str(log), "--config", str(cfg), "--verbose")[0] == 0
        echo_token(gh)
        code, out, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--verbose",
                                 "--refresh")
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        logging.getLogger("enrich").removeHandler(capture)
    assert code in (0, 1)
    assert len(capture.records) > 20
    names = {r.name.split(".")[0] for r in capture.records}
    assert {"enrich", "httpx"} <= names
    leaks = []
    for rec in capture.records:
        text = rec.getMessage() + repr(rec.args) + (rec.exc_text or "")
        if traces(text.encode()):
            leaks.append(f"{rec.name}: {text[:200]}")
    assert leaks == []
    assert not traces((out + err).encode())
    doc_text = log.with_name("log.enriched.json").read_bytes()
    assert not traces(doc_text)
