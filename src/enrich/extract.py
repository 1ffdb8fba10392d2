"""Find arXiv papers and GitHub repositories in text (the rules: docs/format.md, Links).

Why it is built this way: research logs are large, mostly Chinese, and hold a
link every few lines. One big case-insensitive regular expression scanned
over the whole text runs at a few dozen MB/s in CPython, so:

1. The text, a piece at a time (cut at line breaks), is mapped to one byte
   per code point (``encode("latin-1", "replace")`` turns every other
   character into ``?``) and lower-cased with ``bytes.lower``, which touches
   ASCII letters only. Offsets in this copy are code-point offsets of the
   text, and no Unicode case rule (Kelvin sign, dotted I) can invent a match.
2. One case-sensitive pattern per form, each starting with a literal
   (``arxiv``, ``github.com``, ``huggingface.co/papers/`` ...), is searched in
   that copy. A literal prefix lets the regex engine skip ahead at memory
   speed, and the pattern validates the id (month 01-12, 4 or 5 digits by
   date) in C.
3. Python looks only at the matches: what precedes the host (a scheme, a
   blocking character), where the link as written ends (trailing punctuation,
   unbalanced parentheses, markdown), the canonical id. For the common forms
   the patterns answer the first two as well, with flags (empty groups behind
   lookarounds), which saves the method calls that dominate the cost per link.

Lines and columns are computed incrementally between links, and every
pattern and backward scan is bounded or linear, so the cost is linear in the
text whatever it holds.

What counts as a link, and what does not, is kept as data
(:data:`OLD_ARCHIVES`, :data:`GITHUB_RESERVED`) so that it can be read and
extended without touching the matching code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from .models import Link

__all__ = [
    "GITHUB_RESERVED",
    "OLD_ARCHIVES",
    "PAGES_FILE_SUFFIXES",
    "canonical_arxiv_id",
    "extract",
    "find_pages_links",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- data

#: Archives of old-style arXiv ids (``archive(.SUBJ)/YYMMNNN``), current and
#: retired ones (``chao-dyn``, ``solv-int`` ... were merged into others).
OLD_ARCHIVES: frozenset[str] = frozenset(
    {
        "acc-phys", "adap-org", "alg-geom", "ao-sci", "astro-ph", "atom-ph", "bayes-an",
        "chao-dyn", "chem-ph", "cmp-lg", "comp-gas", "cond-mat", "cs", "dg-ga", "econ",
        "eess", "funct-an", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math",
        "math-ph", "mtrl-th", "nlin", "nucl-ex", "nucl-th", "patt-sol", "physics",
        "plasm-ph", "q-alg", "q-bio", "q-fin", "quant-ph", "solv-int", "stat", "supr-con",
    }
)  # fmt: skip

#: First path segments of github.com that are GitHub's own pages, never a user
#: or organisation owning repositories (``github.com/topics/llm`` is not the
#: repository ``topics/llm``). Real organisations with generic-looking names
#: (``github``, ``desktop``, ``community``) are deliberately absent.
GITHUB_RESERVED: frozenset[str] = frozenset(
    {
        "about", "account", "advisories", "apps", "blog", "codespaces", "collections",
        "contact", "copilot", "customer-stories", "dashboard", "discussions", "education",
        "enterprise", "enterprises", "events", "explore", "features", "home", "issues",
        "join", "login", "logout", "marketplace", "mobile", "new", "nonprofit",
        "notifications", "orgs", "organizations", "pricing", "premium-support", "pulls",
        "readme", "resources", "search", "security", "sessions", "settings", "signup",
        "site", "sitemap", "solutions", "sponsors", "stars", "team", "topics", "trending",
        "user-attachments", "users", "watching", "why-github",
    }
)  # fmt: skip

#: A GitHub Pages path whose only segment ends like this is a file of the
#: user site (``owner.github.io/index.html``), not a project site.
PAGES_FILE_SUFFIXES: tuple[str, ...] = (
    ".html", ".htm", ".pdf", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".xml", ".json",
    ".txt", ".md", ".css", ".js",
)  # fmt: skip

# ------------------------------------------------------------------- patterns

#: A new-style id with its date rules: ``YYMM.NNNN`` from 0704 to 1412,
#: ``YYMM.NNNNN`` from 1501, MM 01-12 (so ``2023.10`` never matches).
_NEW = r"""
    (?:07(?:0[4-9]|1[0-2])|(?:0[89]|1[0-4])(?:0[1-9]|1[0-2]))\.\d{4}
  | (?:1[5-9]|[2-9]\d)(?:0[1-9]|1[0-2])\.\d{5}
