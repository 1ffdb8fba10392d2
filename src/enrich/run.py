"""What ``enrich run`` does, as one library call: :func:`run_files`.

It reads the files, takes the run lock, runs the pipeline once for all of them (the
union of their ids is fetched once) and writes each file's outputs atomically.
:func:`plan_files` is ``--dry-run``: the same reading and the same planner, with no
request, no write and no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from .config import Config
from .document import file_report, source_info
from .errors import ConfigError, InputError
from .lock import RunLock
from .models import EnrichedDocument, FileReport, RunReport, SourceInfo
from .pipeline import Enricher, Plan, Progress
from .report import failures_of
from .store import cache_exists, open_store
from .textio import read_source
from .write import atomic
from .write.markdown import strip_blocks

#: ``enrich run --format`` names, and the file each output goes to.
OUTPUT_NAMES = {"markdown": "{stem}.enriched.md", "json": "{stem}.enriched.json",
                "bib": "{stem}.bib"}
#: A temporary output file older than this is a leftover of a killed run, not a write
#: in progress (writes take milliseconds).
STALE_TEMPORARY = 600.0

OnReport = Callable[[FileReport], None]
"""Called with each file's report as soon as it is known (an unreadable file's at
once, the others' once their outputs are written)."""


@dataclass
class _Input:
    path: Path
    text: str
    """The log's text, with any earlier enrich blocks taken out."""
    source: SourceInfo
    encoding: str


@dataclass
class FilePlan:
    """What ``--dry-run`` found: the inputs' reports (errors only) and the plan."""

    files: list[FileReport] = field(default_factory=list)
    readable: int = 0
    plan: Plan = field(default_factory=Plan)
    cache_exists: bool = False


def output_paths(path: Path, formats: Sequence[str], out_dir: Path | None) -> dict[str, Path]:
    """``logs/000.txt`` -> ``logs/000.enriched.md`` / ``.enriched.json`` / ``000.bib``."""
    folder = out_dir if out_dir is not None else path.parent
    return {fmt: folder / OUTPUT_NAMES[fmt].format(stem=path.stem) for fmt in formats}


def run_files(paths: Sequence[str | PathLike[str]], config: Config | None = None, *,
              formats: Sequence[str] | None = None, out_dir: str | PathLike[str] | None = None,
              offline: bool = False, refresh: bool = False, progress: Progress | None = None,
              on_report: OnReport | None = None) -> RunReport:
    """Enrich log files: what ``enrich run`` does, lock included.

    Writes ``STEM.enriched.md``/``.enriched.json`` (or ``formats``) beside each input
    or in ``out_dir``. A file that cannot be read, or whose outputs cannot be written,
    gets exit code 2 in its report and the others go on. Raises
    :class:`~enrich.errors.ConfigError` before anything is read or fetched when an
    output would overwrite an input, the cache or its lock, or two inputs would write
    the same output (:func:`check_output_paths`);
    :class:`~enrich.errors.CacheLockedError` when another run holds the lock of a SQLite
    cache (runs sharing a PostgreSQL cache, ``cache.url``, take no lock), and
    :class:`~enrich.errors.CacheError` when the cache cannot be used. An offline run
    only reads the cache.
    """
    cfg = config if config is not None else Config.load()
    fmts = list(formats) if formats is not None else list(cfg.output.formats)
    check_output_paths(paths, fmts, Path(out_dir) if out_dir is not None else None,
                       cfg.cache_path)
    folder = _out_dir(out_dir)
    reports: list[FileReport] = []
    inputs = _read_inputs(paths, cfg.input.max_bytes, reports, on_report)
    if not inputs:
        return RunReport(files=reports)
    # An offline run only reads the cache, so it opens it read-only; in a cache folder it
    # may not write to (another user's cache) it also goes without the lock.
    with _run_lock(cfg, offline), open_store(cfg, readonly=offline) as store:
        enricher = Enricher(cfg, offline=offline, refresh=refresh, store=store,
                            progress=progress.advance if progress else None,
                            on_total=progress.add_total if progress else None)
        # The event loop's result is the small reports, never the documents: asyncio.run
        # formats its main task (result included) when it restores the SIGINT handler,
        # which for 4000 records took 0.25 s.
        reports += asyncio.run(_enrich_and_write(enricher, inputs, fmts, folder, on_report))
    return RunReport(files=reports, requests=dict(enricher.requests))


def plan_files(paths: Sequence[str | PathLike[str]], config: Config | None = None, *,
               offline: bool = False, refresh: bool = False,
               on_report: OnReport | None = None) -> FilePlan:
    """``enrich run --dry-run``: what a run would do; no request, no write, no lock."""
    cfg = config if config is not None else Config.load()
    out = FilePlan()
    inputs = _read_inputs(paths, cfg.input.max_bytes, out.files, on_report)
    out.readable = len(inputs)
    out.cache_exists = cache_exists(cfg)
    store = open_store(cfg, readonly=True) if out.cache_exists else None
    try:
        out.plan = Enricher(cfg, offline=offline, refresh=refresh).plan(
            [item.text for item in inputs], store)
    finally:
        if store is not None:
            store.close()
    return out


