"""Enriched markdown: the original text, byte for byte, with a block of metadata
after every markdown block of the log that holds links.

Placement (see :mod:`enrich.write.placement`): the log is parsed as CommonMark/GFM,
and a block goes after the markdown block holding the links (the paragraph, with the
lazy continuation lines of its list item, the table, the heading, the code block),
nested in the same container: each of its lines starts with the container's prefix
(spaces up to a list item's content column, ``> `` inside a quote). Rendered, the
enriched file is the log's rendering with the blocks added: take their HTML out and
the log's rendering is left.

A block is a marker line (prefix + :data:`BLOCK_START`), one quoted bullet
(prefix + ``> - 📄 ...``) per distinct paper or repository of that markdown block,
and an end marker line (prefix + :data:`BLOCK_END`). HTML comments are invisible on
GitHub and in most markdown viewers, and an HTML comment line interrupts a paragraph
or a table (and ends the quote), so the bullets render as a quoted list of their own
under the annotated text. With ``summary=True`` a last block, at the top level, holds
a table of every paper and repository of the document.

Round trip: ``strip_blocks(render_markdown(t, doc)) == t`` for every block-free
``t`` (``strip_blocks(t) == t``) that ends with a line break. Two documented
exceptions add one line break at the end: a block after the last line, which has no
line break, gets one (it must start on a line of its own), and with
``summary=True`` a text not ending with a line break gets one before the final
summary block. Rendering again what ``strip_blocks`` gives back yields the same
output (idempotent).

Line endings are the file's own: a block inserted after a line uses that line's
ending (``\\n``, ``\\r\\n`` or ``\\r``), so a block can never merge with the next
original line (a ``\\r`` block ending followed by an original ``\\n`` would read
back as one ``\\r\\n``); a break we add at the end of the text, or a block before
the first line, uses the file's most frequent line ending (``\\n`` when there is none).

Everything that comes from an API is untrusted and goes through :func:`escape`:
it can inject no HTML, no markdown link, image, emphasis, code span, heading or
table cell, no autolink, no fake block marker, no line break and no bidi
override. See :func:`escape` for the exact rules.
"""

from __future__ import annotations

import bisect
import codecs
import functools
import itertools
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from ..models import EnrichedDocument, Link, Paper, Repo, Status
from .placement import Leaf, Placement

logger = logging.getLogger(__name__)

BLOCK_START = "<!-- enrich -->"
BLOCK_END = "<!-- /enrich -->"

TITLE_LIMIT = 300
DESCRIPTION_LIMIT = 300
REASON_LIMIT = 200
NAME_LIMIT = 120
AUTHORS_SHOWN = 3

# A bullet inside a blockquote: rendered, the annotations stand apart (indented, grey bar)
# from the log's own text and list items, which a plain bullet list next to a list item
# of the log would not.
ITEM = "> - "
PAPER_ICON = "📄"
REPO_ICON = "📦"
SEP = " · "

# --- lines --------------------------------------------------------------------------------

# CommonMark's line endings: \r\n, \n or a lone \r. str.splitlines() would also split on
# \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029, which markdown viewers show inside a line.
_ENDING_SPLIT = re.compile(r"(\r\n|\n|\r)")


def _split_lines(text: str) -> tuple[list[str], list[str]]:
    """``text`` as its lines' contents and their endings; the last ending may be ``""``.

    Joined in turn they give ``text`` back; a text ending with a line break has no
    empty last line. Two flat lists, not a pair per line: a big log has millions.
    """
    # content, ending, content, ..., ending, content: the last content is "" when the
    # text ends with a line break (or is empty), and is then no line
    parts = _ENDING_SPLIT.split(text)
    contents, endings = parts[0::2], parts[1::2]
    del parts
    if contents[-1]:
        endings.append("")
    else:
        contents.pop()
    return contents, endings


def _dominant_ending(endings: Iterable[str]) -> str:
    """The most frequent of a file's line endings, in text order (first seen wins a tie);
    ``\\n`` if none."""
    counts: Counter[str] = Counter(endings)
    if not counts:
        return "\n"
    best = max(counts.values())
    return next(e for e in counts if counts[e] == best)


# A marker line: the container prefix of its block (spaces and ">"), then the marker.
_MARKER_LINE = re.compile(r"([ >]*)(<!-- enrich -->|<!-- /enrich -->)")


