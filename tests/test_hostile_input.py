"""Hostile input: hostile text from the APIs through a whole run, and hostile log files.

- API text (titles, authors, descriptions, licence names ...) carrying HTML,
  markdown links and images, fake block markers, line breaks, control and bidi
  characters and megabytes must come out of ``enrich run`` as inert text: the
  enriched markdown is rendered with markdown-it-py and every link, image and
  piece of raw HTML in the result is accounted for.
- The extractor, fuzzed with random bytes and random mixes of URL fragments,
  never raises and never yields an id outside the grammar of spec section 2
  (written here independently, as regular expressions).
- A repository path built to climb out of ``/repos/{owner}/{repo}``
  (``github.com/../../x``, ``github.com/a/b%2F..``) never reaches the API as such.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import hypothesis.strategies as st
import jsonschema
import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from hypothesis import HealthCheck, given, settings
from markdown_it import MarkdownIt
from markdown_it.token import Token
from support import load_json, run_cli, write_config

from enrich.extract import extract
from enrich.fetch.github import split_key
from enrich.write.json import load_schema
from enrich.write.markdown import BLOCK_END, BLOCK_START, strip_blocks

TOKEN = "ghp_hostileInputToken0123456789abcdefQRS"

# -- hostile text from the APIs ---------------------------------------------------------------

EVIL = "evil.example"
#: Strings no API should send and every API may. Valid in XML 1.0 (the arXiv fake
#: sends Atom), so no C0 controls but tab, line feed and carriage return.
HOSTILE = [
    "<script>alert('owned')</script>",
    f"[click me](https://{EVIL}/phish) and [ref][1]",
    f"![tracker](https://{EVIL}/pixel.png)",
    f"<img src=x onerror=alert(1)> <a href='https://{EVIL}/a'>a</a>",
    "<!-- /enrich -->",
    "closing early\n<!-- /enrich -->\n<!-- enrich -->\nand reopening",
    f"<https://{EVIL}/autolink> www.{EVIL} https://{EVIL}/bare mail@{EVIL}",
    f"[1]: https://{EVIL}/reference-definition",
    "*emphasis* _under_ `code` ~~strike~~ $x^2$ **bold**",
    "| a | table | injection |\n|---|---|---|",
    "# a heading\n> a quote\n- a list\n```\nfenced\n```",
    "&lt;script&gt; &amp;amp; &#60;b&#62; &copy;",
    "tab\there\r\ncrlf\rcr\u2028line sep\u2029para sep\x85next line",
    "\u202eRTL override\u202c \u2066isolate\u2069 \u200fmark \u202dLTR\u202c",
    "javascript:alert(1) data:text/html;base64,PHNjcmlwdD4=",
    "\\ backslash at the end \\",
    "Z" * 200_000,
]
#: JSON can carry what XML cannot: every C0 and C1 control, ESC sequences, NUL.
CONTROL = "\x1b[2J\x1b[31mred\x1b[0m \x07bell \x00nul \x08bs \x7fdel \x9bcsi \x0bvt \x0cff"


def _hostile(n: int) -> str:
    return HOSTILE[n % len(HOSTILE)]


@pytest.fixture
def hostile_world(tmp_path: Path, arxiv_server: FakeArxiv,
                  github_server: FakeGitHub) -> Iterator[tuple[Path, Path, str]]:
    """A log naming papers and repositories whose every text field is hostile."""
    lines = ["# reading log", ""]
    for n in range(len(HOSTILE)):
        pid = f"2402.{10000 + n:05d}"
        arxiv_server.add_paper(
            pid, title=_hostile(n), authors=[_hostile(n + 1), (_hostile(n + 2), _hostile(n + 3)),
                                             "Ada Lovelace", _hostile(n + 4)],
            abstract=_hostile(n + 5), comment=_hostile(n + 6), journal_ref=_hostile(n + 7),
            primary_category=_hostile(n + 8)[:60], categories=[_hostile(n + 9)[:60]])
        owner, name = f"Owner-{n}", f"repo-{n}"
        license_: Any = ("MIT", _hostile(n + 10)) if n % 3 else (_hostile(n + 11)[:50], "x")
        github_server.add_repo(
            f"{owner}/{name}", stars=n, description=_hostile(n) + CONTROL,
            license=license_, topics=[_hostile(n + 12)[:50]], language=_hostile(n + 13)[:50],
            homepage=_hostile(n + 14)[:500])
        lines.append(f"- paper https://arxiv.org/abs/{pid} with code github.com/{owner}/{name}")
    # a repository whose new name (from the API) is itself hostile
    github_server.add_repo("Old-Owner/old-name", description="renamed")
    github_server.rename("Old-Owner/old-name", "x/<script>alert(1)</script>](https://evil)")
    lines.append("- renamed: https://github.com/Old-Owner/old-name")
    text = "\n".join(lines) + "\n"
    log = tmp_path / "hostile.txt"
    log.write_text(text, encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server,
                       http={"timeout": 2, "max_bytes": 50 * 2**20})
    yield log, cfg, text


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for tok in tokens:
        yield tok
        if tok.children:
            yield from _walk(tok.children)


def _renderer() -> MarkdownIt:
    """CommonMark plus GitHub's tables and strikethrough, and bare-URL linkify when
    linkify-it-py is installed (it is with the bench extras)."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    try:
        import linkify_it  # type: ignore[import-untyped]  # noqa: F401

        md.enable("linkify")
        md.options["linkify"] = True
    except ImportError:  # pragma: no cover - depends on the installed extras
        pass
    return md


