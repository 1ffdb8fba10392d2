"""End-to-end benchmark of ``enrich run`` against the fake APIs, and against a naive script.

Not part of the test suite. Run::

    .venv/bin/python bench/run.py            # N = M = 2000, 50 ms per request (~1-2 min)
    .venv/bin/python bench/run.py --quick    # N = M = 200, a fast check
    .venv/bin/python bench/run.py --real-pace  # arXiv's 3 s spacing, 300 ms (~1.5 min)
    .venv/bin/python bench/run.py --hashes   # only the outputs' normalised sha256 (~5 s)
    .venv/bin/python bench/run.py --write-log research.txt  # only the synthetic log

Why it is built this way: users judge enrich by how long a nightly job takes
and how much API quota it burns, so every figure comes from the real command
(``python -m enrich run --file ... --config ...`` in a subprocess, process
start included) talking HTTP to the project's fake arXiv and GitHub servers
(``tests/fakeapi``), which add a fixed latency to every answer. Requests are
counted by the fakes, not by enrich. Each run is compared with its *lower
bound*: the fewest requests the APIs allow (100 ids per arXiv query, 100
repositories per GraphQL query, one REST call per repository) times the
latency, with arXiv queries one at a time (``arxiv.min_interval`` apart),
GraphQL queries one at a time (GitHub asks for serial requests) and REST
``github.concurrency`` in flight; the arXiv and GitHub halves overlap, so the
bound is the longer of the two.

Runs: cold with a token (empty cache), warm (everything within its TTL; the
median of ``--repeats``), refresh with a token (``--refresh``: TTLs ignored,
data unchanged), cold without a token (REST), refresh without a token (every
REST request must carry ``If-None-Match`` and be answered 304). Peak memory
is each child's ``ru_maxrss`` from ``os.wait4``. The baseline is what a user
would write without enrich: one ``arxiv`` package query per paper and one REST
call per repository, sequentially, no cache; it runs on a subset
(``--baseline-subset``) and is extrapolated linearly (said so in the output).

It prints a table and writes ``bench/results.md`` (``--results``) with the
machine it ran on. The working folder (log, configs, caches, outputs) is
``bench/out/run`` (``bench/out/real-pace-N-M`` for ``--real-pace``; ignored by
git), kept for inspection.

``--real-pace`` runs at the pace of the real APIs instead: ``arxiv.min_interval``
3 s and 300 ms per request, with a token, one cold run per size (1000 + 1000 and
2000 + 2000 unless ``--sizes``), each against its own bound: arXiv's spacing, its
last answer and one cross-link query, ``(ceil(N/100) - 1) * 3 s + 2 * latency``;
the target is ``1.05 * bound + 1 s``. It prints the arXiv queries' start-to-start
spacing (the fake's arrival times), requests per endpoint, peak requests in
flight and the peak thread count of the enrich process (``/proc/PID/task`` polled
every 10 ms; the threads' names from a ``sitecustomize`` that logs each
``Thread.start``), and writes ``bench/results-real-pace.md``.

Outputs are deterministic but for their timestamps (``generated_at``,
``fetched_at`` in the JSON): each mode prints the sha256 of the warm run's
``.enriched.md`` and ``.enriched.json`` with those values blanked
(:func:`normalised_sha256`), so two versions of enrich can be shown to write the
same bytes; ``--hashes`` does only that (a cold and a warm run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

if TYPE_CHECKING:
    from fakeapi.arxiv import FakeArxiv
    from fakeapi.github import FakeGitHub

TOKEN = "bench-token-0123456789"
#: Batch sizes the APIs allow (arXiv: ~100 ids fit the URL limit; GraphQL: 100 nodes).
ARXIV_BATCH = 100
GRAPHQL_BATCH = 100
REST_CONCURRENCY = 4
#: Modules a warm run (nothing to fetch) should not need.
NETWORK_MODULES = ("httpx", "httpcore", "h11", "anyio", "arxiv", "feedparser", "requests",
                   "urllib3", "lxml", "rich", "charset_normalizer", "jsonschema")


# -- the synthetic log -----------------------------------------------------------------------

_TOPICS = ("长上下文推理", "多模态对齐", "量化微调", "检索增强生成", "MoE 路由", "推理加速",
           "数据集构建", "智能体规划", "扩散模型", "显存优化", "评测基准", "指令微调")
_FILLER = ("今天读完，方法很简洁", "实验部分值得细看", "和上周那篇思路类似", "代码质量不错",
           "结论有点意外，需要复现", "适合做 baseline", "附录里有训练细节", "组会上讨论过")
_PAPER_FORMS = ("https://arxiv.org/abs/{id}", "arXiv:{id}", "https://arxiv.org/pdf/{id}v2.pdf",
                "https://huggingface.co/papers/{id}", "[论文](https://arxiv.org/abs/{id})",
                "https://www.alphaxiv.org/abs/{id}", "arxiv.org/abs/{id}v1")
_REPO_FORMS = ("https://github.com/{name}", "github.com/{name}/tree/main",
               "【https://github.com/{name}】", "（https://github.com/{name}）",
               "https://github.com/{name}#readme", "https://github.com/{name}.git")
_WEEKDAYS = "一二三四五六日"


def make_log(paper_ids: Sequence[str], repo_names: Sequence[str], seed: int = 7) -> str:
    """A research log in the user's style naming every paper and repository once.

    Chinese prose with full-width punctuation, markdown bullets, line
    continuations, image attachments and badges (which are not links), and the
    link forms the extractor accepts.
    """
    rng = random.Random(seed)
    mentions = ([("p", i) for i in paper_ids] + [("r", n) for n in repo_names])
    rng.shuffle(mentions)
    out = ["# 阅读记录（enrich 基准测试生成的日志）", ""]
    day = item = 0
    pos = 0
    while pos < len(mentions):
        if item % 12 == 0:
            day += 1
            out += ["", f"## 11.{day % 28 + 1:02d} 周{_WEEKDAYS[day % 7]}"]
        item += 1
        take = mentions[pos:pos + rng.choice((1, 2, 2, 3))]
        pos += len(take)
        parts = []
        for kind, ident in take:
            if kind == "p":
                form = rng.choice(_PAPER_FORMS).format(id=ident)
                parts.append(f"论文：{form}")
            else:
                form = rng.choice(_REPO_FORMS).format(name=ident)
                parts.append(f"代码：{form}")
        topic, filler = rng.choice(_TOPICS), rng.choice(_FILLER)
        sep = rng.choice(("，", " ，", "；", " \\\n"))
        end = rng.choice(("", "。", " 。"))
        out.append(f"* {item}、{topic}：{filler}。" + sep.join(parts) + end)
        roll = rng.random()
        if roll < 0.05:
            out.append("![image](https://github.com/user-attachments/assets/"
                       f"{rng.getrandbits(64):016x})")
        elif roll < 0.08:
            out.append("徽章不算链接：![stars](https://img.shields.io/github/stars/"
                       f"{rng.choice(repo_names) if repo_names else 'a/b'})")
        elif roll < 0.12:
            out.append(f"  备注：{rng.choice(_FILLER)}，下周继续。")
    return "\n".join(out) + "\n"


# -- running the command ---------------------------------------------------------------------


@dataclass
class Proc:
    code: int
    wall: float
    cpu: float
    maxrss_kb: int
    stdout: str
    stderr: str
    started_at: float = 0.0  # time.time() at spawn, to compare with the fakes' logs
    peak_threads: int = 0  # with ``watch_threads``: most threads seen at once
    thread_ids: int = 0  # ... and distinct thread ids seen


def _watch_threads(pid: int, done: threading.Event, seen: list[set[int]]) -> None:
    """Poll ``/proc/PID/task`` every 10 ms until ``done``: one set of thread ids per poll."""
    task = f"/proc/{pid}/task"
    while not done.is_set():
        try:
            seen.append({int(t) for t in os.listdir(task)})
        except OSError:
            return
        done.wait(0.01)


def run_process(argv: Sequence[str], *, env: dict[str, str], cwd: Path,
                watch_threads: bool = False) -> Proc:
    """Run ``argv`` to completion; wall time from spawn to exit, and its own peak RSS.

    ``os.wait4`` gives the rusage of exactly this child (``RUSAGE_CHILDREN``
    would give the maximum over every child so far).
    """
    out_path, err_path = cwd / "last.stdout", cwd / "last.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        started = time.perf_counter()
        p = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out, stderr=err)
        done, seen = threading.Event(), []
        watcher = threading.Thread(target=_watch_threads, args=(p.pid, done, seen))
        if watch_threads:
            watcher.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - started
        p.returncode = os.waitstatus_to_exitcode(status)
        if watch_threads:
            done.set()
            watcher.join()
    return Proc(p.returncode, wall, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss),
                out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"),
                started_at, max(map(len, seen), default=0), len(set().union(*seen)))


def child_env(token: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ENRICH_") and k != "GITHUB_TOKEN"}
    if token:
        env["GITHUB_TOKEN"] = TOKEN
    # A real install caches bytecode; keep the environment from forbidding it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def write_config(path: Path, arxiv: FakeArxiv, github: FakeGitHub,
                 min_interval: float = 0) -> Path:
    import yaml

    data = {
        "cache": {"path": "cache/enrich.sqlite3"},
        "arxiv": {"api_url": arxiv.api_url, "min_interval": min_interval,
                  "batch_size": ARXIV_BATCH},
        "github": {"api_url": github.url, "graphql_url": github.url + "/graphql",
                   "batch_size": GRAPHQL_BATCH, "concurrency": REST_CONCURRENCY},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Bound:
    arxiv: int
    github: int
    seconds: float


def lower_bound(papers: int, repos: int, *, token: bool, latency: float,
                interval: float = 0.0) -> Bound:
    """Fewest requests the APIs allow for this work, and the least time they take."""
    a = math.ceil(papers / ARXIV_BATCH)
    t_a = a * latency + max(0, a - 1) * interval
    if token:
        g = math.ceil(repos / GRAPHQL_BATCH)
        t_g = g * latency
    else:
        g = repos
        t_g = math.ceil(repos / REST_CONCURRENCY) * latency
    return Bound(a, g, max(t_a, t_g))


@dataclass
class Row:
    name: str
    token: bool
    walls: list[float]
    cpus: list[float]
    maxrss_kb: int
    arxiv: int
    graphql: int
    rest: int
    conditional: int
    answered_304: int
    bound: Bound
    code: int
    checks: list[str] = field(default_factory=list)
    #: Per repeat: (spawn to first request, first request to last answer, last
    #: answer to exit), in seconds; empty for runs without requests.
    phases: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    @property
    def over_bound(self) -> float | None:
        return self.wall / self.bound.seconds if self.bound.seconds else None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from fakeapi.arxiv import FakeArxiv
        from fakeapi.github import FakeGitHub

        self.args = args
        self.n, self.m, self.latency = args.n, args.m, args.latency
        self.min_interval = args.min_interval
        #: Set for the runs to watch: the child's threads (see ``run_process``) and,
        #: through ``thread_names_env``, the names of the threads it starts.
        self.watch_threads = False
        self.extra_env: dict[str, str] = {}
        self.last_proc: Proc | None = None
        self.work = args.work
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.arxiv = FakeArxiv()
        self.github = FakeGitHub()
        self.paper_ids = self.arxiv.add_synthetic(self.n)
        self.repo_keys = self.github.add_synthetic(self.m)
        self.repo_names = [self.github.repos[k].full_name for k in self.repo_keys]
        self.github.tokens[TOKEN] = "bench-user"
        # Two anonymous passes over M repositories (cold, then refresh, whose 304s
        # also cost one each anonymously) must fit: the real limit is 60/h.
        self.github.anon_limit = 10 * self.m + 100
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.imports: list[str] = []

    # -- setup -------------------------------------------------------------------------

    def start(self) -> None:
        for srv in (self.arxiv, self.github):
            srv.latency = self.latency
            srv.start()
        self.log = self.work / "logs" / "research.txt"
        self.log.parent.mkdir(parents=True)
        self.log.write_text(make_log(self.paper_ids, self.repo_names), encoding="utf-8")
        sys.path.insert(0, str(ROOT / "src"))
        from enrich.extract import extract

        links = extract(self.log.read_text(encoding="utf-8"))
        found_p = {lk.id for lk in links if lk.kind == "arxiv"}
        found_r = {lk.id for lk in links if lk.kind == "github"}
        if found_p != set(self.paper_ids) or found_r != set(self.repo_keys):
            raise SystemExit(f"generated log: extractor found {len(found_p)} papers and "
                             f"{len(found_r)} repositories, expected {self.n} and {self.m}")
        self.links = len(links)
        self.cfg_token = write_config(self.work / "with-token" / "config.yaml",
                                      self.arxiv, self.github, self.min_interval)
        self.cfg_anon = write_config(self.work / "no-token" / "config.yaml",
                                     self.arxiv, self.github, self.min_interval)

    def stop(self) -> None:
        for srv in (self.arxiv, self.github):
            srv.stop()

    # -- one run -----------------------------------------------------------------------

    def _reset_counters(self) -> None:
        self.arxiv.reset_log()
        self.github.reset_log()
        with self.github._state:
            self.github.statuses.clear()
        for srv in (self.arxiv, self.github):
            with srv._log_lock:
                srv.peak_answering = 0

    def enrich(self, name: str, cfg: Path, *, token: bool, refresh: bool = False,
               repeats: int = 1, expect_fetch: bool = True, cold: bool = False) -> Row:
        """Run the CLI ``repeats`` times (from an empty cache each time if ``cold``).

        Request counts are the largest of the repeats; conditional requests and
        304s the smallest, so that one bad repeat shows.
        """
        out_dir = cfg.parent / "out"
        argv = [sys.executable, "-m", "enrich", "run", "--file", str(self.log),
                "--config", str(cfg), "--out-dir", str(out_dir)]
        if refresh:
            argv.append("--refresh")
        walls: list[float] = []
        cpus: list[float] = []
        phases: list[tuple[float, float, float]] = []
        rss = 0
        arxiv_n = graphql_n = rest_n = 0
        conditional = got_304 = sys.maxsize
        proc: Proc | None = None
        for _ in range(repeats):
            if cold:
                shutil.rmtree(cfg.parent / "cache", ignore_errors=True)
            self._reset_counters()
            proc = self.last_proc = run_process(argv, env=child_env(token) | self.extra_env,
                                                cwd=cfg.parent, watch_threads=self.watch_threads)
            sent = sorted(r.time for r in self.arxiv.requests + self.github.requests)
            if sent:
                first, last_answer = sent[0], sent[-1] + self.latency
                phases.append((first - proc.started_at, last_answer - first,
                               proc.started_at + proc.wall - last_answer))
            walls.append(proc.wall)
            cpus.append(proc.cpu)
            rss = max(rss, proc.maxrss_kb)
            arxiv_n = max(arxiv_n, self.arxiv.count("query"))
            graphql_n = max(graphql_n, self.github.count("graphql"))
            rest_reqs = [r for r in self.github.requests if r.endpoint == "rest"]
            rest_n = max(rest_n, len(rest_reqs))
            conditional = min(conditional, sum(
                1 for r in rest_reqs
                if any(k.lower() == "if-none-match" for k in r.headers)))
            got_304 = min(got_304, self.github.count_status(304, endpoint="rest"))
            if proc.code != 0:
                break
        assert proc is not None
        bound = (lower_bound(self.n, self.m, token=token, latency=self.latency,
                             interval=self.min_interval)
                 if expect_fetch else Bound(0, 0, 0.0))
        row = Row(name, token, walls, cpus, rss, arxiv_n, graphql_n, rest_n, conditional, got_304,
                  bound, proc.code)
        row.checks = self._check_outputs(out_dir, proc)
        row.phases = phases
        self.rows.append(row)
        print(f"  {name}: {row.wall:.2f} s, arXiv {arxiv_n}, GraphQL {graphql_n}, "
              f"REST {rest_n}, exit {proc.code}", file=sys.stderr, flush=True)
        return row

    def _check_outputs(self, out_dir: Path, proc: Proc) -> list[str]:
        problems = []
        if proc.code != 0:
            problems.append(f"exit {proc.code}: {proc.stderr.strip()[-500:]}")
        try:
            doc = json.loads((out_dir / f"{self.log.stem}.enriched.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            return [*problems, f"no readable JSON output ({exc})"]
        ok_p = sum(1 for p in doc["papers"].values() if p["status"] == "ok")
        ok_r = sum(1 for r in doc["repos"].values() if r["status"] == "ok")
        if ok_p != self.n or ok_r != self.m:
            problems.append(f"output has {ok_p}/{self.n} papers and {ok_r}/{self.m} repos ok")
        return problems

    # -- what a warm run imports ---------------------------------------------------------

    def warm_imports(self) -> None:
        cfg = self.cfg_token
        argv = [sys.executable, "-X", "importtime", "-m", "enrich", "run", "--file",
                str(self.log), "--config", str(cfg), "--out-dir", str(cfg.parent / "out")]
        proc = run_process(argv, env=child_env(True), cwd=cfg.parent)
        top: set[str] = set()
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", line)
            if m:
                top.add(m.group(1).split(".")[0])
        self.imports = [mod for mod in NETWORK_MODULES if mod in top]
        self.module_count = sum(1 for line in proc.stderr.splitlines()
                                if line.startswith("import time:")) - 1

    # -- the baseline -------------------------------------------------------------------

    def baseline(self) -> dict[str, Any]:
        k_p = min(self.n, self.args.baseline_subset)
        k_r = min(self.m, self.args.baseline_subset)
        spec = {"arxiv_url": self.arxiv.api_url, "github_url": self.github.url,
                "token": TOKEN, "ids": self.paper_ids[:k_p], "repos": self.repo_names[:k_r]}
        spec_path = self.work / "baseline.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        self._reset_counters()
        proc = run_process([sys.executable, str(Path(__file__).resolve()), "--baseline-worker",
                            str(spec_path)], env=child_env(False), cwd=self.work)
        if proc.code != 0:
            raise SystemExit(f"baseline failed: {proc.stderr[-2000:]}")
        inner = json.loads(proc.stdout)
        startup = max(0.0, proc.wall - inner["arxiv_s"] - inner["rest_s"])
        full = (startup + inner["arxiv_s"] * self.n / max(k_p, 1)
                + inner["rest_s"] * self.m / max(k_r, 1))
        return {"papers": k_p, "repos": k_r, "wall": proc.wall, "arxiv_s": inner["arxiv_s"],
                "rest_s": inner["rest_s"], "startup": startup, "full": full,
                "extrapolated": (k_p, k_r) != (self.n, self.m), "maxrss_kb": proc.maxrss_kb,
                "arxiv_requests": self.arxiv.count("query"),
                "rest_requests": self.github.count("rest"), "ok": inner["ok"]}


def baseline_worker(spec_path: str) -> int:
    """The script a user would write: one query per paper, one call per repo, in order."""
    import arxiv
    import httpx

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    ok = 0
    client = arxiv.Client(delay_seconds=0, num_retries=3)
    client.query_url_format = spec["arxiv_url"] + "?{}"
    t0 = time.perf_counter()
    for pid in spec["ids"]:
        for result in client.results(arxiv.Search(id_list=[pid])):
            ok += bool(result.title)
    t1 = time.perf_counter()
    headers = {"Authorization": f"Bearer {spec['token']}",
               "Accept": "application/vnd.github+json"}
    with httpx.Client(headers=headers, timeout=20) as http:
        for name in spec["repos"]:
            r = http.get(f"{spec['github_url']}/repos/{name}")
            r.raise_for_status()
            ok += bool(r.json()["full_name"])
    t2 = time.perf_counter()
    print(json.dumps({"arxiv_s": t1 - t0, "rest_s": t2 - t1, "ok": ok}))
    return 0


# -- outputs, the synthetic log on its own ---------------------------------------------------

#: The JSON output's only time-dependent values: when it was written, when each record was fetched.
_TIMESTAMPS = re.compile(rb'"(generated_at|fetched_at)": "[^"]*"')


def normalised_sha256(path: Path) -> str:
    """sha256 of an output with its timestamps blanked (``"fetched_at": ""``); all else as is."""
    data = path.read_bytes()
    if path.suffix == ".json":
        data = _TIMESTAMPS.sub(rb'"\1": ""', data)
    return hashlib.sha256(data).hexdigest()


def output_hashes(bench: Bench, run: str) -> list[str]:
    out = bench.cfg_token.parent / "out"
    return [f"- {run} `{path.name}`: normalised sha256 `{normalised_sha256(path)}`"
            for path in sorted(out.glob(f"{bench.log.stem}.enriched.*"))]


def synthetic_log(n: int, m: int) -> str:
    """The log the benchmark generates for ``n`` papers and ``m`` repositories."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fakeapi.arxiv import FakeArxiv
    from fakeapi.github import FakeGitHub

    arxiv, github = FakeArxiv(), FakeGitHub()
    try:
        ids, keys = arxiv.add_synthetic(n), github.add_synthetic(m)
        return make_log(ids, [github.repos[k].full_name for k in keys])
    finally:
        arxiv.server_close()
        github.server_close()


