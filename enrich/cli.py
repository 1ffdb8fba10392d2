"""The command line: parse flags, load config, call the library, map errors to exit codes.

Exit status: 0 every link has current data; 1 some links could not be
fetched (outputs still written); 2 usage, config or input error (nothing
written for that file); 75 another run holds the cache lock. With several
files the worst wins (2 over 1 over 0).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from ._version import __version__
from .config import Config
from .errors import CacheError, CacheLockedError, ConfigError, EnrichError, InputError

if TYPE_CHECKING:
    from .models import EnrichedDocument
    from .pipeline import Enricher, Resolution

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75

#: Allocations between two young-generation garbage collections during a command.
GC_THRESHOLD = 100_000

log = logging.getLogger("enrich")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (its default), never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="enrich", description="Annotate research logs with arXiv and GitHub "
                "metadata.")
    p.add_argument("--version", action="version", version=f"enrich {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="enrich log files: write STEM.enriched.md and .json")
    run.add_argument("--file", action="append", required=True, metavar="PATH",
                     help="a log file (repeatable)")
    run.add_argument("--format", choices=["markdown", "json", "both", "bib"], default=None,
                     help="outputs to write (default: config output.formats)")
    run.add_argument("--out-dir", default=None, metavar="DIR",
                     help="write outputs here instead of beside each input")
    run.add_argument("--config", default=None, metavar="FILE")
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
    ex.add_argument("--json", action="store_true", default=None)

    cache = sub.add_parser("cache", help="inspect or clean the cache")
    cache.add_argument("action", choices=["stats", "prune", "clear"])
    cache.add_argument("--config", default=None, metavar="FILE")

    tr = sub.add_parser("trends", help="star growth of a log's repositories")
    tr.add_argument("--file", required=True, metavar="PATH")
    tr.add_argument("--config", default=None, metavar="FILE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``enrich`` command; returns its exit status. Given no ``argv`` (the process's
    own command line), it ends the process itself: see :func:`_end_process`."""
    code = _command(argv)
    if argv is None:
        _end_process(code)
    return code


