"""Soak: hours of a nightly job's bad luck, compressed. Prints the reliability table.

Not part of the test suite (the tests run a shorter version of each part). Run::

    .venv/bin/python bench/soak.py [--rounds 40] [--kills 60] [--together 10] [--seed 1]

Three parts, each against the fake APIs of ``tests/fakeapi`` on 127.0.0.1:

- **fault mix**: ``--rounds`` runs of ``enrich run --refresh``, alternately with and
  without a token, each facing a fresh random mix of every fault the fakes can
  throw (the menus of ``tests/test_hostile_apis.py``), a third of all answers
  being faults, plus answers echoing the token. After each round: outputs
  complete and valid, every record cached before still cached and identical,
  statuses agreeing with the exit code, no trace of the token anywhere.
- **kill -9**: ``--kills`` runs of ``python -m enrich run`` killed at random
  points (start-up, fetching, writing), then outputs and cache checked.
- **together**: ``--together`` times, three runs started at once on one cache.

Every check failure is counted (never raised), and the table says how many.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

from fakeapi.arxiv import FakeArxiv  # noqa: E402
from fakeapi.github import FakeGitHub  # noqa: E402
from test_hostile_apis import (  # noqa: E402
    STOPPERS,
    World,
    arxiv_menu,
    cache_rows,
    check_intact,
    check_outputs,
    github_menu,
    good_run,
    queue_faults,
)
from test_hostile_timing import Night, _wait  # noqa: E402
from test_secrets import TOKEN, echo_token, traces  # noqa: E402


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A temporary working folder and home, and no ENRICH_*/GITHUB_TOKEN from outside."""
    saved = dict(os.environ)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="enrich-soak-") as tmp:
        root = Path(tmp)
        for name in list(os.environ):
            if name.startswith("ENRICH_") or name in ("GITHUB_TOKEN", "GH_TOKEN"):
                del os.environ[name]
        os.environ["HOME"] = str(root / "home")
        os.environ["XDG_CACHE_HOME"] = str(root / "home" / ".cache")
        (root / "work").mkdir()
        os.chdir(root / "work")
        try:
            yield root
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []

    def check(self, what: str, fn: Callable[[], Any]) -> bool:
        try:
            fn()
        except AssertionError as exc:
            self.counts[what] += 1
            self.problems.append(f"{what}: {str(exc)[:300]}")
            return False
        return True