"""
#: An arXiv id as written after a path or a marker, lower-case. The
#: ``arch/new`` branch takes the ``arXiv:hep-th/1601.07616`` oddity seen in
#: real papers: a new-style id has no archive, so the prefix is dropped.
_ID = rf"""
    (?:
        (?P<new>{_NEW})
      | (?P<arch>[a-z]+(?:-[a-z]+)?)(?:\.[a-z]+(?:-[a-z]+)?)?/
        (?: (?P<old>(?:9[1-9]|0[0-7])(?:0[1-9]|1[0-2])\d{{3}}) | (?P<new2>{_NEW}) )
    )
    (?!\d)
    (?:v(?P<ver>\d+))?
"""


def _bytes_re(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode("ascii"), re.VERBOSE)


# Searched in the lower-cased ASCII copy; each starts with a literal.
# (_ARXIV_RES and _GITHUB_RES, which carry fast-path flags, follow the sets.)
_AR5IV_RE = _bytes_re(r"ar5iv\.org/(?:abs|html)/" + _ID)
_ALPHAXIV_RE = _bytes_re(r"alphaxiv\.org/abs/" + _ID)
_HF_RE = _bytes_re(r"huggingface\.co/papers/" + _ID)
_GITHUB_RESERVED_B = frozenset(name.encode("ascii") for name in GITHUB_RESERVED)
_PAGES_RE = _bytes_re(r"\.github\.io (?![a-z0-9.-]) (?: / (?P<seg>[a-z0-9._-]*) (?P<more>/)? )?")
_ID_RE = _bytes_re(_ID)
_MIRRORS = (
    (b"ar5iv.org/", _AR5IV_RE),
    (b"alphaxiv.org/abs/", _ALPHAXIV_RE),
    (b"huggingface.co/papers/", _HF_RE),
)

#: What may stand between the marker ``arXiv`` and an id: a colon (ASCII or
#: full-width) and/or horizontal spaces.
_MARK_SEP = re.compile(r"[ \t\u00a0\u3000]*[:：]?[ \t\u00a0\u3000]*")
#: A GitHub login: at most 39 characters in all, single inner hyphens.
_OWNER = re.compile(rb"(?=[a-z0-9-]{1,39}\Z)[a-z0-9]+(?:-[a-z0-9]+)*")

#: Characters a URL as written may continue with (RFC 3986 minus brackets
#: and quotes; no backslash, no whitespace, nothing non-ASCII: full-width
#: punctuation and CJK text end a link).
_URL_TAIL = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&()*+,;=%]+")
#: The URL characters that never need a second look at the end of a link: no
#: scheme (``:``), no glue (``,;``), no parenthesis, no query punctuation.
_PLAIN_TAIL = re.compile(r"[A-Za-z0-9\-._~/#@$&+=%]*")
#: Inside a tail, where a second scheme-less link glued on by a comma begins.
_GLUED = re.compile(r"[,;](?=(?:www\.)?(?:github\.com|arxiv\.org)/)", re.ASCII | re.IGNORECASE)
#: A carriage return that ends a line on its own (old Mac), not in a CRLF.
_LONE_CR = re.compile(rb"\r(?!\n)")
_TRAILING = frozenset(".,:;!?*~")
_URL_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#@!$&()*+,;=%"
)

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SCHEME_CHARS = frozenset(_ALNUM + "+.-")
#: Right before a host, these make it part of a longer name or of another
#: URL's path or query (``notgithub.com``, ``docs.github.com``,
#: ``example.com/github.com/a/b``, ``?u=github.com/a/b``).
_HOST_BLOCKERS = frozenset(_ALNUM + "._-/=%&?#+~")
#: Right before a scheme (``https://``): a letter or digit, as in ``xhttps://``. After
#: anything else the URL counts (``[2].https://...``, ``见https://...``).
_SCHEME_BLOCKERS = frozenset(_ALNUM)
#: Right before the marker ``arXiv``: part of a word or of a URL
#: (``myarxiv 2305.09781``, ``badge/arXiv:2305.09781``, ``#arXiv:...``).
_MARK_BLOCKERS = frozenset(_ALNUM + "._-/=#&")
#: Right before a bare DOI: part of a longer number or name.
_DOI_BLOCKERS = frozenset(_ALNUM + "._-")
_LABEL_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-")
_OLD_ARCHIVES_B = frozenset(name.encode("ascii") for name in OLD_ARCHIVES)
_PAGES_FILE_SUFFIXES_B = tuple(s.encode("ascii") for s in PAGES_FILE_SUFFIXES)

# ------------------------------------------------ patterns with fast-path flags
# A method call costs about what the regex engine spends on a whole match, so
# the checks most links need are also asked of the two main patterns, as
# optional empty groups behind lookarounds. Being zero-width and referred to
# by nothing, they never change where or what a pattern matches. A flag that
# is set (``b""``) proves what the Python checks would have found: the scheme
# before the host and no blocking character before it, a tail that needs no
# second look (see :func:`_url_end`). A flag that is not set proves nothing,
# and the Python checks run as before. Lookarounds are not free (a few
# hundred instructions each), so a flag is only asked where it saves calls.
#
# A "?" in the lowered copy is a "?" of the text or any character outside
# Latin-1 (never one of these ASCII sets), so each pattern comes in two
# variants: one for chunks without a "?", where a "?" is such a character, and
# one where a "?" may be itself and fails the flags.


def _low_class(chars: frozenset[str], question_marks: bool, negate: bool = False) -> str:
    """``chars`` as a class of the lowered copy; without ``question_marks``
    (the chunk has no "?") the "?" is left out."""
    members = {c.lower() for c in chars}
    if not question_marks:
        members.discard("?")
    return "[^"[: 1 + negate] + "".join(re.escape(c) for c in sorted(members)) + "]"


def _tail_flag(question_marks: bool, before: str = "") -> str:
    """``(?P<tail>...)``: the plain URL characters after the match when
    :func:`_url_end`'s first look would end the link right after them."""
    trailing = _low_class(_TRAILING, True)
    url_chars = _low_class(_URL_CHARS, question_marks)
    return (
        rf"(?: {before} (?= (?P<tail>{_PLAIN_TAIL.pattern[:-1]}*+)"
        rf" (?<!{trailing}) \)? (?!{url_chars}) ) )?+"
    )