async def _enrich_and_write(enricher: Enricher, inputs: list[_Input], formats: Sequence[str],
                            folder: Path | None, on_report: OnReport | None
                            ) -> list[FileReport]:
    async with enricher:
        docs, res = await enricher.enrich_many_resolved([(i.text, i.source) for i in inputs])
    reports = []
    for doc, item in zip(docs, inputs, strict=True):
        rep = file_report(str(item.path), doc, res, offline=enricher.offline)
        rep.failures = failures_of(doc)
        reports.append(rep)
    # what remains is the documents: each is let go once its outputs are written
    del res
    pending = docs[::-1]
    del docs
    for rep, item in zip(reports, inputs, strict=True):
        doc = pending.pop()
        try:
            rep.outputs = write_outputs(item, doc, formats, folder)
        except atomic.PartialWriteError as exc:
            rep.exit_code = 2
            rep.outputs = exc.replaced
            rep.error = (f"{item.path}: cannot write outputs: {exc.strerror}; new: "
                         f"{', '.join(exc.replaced)}; not written (old or absent): "
                         f"{', '.join(exc.kept)}")
        except OSError as exc:
            rep.exit_code = 2
            rep.error = f"{item.path}: cannot write outputs: {exc.strerror or exc}"
        del doc
        if on_report is not None:
            on_report(rep)
    return reports


def _out_dir(out_dir: str | PathLike[str] | None) -> Path | None:
    if out_dir is None:
        return None
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder: {exc.strerror}",
                          source=str(folder)) from None
    return folder


def _run_lock(cfg: Config, offline: bool) -> AbstractContextManager[object]:
    """The run lock beside a SQLite cache; none for a PostgreSQL cache (runs sharing it
    do not exclude each other: they share the work), nor for an offline run in a cache
    folder this user cannot write (reading another user's cache: the lock file cannot
    be created there)."""
    cache_path = cfg.cache_path
    if cfg.cache.url:
        return contextlib.nullcontext()
    if offline and cache_path.parent.is_dir() and not os.access(cache_path.parent, os.W_OK):
        return contextlib.nullcontext()
    return RunLock(cache_path)


def check_output_paths(paths: Sequence[str | PathLike[str]], formats: Sequence[str],
                       out_dir: Path | None, cache_path: Path) -> None:
    """Refuse outputs that must never be written, before anything is read or fetched.

    Raises :class:`ConfigError` (a usage error, exit 2) when an output path resolves
    to an input, the cache (or its ``-wal``/``-shm`` files) or its lock, or when two
    different inputs would write the same output path (``a/x.txt`` and ``b/x.txt``
    with ``--out-dir``).
    """
    cache = cache_path.resolve()
    protected: dict[Path, str] = {
        cache: "the cache",
        cache.with_name(cache.name + "-wal"): "the cache's -wal file",
        cache.with_name(cache.name + "-shm"): "the cache's -shm file",
        cache.with_name(cache.name + ".lock"): "the cache's lock file",
    }
    for name in paths:
        protected[Path(name).resolve()] = f"the input {name}"
    written_by: dict[Path, Path] = {}
    for name in paths:
        path = Path(name)
        for target in output_paths(path, formats, out_dir).values():
            # Where the rename puts the output (a link there is replaced) ...
            location = target.parent.resolve() / target.name
            # ... and where a link there points: neither may be a file we must keep.
            for candidate in (location, target.resolve()):
                if candidate in protected:
                    raise ConfigError(f"output {target} would overwrite "
                                      f"{protected[candidate]} ({candidate}); remove or "
                                      "rename it, or choose another --out-dir")
            earlier = written_by.setdefault(location, path)
            if earlier.resolve() != path.resolve():
                raise ConfigError(f"{earlier} and {path} would both write {target}; "
                                  "give them different names or run them separately")


def _read_inputs(paths: Sequence[str | PathLike[str]], max_bytes: int,
                 reports: list[FileReport], on_report: OnReport | None) -> list[_Input]:
    inputs: list[_Input] = []
    for name in paths:
        path = Path(name)
        try:
            text, raw, encoding = read_source(path, max_bytes=max_bytes)
        except InputError as exc:
            rep = FileReport(path=str(path), exit_code=2, error=str(exc))
            reports.append(rep)
            if on_report is not None:
                on_report(rep)
            continue
        inputs.append(_Input(path, strip_blocks(text), source_info(path.name, raw), encoding))
    return inputs


def write_outputs(item: _Input, doc: EnrichedDocument, formats: Sequence[str],
                  out_dir: Path | None) -> list[str]:
    """Render every output, then write them together: each to a temporary file first,
    then all renamed (see :func:`~enrich.write.atomic.write_files_atomic`)."""
    files: list[tuple[Path, Callable[[], bytes]]] = []
    for fmt, target in output_paths(item.path, formats, out_dir).items():
        remove_stale_temporaries(target)
        # rendered when its temporary file is written: one output in memory at a time
        files.append((target, functools.partial(render_output, fmt, item, doc)))
    atomic.write_files_atomic(files)
    return [str(target) for target, _ in files]


def render_output(fmt: str, item: _Input, doc: EnrichedDocument) -> bytes:
    """The bytes of one output format."""
    if fmt == "markdown":
        from .write.markdown import render_markdown_bytes

        # UTF-8, what markdown renderers expect, whatever the log's encoding; a UTF-8 log
        # keeps its byte order mark, so that the blocks strip back to its very bytes
        bom = "utf-8-sig" if item.encoding == "utf-8-sig" else "utf-8"
        return render_markdown_bytes(item.text, doc, bom)
    if fmt == "json":
        from .write.json import render_json_bytes

        return render_json_bytes(doc)
    from .write.bib import render_bib

    return render_bib(doc).encode("utf-8")


def remove_stale_temporaries(target: Path) -> None:
    """Remove ``.NAME.*.tmp`` files a killed run left beside ``target``.

    A ``kill -9`` between the creation of the temporary file and its rename leaves it
    behind (hidden, never the output itself); a nightly job would collect them for years.
    """
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
