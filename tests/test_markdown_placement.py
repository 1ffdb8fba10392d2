"""Placement of the enriched markdown's blocks: rendered, the enriched file is the log.

The property: rendered by a CommonMark/GFM renderer (markdown-it-py with tables and
strikethrough, linkify off), the enriched file with its blocks taken out of the
*rendering* (the tokens from a ``<!-- enrich -->`` HTML block to the next
``<!-- /enrich -->`` one) renders exactly as the log does. Checked over the fixtures
of ``tests/fixtures/placement/`` (lists with lazy continuations and hard breaks,
nested and ordered lists, loose lists, tables, quotes, headings, code, a mixed
Chinese/English log), their CRLF versions, and random markdown-like texts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from enrich.extract import extract
from enrich.models import EnrichedDocument, ErrorEntry, License, Paper, Repo
from enrich.write import placement
from enrich.write.markdown import BLOCK_END, BLOCK_START, render_markdown, strip_blocks
from enrich.write.placement import Placement

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "placement"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def renderer() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def without_blocks(tokens: list[Token]) -> list[Token]:
    """The tokens outside the enrich blocks (an HTML block that is exactly a start marker
    up to the next one that is exactly an end marker)."""
    kept: list[Token] = []
    inside = False
    for tok in tokens:
        body = tok.content.strip() if tok.type == "html_block" else ""
        if body == BLOCK_START:
            inside = True
        elif inside and body == BLOCK_END:
            inside = False
        elif not inside:
            kept.append(tok)
    assert not inside, "a block is not closed in the rendering"
    return kept


def rendering(text: str, *, drop_blocks: bool = False) -> str:
    md = renderer()
    tokens = md.parse(text)
    if drop_blocks:
        tokens = without_blocks(tokens)
    return md.renderer.render(tokens, md.options, {})


def renders_like(original: str, enriched: str) -> bool:
    return rendering(enriched, drop_blocks=True) == rendering(original)


def doc_for(text: str) -> EnrichedDocument:
    """Real links (enrich.extract), a record for each: mostly ok, some of each status."""
    links = extract(text)
    papers: dict[str, Paper] = {}
    repos: dict[str, Repo] = {}
    for i, link in enumerate(links):
        if link.kind == "arxiv":
            papers.setdefault(link.id, Paper(
                status="ok", title=f"Paper {link.id}", authors=["A. Author", "B. Author"],
                published=NOW, primary_category="cs.CL", fetched_at=NOW))
        elif i % 5 == 4:
            repos.setdefault(link.id, Repo(status="not_found"))
        else:
            repos.setdefault(link.id, Repo(
                status="ok", full_name=link.id, stars=10 * i, description="A *repo* | x",
                license=License(spdx_id="MIT"), fetched_at=NOW))
    return EnrichedDocument(generated_at=NOW, links=links, papers=papers, repos=repos)


FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.md"))


def fixture(name: str, ending: str = "\n") -> str:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("\n", ending)


@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_enriched_fixture_renders_like_the_log_once_blocks_are_dropped(
        name: str, ending: str) -> None:
    text = fixture(name, ending)
    doc = doc_for(text)
    enriched = render_markdown(text, doc)
    assert strip_blocks(enriched) == text
    assert enriched.count(BLOCK_START) > 1  # the fixture's blocks and the summary
    assert renders_like(text, enriched), name
    # the line endings are the log's own
    if ending == "\r\n":
        assert "\n" not in enriched.replace("\r\n", "")
    # re-enriching replaces the blocks
    assert render_markdown(strip_blocks(enriched), doc) == enriched


def test_every_fixture_link_is_annotated_in_a_block() -> None:
    for name in FIXTURE_NAMES:
        text = fixture(name)
        doc = doc_for(text)
        enriched = render_markdown(text, doc, summary=False)
        for key in {lk.id for lk in doc.links}:
            assert key in enriched.lower().replace(text.lower(), ""), (name, key)


def blocks_of(enriched: str) -> list[tuple[str, list[str]]]:
    """Each block's prefix and lines (the prefix removed), markers excluded."""
    out: list[tuple[str, list[str]]] = []
    lines = enriched.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"([ >]*)" + re.escape(BLOCK_START), line)
        if m:
            prefix = m.group(1)
            end = lines.index(prefix + BLOCK_END, i)
            out.append((prefix, [x.removeprefix(prefix) for x in lines[i + 1:end]]))
    return out