def _arxiv_re(question_marks: bool) -> re.Pattern[bytes]:
    """The arXiv URL, DOI and marker pattern. Flags, each tried only in its
    branch: ``h8``/``h7``/``h0``, no blocking character before ``https://``,
    ``http://`` or the ``arxiv.org`` host itself (h8 and h7 are left unset at
    the start of a chunk); ``doi``, an unblocked
    ``https://doi.org/10.48550/arXiv.ID``; ``tail`` (see above), on URLs.
    The flag alternations end in an empty one rather than being possessive:
    a match that fails after them is rare here."""
    hb = _low_class(_HOST_BLOCKERS, question_marks)
    sok = _low_class(_SCHEME_BLOCKERS, question_marks, negate=True)
    return _bytes_re(
        rf"""arxiv
        (?: (?P<url>\.org/
                (?: (?<={sok}https://arxiv\.org/) (?P<h8>) | (?<={sok}http://arxiv\.org/) (?P<h7>)
                  | (?<!{hb}arxiv\.org/) (?P<h0>) | )
                (?:abs|pdf|html)/)
          | (?P<dot>\.) (?: (?<={sok}https://doi\.org/10\.48550/arxiv\.) (?P<doi>) | )
          | (?P<sep>[\ \t\xa0:?]{{1,8}}) )
        """
        + _ID
        + f"(?(url){_tail_flag(question_marks)})"
    )


#: Attachment paths are refused inside the pattern, so the (many) image
#: attachments of a log never reach Python. The other reserved first segments
#: are rare and checked on the match, as are an owner's hyphens (no double,
#: none at the end): a 50-way alternation tried at every ``github.com``, or a
#: repeated group, would cost more than the rest of the pattern. The owner
#: is possessive, like the name: no shorter owner can be followed by "/", and
#: not trying them saves an eighth of the pattern's work on the benchmark
#: log (its attachments). The flags are possessive too, or each attachment
#: would be matched twice.
def _github_re(question_marks: bool) -> re.Pattern[bytes]:
    """The GitHub pattern. Flags: ``h8``/``h0``, no blocking character before
    ``https://github.com/`` or ``github.com/`` (both left unset at the start
    of a chunk); ``tail``, only when the key needs no clean-up (no final
    ``.`` or ``.git``)."""
    ok = _low_class(_HOST_BLOCKERS, question_marks, negate=True)
    sok = _low_class(_SCHEME_BLOCKERS, question_marks, negate=True)
    return _bytes_re(
        rf"""github\.com [/:]
        (?: (?<={sok}https://github\.com/) (?P<h8>) | (?<={ok}github\.com/) (?P<h0>) )?+
        (?!user-attachments/)
        (?P<key> (?P<owner>[a-z0-9][a-z0-9-]{{0,38}}+) / [a-z0-9._-]++ ) (?!/assets/)
        """
        + _tail_flag(question_marks, r"(?<!\.) (?<!\.git)")
    )