def fault_mix(rounds: int, seed: int, tally: Tally) -> dict[str, Any]:
    served: Counter[str] = Counter()
    requests = 0
    slowest = 0.0
    exits: Counter[int] = Counter()
    statuses: Counter[str] = Counter()
    with sandbox() as root, FakeArxiv() as arxiv, FakeGitHub() as github, \
            FakeGitHub() as elsewhere:
        github.tokens[TOKEN] = "night-owl"
        github.anon_limit = 10**6
        w = World(root, arxiv, github, scale=3)
        w.configure(http={"timeout": 0.3})
        before = good_run(w)
        new_ids = arxiv.add_synthetic(8)
        new_keys = github.add_synthetic(w.n_repos + 8)[w.n_repos:]
        w.names.update({k: github.repos[k].full_name for k in new_keys})
        w.write_log(w.ids + new_ids, w.keys + new_keys)
        stray = arxiv.add_synthetic(1)[0]
        a_menu = arxiv_menu(arxiv, elsewhere.url, stray)
        g_menu = github_menu(elsewhere.url)
        for n in range(rounds):
            rng = random.Random(seed * 1000 + n)
            if n % 2:
                os.environ["GITHUB_TOKEN"] = TOKEN
            else:
                os.environ.pop("GITHUB_TOKEN", None)
            arxiv.reset_log()
            github.reset_log()
            plans = {"arXiv": (arxiv, queue_faults(arxiv, a_menu, STOPPERS["arxiv"], rng, 150, n)),
                     "GitHub": (github, queue_faults(github, g_menu, STOPPERS["github"], rng,
                                                     150, n))}
            if n % 2:
                echo_token(github)
            try:
                code, err, doc, took = w.run("--refresh")
            except Exception as exc:  # a crash is a finding, not the end of the soak
                tally.counts["crashes"] += 1
                tally.problems.append(f"round {n}: {type(exc).__name__}: {exc}")
                continue
            finally:
                for side, (srv, plan) in plans.items():
                    # FIFO: the first answers of the plan are the ones served
                    left = len(srv.faults._queues.get("*", ()))
                    served.update(f"{side}: {name}" for name in plan[:len(plan) - left]
                                  if name != "ok")
                    srv.faults.clear()
            requests += w.requests()
            slowest = max(slowest, took)
            exits[code] += 1
            statuses.update(r["status"] for r in [*doc["papers"].values(),
                                                  *doc["repos"].values()])
            if "Traceback" in err:
                tally.counts["crashes"] += 1
            tally.check("partial or inconsistent outputs",
                        lambda d=doc, c=code: check_outputs(w, d, c))
            tally.check("lost or altered records", lambda d=doc: check_intact(w, before, d))
            tally.check("stray entry cached",
                        lambda: _assert(("arxiv", stray) not in cache_rows(w.db)))
            leaks = traces(err.encode())
            for path in root.rglob("*"):
                if path.is_file():
                    leaks += traces(path.read_bytes())
            tally.check("token leaks", lambda found=leaks: _assert(not found, found[:3]))
            before.update({ref: row for ref, row in cache_rows(w.db).items()
                           if row[0] == "ok" and ref not in before})
        tally.check("redirects followed to another host",
                    lambda: _assert(elsewhere.count() == 0))
        arxiv.faults.clear()
        github.faults.clear()
        code, err, doc, _ = w.run("--refresh")
        tally.check("next healthy run incomplete", lambda: _assert(code == 0, err))
        tally.check("lost or altered records", lambda: check_intact(w, before, doc))
    return {"requests": requests, "served": served, "slowest": slowest, "exits": exits,
            "statuses": statuses}


def _assert(cond: bool, detail: Any = "") -> None:
    assert cond, detail


def kills(n: int, seed: int, tally: Tally) -> Counter[str]:
    from support import run_cli

    landed: Counter[str] = Counter()
    with sandbox() as root, FakeArxiv() as arxiv, FakeGitHub() as github:
        w = Night(root, arxiv, github)
        code, _, err = run_cli(*w.args())
        assert code == 0, err
        keys = w.all_keys()
        arxiv.latency = github.latency = 0.02
        last = w.outputs(w.logs[-1])[1]
        stamp = last.stat().st_mtime_ns
        arxiv.reset_log()
        github.reset_log()
        proc = w.spawn("--refresh")
        _wait(lambda: w.requests() > 0, 20)
        t0 = time.monotonic()
        _wait(lambda: last.stat().st_mtime_ns != stamp, 20)
        busy = time.monotonic() - t0
        proc.communicate(timeout=30)
        rng = random.Random(seed)
        for i in range(n):
            for key in w.keys:
                github.set_stars(key, 100 * i + 7)
            arxiv.reset_log()
            github.reset_log()
            proc = w.spawn("--refresh")
            first = w.outputs(w.logs[0])[0]
            first_stamp = first.stat().st_mtime_ns
            if i % 5 == 0:  # start-up: imports, config, lock, cache open and migrations
                time.sleep(rng.uniform(0.0, 0.9))
            elif i % 5 == 4:  # while the outputs are being written
                _wait(lambda p=proc, f=first, t=first_stamp: f.stat().st_mtime_ns != t
                      or p.poll() is not None, 20)
                time.sleep(rng.uniform(0.0, 0.015))
            else:
                _wait(lambda p=proc: w.requests() > 0 or p.poll() is not None, 20)
                time.sleep(rng.uniform(0.0, busy * 1.1))
            os.kill(proc.pid, signal.SIGKILL)
            rc = proc.wait(10)
            proc.communicate()
            docs: dict[Path, Any] = {}
            tally.check("partial outputs after kill -9",
                        lambda found=docs: found.update(w.check_outputs()))
            tally.check("corrupt cache or lost records after kill -9",
                        lambda: w.check_cache(keys))
            stars = {d["repos"][k]["stars"] for d in docs.values() if d for k in d["repos"]}
            temps = [p for p in w.logs[0].parent.iterdir() if p.name.endswith(".tmp")]
            if temps:  # a kill between a temporary file's creation and its rename
                landed["(left a hidden temporary file behind)"] += 1
                for p in temps:
                    p.unlink()
            if rc == 0:
                landed["after the run had finished"] += 1
            elif stars == {100 * i + 7}:
                landed["after both outputs were written"] += 1
            elif 100 * i + 7 in stars:
                landed["between the two files' outputs"] += 1
            elif w.requests() == 0:
                landed["before any request"] += 1
            else:
                landed["while fetching or writing the cache"] += 1
        arxiv.latency = github.latency = 0.0
        code, _, err = run_cli(*w.args("--refresh"))
        tally.check("next run after kills incomplete", lambda: _assert(code == 0, err))
        tally.check("corrupt cache or lost records after kill -9", lambda: w.check_cache(keys))
    return landed


