"""N hosts sharing one PostgreSQL cache (``cache.url``), against the fake APIs.

Not part of the test suite. Run::

    .venv/bin/python bench/shared.py                  # 4 hosts, 600 + 600 shared ids
    .venv/bin/python bench/shared.py --quick          # 3 hosts, 60 + 60
    .venv/bin/python bench/shared.py --interval 3     # arXiv's real spacing (slow)

Each host is a ``python -m enrich run`` process in a folder of its own, with a log
made of the ids every host names (``--papers`` + ``--repos``) and ``--own`` ids of
each kind that only it names. A throw-away PostgreSQL server is started as the tests
start it (``tests/pgserver.py``). Printed:

- total requests (counted by the fakes) against the lower bound: every distinct id
  once, arXiv ids in full batches of ``arxiv.batch_size``, one REST call per repository;
- the wall time of the N hosts together against one host doing all the work (the
  union of the logs, on an empty database);
- the arXiv spacing as the fake arXiv saw it: the smallest start-to-start gap and
  whether two requests ever overlapped.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi.arxiv import FakeArxiv  # noqa: E402
from fakeapi.github import FakeGitHub  # noqa: E402
from pgserver import start_server  # noqa: E402

BATCH = 100


def make_logs(arxiv: FakeArxiv, github: FakeGitHub, hosts: int, papers: int, repos: int,
              own: int) -> list[str]:
    """Each host's log: the shared ids, then its own."""
    shared_p = arxiv.add_synthetic(papers)
    shared_r = [f"shared{n}/tool{n}" for n in range(repos)]
    logs = []
    for h in range(hosts):
        mine_p = arxiv.add_synthetic(own)
        mine_r = [f"host{h}/tool{n}" for n in range(own)]
        lines = [f"- 读了 https://arxiv.org/abs/{pid} 很有意思" for pid in [*shared_p, *mine_p]]
        lines += [f"- code https://github.com/{key}" for key in [*shared_r, *mine_r]]
        logs.append("\n".join(lines) + "\n")
    for n, key in enumerate([*shared_r, *(f"host{h}/tool{n}" for h in range(hosts)
                                          for n in range(own))]):
        github.add_repo(key, stars=n, description=f"tool {n}")
    return logs


def config(path: Path, arxiv: FakeArxiv, github: FakeGitHub, url: str,
           interval: float) -> Path:
    data = {
        "cache": {"url": url, "lease": "30s", "poll_interval": "100ms"},
        "arxiv": {"api_url": arxiv.api_url, "min_interval": interval, "batch_size": BATCH},
        "github": {"api_url": github.url, "graphql_url": github.url + "/graphql",
                   "concurrency": 4},
        "http": {"timeout": "10s"},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_hosts(folders: list[Path], cfg: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "enrich", "run", "--file", "log.txt",
                               "--config", str(cfg), "--quiet"], cwd=folder, env=env)
             for folder in folders]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    if any(codes):
        raise SystemExit(f"a host failed: exit codes {codes}")
    return wall


def spacing(arxiv: FakeArxiv) -> tuple[float | None, int]:
    """The smallest start-to-start gap of arXiv queries, and how many overlapped."""
    queries = sorted((r for r in arxiv.requests if r.endpoint == "query"), key=lambda r: r.time)
    gaps = [b.time - a.time for a, b in pairwise(queries)]
    overlaps = sum(1 for a, b in pairwise(queries) if a.ended is None or b.time < a.ended)
    return (min(gaps) if gaps else None), overlaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--papers", type=int, default=600)
    ap.add_argument("--repos", type=int, default=600)
    ap.add_argument("--own", type=int, default=50, help="ids of each kind only one host names")
    ap.add_argument("--interval", type=float, default=0.5, help="arxiv.min_interval (s)")
    ap.add_argument("--latency", type=float, default=0.05, help="the fakes' answer time (s)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.hosts, args.papers, args.repos, args.own = 3, 60, 60, 10
    server = start_server()
    if isinstance(server, str):
        raise SystemExit(server)
    work = HERE / "out" / "shared"
    try:
        with FakeArxiv() as arxiv, FakeGitHub() as github:
            arxiv.latency = github.latency = args.latency
            github.anon_limit = 10**6  # no token: REST, one call per repository
            logs = make_logs(arxiv, github, args.hosts, args.papers, args.repos, args.own)
            n_p = args.papers + args.hosts * args.own
            n_r = args.repos + args.hosts * args.own
            bound = math.ceil(n_p / BATCH) + n_r

            one = work / "one-host"
            one.mkdir(parents=True, exist_ok=True)
            union = "".join(logs)
            (one / "log.txt").write_text(union, encoding="utf-8")
            wall_one = run_hosts([one], config(work / "one.yaml", arxiv, github,
                                               server.new_database(), args.interval))
            one_requests = arxiv.count() + github.count()
            arxiv.reset_log()
            github.reset_log()

            folders = []
            for h, text in enumerate(logs):
                folder = work / f"host{h}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "log.txt").write_text(text, encoding="utf-8")
                folders.append(folder)
            cfg = config(work / "shared.yaml", arxiv, github, server.new_database(),
                         args.interval)
            wall = run_hosts(folders, cfg)
            per_paper = collections.Counter(i for ids in arxiv.id_lists() for i in ids)
            per_repo = collections.Counter(r.path.lower() for r in github.requests)
            total = arxiv.count() + github.count()
            gap, overlaps = spacing(arxiv)

            arxiv.reset_log()
            github.reset_log()
            extra = work / "late-host"
            extra.mkdir(parents=True, exist_ok=True)
            (extra / "log.txt").write_text(logs[0], encoding="utf-8")
            run_hosts([extra], cfg)
            late = arxiv.count() + github.count()
    finally:
        server.stop()

    print(f"{args.hosts} hosts, each {args.papers} + {args.repos} shared ids and {args.own} + "
          f"{args.own} of its own ({n_p} papers, {n_r} repositories in all); "
          f"arxiv.min_interval {args.interval:g} s, {args.latency * 1000:g} ms per answer")
    print(f"requests: {total} in total, lower bound {bound} "
          f"({math.ceil(n_p / BATCH)} arXiv queries + {n_r} REST calls)")
    print(f"  fetches per paper: max {max(per_paper.values())}, papers fetched {len(per_paper)}"
          f"/{n_p}; per repository: max {max(per_repo.values())}, fetched {len(per_repo)}/{n_r}")
    print(f"wall: {wall:.1f} s for the {args.hosts} hosts together, {wall_one:.1f} s for one "
          f"host doing all the work ({one_requests} requests)")
    print(f"arXiv spacing: smallest start-to-start gap {gap if gap is None else round(gap, 3)} s "
          f"(min_interval {args.interval:g} s); overlapping requests: {overlaps}")
    print(f"a late host on a log already fetched: {late} requests")


if __name__ == "__main__":
    main()