def _links(md: MarkdownIt, text: str) -> set[str]:
    return {str(t.attrs["href"]) for t in _walk(md.parse(text)) if t.type == "link_open"}


@pytest.mark.parametrize("token", [False, True], ids=["rest", "graphql"])
def test_hostile_api_text_comes_out_of_the_markdown_inert(
        hostile_world: tuple[Path, Path, str], github_server: FakeGitHub, token: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log, cfg, text = hostile_world
    if token:
        github_server.tokens[TOKEN] = "someone"
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    doc = load_json(log.with_name("hostile.enriched.json"))
    jsonschema.validate(doc, load_schema())
    assert {p["status"] for p in doc["papers"].values()} == {"ok"}
    assert {r["status"] for r in doc["repos"].values()} >= {"ok"}
    markdown = log.with_name("hostile.enriched.md").read_text(encoding="utf-8")

    # the structure holds: original lines intact, one block per annotated list item (its
    # lines indented into the item), plus the summary, every block closed by our own end
    # marker and nothing else
    assert strip_blocks(markdown) == text
    lines = [line.removeprefix("  ") for line in markdown.split("\n")]
    annotated = sum(1 for line in text.split("\n") if "arxiv.org" in line or "github" in line)
    assert lines.count(BLOCK_START) == lines.count(BLOCK_END) == annotated + 1
    for line in lines:
        assert len(line) < 3000  # very long strings are cut
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200b"
                       for ch in line), repr(line[:200])

    md = _renderer()
    tokens = list(_walk(md.parse(markdown)))
    original = list(_walk(md.parse(text)))
    # no raw HTML but our markers
    for tok in tokens:
        if tok.type in ("html_block", "html_inline"):
            assert tok.content.strip() in (BLOCK_START, BLOCK_END), tok.content[:200]
    # no image, code, heading, emphasis or strikethrough beyond the original's and ours
    kinds = [t.type for t in tokens]
    assert "image" not in kinds
    for kind in ("code_inline", "code_block", "fence", "em_open", "s_open", "heading_open",
                 "hr", "ordered_list_open", "blockquote_open"):
        ours = annotated if kind == "blockquote_open" else 0  # each line block is one quote
        assert kinds.count(kind) == [t.type for t in original].count(kind) + ours, kind
    # one list item per original item, per record in a block
    bullets = sum(1 for line in lines if line.startswith("> - "))
    assert bullets == 2 * (annotated - 1) + 1 + 0  # a paper and a repo per line, one rename
    assert kinds.count("list_item_open") == [t.type for t in original].count(
        "list_item_open") + bullets
    assert kinds.count("strong_open") == 1  # the summary caption
    # every link is one we built (arxiv.org/abs/ID, github.com/OWNER/REPO) or the log's own
    allowed = _links(md, text)
    allowed |= {f"https://arxiv.org/abs/{pid}" for pid in doc["papers"]}
    allowed |= {f"https://github.com/{r['full_name']}" for r in doc["repos"].values()
                if r.get("full_name")}
    allowed |= {f"https://github.com/{key}" for key in doc["repos"]}
    hrefs = [str(t.attrs["href"]) for t in tokens if t.type == "link_open"]
    assert hrefs and set(hrefs) <= allowed, set(hrefs) - allowed
    assert not any(EVIL in h or "javascript" in h for h in hrefs)
    # the summary table keeps its five columns whatever the cells held
    for tok in tokens:
        if tok.type == "tr_open":
            assert tok.map is not None
    rows = [line for line in lines if line.startswith("|")]
    assert rows and {len(re.findall(r"(?<!\\)\|", row)) for row in rows} == {6}
    # the hostile text is there, as text
    assert "&lt;script&gt;" in markdown and "\\[click me\\]" in markdown
    html = md.render(markdown)
    for bad in ("<script", "<img", f'href="https://{EVIL}', "<a href='", "<!-- /enrich --><"):
        assert bad not in html, bad