def strip_blocks(text: str) -> str:
    """Remove every enrich block, so that an ``.enriched.md`` file can be enriched again.

    A block runs from a start marker line (a prefix of spaces and ``>``, then exactly
    :data:`BLOCK_START`) to an end marker line with the same prefix (then exactly
    :data:`BLOCK_END`), both inclusive with their line endings. Markers pair like
    brackets: an end marker closes the nearest open start marker of its prefix (any
    start opened after that one lies inside the block and goes with it), so a stray
    start line in the original text (one with no end after it) and a stray end line
    are kept as they are. The result therefore never contains a complete block,
    which makes the function idempotent and makes ``strip_blocks(render_markdown(t,
    doc)) == t`` hold even for texts with stray marker lines. Limitation: a text that
    itself contains a complete block (a start line followed later by an end line of
    the same prefix) is taken for an enriched file and loses that block.
    """
    if BLOCK_START not in text:
        return text
    contents, endings = _split_lines(text)
    lines = list(zip(contents, endings, strict=True))
    removed = [0] * (len(lines) + 1)
    stack: list[tuple[int, str]] = []  # open start markers: line, prefix
    for i, (content, _ending) in enumerate(lines):
        m = _MARKER_LINE.fullmatch(content)
        if m is None:
            continue
        prefix, marker = m.groups()
        if marker == BLOCK_START:
            stack.append((i, prefix))
            continue
        opened = [k for k, (_, p) in enumerate(stack) if p == prefix]
        if opened:
            start = stack[opened[-1]][0]
            del stack[opened[-1]:]
            removed[start] += 1
            removed[i + 1] -= 1
    if not any(removed):
        return text
    out: list[str] = []
    depth = 0
    for i, (content, ending) in enumerate(lines):
        depth += removed[i]
        if depth == 0:
            out.append(content + ending)
    return "".join(out)


# --- escaping -----------------------------------------------------------------------------

# Unicode's Bidi_Control characters: embeddings, overrides, isolates and the three marks
# (ALM, LRM, RLM), which can also reorder what a reader sees around them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACE_LIKE = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_WS_RUN = re.compile(r" {2,}")
_MD_SPECIAL = "\\`*_[]()!#|~$"  # each gets a backslash
_ESCAPE_TABLE = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    **{ord(ch): "\\" + ch for ch in _MD_SPECIAL},
}
_ESCAPE_NEEDED = re.compile("[" + "".join(re.escape(chr(cp)) for cp in _ESCAPE_TABLE) + "]")
ZWSP = "\u200b"
# Where a zero-width space goes to defeat autolinking (GitHub's www./http(s):// /e-mail
# autolinks, markdown-it's linkify with fuzzy domains and e-mails, VS Code's preview):
# after a ':' that starts '//', after a '.' between an alphanumeric and a letter (breaks
# every domain name, www.x and bare x.com alike), after an '@' before an alphanumeric.
# That is ``re.sub(r"(:(?=//)|(?<=[^\W_])\.(?=[^\W\d_])|@(?=[^\W_]))", r"\g<0>" + ZWSP, s)``,
# done as one pattern per character: each starts with its literal, so the regex engine
# skips straight to candidates (the combined pattern tries a lookbehind at every position,
# 5-10x slower), and has a literal replacement (no template expansion per match). Applied
# one after the other they insert exactly what the combined pattern does, since no rule
# inserts next to a character another rule looks at (a space goes after ':' only before
# '/', after '.' only before a letter, after '@' only before a letter or digit).
_LINKIFY_RULES = (
    (":", re.compile(r":(?=//)"), ":" + ZWSP),
    (".", re.compile(r"\.(?<=[^\W_]\.)(?=[^\W\d_])"), "." + ZWSP),
    ("@", re.compile(r"@(?=[^\W_])"), "@" + ZWSP),
)


# What clean() changes, as a str.translate table: separators to a space, other control
# characters (category Cc is exactly U+0000-U+001F and U+007F-U+009F) and bidi controls
# dropped. Built once; clean() runs for every field of every record (thousands per file).
_CLEAN_TABLE: dict[int, str | None] = {
    **{cp: None for cp in range(0xA0) if unicodedata.category(chr(cp)) == "Cc"},
    **{ord(ch): None for ch in _BIDI},
    **{ord(ch): " " for ch in _SPACE_LIKE},
}
_CLEAN_NEEDED = re.compile("[" + "".join(sorted(map(chr, _CLEAN_TABLE))) + "]")