def hashes(args: argparse.Namespace) -> int:
    """``--hashes``: a cold run and a warm run with a token; their outputs' normalised sha256."""
    bench = Bench(args)
    bench.start()
    lines = [f"{args.n} papers + {args.m} repositories, log sha256 "
             f"{hashlib.sha256(bench.log.read_bytes()).hexdigest()}"]
    try:
        for name, cold in (("cold", True), ("warm", False)):
            row = bench.enrich(name, bench.cfg_token, token=True, cold=cold, expect_fetch=cold)
            lines += output_hashes(bench, name) + [f"- problem: {c}" for c in row.checks]
    finally:
        bench.stop()
    print("\n".join(lines))
    return 1 if any(r.checks for r in bench.rows) else 0


# -- at the real APIs' pace ------------------------------------------------------------------

REAL_INTERVAL = 3.0  # arxiv.min_interval: arXiv asks for one request every 3 seconds
REAL_LATENCY = 0.3

#: Put first on the child's path, logs the name of every thread it starts (one line each,
#: written at once: enrich ends with ``os._exit``, which runs no ``atexit``).
_THREAD_NAMES = """\
import os
import threading

_log = open(os.environ["BENCH_THREAD_NAMES"], "a", buffering=1, encoding="utf-8")
_start = threading.Thread.start


def _logged_start(self):
    _log.write(self.name + "\\n")
    _start(self)


threading.Thread.start = _logged_start
"""