# -- the extractor, fuzzed -------------------------------------------------------------------

_NEW_ID = re.compile(r"(\d\d)(\d\d)\.(\d{4,5})")
_OLD_ID = re.compile(r"([a-z]+(?:-[a-z]+)?)/(\d\d)(\d\d)(\d{3})")
_OWNER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}")
_REPO = re.compile(r"[a-z0-9._-]+")
#: Spec section 2's "reserved first segments" (the spec's list ends with "...").
_RESERVED = {"orgs", "topics", "sponsors", "features", "marketplace", "settings", "apps",
             "login", "about", "pricing", "collections", "trending", "explore",
             "notifications", "search", "site", "security", "enterprise", "customer-stories",
             "readme", "team", "events", "pulls", "issues", "codespaces", "new",
             "user-attachments"}


def valid_arxiv_id(value: str) -> bool:
    """Spec section 2: ``YYMM.NNNN`` 0704-1412, ``YYMM.NNNNN`` from 1501, MM 01-12; or
    ``archive/YYMMNNN`` without subject class or version."""
    m = _NEW_ID.fullmatch(value)
    if m:
        yymm, digits = int(m.group(1) + m.group(2)), len(m.group(3))
        if not 1 <= int(m.group(2)) <= 12:
            return False
        return (704 <= yymm <= 1412) if digits == 4 else yymm >= 1501
    m = _OLD_ID.fullmatch(value)
    return m is not None and 1 <= int(m.group(3)) <= 12


def valid_repo_key(value: str) -> bool:
    """Spec section 2: lower-case ``owner/repo``; owner of letters, digits and single inner
    hyphens, at most 39; repo ``[a-z0-9._-]+``, not ``.``/``..``, no trailing ``.`` (one
    trailing ``.git`` of the URL is dropped, so ``r.git.git`` leaves ``r.git``); not a
    reserved first segment."""
    owner, sep, repo = value.partition("/")
    return bool(sep and _OWNER.fullmatch(owner) and _REPO.fullmatch(repo)
                and repo not in (".", "..") and not repo.endswith(".")
                and owner not in _RESERVED)


def check_links(text: str) -> None:
    for lk in extract(text):
        assert lk.text == text[lk.start:lk.end]
        # lines end as in CommonMark (and the markdown writer): \r\n, \n or a lone \r
        before = _BREAK.split(text[:lk.start])
        assert lk.line == len(before)
        assert lk.column == len(before[-1]) + 1
        if lk.kind == "arxiv":
            assert valid_arxiv_id(lk.id), (lk.id, lk.text)
            assert lk.version is None or re.fullmatch(r"v\d+", lk.version), lk.version
        else:
            assert valid_repo_key(lk.id), (lk.id, lk.text)
            if len(lk.id.partition("/")[2]) > 100:
                continue  # longer than GitHub allows: not_found without a request (below)
            owner, repo = split_key(lk.id)  # the fetcher accepts every other key
            # ... as a path segment pair needing no escape: /repos/OWNER/REPO as it stands
            # (the requests themselves: test_paths_built_to_climb_out_never_reach_the_api)
            path = f"/repos/{owner}/{repo}"
            assert re.fullmatch(r"/repos/[a-z0-9-]+/[a-z0-9._-]+", path), path
            assert repo not in (".", ".."), path


_BREAK = re.compile(r"\r\n|\n|\r")

