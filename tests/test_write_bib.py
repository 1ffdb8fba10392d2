"""The BibTeX writer: stable keys, escaping, DOI fallback."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

import enrich.write.bib as bib
from enrich.models import EnrichedDocument, Paper
from enrich.write.bib import citation_keys, latex_escape, render_bib

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def paper(title: str, authors: list[str], year: int = 2017, **kw: object) -> Paper:
    data: dict[str, object] = {"status": "ok", "title": title, "authors": authors,
                               "published": datetime(year, 6, 12, tzinfo=UTC),
                               "primary_category": "cs.CL"}
    data.update(kw)
    return Paper.model_validate(data)


def doc_of(papers: dict[str, Paper]) -> EnrichedDocument:
    return EnrichedDocument(generated_at=NOW, papers=papers)


PAPERS = {
    "1706.03762": paper("Attention Is All You Need", ["Ashish Vaswani", "Noam Shazeer"]),
    "2305.09781": paper("SpecInfer: Accelerating LLM Serving", ["Xupeng Miao"], 2023,
                        doi="10.1145/3620666.3651335", status="stale"),
    "hep-th/9901001": paper("On the Theory of Strings", ["Łukasz Kowalski Jr."], 1999),
    "2401.00001": Paper(status="not_found"),
    "2401.00002": Paper(status="missing"),
    "2401.00003": Paper(status="error"),
}


def entries(text: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"@misc\{([^,]+),\n.*?\n\}\n", text,
                                                        re.DOTALL)}


def test_bib_keys_are_author_year_word_and_id_digest() -> None:
    keys = citation_keys(doc_of(PAPERS))
    assert re.fullmatch(r"vaswani2017attention-[0-9a-f]{4}", keys["1706.03762"])
    assert re.fullmatch(r"miao2023specinfer-[0-9a-f]{4}", keys["2305.09781"])
    assert re.fullmatch(r"kowalski1999theory-[0-9a-f]{4}", keys["hep-th/9901001"])
    assert set(keys) == {"1706.03762", "2305.09781", "hep-th/9901001"}  # ok and stale only


def test_bib_keys_are_stable_across_renders_and_record_order() -> None:
    first = render_bib(doc_of(PAPERS))
    again = render_bib(doc_of(dict(reversed(PAPERS.items()))))
    alone = citation_keys(doc_of({"1706.03762": PAPERS["1706.03762"]}))
    assert first == again
    assert alone["1706.03762"] == citation_keys(doc_of(PAPERS))["1706.03762"]


def test_bib_entries_are_sorted_by_key_and_complete() -> None:
    text = render_bib(doc_of(PAPERS))
    found = entries(text)
    assert list(found) == sorted(found) and len(found) == 3
    vaswani = next(v for k, v in found.items() if k.startswith("vaswani"))
    assert "  title         = {{Attention Is All You Need}},\n" in vaswani
    assert "  author        = {Ashish Vaswani and Noam Shazeer},\n" in vaswani
    assert "  year          = {2017},\n" in vaswani
    assert "  eprint        = {1706.03762},\n" in vaswani
    assert "  archivePrefix = {arXiv},\n" in vaswani
    assert "  primaryClass  = {cs.CL},\n" in vaswani
    assert "  url           = {https://arxiv.org/abs/1706.03762},\n" in vaswani


def test_bib_doi_is_the_papers_own_else_the_arxiv_doi() -> None:
    found = entries(render_bib(doc_of(PAPERS)))
    by_prefix = {k.split("2", 1)[0]: v for k, v in found.items()}
    assert "doi           = {10.48550/arXiv.1706.03762}" in by_prefix["vaswani"]
    assert "doi           = {10.1145/3620666.3651335}" in by_prefix["miao"]
    assert "doi           = {10.48550/arXiv.hep-th/9901001}" in found[
        next(k for k in found if k.startswith("kowalski"))]


def test_bib_escapes_latex_specials_and_collapses_lines() -> None:
    title = "Cost $O(n)$ & 50% #1 a_b {x} ~y^ \\z\nnext\x00line"
    text = render_bib(doc_of({"2305.09781": paper(title, ["R&D Team and Friends", "Lee, Ann"])}))
    assert ("title         = {{Cost \\$O(n)\\$ \\& 50\\% \\#1 a\\_b \\{x\\} "
            "\\textasciitilde{}y\\textasciicircum{} \\textbackslash{}z nextline}}") in text
    assert "author        = {{R\\&D Team and Friends} and {Lee, Ann}}" in text
    assert text.count("{") == text.count("}")


def test_latex_escape_leaves_plain_and_unicode_text_alone() -> None:
    assert latex_escape("Schrödinger’s 猫") == "Schrödinger’s 猫"


def test_bib_doi_with_specials_is_escaped_and_plain_doi_kept_verbatim() -> None:
    springer = paper("Chapter", ["A B"], doi="10.1007/978-3-030-58452-8_13")
    odd = paper("Odd", ["C D"], doi="10.1/x{y}%")
    text = render_bib(doc_of({"2001.00001": springer, "2001.00002": odd}))
    assert "doi           = {10.1007/978-3-030-58452-8_13}" in text
    assert "doi           = {10.1/x\\{y\\}\\%}" in text


def test_bib_key_clash_gets_a_longer_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bib._digest
    monkeypatch.setattr(bib, "_digest", lambda i, n: "beef" if n == 4 else real(i, n))
    twins = {"2001.00001": paper("Deep Nets", ["A Smith"], 2020),
             "2001.00002": paper("Deep Nets II", ["B Smith"], 2020),
             "2001.00003": paper("Other Topic", ["C Smith"], 2020)}
    keys = citation_keys(doc_of(twins))
    assert keys["2001.00003"] == "smith2020other-beef"
    assert re.fullmatch(r"smith2020deep-[0-9a-f]{10}", keys["2001.00001"])
    assert len(set(keys.values())) == 3


def test_bib_falls_back_when_author_year_or_title_are_unknown() -> None:
    bare = Paper(status="ok")
    keys = citation_keys(doc_of({"2305.09781": bare, "math/0309136": bare}))
    assert re.fullmatch(r"anon2023-[0-9a-f]{4}", keys["2305.09781"])
    assert re.fullmatch(r"anon2003-[0-9a-f]{4}", keys["math/0309136"])
    assert "title" not in render_bib(doc_of({"2305.09781": bare}))


def test_bib_is_empty_without_papers_with_data() -> None:
    assert render_bib(doc_of({"2401.00001": Paper(status="not_found")})) == ""