def clean(value: object, limit: int | None = None) -> str:
    """Untrusted text made single-line and printable, before any markdown escaping.

    Line breaks, tabs and other separators collapse to one space; other control
    characters (C0, DEL, C1) and the bidi controls (embeddings, overrides, isolates
    and marks: U+061C, U+200E-F, U+202A-E, U+2066-9, "Trojan Source") are dropped.
    Text longer than ``limit`` code points is cut and ends with an ellipsis.
    """
    s = "" if value is None else str(value)
    # every character clean() drops or replaces is unprintable (categories Cc, Cf, Zl,
    # Zp), and isprintable() is several times faster than the search it spares
    if not s.isprintable() and _CLEAN_NEEDED.search(s):
        s = s.translate(_CLEAN_TABLE)
    if "  " in s:
        s = _WS_RUN.sub(" ", s)
    s = s.strip()
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    return s


def escape(value: object, limit: int | None = None, *, label: bool = False) -> str:
    """Untrusted API text made inert inside a markdown line (or a table cell).

    After :func:`clean`: ``&``, ``<`` and ``>`` become entities (no raw HTML, no
    ``<!--``/``-->``, no ``<http://...>`` autolink); markdown punctuation
    ``\\ ` * _ [ ] ( ) ! # | ~ $`` gets a backslash (no links, images, emphasis,
    code spans, headings, table cells, strikethrough or GitHub math); a zero-width
    space (U+200B) goes after ``:`` in ``://``, after ``.`` inside a domain-like
    word and after ``@`` (no bare-URL, ``www.``, fuzzy-domain or e-mail
    linkification, and no @mention). Backslash escapes alone cannot stop
    autolinking: GitHub's autolink extension runs on the text after escapes are
    resolved. The zero-width space is invisible; copying the text from a rendered
    page carries it along (the JSON output has the clean text).

    ``label=True`` is for the text of a link we build (a title, a repository name):
    no autolinking happens inside a link (CommonMark forbids links in links; GitHub
    and markdown-it skip link text when linkifying), so no zero-width space is
    needed, and ``vercel/next.js`` or ``llama.cpp`` stay clean for copy and paste.
    """
    return _escape_text("" if value is None else str(value), limit, label)


# A document repeats much of its text (every record is in its line's block and in the
# summary; licences, categories and author names recur), so escaped text is memoised.
@functools.lru_cache(maxsize=8192)
def _escape_text(text: str, limit: int | None, label: bool) -> str:
    s = clean(text, limit)
    if not label:
        for char, rule, repl in _LINKIFY_RULES:
            if char in s:
                s = rule.sub(repl, s)
    # one pass for both: & < > to entities, a backslash before markdown punctuation
    # (str.translate with a mapping is slow per character: most text needs none of it)
    if _ESCAPE_NEEDED.search(s):
        s = s.translate(_ESCAPE_TABLE)
    return s


@functools.lru_cache(maxsize=4096)
def _escape_name(text: str) -> str:
    """``escape(text, NAME_LIMIT)`` for an author's or a licence's name: they recur, and a
    one-argument cache is hit without building and hashing a key tuple."""
    return _escape_text(text, NAME_LIMIT, False)


# --- URLs ---------------------------------------------------------------------------------

_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)?/\d{7}")
_GITHUB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


@functools.lru_cache(maxsize=8192)  # a paper's URL is needed for each line it is on, the
# summary (unless the line's bullet passed its label on) and any repository naming it
def arxiv_url(arxiv_id: str) -> str | None:
    """``https://arxiv.org/abs/ID``, built by us; None unless ``arxiv_id`` is a canonical id."""
    if not _ARXIV_ID.fullmatch(arxiv_id):
        return None
    if arxiv_id.isascii():  # digits, letters, ".", "-", "/": nothing to percent-encode
        return "https://arxiv.org/abs/" + arxiv_id
    return "https://arxiv.org/abs/" + quote(arxiv_id, safe="/.-")


