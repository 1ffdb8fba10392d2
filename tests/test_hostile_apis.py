"""Hostile APIs: whatever arXiv, GitHub or the network answer, a run ends, reports
precisely and loses nothing.

Every case checks the same four things: the run ends (short timeouts, and the
test measures it), the exit status is right, every record has the right status
(data kept from the cache is ``stale`` and identical to what was cached, never
a made-up ``not_found``), and the cache is consistent (``PRAGMA
integrity_check``, every previously cached record still there, intact).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import load_json, run_cli, write_config

from enrich.write.json import load_schema
from enrich.write.markdown import strip_blocks

N_PAPERS = 8  # per focused test; the random mix uses three times as many
N_REPOS = 8
MAX_BYTES = 10 * 2**20  # the size cap under test: responses of 11-12 MiB must be refused
HUGE = 11 * 2**20
TIMEOUT = 0.5
TOKEN = "ghp_hostileApisToken0123456789abcdefXYZ"

#: Fields of a record that describe the world (not this run or this document).
_RUN_FIELDS = {"status", "fetched_at", "linked_from", "code", "papers", "trend"}


# -- set-up ------------------------------------------------------------------------------


class World:
    """The two fakes, a log naming their papers and repositories, a config and a cache."""

    def __init__(self, tmp: Path, arxiv: FakeArxiv, github: FakeGitHub, scale: int = 1) -> None:
        self.tmp = tmp
        self.arxiv = arxiv
        self.github = github
        self.n_papers, self.n_repos = N_PAPERS * scale, N_REPOS * scale
        self.ids = arxiv.add_synthetic(self.n_papers)
        self.keys = github.add_synthetic(self.n_repos)
        self.names = {k: github.repos[k].full_name for k in self.keys}
        self.log = tmp / "logs" / "night.txt"
        self.log.parent.mkdir()
        self.write_log(self.ids, self.keys)
        self.config = self.configure()
        self.db = tmp / "cache" / "enrich.sqlite3"

    def configure(self, **sections: Any) -> Path:
        base: dict[str, dict[str, Any]] = {
            "arxiv": {"batch_size": 4},
            "github": {"concurrency": 4, "batch_size": 3, "max_wait": "2s",
                       "secondary_wait": "20ms"},
            "http": {"timeout": TIMEOUT, "max_retries": 2, "backoff": "5ms",
                     "backoff_max": "20ms", "max_bytes": MAX_BYTES},
        }
        for section, values in sections.items():
            base.setdefault(section, {}).update(values)
        self.config = write_config(self.tmp / "config.yaml", self.arxiv, self.github, **base)
        return self.config

    def write_log(self, ids: list[str], keys: list[str]) -> None:
        lines = ["# nightly reading log", ""]
        for n in range(max(len(ids), len(keys))):
            parts = [f"{n}."]
            if n < len(ids):
                parts.append(f"paper https://arxiv.org/abs/{ids[n]}")
            if n < len(keys):
                parts.append(f"code https://github.com/{self.names[keys[n]]}")
            lines.append(" ".join(parts))
        self.text = "\n".join(lines) + "\n"
        self.log.write_text(self.text, encoding="utf-8")

    def run(self, *extra: str) -> tuple[int, str, dict[str, Any], float]:
        started = time.monotonic()
        code, _, err = run_cli("run", "--file", str(self.log), "--config", str(self.config),
                               *extra)
        took = time.monotonic() - started
        doc = load_json(self.log.with_name("night.enriched.json"))
        return code, err, doc, took

    def markdown(self) -> str:
        return self.log.with_name("night.enriched.md").read_text(encoding="utf-8")

    def requests(self) -> int:
        return self.arxiv.count() + self.github.count()


@pytest.fixture
def world(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> World:
    github_server.tokens[TOKEN] = "night-owl"
    github_server.anon_limit = 10**6  # rate limits are tested as faults, not by running out
    return World(tmp_path, arxiv_server, github_server)


def cache_rows(db: Path) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(kind, key) -> (status, data) of every cached record."""
    conn = sqlite3.connect(db)
    try:
        rows = {("arxiv", k): (s, json.loads(d))
                for k, s, d in conn.execute("SELECT id, status, data FROM papers")}
        rows.update({("github", k): (s, json.loads(d))
                     for k, s, d in conn.execute("SELECT key, status, data FROM repos")})
        return rows
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def world_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _RUN_FIELDS}


