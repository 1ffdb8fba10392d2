"""Property tests: ids embedded in random Chinese text and punctuation come
back unchanged and at the right place; text without link markers gives
nothing; nothing ever raises."""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from enrich.extract import GITHUB_RESERVED, OLD_ARCHIVES, extract, find_pages_links
from enrich.models import Link

SETTINGS = settings(
    max_examples=int(os.environ.get("EXTRACT_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
FULLWIDTH = st.sampled_from(list("：，。）（】【、；！？「」《》　"))
ASCII_PUNCT = st.sampled_from(list(" ,;:!?()[]<>\"'`*|\\-_=+#&%~\t"))
FILLER = st.text(st.one_of(CJK, FULLWIDTH, ASCII_PUNCT, st.just("\n")), max_size=40)

#: What may stand right before a link (never a letter, digit, dot or slash).
BEFORE = st.sampled_from(
    ["", " ", "：", "，", "（", "【", "、", "「", "(", "<", "[", "\n", "\t", "*"]
)
#: What may stand right after a link without becoming part of it.
AFTER = st.sampled_from(
    ["", " ", "，", "。", "）", "】", "、", "」", "\n", " \\", "\\", ">", ". ", ", ", "! ", "**"]
)


#: Characters a URL may continue with: filler glued right after a URL link
#: legitimately becomes part of it, so the tests keep it from doing so.
URL_CHARS = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#@!$&()*+,;=%"
)
#: Characters that, right before a host or marker, make it part of something else.
BLOCKERS = set("._-/=%&?#+~")


def _separated(head: str, after: str, right: str) -> bool:
    """Whether the link will stand on its own between ``head`` and the tail:
    nothing glues it to a preceding name, and no URL character follows it
    once sentence punctuation is set aside."""
    rest = (after + right).lstrip(".,:;!?*~(")
    return (not head or head[-1] not in BLOCKERS) and (not rest or rest[0] not in URL_CHARS)


# ------------------------------------------------------------------ id shapes


@st.composite
def new_style_ids(draw: st.DrawFn) -> str:
    yy = draw(st.integers(7, 99))
    mm = draw(st.integers(1, 12))
    if yy == 7:
        mm = draw(st.integers(4, 12))
    digits = 4 if yy * 100 + mm <= 1412 else 5
    num = draw(st.integers(0, 10**digits - 1))
    return f"{yy:02d}{mm:02d}.{num:0{digits}d}"


@st.composite
def old_style_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(as written, canonical): a subject class may be written, never kept."""
    archive = draw(st.sampled_from(sorted(OLD_ARCHIVES)))
    yy = draw(st.sampled_from([91, 95, 99, 0, 3, 7]))
    mm = draw(st.integers(1, 12))
    num = draw(st.integers(0, 999))
    canonical = f"{archive}/{yy:02d}{mm:02d}{num:03d}"
    subject = draw(st.sampled_from(["", ".GT", ".CO", ".mes-hall", ".AI"]))
    return f"{archive}{subject}/{yy:02d}{mm:02d}{num:03d}", canonical


@st.composite
def arxiv_links(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(the link as written, canonical id, version)."""
    if draw(st.booleans()):
        written = canonical = draw(new_style_ids())
    else:
        written, canonical = draw(old_style_ids())
    version = draw(st.sampled_from([None, "v1", "v2", "v12"]))
    ident = written + (version or "")
    form = draw(
        st.sampled_from(
            [
                "https://arxiv.org/abs/{}",
                "http://arxiv.org/abs/{}",
                "arxiv.org/abs/{}",
                "https://arxiv.org/pdf/{}",
                "https://arxiv.org/pdf/{}.pdf",
                "https://arxiv.org/html/{}",
                "https://www.arxiv.org/abs/{}",
                "https://export.arxiv.org/abs/{}",
                "https://ar5iv.org/abs/{}",
                "https://ar5iv.labs.arxiv.org/html/{}",
                "https://alphaxiv.org/abs/{}",
                "https://huggingface.co/papers/{}",
                "arXiv:{}",
                "arxiv:{}",
                "ARXIV {}",
                "arXiv: {}",
                "arXiv：{}",
                "https://doi.org/10.48550/arXiv.{}",
                "10.48550/arXiv.{}",
            ]
        )
    )
    return form.format(ident), canonical, version


OWNER = st.from_regex(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}", fullmatch=True).filter(
    lambda o: len(o) <= 39 and o.lower() not in GITHUB_RESERVED
)
REPO = st.from_regex(r"[A-Za-z0-9._-]{0,30}[A-Za-z0-9_-]", fullmatch=True).filter(
    lambda r: not r.lower().endswith(".git") and r not in (".", "..")
)


@st.composite
def github_links(draw: st.DrawFn) -> tuple[str, str]:
    """(the link as written, canonical key)."""
    owner, repo = draw(OWNER), draw(REPO)
    prefix = draw(
        st.sampled_from(["https://", "http://", "https://www.", "www.", "", "//", "HTTPS://"])
    )
    host = draw(st.sampled_from(["github.com", "GitHub.com", "GITHUB.COM"]))
    suffix = draw(
        st.sampled_from(["", "/", ".git", "/tree/main", "/blob/dev/a.md", "#readme", "?tab=x"])
    )
    return f"{prefix}{host}/{owner}/{repo}{suffix}", f"{owner}/{repo}".lower()


# ------------------------------------------------------------------ properties


def _place(text: str, start: int) -> tuple[int, int]:
    line = text.count("\n", 0, start) + 1
    return line, start - (text.rfind("\n", 0, start) + 1) + 1


@SETTINGS
@given(FILLER, BEFORE, arxiv_links(), AFTER, FILLER)
def test_arxiv_id_in_random_chinese_text_comes_back_in_place(
    left: str, before: str, link: tuple[str, str, str | None], after: str, right: str
) -> None:
    written, canonical, version = link
    head = left + before
    assume(_separated(head, after, right))
    text = head + written + after + right
    found = [k for k in extract(text) if k.start == len(head)]
    assert len(found) == 1, (text, extract(text))
    (got,) = found
    assert (got.kind, got.id, got.version) == ("arxiv", canonical, version)
    assert got.text == written
    assert (got.start, got.end) == (len(head), len(head) + len(written))
    assert (got.line, got.column) == _place(text, got.start)


@SETTINGS
@given(FILLER, BEFORE, github_links(), AFTER, FILLER)
def test_github_key_in_random_chinese_text_comes_back_in_place(
    left: str, before: str, link: tuple[str, str], after: str, right: str
) -> None:
    written, key = link
    head = left + before
    assume(_separated(head, after, right))
    text = head + written + after + right
    links = extract(text)
    assert [k.id for k in links] == [key], (text, links)
    (got,) = links
    assert got.kind == "github"
    assert got.start == len(head)
    assert got.text == written  # scheme, "www." and suffix kept; punctuation dropped
    assert (got.line, got.column) == _place(text, got.start)


MARKERS = re.compile(r"arxiv|ar5iv|alphaxiv|github|huggingface|10\.48550", re.IGNORECASE)
ANY_TEXT = st.lists(
    st.one_of(
        CJK,
        FULLWIDTH,
        ASCII_PUNCT,
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from(["\n", "\r", "/", ".", "2305.09781", "v2", ".com/", "arxi", "hub"]),
    ),
    max_size=120,
).map("".join)


@SETTINGS
@given(ANY_TEXT)
def test_text_without_link_markers_gives_nothing(text: str) -> None:
    assume(MARKERS.search(text) is None)
    assert extract(text) == []
    assert find_pages_links(text) == []


PIECES = st.sampled_from(
    [
        "arxiv", "arXiv:", "ARXIV ", "arxiv.org/", "abs/", "pdf/", "2305.09781", "v2", ".pdf",
        "hep-th/", "9901001", "math.GT/", "10.48550/", "doi.org/", "github.com/", "github.com:",
        "git@", "github.io", ".github.io/", "www.", "https://", "//", "a", "b-c", "/", ".",
        "..", ".git", "assets/", "user-attachments/", "topics/", "huggingface.co/papers/",
        "ar5iv.org/abs/", "alphaxiv.org/abs/", "(", ")", "[", "]", "<", ">", "：", "，", "。",
        "）", " ", "\n", "\r\n", "\r", "\\", "中文", "😀", "\u0130", "\u212a", "\ud800",
    ]
)  # fmt: skip


def _check_invariants(text: str, links: list[Link]) -> None:
    previous_end = 0
    for link in links:
        assert text[link.start : link.end] == link.text
        assert link.start >= previous_end
        previous_end = link.end
        assert link.kind in ("arxiv", "github")
        assert link.id == link.id.strip() and link.id
        if link.kind == "github":
            assert link.id == link.id.lower()
            owner, _, repo = link.id.partition("/")
            assert owner and repo and repo not in (".", "..")
        lines = re.split(r"\r\n|\r|\n", text)
        line = lines[link.line - 1]
        assert line[link.column - 1 : link.column - 1 + len(link.text)] == link.text


@SETTINGS
@given(st.lists(PIECES, max_size=40).map("".join))
def test_extract_never_raises_and_keeps_its_invariants_on_link_like_noise(text: str) -> None:
    _check_invariants(text, extract(text))
    _check_invariants(text, find_pages_links(text))


@SETTINGS
@given(st.text(st.characters(blacklist_categories=()), max_size=300))
def test_extract_never_raises_on_any_string(text: str) -> None:
    _check_invariants(text, extract(text))
    _check_invariants(text, find_pages_links(text))


@SETTINGS
@given(st.lists(st.one_of(PIECES, FILLER), max_size=30).map("".join))
def test_crlf_gives_the_same_links_lines_and_columns_as_lf(text: str) -> None:
    assume("\r" not in text)
    lf = [(k.kind, k.id, k.version, k.text, k.line, k.column) for k in extract(text)]
    crlf = [
        (k.kind, k.id, k.version, k.text, k.line, k.column)
        for k in extract(text.replace("\n", "\r\n"))
    ]
    assert crlf == lf