@functools.lru_cache(maxsize=8192)
def github_url(name: str) -> str | None:
    """``https://github.com/OWNER/REPO``, built by us; None unless ``name`` is one."""
    if not _GITHUB_NAME.fullmatch(name) or name.split("/")[1] in (".", ".."):
        return None
    # _GITHUB_NAME admits only characters quote() leaves alone: nothing to percent-encode
    return "https://github.com/" + name


def _link(text: str, url: str | None, limit: int = NAME_LIMIT) -> str:
    """``[text](url)`` with ``text`` escaped as a label; escaped plain text without a URL."""
    # _escape_text is escape() for a str, without the wrapper's call (tens of thousands
    # of calls per document); likewise below wherever the text is a record's str field
    if url is None:
        return _escape_text(text, limit, False)
    return f"[{_escape_text(text, limit, True)}]({url})"


_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]+(?:-[A-Za-z]+)?)?")


@functools.lru_cache(maxsize=1024)  # a document has a few dozen distinct categories
def _category(value: str) -> str:
    """An arXiv category (``cs.CL``) as a code span: ``.CL`` is a country domain, and a
    code span is never linkified, so no zero-width space is needed. Anything that is
    not a category is escaped like other API text."""
    if len(value) <= 40 and _CATEGORY.fullmatch(value):
        return f"`{value}`"
    return escape(value, NAME_LIMIT)


# --- one line per record ------------------------------------------------------------------


def _date(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.year >= 1000:  # the same text as strftime, which is several times slower
        return value.date().isoformat()
    return value.strftime("%Y-%m-%d")


def _authors(authors: Sequence[str], shown: int = AUTHORS_SHOWN) -> str:
    names = ", ".join(map(_escape_name, authors[:shown]))
    if len(authors) > shown:
        return names + " et al."
    return names


def _short_authors(authors: Sequence[str]) -> str:
    if len(authors) >= 3:
        return _escape_name(authors[0]) + " et al."
    return ", ".join(map(_escape_name, authors))


@dataclass
class _Context:
    """What the lines of one document's records need beyond the record itself."""

    doc: EnrichedDocument
    # a repository's name as the log first wrote it, by key (keys are lower case)
    written: dict[str, str] = field(default_factory=dict)
    # why a record was not fetched (the document's errors), by (kind, id)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    # each record's linked title or name, made once for its bullets and the summary
    labels: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: EnrichedDocument) -> _Context:
        ctx = cls(doc)
        for link in doc.links:
            if link.kind == "github" and link.id not in ctx.written:
                ctx.written[link.id] = _as_written(link)
        for err in doc.errors:
            ctx.reasons.setdefault((err.kind, err.id), err.message)
        return ctx

    def display_name(self, key: str) -> str:
        """``owner/repo`` as the log wrote it (for a record GitHub did not name)."""
        return self.written.get(key.lower(), key)


def _as_written(link: Link) -> str:
    """The ``owner/repo`` of a GitHub link in the case the log wrote it: the id found in
    the link's text regardless of case (a Pages link does not hold it: the id)."""
    m = re.search(re.escape(link.id), link.text, re.IGNORECASE)
    if m is not None and m.group().lower() == link.id:
        return m.group()
    return link.id


def _status_note(status: Status, record: Paper | Repo | None, source: str,
                 reason: str | None = None) -> str:
    """What a record's status means, with the reason it was not fetched when known."""
    if status == "not_found":
        return f"not found on {source}"
    if status == "unavailable":
        return "unavailable (blocked)"
    if status == "missing":
        return f"missing: {escape(reason, REASON_LIMIT)}" if reason else "missing: not fetched yet"
    if status == "error":
        return f"error: {escape(reason, REASON_LIMIT)}" if reason else "error: could not fetch"
    if status == "stale":
        when = _date(record.fetched_at) if record is not None else None
        return f"stale: cached {when}" if when else "stale: cached data"
    return "ok"


def _note(ctx: _Context, kind: str, key: str, record: Paper | Repo | None) -> str:
    status: Status = record.status if record is not None else "missing"
    source = "arXiv" if kind == "arxiv" else "GitHub"
    return _status_note(status, record, source, ctx.reasons.get((kind, key)))


def _licence(repo: Repo) -> str | None:
    """The licence of a repository."""
    lic = repo.license
    if lic is None:
        return None
    spdx_id, name = lic.spdx_id, lic.name
    if spdx_id and spdx_id != "NOASSERTION":
        return _escape_name(spdx_id)
    if name:
        return _escape_name(name)
    return None