#: Each by whether the chunk holds a "?": ``_ARXIV_RES["?" in chunk]``.
_ARXIV_RES = (_arxiv_re(False), _arxiv_re(True))
_GITHUB_RES = (_github_re(False), _github_re(True))

#: A link found in a chunk but not yet placed: (start, end, kind, id,
#: version), offsets in the chunk.
_Found = tuple[int, int, str, str, str | None]
#: A finder: (chunk of text, its lowered copy, output).
_Finder = Callable[[str, bytes, list[_Found]], None]

#: Texts are scanned in pieces of about this many code points, cut at line
#: breaks (no link spans a line). The lowered copy of a piece stays in the
#: CPU cache while the patterns run over it, and small buffers are reused by
#: the allocator instead of being mapped afresh (page faults are dear in a VM).
_CHUNK = 1 << 16

#: GitHub's limit on a repository name's length.
_REPO_MAX = 100


# ------------------------------------------------------------------ helpers


def _lowered(text: str) -> bytes:
    """One byte per code point, ASCII letters lower-cased.

    Latin-1 characters keep their byte (``\\xa0`` stays a space-like byte),
    every other character becomes ``?``; Latin-1 is the cheapest codec with
    a fast path for that. ``bytes.lower`` changes ASCII letters only, so no
    Unicode case rule (Kelvin sign, dotted I) can invent or hide a match.
    """
    return text.encode("latin-1", "replace").lower()


def _arxiv_id(
    new: bytes | None, arch: bytes | None, old: bytes | None, new2: bytes | None, ver: bytes | None
) -> tuple[str, str | None] | None:
    """Canonical id and version from the groups of :data:`_ID` (lower-case)."""
    if new is not None:
        ident = new.decode("ascii")
    elif arch is None or arch not in _OLD_ARCHIVES_B:
        return None
    elif new2 is not None:
        ident = new2.decode("ascii")  # arXiv:hep-th/1601.07616: the archive is noise
    else:
        ident = f"{arch.decode('ascii')}/{(old or b'').decode('ascii')}"
    return ident, (None if ver is None else f"v{int(ver)}")


def canonical_arxiv_id(value: str) -> tuple[str, str | None] | None:
    """The canonical id and version of a bare arXiv id (``math.GT/0309136v2``
    gives ``("math/0309136", "v2")``), or None when ``value`` is not one.

    For ids that come from elsewhere than running text: an API answer, a
    command-line argument, a cache key written by an older version.
    """
    value = value.strip()
    if not value.isascii():
        return None
    m = _ID_RE.fullmatch(value.lower().encode("ascii"))
    return None if m is None else _arxiv_id(*m.groups())


def _url_end(text: str, pos: int, floor: int = -1) -> int:
    """Where a URL whose significant part ends at ``pos`` ends as written.

    Extends over URL characters, stops before a second link glued on
    (``...a/b,https://...``), then drops trailing sentence punctuation and
    unbalanced closing parentheses (``(见 https://github.com/a/b)。`` and
    markdown ``[x](url)``), down to ``floor`` at most (default ``pos``: the
    id itself is never cut). Linear in the length of the tail.
    """
    if floor < 0:  # the common case first: a tail that needs no second look
        end = _PLAIN_TAIL.match(text, pos).end()  # type: ignore[union-attr]
        after = text[end : end + 1]
        if after == ")":  # markdown "[x](url)": unbalanced, as the tail has no "("
            after = text[end + 1 : end + 2]
        if after not in _URL_CHARS and (end == pos or text[end - 1] not in _TRAILING):
            return end
    end = pos
    if pos < len(text) and text[pos] in _URL_CHARS:
        m = _URL_TAIL.match(text, pos)
        if m is not None:
            end = m.end()
        scheme = text.find("://", pos, end)
        if scheme >= 0:
            while scheme > pos and text[scheme - 1] in _SCHEME_CHARS:
                scheme -= 1
            end = scheme
        glued = _GLUED.search(text, pos, end)
        if glued is not None:
            end = glued.start()
    lo = pos if floor < 0 else floor
    opens = closes = -1  # counted on the first ")" met
    while end > lo:
        c = text[end - 1]
        if c == ")":
            if closes < 0:
                opens, closes = text.count("(", lo, end), text.count(")", lo, end)
            if opens >= closes:
                break
            closes -= 1
        elif c == "(":
            opens -= 1
        elif c not in _TRAILING:
            break
        end -= 1
    return end


