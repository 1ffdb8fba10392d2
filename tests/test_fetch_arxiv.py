"""arXiv fetching through the orchestrator against the fake API: batching, matching,
spacing, and every failure mode. Each test runs ``Enricher.resolve`` (tests/harness.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi.arxiv import FakeArxiv, arxiv_config
from harness import Fetched, afetch_ids, fetch_ids, open_enricher, wait_for_requests

from enrich._version import PROJECT_URL, USER_AGENT
from enrich.fetch.arxiv import canonical_query_id, clean_abstract, split_entry_id


def fetch(srv: FakeArxiv, ids: Sequence[str], **overrides: Any) -> Fetched:
    return fetch_ids(arxiv_config(srv, **overrides), ids)


def add_titled(srv: FakeArxiv, ids: Sequence[str]) -> None:
    """Papers whose title names their id, published in an order unlike ``ids``."""
    for n, pid in enumerate(ids):
        srv.add_paper(pid, title=f"Paper {pid}",
                      published=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=(n * 37) % 101))


# -- batching and matching ---------------------------------------------------------------------


def test_250_ids_take_exactly_three_requests_of_at_most_100(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(250)
    got = fetch(arxiv_server, ids)
    assert got.requests["arxiv"] == 3 == arxiv_server.count("query")
    assert [len(x) for x in arxiv_server.id_lists()] == [100, 100, 50]
    assert [r.query["max_results"] for r in arxiv_server.requests] == [["100"], ["100"], ["50"]]
    assert got.statuses == dict.fromkeys(ids, "ok")
    assert not got.messages and set(got.origins.values()) == {"fetched"}


def test_results_are_matched_by_entry_id_though_the_feed_is_scrambled(
        arxiv_server: FakeArxiv) -> None:
    ids = [f"2301.{n:05d}" for n in range(1, 8)]
    add_titled(arxiv_server, ids)
    got = fetch(arxiv_server, ids)
    assert {k: v.title for k, v in got.papers.items()} == {i: f"Paper {i}" for i in ids}
    assert got.requests["arxiv"] == 1


def test_duplicate_ids_are_asked_once(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    got = fetch(arxiv_server, ["2301.00001", "2301.00001"])
    assert arxiv_server.id_lists() == [["2301.00001"]]
    assert got.statuses == {"2301.00001": "ok"}


def test_unknown_id_is_not_found_and_the_rest_ok(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001", "2301.00002"])
    got = fetch(arxiv_server, ["2301.00001", "2399.99999", "2301.00002"])
    assert got.statuses == {"2301.00001": "ok", "2399.99999": "not_found", "2301.00002": "ok"}
    assert got.requests["arxiv"] == 1
    assert got.papers["2399.99999"].fetched_at is not None


def test_single_unknown_id_answered_empty_is_not_found_at_once(arxiv_server: FakeArxiv) -> None:
    got = fetch(arxiv_server, ["2399.99999"])
    assert got.statuses == {"2399.99999": "not_found"}
    assert got.requests["arxiv"] == 1


def test_empty_page_glitch_is_asked_again_before_believing_it(arxiv_server: FakeArxiv) -> None:
    ids = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, ids)
    arxiv_server.empty_page()
    got = fetch(arxiv_server, ids)
    assert got.statuses == dict.fromkeys(ids, "ok")
    assert got.requests["arxiv"] == 2


def test_batch_of_unknown_ids_is_not_found_after_one_confirmation(arxiv_server: FakeArxiv) -> None:
    got = fetch(arxiv_server, ["2399.99998", "2399.99999"])
    assert got.statuses == {"2399.99998": "not_found", "2399.99999": "not_found"}
    assert got.requests["arxiv"] == 2


def test_old_style_id_is_sent_canonical_and_mapped_back(arxiv_server: FakeArxiv) -> None:
    arxiv_server.add_paper("math/0309136", title="Knots", versions=3)
    got = fetch(arxiv_server, ["math.GT/0309136", "math/0309136"])
    assert arxiv_server.id_lists() == [["math/0309136"]]
    for key in ("math.GT/0309136", "math/0309136"):
        paper = got.papers[key]
        assert (paper.status, paper.title, paper.latest_version) == ("ok", "Knots", "v3")
        assert paper.abs_url == "https://arxiv.org/abs/math/0309136"


def test_paper_fields_are_cleaned_and_complete(arxiv_server: FakeArxiv) -> None:
    arxiv_server.add_paper(
        "2305.09781", title="  Spec  Infer:\n   Fast   serving ", versions=2,
        authors=[("Ada  Lovelace", "Analytical Engines"), "Alan Turing"],
        abstract="  First paragraph line one\nline two.\n  Second paragraph.\n\nThird. ",
        primary_category="cs.CL", categories=["cs.CL", "cs.LG"], comment="12 pages,\n 3 figures",
        doi="10.1000/xyz", journal_ref="J. Fake 1 (2023)",
        published=datetime(2023, 5, 16, 17, 0, tzinfo=UTC))
    arxiv_server.add_paper("2305.00002", title="No pdf link", pdf_link=False)
    before = datetime.now(UTC)
    got = fetch(arxiv_server, ["2305.09781", "2305.00002"])
    p = got.papers["2305.09781"]
    assert p.title == "Spec Infer: Fast serving"
    assert p.authors == ["Ada Lovelace", "Alan Turing"]
    assert p.abstract == "First paragraph line one line two.\n\nSecond paragraph.\n\nThird."
    assert p.published == datetime(2023, 5, 16, 17, 0, tzinfo=UTC)
    assert p.updated is not None and p.updated > p.published
    assert (p.latest_version, p.primary_category, p.categories) == ("v2", "cs.CL",
                                                                      ["cs.CL", "cs.LG"])
    assert (p.doi, p.journal_ref, p.comment) == ("10.1000/xyz", "J. Fake 1 (2023)",
                                                 "12 pages, 3 figures")
    assert p.abs_url == "https://arxiv.org/abs/2305.09781"
    assert p.pdf_url == "https://arxiv.org/pdf/2305.09781v2"
    assert p.fetched_at is not None and p.fetched_at >= before
    bare = got.papers["2305.00002"]
    assert bare.pdf_url == "https://arxiv.org/pdf/2305.00002"
    assert (bare.doi, bare.comment, bare.journal_ref) == (None, None, None)


# -- malformed ids, 414 ---------------------------------------------------------------------------


def test_malformed_id_fails_alone_and_costs_one_extra_request(arxiv_server: FakeArxiv) -> None:
    good = ["2301.00001", "2301.00002", "2301.00003", "2301.00004"]
    add_titled(arxiv_server, good)
    got = fetch(arxiv_server, [*good[:2], "abc", *good[2:]])
    assert got.statuses == {**dict.fromkeys(good, "ok"), "abc": "error"}
    assert got.messages == {"abc": "arXiv says: incorrect id format for abc"}
    assert got.requests["arxiv"] == 2
    assert arxiv_server.id_lists()[1] == good  # asked again without the bad id


def test_malformed_id_in_a_200_error_feed_is_handled_the_same(arxiv_server: FakeArxiv) -> None:
    arxiv_server.error_as_200 = True
    add_titled(arxiv_server, ["2301.00001"])
    got = fetch(arxiv_server, ["2301.00001", "abc"])
    assert got.statuses == {"2301.00001": "ok", "abc": "error"}
    assert got.messages == {"abc": "arXiv says: incorrect id format for abc"}
    assert got.requests["arxiv"] == 2


def test_two_malformed_ids_each_cost_one_request(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    got = fetch(arxiv_server, ["x1", "2301.00001", "x2"])
    assert set(got.messages) == {"x1", "x2"}
    assert got.statuses == {"x1": "error", "2301.00001": "ok", "x2": "error"}
    assert got.requests["arxiv"] == 3


def test_error_naming_no_id_is_bisected_down_to_the_bad_one(arxiv_server: FakeArxiv) -> None:
    arxiv_server.error_names_id = False
    good = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, good)
    got = fetch(arxiv_server, [good[0], "abc", good[1], good[2]])
    assert got.statuses == {**dict.fromkeys(good, "ok"), "abc": "error"}
    assert got.messages == {"abc": "arXiv says: incorrect id format"}
    # [4] -> [2]: 400 -> [1 bad]: 400, [1]: ok ; [2]: ok
    assert got.requests["arxiv"] == 5 == arxiv_server.count("query")


def test_url_too_long_splits_the_batch(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(700)
    got = fetch(arxiv_server, ids, arxiv__batch_size=1000)
    assert got.statuses == dict.fromkeys(ids, "ok")
    assert [len(x) for x in arxiv_server.id_lists()] == [700, 350, 350]
    assert got.requests["arxiv"] == 3


def test_ids_that_cannot_go_in_an_id_list_fail_without_a_request(arxiv_server: FakeArxiv) -> None:
    got = fetch(arxiv_server, ["a b", "1,2", ""])
    assert got.statuses == dict.fromkeys(["a b", "1,2", ""], "error")
    assert set(got.messages) == {"a b", "1,2", ""}
    assert got.requests["arxiv"] == 0 == arxiv_server.count()


# -- transient failures -------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured_then_succeeds(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.rate_limit(retry_after=0.3)
    t0 = time.monotonic()
    got = fetch(arxiv_server, ["2301.00001"], http__backoff_max=1)
    t1, t2 = (r.time for r in arxiv_server.requests)
    assert got.statuses == {"2301.00001": "ok"}
    assert got.requests["arxiv"] == 2
    assert t2 - t1 >= 0.29 and time.monotonic() - t0 < 2


def test_429_without_retry_after_waits_throttle_wait_then_retries_once(
        arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.rate_limit()
    got = fetch(arxiv_server, ["2301.00001"], arxiv__throttle_wait=0.4)
    t1, t2 = (r.time for r in arxiv_server.requests)
    assert got.statuses == {"2301.00001": "ok"}
    assert got.requests["arxiv"] == 2
    assert t2 - t1 >= 0.39  # not the backoff of http.backoff (0.01 s here)


def test_a_second_429_in_a_row_stops_arxiv_for_the_run(arxiv_server: FakeArxiv,
                                                       tmp_path: Path) -> None:
    # before: 5 requests in ~16 s, the batch failed and every later batch was skipped;
    # now: 2 requests throttle_wait apart, then nothing more; cached papers stay stale
    ids = ["2301.00001", "2301.00002", "2301.00003", "2301.00004"]
    add_titled(arxiv_server, ids)
    cfg = arxiv_config(arxiv_server, tmp_path / "c.sqlite3", arxiv__batch_size=2,
                       arxiv__throttle_wait=0.3, cache__arxiv_ttl=0)
    first = fetch_ids(cfg, ids[:1])
    assert first.statuses == {"2301.00001": "ok"}
    arxiv_server.reset_log()
    arxiv_server.rate_limit(times=3)
    t0 = time.monotonic()
    got = fetch_ids(cfg, ids)
    assert got.requests["arxiv"] == 2 == arxiv_server.count("query")
    assert 0.29 <= time.monotonic() - t0 < 2
    assert got.statuses == {"2301.00001": "stale", "2301.00002": "missing",
                            "2301.00003": "missing", "2301.00004": "missing"}
    assert len(set(got.messages.values())) == 1  # one cause, one message
    assert "429" in got.messages["2301.00003"] and "for this run" in got.messages["2301.00003"]


def test_a_429_then_another_fault_keeps_retrying_as_usual(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.rate_limit()
    arxiv_server.faults.add("query", "status", status=503, body=b"down")
    arxiv_server.rate_limit()
    got = fetch(arxiv_server, ["2301.00001"])
    assert got.statuses == {"2301.00001": "ok"} and got.requests["arxiv"] == 4


def test_retry_after_longer_than_we_may_wait_stops_arxiv_for_the_run(
        arxiv_server: FakeArxiv) -> None:
    ids = ["2301.00001", "2301.00002", "2301.00003", "2301.00004"]
    add_titled(arxiv_server, ids)
    arxiv_server.rate_limit(retry_after=3600)
    t0 = time.monotonic()
    got = fetch(arxiv_server, ids, arxiv__batch_size=2)
    assert time.monotonic() - t0 < 1
    assert got.requests["arxiv"] == 1
    assert got.statuses == dict.fromkeys(ids, "missing")  # not attempted; nothing failed
    assert set(got.messages) == set(ids)
    assert "3600" in got.messages["2301.00001"]


def test_plain_text_rate_exceeded_with_200_is_retried(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.faults.add("query", "garbage", body=b"Rate exceeded.",
                            headers={"Content-Type": "text/plain"})
    got = fetch(arxiv_server, ["2301.00001"])
    assert got.statuses == {"2301.00001": "ok"}
    assert got.requests["arxiv"] == 2


@pytest.mark.parametrize("kind,kw", [
    ("status", {"status": 503, "body": b"Service Unavailable"}),
    ("status", {"status": 502, "body": b"<html>bad gateway</html>"}),
    ("reset", {}),
    ("garbage", {}),
    ("truncate", {}),
])
def test_transient_fault_is_retried_once_and_succeeds(arxiv_server: FakeArxiv, kind: str,
                                                      kw: dict[str, Any]) -> None:
    ids = ["2301.00001"]  # one id: an unparsed reply must not pass as "not found"
    add_titled(arxiv_server, ids)
    arxiv_server.faults.add("query", kind, **kw)
    got = fetch(arxiv_server, ids)
    assert got.statuses == dict.fromkeys(ids, "ok")
    assert got.requests["arxiv"] == 2 == arxiv_server.count("query")


def test_feed_cut_short_with_a_complete_http_reply_is_retried(arxiv_server: FakeArxiv) -> None:
    # The arxiv parser recovers from broken XML: without our check this reply would
    # give a paper with one author instead of three.
    authors = ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    arxiv_server.add_paper("2301.00001", title="Cut", authors=authors)
    _, whole = arxiv_server.answer({"id_list": ["2301.00001"], "max_results": ["1"]})
    cut = whole.index(b"</author>") + len(b"</author>")
    arxiv_server.faults.add("query", "garbage", body=whole[:cut],
                            headers={"Content-Type": "application/atom+xml"})
    got = fetch(arxiv_server, ["2301.00001"])
    assert got.papers["2301.00001"].authors == authors
    assert got.requests["arxiv"] == 2


def test_a_short_page_is_judged_from_its_own_entries_and_no_second_page_is_asked(
        arxiv_server: FakeArxiv) -> None:
    # totalResults above the entries served: a batch is one page of max_results = its size,
    # so every id asked for is an entry, an Error entry or absent (not found); asking for a
    # "next page" of an id_list would cost a request per batch for nothing
    ids = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, ids)
    _, whole = arxiv_server.answer({"id_list": [",".join(ids)], "max_results": ["3"]})
    first = whole.index(b"</entry>") + len(b"</entry>\n")
    arxiv_server.faults.add("query", "garbage", body=whole[:first] + b"</feed>\n",
                            headers={"Content-Type": "application/atom+xml"})
    got = fetch(arxiv_server, ids)
    served = next(i for i in ids if got.statuses[i] == "ok")
    assert got.statuses == {i: "ok" if i == served else "not_found" for i in ids}
    assert got.requests["arxiv"] == 1


def test_hang_is_cut_by_the_timeout_and_retried(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.faults.add("query", "hang", seconds=5)
    t0 = time.monotonic()
    got = fetch(arxiv_server, ["2301.00001"], http__timeout=0.3)
    assert time.monotonic() - t0 < 2
    assert got.statuses == {"2301.00001": "ok"}
    assert got.requests["arxiv"] == 2


def test_hangs_until_retries_run_out_end_in_failed_within_seconds(arxiv_server: FakeArxiv) -> None:
    arxiv_server.faults.add("query", "hang", times=3, seconds=5)
    t0 = time.monotonic()
    got = fetch(arxiv_server, ["2301.00001"], http__timeout=0.3, http__max_retries=1)
    assert time.monotonic() - t0 < 2
    assert got.requests["arxiv"] == 2
    assert got.statuses == {"2301.00001": "error"}
    assert "timed out after 0.3 s" in got.messages["2301.00001"]
    assert "2 attempts" in got.messages["2301.00001"]


def test_retries_exhausted_fail_the_batch_and_skip_later_batches(arxiv_server: FakeArxiv) -> None:
    ids = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, ids)
    arxiv_server.faults.add("query", "status", times=3, status=503, body=b"down")
    got = fetch(arxiv_server, ids, arxiv__batch_size=2, http__max_retries=2)
    assert got.requests["arxiv"] == 3 == arxiv_server.count("query")
    assert got.statuses == {"2301.00001": "error", "2301.00002": "error",
                            "2301.00003": "missing"}
    msg = got.messages["2301.00001"]
    assert got.messages["2301.00002"] == msg
    assert "HTTP 503" in msg and "3 attempts" in msg
    assert f"{arxiv_server.api_url} " in msg and "id_list" not in msg
    assert "not attempted" in got.messages["2301.00003"]


def test_connection_resets_until_retries_run_out_end_in_failed(arxiv_server: FakeArxiv) -> None:
    arxiv_server.faults.add("query", "reset", times=5)
    got = fetch(arxiv_server, ["2301.00001"], http__max_retries=4)
    assert got.requests["arxiv"] == 5
    assert got.statuses == {"2301.00001": "error"}
    assert "connection failed" in got.messages["2301.00001"]
    assert "5 attempts" in got.messages["2301.00001"]


def test_reply_larger_than_max_bytes_fails_without_retry(arxiv_server: FakeArxiv) -> None:
    ids = arxiv_server.add_synthetic(20)
    got = fetch(arxiv_server, ids, http__max_bytes=2000)
    assert got.requests["arxiv"] == 1
    assert got.statuses == dict.fromkeys(ids, "error")
    assert "http.max_bytes" in got.messages[ids[0]]


# -- credentials, spacing, concurrency ---------------------------------------------------------


def test_no_authorization_header_ever_reaches_arxiv(arxiv_server: FakeArxiv, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    host = "127.0.0.1"
    netrc = Path.home() / ".netrc"
    netrc.write_text(f"machine {host} login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_token_value")
    add_titled(arxiv_server, ["2301.00001"])
    cfg = arxiv_config(arxiv_server)
    cfg.token = "ghp_secret_token_value"
    got = fetch_ids(cfg, ["2301.00001"])
    assert got.statuses == {"2301.00001": "ok"}
    (req,) = arxiv_server.requests
    assert req.credential == "anon"
    assert not any(k.lower() == "authorization" for k in req.headers)
    assert "ghp_secret" not in repr(req.headers) and "hunter2" not in repr(req.headers)
    assert req.headers["User-Agent"] == USER_AGENT  # names the tool, its version, its home
    assert PROJECT_URL in USER_AGENT and USER_AGENT.startswith("enrich/")


def test_requests_start_at_least_min_interval_apart(arxiv_server: FakeArxiv) -> None:
    ids = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, ids)
    got = fetch(arxiv_server, ids, arxiv__batch_size=1, arxiv__min_interval=1.0)
    assert got.statuses == dict.fromkeys(ids, "ok")
    starts = [r.time for r in arxiv_server.requests]
    assert len(starts) == 3
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts)), starts


def test_arxiv_sees_one_request_at_a_time_on_one_connection_batches_in_order(
        arxiv_server: FakeArxiv) -> None:
    # However replies are parsed meanwhile, arXiv sees one request at a time, on one
    # connection, batches in order.
    ids = arxiv_server.add_synthetic(120)
    arxiv_server.latency = 0.02
    got = fetch(arxiv_server, ids, arxiv__batch_size=20)
    assert got.requests["arxiv"] == 6 == arxiv_server.count("query")
    assert got.statuses == dict.fromkeys(ids, "ok")
    assert arxiv_server.peak_answering == 1
    assert len(arxiv_server.client_ports) == 1
    assert arxiv_server.id_lists() == [ids[n:n + 20] for n in range(0, 120, 20)]


def test_a_batch_in_trouble_holds_back_the_next_batch(arxiv_server: FakeArxiv) -> None:
    # While one batch is retried the next one may not start: a failing API sees one
    # batch retried, then nothing, though an earlier batch went through.
    ids = ["2301.00001", "2301.00002", "2301.00003"]
    add_titled(arxiv_server, ids)
    arxiv_server.faults.add("query", "slow", seconds=0.0)  # the first request goes through
    arxiv_server.faults.add("query", "status", times=3, status=503, body=b"down")
    got = fetch(arxiv_server, ids, arxiv__batch_size=1, http__max_retries=2)
    assert got.requests["arxiv"] == 4 == arxiv_server.count("query")
    assert got.statuses == {"2301.00001": "ok", "2301.00002": "error", "2301.00003": "missing"}
    assert "HTTP 503" in got.messages["2301.00002"]
    assert "3 attempts" in got.messages["2301.00002"]
    assert arxiv_server.peak_answering == 1


def test_two_enrichers_in_one_process_share_the_spacing(arxiv_server: FakeArxiv,
                                                        tmp_path: Path) -> None:
    add_titled(arxiv_server, ["2301.00001", "2301.00002"])
    cfg = arxiv_config(arxiv_server, arxiv__min_interval=0.4)

    async def both() -> tuple[Fetched, Fetched]:
        return await asyncio.gather(
            afetch_ids(cfg, ["2301.00001"], store_path=tmp_path / "a.sqlite3"),
            afetch_ids(cfg, ["2301.00002"], store_path=tmp_path / "b.sqlite3"))

    ra, rb = asyncio.run(both())
    assert ra.statuses == {"2301.00001": "ok"} and rb.statuses == {"2301.00002": "ok"}
    t1, t2 = sorted(r.time for r in arxiv_server.requests)
    assert t2 - t1 >= 0.4


def test_fetch_runs_off_the_event_loop(arxiv_server: FakeArxiv) -> None:
    add_titled(arxiv_server, ["2301.00001"])
    arxiv_server.latency = 0.3
    cfg = arxiv_config(arxiv_server)
    ticks = 0

    async def ticker(done: asyncio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> Fetched:
        done = asyncio.Event()
        tick = asyncio.create_task(ticker(done))
        try:
            return await afetch_ids(cfg, ["2301.00001"])
        finally:
            done.set()
            await tick

    got = asyncio.run(main())
    assert got.statuses == {"2301.00001": "ok"}
    assert ticks >= 10


def test_cancelling_resolve_stops_arxiv_before_its_next_request(arxiv_server: FakeArxiv) -> None:
    retry_after = 1.0
    arxiv_server.rate_limit(retry_after=retry_after)  # the first answer asks for a retry
    cfg = arxiv_config(arxiv_server, http__backoff_max=5)

    async def main() -> None:
        async with open_enricher(cfg) as enricher:
            task = asyncio.create_task(enricher.resolve(["2301.00001"], []))
            await wait_for_requests(arxiv_server, 1, endpoint="query")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    first = arxiv_server.requests[0]
    assert first.fault == "status"  # answered 429 with Retry-After: 1
    # A NEGATIVE check, so bounded by time: a fetch that outlived its cancellation would
    # have asked again once Retry-After had passed, counted from the fake's own clock.
    # Nothing to wait for once that moment (plus a margin) is behind us.
    time.sleep(max(0.0, first.time + retry_after + 0.3 - time.time()))
    assert arxiv_server.count("query") == 1, [r.time - first.time for r in arxiv_server.requests]


# -- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize("key,sent", [
    ("2305.09781", "2305.09781"), ("2305.09781v3", "2305.09781"),
    ("math.GT/0309136", "math/0309136"), ("hep-th/9901001v2", "hep-th/9901001"),
    ("weird", "weird"), ("a b", None), ("", None), ("1,2", None),
])
def test_canonical_query_id(key: str, sent: str | None) -> None:
    assert canonical_query_id(key) == sent


@pytest.mark.parametrize("entry_id,expected", [
    ("http://arxiv.org/abs/2305.09781v2", ("2305.09781", "v2")),
    ("https://arxiv.org/abs/math/0309136v1", ("math/0309136", "v1")),
    ("http://arxiv.org/abs/1707.08567", ("1707.08567", None)),
])
def test_split_entry_id(entry_id: str, expected: tuple[str, str | None]) -> None:
    assert split_entry_id(entry_id) == expected


def test_clean_abstract_unwraps_lines_but_keeps_paragraphs() -> None:
    wrapped = "  We study X\nand Y.\n  We also\tfind Z.\n\n\nDone.  "
    assert clean_abstract(wrapped) == "We study X and Y.\n\nWe also find Z.\n\nDone."


def test_an_arxiv_release_without_its_feed_parser_fails_loudly_at_import(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # enrich reads feeds with arxiv._feed.parse (not part of the package's documented
    # client; the version range is pinned): if a release moves it, enrich must refuse to
    # start rather than misread feeds
    import arxiv

    from enrich.fetch import arxiv_http

    assert arxiv_http._feed_parser() is arxiv._feed.parse
    monkeypatch.delattr(arxiv._feed, "parse")
    with pytest.raises(ImportError, match=r"arxiv>=4\.0,<4\.1"):
        arxiv_http._feed_parser()