def _stars(repo: Repo) -> str | None:
    """Stars and their trend of a repository."""
    if repo.stars is None:
        return None
    out = f"★ {repo.stars:,}"
    trend = repo.trend
    if trend is not None:
        for value, period in (
            (trend.week, "this week"),
            (trend.month, "this month"),
            (trend.since_previous, "since last run"),
        ):
            if value:  # a change worth showing; "+0" says nothing
                out += f" ({value:+,} {period})"
                break
        if trend.sparkline:
            out += " " + escape(trend.sparkline, 60)
    return out


def paper_line(arxiv_id: str, paper: Paper | None, ctx: _Context,
               versions: Sequence[str] = ()) -> str:
    """One bullet for a paper (without the line ending); its linked title goes into
    ``ctx.labels``, for :func:`summary_lines`."""
    status: Status = paper.status if paper is not None else "missing"
    url = arxiv_url(arxiv_id) if status != "not_found" else None
    ident = f"arXiv:{arxiv_id}"
    if paper is None or status not in ("ok", "stale"):
        return f"{ITEM}{PAPER_ICON} {_link(ident, url)} — {_note(ctx, 'arxiv', arxiv_id, paper)}"
    label = _link(paper.title or ident, url, TITLE_LIMIT)
    ctx.labels[arxiv_id] = label
    head = f"{ITEM}{PAPER_ICON} {label}"
    parts: list[str] = []
    if paper.authors:
        parts.append(_authors(paper.authors))
    if (date := _date(paper.published)) is not None:
        parts.append(date)
    if category := paper.primary_category:
        parts.append(_category(category))
    if versions:
        mentioned = ", ".join(escape(v, 20) for v in versions) + " mentioned"
        latest = paper.latest_version
        if latest and latest not in versions:
            mentioned += f" (latest {escape(latest, 20)})"
        parts.append(mentioned)
    if paper.code:
        # a repository known not to exist is named, not linked
        parts.append("code: " + ", ".join(
            _repo_name_link(k, ctx.doc.repos.get(k.lower()), ctx) for k in paper.code))
    if status == "stale":
        parts.append(_status_note(status, paper, "arXiv"))
    return head + (" — " + SEP.join(parts) if parts else "")


def _repo_name_link(key: str, repo: Repo | None, ctx: _Context) -> str:
    """The repository's display name (``full_name`` when it is a valid one, else the
    name as the log wrote it), linked unless the repository does not exist."""
    name, url = ctx.display_name(key), None
    if repo is not None and repo.full_name:
        url = github_url(repo.full_name)
        if url is not None:
            name = repo.full_name
    if repo is not None and repo.status == "not_found":
        return _link(name, None)
    return _link(name, url if url is not None else github_url(name))


def repo_line(key: str, repo: Repo | None, ctx: _Context) -> str:
    """One bullet for a repository (without the line ending); its linked name goes into
    ``ctx.names``, for :func:`summary_lines`."""
    status: Status = repo.status if repo is not None else "missing"
    name = _repo_name_link(key, repo, ctx)
    ctx.names[key] = name
    head = f"{ITEM}{REPO_ICON} {name}"
    if repo is None or status not in ("ok", "stale"):
        return f"{head} — {_note(ctx, 'github', key, repo)}"
    parts: list[str] = []
    if (stars := _stars(repo)) is not None:
        parts.append(stars)
    if (lic := _licence(repo)) is not None:
        parts.append(lic)
    if repo.description:
        parts.append(escape(repo.description, DESCRIPTION_LIMIT))
    if repo.archived:
        parts.append("archived")
    if repo.renamed_from:
        parts.append("renamed from " + escape(ctx.display_name(repo.renamed_from), NAME_LIMIT))
    if repo.papers:
        parts.append("paper: " + ", ".join(_link(p, arxiv_url(p)) for p in repo.papers))
    if status == "stale":
        parts.append(_status_note(status, repo, "GitHub"))
    return head + (" " + SEP.join(parts) if parts else "")


# --- summary ------------------------------------------------------------------------------