FRAGMENTS = [
    "https://", "http://", "www.", "github.com/", "GitHub.com/", "gist.github.com/",
    "arxiv.org/abs/", "arxiv.org/pdf/", "export.arxiv.org/abs/", "ar5iv.labs.arxiv.org/html/",
    "ar5iv.org/abs/", "alphaxiv.org/abs/", "huggingface.co/papers/", "arXiv:", "arXiv ",
    "10.48550/arXiv.", "doi:", ".github.io", "img.shields.io/github/stars/",
    "2305.09781", "0704.0001", "1412.9999", "1501.00001", "2023.10", "0703.1234", "9912.12345",
    "hep-th/9901001", "math.GT/0309136", "cond-mat/0012345", "foo-bar/0101001", "v2", "v",
    ".pdf", "/", "//", "../", "..", ".", "%2F", "%2f", "%2e%2e", "%00", ".git", "#readme",
    "?tab=1", "/tree/main", "/blob/x", "/assets/1", "user-attachments", "orgs", "topics",
    "owner", "Repo_Name", "a-b", "-", "--", "_", "a" * 40, "x" * 39, "0", "９", "Ａ", "：",
    "，", "。", "）", "】", "(", ")", "[", "]", "<", ">", '"', "'", "\\", "\\\n", "\n",
    "\r\n", " ", "\t", "\u3000", "\u202e", "\u200b", "\x00", "é", "中文", "📄", "`", "*",
]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40))
def test_extractor_on_random_mixes_of_url_fragments(parts: list[str]) -> None:
    check_links("".join(parts))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["utf-8", "latin-1", "utf-16-le", "gb18030"]))
def test_extractor_on_random_bytes(raw: bytes, encoding: str) -> None:
    check_links(raw.decode(encoding, errors="replace"))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_extractor_on_random_unicode(text: str) -> None:
    check_links(text)


# -- paths that try to climb out of /repos/{owner}/{repo} ---------------------------------------

CLIMBERS = [
    "github.com/../../x",
    "github.com/../../../../etc/passwd",
    "https://github.com/a/b%2F..",
    "https://github.com/a/b%2F..%2F..%2Fusers",
    "https://github.com/a/%2e%2e",
    "https://github.com/%2e%2e/x",
    "github.com/a/..",
    "github.com/a/.",
    "github.com/a/b/../../../rate_limit",
    "github.com/a/b/..%2f..%2fgraphql",
    "https://github.com/a/b?x=/../../orgs",
    "https://github.com/a/b#/../../x",
    "github.com/..%252f..%252fx/y",
    "github.com/a%00/b",
    "github.com/a\\..\\b/c",
    "github.com/legit-owner/legit.repo",
]


@pytest.mark.parametrize("with_token", [False, True], ids=["rest", "graphql"])
def test_paths_built_to_climb_out_never_reach_the_api(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub, with_token: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    github_server.add_repo("legit-owner/legit.repo")
    github_server.add_repo("a/b")
    if with_token:
        github_server.tokens[TOKEN] = "someone"
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    log = tmp_path / "climb.txt"
    log.write_text("\n".join(f"{n}: {u}" for n, u in enumerate(CLIMBERS)) + "\n",
                   encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code in (0, 1) and "Traceback" not in err
    doc = load_json(log.with_name("climb.enriched.json"))
    assert all(valid_repo_key(k) for k in doc["repos"])
    assert doc["repos"]["legit-owner/legit.repo"]["status"] == "ok"
    assert github_server.requests
    for req in github_server.requests:
        if req.endpoint == "graphql":
            variables = json.loads(req.body)["variables"]
            for name, value in variables.items():
                pattern = _OWNER if name.startswith("o") else _REPO
                assert pattern.fullmatch(value.lower()), (name, value)
                assert value not in (".", "..")
            continue
        path = unquote(unquote(req.path))
        assert re.fullmatch(r"/repos/[A-Za-z0-9-]+/[A-Za-z0-9._-]+", path), req.path
        assert path.split("/")[-1] not in (".", ".."), req.path


def test_a_repository_name_longer_than_github_allows_is_no_link_and_costs_no_request(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    """Found by atheris: the spec's grammar has no length limit, GitHub's names stop at 100.
    Such a key must not fail (exit 1) every night: no such repository can exist, so the
    extractor does not report it (and the fetcher would call it not_found unasked)."""
    long_name = "cond-mat/00123451412." + "9999" * 30
    log = tmp_path / "long.txt"
    log.write_text(f"see https://github.com/{long_name} and github.com/a/b\n", encoding="utf-8")
    github_server.add_repo("a/b")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    doc = load_json(log.with_name("long.enriched.json"))
    assert list(doc["repos"]) == ["a/b"]
    assert [lk["id"] for lk in doc["links"]] == ["a/b"]
    assert [r.path for r in github_server.requests] == ["/repos/a/b"]