def check_outputs(w: World, doc: dict[str, Any], code: int) -> None:
    """Both outputs complete and valid; the exit status agrees with the statuses."""
    jsonschema.validate(doc, load_schema())
    assert strip_blocks(w.markdown()) == w.text
    statuses = [r["status"] for r in [*doc["papers"].values(), *doc["repos"].values()]]
    bad = any(s in ("stale", "missing", "error") for s in statuses)
    assert code == (1 if bad else 0), (code, Counter(statuses))
    failed = {(e["kind"], e["id"]) for e in doc["errors"]}
    for kind, records in (("arxiv", doc["papers"]), ("github", doc["repos"])):
        for key, rec in records.items():
            if rec["status"] in ("missing", "error", "stale"):
                assert (kind, key) in failed, (kind, key, rec["status"])


def check_intact(w: World, before: dict[tuple[str, str], tuple[str, dict[str, Any]]],
                 doc: dict[str, Any]) -> None:
    """Nothing cached before is lost or altered, in the cache or in the document."""
    assert integrity(w.db) == "ok"
    after = cache_rows(w.db)
    for ref, (status, data) in before.items():
        assert ref in after, f"{ref} vanished from the cache"
        if status == "ok":
            assert after[ref][0] == "ok", (ref, after[ref][0])
            assert after[ref][1] == data, ref
    for kind, records in (("arxiv", doc["papers"]), ("github", doc["repos"])):
        for key, rec in records.items():
            cached = before.get((kind, key))
            if cached is None or cached[0] != "ok":
                continue
            assert rec["status"] in ("ok", "stale"), (kind, key, rec["status"])
            assert world_fields(rec) == world_fields(cached[1] | {"status": "ok"}), (kind, key)


def good_run(w: World) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    code, err, _, _ = w.run()
    assert code == 0, err
    rows = cache_rows(w.db)
    assert sum(1 for s, _ in rows.values() if s == "ok") == w.n_papers + w.n_repos
    return rows


# -- every fault at random ---------------------------------------------------------------


def _atom(srv: FakeArxiv, pid: str, mangle: Callable[[bytes], bytes] = lambda b: b) -> bytes:
    return mangle(srv.feed_xml({}, [srv.entry_xml(srv.papers[pid], srv.papers[pid].versions)], 1))


def arxiv_menu(srv: FakeArxiv, elsewhere: str, stray_id: str) -> dict[str, dict[str, Any]]:
    """Every fault the arXiv side can throw, as ``faults.add`` keyword arguments."""
    atom = {"Content-Type": "application/atom+xml"}
    return {
        "503": {"kind": "status", "status": 503},
        "500": {"kind": "status", "status": 500},
        "502": {"kind": "status", "status": 502},
        "429 Rate exceeded": {"kind": "status", "status": 429, "body": b"Rate exceeded.",
                              "headers": {"Retry-After": "0"}},
        "429 Retry-After inf": {"kind": "status", "status": 429, "headers": {"Retry-After":
                                                                              "inf"}},
        "400 without an Error entry": {"kind": "status", "status": 400},
        "403 robot page": {"kind": "status", "status": 403, "body": b"<html>blocked</html>"},
        "reset": {"kind": "reset"},
        "hang": {"kind": "hang", "seconds": 1.0},
        "HTML instead of Atom": {"kind": "garbage"},
        "200 Rate exceeded.": {"kind": "garbage", "body": b"Rate exceeded.",
                               "headers": {"Content-Type": "text/plain"}},
        "truncated": {"kind": "truncate"},
        "empty page": {"kind": "empty"},
        "huge, declared": {"kind": "huge", "size": HUGE, "body": b"<?xml version='1.0'?>"},
        "huge, undeclared": {"kind": "huge", "size": HUGE, "declare": False},
        "slowloris body": {"kind": "drip", "interval": 0.05, "seconds": 3.0},
        "slowloris headers": {"kind": "drip", "interval": 0.05, "seconds": 3.0,
                              "whole": True},
        "redirect loop": {"kind": "redirect"},
        "redirect to another host": {"kind": "redirect",
                                     "headers": {"Location": elsewhere + "/api/query"}},
        "entry not asked for": {"kind": "garbage", "body": _atom(srv, stray_id),
                                "headers": atom},
        "entry with a date that is not one": {
            "kind": "garbage", "headers": atom,
            "body": _atom(srv, stray_id, lambda b: re.sub(
                rb"<published>[^<]*</published>", b"<published>soon</published>", b))},
    }