def peak_in_flight(times: Sequence[float], latency: float) -> int:
    """Most requests open at once, each from its arrival to its answer ``latency`` later."""
    events = sorted([(t, 1) for t in times] + [(t + latency, -1) for t in times])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def pace_figures(bench: Bench, row: Row, bound: float, names: Path) -> tuple[bool, list[str]]:
    proc = bench.last_proc
    assert proc is not None
    target = 1.05 * bound + 1
    met = proc.wall <= target and not row.checks
    starts = sorted(r.time for r in bench.arxiv.requests if r.endpoint == "query")
    gaps = [b - a for a, b in pairwise(starts)]
    spacing = (f"min {min(gaps):.3f} s, median {statistics.median(gaps):.3f} s, "
               f"max {max(gaps):.3f} s over {len(starts)} queries" if gaps else "-")
    per_endpoint = (Counter(f"arXiv {r.endpoint}" for r in bench.arxiv.requests)
                    + Counter(f"GitHub {r.endpoint}" for r in bench.github.requests))
    everything = [r.time for r in bench.arxiv.requests + bench.github.requests]
    started = Counter(names.read_text("utf-8").splitlines()) if names.exists() else Counter()
    phases = ", ".join(f"{x:.2f}" for x in row.phases[-1]) if row.phases else "-"
    lines = [
        f"- {row.name}: wall **{proc.wall:.2f} s**, bound {bound:.2f} s, wall/bound "
        f"{proc.wall / bound:.3f}, target <= {target:.2f} s (1.05 x bound + 1 s): "
        f"{'met' if met else '**not met**'}; exit {proc.code}; CPU {proc.cpu:.2f} s, "
        f"peak {proc.maxrss_kb / 1024:.0f} MB",
        f"  - spawn to first request, first request to last answer, last answer to exit: "
        f"{phases} s",
        f"  - arXiv queries start to start (arrival at the fake): {spacing}",
        "  - requests: " + ", ".join(f"{k} {v}" for k, v in sorted(per_endpoint.items())),
        f"  - peak requests in flight: {peak_in_flight(everything, bench.latency)} "
        f"(arXiv {bench.arxiv.peak_answering}, GitHub {bench.github.peak_answering} "
        "being answered at once, as the fakes count them)",
        f"  - threads of the enrich process: peak {proc.peak_threads} at once, "
        f"{proc.thread_ids} distinct over the run (/proc every 10 ms); started by "
        f"Python: {sum(started.values())} "
        f"({', '.join(f'{k} x{v}' for k, v in sorted(started.items())) or 'none'})",
        *(f"  - problem: {c}" for c in row.checks),
    ]
    return met, lines


