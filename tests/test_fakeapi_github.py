"""The fake GitHub API answers the way api-facts 3.2/3.3 say the real one does.

If the fake drifts from GitHub, the fetcher tests prove nothing; these tests
pin the shapes the fetcher relies on.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from fakeapi.github import SECONDARY_MESSAGE, FakeGitHub

TOKEN = "tok-fake-abc"
#: One client for the module: a new httpx client per call costs ~0.1 s of TLS setup.
_HTTP = httpx.Client(follow_redirects=False)


def _get(srv: FakeGitHub, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return _HTTP.get(srv.url + path, headers=headers)


def _graphql(srv: FakeGitHub, query: str, token: str | None = TOKEN,
             variables: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Authorization": f"bearer {token}"} if token else {}
    return _HTTP.post(srv.url + "/graphql", headers=headers,
                      json={"query": query, "variables": variables or {}})


def test_rest_repo_has_github_field_names_and_display_case(github_server: FakeGitHub) -> None:
    github_server.add_repo("FlexFlow/FlexFlow", stars=1700, forks=220,
                           license=("Apache-2.0", "Apache License 2.0"), topics=["llm"],
                           language="C++", description="A serving system", homepage="")
    r = _get(github_server, "/repos/flexflow/flexflow")
    assert r.status_code == 200
    doc = r.json()
    for name in ("id", "node_id", "name", "full_name", "owner", "html_url", "description",
                 "homepage", "fork", "url", "created_at", "updated_at", "pushed_at",
                 "stargazers_count", "watchers_count", "forks_count", "language", "archived",
                 "disabled", "license", "topics", "visibility", "default_branch",
                 "open_issues_count"):
        assert name in doc, name
    assert doc["full_name"] == "FlexFlow/FlexFlow"
    assert doc["owner"]["login"] == "FlexFlow"
    assert doc["stargazers_count"] == doc["watchers_count"] == 1700
    assert doc["license"]["spdx_id"] == "Apache-2.0"
    assert set(doc["license"]) == {"key", "name", "spdx_id", "url", "node_id"}


def test_rest_other_licence_and_no_licence(github_server: FakeGitHub) -> None:
    github_server.add_repo("a/other", license="other")
    github_server.add_repo("a/none", license=None)
    other = _get(github_server, "/repos/a/other").json()["license"]
    assert other["spdx_id"] == "NOASSERTION" and other["key"] == "other"
    assert other["url"] is None
    assert _get(github_server, "/repos/a/none").json()["license"] is None


def test_rest_headers_ratelimit_and_weak_etag(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    r = _get(github_server, "/repos/o/r")
    assert re.fullmatch(r'W/"[0-9a-f]{64}"', r.headers["etag"])
    assert r.headers["x-ratelimit-limit"] == "60"
    assert r.headers["x-ratelimit-remaining"] == "59"
    assert r.headers["x-ratelimit-used"] == "1"
    assert r.headers["x-ratelimit-resource"] == "core"
    assert int(r.headers["x-ratelimit-reset"]) > time.time()
    github_server.tokens[TOKEN] = "alice"
    r2 = _get(github_server, "/repos/o/r", token=TOKEN)
    assert r2.headers["x-ratelimit-limit"] == "5000"
    assert r2.headers["x-ratelimit-remaining"] == "4999"


def test_rest_etag_differs_per_credential(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.tokens.update({TOKEN: "alice", "tok-other": "bob"})
    anon = _get(github_server, "/repos/o/r").headers["etag"]
    alice = _get(github_server, "/repos/o/r", token=TOKEN).headers["etag"]
    bob = _get(github_server, "/repos/o/r", token="tok-other").headers["etag"]
    assert len({anon, alice, bob}) == 3
    # another credential's ETag is not honoured
    assert _get(github_server, "/repos/o/r", **{"If-None-Match": alice}).status_code == 200


def test_rest_304_has_no_body_and_costs_only_anonymously(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.tokens[TOKEN] = "alice"
    etag = _get(github_server, "/repos/o/r").headers["etag"]
    r = _get(github_server, "/repos/o/r", **{"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag
    assert r.headers["x-ratelimit-used"] == "2"  # an anonymous 304 still costs one
    tag = _get(github_server, "/repos/o/r", token=TOKEN).headers["etag"]
    r = _get(github_server, "/repos/o/r", token=TOKEN, **{"If-None-Match": tag})
    assert r.status_code == 304
    assert r.headers["x-ratelimit-used"] == "1"  # an authenticated 304 is free
    assert github_server.count_status(304) == 2


def test_rest_etag_changes_with_the_data(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r", stars=1)
    before = _get(github_server, "/repos/o/r").headers["etag"]
    github_server.set_stars("o/r", 2)
    r = _get(github_server, "/repos/o/r", **{"If-None-Match": before})
    assert r.status_code == 200 and r.headers["etag"] != before


def test_rest_lookup_is_case_insensitive(github_server: FakeGitHub) -> None:
    github_server.add_repo("Owner/Name")
    assert _get(github_server, "/repos/OWNER/name").json()["full_name"] == "Owner/Name"


def test_rest_301_for_renamed_repo_with_location_and_body(github_server: FakeGitHub) -> None:
    repo = github_server.add_repo("old/name")
    github_server.rename("old/name", "New/Name")
    r = _get(github_server, "/repos/old/name")
    assert r.status_code == 301
    loc = f"{github_server.url}/repositories/{repo.id}"
    assert r.headers["location"] == loc
    body = r.json()
    assert body["message"] == "Moved Permanently" and body["url"] == loc
    assert "documentation_url" in body
    moved = _get(github_server, f"/repositories/{repo.id}")
    assert moved.status_code == 200 and moved.json()["full_name"] == "New/Name"


def test_rest_404_and_451_bodies(github_server: FakeGitHub) -> None:
    github_server.add_repo("dmca/blocked")
    github_server.block("dmca/blocked")
    nf = _get(github_server, "/repos/no/such")
    assert nf.status_code == 404
    assert nf.json()["message"] == "Not Found" and nf.json()["status"] == "404"
    bl = _get(github_server, "/repos/dmca/blocked")
    assert bl.status_code == 451
    assert bl.json()["message"] == "Repository access blocked"
    assert bl.json()["block"]["reason"] == "dmca"
    assert set(bl.json()["block"]) == {"reason", "created_at", "html_url"}


def test_rest_bad_token_401(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    r = _get(github_server, "/repos/o/r", token="tok-wrong")
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    r = _HTTP.get(github_server.url + "/repos/o/r", headers={"Authorization": "token tok-wrong"})
    assert r.status_code == 401


def test_rest_primary_limit_exhausted(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.anon_limit = 2
    assert _get(github_server, "/repos/o/r").status_code == 200
    last = _get(github_server, "/repos/o/r")
    assert last.status_code == 200 and last.headers["x-ratelimit-remaining"] == "0"
    r = _get(github_server, "/repos/o/r")
    assert r.status_code == 403
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert r.json()["message"].startswith("API rate limit exceeded for ")
    github_server.primary_status = 429
    assert _get(github_server, "/repos/o/r").status_code == 429


def test_rest_exhaust_then_reset_refills(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.exhaust("anon", reset_in=0.0)
    # reset_in=0 puts the reset at the current second: the next second refills it
    r = _get(github_server, "/repos/o/r")
    reset = int(r.headers["x-ratelimit-reset"])
    assert r.status_code == 200 or reset <= time.time() + 1
    github_server.exhaust("anon", reset_in=3600)
    r = _get(github_server, "/repos/o/r")
    assert r.status_code == 403 and int(r.headers["x-ratelimit-reset"]) > time.time() + 3000


def test_rest_secondary_limit_with_and_without_retry_after(github_server: FakeGitHub) -> None:
    github_server.add_repo("o/r")
    github_server.secondary_limit(1, retry_after=7)
    github_server.secondary_limit(1, status=429)
    a = _get(github_server, "/repos/o/r")
    assert a.status_code == 403 and a.headers["retry-after"] == "7"
    assert a.json()["message"] == SECONDARY_MESSAGE
    assert int(a.headers["x-ratelimit-remaining"]) > 0
    b = _get(github_server, "/repos/o/r")
    assert b.status_code == 429 and "retry-after" not in b.headers
    assert _get(github_server, "/repos/o/r").status_code == 200


def test_rate_limit_endpoint_is_free(github_server: FakeGitHub) -> None:
    for _ in range(3):
        doc = _get(github_server, "/rate_limit").json()
    assert doc["resources"]["core"]["remaining"] == 60
    assert github_server.count(endpoint="rate_limit") == 3


_Q = """query {
  r0: repository(owner: "octo", name: "hello") { nameWithOwner stargazerCount }
  r1: repository(owner: "no", name: "such") { nameWithOwner stargazerCount }
  r2: repository(owner: "old", name: "name") { nameWithOwner stargazerCount }
  rateLimit { cost remaining resetAt limit used }
}"""


def test_graphql_not_found_error_beside_other_aliases_data(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("Octo/Hello", stars=5)
    github_server.add_repo("old/name", stars=9)
    github_server.rename("old/name", "Fresh/Name")
    r = _graphql(github_server, _Q)
    assert r.status_code == 200
    doc = r.json()
    assert doc["data"]["r0"] == {"nameWithOwner": "Octo/Hello", "stargazerCount": 5}
    assert doc["data"]["r1"] is None
    assert doc["data"]["r2"]["nameWithOwner"] == "Fresh/Name"  # renames are followed
    (err,) = doc["errors"]
    assert err["type"] == "NOT_FOUND" and err["path"] == ["r1"]
    assert err["message"] == "Could not resolve to a Repository with the name 'no/such'."
    assert err["locations"] == [{"line": 3, "column": 3}]
    rl = doc["data"]["rateLimit"]
    assert rl["cost"] == 1 and rl["remaining"] == 4999
    assert r.headers["x-ratelimit-resource"] == "graphql"


def test_graphql_variables_and_only_asked_fields(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("a-b/c.d", license=("MIT", "MIT License"), topics=["x"])
    q = ("query($o0: String!, $n0: String!) { r0: repository(owner: $o0, name: $n0) "
         "{ nameWithOwner licenseInfo { spdxId name key } "
         "repositoryTopics(first: 20) { nodes { topic { name } } } } }")
    doc = _graphql(github_server, q, variables={"o0": "a-b", "n0": "c.d"}).json()
    node = doc["data"]["r0"]
    assert set(node) == {"nameWithOwner", "licenseInfo", "repositoryTopics"}
    assert node["licenseInfo"] == {"spdxId": "MIT", "name": "MIT License", "key": "mit"}
    assert node["repositoryTopics"]["nodes"] == [{"topic": {"name": "x"}}]
    assert "errors" not in doc


def test_graphql_requires_authentication(github_server: FakeGitHub) -> None:
    r = _graphql(github_server, _Q, token=None)
    assert r.status_code == 401
    assert r.json()["message"] == "This endpoint requires you to be authenticated."
    bad = _graphql(github_server, _Q, token="tok-wrong")
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"


def test_graphql_blocked_repo_is_an_alias_error(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("octo/hello")
    github_server.block("octo/hello")
    doc = _graphql(github_server, _Q).json()
    assert doc["data"]["r0"] is None
    types = {e["path"][0]: e["type"] for e in doc["errors"]}
    assert types["r0"] == "FORBIDDEN"  # GitHub's type; only REST tells a 451


def test_graphql_primary_limit_is_a_200_with_rate_limited_error(
        github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.exhaust(TOKEN, resource="graphql")
    r = _graphql(github_server, _Q)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-remaining"] == "0"
    (err,) = r.json()["errors"]
    assert err["type"] == "RATE_LIMITED"
    assert err["message"].startswith("API rate limit exceeded for user ID ")
    # REST has its own bucket
    github_server.add_repo("octo/hello")
    assert _get(github_server, "/repos/octo/hello", token=TOKEN).status_code == 200


def test_graphql_counts_one_point_per_query(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    many = "\n".join(f'r{i}: repository(owner: "o", name: "n{i}") {{ nameWithOwner }}'
                     for i in range(101))
    r = _graphql(github_server, "query {\n" + many + "\n}")
    doc = r.json()
    assert len(doc["data"]) == 101 and {e["type"] for e in doc["errors"]} == {"NOT_FOUND"}
    _graphql(github_server, _Q)
    assert r.headers["x-ratelimit-used"] == "1"
    assert github_server.count(endpoint="graphql", credential=TOKEN) == 2


def _lookups(n: int, fields: str = "nameWithOwner repositoryTopics(first: 20) "
             "{ nodes { topic { name } } }") -> str:
    return "query {\n" + "\n".join(
        f'r{i}: repository(owner: "o", name: "n{i}") {{ {fields} }}' for i in range(n)) + "\n}"


def test_graphql_node_limit_error_has_no_data(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.graphql_max_nodes = 100
    doc = _graphql(github_server, _lookups(5)).json()  # 5 * (1 + 20) = 105 nodes
    assert "data" not in doc
    (err,) = doc["errors"]
    assert err["type"] == "MAX_NODE_LIMIT_EXCEEDED"
    assert err["message"] == ("This query requests up to 105 possible nodes which exceeds "
                              "the maximum limit of 100.")


def test_graphql_resource_limit_fails_the_lookups_past_it(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("o/n0")
    github_server.graphql_resource_limit = 1
    doc = _graphql(github_server, _lookups(3)).json()
    assert doc["data"]["r0"]["nameWithOwner"] == "o/n0"
    assert doc["data"]["r1"] is None and doc["data"]["r2"] is None
    assert [(e["type"], e["path"], e["message"]) for e in doc["errors"]] == [
        ("RESOURCE_LIMITS_EXCEEDED", [f"r{i}"], "Resource limits for this query exceeded.")
        for i in (1, 2)]


def test_graphql_slow_query_is_a_502(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.graphql_slow_over = 2
    r = _graphql(github_server, _lookups(3))
    assert r.status_code == 502 and "timeout" in r.json()["errors"][0]["message"]
    assert _graphql(github_server, _lookups(2)).status_code == 200


@pytest.mark.parametrize("query,says", [
    ('{ repository(owner: "o", name: "r") { nameWithOwnr } }', "nameWithOwnr"),
    ('{ repository(owner: "o", name: "r") { stargazers_count } }', "stargazers_count"),
    ('{ repository(owner: "o") { nameWithOwner } }', "name"),
    ('{ repository(owner: "o", name: "r", follow: true) { nameWithOwner } }', "follow"),
    ('{ repository(owner: "o", name: "r") { licenseInfo } }', "licenseInfo"),
    ('query($o: String) { repository(owner: $o, name: "r") { nameWithOwner } }', "String"),
    ("{ rateLimit { cost remaining resetAt limit used nodes } }", "nodes"),
    ('{ repository(owner: "o", name: "r") { nameWithOwner ', "Syntax Error"),
])
def test_graphql_invalid_query_is_refused_whole(github_server: FakeGitHub, query: str,
                                                says: str) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("o/r")
    r = _graphql(github_server, query)
    assert r.status_code == 200
    doc = r.json()
    assert "data" not in doc and doc["errors"]
    assert any(says in e["message"] for e in doc["errors"])
    assert all(e["locations"] for e in doc["errors"])
    assert github_server.invalid_queries == (0 if "Syntax" in says else 1)


def test_enrichs_own_query_is_valid_against_the_schema() -> None:
    import graphql
    from fakeapi.github import SCHEMA

    from enrich.fetch.github import build_graphql_query

    query, variables = build_graphql_query([("a-b", "c.d"), ("x", "y")])
    document = graphql.parse(query)
    assert graphql.validate(SCHEMA, document) == []
    result = graphql.execute(SCHEMA, document, root_value={}, variable_values=variables)
    assert not result.errors  # the variables have the declared types


def test_follow_renames_false_refuses_an_old_name(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("old/name")
    github_server.rename("old/name", "Fresh/Name")
    q = '{ r0: repository(owner: "old", name: "name", followRenames: false) { url } }'
    doc = _graphql(github_server, q).json()
    assert doc["data"] == {"r0": None} and doc["errors"][0]["type"] == "NOT_FOUND"


def test_graphql_secondary_limit(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.secondary_limit(1, retry_after=3, endpoint="graphql")
    r = _graphql(github_server, _Q)
    assert r.status_code == 403 and r.headers["retry-after"] == "3"
    assert "secondary rate limit" in r.json()["message"]


def test_requests_logged_per_endpoint_and_credential(github_server: FakeGitHub) -> None:
    github_server.tokens[TOKEN] = "alice"
    github_server.add_repo("o/r")
    _get(github_server, "/repos/o/r")
    _get(github_server, "/repos/o/r", token=TOKEN)
    _graphql(github_server, _Q)
    assert github_server.count(endpoint="rest") == 2
    assert github_server.count(endpoint="rest", credential="anon") == 1
    assert github_server.count(credential=TOKEN) == 2
    assert github_server.count_status(200) == 3
    logged = json.loads(github_server.requests[-1].body)
    assert "query" in logged