def _command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "extract": cmd_extract, "cache": cmd_cache, "trends": cmd_trends}
    # The modules imported so far live as long as the process: keep the cyclic garbage
    # collector from walking them again while thousands of records are built (a full
    # collection of them cost ~0.05 s of a warm run), and collect less often during the
    # command: a run builds tens of thousands of records, strings and lists, none of them
    # in a cycle, and the ~120 young-generation passes the default threshold (700) makes
    # them trigger walked them for nothing (~0.03 s). Cycles (HTTP clients make a few per
    # request) are still collected, every GC_THRESHOLD allocations. Both are undone on
    # return, for in-process callers.
    gc.freeze()
    thresholds = gc.get_threshold()
    if thresholds[0]:  # 0: automatic collection is off, leave it so
        gc.set_threshold(max(GC_THRESHOLD, thresholds[0]), *thresholds[1:])
    try:
        return handlers[args.command](args)
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
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _end_process(code: int) -> NoReturn:
    """End the process with ``code`` at once, as mypy does.

    The interpreter's own shutdown frees every object left (records, documents,
    modules, the validators pydantic built) one by one, only to give back memory the
    operating system takes back anyway: ~0.03 s of a warm run on the benchmark's log
    (0.2 s when its final garbage collection is not skipped as well). Nothing
    is lost: every output is written, fsynced and closed, the cache closed and the lock
    released before the command returns. What shutdown would still do is done here:
    logging's handlers flushed, then the standard streams (a failed flush of stdout
    gives 120, as it does at Python's own exit). An exception escaping the command
    (a bug) still goes through the normal exit, traceback and all.
    """
    logging.shutdown()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 120
    with suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


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
    """Last line of defence: no log line shows the token, whatever put it there."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.secret in text:
            record.msg = text.replace(self.secret, "[redacted]")
            record.args = None
        return True


def _redact_in_logs(secret: str) -> None:
    for handler in logging.getLogger("enrich").handlers:
        handler.addFilter(_Redact(secret))


def output_paths(path: Path, formats: Sequence[str], out_dir: Path | None) -> dict[str, Path]:
    """``logs/000.txt`` -> ``logs/000.enriched.md`` / ``.enriched.json`` / ``000.bib``."""
    folder = out_dir if out_dir is not None else path.parent
    stem = path.stem
    names = {"markdown": f"{stem}.enriched.md", "json": f"{stem}.enriched.json",
             "bib": f"{stem}.bib"}
    return {fmt: folder / names[fmt] for fmt in formats}


def cmd_run(args: argparse.Namespace) -> int:
    from .extract import extract, find_pages_links
    from .lock import RunLock
    from .models import FileReport, RunReport
    from .pipeline import Enricher, _in_thread, file_report, run_sync, source_info
    from .store import Store
    from .textio import read_source
    from .write.markdown import strip_blocks

    quiet = bool(args.quiet)
    _setup_logging(bool(args.verbose), quiet)
    cfg = _load_config(args)
    if cfg.token is not None:
        _redact_in_logs(cfg.token.get_secret_value())
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None and not args.dry_run:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output folder: {exc.strerror}",
                              source=str(out_dir)) from None

    reports: list[FileReport] = []
    good: list[tuple[Path, str, Any]] = []  # (path, stripped text, source info)
    encodings: dict[Path, str] = {}
    for name in args.file:
        path = Path(name)
        try:
            text, raw, encoding = read_source(path)
        except InputError as exc:
            _err(f"enrich: {exc}")
            reports.append(FileReport(path=str(path), exit_code=EXIT_USAGE, error=str(exc)))
            continue
        good.append((path, strip_blocks(text), source_info(path.name, raw)))
        encodings[path] = encoding

    if args.dry_run:
        return _dry_run(cfg, good, reports, bool(args.offline), bool(args.refresh))

    if good:
        with RunLock(cfg.cache_path), ExitStack() as closing:
            store = Store(cfg.cache_path)
            closing.callback(store.close)
            with ExitStack() as stack:
                progress = None
                if not quiet and sys.stderr.isatty():
                    progress = stack.enter_context(_Progress())
                    progress.start([extract(text) + find_pages_links(text)
                                    for _, text, _ in good])
                enricher = Enricher(cfg, offline=bool(args.offline), refresh=bool(args.refresh),
                                    progress=progress.advance if progress else None,
                                    store=store)
                # no event loop (nor asyncio) unless a request must be made
                docs, res = run_sync(_enrich_all(enricher, good), loop_on_demand=True)
            # Closing the cache (SQLite's optimize and checkpoint, ~20 ms, without the
            # GIL) overlaps writing the outputs; the lock is released after both.
            closing.callback(_in_thread(store.close).result)
            # The documents live until the end: keep the collections that writing the
            # outputs triggers from walking their records again (~0.02 s of a cold run).
            gc.freeze()
            for (path, text, _src), doc in zip(good, docs, strict=True):
                rep = file_report(str(path), doc, res, offline=bool(args.offline))
                try:
                    rep.outputs = _write_outputs(path, text, doc, cfg.output.formats, out_dir,
                                                 encodings[path])
                except OSError as exc:
                    rep.exit_code = EXIT_USAGE
                    rep.error = f"{path}: cannot write outputs: {exc.strerror or exc}"
                    _err(f"enrich: {rep.error}")
                reports.append(rep)
                _summarise(rep, doc, quiet)
    return RunReport(files=reports).exit_code


async def _enrich_all(enricher: Enricher, good: list[tuple[Path, str, Any]]
                      ) -> tuple[list[EnrichedDocument], Resolution]:
    async with enricher:
        return await enricher.enrich_many_resolved([(text, src) for _, text, src in good])


def _write_outputs(path: Path, text: str, doc: Any, formats: Sequence[str],
                   out_dir: Path | None, encoding: str) -> list[str]:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .write.atomic import write_atomic

    # Each output is written (encoded, fsynced, renamed: mostly without the GIL) while
    # the next one is rendered; it is still written only once the one before it has
    # been, so a failure leaves the same outputs behind as writing one at a time would.
    written: list[str] = []
    writing: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich-output") as writer:
        for fmt, target in output_paths(path, formats, out_dir).items():
            if target.resolve() == path.resolve():
                raise OSError(f"output {target} would overwrite the input")
            _remove_stale_temporaries(target)
            options: dict[str, str] = {}
            data: str | bytes
            if fmt == "markdown":
                from .write.markdown import render_markdown

                data = render_markdown(text, doc)
                options = {"encoding": encoding, "errors": "xmlcharrefreplace"}
            elif fmt == "json":
                from .write.json import render_json_bytes

                data = render_json_bytes(doc)
            else:
                from .write.bib import render_bib

                data = render_bib(doc)
            if writing is not None:
                writing.result()  # raises the OSError of the write before
            writing = writer.submit(write_atomic, target, data, **options)
            written.append(str(target))
        if writing is not None:
            writing.result()
    return written


#: A temporary output file older than this is a leftover of a killed run, not a write
#: in progress (writes take milliseconds).
STALE_TEMPORARY = 600.0


def _remove_stale_temporaries(target: Path) -> None:
    """Remove ``.NAME.*.tmp`` files a killed run left beside ``target``.

    A ``kill -9`` between the creation of the temporary file and its rename leaves it
    behind (hidden, never the output itself; about 1 kill in 20 in the soak); a
    nightly job would collect them for years.
    """
    import glob
    import time

    try:
        candidates = list(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))
    except OSError:
        return
    now = time.time()
    for tmp in candidates:
        try:
            if now - tmp.lstat().st_mtime > STALE_TEMPORARY:
                tmp.unlink()
        except OSError:
            continue


def _summarise(rep: Any, doc: Any, quiet: bool) -> None:
    """One line per file; with a failure, one more line per record that failed."""
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
    if failed:
        for e in doc.errors:
            _err(f"  {e.kind} {e.id}: {e.message}")


def _dry_run(cfg: Config, good: list[tuple[Path, str, Any]], reports: list[Any],
             offline: bool, refresh: bool) -> int:
    from .extract import extract
    from .pipeline import Enricher
    from .store import Store

    arxiv_ids: dict[str, None] = {}
    repo_keys: dict[str, None] = {}
    for _, text, _ in good:
        for lk in extract(text):
            (arxiv_ids if lk.kind == "arxiv" else repo_keys)[lk.id] = None
    store = None
    if cfg.cache_path.exists():
        store = Store(cfg.cache_path, readonly=True)
    try:
        plan = Enricher(cfg, offline=offline, refresh=refresh).plan(
            list(arxiv_ids), list(repo_keys), store)
    finally:
        if store is not None:
            store.close()
    out = sys.stdout
    print(f"plan for {len(good)} file(s), cache {cfg.cache_path}"
          + (" (does not exist yet)" if store is None else ""), file=out)
    for name, sp in (("arXiv", plan.arxiv), ("GitHub", plan.github)):
        print(f"  {name}: {sp.found} found, {sp.fresh} fresh in cache, {sp.revalidate} to "
              f"revalidate, {sp.fetch} to fetch -> {sp.requests} {sp.request_kind}", file=out)
    return EXIT_USAGE if any(r.exit_code == EXIT_USAGE for r in reports) else EXIT_OK


class _Progress:
    """A rich progress bar on stderr while fetching (TTY only)."""

    def __enter__(self) -> _Progress:
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
        self._p.__enter__()
        self._tasks: dict[str, Any] = {}
        return self

    def start(self, links_per_file: list[list[Any]]) -> None:
        ids = {"arxiv": set(), "github": set()}  # type: dict[str, set[str]]
        for links in links_per_file:
            for lk in links:
                ids[lk.kind].add(lk.id)
        self._tasks["arxiv"] = self._p.add_task("arXiv papers", total=len(ids["arxiv"]))
        self._tasks["github"] = self._p.add_task("GitHub repos", total=len(ids["github"]))

    def advance(self, source: str, n: int) -> None:
        """The pipeline's progress hook: ``n`` more ids of ``source`` are done."""
        task = self._tasks.get(source)
        if task is not None:
            self._p.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        self._p.__exit__(None, None, None)


