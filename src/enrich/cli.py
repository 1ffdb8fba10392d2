"""The command line: parse flags, load config, call the library, map errors to exit codes.

Exit status: 0 every link has current data; 1 some links could not be
fetched (outputs still written); 2 usage, config or input error (nothing
written for that file); 75 another run holds the cache lock. With several
files the worst wins (2 over 1 over 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from ._version import __version__
from .config import Config
from .errors import CacheError, CacheLockedError, ConfigError, EnrichError, InputError
from .models import FileReport

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75

_CONFIG_HELP = "config file (default: $ENRICH_CONFIG, else ./config.yaml if present)"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (its default), never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="enrich", description="Annotate research logs with arXiv and GitHub "
                "metadata.")
    p.add_argument("--version", action="version", version=f"enrich {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="enrich log files: write STEM.enriched.md and .json")
    run.add_argument("--file", action="extend", nargs="+", required=True, metavar="PATH",
                     help="log files (one or more; repeatable)")
    run.add_argument("--format", choices=["markdown", "json", "both", "bib"], default=None,
                     help="outputs to write (default: config output.formats)")
    run.add_argument("--out-dir", default=None, metavar="DIR",
                     help="write outputs here instead of beside each input")
    run.add_argument("--config", default=None, metavar="FILE", help=_CONFIG_HELP)
    run.add_argument("--offline", action="store_true", default=None,
                     help="no network: serve only from the cache")
    run.add_argument("--refresh", action="store_true", default=None,
                     help="ignore TTLs and revalidate everything")
    run.add_argument("--dry-run", action="store_true", default=None,
                     help="print the plan; no network, no writes")
    noise = run.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", default=None,
                       help="print only errors (for cron)")
    noise.add_argument("--verbose", "-v", action="store_true", default=None,
                       help="log every request (never the token)")

    ex = sub.add_parser("extract", help="print the links found in a file (no network)")
    ex.add_argument("--file", required=True, metavar="PATH")
    ex.add_argument("--json", action="store_true", default=None,
                    help="print JSON: the links, and the sorted unique ids of each kind")

    cache = sub.add_parser("cache", help="inspect or clean the cache")
    cache.add_argument("action", choices=["stats", "prune", "clear"])
    cache.add_argument("--config", default=None, metavar="FILE", help=_CONFIG_HELP)

    tr = sub.add_parser("trends", help="star growth of a log's repositories")
    tr.add_argument("--file", required=True, metavar="PATH")
    tr.add_argument("--config", default=None, metavar="FILE", help=_CONFIG_HELP)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``enrich`` command; returns its exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "extract": cmd_extract, "cache": cmd_cache, "trends": cmd_trends}
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # the reader closed stdout early (`| head`): end quietly, as Python's docs advise
        with suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PARTIAL
    except CacheLockedError as exc:
        _err(f"enrich: {exc}")
        return EXIT_LOCKED
    except (ConfigError, InputError, CacheError) as exc:
        _err(f"enrich: {exc}")
        return EXIT_USAGE
    except EnrichError as exc:
        _err(f"enrich: {exc}")
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        _err("enrich: interrupted")
        return 130


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- run ---------------------------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    fmt = getattr(args, "format", None)
    if fmt is not None:
        overrides["output.formats"] = ["markdown", "json"] if fmt == "both" else [fmt]
    return Config.load(getattr(args, "config", None), overrides=overrides)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else (logging.ERROR if quiet else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("enrich")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Redact(logging.Filter):
    """Replaces the token in any log line, whatever put it there."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.secret in text:
            record.msg = text.replace(self.secret, "[redacted]")
            record.args = None
        return True


