"""Golden characterisation of ``enrich run`` on ``examples/research-log.txt``.

The example log is run through ``python -m enrich run`` as a real process against the fake
arXiv and GitHub APIs, scenario after scenario (cold cache, warm cache, ``--refresh``,
``--offline``; without and with a GitHub token; ``--offline`` on an empty cache). For every
step the test keeps, under ``tests/golden/<scenario>/``:

- ``<step>.enriched.md`` and ``<step>.enriched.json``: the outputs, byte for byte, but
  with times blanked (``generated_at``, ``fetched_at`` and any other date or time of the
  run's own clock become ``<time>``) and the temporary folder and the fakes' random ports
  replaced by placeholders;
- ``<step>.result.json``: the exit code, stdout and stderr (normalised the same way,
  durations blanked) and the requests the fakes saw during that step, counted per
  endpoint and credential, with GitHub's answers counted per status.

Snapshots are compared exactly. When a change of behaviour is intended, rewrite them with::

    ENRICH_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and review the diff of ``tests/golden/`` like any other change. (The variable is read when
this module is imported: the ``conftest`` fixture clears every ``ENRICH_*`` variable before
each test, so that it never reaches the process under test.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from fakeapi.server import FakeServer
from support import EXAMPLE, populate, write_config

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("ENRICH_UPDATE_GOLDEN", "") not in ("", "0")
TOKEN = "tok-golden-7f3a9c"
STEM = "research-log"

_STAMP = re.compile(
    r"\b(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_TIME_KEYS = re.compile(r'("(?:generated_at|fetched_at)"\s*:\s*)"[^"]*"')
_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b")


def _recent_dates() -> set[str]:
    """The dates a stamp of this run can carry (local or UTC, around midnight too)."""
    now = datetime.now(UTC)
    out = set()
    for days in (-1, 0, 1):
        out.add((now + timedelta(days=days)).strftime("%Y-%m-%d"))
        out.add((datetime.now() + timedelta(days=days)).strftime("%Y-%m-%d"))
    return out


class Normaliser:
    """Blank what differs from one run to the next: times, temporary paths, ports."""

    def __init__(self, tmp: Path, arxiv: FakeArxiv, github: FakeGitHub) -> None:
        paths = {str(tmp), str(tmp.resolve())}
        self.replacements = sorted(((p, "<tmp>") for p in paths), key=lambda r: -len(r[0]))
        self.replacements[:0] = [(arxiv.url, "http://arxiv.fake"),
                                 (github.url, "http://github.fake"), (TOKEN, "<token>")]
        self.recent = _recent_dates()

    def __call__(self, text: str, durations: bool = False) -> str:
        for old, new in self.replacements:
            text = text.replace(old, new)
        text = _PORT.sub(r"\1:<port>", text)
        text = _TIME_KEYS.sub(r'\1"<time>"', text)
        text = _STAMP.sub(
            lambda m: "<time>" if m.group("date") in self.recent else m.group(0), text)
        if durations:
            text = _DURATION.sub("<duration>", text)
        return text


def _requests(srv: FakeServer, since: int) -> dict[str, int]:
    counts = Counter(
        f"{r.endpoint} {'token' if r.credential == TOKEN else r.credential}"
        for r in srv.requests[since:]
    )
    return dict(sorted(counts.items()))


def _statuses(srv: FakeGitHub, since: int) -> dict[str, int]:
    counts = Counter(f"{ep} {status}" for ep, _, status in srv.statuses[since:])
    return dict(sorted(counts.items()))


class Runner:
    """Runs ``python -m enrich run`` on a copy of the example log and snapshots each step."""

    def __init__(self, tmp: Path, arxiv: FakeArxiv, github: FakeGitHub) -> None:
        self.tmp, self.arxiv, self.github = tmp, arxiv, github
        populate(arxiv, github, EXAMPLE.read_text(encoding="utf-8"))
        github.tokens[TOKEN] = "octo-golden"
        self.configure()
        self.log = tmp / "logs" / f"{STEM}.txt"
        self.log.parent.mkdir()
        shutil.copyfile(EXAMPLE, self.log)
        self.normalise = Normaliser(tmp, arxiv, github)

    def configure(self, **sections: dict[str, object]) -> None:
        self.cfg = write_config(self.tmp / "config.yaml", self.arxiv, self.github, **sections)

    def step(self, scenario: str, step: str, *flags: str, token: bool = False) -> int:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ENRICH_") and k not in ("GITHUB_TOKEN", "GH_TOKEN")}
        if token:
            env["GITHUB_TOKEN"] = TOKEN
        for out in self.log.parent.glob(f"{STEM}.enriched.*"):
            out.unlink()
        marks = (len(self.arxiv.requests), len(self.github.requests), len(self.github.statuses))
        done = subprocess.run(
            [sys.executable, "-m", "enrich", "run", "--file", str(self.log),
             "--config", str(self.cfg), *flags],
            cwd=self.tmp, env=env, capture_output=True, timeout=60,
        )
        result = {
            "argv": ["enrich", "run", "--file", "<tmp>/logs/research-log.txt",
                     "--config", "<tmp>/config.yaml", *flags],
            "token": token,
            "exit": done.returncode,
            "stdout": self.normalise(done.stdout.decode("utf-8"), durations=True).splitlines(),
            "stderr": self.normalise(done.stderr.decode("utf-8"), durations=True).splitlines(),
            "requests": {
                "arxiv": _requests(self.arxiv, marks[0]),
                "github": _requests(self.github, marks[1]),
                "github answers": _statuses(self.github, marks[2]),
            },
        }
        folder = GOLDEN / scenario
        self._check(folder / f"{step}.result.json",
                    json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        for suffix in ("md", "json"):
            out = self.log.with_name(f"{STEM}.enriched.{suffix}")
            text = (self.normalise(out.read_text(encoding="utf-8")) if out.exists()
                    else "<not written>\n")
            self._check(folder / f"{step}.enriched.{suffix}", text)
        return done.returncode

    def _check(self, path: Path, actual: str) -> None:
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != actual:
                path.write_text(actual, encoding="utf-8", newline="\n")
            return
        assert path.exists(), f"no snapshot {path}: run with ENRICH_UPDATE_GOLDEN=1"
        # pytest shows the difference of the two texts
        assert actual == path.read_text(encoding="utf-8"), path.relative_to(GOLDEN)


@pytest.fixture
def runner(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> Runner:
    return Runner(tmp_path, arxiv_server, github_server)


@pytest.mark.parametrize("scenario", ["anonymous", "token"])
def test_cold_warm_refresh_offline(runner: Runner, scenario: str) -> None:
    token = scenario == "token"
    assert runner.step(scenario, "1-cold", token=token) == 0
    assert runner.step(scenario, "2-warm", token=token) == 0
    assert runner.step(scenario, "3-refresh", "--refresh", token=token) == 0
    assert runner.step(scenario, "4-offline", "--offline", token=token) == 0


def test_offline_on_an_empty_cache(runner: Runner) -> None:
    assert runner.step("offline-empty", "1-offline", "--offline") == 1


def test_expired_records_offline_then_online(runner: Runner) -> None:
    assert runner.step("expired", "1-cold") == 0
    # every record expires at once: --offline serves them as stale, a run revalidates them
    runner.configure(cache={"arxiv_ttl": "1ms", "github_ttl": "1ms", "not_found_ttl": "1ms"})
    time.sleep(0.01)
    assert runner.step("expired", "2-offline", "--offline") == 0
    assert runner.step("expired", "3-online") == 0


def test_the_normalisation_blanks_only_the_runs_own_times(tmp_path: Path,
                                                          arxiv_server: FakeArxiv,
                                                          github_server: FakeGitHub) -> None:
    norm = Normaliser(tmp_path, arxiv_server, github_server)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = (f'"fetched_at": "{now}", "generated_at": "2001-01-01T00:00:00Z", '
            f'"published": "2023-05-16T17:00:00Z", "x": "{now[:10]}" '
            f"{tmp_path}/logs/a.txt {github_server.url}/repos/a/b http://127.0.0.1:5/x")
    assert norm(text) == (
        '"fetched_at": "<time>", "generated_at": "<time>", '
        '"published": "2023-05-16T17:00:00Z", "x": "<time>" '
        "<tmp>/logs/a.txt http://github.fake/repos/a/b http://127.0.0.1:<port>/x")
    assert norm("took 0.43 s, then 12ms", durations=True) == "took <duration>, then <duration>"