def _link_start(low: bytes, text: str, host: int) -> int:
    """Start of the link whose host name starts at ``host``: its ``www.`` and
    ``https://``/``http://``/``//`` if any. -1 when a scheme is glued to a preceding
    letter or digit, or a host without scheme to a preceding name or another URL's
    path or query."""
    blockers = _SCHEME_BLOCKERS  # a URL written with its scheme: only a letter or digit
    if host >= 8 and low.startswith(b"https://", host - 8):  # by far the most common
        s = host - 8
    else:
        s = host - 4 if host >= 4 and low.startswith(b"www.", host - 4) else host
        if s >= 8 and low.startswith(b"https://", s - 8):
            s -= 8
        elif s >= 7 and low.startswith(b"http://", s - 7):
            s -= 7
        else:
            blockers = _HOST_BLOCKERS
            if s >= 2 and low.startswith(b"//", s - 2):
                s -= 2
    if s > 0 and text[s - 1] in blockers:
        return -1
    return s


def _subdomains_start(low: bytes, host: int) -> int:
    """Start of the full host name ending in the label at ``host``: any
    subdomains of ``arxiv.org`` (``export.``, ``browse.``, ``ar5iv.labs.``,
    mirrors like ``cn.``) belong to it."""
    s = host
    while s > 1 and low[s - 1] == 0x2E:  # "."
        t = s - 1
        while t > 0 and low[t - 1] in _LABEL_BYTES:
            t -= 1
        if t == s - 1:
            break
        s = t
    return s


# ------------------------------------------------------------- finders per form
# Each takes a chunk of the text and its lowered copy, and appends (start,
# end, kind, id, version) in offsets of the chunk.


def _find_arxiv(text: str, low: bytes, out: list[_Found]) -> None:
    """``arxiv.org/abs|pdf|html/ID`` on any arxiv.org host, the DOI
    ``10.48550/arXiv.ID`` and the markers ``arXiv:ID`` / ``arXiv ID``."""
    append = out.append
    n = len(text)
    url_chars = _URL_CHARS
    for m in _ARXIV_RES["?" in text].finditer(low):
        url, h8, h7, h0, dot, doi, _, new, arch, old, new2, ver, tail = m.groups()
        if new is not None:
            ident = new.decode("ascii")
            version = None if ver is None else f"v{int(ver)}"
        else:
            found = _arxiv_id(new, arch, old, new2, ver)
            if found is None:
                continue
            ident, version = found
        p, end = m.span()
        if url is not None:
            if h8 is not None:
                s = p - 8
            elif h7 is not None:
                s = p - 7
            elif h0 is not None:
                s = p
            elif p >= 8 and low.startswith(b"https://", p - 8):
                s = p - 8
                if s > 0 and text[s - 1] in _HOST_BLOCKERS:
                    continue
            elif p >= 7 and low.startswith(b"http://", p - 7):
                s = p - 7
                if s > 0 and text[s - 1] in _HOST_BLOCKERS:
                    continue
            else:
                s = _link_start(low, text, _subdomains_start(low, p))
                if s < 0:
                    continue
            if tail is not None:
                end += len(tail)
            elif end < n and text[end] in url_chars:
                end = _url_end(text, end)
        elif doi is not None:
            s = p - 25  # https://doi.org/10.48550/arXiv.ID
        elif dot is not None:
            if p < 9 or not low.startswith(b"10.48550/", p - 9):
                continue
            s = p - 9
            if s >= 8 and low.startswith(b"doi.org/", s - 8):
                host = s - 11 if s >= 11 and low.startswith(b"dx.", s - 11) else s - 8
                s = _link_start(low, text, host)
                if s < 0:
                    continue
            elif s > 0 and text[s - 1] in _DOI_BLOCKERS:
                continue
            elif s >= 4 and low.startswith(b"doi:", s - 4):
                s -= 4
            elif s >= 5 and low.startswith(b"doi: ", s - 5):
                s -= 5
        else:
            if p > 0 and text[p - 1] in _MARK_BLOCKERS:
                continue
            sep_end = m.end("sep")
            if sep_end - p != 6 or text[p + 5] not in ": ":
                sep = _MARK_SEP.match(text, p + 5, sep_end)
                if sep is None or sep.end() != sep_end:
                    continue  # a CJK character or a tab mix, not a separator
            s = p
        append((s, end, "arxiv", ident, version))