# -- extract -------------------------------------------------------------------------------


def cmd_extract(args: argparse.Namespace) -> int:
    import json

    from .extract import extract
    from .textio import read_text
    from .write.markdown import strip_blocks

    text = strip_blocks(read_text(args.file))
    links = extract(text)
    out = sys.stdout
    if args.json:
        data = {
            "links": [lk.model_dump(mode="json") for lk in links],
            "arxiv": sorted({lk.id for lk in links if lk.kind == "arxiv"}),
            "github": sorted({lk.id for lk in links if lk.kind == "github"}),
        }
        out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    _print_table(links, out)
    return EXIT_OK


def _print_table(links: Sequence[Any], out: TextIO) -> None:
    if not links:
        print("no links found", file=out)
        return
    rows = [(f"{lk.line}:{lk.column}", lk.kind, lk.id, lk.version or "", lk.text) for lk in links]
    heads = ("LINE:COL", "KIND", "ID", "VER", "AS WRITTEN")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads[:-1])]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*heads), file=out)
    for r in rows:
        print(fmt.format(*r), file=out)
    n_a = len({lk.id for lk in links if lk.kind == "arxiv"})
    n_g = len({lk.id for lk in links if lk.kind == "github"})
    print(f"{len(links)} links: {n_a} arXiv papers, {n_g} GitHub repositories", file=out)