def test_lazy_list_item_gets_one_block_after_its_last_lazy_line() -> None:
    text = fixture("lists-lazy.md")
    enriched = render_markdown(text, doc_for(text), summary=False)
    lines = enriched.splitlines()
    # item 1: the block follows the image line, indented to the item's content column
    at = lines.index("![image](https://example.com/img/1.png)")
    assert lines[at + 1] == "  " + BLOCK_START
    assert lines[at + 2].startswith("  > - 📄 [Paper 2305.09781]")
    assert lines[at + 3].startswith("  > - 📦 [flexflow/flexflow]")
    assert lines[at + 4] == "  " + BLOCK_END
    # item 3: after its two lazy lines, not between them
    at = lines.index("and a third lazy line")
    assert lines[at + 1] == "  " + BLOCK_START
    # item 5: one repository named three times is one bullet
    blocks = blocks_of(enriched)
    peft = [b for _, b in blocks if any("huggingface/peft" in x for x in b)]
    assert [len(b) for b in peft] == [1, 1]
    # no block sits between two lines of one paragraph: the hard breaks stay hard breaks
    assert rendering(enriched, drop_blocks=True).count("<br />") == rendering(text).count(
        "<br />")


def test_block_prefixes_follow_the_container() -> None:
    prefixes: dict[str, set[str]] = {}
    for name in ("nested-ordered.md", "quotes.md", "tables.md"):
        text = fixture(name)
        for prefix, lines in blocks_of(render_markdown(text, doc_for(text), summary=False)):
            for line in lines:
                m = re.match(r"> - (?:📄 \[Paper |📦 \[?)([^\]\s]+)", line)
                assert m is not None, line
                prefixes.setdefault(m.group(1).lower(), set()).add(prefix)
    assert prefixes["1706.03762"] == {"   "}  # "1. " item
    assert prefixes["tensorflow/tensor2tensor"] == {"     "}  # "-" nested in "1. "
    assert prefixes["1810.04805"] == {"       "}
    assert prefixes["openai/gpt-3"] == {"    "}  # "10. " item, after its lazy line
    assert prefixes["a/b"] == {"   "}  # "8)" then indented code: one space counts
    assert prefixes["2302.13971"] == {"   ", ""}  # "9)" item; the table at top level
    assert prefixes["karpathy/nanogpt"] == {"      "}  # "- - - " three items
    assert prefixes["karpathy/mingpt"] == {"      "}  # a tab is 4 columns
    assert prefixes["openai/evals"] == {"> > "}
    assert prefixes["2210.03629"] == {"> "}  # ">" without a space
    assert prefixes["ysymyth/react"] == {"  > "}
    assert prefixes["yoheinakajima/babyagi"] == {">   "}
    assert prefixes["huggingface/peft"] == {"  "}  # the table in a list item


def test_code_block_links_get_their_block_after_the_code_outside_it() -> None:
    text = fixture("code.md")
    enriched = render_markdown(text, doc_for(text), summary=False)
    assert "```\n" + BLOCK_START in enriched
    assert "  ```\n  " + BLOCK_START in enriched
    assert "~~~~\n" + BLOCK_START in enriched
    # an HTML block that ends at a blank line would swallow a block after it: before it
    assert BLOCK_END + "\n<div>\n" in enriched
    html = rendering(enriched)
    assert all(BLOCK_START not in code for code in re.findall(r"<code>.*?</code>", html, re.S))


def test_unclosed_fence_gets_its_block_and_the_summary_before_it() -> None:
    text = fixture("unclosed-fence.md")
    enriched = render_markdown(text, doc_for(text))
    head, fence = enriched.split("```\n")
    assert fence == text.split("```\n")[1]
    assert head.count(BLOCK_START) == 3  # the paragraph's, the fence's, the summary
    assert renders_like(text, enriched)


def test_block_in_an_open_html_block_on_a_marker_line_is_left_to_the_summary() -> None:
    text = "- <div>https://github.com/a/b\n  still html\n\n- next\n"
    enriched = render_markdown(text, doc_for(text))
    assert enriched.startswith(text) and enriched.count(BLOCK_START) == 1  # the summary
    assert renders_like(text, enriched)


def test_strip_blocks_removes_prefixed_blocks_and_needs_the_same_prefix() -> None:
    text = (f"- a\n  {BLOCK_START}\n  > - x\n  {BLOCK_END}\n"
            f"> q\n> {BLOCK_START}\n> > - y\n> {BLOCK_END}\n")
    assert strip_blocks(text) == "- a\n> q\n"
    mismatched = f"- a\n  {BLOCK_START}\n  > - x\n{BLOCK_END}\n"
    assert strip_blocks(mismatched) == mismatched


# --- the annotations ------------------------------------------------------------------------