def cmd_run(args: argparse.Namespace) -> int:
    from .report import cause_lines
    from .run import plan_files, run_files

    quiet = bool(args.quiet)
    _setup_logging(bool(args.verbose), quiet)
    cfg = _load_config(args)
    if cfg.token is not None:  # last line of defence: no log line shows the token
        for handler in logging.getLogger("enrich").handlers:
            handler.addFilter(_Redact(cfg.token.get_secret_value()))
    offline, refresh = bool(args.offline), bool(args.refresh)
    if args.dry_run:
        found = plan_files(args.file, cfg, offline=offline, refresh=refresh,
                           on_report=_summariser(quiet))
        _print_plan(cfg, found)
        return EXIT_USAGE if any(r.exit_code == EXIT_USAGE for r in found.files) else EXIT_OK
    progress = _Progress() if not quiet and sys.stderr.isatty() else None
    try:
        report = run_files(args.file, cfg, out_dir=args.out_dir, offline=offline,
                           refresh=refresh, progress=progress,
                           on_report=_summariser(quiet, bool(args.verbose)))
    finally:
        if progress is not None:
            progress.close()
    if report.exit_code != EXIT_OK or not quiet:
        for line in cause_lines(report, cfg):
            _err(line)
    return report.exit_code


def _summariser(quiet: bool, verbose: bool = False) -> Any:
    """The report hook: one line per file (and with ``verbose``, one per record that
    failed); the causes of failures come once for the run, after every file."""

    def summarise(rep: FileReport) -> None:
        if rep.error is not None:
            _err(f"enrich: {rep.error}")
            if not (rep.papers.found or rep.repos.found):
                return  # an input that could not be read: the error says it all
        failed = rep.exit_code != EXIT_OK
        if quiet and not failed:
            return
        p, r = rep.papers, rep.repos
        line = (f"{rep.path}: papers {p.found} ({p.from_cache} cached, {p.fetched} fetched, "
                f"{p.failed} failed), repos {r.found} ({r.from_cache} cached, {r.fetched} "
                f"fetched, {r.failed} failed)")
        if rep.outputs:
            line += " -> " + ", ".join(rep.outputs)
        _err(line)
        if verbose:
            for f in rep.failures:
                _err(f"  {f.kind} {f.id} ({f.status}): {f.message}")

    return summarise


def _print_plan(cfg: Config, found: Any) -> None:
    print(f"plan for {found.readable} file(s), cache {cfg.cache_path}"
          + ("" if found.cache_exists else " (does not exist yet)"))
    for line in found.plan.lines():
        print(f"  {line}")


class _Progress:
    """A rich progress bar on stderr while fetching (TTY only): the pipeline's
    :class:`~enrich.pipeline.Progress`."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                           MofNCompleteColumn(), TimeElapsedColumn(),
                           console=Console(file=sys.stderr), transient=True)
        self._p.start()
        self._tasks = {"arxiv": self._p.add_task("arXiv papers", total=0),
                       "github": self._p.add_task("GitHub repos", total=0)}

    def add_total(self, source: str, n: int) -> None:
        task = self._tasks[source]
        self._p.update(task, total=(self._p.tasks[task].total or 0) + n)

    def advance(self, source: str, n: int) -> None:
        self._p.advance(self._tasks[source], n)

    def close(self) -> None:
        self._p.stop()


# -- extract, cache, trends ----------------------------------------------------------------


def _print_lines(lines: Sequence[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def cmd_extract(args: argparse.Namespace) -> int:
    from .commands import extract_file, links_json, links_table

    links = extract_file(args.file)
    _print_lines([links_json(links)] if args.json else links_table(links))
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from .commands import cache_clear, cache_prune, cache_stats, stats_lines

    cfg = _load_config(args)
    path = cfg.cache_path
    if args.action == "stats":
        stats = cache_stats(cfg)
        _print_lines([f"cache {path}: does not exist yet"] if stats is None
                     else [f"cache {path}", *stats_lines(stats, "  ")])
    elif args.action == "clear":
        removed, reason = cache_clear(cfg)
        _print_lines([f"cache {path}: cleared" if reason is None else
                      f"cache {path}: unusable ({reason}); removed " + ", ".join(removed)])
    else:
        pruned = cache_prune(cfg)
        _print_lines([f"cache {path}: does not exist yet" if pruned is None else
                      f"cache {path}: pruned " + ", ".join(f"{v} {k}" for k, v in pruned.items())])
    return EXIT_OK


def cmd_trends(args: argparse.Namespace) -> int:
    from .commands import star_trends, trends_table

    cfg = _load_config(args)
    rows = star_trends(args.file, cfg)
    _print_lines([f"cache {cfg.cache_path} does not exist yet: run `enrich run` first"]
                 if rows is None else trends_table(rows))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main"]