def github_menu(elsewhere: str) -> dict[str, dict[str, Any]]:
    """Every fault the GitHub side can throw, as ``faults.add`` keyword arguments."""
    js = {"Content-Type": "application/json"}
    return {
        "503": {"kind": "status", "status": 503},
        "502": {"kind": "status", "status": 502},
        "500 echoing headers": {"kind": "status", "status": 500,
                                "body": b'{"message": "boom", "headers": {}}'},
        "429 Retry-After 0": {"kind": "status", "status": 429, "headers": {"Retry-After": "0"}},
        "429 Retry-After 1e308": {"kind": "status", "status": 429,
                                  "headers": {"Retry-After": "1e308"}},
        "403 secondary limit": {"kind": "status", "status": 403, "body":
                                b'{"message": "You have exceeded a secondary rate limit."}'},
        "400": {"kind": "status", "status": 400},
        "reset": {"kind": "reset"},
        "hang": {"kind": "hang", "seconds": 1.0},
        "HTML instead of JSON": {"kind": "garbage", "body": b"<html><h1>Unicorn!</h1></html>",
                                 "headers": {"Content-Type": "text/html"}},
        "broken JSON": {"kind": "garbage"},
        "truncated": {"kind": "truncate"},
        "JSON with wrong types": {"kind": "garbage", "headers": js, "body": json.dumps({
            "full_name": ["a"], "stargazers_count": "many", "topics": 7, "license": [1],
            "data": [], "errors": 5}).encode()},
        "JSON missing fields": {"kind": "garbage", "headers": js, "body": b'{"id": 1}'},
        "huge, declared": {"kind": "huge", "size": HUGE},
        "huge, undeclared": {"kind": "huge", "size": HUGE, "declare": False},
        "slowloris body": {"kind": "drip", "interval": 0.05, "seconds": 3.0},
        "slowloris headers": {"kind": "drip", "interval": 0.05, "seconds": 3.0,
                              "whole": True},
        "redirect loop": {"kind": "redirect"},
        "redirect to another host": {"kind": "redirect",
                                     "headers": {"Location": elsewhere + "/repos/o/r"}},
        "redirect to javascript:": {"kind": "redirect",
                                    "headers": {"Location": "javascript:alert(1)"}},
    }


#: Faults that stop a source for the rest of the run (by design: a throttling or broken
#: API is not hammered), so that a round would end after a handful of requests.
STOPPERS = {"arxiv": ["429 Retry-After inf", "400 without an Error entry", "403 robot page",
                      "redirect to another host"],
            "github": ["429 Retry-After 1e308"]}