def together(n: int, tally: Tally) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    with sandbox() as root, FakeArxiv() as arxiv, FakeGitHub() as github:
        w = Night(root, arxiv, github)
        arxiv.latency = github.latency = 0.1
        for _ in range(n):
            procs = [w.spawn("--refresh") for _ in range(3)]
            codes = sorted(p.wait(60) for p in procs)
            for p in procs:
                p.communicate()
            outcomes[" ".join(map(str, codes))] += 1
            tally.check("two runs proceeded at once", lambda c=codes: _assert(c == [0, 75, 75], c))
            tally.check("partial outputs (runs together)", w.check_outputs)
            tally.check("corrupt cache (runs together)", lambda: w.check_cache(w.all_keys()))
    return outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--kills", type=int, default=60)
    ap.add_argument("--together", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tally = Tally()
    started = time.monotonic()
    mix = fault_mix(args.rounds, args.seed, tally)
    landed = kills(args.kills, args.seed, tally)
    outcomes = together(args.together, tally)
    took = time.monotonic() - started

    print(f"# enrich soak (seed {args.seed}, {took:.0f} s)\n")
    print("| case | tried | what happened |")
    print("|---|---|---|")
    print(f"| random fault mix (both APIs, with and without token) | {args.rounds} runs, "
          f"{mix['requests']} requests | exits {dict(mix['exits'])}; statuses "
          f"{dict(mix['statuses'])}; slowest run {mix['slowest']:.1f} s |")
    for kind, count in sorted(mix["served"].items()):
        print(f"| {kind} | {count} | absorbed (see checks) |")
    for where, count in landed.most_common():
        print(f"| kill -9 {where} | {count} | outputs old or new, cache intact |")
    for codes, count in outcomes.most_common():
        print(f"| 3 runs started together | {count} | exit codes {codes} |")
    print()
    checks = ["crashes", "partial or inconsistent outputs", "lost or altered records",
              "stray entry cached", "token leaks", "redirects followed to another host",
              "next healthy run incomplete", "partial outputs after kill -9",
              "corrupt cache or lost records after kill -9", "next run after kills incomplete",
              "two runs proceeded at once", "partial outputs (runs together)",
              "corrupt cache (runs together)"]
    for name in checks:
        print(f"- {name}: {tally.counts[name]}")
    for problem in tally.problems[:20]:
        print(f"  ! {problem}")


if __name__ == "__main__":
    main()