def _ordered_keys(doc: EnrichedDocument) -> tuple[list[str], list[str]]:
    """Papers and repositories in order of first appearance, then linked-only ones by id."""
    papers: dict[str, None] = {}
    repos: dict[str, None] = {}
    for link in doc.links:
        (papers if link.kind == "arxiv" else repos).setdefault(link.id, None)
    for key in sorted(doc.papers):
        papers.setdefault(key, None)
    for key in sorted(doc.repos):
        repos.setdefault(key, None)
    return list(papers), list(repos)


def _row(*cells: str) -> str:
    """A table row; cells must already be escaped (``|`` is, by :func:`escape`)."""
    return "|" + "|".join([f" {c} " if c else " " for c in cells]) + "|"


def summary_lines(ctx: _Context) -> list[str]:
    """The final block's lines (without markers or endings); empty if there is nothing.

    ``ctx.labels`` and ``ctx.names`` hold the linked titles and names that
    :func:`paper_line` and :func:`repo_line` made for this document, if any (each
    record's is the same here).
    """
    doc = ctx.doc
    paper_keys, repo_keys = _ordered_keys(doc)
    if not paper_keys and not repo_keys:
        return []
    np, nr = len(paper_keys), len(repo_keys)
    caption = (
        f"**enrich summary:** {np} paper{'s' if np != 1 else ''}, "
        f"{nr} repositor{'ies' if nr != 1 else 'y'}"
    )
    rows = [
        caption,
        "",
        _row("", "Paper / repository", "Authors / stars", "Licence", "Status"),
        _row(*["---"] * 5),
    ]
    rows += [_paper_row(key, doc.papers.get(key), ctx) for key in paper_keys]
    rows += [_repo_row(key, doc.repos.get(key), ctx) for key in repo_keys]
    return rows


def _paper_row(key: str, paper: Paper | None, ctx: _Context) -> str:
    if paper is not None and paper.status in ("ok", "stale"):
        label = ctx.labels.get(key) or _link(paper.title or f"arXiv:{key}", arxiv_url(key),
                                             TITLE_LIMIT)
        who = _short_authors(paper.authors)
        status = "ok" if paper.status == "ok" else _status_note("stale", paper, "arXiv")
    else:
        url = arxiv_url(key) if paper is None or paper.status != "not_found" else None
        label, who = _link(f"arXiv:{key}", url, TITLE_LIMIT), ""
        status = _note(ctx, "arxiv", key, paper)
    return _row(PAPER_ICON, label, who, "", status)


def _repo_row(key: str, repo: Repo | None, ctx: _Context) -> str:
    stars = lic = ""
    if repo is not None and repo.status in ("ok", "stale"):
        stars = f"★ {repo.stars:,}" if repo.stars is not None else ""
        lic = _licence(repo) or ""
    name = ctx.names.get(key) or _repo_name_link(key, repo, ctx)
    return _row(REPO_ICON, name, stars, lic, _note(ctx, "github", key, repo))


# --- rendering ----------------------------------------------------------------------------


def _links_by_line(text: str, starts: Sequence[int], links: Iterable[Link]
                   ) -> dict[int, list[Link]]:
    """The links on each line (0-based), in order of offsets; ``starts`` are the offsets
    of the lines' first characters. A link is placed by its offsets when they match the
    text, else by its line number."""
    by_line: dict[int, list[Link]] = {}
    for link in sorted(links, key=lambda lk: (lk.start, lk.end)):
        if 0 <= link.start < len(text) and text[link.start:link.end] == link.text:
            idx = bisect.bisect_right(starts, link.start) - 1
        elif 1 <= link.line <= len(starts):
            idx = link.line - 1
        else:
            logger.warning("link %s %s at line %d is outside the text; not annotated",
                           link.kind, link.id, link.line)
            continue
        by_line.setdefault(idx, []).append(link)
    return by_line


def _links_by_leaf(by_line: dict[int, list[Link]], placement: Placement
                   ) -> dict[Leaf, list[Link]]:
    """The links of each markdown block, in text order."""
    by_leaf: dict[Leaf, list[Link]] = {}
    for idx in sorted(by_line):
        leaf = placement.leaf_of(idx)
        if leaf is None:  # a line of no markdown block: a link there cannot be written
            logger.warning("line %d holds links outside any markdown block; not annotated",
                           idx + 1)
            continue
        by_leaf.setdefault(leaf, []).extend(by_line[idx])
    return by_leaf


