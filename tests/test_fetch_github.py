"""GithubFetcher against the fake GitHub API: request counts, verdicts, retries, limits, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from fakeapi.github import SECONDARY_MESSAGE, FakeGitHub, github_config, running_fake_github
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich._version import USER_AGENT
from enrich.config import Config
from enrich.fetch import FetchResult
from enrich.fetch.github import GithubFetcher, build_graphql_query, split_key
from enrich.fetch.policy import credential_id, github_rate_limit
from enrich.models import Repo

TOKEN = "tok-SECRET-7f3a9c21e5"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fetch(cfg: Config, keys: list[str], etags: dict[str, str] | None = None
          ) -> FetchResult[Repo]:
    async def go() -> FetchResult[Repo]:
        async with GithubFetcher(cfg) as f:
            return await f.fetch(keys, etags)
    return run(go())


@pytest.fixture
def other_host() -> Iterator[FakeGitHub]:
    """A second server standing for a foreign host a redirect might point to."""
    with running_fake_github() as srv:
        yield srv


def _leaks(text: str) -> bool:
    return TOKEN in text or TOKEN[4:] in text


# -- GraphQL (with a token) ---------------------------------------------------------------


def test_graphql_250_repos_take_3_requests(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(250)
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert github_server.count(endpoint="graphql") == 3
    assert github_server.count(endpoint="rest") == 0
    assert res.requests == 3
    assert set(res.records) == set(keys) and not res.failed and not res.missing
    rec = res.records["synth-owner-7/repo-7.x"]
    assert rec.status == "ok" and rec.full_name == "Synth-Owner-7/Repo-7.x"
    assert rec.stars == 70 and rec.forks == 7 and rec.language == "Python"
    assert rec.license is not None and rec.license.spdx_id == "MIT"
    assert rec.topics == ["synthetic", "t0"] and rec.renamed_from is None
    assert rec.html_url == "https://github.com/Synth-Owner-7/Repo-7.x"
    bodies = [r.body.decode() for r in github_server.requests]
    assert all("repositoryTopics(first: 20)" in b for b in bodies)
    assert not res.etags and not res.not_modified


def test_graphql_batch_size_is_configurable(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(25)
    res = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert res.requests == github_server.count(endpoint="graphql") == 3
    assert len(res.records) == 25


def test_graphql_queries_go_one_at_a_time_in_order(github_server: FakeGitHub) -> None:
    # The next query is sent while an answer is turned into records, never while
    # one is still on the wire.
    github_server.tokens[TOKEN] = "alice"
    github_server.latency = 0.02
    keys = github_server.add_synthetic(50)
    res = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert res.requests == github_server.count(endpoint="graphql") == 5
    assert len(res.records) == 50 and not res.failed and not res.missing
    assert github_server.peak_answering == 1 and github_server.max_inflight == 1
    firsts = [json.loads(r.body)["variables"]["o0"] for r in github_server.requests]
    assert firsts == [keys[n].split("/")[0] for n in range(0, 50, 10)]


def test_graphql_next_query_is_written_before_the_answer_in_hand_is_read(
        github_server: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx yields several times before it writes a request: the records of an answer
    # wait until httpcore reports the next query's body written (its trace extension),
    # instead of delaying every query by their time.
    import enrich.fetch.github as gh
    monkeypatch.setattr(gh, "_SEND_WAIT", 30.0)  # a lost signal must not pass by timeout
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(30)
    signals: list[asyncio.Future[None]] = []
    seen: list[list[bool]] = []
    send, records = GithubFetcher._send, GithubFetcher._graphql_records

    async def spy_send(self: GithubFetcher, *args: Any) -> Any:
        if len(args) == 6 and args[5] is not None:
            signals.append(args[5])
        return await send(self, *args)

    def spy_records(self: GithubFetcher, *args: Any) -> Any:
        seen.append([s.done() for s in signals])
        return records(self, *args)

    monkeypatch.setattr(GithubFetcher, "_send", spy_send)
    monkeypatch.setattr(GithubFetcher, "_graphql_records", spy_records)
    res = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert len(res.records) == 30 and res.requests == 3
    assert seen == [[True], [True, True], [True, True]]


def test_graphql_answer_spending_the_quota_sends_nothing_more(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(30)
    github_server.exhaust(TOKEN, reset_in=3600, resource="graphql")
    with github_server._state:  # one point left: the first query spends it
        github_server._bucket(TOKEN, "graphql").used -= 1
    res = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert res.requests == 1 == github_server.count()
    assert len(res.records) == 10 and set(res.missing) == set(keys[10:])
    assert res.rate_limit_reset is not None


def test_graphql_aliases_are_valid_names_for_dashed_repos() -> None:
    query, variables = build_graphql_query([("a-b", "c.d-e"), ("x", "y")])
    aliases = re.findall(r"(\w+): repository\(", query)
    assert aliases == ["r0", "r1"]
    assert variables == {"o0": "a-b", "n0": "c.d-e", "o1": "x", "n1": "y"}
    assert "a-b" not in query  # data travels as variables, never as query syntax


def test_graphql_renamed_repo_gets_new_name_and_renamed_from(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("oldowner/oldname", stars=3)
    github_server.rename("oldowner/oldname", "NewOwner/NewName")
    res = fetch(github_config(github_server, token=TOKEN), ["oldowner/oldname"])
    rec = res.records["oldowner/oldname"]
    assert rec.full_name == "NewOwner/NewName" and rec.renamed_from == "oldowner/oldname"
    assert rec.stars == 3


def test_graphql_display_case_alone_is_not_a_rename(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("FlexFlow/FlexFlow")
    rec = fetch(github_config(github_server, token=TOKEN), ["flexflow/flexflow"]).records[
        "flexflow/flexflow"]
    assert rec.full_name == "FlexFlow/FlexFlow" and rec.renamed_from is None


def test_graphql_not_found_alias_does_not_fail_others(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(3)
    res = fetch(github_config(github_server, token=TOKEN), [keys[0], "gone/away", keys[2]])
    assert res.records["gone/away"].status == "not_found"
    assert res.records[keys[0]].status == res.records[keys[2]].status == "ok"
    assert not res.failed and res.requests == 1


def test_graphql_blocked_repo_is_unavailable(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    res = fetch(github_config(github_server, token=TOKEN), ["dmca/thing"])
    assert res.records["dmca/thing"].status == "unavailable"
    assert res.requests == 1


def test_graphql_unknown_alias_error_asks_rest_instead(github_server: FakeGitHub) -> None:
    """How GraphQL shows a DMCA block is unverified: an unknown error falls back to REST."""
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    github_server.add_repo("fine/one")
    github_server.graphql_errors["dmca/thing"] = "FORBIDDEN"
    res = fetch(github_config(github_server, token=TOKEN), ["dmca/thing", "fine/one"])
    assert res.records["dmca/thing"].status == "unavailable"
    assert res.records["fine/one"].status == "ok"
    rest = [r for r in github_server.requests if r.endpoint == "rest"]
    assert [r.path for r in rest] == ["/repos/dmca/thing"]
    assert rest[0].credential == TOKEN  # same host as api_url: the token may go there
    assert res.requests == 2


def test_graphql_bad_token_fails_all_keys_once(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(250)  # no valid tokens at all
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert github_server.count() == 1 and res.requests == 1
    assert set(res.failed) == set(keys) and not res.records
    assert all(m.startswith("GitHub rejected the token (401)") for m in res.failed.values())
    assert not any(_leaks(m) for m in res.failed.values())


@pytest.mark.parametrize("error_type", ["RATE_LIMITED", "RATE_LIMIT"])
def test_graphql_primary_limit_exhausted_reports_missing_and_reset(
        github_server: FakeGitHub, error_type: str) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.graphql_ratelimit_type = error_type
    keys = github_server.add_synthetic(150)
    github_server.exhaust(TOKEN, reset_in=3600, resource="graphql")
    started = time.monotonic()
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert time.monotonic() - started < 1.5
    assert res.requests == 1 and github_server.count() == 1
    assert set(res.missing) == set(keys) and not res.records and not res.failed
    assert res.rate_limit_reset is not None
    assert res.rate_limit_reset.timestamp() > time.time() + 3000
    assert "resets at" in next(iter(res.missing.values()))


def test_graphql_secondary_limit_then_success(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(5)
    github_server.secondary_limit(1, retry_after=0.2, endpoint="graphql")
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert len(res.records) == 5 and res.requests == 2


def test_graphql_server_errors_are_retried(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(5)
    github_server.faults.add("graphql", "status", status=502)
    github_server.faults.add("graphql", "garbage")
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert len(res.records) == 5 and res.requests == 3


def test_graphql_resource_limit_error_fails_batch_without_retry(
        github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.graphql_max_aliases = 2
    keys = github_server.add_synthetic(3)
    res = fetch(github_config(github_server, token=TOKEN), keys)
    assert set(res.failed) == set(keys) and res.requests == 1
    assert "Resource limits" in res.failed[keys[0]]


# -- REST (no token) ------------------------------------------------------------------------


def test_rest_250_cold_then_250_conditional_all_304(github_server: FakeGitHub) -> None:
    github_server.anon_limit = 10_000
    keys = github_server.add_synthetic(250)
    cfg = github_config(github_server)
    cold = fetch(cfg, keys)
    assert cold.requests == 250 == github_server.count(endpoint="rest")
    assert github_server.count_status(200) == 250
    assert set(cold.records) == set(keys) and set(cold.etags) == set(keys)
    github_server.reset_log()
    warm = fetch(cfg, keys, cold.etags)
    assert warm.requests == 250 == github_server.count(endpoint="rest")
    assert github_server.count_status(304) == 250
    assert warm.not_modified == set(keys) and not warm.records and not warm.failed
    # the ETag went back exactly as received (weak prefix and quotes included)
    sent = {r.path: r.headers.get("If-None-Match") for r in github_server.requests}
    assert sent["/repos/synth-owner-3/repo-3.x"] == cold.etags["synth-owner-3/repo-3.x"]


def test_rest_changed_repo_answers_200_to_old_etag(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", stars=1)
    cfg = github_config(github_server)
    first = fetch(cfg, ["o/r"])
    github_server.set_stars("o/r", 42)
    second = fetch(cfg, ["o/r"], first.etags)
    assert second.records["o/r"].stars == 42 and not second.not_modified
    assert second.etags["o/r"] != first.etags["o/r"]


def test_rest_etag_of_another_credential_is_not_honoured(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("o/r", stars=5)
    their_etag = github_server.etag_for("o/r", TOKEN)
    res = fetch(github_config(github_server), ["o/r"], {"o/r": their_etag})
    assert res.records["o/r"].stars == 5 and not res.not_modified
    assert res.etags["o/r"] != their_etag


def test_rest_301_is_followed_to_the_new_name(github_server: FakeGitHub) -> None:
    repo = github_server.add_repo("old/name", stars=8)
    github_server.rename("old/name", "Fresh/Name")
    res = fetch(github_config(github_server), ["old/name"])
    rec = res.records["old/name"]
    assert rec.full_name == "Fresh/Name" and rec.renamed_from == "old/name" and rec.stars == 8
    assert [r.path for r in github_server.requests] == [
        "/repos/old/name", f"/repositories/{repo.id}"]
    assert res.requests == 2 and "old/name" in res.etags


def test_rest_renamed_repo_revalidates_to_304(github_server: FakeGitHub) -> None:
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    cfg = github_config(github_server)
    first = fetch(cfg, ["old/name"])
    second = fetch(cfg, ["old/name"], first.etags)
    assert second.not_modified == {"old/name"}


def test_cross_host_redirect_is_not_followed_and_token_stays_home(
        github_server: FakeGitHub, other_host: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    github_server.redirect_base = other_host.url
    github_server.graphql_errors["old/name"] = "FORBIDDEN"  # push it through REST, with token
    other_host.add_repo("Fresh/Name")
    with_token = fetch(github_config(github_server, token=TOKEN), ["old/name"])
    anonymous = fetch(github_config(github_server), ["old/name"])
    for res in (with_token, anonymous):
        assert "old/name" in res.failed and "another host" in res.failed["old/name"]
        assert not res.records
    assert other_host.count() == 0
    assert all(not _leaks(str(r.headers)) for r in other_host.requests)


def test_rest_404_and_451_are_definitive_records(github_server: FakeGitHub) -> None:
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    res = fetch(github_config(github_server), ["no/such", "dmca/thing"])
    assert res.records["no/such"].status == "not_found"
    assert res.records["dmca/thing"].status == "unavailable"
    assert res.records["no/such"].fetched_at is not None
    assert res.requests == 2 and not res.failed


@pytest.mark.parametrize("status", [401, 404, 422, 451])
def test_final_statuses_are_never_retried(github_server: FakeGitHub, status: int) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=status)
    res = fetch(github_config(github_server), ["o/r"])
    assert res.requests == 1 and github_server.count() == 1


def test_plain_403_is_not_a_rate_limit_and_not_retried(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=403,
                             body=b'{"message": "Resource not accessible by integration"}')
    res = fetch(github_config(github_server), ["o/r"])
    assert res.requests == 1 and "403" in res.failed["o/r"] and not res.missing


def test_rest_500_503_then_success(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", stars=2)
    github_server.faults.add("rest", "status", status=500)
    github_server.faults.add("rest", "status", status=503)
    res = fetch(github_config(github_server), ["o/r"])
    assert res.records["o/r"].stars == 2 and res.requests == 3


def test_rest_transient_errors_exhaust_retries_then_fail(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", times=10, status=503)
    res = fetch(github_config(github_server, http__max_retries=2), ["o/r"])
    assert res.requests == 3 and "after 3 attempts" in res.failed["o/r"]
    assert not res.missing and not res.records


def test_rest_connection_reset_then_success(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "reset")
    github_server.faults.add("rest", "truncate", body=b'{"id": 1, "full')
    res = fetch(github_config(github_server), ["o/r"])
    assert res.records["o/r"].status == "ok" and res.requests == 3


def test_rest_hang_is_cut_by_the_timeout(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "hang", seconds=3)
    started = time.monotonic()
    res = fetch(github_config(github_server, http__timeout=0.3), ["o/r"])
    assert time.monotonic() - started < 2
    assert res.records["o/r"].status == "ok" and res.requests == 2


def test_rest_garbage_json_is_retried(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "garbage")  # truncated JSON
    github_server.faults.add("rest", "garbage", body=b'{"unexpected": true}',
                             headers={"Content-Type": "application/json"})
    res = fetch(github_config(github_server), ["o/r"])
    assert res.records["o/r"].status == "ok" and res.requests == 3


def test_rest_body_over_max_bytes_fails_the_key(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", description="x" * 5000)
    github_server.add_repo("o/small")
    res = fetch(github_config(github_server, http__max_bytes=4000), ["o/r", "o/small"])
    assert "max_bytes" in res.failed["o/r"] and res.records["o/small"].status == "ok"
    assert res.requests == 2


def test_rest_record_fields(github_server: FakeGitHub) -> None:
    github_server.add_repo("Some/Thing", stars=12, forks=3, license="other", homepage="",
                           topics=["a", "b"], language=None, archived=True, fork=True,
                           description="desc", pushed_at="2025-02-03T04:05:06Z")
    github_server.add_repo("Some/Bare", license=None, homepage="https://x.example")
    res = fetch(github_config(github_server), ["some/thing", "some/bare"])
    rec = res.records["some/thing"]
    assert rec.full_name == "Some/Thing" and rec.html_url == "https://github.com/Some/Thing"
    assert (rec.stars, rec.forks, rec.archived, rec.fork) == (12, 3, True, True)
    assert rec.license is not None and rec.license.name == "Other"
    assert rec.license.spdx_id is None  # NOASSERTION is not an SPDX id
    assert rec.homepage is None and rec.language is None and rec.topics == ["a", "b"]
    assert rec.pushed_at == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert rec.fetched_at is not None and rec.fetched_at.tzinfo is not None
    bare = res.records["some/bare"]
    assert bare.license is None and bare.homepage == "https://x.example"


def test_requests_carry_user_agent_accept_and_api_version(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    fetch(github_config(github_server), ["o/r"])
    (req,) = github_server.requests
    assert req.headers["User-Agent"] == USER_AGENT
    assert req.headers["Accept"] == "application/vnd.github+json"
    assert req.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert "Authorization" not in req.headers and req.credential == "anon"


# -- rate limits -------------------------------------------------------------------------------


def test_secondary_limit_with_retry_after_waits_that_long(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.secondary_limit(1, retry_after=1)
    started = time.monotonic()
    res = fetch(github_config(github_server, github__secondary_wait=30), ["o/r"])
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0  # Retry-After, not secondary_wait (30 s)
    assert res.records["o/r"].status == "ok" and res.requests == 2


def test_secondary_limit_without_retry_after_waits_secondary_wait(
        github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.secondary_limit(1, status=429)
    started = time.monotonic()
    res = fetch(github_config(github_server, github__secondary_wait=0.4), ["o/r"])
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 2.0
    assert res.records["o/r"].status == "ok" and res.requests == 2


def test_body_only_throttle_is_detected(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=403, body=(
        b'{"message": "You have triggered an abuse detection mechanism / rate limit."}'))
    res = fetch(github_config(github_server), ["o/r"])
    assert res.records["o/r"].status == "ok" and res.requests == 2


def test_remaining_zero_waits_until_reset_then_succeeds(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.exhaust("anon", reset_in=1)

    async def go() -> FetchResult[Repo]:
        async with GithubFetcher(github_config(github_server, github__max_wait=3)) as f:
            f.reset_margin = 0.05
            return await f.fetch(["o/r"])

    started = time.monotonic()
    res = run(go())
    assert time.monotonic() - started < 2.6
    assert res.records["o/r"].status == "ok" and res.requests == 2
    assert res.rate_limit_reset is None and not res.missing


def test_exhausted_primary_limit_stops_all_fetching(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(10)
    github_server.exhaust("anon", reset_in=3600)

    async def go() -> tuple[FetchResult[Repo], FetchResult[Repo]]:
        async with GithubFetcher(github_config(github_server, github__concurrency=1)) as f:
            return await f.fetch(keys), await f.fetch(["another/one"])

    started = time.monotonic()
    first, later = run(go())
    assert time.monotonic() - started < 1.5
    assert first.requests == 1 == github_server.count()
    assert set(first.missing) == set(keys) and not first.failed and not first.records
    assert first.rate_limit_reset is not None
    assert first.rate_limit_reset.timestamp() > time.time() + 3000
    msg = first.missing[keys[0]]
    assert "resets at" in msg and first.rate_limit_reset.strftime("%H:%M:%S") in msg
    # the same fetcher (one run) sends nothing more until the reset
    assert later.requests == 0 and set(later.missing) == {"another/one"}


def test_quota_spent_midway_stops_without_a_wasted_request(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(6)
    github_server.anon_limit = 3
    res = fetch(github_config(github_server, github__concurrency=1), keys)
    assert res.requests == 3 == github_server.count()
    assert len(res.records) == 3 and len(res.missing) == 3
    assert github_server.count_status(403) == 0


def test_max_wait_budget_bounds_the_whole_fetch(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(8)
    github_server.secondary_limit(50)  # no Retry-After: secondary_wait, then doubling
    cfg = github_config(github_server, github__secondary_wait=0.3, github__max_wait=1.0,
                        http__max_retries=10)
    started = time.monotonic()
    res = fetch(cfg, keys)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.5  # waited 0.3 + 0.6; the next 1.2 s did not fit
    assert set(res.missing) == set(keys) and not res.records
    assert "max_wait" in res.missing[keys[0]]


def test_retry_after_beyond_the_budget_stops_at_once(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(3)
    github_server.secondary_limit(5, retry_after=600)
    started = time.monotonic()
    res = fetch(github_config(github_server, github__concurrency=1), keys)
    assert time.monotonic() - started < 1.0
    assert set(res.missing) == set(keys) and res.requests == 1
    assert res.rate_limit_reset is not None


def test_endless_rate_limits_stop_after_max_retries(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(3)
    github_server.secondary_limit(50, retry_after=0)
    res = fetch(github_config(github_server, github__concurrency=1, http__max_retries=2), keys)
    assert res.requests == 3 and set(res.missing) == set(keys)
    assert "in a row" in res.missing[keys[0]]


@pytest.mark.parametrize(("status", "headers", "message", "expect"), [
    (403, {}, "Resource not accessible by integration", None),
    (404, {"x-ratelimit-remaining": "0"}, "Not Found", None),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "4102444800"},
     "API rate limit exceeded for 1.2.3.4.", (True, "reset")),
    (403, {"retry-after": "30", "x-ratelimit-remaining": "12"}, SECONDARY_MESSAGE,
     (False, 30.0)),
    (429, {}, "", (False, None)),
    (403, {}, "API rate limit exceeded for user ID 1.", (False, None)),  # body-only
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "4102444800"},
     SECONDARY_MESSAGE, (False, "reset")),
])
def test_rate_limit_classification(status: int, headers: dict[str, str], message: str,
                                   expect: tuple[bool, Any] | None) -> None:
    got = github_rate_limit(status, headers, message, now=4102444000.0)
    if expect is None:
        assert got is None
        return
    assert got is not None and got.primary is expect[0]
    if expect[1] == "reset":
        assert got.wait == 800.0 and got.until_reset
    else:
        assert got.wait == expect[1] and not got.until_reset


def test_concurrency_never_exceeds_the_setting(github_server: FakeGitHub) -> None:
    github_server.anon_limit = 1000
    keys = github_server.add_synthetic(40)
    github_server.latency = 0.03
    res = fetch(github_config(github_server, github__concurrency=3), keys)
    assert len(res.records) == 40
    assert github_server.max_inflight == 3


# -- safety ------------------------------------------------------------------------------------

MALICIOUS = ["../x", "a/b%2F..", "a/..", "a/.", "..%2f../x", "a/b/c", "a/b?x=1", "a/b#f",
             "a /b", "-a/b", "a-/b", "a--b/c", "a/b\n", "/a", "a/", "", "a/b/../../admin",
             "a/%2e%2e", "a\\b/c", "a/b c", "ａ/b"]


def test_malicious_keys_never_reach_the_server(github_server: FakeGitHub) -> None:
    github_server.add_repo("ok/repo")
    res = fetch(github_config(github_server), [*MALICIOUS, "ok/repo"])
    assert [r.path for r in github_server.requests] == ["/repos/ok/repo"]
    assert set(res.failed) == set(MALICIOUS) and res.requests == 1
    assert res.records["ok/repo"].status == "ok"


def test_malicious_keys_never_reach_graphql(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    res = fetch(github_config(github_server, token=TOKEN), MALICIOUS)
    assert github_server.count() == 0 and res.requests == 0
    assert set(res.failed) == set(MALICIOUS)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab-._/%2F\\?#. \n"), max_size=12))
def test_split_key_admits_only_owner_slash_repo(key: str) -> None:
    try:
        owner, repo = split_key(key)
    except ValueError:
        return
    assert f"{owner}/{repo}" == key
    assert re.fullmatch(r"[A-Za-z0-9](?:-?[A-Za-z0-9])*", owner)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", repo) and repo not in (".", "..")


def test_token_never_leaks(github_server: FakeGitHub, other_host: FakeGitHub,
                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(3)
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    github_server.redirect_base = other_host.url
    github_server.graphql_errors["old/name"] = "FORBIDDEN"
    github_server.faults.add("graphql", "status", status=502)
    github_server.secondary_limit(1, retry_after=0.1, endpoint="graphql")
    cfg = github_config(github_server, token=TOKEN)
    results = [fetch(cfg, [*keys, "gone/away", "old/name", "../x"])]
    github_server.exhaust(TOKEN, resource="graphql")
    results.append(fetch(cfg, keys))
    bad = github_config(github_server, token=TOKEN + "-revoked")
    results.append(fetch(bad, keys))
    for res in results:
        assert not _leaks(repr(res))
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}"
                     for r in caplog.records)
    assert caplog.records and not _leaks(text)
    fetcher = GithubFetcher(cfg)
    assert not _leaks(repr(fetcher)) and not _leaks(fetcher.credential)
    assert fetcher.credential == credential_id(TOKEN)
    run(fetcher.aclose())
    # the token travels only in the Authorization header, and only to the fake itself
    for req in github_server.requests:
        assert not _leaks(req.path + repr(req.query) + req.body.decode())
        extra = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}
        assert not _leaks(repr(extra))
    assert other_host.count() == 0


def test_token_is_offered_only_to_the_configured_origins(github_server: FakeGitHub) -> None:
    cfg = github_config(github_server, token=TOKEN,
                        github__graphql_url="https://graphql.example:8443/graphql")
    f = GithubFetcher(cfg)
    auth = f._authorization
    assert auth(httpx.URL(github_server.url + "/repositories/1"))
    assert auth(httpx.URL("https://graphql.example:8443/graphql"))
    for foreign in ("https://graphql.example/graphql",  # other port
                    "http://graphql.example:8443/graphql",  # other scheme
                    github_server.url.replace("127.0.0.1", "localhost") + "/repos/o/r",
                    "https://evil.example/repos/o/r"):
        assert auth(httpx.URL(foreign)) == {}, foreign
    run(f.aclose())


def test_given_client_is_used_left_open_and_never_auto_follows(
        github_server: FakeGitHub, other_host: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    github_server.redirect_base = other_host.url

    async def go() -> tuple[FetchResult[Repo], bool]:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            f = GithubFetcher(github_config(github_server), client)
            res = await f.fetch(["o/r", "old/name"])
            await f.aclose()
            return res, client.is_closed

    res, closed = run(go())
    assert not closed and res.records["o/r"].status == "ok"
    assert "another host" in res.failed["old/name"]
    assert other_host.count() == 0


def test_credential_identity() -> None:
    cfg = Config.load(env={})
    assert GithubFetcher(cfg).credential == "anon"
    cfg.token = TOKEN
    f = GithubFetcher(cfg)
    assert f.credential.startswith("tok-") and not _leaks(f.credential)
    assert f.mode == "graphql"


def test_a_name_longer_than_github_allows_is_not_found_without_a_request(
        github_server: FakeGitHub) -> None:
    github_server.add_repo("a/b")
    long_key = "o/" + "x" * 101
    res = fetch(github_config(github_server), [long_key, "a/b"])
    assert res.records[long_key].status == "not_found"
    assert res.records["a/b"].status == "ok"
    assert [r.path for r in github_server.requests] == ["/repos/a/b"]


def test_unreachable_github_stops_after_one_repository_instead_of_retrying_each() -> None:
    dead = FakeGitHub()  # bound, then closed: nothing listens on its port
    dead.server_close()
    cfg = github_config(dead, github__concurrency=2, http__max_retries=2)
    keys = [f"owner/repo{i}" for i in range(20)]
    res = fetch(cfg, keys)
    assert 1 <= len(res.failed) <= 2  # the repositories in flight when it gave up
    assert all("ConnectError" in m for m in res.failed.values())
    assert len(res.missing) == 20 - len(res.failed)
    assert all("cannot connect" in m for m in res.missing.values())
    assert res.requests <= 2 * 3  # two in flight, three attempts each at most


@pytest.mark.parametrize("env", [{}, {"SSL_CERT_FILE": "certifi"}])
def test_the_tls_context_built_ahead_is_the_one_httpx_would_build(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    from enrich.fetch.tls import tls_context

    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, certifi.where() if value == "certifi" else value)
    ours, theirs = tls_context(), httpx.create_ssl_context()
    assert ours.verify_mode == theirs.verify_mode == ssl.CERT_REQUIRED
    assert ours.check_hostname and theirs.check_hostname
    assert ours.cert_store_stats() == theirs.cert_store_stats()
    assert ours.cert_store_stats()["x509_ca"] > 50
    assert ours.options == theirs.options and ours.minimum_version == theirs.minimum_version