def real_pace(args: argparse.Namespace) -> int:
    m = machine()
    lines = [
        "# enrich at the real APIs' pace",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}; {m['date']}; "
        f"load average at the start {m['load']}.",
        "",
        f"Fake arXiv and GitHub APIs answer after {REAL_LATENCY * 1000:g} ms; "
        f"arxiv.min_interval {REAL_INTERVAL:g} s; with a token (GraphQL); cold runs (empty "
        "cache). Bound: arXiv's spacing, its last answer and one cross-link query, "
        f"(ceil(N/{ARXIV_BATCH}) - 1) x {REAL_INTERVAL:g} s + 2 x {REAL_LATENCY:g} s.",
    ]
    all_met = True
    for n, m_ in args.sizes:
        run_args = argparse.Namespace(**{
            **vars(args), "n": n, "m": m_, "latency": REAL_LATENCY,
            "min_interval": REAL_INTERVAL, "work": args.work.with_name(f"real-pace-{n}-{m_}")})
        bench = Bench(run_args)
        bench.start()
        print(f"enrich at the real pace: {n} papers + {m_} repositories", file=sys.stderr)
        bound = (math.ceil(n / ARXIV_BATCH) - 1) * REAL_INTERVAL + 2 * REAL_LATENCY
        names = bench.work / "thread-names.txt"
        lines += ["", f"## {n} papers + {m_} repositories ({bench.links} links)", ""]
        try:
            bench.watch_threads = True
            bench.extra_env = {"PYTHONPATH": str(bench.work / "site"),
                               "BENCH_THREAD_NAMES": str(names)}
            (bench.work / "site").mkdir()
            (bench.work / "site" / "sitecustomize.py").write_text(_THREAD_NAMES, "utf-8")
            for i in range(args.repeats):
                names.unlink(missing_ok=True)
                row = bench.enrich(f"cold {i + 1}", bench.cfg_token, token=True, cold=True)
                met, figures = pace_figures(bench, row, bound, names)
                all_met &= met
                lines += figures
            bench.watch_threads, bench.extra_env = False, {}
            warm = bench.enrich("warm", bench.cfg_token, token=True, expect_fetch=False)
            lines += [f"- warm: {warm.wall:.2f} s, "
                      f"{warm.arxiv + warm.graphql + warm.rest} requests",
                      *output_hashes(bench, "warm"), *(f"  - problem: {c}" for c in warm.checks)]
            all_met &= not warm.checks
        finally:
            bench.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_results:
        args.results.write_text(text, encoding="utf-8")
        print(f"written to {args.results}", file=sys.stderr)
    return 0 if all_met else 1


