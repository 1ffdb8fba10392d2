"""The extractor against every form and exclusion of spec section 2.

Fixtures are our own writing; the arXiv ids and repository names in them are
real ones used as facts.
"""

from __future__ import annotations

import copy
import json
import pickle
import time
from pathlib import Path

import pytest

from enrich.extract import (
    GITHUB_RESERVED,
    OLD_ARCHIVES,
    canonical_arxiv_id,
    extract,
    find_pages_links,
)
from enrich.models import Link

Expected = tuple[str, str, "str | None", str]  # kind, id, version, text as written


def found(text: str) -> list[tuple[str, str, str | None, str]]:
    """(kind, id, version, text) of every link, after checking the offsets."""
    links = extract(text)
    for link in links:
        assert text[link.start : link.end] == link.text
    return [(link.kind, link.id, link.version, link.text) for link in links]


# ----------------------------------------------------------------- arXiv forms

ARXIV_FORMS: list[tuple[str, list[Expected]]] = [
    ("https://arxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "https://arxiv.org/abs/2305.09781")]),
    ("http://arxiv.org/abs/2305.09781v2",
     [("arxiv", "2305.09781", "v2", "http://arxiv.org/abs/2305.09781v2")]),
    ("arxiv.org/abs/2305.09781", [("arxiv", "2305.09781", None, "arxiv.org/abs/2305.09781")]),
    ("//arxiv.org/abs/2305.09781", [("arxiv", "2305.09781", None, "//arxiv.org/abs/2305.09781")]),
    ("https://arxiv.org/pdf/2305.09781",
     [("arxiv", "2305.09781", None, "https://arxiv.org/pdf/2305.09781")]),
    ("https://arxiv.org/pdf/2305.17306.pdf",
     [("arxiv", "2305.17306", None, "https://arxiv.org/pdf/2305.17306.pdf")]),
    ("https://arxiv.org/pdf/2305.17306v3.pdf",
     [("arxiv", "2305.17306", "v3", "https://arxiv.org/pdf/2305.17306v3.pdf")]),
    ("https://arxiv.org/html/2402.01234v1",
     [("arxiv", "2402.01234", "v1", "https://arxiv.org/html/2402.01234v1")]),
    ("https://arxiv.org/html/2402.01234v1/#S3.SS2",
     [("arxiv", "2402.01234", "v1", "https://arxiv.org/html/2402.01234v1/#S3.SS2")]),
    ("https://www.arxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "https://www.arxiv.org/abs/2305.09781")]),
    ("https://export.arxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "https://export.arxiv.org/abs/2305.09781")]),
    ("browse.arxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "browse.arxiv.org/abs/2305.09781")]),
    ("http://cn.arxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "http://cn.arxiv.org/abs/2305.09781")]),
    ("HTTPS://ARXIV.ORG/ABS/2305.09781V2",
     [("arxiv", "2305.09781", "v2", "HTTPS://ARXIV.ORG/ABS/2305.09781V2")]),
    ("https://arxiv.org/abs/2305.09781?context=cs",
     [("arxiv", "2305.09781", None, "https://arxiv.org/abs/2305.09781?context=cs")]),
    ("https://ar5iv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "https://ar5iv.org/abs/2305.09781")]),
    ("https://ar5iv.labs.arxiv.org/html/2305.09781",
     [("arxiv", "2305.09781", None, "https://ar5iv.labs.arxiv.org/html/2305.09781")]),
    ("https://www.alphaxiv.org/abs/2305.09781",
     [("arxiv", "2305.09781", None, "https://www.alphaxiv.org/abs/2305.09781")]),
    ("alphaxiv.org/abs/2305.09781v2",
     [("arxiv", "2305.09781", "v2", "alphaxiv.org/abs/2305.09781v2")]),
    ("https://huggingface.co/papers/2305.09781",
     [("arxiv", "2305.09781", None, "https://huggingface.co/papers/2305.09781")]),
    ("arXiv:2305.09781", [("arxiv", "2305.09781", None, "arXiv:2305.09781")]),
    ("arxiv:2305.09781v1", [("arxiv", "2305.09781", "v1", "arxiv:2305.09781v1")]),
    ("ARXIV 2305.09781", [("arxiv", "2305.09781", None, "ARXIV 2305.09781")]),
    ("arXiv: 2305.09781", [("arxiv", "2305.09781", None, "arXiv: 2305.09781")]),
    ("arXiv：2305.09781", [("arxiv", "2305.09781", None, "arXiv：2305.09781")]),
    ("arXiv\u00a02305.09781", [("arxiv", "2305.09781", None, "arXiv\u00a02305.09781")]),
    ("arXiv:2305.09781V2", [("arxiv", "2305.09781", "v2", "arXiv:2305.09781V2")]),
    ("arXiv preprint arXiv:2305.14201 (2023)",
     [("arxiv", "2305.14201", None, "arXiv:2305.14201")]),
    ("arXiv:0706.0001v1 [q-bio.CB]", [("arxiv", "0706.0001", "v1", "arXiv:0706.0001v1")]),
    ("10.48550/arXiv.2305.09781",
     [("arxiv", "2305.09781", None, "10.48550/arXiv.2305.09781")]),
    ("https://doi.org/10.48550/arXiv.2305.09781",
     [("arxiv", "2305.09781", None, "https://doi.org/10.48550/arXiv.2305.09781")]),
    ("https://dx.doi.org/10.48550/ARXIV.2305.09781",
     [("arxiv", "2305.09781", None, "https://dx.doi.org/10.48550/ARXIV.2305.09781")]),
    ("doi:10.48550/arXiv.2305.09781",
     [("arxiv", "2305.09781", None, "doi:10.48550/arXiv.2305.09781")]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ARXIV_FORMS, ids=[t for t, _ in ARXIV_FORMS])
def test_extract_every_arxiv_form(text: str, expected: list[Expected]) -> None:
    assert found(text) == expected


NEW_STYLE_DATES: list[tuple[str, str | None]] = [
    ("0704.0001", "0704.0001"),  # the first new-style id
    ("0812.3456", "0812.3456"),
    ("1412.9999", "1412.9999"),  # the last 4-digit month
    ("1501.00001", "1501.00001"),  # the first 5-digit month
    ("2512.12345", "2512.12345"),
    ("0703.1234", None),  # before the new scheme
    ("0612.1234", None),
    ("2313.12345", None),  # month 13
    ("2300.12345", None),  # month 00
    ("1501.0001", None),  # 4 digits after 1412
    ("1412.12345", None),  # 5 digits before 1501
    ("2305.097812", None),  # 6 digits
    ("2305.0978", None),
]


@pytest.mark.parametrize(("written", "canonical"), NEW_STYLE_DATES)
def test_extract_new_style_id_obeys_date_rules(written: str, canonical: str | None) -> None:
    for text in (f"arXiv:{written}", f"https://arxiv.org/abs/{written}"):
        ids = [link.id for link in extract(text)]
        assert ids == ([canonical] if canonical else []), text


OLD_STYLE: list[tuple[str, str, str | None]] = [
    ("arXiv:hep-th/9901001", "hep-th/9901001", None),
    ("arXiv:quant-ph/0112019v2", "quant-ph/0112019", "v2"),
    ("https://arxiv.org/abs/math.GT/0309136", "math/0309136", None),
    ("https://arxiv.org/abs/math/0309136", "math/0309136", None),
    ("arxiv.org/abs/cond-mat.mes-hall/0101001v3", "cond-mat/0101001", "v3"),
    ("https://arxiv.org/pdf/astro-ph/0703001v1.pdf", "astro-ph/0703001", "v1"),
    ("arXiv:cs.AI/0101001", "cs/0101001", None),
    ("arXiv:chao-dyn/9301001", "chao-dyn/9301001", None),
    ("arXiv:solv-int/9901001", "solv-int/9901001", None),
    ("ARXIV:HEP-PH/9510424", "hep-ph/9510424", None),
    ("https://ar5iv.org/abs/hep-th/9711200", "hep-th/9711200", None),
]


@pytest.mark.parametrize(("text", "ident", "version"), OLD_STYLE)
def test_extract_old_style_arxiv_id_drops_subject_class(
    text: str, ident: str, version: str | None
) -> None:
    (link,) = extract(text)
    assert (link.kind, link.id, link.version, link.text) == ("arxiv", ident, version, text)


def test_extract_old_style_archives_are_kept_as_data() -> None:
    for archive in ("hep-th", "hep-ph", "hep-ex", "hep-lat", "gr-qc", "astro-ph", "cond-mat",
                    "quant-ph", "math", "math-ph", "nucl-th", "nucl-ex", "physics", "nlin", "cs",
                    "q-bio", "q-fin", "stat", "econ", "eess", "chao-dyn", "solv-int", "patt-sol",
                    "adap-org", "comp-gas", "alg-geom", "dg-ga", "funct-an", "q-alg", "cmp-lg",
                    "mtrl-th", "supr-con", "chem-ph", "atom-ph", "bayes-an", "plasm-ph",
                    "acc-phys", "ao-sci"):  # fmt: skip
        assert archive in OLD_ARCHIVES
        assert [link.id for link in extract(f"arXiv:{archive}/9912001")] == [f"{archive}/9912001"]


def test_extract_archive_prefixed_new_style_id_keeps_only_the_new_id() -> None:
    # "arXiv:hep-th/1601.07616" appears in real papers: the archive is noise.
    (link,) = extract("see arXiv:hep-th/1601.07616v2 and more")
    assert (link.id, link.version, link.text) == ("1601.07616", "v2", "arXiv:hep-th/1601.07616v2")


ARXIV_NON_LINKS = [
    "2305.09781",  # a bare number
    "version 2305.09781v2 of the model",
    "arXiv 2023.10",  # a year and a month
    "arXiv 2023",
    "arXiv:foo-th/9901001",  # not an archive
    "arXiv:hep-th/9913001",  # month 13
    "arXiv:hep-th/990100",  # 6 digits
    "myarxiv 2305.09781",
    "arXiv论文2305.09781",  # a word between marker and number
    "arXiv\n2305.09781",  # marker and number on different lines
    "arXiv::2305.09781",
    "notarxiv.org/abs/2305.09781",
    "https://example.com/arxiv.org/abs/2305.09781",  # a path segment of another URL
    "https://arxiv.org/list/cs.CL/recent",
    "https://arxiv.org/abs/",
    "https://img.shields.io/badge/arXiv-2305.09781-b31b1b.svg",
    "https://img.shields.io/badge/arXiv:2305.09781-red",
    "https://huggingface.co/spaces/someone/demo",
    "https://huggingface.co/papers",
    "https://ar5iv.org/abs/2305",
    "10.48550/arXiv.2305",
    "10.48550/zenodo.2305.09781",
    "110.48550/arXiv.2305.09781",
]


@pytest.mark.parametrize("text", ARXIV_NON_LINKS)
def test_extract_arxiv_non_links_give_nothing(text: str) -> None:
    assert extract(text) == []


# ---------------------------------------------------------------- GitHub forms

GITHUB_FORMS: list[tuple[str, list[Expected]]] = [
    ("https://github.com/flexflow/FlexFlow",
     [("github", "flexflow/flexflow", None, "https://github.com/flexflow/FlexFlow")]),
    ("https://github.com/flexflow/FlexFlow/tree/inference",
     [("github", "flexflow/flexflow", None,
       "https://github.com/flexflow/FlexFlow/tree/inference")]),
    ("github.com/XiaoxinHe/Awesome-Graph-LLM",
     [("github", "xiaoxinhe/awesome-graph-llm", None, "github.com/XiaoxinHe/Awesome-Graph-LLM")]),
    ("www.github.com/hiyouga/LLaMA-Factory",
     [("github", "hiyouga/llama-factory", None, "www.github.com/hiyouga/LLaMA-Factory")]),
    ("http://www.github.com/hiyouga/LLaMA-Factory",
     [("github", "hiyouga/llama-factory", None, "http://www.github.com/hiyouga/LLaMA-Factory")]),
    ("HTTPS://GITHUB.COM/Vahe1994/SpQR",
     [("github", "vahe1994/spqr", None, "HTTPS://GITHUB.COM/Vahe1994/SpQR")]),
    ("https://github.com/salesforce/UniControl.git",
     [("github", "salesforce/unicontrol", None, "https://github.com/salesforce/UniControl.git")]),
    ("git clone git@github.com:salesforce/UniControl.git",
     [("github", "salesforce/unicontrol", None, "git@github.com:salesforce/UniControl.git")]),
    ("https://github.com/kaistAI/SelFee#readme",
     [("github", "kaistai/selfee", None, "https://github.com/kaistAI/SelFee#readme")]),
    ("https://github.com/kaistAI/SelFee?tab=readme-ov-file",
     [("github", "kaistai/selfee", None, "https://github.com/kaistAI/SelFee?tab=readme-ov-file")]),
    ("https://github.com/kaistAI/SelFee/blob/main/README.md",
     [("github", "kaistai/selfee", None, "https://github.com/kaistAI/SelFee/blob/main/README.md")]),
    ("https://github.com/kaistAI/SelFee/issues/12",
     [("github", "kaistai/selfee", None, "https://github.com/kaistAI/SelFee/issues/12")]),
    ("https://github.com/kaistAI/SelFee/releases/download/v1/model.bin",
     [("github", "kaistai/selfee", None,
       "https://github.com/kaistAI/SelFee/releases/download/v1/model.bin")]),
    ("github.com/mrdoob/three.js",
     [("github", "mrdoob/three.js", None, "github.com/mrdoob/three.js")]),
    ("github.com/a-b-c/x_y-z.1", [("github", "a-b-c/x_y-z.1", None, "github.com/a-b-c/x_y-z.1")]),
    ("github.com/octo/.github", [("github", "octo/.github", None, "github.com/octo/.github")]),
    ("github.com/octo/...x", [("github", "octo/...x", None, "github.com/octo/...x")]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GITHUB_FORMS, ids=[t for t, _ in GITHUB_FORMS])
def test_extract_every_github_form(text: str, expected: list[Expected]) -> None:
    assert found(text) == expected


PUNCTUATION: list[tuple[str, str]] = [
    # (text, the link as it must be written) for owner/repo "yxuansu/PandaGPT"
    ("代码：https://github.com/yxuansu/PandaGPT", "https://github.com/yxuansu/PandaGPT"),
    ("地址：github.com/yxuansu/PandaGPT，欢迎 star", "github.com/yxuansu/PandaGPT"),
    ("地址github.com/yxuansu/PandaGPT", "github.com/yxuansu/PandaGPT"),
    ("（github.com/yxuansu/PandaGPT）", "github.com/yxuansu/PandaGPT"),
    ("【https://github.com/yxuansu/PandaGPT】", "https://github.com/yxuansu/PandaGPT"),
    ("见https://github.com/yxuansu/PandaGPT。", "https://github.com/yxuansu/PandaGPT"),
    ("https://github.com/yxuansu/PandaGPT、https://x.org", "https://github.com/yxuansu/PandaGPT"),
    ("「github.com/yxuansu/PandaGPT」", "github.com/yxuansu/PandaGPT"),
    ("代码: https://github.com/yxuansu/PandaGPT \\", "https://github.com/yxuansu/PandaGPT"),
    ("代码: https://github.com/yxuansu/PandaGPT\\", "https://github.com/yxuansu/PandaGPT"),
    ("(github.com/yxuansu/PandaGPT)", "github.com/yxuansu/PandaGPT"),
    ("(see https://github.com/yxuansu/PandaGPT).", "https://github.com/yxuansu/PandaGPT"),
    ("[PandaGPT](https://github.com/yxuansu/PandaGPT)", "https://github.com/yxuansu/PandaGPT"),
    ('[代码](https://github.com/yxuansu/PandaGPT "title")', "https://github.com/yxuansu/PandaGPT"),
    ("<https://github.com/yxuansu/PandaGPT>", "https://github.com/yxuansu/PandaGPT"),
    ('"https://github.com/yxuansu/PandaGPT"', "https://github.com/yxuansu/PandaGPT"),
    ("'https://github.com/yxuansu/PandaGPT'", "https://github.com/yxuansu/PandaGPT"),
    ("`https://github.com/yxuansu/PandaGPT`", "https://github.com/yxuansu/PandaGPT"),
    ("**https://github.com/yxuansu/PandaGPT**", "https://github.com/yxuansu/PandaGPT"),
    ("| github.com/yxuansu/PandaGPT | 多模态 |", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT.", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT...", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT, 以及", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT; 以及", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT! 以及", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT?", "github.com/yxuansu/PandaGPT"),
    ("见 github.com/yxuansu/PandaGPT:", "github.com/yxuansu/PandaGPT"),
    ("• https://github.com/yxuansu/PandaGPT \\", "https://github.com/yxuansu/PandaGPT"),
]


@pytest.mark.parametrize(("text", "written"), PUNCTUATION, ids=[t for t, _ in PUNCTUATION])
def test_extract_punctuation_never_leaks_into_a_github_link(text: str, written: str) -> None:
    assert found(text) == [("github", "yxuansu/pandagpt", None, written)]


ARXIV_PUNCTUATION = [
    ("论文链接：https://arxiv.org/abs/2305.09781 \\", "https://arxiv.org/abs/2305.09781"),
    ("论文链接：https://arxiv.org/abs/2305.09781\\", "https://arxiv.org/abs/2305.09781"),
    ("（arXiv:2305.09781）", "arXiv:2305.09781"),
    ("见arXiv:2305.09781。", "arXiv:2305.09781"),
    ("[论文](https://arxiv.org/abs/2305.09781)", "https://arxiv.org/abs/2305.09781"),
    ("<https://arxiv.org/pdf/2305.09781.pdf>", "https://arxiv.org/pdf/2305.09781.pdf"),
    ("(https://arxiv.org/pdf/2305.09781.pdf).", "https://arxiv.org/pdf/2305.09781.pdf"),
    ("论文：https://arxiv.org/abs/2305.09781，代码", "https://arxiv.org/abs/2305.09781"),
    ("https://arxiv.org/abs/2305.09781.", "https://arxiv.org/abs/2305.09781"),
    ("**arXiv:2305.09781**", "arXiv:2305.09781"),
]


@pytest.mark.parametrize(("text", "written"), ARXIV_PUNCTUATION)
def test_extract_punctuation_never_leaks_into_an_arxiv_link(text: str, written: str) -> None:
    assert found(text) == [("arxiv", "2305.09781", None, written)]


def test_extract_keeps_balanced_parentheses_inside_a_url() -> None:
    text = "(https://github.com/a/b/blob/main/docs/x(1).md)"
    assert found(text) == [("github", "a/b", None, "https://github.com/a/b/blob/main/docs/x(1).md")]


def test_extract_tells_question_mark_from_cjk_before_a_host() -> None:
    # Both are "?" in the lowered copy the patterns search: a real "?" blocks a
    # host written without its scheme (a URL's query), a CJK character does not.
    # A URL written with its scheme counts after either (not after a letter or digit).
    text = (
        "见https://github.com/a/b 和?https://github.com/c/d ?github.com/e/f 见github.com/g/h "
        "?arxiv.org/abs/2305.09781 见arxiv.org/abs/2305.09782 ?https://arxiv.org/abs/2305.09783"
    )
    assert [link.text for link in extract(text)] == [
        "https://github.com/a/b",
        "https://github.com/c/d",
        "github.com/g/h",
        "arxiv.org/abs/2305.09782",
        "https://arxiv.org/abs/2305.09783",
    ]


def test_extract_splits_links_glued_by_ascii_comma() -> None:
    text = "https://github.com/a/b,https://github.com/c/d;github.com/e/f"
    assert found(text) == [
        ("github", "a/b", None, "https://github.com/a/b"),
        ("github", "c/d", None, "https://github.com/c/d"),
        ("github", "e/f", None, "github.com/e/f"),
    ]


def test_extract_markdown_badge_gives_only_the_real_link() -> None:
    text = "[![Stars](https://img.shields.io/github/stars/a-b/c?style=social)](https://github.com/a-b/c)"
    assert found(text) == [("github", "a-b/c", None, "https://github.com/a-b/c")]


def test_extract_github_owner_of_39_characters_is_the_limit() -> None:
    assert [link.id for link in extract("github.com/" + "a" * 39 + "/r")] == ["a" * 39 + "/r"]
    assert extract("github.com/" + "a" * 40 + "/r") == []
    # hyphens count: 39 characters in all, not 39 letters and digits
    hyphenated = "-".join(["ab"] * 13)  # 38 characters
    assert [link.id for link in extract(f"github.com/{hyphenated}x/r")] == [f"{hyphenated}x/r"]
    assert extract(f"github.com/{hyphenated}-x/r") == []
    assert [link.id for link in find_pages_links(f"{hyphenated}x.github.io/r")] == [
        f"{hyphenated}x/r"
    ]
    assert find_pages_links(f"{hyphenated}-x.github.io/r") == []


GITHUB_NON_LINKS = [
    "https://github.com/octo/tools/assets/45891944/0f5c6a2e-1b7e-4c1a-9f0e-2d8f7a6b5c4d",
    "![image](https://github.com/someone/notes.github.io/assets/45891944/37932cd8-70a3.png)",
    "https://github.com/user-attachments/assets/0f5c6a2e-1b7e-4c1a-9f0e-2d8f7a6b5c4d",
    "https://github.com/user-attachments/files/123/report.pdf",
    "https://github.com/torvalds",  # a bare owner
    "https://github.com/torvalds/",
    "github.com/torvalds?tab=repositories",
    "https://gist.github.com/octo/0123456789abcdef",
    "https://raw.githubusercontent.com/octo/tools/main/README.md",
    "https://api.github.com/repos/octo/tools",
    "https://docs.github.com/en/rest/repos",
    "https://codeload.github.com/octo/tools/zip/main",
    "notgithub.com/octo/tools",
    "my-github.com/octo/tools",
    "github.com.cnpmjs.org/octo/tools",
    "https://githubnext.com/projects/copilot",
    "https://github.blog/2023-01-01-news",
    "https://img.shields.io/github/stars/octo/tools",
    "https://img.shields.io/github/stars/octo/tools?style=social",
    "https://example.com/github.com/octo/tools",  # a path segment of another URL
    "https://example.com/?u=github.com/octo/tools",
    "github.com/-octo/tools",  # owners: letters, digits, single inner hyphens
    "github.com/octo-/tools",
    "github.com/oc--to/tools",
    "github.com/oc_to/tools",
    "github.com/octo/.",
    "github.com/octo/..",
    "github.com/octo/.git",
    "git@github.com:/octo",
    "github.com:octo/tools",  # the SSH form needs its user
    "https://octo.github.io/tools",  # GitHub Pages: see find_pages_links
]


@pytest.mark.parametrize("text", GITHUB_NON_LINKS)
def test_extract_github_non_links_give_nothing(text: str) -> None:
    assert extract(text) == []


@pytest.mark.parametrize("segment", sorted(GITHUB_RESERVED))
def test_extract_reserved_first_segment_is_not_an_owner(segment: str) -> None:
    assert extract(f"https://github.com/{segment}/something and github.com/{segment}/x") == []


def test_extract_reserved_segments_include_the_spec_list() -> None:
    for name in ("orgs", "topics", "sponsors", "features", "marketplace", "settings", "apps",
                 "login", "about", "pricing", "collections", "trending", "explore",
                 "notifications", "search", "site", "security", "enterprise", "customer-stories",
                 "readme", "team", "events", "pulls", "issues", "codespaces", "new", "join",
                 "logout", "signup", "contact", "home", "dashboard", "account", "nonprofit",
                 "education", "mobile", "blog", "user-attachments"):  # fmt: skip
        assert name in GITHUB_RESERVED


def test_extract_reserved_word_as_repository_name_is_fine() -> None:
    assert [link.id for link in extract("github.com/octo/topics")] == ["octo/topics"]


# ------------------------------------------------- documents, positions, order


DOC = (
    "# 6.1 周报\n"
    "* 1、LLM推理提速2.8倍：\n"
    "论文链接：https://arxiv.org/abs/2305.09781 \\\n"
    "项目链接：https://github.com/flexflow/FlexFlow/tree/inference \\\n"
    "![image](https://github.com/someone/notes.github.io/assets/1/ab-cd.png)\n"
    "详细介绍：someone.github.io/SelFee/\n"
    "* 2、图相关资源列表: github.com/XiaoxinHe/Awesome-Graph-LLM \\\n"
    "Paper：https://arxiv.org/pdf/2305.14201.pdf \\\n"
    "Code：https://github.com/liutiedong/goat\n"
    "原文：https://mp.weixin.qq.com/s/AbCdEf\n"
    "同一行两个：arXiv:2306.01129v2，代码 github.com/Ma-Lab-Berkeley/CRATE。\n"
)

DOC_LINKS = [
    # kind, id, version, line, column, text
    ("arxiv", "2305.09781", None, 3, 6, "https://arxiv.org/abs/2305.09781"),
    ("github", "flexflow/flexflow", None, 4, 6,
     "https://github.com/flexflow/FlexFlow/tree/inference"),
    ("github", "xiaoxinhe/awesome-graph-llm", None, 7, 14,
     "github.com/XiaoxinHe/Awesome-Graph-LLM"),
    ("arxiv", "2305.14201", None, 8, 7, "https://arxiv.org/pdf/2305.14201.pdf"),
    ("github", "liutiedong/goat", None, 9, 6, "https://github.com/liutiedong/goat"),
    ("arxiv", "2306.01129", "v2", 11, 7, "arXiv:2306.01129v2"),
    ("github", "ma-lab-berkeley/crate", None, 11, 29, "github.com/Ma-Lab-Berkeley/CRATE"),
]  # fmt: skip


def _summary(links: list[Link]) -> list[tuple[str, str, str | None, int, int, str]]:
    return [(k.kind, k.id, k.version, k.line, k.column, k.text) for k in links]


def test_extract_document_gives_every_link_in_order_with_positions() -> None:
    links = extract(DOC)
    assert _summary(links) == DOC_LINKS
    lines = DOC.split("\n")
    for link in links:
        assert DOC[link.start : link.end] == link.text
        line = lines[link.line - 1]
        assert line[link.column - 1 : link.column - 1 + len(link.text)] == link.text
        assert link.via is None
    assert [k.start for k in links] == sorted(k.start for k in links)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_extract_crlf_and_cr_files_give_the_same_lines_and_columns(newline: str) -> None:
    text = DOC.replace("\n", newline)
    assert _summary(extract(text)) == DOC_LINKS
    for link in extract(text):
        assert text[link.start : link.end] == link.text


def test_extract_mixed_line_endings_count_each_break_once() -> None:
    text = "a\r\nb\rc\nd\n\r\narXiv:2305.09781"
    (link,) = extract(text)
    assert (link.line, link.column) == (6, 1)  # a, b, c, d, "", arXiv


def test_extract_columns_count_code_points_not_bytes() -> None:
    (link,) = extract("地址：github.com/a/b")
    assert (link.line, link.column, link.start) == (1, 4, 3)
    (link,) = extract("😀😀 arXiv:2305.09781")
    assert (link.column, link.start) == (4, 3)


def test_extract_repeated_link_reports_every_occurrence() -> None:
    text = "arXiv:2305.09781\n又见 https://arxiv.org/abs/2305.09781v2\n"
    links = extract(text)
    assert [(k.id, k.version, k.line) for k in links] == [
        ("2305.09781", None, 1),
        ("2305.09781", "v2", 2),
    ]


def test_extract_empty_and_linkless_text_give_nothing() -> None:
    assert extract("") == []
    assert extract("今天没有链接。\n只有 2305.09781 这样的数字和 github 这个词。\n") == []


def test_extract_big_text_is_scanned_across_chunk_boundaries() -> None:
    # Far more than one scanning chunk, with links on every 97th line.
    lines = []
    for i in range(30_000):
        lines.append(
            f"论文 arXiv:2305.{i:05d} 代码 github.com/o{i}/r" if i % 97 == 0 else "中文" * 8
        )
    text = "\n".join(lines)
    links = extract(text)
    want = [i for i in range(30_000) if i % 97 == 0]
    assert [k.line for k in links[::2]] == [i + 1 for i in want]
    assert [k.id for k in links[1::2]] == [f"o{i}/r" for i in want]
    assert all(text[k.start : k.end] == k.text for k in links)


def test_extract_links_are_ordinary_pydantic_models() -> None:
    (link,) = extract("arXiv:2305.09781v2")
    same = Link(kind="arxiv", id="2305.09781", version="v2", text="arXiv:2305.09781v2",
                line=1, column=1, start=0, end=18)  # fmt: skip
    assert link == same
    assert hash(link) == hash(same)
    assert link.model_dump() == same.model_dump()
    assert json.loads(link.model_dump_json())["version"] == "v2"
    with pytest.raises(ValueError):
        link.id = "other"  # type: ignore[misc]
    assert link.model_copy(update={"line": 5}).line == 5
    assert link.line == 1
    assert pickle.loads(pickle.dumps(link)) == link
    assert copy.deepcopy(link) == link
    assert Link.model_validate(link.model_dump()) == link


def test_extract_github_link_json_has_no_version_field() -> None:
    (link,) = extract("github.com/a/b")
    assert "version" not in json.loads(link.model_dump_json())


# ---------------------------------------------------------------- GitHub Pages

PAGES: list[tuple[str, str, str]] = [
    ("https://someone.github.io/SelFee/", "someone/selfee", "https://someone.github.io/SelFee/"),
    ("详细介绍：someone.github.io/SelFee/", "someone/selfee", "someone.github.io/SelFee/"),
    ("https://someone.github.io/SelFee/demo", "someone/selfee",
     "https://someone.github.io/SelFee/demo"),
    ("项目主页: https://panda-x.github.io/ \\", "panda-x/panda-x.github.io",
     "https://panda-x.github.io/"),
    ("someone.github.io", "someone/someone.github.io", "someone.github.io"),
    ("（someone.github.io）", "someone/someone.github.io", "someone.github.io"),
    ("https://someone.github.io/index.html", "someone/someone.github.io",
     "https://someone.github.io/index.html"),
    ("https://lab-x.github.io/resources/paper.pdf", "lab-x/resources",
     "https://lab-x.github.io/resources/paper.pdf"),
    ("https://Some-One.GitHub.io/Proj.", "some-one/proj", "https://Some-One.GitHub.io/Proj"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "ident", "written"), PAGES, ids=[t for t, _, _ in PAGES])
def test_find_pages_links_names_candidate_repository(text: str, ident: str, written: str) -> None:
    (link,) = find_pages_links(text)
    assert (link.kind, link.id, link.text, link.via) == ("github", ident, written, "pages")
    assert text[link.start : link.end] == written
    assert extract(text) == []


PAGES_NON_LINKS = [
    "https://github.com/someone/notes.github.io/assets/1/a.png",  # a path segment
    "https://docs.someone.github.io/x",  # a subdomain
    "someone.github.io.example.com/x",
    "https://github.io/x",
    "https://-bad.github.io/x",
    "https://a--b.github.io/x",
    "example.com/someone.github.io",
]


@pytest.mark.parametrize("text", PAGES_NON_LINKS)
def test_find_pages_links_ignores_non_sites(text: str) -> None:
    assert find_pages_links(text) == []


def test_find_pages_links_reports_lines() -> None:
    links = find_pages_links(DOC)
    assert [(k.id, k.line, k.column) for k in links] == [("someone/selfee", 6, 6)]


# ------------------------------------------------------------------ utilities


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2305.09781", ("2305.09781", None)),
        (" 2305.09781v2 ", ("2305.09781", "v2")),
        ("math.GT/0309136v1", ("math/0309136", "v1")),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("2023.10", None),
        ("arXiv:2305.09781", None),
        ("中文", None),
        ("", None),
    ],
)
def test_canonical_arxiv_id_of_bare_ids(
    value: str, expected: tuple[str, str | None] | None
) -> None:
    assert canonical_arxiv_id(value) == expected


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_extract_matches_the_mixed_log_fixture() -> None:
    # A log in the style of the user's (mixed Chinese and English, arXiv links in many
    # forms, GitHub URLs with paths and fragments, images, badges and pages that are not
    # links), with the ids it holds written down by hand beside it.
    log, expected_file = FIXTURES / "mixed-log.txt", FIXTURES / "mixed-log.expected.json"
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    text = log.read_text(encoding="utf-8")
    links = extract(text)
    assert sorted({k.id for k in links if k.kind == "arxiv"}) == expected["arxiv"]
    assert sorted({k.id for k in links if k.kind == "github"}) == expected["github"]
    assert [(k.kind, k.id, k.line) for k in links] == [
        (o["kind"], o["id"], o["line"]) for o in expected["occurrences"]
    ]
    for k in links:
        assert text[k.start : k.end] == k.text
    for non_link in expected["not_links"]:  # each is in the text, and no link is inside it
        at = text.index(non_link)
        assert not any(at <= k.start < at + len(non_link) for k in links), non_link


@pytest.mark.parametrize(
    "text",
    [
        "github.com/a/b/" + "x" * 300_000,
        "github.com/a/b" + ")" * 300_000,
        "(" * 300_000 + "github.com/a/b" + ")" * 300_000,
        "https://arxiv.org/abs/2305.09781?" + "a," * 150_000,
        ("a" * 39 + ".github.io/") * 10_000,
        "a." * 150_000 + "arxiv.org/abs/2305.09781",
        "git" * 100_000 + "@github.com:a/b",
        "arXiv:" * 100_000,
    ],
    ids=[
        "long-tail",
        "closing-parens",
        "nested-parens",
        "commas",
        "pages",
        "labels",
        "ssh",
        "markers",
    ],
)
def test_extract_stays_linear_on_pathological_text(text: str) -> None:
    t0 = time.perf_counter()
    links = extract(text) + find_pages_links(text)
    assert time.perf_counter() - t0 < 5.0
    assert all(text[k.start : k.end] == k.text for k in links)


def test_repository_name_longer_than_githubs_limit_is_not_a_link() -> None:
    ok = "r" * 100
    assert [lk.id for lk in extract(f"github.com/o/{ok}")] == [f"o/{ok}"]
    assert extract(f"github.com/o/{ok}x") == []
    assert [lk.id for lk in extract(f"github.com/o/{ok}.git")] == [f"o/{ok}"]


@pytest.mark.parametrize(("text", "written"), [
    ("[2].https://github.com/o/r", "https://github.com/o/r"),
    ("1.https://github.com/o/r", "https://github.com/o/r"),
    ("见https://github.com/o/r", "https://github.com/o/r"),
    ("(https://github.com/o/r)", "https://github.com/o/r"),
    ("[3].http://arxiv.org/abs/2305.09781", "http://arxiv.org/abs/2305.09781"),
    ("refs:[4].https://doi.org/10.48550/arXiv.2305.09781",
     "https://doi.org/10.48550/arXiv.2305.09781"),
])
def test_a_url_with_its_scheme_counts_after_any_character_but_a_letter_or_digit(
        text: str, written: str) -> None:
    assert [lk.text for lk in extract(text)] == [written]


@pytest.mark.parametrize("text", [
    "xhttps://github.com/o/r", "2https://github.com/o/r", "x.github.com/o/r",
    "notgithub.com/a/b", "?u=github.com/a/b", "ahttp://arxiv.org/abs/2305.09781",
])
def test_a_scheme_or_host_glued_to_a_letter_digit_or_url_is_not_a_link(text: str) -> None:
    assert extract(text) == []


def test_a_url_inside_another_urls_path_counts_when_written_with_its_scheme() -> None:
    # spec: a URL written with its scheme counts after any character but a letter or
    # digit, "/" included (a reader proxy's URL names the repository it reads)
    assert [lk.id for lk in extract("https://r.jina.ai/https://github.com/octo/tools")] == [
        "octo/tools"]
    assert extract("https://r.jina.ai/github.com/octo/tools") == []