# -- cache ---------------------------------------------------------------------------------


def cmd_cache(args: argparse.Namespace) -> int:
    from .lock import RunLock
    from .store import Store

    cfg = _load_config(args)
    path = cfg.cache_path
    if args.action == "stats":
        if not path.exists():
            print(f"cache {path}: does not exist yet")
            return EXIT_OK
        with Store(path, readonly=True) as store:
            stats = store.stats(datetime.now(UTC), arxiv_ttl=cfg.cache.arxiv_ttl,
                                github_ttl=cfg.cache.github_ttl,
                                not_found_ttl=cfg.cache.not_found_ttl)
        print(f"cache {path}")
        _print_stats(stats, "  ")
        return EXIT_OK
    with RunLock(path):
        if args.action == "clear":
            try:
                with Store(path) as store:
                    store.clear()
            except CacheLockedError:
                raise
            except CacheError as exc:
                # an unusable file: `clear` is the documented way out, so remove it
                from .store import remove_database

                removed_files = remove_database(path)
                print(f"cache {path}: unusable ({exc.reason}); removed "
                      + ", ".join(str(p) for p in removed_files))
                return EXIT_OK
            print(f"cache {path}: cleared")
            return EXIT_OK
        with Store(path) as store:
            removed = store.prune(datetime.now(UTC), arxiv_ttl=cfg.cache.arxiv_ttl,
                                  github_ttl=cfg.cache.github_ttl,
                                  not_found_ttl=cfg.cache.not_found_ttl)
        print(f"cache {path}: pruned " + ", ".join(f"{v} {k}" for k, v in removed.items()))
    return EXIT_OK


def _print_stats(stats: dict[str, Any], indent: str) -> None:
    for key, value in stats.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_stats(value, indent + "  ")
        elif isinstance(value, datetime):
            print(f"{indent}{key}: {value.isoformat(timespec='seconds')}")
        else:
            print(f"{indent}{key}: {value}")


# -- trends --------------------------------------------------------------------------------


def cmd_trends(args: argparse.Namespace) -> int:
    from .extract import extract
    from .store import Store
    from .textio import read_text
    from .trends import star_trend
    from .write.markdown import strip_blocks

    cfg = _load_config(args)
    links = extract(strip_blocks(read_text(args.file)))
    keys = list(dict.fromkeys(lk.id for lk in links if lk.kind == "github"))
    if not cfg.cache_path.exists():
        print(f"cache {cfg.cache_path} does not exist yet: run `enrich run` first")
        return EXIT_OK
    with Store(cfg.cache_path, readonly=True) as store:
        histories = store.star_histories(keys)
        cached = store.get_repos(keys, "anon")
    now = datetime.now(UTC)
    rows = []
    for key in keys:
        hist = histories.get(key, [])
        trend = star_trend(hist, now)
        stars = hist[-1][1] if hist else None
        c = cached.get(key)
        name = c.record.full_name if c is not None and c.record.full_name else key
        rows.append((trend.week if trend.week is not None else -(10**12), name, stars, trend))
    rows.sort(key=lambda r: (-r[0], r[1].lower()))
    print(f"{'REPOSITORY':<50} {'STARS':>9} {'WEEK':>8} {'MONTH':>8}  HISTORY")
    for _, name, stars, trend in rows:
        print(f"{name:<50} {_num(stars):>9} {_signed(trend.week):>8} {_signed(trend.month):>8}"
              f"  {trend.sparkline or ''}")
    return EXIT_OK


def _num(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _signed(n: int | None) -> str:
    return "-" if n is None else f"{n:+,}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "output_paths"]