def _find_arxiv_mirrors(text: str, low: bytes, out: list[_Found]) -> None:
    """``ar5iv.org/abs/ID``, ``alphaxiv.org/abs/ID``, ``huggingface.co/papers/ID``
    (``ar5iv.labs.arxiv.org`` is an arxiv.org host, found with those)."""
    append = out.append
    find = low.find
    for literal, pattern in _MIRRORS:
        # These long literals are rare: bytes.find skips ahead by their
        # length, several times faster than the regex engine's prefix scan.
        match = pattern.match
        i = find(literal)
        while i >= 0:
            m = match(low, i)
            i = find(literal, i + 1)
            if m is None:
                continue
            found = _arxiv_id(*m.groups())
            if found is None:
                continue
            s = _link_start(low, text, m.start())
            if s < 0:
                continue
            end = m.end()
            if end < len(text) and text[end] in _URL_CHARS:
                end = _url_end(text, end)
            append((s, end, "arxiv", found[0], found[1]))


def _find_github(text: str, low: bytes, out: list[_Found]) -> None:
    """``github.com/OWNER/REPO...`` with any scheme or ``www.``, and the SSH
    form ``git@github.com:OWNER/REPO.git``."""
    append = out.append
    n = len(text)
    url_chars = _URL_CHARS
    reserved = _GITHUB_RESERVED_B
    for m in _GITHUB_RES["?" in text].finditer(low):
        h8, h0, key, owner, tail = m.groups()
        if owner in reserved or (b"-" in owner and (owner[-1] == 0x2D or b"--" in owner)):
            continue
        p, end = m.span()
        if h8 is not None:
            s = p - 8
        elif h0 is not None:
            s = p
        elif low[p + 10] == 0x2F:  # "github.com/"
            if p >= 8 and low.startswith(b"https://", p - 8):
                s = p - 8
                if s > 0 and text[s - 1] in _HOST_BLOCKERS:
                    continue
            else:
                s = _link_start(low, text, p)
                if s < 0:
                    continue
        else:  # "user@github.com:owner/repo"
            s = p - 1
            if s < 1 or low[s] != 0x40:  # "@"
                continue
            while s > 0 and low[s - 1] in _LABEL_BYTES:
                s -= 1
            if s == p - 1 or (s > 0 and text[s - 1] in _HOST_BLOCKERS):
                continue
        if tail is not None:  # no final "." or ".git" either
            end += len(tail)
        elif key[-1] == 0x2E:  # "github.com/a/b." ends a sentence: the dot is no part
            end = _url_end(text, end, end - len(key) + key.index(b"/") + 2)
        elif end < n and text[end] in url_chars:
            end = _url_end(text, end)
        if tail is None and (key[-1] == 0x2E or key.endswith(b".git")):  # "a/b.", "a/b.git"
            owner, _, repo = key.partition(b"/")
            repo = repo.rstrip(b".")
            if repo.endswith(b".git"):
                repo = repo[:-4].rstrip(b".")
            if not repo:
                continue
            key = owner + b"/" + repo
        if len(key) > _REPO_MAX + 1 and len(key) - key.index(b"/") > _REPO_MAX + 1:
            continue  # GitHub names a repository in at most 100 characters
        append((s, end, "github", key.decode("ascii"), None))