def queue_faults(srv: FakeArxiv | FakeGitHub, menu: dict[str, dict[str, Any]],
                 stoppers: list[str], rng: random.Random, n: int, round_no: int) -> list[str]:
    """Answers for the next ``n`` requests, a third of them faults: every fault that does
    not stop the source once, in every third round one of the ``stoppers`` (taking
    turns), and good answers (a ``slow`` fault of zero seconds), all shuffled; then
    faults and good answers drawn at random in the same proportion."""
    names = [k for k in menu if k not in stoppers]
    head = [*names, *["ok"] * (2 * len(names))]
    rng.shuffle(head)
    if round_no % 3 == 0:  # early, or the source may never get that far
        head.insert(rng.randrange(6), stoppers[(round_no // 3) % len(stoppers)])
    plan = head + [rng.choice([*names, *["ok"] * (2 * len(names))])
                   for _ in range(n - len(head))]
    for name in plan:
        if name == "ok":
            srv.faults.add("*", "slow", seconds=0.0)
        else:
            spec = dict(menu[name])
            srv.faults.add("*", spec.pop("kind"), **spec)
    return plan


@pytest.mark.slow
def test_every_fault_mixed_at_random_loses_nothing(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    github_server.tokens[TOKEN] = "night-owl"
    github_server.anon_limit = 10**6
    w = World(tmp_path, arxiv_server, github_server, scale=3)
    w.configure(http={"timeout": 0.3})  # hangs and drips cost a timeout each
    before = good_run(w)
    # ids the cache has never seen, mixed in with the cached ones
    new_ids = w.arxiv.add_synthetic(8)
    new_keys = w.github.add_synthetic(w.n_repos + 8)[w.n_repos:]
    w.names.update({k: w.github.repos[k].full_name for k in new_keys})
    w.write_log(w.ids + new_ids, w.keys + new_keys)
    stray = w.arxiv.add_synthetic(1)[0]  # served only as an entry nobody asked for
    with FakeGitHub() as elsewhere:
        a_menu = arxiv_menu(w.arxiv, elsewhere.url, stray)
        g_menu = github_menu(elsewhere.url)
        served: Counter[str] = Counter()
        total = 0
        rounds = 12
        for seed in range(rounds):
            rng = random.Random(seed)
            with_token = seed % 2 == 1
            if with_token:
                monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
            else:
                monkeypatch.delenv("GITHUB_TOKEN", raising=False)
            w.arxiv.reset_log()
            w.github.reset_log()
            queue_faults(w.arxiv, a_menu, STOPPERS["arxiv"], rng, 150, seed)
            queue_faults(w.github, g_menu, STOPPERS["github"], rng, 150, seed)
            code, err, doc, took = w.run("--refresh")
            total += w.requests()
            served.update(f"arxiv {r.fault}" for r in w.arxiv.requests if r.fault)
            served.update(f"github {r.fault}" for r in w.github.requests if r.fault)
            w.arxiv.faults.clear()
            w.github.faults.clear()

            assert "Traceback" not in err
            assert took < 30, f"round {seed} took {took:.1f}s"
            check_outputs(w, doc, code)
            check_intact(w, before, doc)
            cached = cache_rows(w.db)
            assert ("arxiv", stray) not in cached  # an entry nobody asked for is not kept
            assert set(doc["papers"]) == set(w.ids + new_ids)
            assert set(doc["repos"]) == set(w.keys + new_keys)
            for pid in new_ids:
                if ("arxiv", pid) in before:
                    continue
                status = doc["papers"][pid]["status"]
                assert status in ("ok", "error", "missing", "not_found"), status
                if status == "not_found":  # believable only after empty pages
                    assert any(r.fault == "empty" for r in w.arxiv.requests
                               if pid in ",".join(r.query.get("id_list", []))), pid
                if status == "ok":
                    assert doc["papers"][pid]["title"] == w.arxiv.papers[pid].title
            for key in new_keys:
                if ("github", key) in before:
                    continue
                rec = doc["repos"][key]
                assert rec["status"] in ("ok", "error", "missing"), (key, rec["status"])
                if rec["status"] == "ok":
                    assert rec["full_name"] == w.names[key]
                    assert rec["stars"] == w.github.repos[key].stars
            assert not any(r.headers.get("Authorization") for r in w.arxiv.requests)
            # what this round cached is what the next rounds must keep
            before.update({ref: row for ref, row in cache_rows(w.db).items()
                           if row[0] == "ok" and ref not in before})
        assert elsewhere.count() == 0  # no redirect to another host was followed

    assert total >= 300, total
    kinds = {f"arxiv {spec['kind']}" for spec in a_menu.values()}
    kinds |= {f"github {spec['kind']}" for spec in g_menu.values()}
    assert kinds <= set(served), kinds - set(served)
    # the next healthy run completes: nothing was lost
    code, err, doc, _ = w.run("--refresh")
    assert code == 0, err
    assert {r["status"] for r in [*doc["papers"].values(), *doc["repos"].values()]} == {"ok"}
    check_intact(w, before, doc)


# -- one fault at a time ---------------------------------------------------------------------


@pytest.fixture
def cached(world: World) -> Iterator[tuple[World, dict[tuple[str, str], tuple[str, Any]]]]:
    """A world whose cache holds every record from a good run (request logs emptied)."""
    rows = good_run(world)
    world.arxiv.reset_log()
    world.github.reset_log()
    yield world, rows


def all_failed_run(w: World, before: dict[tuple[str, str], tuple[str, Any]],
                   limit: float) -> dict[str, Any]:
    """A --refresh run in which every request fails: everything stale, exit 1, cache intact."""
    code, err, doc, took = w.run("--refresh")
    assert took < limit, f"the run took {took:.1f}s"
    assert code == 1, err
    assert "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    assert {r["status"] for r in doc["papers"].values()} == {"stale"}
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}
    return doc


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
def test_responses_over_10_mb_are_refused_at_max_bytes(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], declare: bool) -> None:
    w, before = cached
    w.arxiv.faults.add("*", "huge", times=50, size=HUGE, declare=declare)
    w.github.faults.add("*", "huge", times=50, size=HUGE, declare=declare)
    doc = all_failed_run(w, before, limit=20)
    messages = {e["message"] for e in doc["errors"]}
    assert all("max_bytes" in m for m in messages), messages
    # refused, not retried: one request per arXiv batch (then the rest is not attempted
    # or gets its own refusal), one per repository
    assert w.github.count() <= N_REPOS


@pytest.mark.slow
@pytest.mark.parametrize("whole", [False, True], ids=["body", "headers-and-body"])
def test_slowloris_is_cut_by_a_total_deadline(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], whole: bool) -> None:
    """A byte every 50 ms beats any per-read timeout; only a deadline per request holds."""
    w, before = cached
    # one arXiv request, every repository at once, one retry
    w.configure(arxiv={"batch_size": 100}, github={"concurrency": 32},
                http={"max_retries": 1})
    w.arxiv.faults.add("*", "drip", times=10, interval=0.05, seconds=20, whole=whole)
    w.github.faults.add("*", "drip", times=200, interval=0.05, seconds=20, whole=whole)
    # 2 attempts each, each cut at its deadline (GitHub: 3 timeouts); a drip lasts 20 s
    all_failed_run(w, before, limit=12)  # well under the 20 s drip
    assert w.arxiv.count() == 2
    # all 8 repositories at once: 8 failed attempts in a row stop GitHub for the run
    # (the circuit breaker); at most the retries already in flight go out after that
    assert N_REPOS <= w.github.count() < 2 * N_REPOS


@pytest.mark.parametrize("side", ["arxiv", "github"])
def test_html_instead_of_atom_or_json_is_retried_then_stale(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], side: str) -> None:
    w, before = cached
    srv = w.arxiv if side == "arxiv" else w.github
    srv.faults.add("*", "garbage", times=500, body=b"<!DOCTYPE html><html><body><h1>Whoa "
                   b"there!</h1><script>alert(1)</script></body></html>",
                   headers={"Content-Type": "text/html; charset=utf-8"})
    code, err, doc, _ = w.run("--refresh")
    assert code == 1 and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    records = doc["papers"] if side == "arxiv" else doc["repos"]
    others = doc["repos"] if side == "arxiv" else doc["papers"]
    assert {r["status"] for r in records.values()} == {"stale"}
    assert {r["status"] for r in others.values()} == {"ok"}
    assert not any("<script>" in e["message"] for e in doc["errors"])