def size(text: str) -> tuple[int, int]:
    """``N+M`` (papers + repositories), or ``N`` for N + N."""
    n, _, m = text.partition("+")
    return int(n), int(m or n)


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "load": load,
            "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def table(rows: Sequence[Row]) -> list[str]:
    head = ("run", "arXiv req", "GraphQL req", "REST req (cond./304)", "wall s",
            "lower bound s", "wall/bound", "CPU s", "peak MB", "exit")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        wall = (f"{r.wall:.2f} (median of {len(r.walls)})" if len(r.walls) > 1
                else f"{r.wall:.2f}")
        ratio = f"{r.over_bound:.2f}x" if r.over_bound is not None else "-"
        rest = f"{r.rest} ({r.conditional}/{r.answered_304})" if r.rest else "0"
        lines.append("| " + " | ".join((
            r.name, f"{r.arxiv} (min {r.bound.arxiv})",
            f"{r.graphql} (min {r.bound.github if r.token else 0})", rest, wall,
            f"{r.bound.seconds:.2f}", ratio, f"{r.cpu:.2f}", f"{r.maxrss_kb / 1024:.0f}",
            str(r.code))) + " |")
    return lines


def targets(bench: Bench, cold: Row, warm: Row, refresh_anon: Row,
            speedup: float) -> list[tuple[str, bool]]:
    peak = max(r.maxrss_kb for r in bench.rows) / 1024
    return [
        (f"cold with a token: at most {cold.bound.arxiv} arXiv and {cold.bound.github} GraphQL "
         f"requests (got {cold.arxiv} and {cold.graphql})",
         cold.arxiv <= cold.bound.arxiv and cold.graphql <= cold.bound.github),
        (f"cold with a token: wall time within 1.5x the lower bound (got {cold.over_bound:.2f}x)",
         (cold.over_bound or 0) <= 1.5),
        (f"cold with a token: at least 100x faster than the sequential script "
         f"(got {speedup:.0f}x)", speedup >= 100),
        (f"warm: zero requests (got {warm.arxiv + warm.graphql + warm.rest}) and under 1 s "
         f"in all (median {warm.wall:.2f} s)",
         warm.arxiv + warm.graphql + warm.rest == 0 and warm.wall < 1.0),
        (f"refresh without a token: every GitHub request conditional and answered 304 "
         f"({refresh_anon.conditional} and {refresh_anon.answered_304} of {refresh_anon.rest})",
         refresh_anon.graphql == 0 and refresh_anon.rest > 0
         and refresh_anon.conditional == refresh_anon.answered_304 == refresh_anon.rest),
        (f"peak memory under 200 MB in every run (max {peak:.0f} MB)", peak < 200),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=None, help="distinct papers (default 2000)")
    p.add_argument("--m", type=int, default=None, help="distinct repositories (default 2000)")
    p.add_argument("--latency", type=float, default=0.05,
                   help="seconds the fakes wait before each answer (default 0.05)")
    p.add_argument("--quick", action="store_true", help="N = M = 200 unless given")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs of each kind with a token (the median counts; default 3; "
                        "--real-pace: cold runs per size, default 1)")
    p.add_argument("--slow-repeats", type=int, default=1,
                   help="runs of each kind without a token (~30 s each at full size)")
    p.add_argument("--baseline-subset", type=int, default=200,
                   help="papers and repositories the sequential script does (extrapolated)")
    p.add_argument("--min-interval", type=float, default=0.0,
                   help="arxiv.min_interval of the runs, seconds (default 0)")
    p.add_argument("--real-pace", action="store_true",
                   help=f"arXiv {REAL_INTERVAL:g} s apart, {REAL_LATENCY * 1000:g} ms per "
                        "request, token, cold: wall time against the bound, per size")
    p.add_argument("--sizes", type=size, nargs="+", default=[(1000, 1000), (2000, 2000)],
                   metavar="N+M", help="--real-pace: papers+repositories per run "
                                       "(default 1000+1000 2000+2000)")
    p.add_argument("--hashes", action="store_true",
                   help="only a cold and a warm run: the outputs' sha256, timestamps blanked")
    p.add_argument("--write-log", type=Path, metavar="PATH",
                   help="write the synthetic log for --n/--m to PATH and exit")
    p.add_argument("--results", type=Path, default=None,
                   help="markdown report to write (default bench/results.md; --real-pace: "
                        "bench/results-real-pace.md)")
    p.add_argument("--no-results", action="store_true", help="print only, write no report")
    p.add_argument("--work", type=Path, default=HERE / "out" / "run")
    p.add_argument("--baseline-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.baseline_worker:
        return baseline_worker(args.baseline_worker)
    default = 200 if args.quick else 2000
    args.n = default if args.n is None else args.n
    args.m = default if args.m is None else args.m
    if args.write_log:
        args.write_log.write_text(synthetic_log(args.n, args.m), encoding="utf-8")
        return 0
    if args.hashes:
        return hashes(args)
    if args.real_pace:
        args.repeats = args.repeats or 1
        args.results = args.results or HERE / "results-real-pace.md"
        return real_pace(args)
    args.repeats = args.repeats or 3
    args.results = args.results or HERE / "results.md"

    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    bench = Bench(args)
    bench.start()
    print(f"enrich benchmark: {args.n} papers + {args.m} repositories, "
          f"{args.latency * 1000:g} ms per request", file=sys.stderr)
    try:
        cold = bench.enrich("cold, token", bench.cfg_token, token=True, cold=True,
                            repeats=args.repeats)
        warm = bench.enrich("warm, token", bench.cfg_token, token=True,
                            repeats=args.repeats, expect_fetch=False)
        warm_hashes = output_hashes(bench, "warm run's")
        bench.warm_imports()
        bench.enrich("refresh, token", bench.cfg_token, token=True, refresh=True,
                     repeats=args.repeats)
        bench.enrich("cold, no token", bench.cfg_anon, token=False, cold=True,
                     repeats=args.slow_repeats)
        refresh_anon = bench.enrich("refresh, no token", bench.cfg_anon, token=False,
                                    refresh=True, repeats=args.slow_repeats)
        base = bench.baseline()
    finally:
        bench.stop()

    m = machine()
    speedup = base["full"] / cold.wall
    lines = [
        "# enrich benchmark",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"{m['date']}; load average at the start {load_start}, at the end {m['load']} "
        "(other work on the machine slows every figure).",
        "",
        f"Work: one synthetic log ({bench.log.stat().st_size:,} bytes, {bench.links} links) "
        f"naming {args.n} distinct arXiv papers and {args.m} distinct GitHub repositories. "
        f"Fake arXiv and GitHub APIs on 127.0.0.1 answer after {args.latency * 1000:g} ms; "
        f"arxiv.min_interval {args.min_interval:g}; github.concurrency "
        f"{REST_CONCURRENCY}. Each run is `python -m enrich run --file LOG --config CFG` in "
        "a subprocess (process start included); requests are counted by the fakes. "
        f"The fake's anonymous limit is raised from 60/h to {bench.github.anon_limit}/h so "
        "that the runs without a token can do their REST calls.",
        "",
        "Lower bound: the fewest requests the APIs allow (100 ids per arXiv query, 100 "
        "repositories per GraphQL query, one REST call per repository) times the latency, "
        "with arXiv and GraphQL queries one at a time and REST "
        f"{REST_CONCURRENCY} in flight; arXiv and GitHub overlap, so the longer half counts. "
        "CPU s is the user + system time of the enrich process.",
        "",
        *table(bench.rows),
        "",
        f"- Warm run: {warm.wall:.3f} s median ({', '.join(f'{w:.3f}' for w in warm.walls)}) "
        f"for {bench.links} links, {warm.arxiv + warm.graphql + warm.rest} requests; "
        f"modules imported: {bench.module_count}; network/UI modules imported: "
        f"{', '.join(bench.imports) or 'none'}.",
        f"- Refresh without a token: {refresh_anon.rest} REST requests, "
        f"{refresh_anon.conditional} conditional (If-None-Match), "
        f"{refresh_anon.answered_304} answered 304.",
        f"- Sequential script (one `arxiv` query per paper, one REST call per repository, "
        f"no cache): {base['papers']} papers in {base['arxiv_s']:.2f} s, {base['repos']} "
        f"repositories in {base['rest_s']:.2f} s, {base['startup']:.2f} s process start; "
        + (f"extrapolated linearly to {args.n} + {args.m}: {base['full']:.1f} s"
           if base["extrapolated"] else f"total {base['full']:.1f} s")
        + f", {base['arxiv_requests'] + base['rest_requests']} requests"
        + (f" (for the subset; {args.n + args.m} for all)" if base["extrapolated"] else "")
        + f", peak {base['maxrss_kb'] / 1024:.0f} MB.",
        f"- enrich cold with a token is **{speedup:.0f}x** faster than the sequential script "
        f"({cold.wall:.2f} s vs {base['full']:.1f} s).",
        *warm_hashes,
    ]
    for r in bench.rows:
        if r.phases:
            start, network, tail = (statistics.median(x) for x in zip(*r.phases, strict=True))
            lines.append(
                f"- Where the time of \"{r.name}\" goes (medians): {start:.2f} s from process "
                f"start to the first request, {network:.2f} s from there to the last answer "
                f"(bound {r.bound.seconds:.2f} s), {tail:.2f} s from the last answer to exit.")
    lines += ["", "Targets (issue 5; stated for N = M = 2000 on a 2-core machine):", ""]
    lines += [f"- [{'x' if ok else ' '}] {what}" for what, ok in targets(bench, cold, warm,
                                                                          refresh_anon, speedup)]
    problems = [f"{r.name}: {c}" for r in bench.rows for c in r.checks]
    if problems:
        lines += ["", "Problems:", *(f"- {p}" for p in problems)]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_results:
        args.results.write_text(text, encoding="utf-8")
        print(f"written to {args.results}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
