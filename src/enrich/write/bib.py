"""BibTeX for the papers of a document (``--format bib``): one ``@misc`` per paper
with metadata (status ``ok`` or ``stale``), in the form arXiv's own "Export
BibTeX citation" uses (``eprint``, ``archivePrefix``, ``primaryClass``).

Citation keys are stable: they depend only on the paper itself, never on the
other papers or the order of records, so a ``\\cite`` keeps working across
nightly runs. A key is ``<family><year><word>-<digest>``:

- ``family``: the first author's last name, folded to lower-case ASCII letters
  and digits (``Łukasz Kaiser`` -> ``kaiser``; ``anon`` when unknown);
- ``year``: the year of first publication (else the one in the id);
- ``word``: the first title word that is not a stop word, folded the same way;
- ``digest``: the first 4 hex digits of SHA-256 of the arXiv id, so that two
  papers by the same author in the same year starting with the same word get
  distinct keys. Should two keys still collide, those entries use 10 digits.

Example: ``vaswani2017attention-d146`` for 1706.03762.

Text fields escape the LaTeX specials ``& % $ # _ { } ~ ^ \\`` (so ``$O(n)$`` in a
title prints as written rather than as math). ``doi`` (the paper's, else arXiv's
own ``10.48550/arXiv.ID``) and ``url`` are verbatim fields and are written as
they are when they hold only ordinary DOI/URL characters, ``_`` included.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

from ..models import EnrichedDocument, Paper
from .markdown import clean

_STOP_WORDS = frozenset({
    "a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "without", "towards",
    "toward", "via", "is", "are", "be", "as", "at", "by", "from", "into", "onto", "over",
    "under", "do", "does", "can", "how", "what", "when", "where", "which", "why", "we", "our",
    "your", "its", "it", "this", "that", "these", "those", "using", "use",
})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))
# DOIs and URLs are verbatim fields (biblatex; \\doi and \\url in BibTeX styles):
# escaping "_" there would print a backslash, so plain ones are written as they are.
_VERBATIM_OK = re.compile(r"[A-Za-z0-9._;()/:<>\-]+")
_NEW_ID = re.compile(r"(\d{2})(\d{2})\.\d{4,5}")
_OLD_ID = re.compile(r"[a-z-]+/(\d{2})\d{5}")


def latex_escape(value: object) -> str:
    """Text safe inside a BibTeX field: single-line, LaTeX specials escaped."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], clean(value))


def _ascii_word(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value.replace("ł", "l").replace("Ł", "L"))
    return re.sub(r"[^a-z0-9]", "", folded.encode("ascii", "ignore").decode().lower())


def _family(author: str) -> str:
    name = clean(author)
    if "," in name:  # "Family, Given"
        return _ascii_word(name.split(",", 1)[0])
    words = name.split()
    while len(words) > 1 and _ascii_word(words[-1]) in _NAME_SUFFIXES:
        words.pop()
    return _ascii_word(words[-1]) if words else ""


def _year(arxiv_id: str, paper: Paper) -> str:
    if paper.published is not None:
        return str(paper.published.year)
    m = _NEW_ID.fullmatch(arxiv_id) or _OLD_ID.fullmatch(arxiv_id)
    if m is None:
        return ""
    yy = int(m.group(1))
    return str(1900 + yy if yy >= 91 else 2000 + yy)


def _title_word(title: str | None) -> str:
    for raw in clean(title).split():
        word = _ascii_word(raw)
        if word and word not in _STOP_WORDS:
            return word
    return ""


def _digest(arxiv_id: str, length: int) -> str:
    return hashlib.sha256(arxiv_id.encode()).hexdigest()[:length]


def _base_key(arxiv_id: str, paper: Paper) -> str:
    family = _family(paper.authors[0]) if paper.authors else ""
    return f"{family or 'anon'}{_year(arxiv_id, paper)}{_title_word(paper.title)}"


def citation_keys(doc: EnrichedDocument) -> dict[str, str]:
    """The citation key of every paper that gets an entry, by arXiv id."""
    ids = [k for k, p in doc.papers.items() if p.status in ("ok", "stale")]
    keys = {k: f"{_base_key(k, doc.papers[k])}-{_digest(k, 4)}" for k in ids}
    clashes = Counter(keys.values())
    for k in ids:
        if clashes[keys[k]] > 1:
            keys[k] = f"{_base_key(k, doc.papers[k])}-{_digest(k, 10)}"
    return keys


def _verbatim(value: str) -> str:
    value = clean(value)
    return value if _VERBATIM_OK.fullmatch(value) else latex_escape(value)


def _author_field(authors: list[str]) -> str:
    names = []
    for author in authors:
        name = latex_escape(author)
        # A name holding " and " or a comma would be split or reordered by BibTeX.
        if re.search(r"\band\b", name, re.IGNORECASE) or "," in name:
            name = "{" + name + "}"
        names.append(name)
    return " and ".join(names)


def _entry(key: str, arxiv_id: str, paper: Paper) -> str:
    fields: list[tuple[str, str]] = []
    if paper.title:
        fields.append(("title", "{" + latex_escape(paper.title) + "}"))
    if paper.authors:
        fields.append(("author", _author_field(paper.authors)))
    if year := _year(arxiv_id, paper):
        fields.append(("year", year))
    fields.append(("eprint", latex_escape(arxiv_id)))
    fields.append(("archivePrefix", "arXiv"))
    if paper.primary_category:
        fields.append(("primaryClass", latex_escape(paper.primary_category)))
    fields.append(("doi", _verbatim(paper.doi or f"10.48550/arXiv.{arxiv_id}")))
    fields.append(("url", _verbatim(f"https://arxiv.org/abs/{arxiv_id}")))
    body = "".join(f"  {name:<13} = {{{value}}},\n" for name, value in fields)
    return f"@misc{{{key},\n{body}}}\n"


def render_bib(doc: EnrichedDocument) -> str:
    """One ``@misc`` entry per ``ok``/``stale`` paper, sorted by key; ``""`` if none."""
    keys = citation_keys(doc)
    entries = sorted((key, arxiv_id) for arxiv_id, key in keys.items())
    return "\n".join(_entry(key, arxiv_id, doc.papers[arxiv_id]) for key, arxiv_id in entries)