WRONG_REST = {
    "a list": [1, 2, 3],
    "a string": "repository",
    "no full_name": {"id": 1, "stargazers_count": 5},
    "full_name a number": {"full_name": 42},
    "stars a string": {"full_name": "Synth-Owner-0/Repo-0.x", "stargazers_count": "many"},
    "topics not a list": {"full_name": "Synth-Owner-0/Repo-0.x", "topics": {"a": 1}},
    "description an object": {"full_name": "Synth-Owner-0/Repo-0.x", "description": {"x": 1}},
    "archived a string": {"full_name": "Synth-Owner-0/Repo-0.x", "archived": "perhaps"},
    "pushed_at not a date": {"full_name": "Synth-Owner-0/Repo-0.x", "pushed_at": "Tuesday"},
}

WRONG_GRAPHQL = {
    "errors a number": {"data": None, "errors": 5},
    "errors a string": {"errors": "everything"},
    "data a list": {"data": [1, 2]},
    "data a string": {"data": "r0"},
    "node a list": {"data": {"r0": [1]}},
    "node without nameWithOwner": {"data": {"r0": {"stargazerCount": 3}}},
    "stars a string": {"data": {"r0": {"nameWithOwner": "Synth-Owner-0/Repo-0.x",
                                        "stargazerCount": "many"}}},
    "topics of the wrong shape": {"data": {"r0": {"nameWithOwner": "Synth-Owner-0/Repo-0.x",
                                                   "repositoryTopics": {"nodes": [
                                                       {"topic": {"name": 5}}]}}}},
    "error path not a list": {"data": None, "errors": [{"path": "r0", "type": "NOT_FOUND"}]},
}