def _block(links: list[Link], ctx: _Context) -> list[str]:
    """The block of one markdown block: a bullet per distinct record, in order of first
    mention."""
    versions: dict[str, list[str]] = {}
    for lk in links:
        if lk.kind == "arxiv" and lk.version and lk.version not in versions.get(lk.id, []):
            versions.setdefault(lk.id, []).append(lk.version)
    block = [BLOCK_START]
    for kind, key in dict.fromkeys((lk.kind, lk.id) for lk in links):
        if kind == "arxiv":
            block.append(paper_line(key, ctx.doc.papers.get(key), ctx, versions.get(key, ())))
        else:
            block.append(repo_line(key, ctx.doc.repos.get(key), ctx))
    block.append(BLOCK_END)
    return block


def render_markdown(text: str, doc: EnrichedDocument, *, summary: bool = True) -> str:
    """The enriched markdown of ``text`` (block-free; ``doc.links`` refer to it).

    Keeps every original line byte for byte and inserts one block after each markdown
    block holding links, in its container (see the module docstring for the
    line-ending and round-trip rules), then, with ``summary=True`` and at least one
    record, a final block with a table of every paper and repository.
    """
    return "".join(_pieces(text, doc, summary))


def render_markdown_bytes(text: str, doc: EnrichedDocument, encoding: str = "utf-8",
                          *, summary: bool = True) -> bytes:
    """:func:`render_markdown` encoded, each piece as it is made: a big log's output is
    never held as text and as bytes at once. A character ``encoding`` cannot hold (a
    lone surrogate from an API) is written as its backslash escape."""
    encoder = codecs.getincrementalencoder(encoding)("backslashreplace")  # one BOM at most
    return b"".join([*(encoder.encode(piece) for piece in _pieces(text, doc, summary)),
                     encoder.encode("", final=True)])


def _pieces(text: str, doc: EnrichedDocument, summary: bool) -> Iterator[str]:
    """The enriched markdown in pieces: the text between two insertion points, then the
    blocks inserted there."""
    contents, endings = _split_lines(text)
    n = len(contents)
    starts = _starts(contents, endings)
    inserts, summary_block, summary_at = _insertions(text, contents, starts, doc, summary)
    del contents
    if not inserts and not summary_block:
        yield text
        return
    dominant = _dominant_ending(e for e in endings if e)
    done = 0
    for i in sorted({*inserts, *([summary_at] if summary_block else [])}):
        yield text[done:starts[i]]
        done = starts[i]
        # a block inserted here uses the line ending of the line before it
        before = endings[i - 1] if i else dominant
        if i == n and not before:
            before = dominant  # the last line, without a line ending: a block needs one
            yield before
        for block in inserts.pop(i, []):
            yield before.join(block) + before
        if summary_block and i == summary_at:  # the summary uses the file's own ending
            yield dominant.join(summary_block) + dominant
    yield text[done:]


def _insertions(text: str, contents: list[str], starts: list[int], doc: EnrichedDocument,
                summary: bool) -> tuple[dict[int, list[list[str]]], list[str], int]:
    """The blocks to insert before each line (the number of lines: at the end), and the
    summary block with the line it goes before."""
    by_line = _links_by_line(text, starts[:-1], doc.links)
    ctx = _Context.of(doc)
    inserts: dict[int, list[list[str]]] = {}
    wants_summary = summary and bool(doc.links or doc.papers or doc.repos)
    if not by_line and not wants_summary:
        return inserts, [], len(contents)
    placement = Placement(contents)
    for leaf, links in _links_by_leaf(by_line, placement).items():
        if leaf.spot is None:
            logger.info("the markdown block on lines %d-%d has no place for its "
                        "annotations (see the summary)", leaf.start + 1, leaf.end)
            continue
        block = [leaf.spot.prefix + line for line in _block(links, ctx)]
        inserts.setdefault(leaf.spot.line, []).append(block)
    rows = summary_lines(ctx) if wants_summary else []
    if not rows:
        return inserts, [], len(contents)
    return inserts, [BLOCK_START, *rows, BLOCK_END], placement.summary.line


def _starts(contents: Sequence[str], endings: Sequence[str]) -> list[int]:
    """The offset where each line starts, and the text's length last."""
    return list(itertools.accumulate(
        (len(c) + len(e) for c, e in zip(contents, endings, strict=True)), initial=0))