def _find_pages(text: str, low: bytes, out: list[_Found]) -> None:
    """``OWNER.github.io[/REPO...]``: the owner label before the match."""
    for m in _PAGES_RE.finditer(low):
        p = m.start()
        o = p
        while o > 0 and low[o - 1] in _LABEL_BYTES and p - o < 40:
            o -= 1
        owner = low[o:p]
        if _OWNER.fullmatch(owner) is None or (o > 0 and low[o - 1] in _LABEL_BYTES):
            continue  # empty, too long, or not a GitHub login (double hyphens)
        s = _link_start(low, text, o)
        if s < 0:
            continue  # a path segment (".../notes.github.io/assets/...") or a subdomain
        seg = (m.group("seg") or b"").rstrip(b".")
        if not seg or (m.group("more") is None and seg.endswith(_PAGES_FILE_SUFFIXES_B)):
            seg = owner + b".github.io"  # the user site itself, or a file of it
        ident = f"{owner.decode('ascii')}/{seg.decode('ascii')}"
        out.append((s, _url_end(text, p + 10), "github", ident, None))


# ---------------------------------------------------------------- Link objects


def _links(text: str, finders: tuple[_Finder, ...], via: str | None) -> list[Link]:
    """Run the finders over the text, a chunk at a time (see :data:`_CHUNK`),
    and turn each chunk's finds into Links while the chunk is still in the
    CPU cache. Chunks are cut after line breaks, and no link spans a line."""
    links: list[Link] = []
    n = len(text)
    line = 1  # the line the current chunk starts on
    a = 0
    while a < n:
        b = n
        if n - a > 2 * _CHUNK:
            cut = text.find("\n", a + _CHUNK)
            if cut < 0:
                cut = text.find("\r", a + _CHUNK)
            if cut >= 0:
                b = cut + 1
        chunk = text if (a == 0 and b == n) else text[a:b]
        low = _lowered(chunk)
        found: list[_Found] = []
        for finder in finders:
            finder(chunk, low, found)
        line = _place(chunk, low, a, line, found, via, links)
        a = b
    return links


def _place(
    chunk: str,
    low: bytes,
    base: int,
    line: int,
    found: list[_Found],
    via: str | None,
    links: list[Link],
) -> int:
    """Sort a chunk's finds, drop overlaps, attach 1-based line and column and
    append them to ``links`` as Links. Returns the line after the chunk.

    ``\\n``, ``\\r\\n`` and ``\\r`` all end a line, so a CRLF or CR file gives
    the same lines and columns as its LF twin: lines are counted in a copy
    where each lone ``\\r`` is a ``\\n`` (same length, same offsets). They
    are counted in the lowered copy, whose line breaks are the chunk's and
    where finding the last one is a ``memrchr``.
    """
    if b"\r" in low and _LONE_CR.search(low) is not None:
        low = _LONE_CR.sub(b"\n", low)
    count, rfind = low.count, low.rfind
    if not found:
        return line + count(b"\n")
    found.sort()
    made: list[dict[str, Any]] = []
    append = made.append
    line_start = 0  # offset of the first character of the current line
    last = 0  # offset up to which line breaks have been counted
    last_end = 0
    for start, end, kind, ident, version in found:
        if start < last_end:  # the same text reached from two anchors
            continue
        last_end = end
        nl = count(b"\n", last, start)
        if nl:
            line += nl
            line_start = rfind(b"\n", last, start) + 1
        last = start
        append(
            {
                "kind": kind,
                "id": ident,
                "version": version,
                "text": chunk[start:end],
                "line": line,
                "column": start - line_start + 1,
                "start": base + start,
                "end": base + end,
                "via": via,
            }
        )
    _make_links(made, links)
    return line + count(b"\n", last)


def _make_links(values: list[dict[str, Any]], links: list[Link]) -> None:
    """Append a Link for each dict of field values to ``links``."""
    links.extend(map(Link.model_validate, values))


# -------------------------------------------------------------------- public


def extract(text: str) -> list[Link]:
    """Every arXiv and GitHub repository link in ``text``, in document order.

    Pure and total: never raises on a string, needs no network. GitHub Pages
    sites are not included (see :func:`find_pages_links`).
    """
    if not text:
        return []
    return _links(text, (_find_arxiv, _find_arxiv_mirrors, _find_github), None)


def find_pages_links(text: str) -> list[Link]:
    """GitHub Pages sites in ``text`` as candidate repositories (``via="pages"``).

    ``OWNER.github.io/REPO/...`` names the candidate ``owner/repo`` (a project
    site) and a bare ``OWNER.github.io`` the user site ``owner/owner.github.io``.
    They are only candidates: a project site's path need not be a repository,
    so the pipeline must check them against the API before using them; that
    is why :func:`extract` leaves them out.
    """
    if not text:
        return []
    return _links(text, (_find_pages,), "pages")