@pytest.mark.parametrize("shape", list(WRONG_REST))
def test_rest_json_with_wrong_types_or_missing_fields(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], shape: str) -> None:
    w, before = cached
    w.github.faults.add("rest", "garbage", times=500, body=json.dumps(WRONG_REST[shape]).encode(),
                        headers={"Content-Type": "application/json"})
    code, err, doc, _ = w.run("--refresh")
    assert code == 1 and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}


@pytest.mark.parametrize("shape", list(WRONG_GRAPHQL))
def test_graphql_json_with_wrong_types_or_missing_fields(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], shape: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, before = cached
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    w.github.faults.add("graphql", "garbage", times=500,
                        body=json.dumps(WRONG_GRAPHQL[shape]).encode(),
                        headers={"Content-Type": "application/json"})
    code, err, doc, _ = w.run("--refresh")
    assert code == 1 and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    # every repository is kept as it was cached; none became not_found on a bad answer
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}


def test_atom_entry_for_an_id_not_asked_for_is_neither_used_nor_cached(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]) -> None:
    w, before = cached
    w.configure(arxiv={"batch_size": 100})
    new = w.arxiv.add_synthetic(2)
    stray = w.arxiv.add_synthetic(1)[0]
    w.write_log(w.ids + new, w.keys)
    srv = w.arxiv
    answer = srv.feed_xml({}, [srv.entry_xml(srv.papers[stray], 1)], 1)
    srv.faults.add("query", "garbage", times=50, body=answer,
                   headers={"Content-Type": "application/atom+xml"})
    code, err, doc, _ = w.run("--refresh")
    assert code == 1 and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    assert stray not in doc["papers"]
    assert ("arxiv", stray) not in cache_rows(w.db)
    for pid in w.ids:
        assert doc["papers"][pid]["status"] == "stale"
    for pid in new:  # never a not_found on the word of an answer about another paper
        assert doc["papers"][pid]["status"] == "error"
        assert ("arxiv", pid) not in cache_rows(w.db)


def test_an_extra_entry_beside_the_right_ones_is_ignored(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]) -> None:
    w, before = cached
    w.configure(arxiv={"batch_size": 100})
    srv = w.arxiv
    stray = srv.add_synthetic(1)[0]
    for where in ("last", "first"):
        order = [*w.ids, stray] if where == "last" else [stray, *w.ids]
        entries = [srv.entry_xml(srv.papers[pid], srv.papers[pid].versions) for pid in order]
        answer = srv.feed_xml({}, entries, len(entries))
        srv.faults.add("query", "garbage", body=answer, headers={"Content-Type":
                                                                  "application/atom+xml"})
        code, err, doc, _ = w.run("--refresh")
        check_outputs(w, doc, code)
        check_intact(w, before, doc)
        assert stray not in doc["papers"] and ("arxiv", stray) not in cache_rows(w.db)
        statuses = Counter(r["status"] for r in doc["papers"].values())
        # 25 entries for 24 asked, wherever the stray one stands: every entry is read and
        # matched by its id, so each paper asked for is found
        assert code == 0, err
        assert statuses == {"ok": w.n_papers}


