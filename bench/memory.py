"""Peak memory of enrich on big logs, against the target of 10x the log plus 150 MB.

Not part of the test suite. Run::

    .venv/bin/python bench/memory.py                 # 20 MB and 200 MB logs
    .venv/bin/python bench/memory.py --mb 20 50      # other sizes

Each size gets a synthetic log (bench/extract.py's generator: mostly Chinese, a link
every ~680 bytes, as in real logs), then two commands run as subprocesses, with the
peak resident memory of each taken from ``os.wait4``:

- ``enrich extract --file LOG --json``: extraction alone;
- ``enrich run --offline --file LOG``: the whole run with no network (every record
  ``missing``): reading, extraction, the document, the markdown and JSON written.

Logs, cache and outputs go to ``bench/out/memory`` (ignored by git).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from extract import make_log  # noqa: E402

MB = 1_000_000


def peak_of(args: list[str]) -> tuple[float, float, int]:
    """Run ``args``; its peak RSS in MB, its wall time, and its exit status."""
    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024 / MB, time.monotonic() - start, os.waitstatus_to_exitcode(status)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, nargs="+", default=[20, 200], help="log sizes in MB")
    p.add_argument("--work", type=Path, default=HERE / "out" / "memory")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    config = args.work / "config.yaml"
    config.write_text(f"cache:\n  path: {args.work / 'cache.sqlite3'}\n", encoding="utf-8")
    enrich = [sys.executable, "-m", "enrich"]
    print("| log | command | peak RSS | target (10x + 150 MB) | met | wall |")
    print("|---|---|---|---|---|---|")
    for size in args.mb:
        log = args.work / f"log-{size}mb.txt"
        if not log.exists() or abs(log.stat().st_size - size * MB) > MB:
            log.write_text(make_log(size * MB), encoding="utf-8")
        real = log.stat().st_size / MB
        target = 10 * real + 150
        for name, cmd in (
            ("extract --json", [*enrich, "extract", "--file", str(log), "--json"]),
            ("run --offline", [*enrich, "run", "--offline", "--quiet", "--file", str(log),
                               "--config", str(config), "--out-dir", str(args.work)]),
        ):
            peak, wall, code = peak_of(cmd)
            met = "yes" if peak <= target else "**no**"
            print(f"| {real:.0f} MB | `{name}` (exit {code}) | {peak:.0f} MB | {target:.0f} MB "
                  f"| {met} | {wall:.1f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