def test_names_keep_the_case_the_log_wrote() -> None:
    text = ("A missing one https://github.com/OpenAI/Whisper and a renamed one "
            "https://github.com/OldOwner/Tool and code of arXiv:2305.09781\n")
    doc = EnrichedDocument(
        generated_at=NOW, links=extract(text),
        papers={"2305.09781": Paper(status="ok", title="T", code=["gone/away", "oldowner/tool"],
                                    fetched_at=NOW)},
        repos={"openai/whisper": Repo(status="missing"),
               "oldowner/tool": Repo(status="ok", full_name="NewOwner/Tool", stars=1,
                                     renamed_from="oldowner/tool", fetched_at=NOW),
               "gone/away": Repo(status="not_found")})
    enriched = render_markdown(text, doc)
    assert "📦 [OpenAI/Whisper](https://github.com/OpenAI/Whisper) — missing" in enriched
    assert "renamed from OldOwner/Tool" in enriched
    # the summary too
    assert "| 📦 | [OpenAI/Whisper](https://github.com/OpenAI/Whisper) |" in enriched
    # a paper's code: a repository known not to exist is named, not linked
    assert "code: gone/away, [NewOwner/Tool](https://github.com/NewOwner/Tool)" in enriched
    assert "github.com/gone/away" not in enriched


def test_a_repository_skipped_for_a_rate_limit_says_why() -> None:
    text = "see https://github.com/a/b and https://github.com/c/d\n"
    why = ("GitHub kept answering with secondary rate limits (4 in a row); not fetched this "
           "run (the limit resets at 2026-11-29 04:00 UTC)")
    doc = EnrichedDocument(
        generated_at=NOW, links=extract(text),
        repos={"a/b": Repo(status="missing"), "c/d": Repo(status="missing")},
        errors=[ErrorEntry(kind="github", id="a/b", message=why)])
    enriched = render_markdown(text, doc)
    # (escaped like any text from outside: the parentheses get a backslash)
    assert ("📦 [a/b](https://github.com/a/b) — missing: GitHub kept answering with "
            "secondary rate limits \\(4 in a row\\); not fetched this run") in enriched
    assert "| missing: GitHub kept answering" in enriched  # the summary's status cell
    assert "📦 [c/d](https://github.com/c/d) — missing: not fetched yet" in enriched


def test_an_error_message_is_escaped_like_api_text() -> None:
    text = "https://github.com/a/b\n"
    doc = EnrichedDocument(
        generated_at=NOW, links=extract(text), repos={"a/b": Repo(status="error")},
        errors=[ErrorEntry(kind="github", id="a/b", message="<b>x</b> | [y](http://e.x)")])
    line = next(x for x in render_markdown(text, doc).splitlines() if "📦" in x)
    assert line.endswith("— error: &lt;b&gt;x&lt;/b&gt; \\| \\[y\\]\\(http:\u200b//e.\u200bx\\)")


# --- the parser's chunks ----------------------------------------------------------------------


def leaves(text: str) -> list[placement.Leaf]:
    lines = re.split(r"\r\n|\n|\r", text)
    if lines[-1] == "":
        lines.pop()
    return Placement(lines).leaves


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parsing_in_chunks_places_like_parsing_at_once(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = fixture(name) * 3
    whole = leaves(text)
    for size in (1, 2, 3, 7):
        monkeypatch.setattr(placement, "CHUNK_LINES", size)
        assert leaves(text) == whole, size


# --- property: random markdown-like texts ------------------------------------------------------

_LINE_STARTS = ["", "", "", "- ", "* ", "1. ", "2) ", "  ", "   ", "    ", "> ", "> > ", ">",
                "- > ", "> - ", "  - ", "# ", "| ", "```", "~~~", "<div>", "\t"]
_WORDS = ["a", "中文", "https://github.com/a/b", "https://arxiv.org/abs/2305.09781",
          "github.com/c/d", "| x |", "|---|", "\\", "`", "**", "=", "---", "<!-- c -->",
          "[r]: https://github.com/e/f"]


@st.composite
def markdown_texts(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 14))):
        start = draw(st.sampled_from(_LINE_STARTS))
        words = draw(st.lists(st.sampled_from(_WORDS), max_size=4))
        lines.append(start + " ".join(words))
    return "".join(line + draw(st.sampled_from(["\n", "\n", "\r\n"])) for line in lines)


@given(markdown_texts(), st.booleans())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_markdown_renders_like_the_log_once_blocks_are_dropped(
        text: str, summary: bool) -> None:
    doc = doc_for(text)
    enriched = render_markdown(text, doc, summary=summary)
    assert strip_blocks(enriched) == text
    assert renders_like(text, enriched)