def test_one_unreadable_entry_costs_only_its_own_id(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]) -> None:
    """A well-formed feed the arxiv package cannot parse (a date that is not one)."""
    w, before = cached
    w.configure(arxiv={"batch_size": 100})
    srv = w.arxiv
    victim = w.ids[5]
    srv.papers[victim].title = "Fine title"
    real_entry = srv.entry_xml

    def entry_xml(p: Any, version: int) -> str:
        text = real_entry(p, version)
        if p.id == victim:
            text = re.sub(r"<published>[^<]*</published>", "<published>13/13/13</published>",
                          text)
        return text

    srv.entry_xml = entry_xml  # type: ignore[method-assign]
    code, err, doc, _ = w.run("--refresh")
    assert code == 1 and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    assert doc["papers"][victim]["status"] == "stale"
    assert {p["status"] for k, p in doc["papers"].items() if k != victim} == {"ok"}
    assert [e["id"] for e in doc["errors"]] == [victim]


def test_empty_pages_never_turn_a_cached_paper_into_not_found(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]) -> None:
    w, before = cached
    w.arxiv.empty_page(times=100)
    code, err, doc, _ = w.run("--refresh")
    assert code == 1, err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
    assert {p["status"] for p in doc["papers"].values()} == {"stale"}
    assert all("empty page" in e["message"] for e in doc["errors"])


def test_redirect_loops_end(cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]
                            ) -> None:
    w, before = cached
    w.arxiv.faults.add("*", "redirect", times=1000)
    w.github.faults.add("*", "redirect", times=1000)
    doc = all_failed_run(w, before, limit=15)
    assert any("redirect" in e["message"] for e in doc["errors"] if e["kind"] == "arxiv")
    assert all("redirect" in e["message"] for e in doc["errors"] if e["kind"] == "github")
    # bounded: at most 4 hops per repository, 4 for the first arXiv batch (then it stops)
    assert w.github.count() <= 4 * N_REPOS
    assert w.arxiv.count() <= 4


@pytest.mark.parametrize("mode", ["rest", "graphql"])
def test_redirect_to_another_host_is_not_followed_and_the_token_stays_home(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]], mode: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, before = cached
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    if mode == "rest":  # a token sends REST requests only as GraphQL's fallback
        for key in w.keys:
            w.github.graphql_errors[key] = "SOMETHING_NEW"
    evil, evil_arxiv = FakeGitHub(), FakeArxiv()
    with evil, evil_arxiv:
        w.github.faults.add(mode, "redirect", times=500, status=307,
                            headers={"Location": evil.url + "/graphql"})
        w.arxiv.faults.add("*", "redirect", times=500,
                           headers={"Location": evil_arxiv.api_url + "?id_list=1"})
        doc = all_failed_run(w, before, limit=15)
        assert evil.count() == 0 and evil_arxiv.count() == 0
    expected = "another host" if mode == "rest" else "HTTP 307"
    assert all(expected in e["message"] for e in doc["errors"] if e["kind"] == "github")
    assert all(r.credential == TOKEN for r in w.github.requests)
    assert not any(r.headers.get("Authorization") for r in w.arxiv.requests)


def test_hostile_headers_do_not_crash_the_run(
        cached: tuple[World, dict[tuple[str, str], tuple[str, Any]]]) -> None:
    w, before = cached
    for value in ("inf", "1e308", "nan", "-1", "99999999999999999999999"):
        w.arxiv.faults.add("*", "status", status=503, headers={"Retry-After": value})
        w.github.faults.add("*", "status", status=429, headers={"Retry-After": value})
    w.github.faults.add("*", "status", status=403, headers={"x-ratelimit-remaining": "0",
                                                            "x-ratelimit-reset": "1e99"})
    w.github.faults.add("*", "redirect", headers={"Location": "javascript:alert(1)"})
    w.github.faults.add("*", "redirect", headers={"Location": "http://[::1"})
    code, err, doc, took = w.run("--refresh")
    assert took < 15
    assert code in (0, 1) and "Traceback" not in err
    check_outputs(w, doc, code)
    check_intact(w, before, doc)
