"""GitHub fetching through the orchestrator against the fake GitHub API: request counts,
verdicts, retries, limits, secrecy. Each test runs ``Enricher.resolve`` (tests/harness.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fakeapi.github import SECONDARY_MESSAGE, FakeGitHub, github_config, running_fake_github
from harness import Fetched, fetch_ids, open_enricher, resolve_ids
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich import Enricher
from enrich._version import USER_AGENT
from enrich.config import Config
from enrich.errors import ConfigError
from enrich.fetch.github import build_graphql_query, split_key
from enrich.fetch.policy import credential_id, github_rate_limit

TOKEN = "tok-SECRET-7f3a9c21e5"


def fetch(cfg: Config, keys: list[str], *, refresh: bool = False) -> Fetched:
    """One run for ``keys``; a second run on the same cache with ``refresh`` revalidates
    (conditional requests with the ETags the first one cached)."""
    return fetch_ids(cfg, repo_keys=keys, refresh=refresh)


def reset_named(message: str) -> datetime:
    """The reset time a rate-limit message names ("... resets at 2025-01-02 03:04:05 UTC")."""
    m = re.search(r"resets at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", message)
    assert m is not None, message
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


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
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert github_server.count(endpoint="graphql") == 3
    assert github_server.count(endpoint="rest") == 0
    assert got.requests["github"] == 3
    assert got.statuses == dict.fromkeys(keys, "ok") and not got.messages
    rec = got.repos["synth-owner-7/repo-7.x"]
    assert rec.status == "ok" and rec.full_name == "Synth-Owner-7/Repo-7.x"
    assert rec.stars == 70 and rec.forks == 7 and rec.language == "Python"
    assert rec.license is not None and rec.license.spdx_id == "MIT"
    assert rec.topics == ["synthetic", "t0"] and rec.renamed_from is None
    assert rec.html_url == "https://github.com/Synth-Owner-7/Repo-7.x"
    bodies = [r.body.decode() for r in github_server.requests]
    assert all("repositoryTopics(first: 20)" in b for b in bodies)


def test_graphql_batch_size_is_configurable(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(25)
    got = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert got.requests["github"] == github_server.count(endpoint="graphql") == 3
    assert got.statuses == dict.fromkeys(keys, "ok")


def test_graphql_queries_go_one_at_a_time_in_order(github_server: FakeGitHub) -> None:
    # The next query may be sent while an answer is turned into records, never while
    # one is still on the wire.
    github_server.tokens[TOKEN] = "alice"
    github_server.latency = 0.02
    keys = github_server.add_synthetic(50)
    got = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert got.requests["github"] == github_server.count(endpoint="graphql") == 5
    assert got.statuses == dict.fromkeys(keys, "ok") and not got.messages
    assert github_server.peak_answering == 1 and github_server.max_inflight == 1
    firsts = [json.loads(r.body)["variables"]["o0"] for r in github_server.requests]
    assert firsts == [keys[n].split("/")[0] for n in range(0, 50, 10)]


def test_graphql_answer_spending_the_quota_sends_nothing_more(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(30)
    github_server.exhaust(TOKEN, reset_in=3600, resource="graphql")
    with github_server._state:  # one point left: the first query spends it
        github_server._bucket(TOKEN, "graphql").used -= 1
    got = fetch(github_config(github_server, token=TOKEN, github__batch_size=10), keys)
    assert got.requests["github"] == 1 == github_server.count()
    assert got.having("ok") == set(keys[:10])
    assert got.having("missing") == set(keys[10:]) == set(got.messages)
    assert reset_named(got.messages[keys[10]]).timestamp() > time.time() + 3000


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
    got = fetch(github_config(github_server, token=TOKEN), ["oldowner/oldname"])
    rec = got.repos["oldowner/oldname"]
    assert rec.full_name == "NewOwner/NewName" and rec.renamed_from == "oldowner/oldname"
    assert rec.stars == 3


def test_graphql_display_case_alone_is_not_a_rename(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("FlexFlow/FlexFlow")
    rec = fetch(github_config(github_server, token=TOKEN), ["flexflow/flexflow"]).repos[
        "flexflow/flexflow"]
    assert rec.full_name == "FlexFlow/FlexFlow" and rec.renamed_from is None


def test_graphql_not_found_alias_does_not_fail_others(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(3)
    got = fetch(github_config(github_server, token=TOKEN), [keys[0], "gone/away", keys[2]])
    assert got.statuses == {keys[0]: "ok", "gone/away": "not_found", keys[2]: "ok"}
    assert not got.messages and got.requests["github"] == 1


def test_graphql_blocked_repo_is_forbidden_and_rest_tells_the_451(
        github_server: FakeGitHub) -> None:
    # GraphQL reports a blocked repository as FORBIDDEN: only REST's 451 says why
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    got = fetch(github_config(github_server, token=TOKEN), ["dmca/thing"])
    assert got.statuses == {"dmca/thing": "unavailable"}
    assert [r.endpoint for r in github_server.requests] == ["graphql", "rest"]
    assert github_server.count_status(451) == 1


def test_graphql_blocked_repo_reported_not_found_is_not_found(
        github_server: FakeGitHub) -> None:
    # the other shape: NOT_FOUND, which GraphQL also gives a missing or private
    # repository; it is not worth a REST request per missing repository
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    github_server.graphql_blocked_type = "NOT_FOUND"
    got = fetch(github_config(github_server, token=TOKEN), ["dmca/thing"])
    assert got.statuses == {"dmca/thing": "not_found"} and got.requests["github"] == 1


def test_graphql_unknown_alias_error_asks_rest_instead(github_server: FakeGitHub) -> None:
    """How GraphQL shows a DMCA block is unverified: an unknown error falls back to REST."""
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    github_server.add_repo("fine/one")
    github_server.graphql_errors["dmca/thing"] = "FORBIDDEN"
    got = fetch(github_config(github_server, token=TOKEN), ["dmca/thing", "fine/one"])
    assert got.statuses == {"dmca/thing": "unavailable", "fine/one": "ok"}
    rest = [r for r in github_server.requests if r.endpoint == "rest"]
    assert [r.path for r in rest] == ["/repos/dmca/thing"]
    assert rest[0].credential == TOKEN  # same host as api_url: the token may go there
    assert got.requests["github"] == 2


def test_graphql_bad_token_is_a_config_error_after_one_request(
        github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(250)  # no valid tokens at all
    cfg = github_config(github_server, token=TOKEN)
    cfg.github.token_env = "MY_GH_TOKEN"
    with pytest.raises(ConfigError) as exc:
        fetch(cfg, keys)
    assert github_server.count() == 1
    assert str(exc.value) == ("GitHub rejected the token in MY_GH_TOKEN (HTTP 401): set a "
                              "valid token in MY_GH_TOKEN, or unset it to fetch without one")


@pytest.mark.parametrize("error_type", ["RATE_LIMITED", "RATE_LIMIT"])
def test_graphql_primary_limit_exhausted_reports_missing_and_reset(
        github_server: FakeGitHub, error_type: str) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.graphql_ratelimit_type = error_type
    keys = github_server.add_synthetic(150)
    github_server.exhaust(TOKEN, reset_in=3600, resource="graphql")
    started = time.monotonic()
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert time.monotonic() - started < 1.5
    assert got.requests["github"] == 1 and github_server.count() == 1
    assert got.statuses == dict.fromkeys(keys, "missing")  # not attempted; nothing failed
    assert reset_named(got.messages[keys[0]]).timestamp() > time.time() + 3000


def test_graphql_secondary_limit_then_success(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(5)
    github_server.secondary_limit(1, retry_after=0.2, endpoint="graphql")
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert got.statuses == dict.fromkeys(keys, "ok") and got.requests["github"] == 2


def test_graphql_server_errors_are_retried(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(5)
    github_server.faults.add("graphql", "status", status=502)
    github_server.faults.add("graphql", "garbage")
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert got.statuses == dict.fromkeys(keys, "ok") and got.requests["github"] == 3


@pytest.mark.parametrize("limit", ["nodes", "resources", "timeout"])
def test_graphql_query_too_big_is_split_in_halves_and_the_size_kept(
        github_server: FakeGitHub, limit: str, caplog: pytest.LogCaptureFixture) -> None:
    # before: one error for all 100 repositories of the batch, nothing retried smaller;
    # now: 100 -> 50 -> 25, then 25 per query for the rest of the run
    caplog.set_level(logging.INFO, logger="enrich.fetch.github")
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(150)
    if limit == "nodes":
        github_server.graphql_max_nodes = 25 * 21  # 1 + 20 topics per repository
    elif limit == "resources":
        github_server.graphql_resource_limit = 25
    else:
        github_server.graphql_slow_over = 25
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert got.statuses == dict.fromkeys(keys, "ok")
    sizes = [len(re.findall(r"repository\(", json.loads(r.body)["query"]))
             for r in github_server.requests]
    tries = 2 if limit == "timeout" else 1  # a 502 is believed when a retry gets one too
    assert sizes == [100] * tries + [50] * tries + [25] * 6
    said = [r.getMessage() for r in caplog.records if "per query from now on" in r.getMessage()]
    assert len(said) == 2 and "asking 25 per query" in said[1]
    assert github_server.invalid_queries == 0


def test_graphql_single_repository_too_big_fails_alone(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    keys = github_server.add_synthetic(2)
    github_server.graphql_max_nodes = 1
    got = fetch(github_config(github_server, token=TOKEN), keys)
    assert got.statuses == dict.fromkeys(keys, "error")
    assert got.requests["github"] == 3  # 2, then 1 and 1
    assert "MAX_NODE_LIMIT_EXCEEDED" in got.messages[keys[0]]


# -- REST (no token) ------------------------------------------------------------------------


def test_rest_250_cold_then_250_conditional_all_304(github_server: FakeGitHub) -> None:
    github_server.anon_limit = 10_000
    keys = github_server.add_synthetic(250)
    cfg = github_config(github_server)
    cold = fetch(cfg, keys)
    assert cold.requests["github"] == 250 == github_server.count(endpoint="rest")
    assert github_server.count_status(200) == 250
    assert cold.statuses == dict.fromkeys(keys, "ok")
    github_server.reset_log()
    warm = fetch(cfg, keys, refresh=True)
    assert warm.requests["github"] == 250 == github_server.count(endpoint="rest")
    assert github_server.count_status(304) == 250
    assert warm.statuses == dict.fromkeys(keys, "ok") and not warm.messages
    assert set(warm.origins.values()) == {"fetched"}
    assert all(warm.repos[k].model_dump(exclude={"fetched_at"})
               == cold.repos[k].model_dump(exclude={"fetched_at"}) for k in keys)
    # every request was conditional, the ETag sent back exactly as received (weak prefix
    # and quotes included)
    sent = {r.path: r.headers.get("If-None-Match") for r in github_server.requests}
    assert all(sent.values()) and len(sent) == 250
    assert sent["/repos/synth-owner-3/repo-3.x"] == github_server.etag_for(
        "synth-owner-3/repo-3.x")


def test_rest_changed_repo_answers_200_to_old_etag(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", stars=1)
    cfg = github_config(github_server)
    fetch(cfg, ["o/r"])
    old_etag = github_server.etag_for("o/r")
    github_server.set_stars("o/r", 42)
    second = fetch(cfg, ["o/r"], refresh=True)
    assert github_server.requests[-1].headers.get("If-None-Match") == old_etag
    assert second.repos["o/r"].stars == 42 and github_server.count_status(304) == 0
    # the new ETag replaced the old one: the next revalidation is answered 304
    third = fetch(cfg, ["o/r"], refresh=True)
    new_etag = github_server.requests[-1].headers.get("If-None-Match")
    assert new_etag == github_server.etag_for("o/r") != old_etag
    assert github_server.count_status(304) == 1 and third.repos["o/r"].stars == 42


def test_rest_etag_of_another_credential_is_never_sent(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("o/r", stars=5)
    github_server.graphql_errors["o/r"] = "FORBIDDEN"  # through REST with the token: its ETag
    fetch(github_config(github_server, token=TOKEN), ["o/r"])
    assert [r.credential for r in github_server.requests if r.endpoint == "rest"] == [TOKEN]
    their_etag = github_server.etag_for("o/r", TOKEN)
    github_server.reset_log()
    got = fetch(github_config(github_server), ["o/r"], refresh=True)
    (req,) = github_server.requests
    assert req.credential == "anon" and req.headers.get("If-None-Match") != their_etag
    assert got.repos["o/r"].stars == 5 and github_server.count_status(304) == 0


def test_rest_301_is_followed_to_the_new_name(github_server: FakeGitHub) -> None:
    repo = github_server.add_repo("old/name", stars=8)
    github_server.rename("old/name", "Fresh/Name")
    got = fetch(github_config(github_server), ["old/name"])
    rec = got.repos["old/name"]
    assert rec.full_name == "Fresh/Name" and rec.renamed_from == "old/name" and rec.stars == 8
    assert [r.path for r in github_server.requests] == [
        "/repos/old/name", f"/repositories/{repo.id}"]
    assert got.requests["github"] == 2


def test_rest_renamed_repo_revalidates_to_304(github_server: FakeGitHub) -> None:
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    cfg = github_config(github_server)
    fetch(cfg, ["old/name"])
    second = fetch(cfg, ["old/name"], refresh=True)
    assert github_server.count_status(304) == 1
    assert second.origins == {"old/name": "fetched"}
    assert second.repos["old/name"].full_name == "Fresh/Name"


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
    for got in (with_token, anonymous):
        assert got.statuses == {"old/name": "error"}
        assert "another host" in got.messages["old/name"]
    assert other_host.count() == 0
    assert all(not _leaks(str(r.headers)) for r in other_host.requests)


def test_rest_404_and_451_are_definitive_records(github_server: FakeGitHub) -> None:
    github_server.add_repo("dmca/thing")
    github_server.block("dmca/thing")
    got = fetch(github_config(github_server), ["no/such", "dmca/thing"])
    assert got.statuses == {"no/such": "not_found", "dmca/thing": "unavailable"}
    assert got.repos["no/such"].fetched_at is not None
    assert got.requests["github"] == 2 and not got.messages


@pytest.mark.parametrize("status", [401, 404, 422, 451])
def test_final_statuses_are_never_retried(github_server: FakeGitHub, status: int) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=status)
    got = fetch(github_config(github_server), ["o/r"])
    assert got.requests["github"] == 1 and github_server.count() == 1


def test_plain_403_is_not_a_rate_limit_and_not_retried(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=403,
                             body=b'{"message": "Resource not accessible by integration"}')
    got = fetch(github_config(github_server), ["o/r"])
    assert got.requests["github"] == 1 and "403" in got.messages["o/r"]
    assert got.statuses == {"o/r": "error"}  # failed, not "missing" (no rate limit)


def test_rest_500_503_then_success(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", stars=2)
    github_server.faults.add("rest", "status", status=500)
    github_server.faults.add("rest", "status", status=503)
    got = fetch(github_config(github_server), ["o/r"])
    assert got.repos["o/r"].stars == 2 and got.requests["github"] == 3


def test_rest_transient_errors_exhaust_retries_then_fail(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", times=10, status=503)
    got = fetch(github_config(github_server, http__max_retries=2), ["o/r"])
    assert got.requests["github"] == 3 and "after 3 attempts" in got.messages["o/r"]
    assert got.statuses == {"o/r": "error"}


def test_rest_connection_reset_then_success(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "reset")
    github_server.faults.add("rest", "truncate", body=b'{"id": 1, "full')
    got = fetch(github_config(github_server), ["o/r"])
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 3


def test_rest_hang_is_cut_by_the_timeout(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "hang", seconds=3)
    started = time.monotonic()
    got = fetch(github_config(github_server, http__timeout=0.3), ["o/r"])
    assert time.monotonic() - started < 2
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 2


def test_rest_garbage_json_is_retried(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "garbage")  # truncated JSON
    github_server.faults.add("rest", "garbage", body=b'{"unexpected": true}',
                             headers={"Content-Type": "application/json"})
    got = fetch(github_config(github_server), ["o/r"])
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 3


def test_rest_body_over_max_bytes_fails_the_key(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", description="x" * 5000)
    github_server.add_repo("o/small")
    got = fetch(github_config(github_server, http__max_bytes=4000), ["o/r", "o/small"])
    assert got.statuses == {"o/r": "error", "o/small": "ok"}
    assert "max_bytes" in got.messages["o/r"]
    assert got.requests["github"] == 2


def test_rest_record_fields(github_server: FakeGitHub) -> None:
    github_server.add_repo("Some/Thing", stars=12, forks=3, license="other", homepage="",
                           topics=["a", "b"], language=None, archived=True, fork=True,
                           description="desc", pushed_at="2025-02-03T04:05:06Z")
    github_server.add_repo("Some/Bare", license=None, homepage="https://x.example")
    got = fetch(github_config(github_server), ["some/thing", "some/bare"])
    rec = got.repos["some/thing"]
    assert rec.full_name == "Some/Thing" and rec.html_url == "https://github.com/Some/Thing"
    assert (rec.stars, rec.forks, rec.archived, rec.fork) == (12, 3, True, True)
    assert rec.license is not None and rec.license.name == "Other"
    assert rec.license.spdx_id is None  # NOASSERTION is not an SPDX id
    assert rec.homepage is None and rec.language is None and rec.topics == ["a", "b"]
    assert rec.pushed_at == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert rec.fetched_at is not None and rec.fetched_at.tzinfo is not None
    bare = got.repos["some/bare"]
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
    got = fetch(github_config(github_server, github__secondary_wait=30), ["o/r"])
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0  # Retry-After, not secondary_wait (30 s)
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 2


def test_secondary_limit_without_retry_after_waits_secondary_wait(
        github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.secondary_limit(1, status=429)
    started = time.monotonic()
    got = fetch(github_config(github_server, github__secondary_wait=0.4), ["o/r"])
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 2.0
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 2


def test_body_only_throttle_is_detected(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.faults.add("rest", "status", status=403, body=(
        b'{"message": "You have triggered an abuse detection mechanism / rate limit."}'))
    got = fetch(github_config(github_server), ["o/r"])
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 2


def test_remaining_zero_waits_until_reset_then_succeeds(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.exhaust("anon", reset_in=1)
    with github_server._state:
        reset = github_server._bucket("anon", "core").reset  # whole seconds, <= 2 s away
    started = time.monotonic()
    got = fetch(github_config(github_server, github__max_wait=4), ["o/r"])
    # the wait runs to the reset plus a safety margin of the fetcher's own (the reset
    # is in whole seconds), well within max_wait
    assert time.monotonic() - started < 3.8
    assert github_server.requests[-1].time >= reset
    assert got.statuses == {"o/r": "ok"} and got.requests["github"] == 2
    assert not got.messages


def test_exhausted_primary_limit_stops_all_fetching(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(10)
    github_server.exhaust("anon", reset_in=3600)
    with github_server._state:
        reset = github_server._bucket("anon", "core").reset
    cfg = github_config(github_server, github__concurrency=1)

    async def go() -> tuple[Fetched, Fetched]:
        async with open_enricher(cfg) as enricher:  # two rounds of one run
            return (await resolve_ids(enricher, repo_keys=keys),
                    await resolve_ids(enricher, repo_keys=["another/one"]))

    started = time.monotonic()
    first, later = asyncio.run(go())
    assert time.monotonic() - started < 1.5
    assert first.requests["github"] == 1 == github_server.count()
    assert first.statuses == dict.fromkeys(keys, "missing")  # not attempted; nothing failed
    msg = first.messages[keys[0]]
    assert reset_named(msg).timestamp() == reset  # the time the limit resets, named
    assert reset > time.time() + 3000
    # the same run sends nothing more until the reset
    assert later.requests["github"] == 0 and later.statuses == {"another/one": "missing"}


def test_quota_spent_midway_stops_without_a_wasted_request(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(6)
    github_server.anon_limit = 3
    got = fetch(github_config(github_server, github__concurrency=1), keys)
    assert got.requests["github"] == 3 == github_server.count()
    assert len(got.having("ok")) == 3 and len(got.having("missing")) == 3
    assert github_server.count_status(403) == 0


def test_max_wait_budget_bounds_the_whole_fetch(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(8)
    github_server.secondary_limit(50)  # no Retry-After: secondary_wait, then doubling
    cfg = github_config(github_server, github__secondary_wait=0.3, github__max_wait=1.0,
                        http__max_retries=10)
    started = time.monotonic()
    got = fetch(cfg, keys)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.5  # waited 0.3 + 0.6; the next 1.2 s did not fit
    assert got.statuses == dict.fromkeys(keys, "missing")
    assert "max_wait" in got.messages[keys[0]]


def test_retry_after_beyond_the_budget_stops_at_once(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(3)
    github_server.secondary_limit(5, retry_after=600)
    started = time.monotonic()
    got = fetch(github_config(github_server, github__concurrency=1), keys)
    assert time.monotonic() - started < 1.0
    assert got.statuses == dict.fromkeys(keys, "missing") and got.requests["github"] == 1
    assert reset_named(got.messages[keys[0]]).timestamp() > time.time() + 500


def test_endless_rate_limits_stop_after_max_retries(github_server: FakeGitHub) -> None:
    keys = github_server.add_synthetic(3)
    github_server.secondary_limit(50, retry_after=0)
    got = fetch(github_config(github_server, github__concurrency=1, http__max_retries=2), keys)
    assert got.requests["github"] == 3 and got.statuses == dict.fromkeys(keys, "missing")
    assert "in a row" in got.messages[keys[0]]


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
    got = fetch(github_config(github_server, github__concurrency=3), keys)
    assert got.statuses == dict.fromkeys(keys, "ok")
    assert github_server.max_inflight == 3


# -- safety ------------------------------------------------------------------------------------

MALICIOUS = ["../x", "a/b%2F..", "a/..", "a/.", "..%2f../x", "a/b/c", "a/b?x=1", "a/b#f",
             "a /b", "-a/b", "a-/b", "a--b/c", "a/b\n", "/a", "a/", "", "a/b/../../admin",
             "a/%2e%2e", "a\\b/c", "a/b c", "ａ/b"]


def test_malicious_keys_never_reach_the_server(github_server: FakeGitHub) -> None:
    github_server.add_repo("ok/repo")
    got = fetch(github_config(github_server), [*MALICIOUS, "ok/repo"])
    assert [r.path for r in github_server.requests] == ["/repos/ok/repo"]
    assert got.statuses == {**dict.fromkeys(MALICIOUS, "error"), "ok/repo": "ok"}
    assert set(got.messages) == set(MALICIOUS) and got.requests["github"] == 1


def test_malicious_keys_never_reach_graphql(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    got = fetch(github_config(github_server, token=TOKEN), MALICIOUS)
    assert github_server.count() == 0 and got.requests["github"] == 0
    assert got.statuses == dict.fromkeys(MALICIOUS, "error")
    assert set(got.messages) == set(MALICIOUS)


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
    results.append(fetch(cfg, keys, refresh=True))  # past the cache: to the spent limit
    bad = github_config(github_server, token=TOKEN + "-revoked")
    with pytest.raises(ConfigError) as rejected:
        fetch(bad, keys, refresh=True)
    # the cached records are served as stale, with why they could not be refreshed
    assert results[1].having("stale") == set(keys)
    assert all("not fetched this run" in results[1].messages[k] for k in keys)
    assert str(rejected.value).startswith("GitHub rejected the token in GITHUB_TOKEN")
    for got in [*results, rejected.value]:
        assert not _leaks(repr(got))
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}"
                     for r in caplog.records)
    assert caplog.records and not _leaks(text)
    enricher = Enricher(cfg)
    assert not _leaks(enricher.credential) and enricher.credential == credential_id(TOKEN)
    # the token travels only in the Authorization header, and only to the fake itself
    for req in github_server.requests:
        assert not _leaks(req.path + repr(req.query) + req.body.decode())
        extra = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}
        assert not _leaks(repr(extra))
    assert other_host.count() == 0


def test_credential_identity() -> None:
    cfg = Config.load(env={})
    assert Enricher(cfg).credential == "anon"
    cfg.token = TOKEN
    credential = Enricher(cfg).credential
    assert credential.startswith("tok-") and not _leaks(credential)


def test_a_name_longer_than_github_allows_is_not_found_without_a_request(
        github_server: FakeGitHub) -> None:
    github_server.add_repo("a/b")
    long_key = "o/" + "x" * 101
    got = fetch(github_config(github_server), [long_key, "a/b"])
    assert got.statuses == {long_key: "not_found", "a/b": "ok"}
    assert [r.path for r in github_server.requests] == ["/repos/a/b"]


def test_unreachable_github_stops_after_one_repository_instead_of_retrying_each() -> None:
    dead = FakeGitHub()  # bound, then closed: nothing listens on its port
    dead.server_close()
    cfg = github_config(dead, github__concurrency=2, http__max_retries=2)
    keys = [f"owner/repo{i}" for i in range(20)]
    got = fetch(cfg, keys)
    failed, missing = got.having("error"), got.having("missing")
    assert 1 <= len(failed) <= 2  # the repositories in flight when it gave up
    assert all("ConnectError" in got.messages[k] for k in failed)
    assert missing == set(keys) - failed
    assert all("cannot connect" in got.messages[k] for k in missing)
    assert got.requests["github"] <= 2 * 3  # two in flight, three attempts each at most
