"""The enriched markdown writer: exact round trip, block layout, and untrusted API text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from enrich.models import (
    EnrichedDocument,
    License,
    Link,
    LinkKind,
    Paper,
    Repo,
    StarTrend,
    Status,
)
from enrich.write.markdown import (
    BLOCK_END,
    BLOCK_START,
    ZWSP,
    clean,
    escape,
    render_markdown,
    strip_blocks,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
ENDING = re.compile(r"\r\n|\n|\r")

# A tiny extractor of our own, so these tests do not depend on enrich.extract:
# "arXiv:ID[vN]" and "github.com/OWNER/REPO" tokens, with exact offsets.
_TOKEN = re.compile(
    r"arXiv:(?P<aid>\d{4}\.\d{4,5})(?P<ver>v\d+)?|github\.com/(?P<gh>[A-Za-z0-9-]+/[A-Za-z0-9._-]+)")


def find_links(text: str) -> list[Link]:
    links = []
    for m in _TOKEN.finditer(text):
        before = text[: m.start()]
        line = len(ENDING.findall(before)) + 1
        last_break = max(before.rfind("\n"), before.rfind("\r"))
        column = m.start() - last_break
        kind: LinkKind
        if m.group("aid"):
            kind, ident, version = "arxiv", m.group("aid"), m.group("ver")
        else:
            kind, ident, version = "github", m.group("gh").lower(), None
        links.append(Link(kind=kind, id=ident, version=version, text=m.group(), line=line,
                          column=column, start=m.start(), end=m.end()))
    return links


def ok_paper(title: str = "A Paper", **kw: object) -> Paper:
    data: dict[str, object] = {
        "status": "ok", "title": title, "authors": ["Ada Lovelace", "Alan Turing"],
        "published": datetime(2023, 5, 16, 17, 59, tzinfo=UTC), "primary_category": "cs.CL",
        "latest_version": "v1", "fetched_at": NOW,
    }
    data.update(kw)
    return Paper.model_validate(data)


def ok_repo(full_name: str, **kw: object) -> Repo:
    data: dict[str, object] = {
        "status": "ok", "full_name": full_name, "html_url": f"https://github.com/{full_name}",
        "description": "A library.", "stars": 1234, "forks": 5,
        "license": License(spdx_id="MIT", name="MIT License"), "fetched_at": NOW,
    }
    data.update(kw)
    return Repo.model_validate(data)


def make_doc(text: str, papers: dict[str, Paper] | None = None,
             repos: dict[str, Repo] | None = None, *, fill: bool = True) -> EnrichedDocument:
    """A document for ``text``: its links, and (with ``fill``) an ok record for each id."""
    links = find_links(text)
    papers = dict(papers or {})
    repos = dict(repos or {})
    if fill:
        for link in links:
            if link.kind == "arxiv":
                papers.setdefault(link.id, ok_paper(f"Paper {link.id}"))
            else:
                repos.setdefault(link.id, ok_repo(link.text.split("/", 1)[1]))
    return EnrichedDocument(generated_at=NOW, links=links, papers=papers, repos=repos)


def leaves_with_links(text: str) -> list[tuple[int, int]]:
    """The line ranges of the markdown blocks holding links (markdown-it's leaf blocks)."""
    md = MarkdownIt("commonmark", {"inline_definitions": True}).enable("table")
    leaves = [tuple(t.map) for t in md.parse(text) if t.map is not None and t.type in (
        "paragraph_open", "heading_open", "table_open", "fence", "code_block", "html_block",
        "definition")]
    lines = {link.line - 1 for link in find_links(text)}
    return [(a, b) for a, b in leaves if any(a <= i < b for i in lines)]


def blocks_with_links(text: str) -> int:
    return len(leaves_with_links(text))


_PREFIX = re.compile(r"^[ >]*")


def block_lines(rendered: str) -> list[list[str]]:
    """The content lines of each block, without their container prefix, checking that
    markers pair up in order."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in rendered.splitlines():
        prefix = _PREFIX.match(line)
        if current is None and prefix is not None and line[prefix.end():] == BLOCK_START:
            current = []
            inner = prefix.group()
            continue
        if current is not None:
            line = line.removeprefix(inner)
        if line == BLOCK_START:
            assert current is None, "nested block start"
            current = []
        elif line == BLOCK_END:
            assert current is not None, "block end without start"
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, "unterminated block"
    return blocks


def expected_strip(text: str, rendered_adds_break: bool) -> str:
    if rendered_adds_break and text and not text.endswith(("\n", "\r")):
        endings = ENDING.findall(text)
        dominant = max(endings, key=endings.count) if endings else "\n"
        return text + dominant
    return text


# --- round trip ---------------------------------------------------------------------------

ROUND_TRIP_TEXTS = [
    "",
    "no links at all\n",
    "one paper arXiv:2305.09781 here\n",
    "windows line arXiv:2305.09781\r\nnext line\r\n",
    "old mac line arXiv:2305.09781\rnext\r",
    "several arXiv:2305.09781 and github.com/flexflow/FlexFlow and arXiv:1706.03762v5\n",
    "same id twice arXiv:2305.09781 arXiv:2305.09781v2\nagain arXiv:2305.09781\n",
    "\n\n\nblank lines first arXiv:2305.09781\n\n\n",
    "links on the last line github.com/a/b\n",
    "中文日志：见 arXiv:2305.09781，代码 github.com/flexflow/FlexFlow。\n第二行\n",
    "mixed\r\nendings arXiv:2305.09781\nand\rmore github.com/a/b\r\n",
    # a \n-ended link line followed by an empty \n line in a file whose own ending is \r:
    # a block ending in \r here would merge with that \n on the way back
    "x\ry\rz\rlink arXiv:2305.09781\n\nend\r",
    "stray start marker\n<!-- enrich -->\nthen arXiv:2305.09781\n",
    "stray end marker arXiv:2305.09781\n<!-- /enrich -->\n",
    "<!-- enrich -->\n<!-- enrich -->\nnested starts arXiv:2305.09781\n",
    "marker-looking text <!-- /enrich --> inside a line arXiv:2305.09781\n",
    "  <!-- enrich -->  \nindented marker is not a marker github.com/a/b\n",
    "tab\tand form\x0cfeed arXiv:2305.09781\x0bvertical tab\n",
    "\ufeffbom first arXiv:2305.09781\n",
    "unicode line sep\u2028 arXiv:2305.09781\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
@pytest.mark.parametrize("summary", [True, False])
def test_markdown_strip_blocks_gives_back_the_original(text: str, summary: bool) -> None:
    doc = make_doc(text)
    rendered = render_markdown(text, doc, summary=summary)
    assert strip_blocks(rendered) == text
    if not {BLOCK_START, BLOCK_END} & set(text.splitlines()):  # no stray marker lines
        blocks = block_lines(rendered)
        assert len(blocks) == blocks_with_links(text) + (1 if summary and find_links(text) else 0)


@pytest.mark.parametrize("text", [
    "no break at the end arXiv:2305.09781",
    "first line\r\nlast line without break github.com/a/b",
    "first\rlast arXiv:2305.09781",
    "link in the paragraph of the last line arXiv:2305.09781\nplain last line",
    "link not in the last paragraph arXiv:2305.09781\n\nplain last line",
])
@pytest.mark.parametrize("summary", [True, False])
def test_markdown_adds_one_line_break_only_when_a_block_follows_the_last_line(
        text: str, summary: bool) -> None:
    doc = make_doc(text)
    rendered = render_markdown(text, doc, summary=summary)
    last_has_links = leaves_with_links(text)[-1][1] == len(ENDING.findall(text)) + 1
    assert strip_blocks(rendered) == expected_strip(text, last_has_links or summary)


def test_markdown_text_without_links_is_unchanged_without_summary() -> None:
    text = "plain\r\nlog without a break"
    assert render_markdown(text, make_doc(text), summary=False) == text
    assert render_markdown(text, make_doc(text), summary=True) == text  # nothing to sum up


def test_markdown_blocks_use_the_line_ending_of_their_line() -> None:
    text = "a arXiv:2305.09781\r\n\r\nb github.com/a/b\r\rc arXiv:1706.03762\n"
    rendered = render_markdown(text, make_doc(text), summary=False)
    assert f"\r\n{BLOCK_START}\r\n" in rendered
    assert f"\r{BLOCK_START}\r" in rendered
    assert f"\n{BLOCK_START}\n" in rendered
    assert strip_blocks(rendered) == text


def test_markdown_summary_uses_the_files_most_common_line_ending() -> None:
    text = "a\r\nb\r\nc arXiv:2305.09781\n"
    rendered = render_markdown(text, make_doc(text))
    summary = rendered[rendered.rindex(BLOCK_START):]
    assert summary.endswith(BLOCK_END + "\r\n")
    assert "\r\n" in summary and "\n" not in summary.replace("\r\n", "")


def test_markdown_one_block_per_markdown_block_with_links_plus_summary() -> None:
    text = ("arXiv:2305.09781 and arXiv:2305.09781v2 and github.com/a/b\n"
            "nothing, same paragraph, again arXiv:2305.09781\n"
            "\n"
            "github.com/A/B again, and arXiv:1706.03762\n"
            "github.com/a/b a third time\n")
    doc = make_doc(text)
    blocks = block_lines(render_markdown(text, doc))
    assert len(blocks) == 2 + 1
    # each record once per markdown block, in order of first appearance in it
    assert len(blocks[0]) == 2 and "📄" in blocks[0][0] and "📦" in blocks[0][1]
    assert "v2 mentioned" in blocks[0][0]
    assert len(blocks[1]) == 2 and "📦" in blocks[1][0] and "📄" in blocks[1][1]


def test_markdown_re_rendering_a_stripped_file_is_idempotent() -> None:
    for text in [*ROUND_TRIP_TEXTS, "no break at the end arXiv:2305.09781"]:
        doc = make_doc(text)
        once = render_markdown(text, doc)
        assert render_markdown(strip_blocks(once), doc) == once


def test_markdown_uses_line_numbers_when_offsets_do_not_match_the_text() -> None:
    text = "first\nsecond has the link\n"
    link = Link(kind="arxiv", id="2305.09781", text="arXiv:2305.09781", line=2, column=1,
                start=999, end=1015)
    doc = EnrichedDocument(generated_at=NOW, links=[link],
                           papers={"2305.09781": ok_paper("Found by line")})
    rendered = render_markdown(text, doc, summary=False)
    assert rendered.startswith(f"first\nsecond has the link\n{BLOCK_START}\n> - 📄 [Found by line]")


# --- strip_blocks -------------------------------------------------------------------------


def test_strip_blocks_removes_nested_and_keeps_unmatched_markers() -> None:
    text = (f"keep\n{BLOCK_END}\n{BLOCK_START}\nx\n{BLOCK_START}\ny\n{BLOCK_END}\n"
            f"z\n{BLOCK_END}\nafter\n{BLOCK_START}\ntail\n")
    assert strip_blocks(text) == f"keep\n{BLOCK_END}\nafter\n{BLOCK_START}\ntail\n"
    assert strip_blocks(strip_blocks(text)) == strip_blocks(text)


def test_strip_blocks_needs_exact_marker_lines() -> None:
    text = f" {BLOCK_START}\nx\n{BLOCK_END} \n{BLOCK_START}x\n{BLOCK_END}\n"
    assert strip_blocks(text) == text


def test_strip_blocks_handles_a_final_end_marker_without_line_break() -> None:
    assert strip_blocks(f"a\r\n{BLOCK_START}\r\n- x\r\n{BLOCK_END}") == "a\r\n"


# --- property: random texts ---------------------------------------------------------------

_PIECES = st.sampled_from([
    "a", "b c", "中文", "：", "\t", "<", ">", "!", "-", " ", "*", "\n", "\r\n", "\r",
    "arXiv:2305.09781", "arXiv:2305.09781v3", "arXiv:1706.03762", "github.com/a/b",
    "github.com/FlexFlow/FlexFlow", BLOCK_START, BLOCK_END, "<!--", "-->",
    f"\n{BLOCK_START}\n", f"\n{BLOCK_END}\n", f"\r\n{BLOCK_START}\r\n",
])
_STATUSES: list[Status] = ["ok", "stale", "not_found", "unavailable", "missing", "error"]


@st.composite
def texts_and_docs(draw: st.DrawFn) -> tuple[str, EnrichedDocument]:
    text = "".join(draw(st.lists(_PIECES, max_size=30)))
    links = find_links(text)
    papers = {lk.id: ok_paper(f"T {lk.id}", status=draw(st.sampled_from(_STATUSES)))
              for lk in links if lk.kind == "arxiv"}
    repos = {lk.id: ok_repo(lk.id, status=draw(st.sampled_from(_STATUSES)))
             for lk in links if lk.kind == "github"}
    if draw(st.booleans()) and papers:  # a record the renderer has to do without
        papers.pop(next(iter(papers)))
    return text, EnrichedDocument(generated_at=NOW, links=links, papers=papers, repos=repos)


@given(texts_and_docs(), st.booleans())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_markdown_round_trip_holds_for_random_block_free_texts(
        case: tuple[str, EnrichedDocument], summary: bool) -> None:
    text, doc = case
    assume(strip_blocks(text) == text)  # a text holding a whole block is an enriched file
    rendered = render_markdown(text, doc, summary=summary)
    stripped = strip_blocks(rendered)
    # either the original, or (a block after a last line without break) one break more
    assert stripped in (text, expected_strip(text, True))
    assert render_markdown(strip_blocks(rendered), doc, summary=summary) == rendered


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_strip_blocks_output_is_block_free(text: str) -> None:
    once = strip_blocks(text)
    assert strip_blocks(once) == once


# --- record lines -------------------------------------------------------------------------


def render_one(text: str, doc: EnrichedDocument) -> list[str]:
    return block_lines(render_markdown(text, doc, summary=False))[0]


def test_markdown_paper_line_shows_title_authors_date_category_version_and_code() -> None:
    text = "see arXiv:2305.09781v2\n"
    paper = ok_paper("SpecInfer: Tree-based Speculative Inference",
                     authors=["Xupeng Miao", "Gabriele Oliaro", "Zhihao Zhang", "Xinhao Cheng"],
                     latest_version="v4", code=["flexflow/flexflow"])
    doc = make_doc(text, papers={"2305.09781": paper},
                   repos={"flexflow/flexflow": ok_repo("flexflow/FlexFlow")})
    (line,) = render_one(text, doc)
    assert line == (
        "> - 📄 [SpecInfer: Tree-based Speculative Inference](https://arxiv.org/abs/2305.09781)"
        " — Xupeng Miao, Gabriele Oliaro, Zhihao Zhang et al. · 2023-05-16 · `cs.CL`"
        " · v2 mentioned (latest v4)"
        " · code: [flexflow/FlexFlow](https://github.com/flexflow/FlexFlow)")


def test_markdown_repo_line_shows_stars_trend_licence_description_and_flags() -> None:
    text = "repo github.com/old/name\n"
    repo = ok_repo("new-owner/Name", stars=12345, description="Fast things.",
                   archived=True, renamed_from="old/name", papers=["2305.09781"],
                   trend=StarTrend(week=56, month=300, sparkline="▁▂▄█"))
    doc = make_doc(text, repos={"old/name": repo})
    (line,) = render_one(text, doc)
    assert line == (
        "> - 📦 [new-owner/Name](https://github.com/new-owner/Name) ★ 12,345 (+56 this week) ▁▂▄█"
        " · MIT · Fast things. · archived · renamed from old/name"
        " · paper: [2305.09781](https://arxiv.org/abs/2305.09781)")


def test_markdown_licence_falls_back_to_its_name_and_trend_to_the_month() -> None:
    text = "github.com/a/b\n"
    repo = ok_repo("a/b", license=License(spdx_id="NOASSERTION", name="Custom Licence"),
                   trend=StarTrend(week=None, month=-3), description=None)
    (line,) = render_one(text, make_doc(text, repos={"a/b": repo}))
    assert "★ 1,234 (-3 this month) · Custom Licence" in line


@pytest.mark.parametrize(("status", "words"), [
    ("not_found", "not found on arXiv"),
    ("unavailable", "unavailable (blocked)"),
    ("missing", "missing: not fetched yet"),
    ("error", "error: could not fetch"),
])
def test_markdown_paper_status_is_said_readably(status: Status, words: str) -> None:
    text = "arXiv:2305.09781\n"
    doc = make_doc(text, papers={"2305.09781": Paper(status=status)})
    (line,) = render_one(text, doc)
    assert line.endswith("— " + words)
    # a paper that does not exist gets no link; the others link to where it should be
    assert ("](https://arxiv.org/abs/2305.09781)" in line) == (status != "not_found")


@pytest.mark.parametrize(("status", "words"), [
    ("not_found", "not found on GitHub"),
    ("unavailable", "unavailable (blocked)"),
    ("missing", "missing: not fetched yet"),
    ("error", "error: could not fetch"),
])
def test_markdown_repo_status_is_said_readably(status: Status, words: str) -> None:
    text = "github.com/a/b\n"
    (line,) = render_one(text, make_doc(text, repos={"a/b": Repo(status=status)}))
    assert line.startswith("> - 📦 ") and line.endswith("— " + words)


def test_markdown_stale_record_still_shows_its_data_and_cache_date() -> None:
    text = "arXiv:2305.09781 github.com/a/b\n"
    doc = make_doc(text, papers={"2305.09781": ok_paper("Old Data", status="stale",
                                                         fetched_at=datetime(2026, 10, 1))},
                   repos={"a/b": ok_repo("a/b", status="stale", fetched_at=None)})
    paper_line, repo_line = render_one(text, doc)
    assert "[Old Data](" in paper_line and paper_line.endswith("stale: cached 2026-10-01")
    assert "★ 1,234" in repo_line and repo_line.endswith("stale: cached data")


def test_markdown_link_without_record_reads_as_missing() -> None:
    text = "arXiv:2305.09781\n"
    (line,) = render_one(text, make_doc(text, fill=False))
    assert line.endswith("missing: not fetched yet")


def test_markdown_summary_lists_every_record_with_status() -> None:
    text = "arXiv:2305.09781 github.com/a/b github.com/c/d\n"
    doc = make_doc(text, repos={"c/d": Repo(status="not_found")})
    doc.papers["9999.99999"] = ok_paper("Linked From A Repo", linked_from=["a/b"])
    summary = block_lines(render_markdown(text, doc))[-1]
    rows = [r for r in summary if r.startswith("| 📄") or r.startswith("| 📦")]
    assert len(rows) == 4
    assert rows[0].startswith("| 📄 | [Paper 2305.09781](https://arxiv.org/abs/2305.09781)")
    assert "Ada Lovelace, Alan Turing" in rows[0] and rows[0].endswith("| ok |")
    assert "[Linked From A Repo]" in rows[1]
    assert rows[2] == "| 📦 | [a/b](https://github.com/a/b) | ★ 1,234 | MIT | ok |"
    assert rows[3] == "| 📦 | c/d | | | not found on GitHub |"
    assert summary[0] == "**enrich summary:** 2 papers, 2 repositories"


# --- untrusted API text -------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "[click](http://evil.example/a)",
    "![img](http://evil.example/x.png)",
    BLOCK_END,
    "--> <!-- x",
    "line one\nline two\r\n# heading\n| a | b |\n---",
    "".join(chr(c) for c in range(32)) + "\x7f\x85\x9b",
    "\u202eevil\u202c \u2066isolate\u2069 \u202aembed",
    "x" * 10_000,
    "bare http://evil.example/p and www.evil.example and evil.com and a@evil.com",
    "<http://evil.example> <b>bold</b> &lt;entity&gt; &#60;script&#62;",
    "*emph* _under_ `code` ~~strike~~ $x$ \\[esc\\] [ref]: http://evil.example",
    "[text][1]\n\n[1]: http://evil.example",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(1) data:text/html,<b>x</b>",
]


def hostile_doc(text: str, payload: str) -> EnrichedDocument:
    """Every API string of every record set to ``payload``."""
    links = find_links(text)
    paper = Paper(status="ok", title=payload, authors=[payload] * 4, abstract=payload,
                  published=NOW, primary_category=payload, latest_version=payload,
                  categories=[payload], doi=payload, comment=payload, abs_url=payload,
                  pdf_url=payload, code=[payload, "a/b"])
    repo = Repo(status="ok", full_name=payload, html_url=payload, description=payload,
                homepage=payload, stars=7, license=License(spdx_id=payload, name=payload),
                topics=[payload], language=payload, archived=True, renamed_from=payload,
                papers=[payload, "2305.09781"],
                trend=StarTrend(week=1, sparkline=payload))
    stale = paper.model_copy(update={"status": "stale"})
    return EnrichedDocument(
        generated_at=NOW, links=links,
        papers={"2305.09781": paper, "1706.03762": stale},
        repos={"a/b": repo, "c/d": repo.model_copy(update={"status": "stale"})})


def walk(tokens: Iterable[Token]) -> Iterator[Token]:
    for tok in tokens:
        yield tok
        if tok.children:
            yield from walk(tok.children)


def _md() -> MarkdownIt:
    return MarkdownIt("gfm-like")  # html on, linkify on (fuzzy links and e-mails), tables


HOSTILE_TEXT = ("Log arXiv:2305.09781 and github.com/a/b\n\n"
                "more: arXiv:1706.03762v2 github.com/c/d\n")
BUILT_URLS = {"https://arxiv.org/abs/2305.09781", "https://arxiv.org/abs/1706.03762",
              "https://github.com/a/b", "https://github.com/c/d"}


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_markdown_api_text_cannot_inject_html_links_images_or_markers(payload: str) -> None:
    doc = hostile_doc(HOSTILE_TEXT, payload)
    rendered = render_markdown(HOSTILE_TEXT, doc)
    # structure intact: one block per paragraph with links + the summary, each with its items
    blocks = block_lines(rendered)
    assert len(blocks) == blocks_with_links(HOSTILE_TEXT) + 1
    assert [len(b) for b in blocks[:-1]] == [2, 2]
    assert all(line.startswith("> - ") for b in blocks[:-1] for line in b)
    assert len([r for r in blocks[-1] if r.startswith(("| 📄 |", "| 📦 |"))]) == 4
    assert strip_blocks(rendered) == HOSTILE_TEXT
    # no bidi overrides or control characters beyond the line endings
    assert not re.search("[\u202a-\u202e\u2066-\u2069\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]",
                         rendered)
    # long strings are cut
    assert max(len(line) for line in rendered.splitlines()) < 3000

    original_hrefs = {t.attrGet("href") for t in walk(_md().parse(HOSTILE_TEXT))
                      if t.type == "link_open"}
    tokens = list(walk(_md().parse(rendered)))
    for tok in tokens:
        assert tok.type not in ("html_inline", "image"), tok
        if tok.type == "html_block":
            assert tok.content.strip() in (BLOCK_START, BLOCK_END)
        if tok.type == "link_open":
            assert tok.attrGet("href") in BUILT_URLS | original_hrefs, tok
    html = _md().render(rendered)
    assert "<script" not in html and "<img" not in html and "evil" not in "".join(
        str(t.attrGet("href")) for t in tokens if t.type == "link_open")
    # the block lists and the summary table render as such
    assert html.count("<blockquote>") == 2
    assert html.count("<ul>") == 2 and html.count("<li>") == 4
    assert html.count("<table>") == 1 and html.count("<tr>") == 1 + 4
    assert len(re.findall(r"<td[ >]", html)) == 4 * 5  # no cell split by API text


def test_markdown_hostile_full_name_is_not_used_in_the_url() -> None:
    text = "github.com/a/b\n"
    repo = ok_repo("evil/x](http://evil.example) ![i](http://evil.example/i.png")
    (line,) = render_one(text, make_doc(text, repos={"a/b": repo}))
    assert line.startswith("> - 📦 [a/b](https://github.com/a/b) ★")  # the key, not that
    assert "evil" not in line


def test_markdown_long_title_and_description_are_truncated_with_ellipsis() -> None:
    text = "arXiv:2305.09781 github.com/a/b\n"
    doc = make_doc(text, papers={"2305.09781": ok_paper("t" * 10_000)},
                   repos={"a/b": ok_repo("a/b", description="d" * 10_000)})
    paper_line, repo_line = render_one(text, doc)
    assert "[" + "t" * 299 + "…](" in paper_line
    assert "d" * 299 + "…" in repo_line and "d" * 300 not in repo_line


def test_escape_neutralises_markdown_html_and_autolinks() -> None:
    assert escape("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert escape("[a](b) ![c]") == "\\[a\\]\\(b\\) \\!\\[c\\]"
    assert escape("*a* _b_ `c` #d |e| ~f~ $g$ \\h") == (
        "\\*a\\* \\_b\\_ \\`c\\` \\#d \\|e\\| \\~f\\~ \\$g\\$ \\\\h")
    assert escape("http://x.org") == f"http:{ZWSP}//x.{ZWSP}org"
    assert escape("www.x.org a@b.c") == f"www.{ZWSP}x.{ZWSP}org a@{ZWSP}b.{ZWSP}c"
    assert escape("GPT-3.5 v1.0") == "GPT-3.5 v1.0"  # digits after a dot are no domain
    assert escape("next.js", label=True) == "next.js"


def test_clean_collapses_breaks_and_drops_controls_and_bidi() -> None:
    assert clean(" a\r\nb\tc\x00d\u202ee\u2028f\x85g ") == "a b cde f g"
    assert clean("abcdef", 4) == "abc…"
    assert clean(None) == ""


def test_clean_skips_its_search_only_for_text_it_would_not_change() -> None:
    # clean() searches for characters to drop or replace only in unprintable text
    from enrich.write.markdown import _CLEAN_TABLE

    assert not any(chr(cp).isprintable() for cp in _CLEAN_TABLE)
    assert clean("\u00a0a\u200bb\u00adc") == "a\u200bb\u00adc"  # unprintable, kept
