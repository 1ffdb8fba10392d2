"""The fake arXiv API must answer like the real one, or the fetcher's tests prove nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import arxiv
import pytest
import requests
from arxiv import _feed
from fakeapi.arxiv import ARXIV_NS, ATOM_NS, OPENSEARCH_NS, FakeArxiv, split_version
from lxml import etree

NS = {"a": ATOM_NS, "arxiv": ARXIV_NS, "os": OPENSEARCH_NS}


def _get(srv: FakeArxiv, **params: str) -> requests.Response:
    return requests.get(srv.api_url, params=params, timeout=5)


def _fill(srv: FakeArxiv) -> None:
    srv.add_paper("2305.09781", title="Older paper",
                  authors=[("Ada Lovelace", "Analytical Engines"), "Alan Turing"],
                  abstract="First line\nwrapped.", versions=2, primary_category="cs.CL",
                  categories=["cs.CL", "cs.LG"], comment="12 pages", doi="10.1000/xyz",
                  journal_ref="J. Fake 1 (2023)", published=datetime(2023, 5, 16, tzinfo=UTC))
    srv.add_paper("2401.00001", title="Newer paper", published=datetime(2024, 1, 2, tzinfo=UTC))
    srv.add_paper("math/0309136", title="Old style", primary_category="math.GT",
                  published=datetime(2003, 9, 9, tzinfo=UTC))


def test_fake_feed_parses_with_lxml_and_uses_the_real_namespaces(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    r = _get(arxiv_server, id_list="2305.09781", max_results="10")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/atom+xml")
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{ATOM_NS}}}feed"
    assert root.findtext("a:title", namespaces=NS).startswith("arXiv Query: search_query=")
    assert root.findtext("a:id", namespaces=NS).startswith("https://arxiv.org/api/")
    assert root.findtext("os:totalResults", namespaces=NS) == "1"
    assert root.findtext("os:startIndex", namespaces=NS) == "0"
    assert root.findtext("os:itemsPerPage", namespaces=NS) == "10"
    entry = root.find("a:entry", NS)
    assert entry.findtext("a:id", namespaces=NS) == "http://arxiv.org/abs/2305.09781v2"
    assert entry.find("arxiv:primary_category", NS).get("term") == "cs.CL"
    assert [c.get("term") for c in entry.findall("a:category", NS)] == ["cs.CL", "cs.LG"]
    assert entry.findtext("arxiv:doi", namespaces=NS) == "10.1000/xyz"
    assert entry.findtext("arxiv:comment", namespaces=NS) == "12 pages"
    assert entry.findtext("arxiv:journal_ref", namespaces=NS) == "J. Fake 1 (2023)"
    assert entry.findtext("a:author/arxiv:affiliation", namespaces=NS) == "Analytical Engines"
    links = {(ln.get("title"), ln.get("rel")): ln.get("href") for ln in entry.findall("a:link", NS)}
    assert links[(None, "alternate")] == "https://arxiv.org/abs/2305.09781v2"
    assert links[("pdf", "related")] == "https://arxiv.org/pdf/2305.09781v2"
    assert links[("doi", "related")] == "https://doi.org/10.1000/xyz"


def test_fake_feed_parses_with_the_arxiv_package_parser(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    feed = _feed.parse(_get(arxiv_server, id_list="2305.09781,2401.00001").content)
    assert not feed.malformed
    assert feed.header.total_results == 2
    by_id = {r.get_short_id(): r for r in feed.results}
    older = by_id["2305.09781v2"]
    assert older.title == "Older paper"
    assert [a.name for a in older.authors] == ["Ada Lovelace", "Alan Turing"]
    assert older.authors[0].affiliation == ["Analytical Engines"]
    assert older.pdf_url == "https://arxiv.org/pdf/2305.09781v2"
    assert older.published == datetime(2023, 5, 16, tzinfo=UTC)
    assert older.updated > older.published
    assert older.doi == "10.1000/xyz" and older.journal_ref == "J. Fake 1 (2023)"


def test_arxiv_client_can_query_the_fake_end_to_end(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    client = arxiv.Client(delay_seconds=0, num_retries=0)
    client.query_url_format = arxiv_server.api_url + "?{}"
    got = list(client.results(arxiv.Search(id_list=["math/0309136"])))
    assert [r.entry_id for r in got] == ["http://arxiv.org/abs/math/0309136v1"]


def test_fake_returns_entries_newest_first_not_in_requested_order(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    feed = _feed.parse(_get(arxiv_server, id_list="math/0309136,2305.09781,2401.00001").content)
    assert [r.get_short_id() for r in feed.results] == [
        "2401.00001v1", "2305.09781v2", "math/0309136v1"]


def test_fake_silently_drops_a_well_formed_unknown_id(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    r = _get(arxiv_server, id_list="0808.05394,2305.09781")
    assert r.status_code == 200
    feed = _feed.parse(r.content)
    assert feed.header.total_results == 1
    assert [x.get_short_id() for x in feed.results] == ["2305.09781v2"]
    alone = _get(arxiv_server, id_list="0000.0000")
    assert alone.status_code == 200 and b"<entry>" not in alone.content
    assert _feed.parse(alone.content).header.total_results == 0


def test_fake_answers_a_malformed_id_with_400_and_one_error_entry(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    r = _get(arxiv_server, id_list="2305.09781,abc")
    assert r.status_code == 400
    root = etree.fromstring(r.content)
    entries = root.findall("a:entry", NS)
    assert len(entries) == 1
    assert entries[0].findtext("a:id", namespaces=NS).endswith(
        "/api/errors#incorrect_id_format_for_abc")
    assert entries[0].findtext("a:title", namespaces=NS) == "Error"
    assert entries[0].findtext("a:summary", namespaces=NS) == "incorrect id format for abc"
    assert entries[0].findtext("a:author/a:name", namespaces=NS) == "arXiv api core"
    # the package's parser drops the Error entry: it has no <published>
    assert _feed.parse(r.content).results == []


def test_fake_error_as_200_keeps_the_error_feed(arxiv_server: FakeArxiv) -> None:
    arxiv_server.error_as_200 = True
    r = _get(arxiv_server, id_list="abc")
    assert r.status_code == 200
    assert b"/api/errors#incorrect_id_format_for_abc" in r.content


def test_fake_treats_an_old_id_with_subject_class_as_malformed(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    assert _get(arxiv_server, id_list="math.GT/0309136").status_code == 400
    assert b"math/0309136v1" in _get(arxiv_server, id_list="math/0309136").content


def test_fake_truncates_to_ten_results_by_default(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(25)
    feed = _feed.parse(_get(arxiv_server, id_list=",".join(ids)).content)
    assert feed.header.total_results == 25
    assert len(feed.results) == 10
    page = _feed.parse(_get(arxiv_server, id_list=",".join(ids), start="20",
                            max_results="10").content)
    assert len(page.results) == 5
    full = _feed.parse(_get(arxiv_server, id_list=",".join(ids), max_results="25").content)
    assert {r.get_short_id().split("v")[0] for r in full.results} == set(ids)


def test_fake_serves_the_asked_version_or_the_latest(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    v1 = _feed.parse(_get(arxiv_server, id_list="2305.09781v1").content).results[0]
    latest = _feed.parse(_get(arxiv_server, id_list="2305.09781").content).results[0]
    assert v1.entry_id.endswith("v1") and latest.entry_id.endswith("v2")
    assert v1.published == latest.published and v1.updated < latest.updated
    assert _feed.parse(_get(arxiv_server, id_list="2305.09781v9").content).results == []


def test_fake_answers_414_to_a_long_get_but_not_to_post(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(700)
    assert _get(arxiv_server, id_list=",".join(ids), max_results="700").status_code == 414
    r = requests.post(arxiv_server.api_url, data={"id_list": ",".join(ids),
                                                  "max_results": "700"}, timeout=5)
    assert r.status_code == 200
    assert len(_feed.parse(r.content).results) == 700
    hundred = _get(arxiv_server, id_list=",".join(ids[:100]), max_results="100")
    assert hundred.status_code == 200


def test_fake_rate_limit_is_plain_text_with_optional_retry_after(arxiv_server: FakeArxiv) -> None:
    arxiv_server.rate_limit(retry_after=7)
    arxiv_server.rate_limit()
    first, second = _get(arxiv_server, id_list="abc"), _get(arxiv_server, id_list="abc")
    assert (first.status_code, first.text, first.headers["Retry-After"]) == (
        429, "Rate exceeded.", "7")
    assert first.headers["Content-Type"].startswith("text/plain")
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert _get(arxiv_server, id_list="abc").status_code == 400  # faults used up


def test_fake_empty_page_glitch_is_a_valid_feed_with_no_entries(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    arxiv_server.empty_page()
    r = _get(arxiv_server, id_list="2305.09781")
    assert r.status_code == 200
    feed = _feed.parse(r.content)
    assert not feed.malformed and feed.results == [] and feed.header.total_results == 0
    assert len(_feed.parse(_get(arxiv_server, id_list="2305.09781").content).results) == 1


def test_fake_synthetic_ids_are_valid_unique_and_logged(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(300) + arxiv_server.add_synthetic(5)
    assert len(set(ids)) == 305
    assert all(split_version(i) == (i, None) for i in ids)
    _get(arxiv_server, id_list=",".join(ids[:3]))
    assert arxiv_server.id_lists() == [ids[:3]]
    assert arxiv_server.count("query") == 1


@pytest.mark.parametrize("bad", ["abc", "2305.978", "math.GT/0309136", "Math/0309136",
                                 "https://arxiv.org/abs/2305.09781"])
def test_fake_id_grammar_rejects_what_arxiv_calls_malformed(bad: str) -> None:
    assert split_version(bad) is None


def test_fake_search_query_filters_minimally(arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    feed = _feed.parse(_get(arxiv_server, search_query="ti:newer").content)
    assert [r.title for r in feed.results] == ["Newer paper"]


def test_fake_block_fault_holds_the_answer_until_the_event_is_set(
        arxiv_server: FakeArxiv) -> None:
    _fill(arxiv_server)
    release = threading.Event()
    arxiv_server.faults.add("query", "block", event=release)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(_get, arxiv_server, id_list="2305.09781")
        deadline = time.monotonic() + 5
        while arxiv_server.count("query") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert arxiv_server.count("query") == 1
        assert not answer.done() and arxiv_server.requests[0].ended is None
        release.set()
        assert answer.result(timeout=5).status_code == 200
    logged = arxiv_server.requests[0]
    assert logged.fault == "block"
    deadline = time.monotonic() + 5  # the handler notes the end just after the last write
    while logged.ended is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logged.ended is not None and logged.ended >= logged.time
