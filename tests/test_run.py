"""`enrich run` end to end against the fake APIs: outputs, idempotence, offline, exit codes."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import EXAMPLE, RENAMES, load_json, populate, run_cli, write_config

from enrich.write.json import load_schema
from enrich.write.markdown import strip_blocks

TOKEN = "tok-e2e-secret-4242"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    dst = tmp_path / "logs" / "000.txt"
    dst.parent.mkdir()
    shutil.copyfile(EXAMPLE, dst)
    return dst


@pytest.fixture
def cfg(tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> Path:
    populate(arxiv_server, github_server, EXAMPLE.read_text(encoding="utf-8"))
    return write_config(tmp_path / "config.yaml", arxiv_server, github_server)


def _requests(a: FakeArxiv, g: FakeGitHub) -> int:
    return a.count() + g.count()


def _data(doc: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def test_run_writes_both_outputs_holding_every_id_valid_against_the_schema(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    before = log.read_bytes()
    code, out, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    assert out == ""
    md, js = log.with_name("000.enriched.md"), log.with_name("000.enriched.json")
    assert md.exists() and js.exists()
    assert log.read_bytes() == before  # the input is never modified
    doc = load_json(js)
    jsonschema.validate(doc, load_schema())
    ids = {lk["id"] for lk in doc["links"] if lk["kind"] == "arxiv"}
    keys = {lk["id"] for lk in doc["links"] if lk["kind"] == "github"}
    assert set(doc["papers"]) == ids and set(doc["repos"]) == keys
    assert {"1706.03762", "2106.09685", "hep-th/9711200", "math/0211159"} <= ids
    assert all(p["status"] == "ok" for p in doc["papers"].values())
    assert all(r["status"] == "ok" for r in doc["repos"].values())
    for old, new in RENAMES.items():
        assert doc["repos"][old]["full_name"] == new
        assert doc["repos"][old]["renamed_from"] == old
    assert doc["source"]["path"] == "000.txt" and doc["source"]["bytes"] == len(before)
    # one summary line on stderr naming the outputs
    assert "000.txt" in err and "000.enriched.md" in err
    # the markdown without its blocks is the input, byte for byte
    assert strip_blocks(md.read_text(encoding="utf-8")).encode("utf-8") == before


def test_second_run_is_idempotent_and_makes_no_request(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    first_md = log.with_name("000.enriched.md").read_bytes()
    first = load_json(log.with_name("000.enriched.json"))
    n = _requests(arxiv_server, github_server)
    assert n > 0
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    assert _requests(arxiv_server, github_server) == n
    assert log.with_name("000.enriched.md").read_bytes() == first_md
    assert _data(load_json(log.with_name("000.enriched.json"))) == _data(first)


def test_offline_gives_the_same_data_from_the_cache_alone(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    online = load_json(log.with_name("000.enriched.json"))
    arxiv_server.stop()
    github_server.stop()
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--offline")
    assert code == 0, err
    offline = load_json(log.with_name("000.enriched.json"))
    assert offline["papers"] == online["papers"] and offline["repos"] == online["repos"]


def test_offline_with_an_empty_cache_marks_everything_missing_and_exits_1(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--offline")
    assert code == 1
    assert _requests(arxiv_server, github_server) == 0
    doc = load_json(log.with_name("000.enriched.json"))
    assert {p["status"] for p in doc["papers"].values()} == {"missing"}
    assert {r["status"] for r in doc["repos"].values()} == {"missing"}
    assert "missing" in err or "never fetched" in err


def test_with_a_token_repositories_come_from_graphql_and_no_output_holds_the_token(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    github_server.tokens[TOKEN] = "alice"
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    code, out, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--verbose")
    assert code == 0, err
    assert github_server.count(endpoint="graphql") == 1
    assert github_server.count(endpoint="rest") == 0
    # the token never goes to arXiv: in no header, query or body of any of its requests
    assert arxiv_server.count() > 0
    for r in arxiv_server.requests:
        assert r.credential == "anon"
        sent = " ".join([*r.headers.values(), r.path, str(r.query), r.body.decode("latin-1")])
        assert TOKEN not in sent, r
    assert not any("Authorization" in r.headers or "authorization" in r.headers
                   for r in arxiv_server.requests)
    written = [p for p in log.parent.iterdir()] + list((cfg.parent / "cache").iterdir())
    for p in written:
        assert TOKEN.encode() not in p.read_bytes(), p
    assert TOKEN not in out and TOKEN not in err


def test_refresh_without_a_token_revalidates_with_304s(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    rest = github_server.count(endpoint="rest")
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--refresh")
    assert code == 0, err
    keys = len(load_json(log.with_name("000.enriched.json"))["repos"])
    # renamed repositories are asked by the name learned on the first run: every
    # repository is one conditional request answered 304
    assert github_server.count_status(304, endpoint="rest") == keys
    assert github_server.count(endpoint="rest") - rest == keys


def test_dry_run_prints_the_plan_and_touches_nothing(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    code, out, _ = run_cli("run", "--file", str(log), "--config", str(cfg), "--dry-run")
    assert code == 0
    assert "arXiv" in out and "GitHub" in out and "to fetch" in out
    assert _requests(arxiv_server, github_server) == 0
    assert not (cfg.parent / "cache" / "enrich.sqlite3").exists()
    assert not log.with_name("000.enriched.md").exists()
    run_cli("run", "--file", str(log), "--config", str(cfg))
    code, out, _ = run_cli("run", "--file", str(log), "--config", str(cfg), "--dry-run")
    assert " 0 to fetch -> 0 " in out


def test_out_dir_and_formats(log: Path, cfg: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg),
                           "--out-dir", str(out_dir), "--format", "json")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["000.enriched.json"]
    code, _, _ = run_cli("run", "--file", str(log), "--config", str(cfg),
                         "--out-dir", str(out_dir), "--format", "bib")
    assert code == 0
    assert "@misc{" in (out_dir / "000.bib").read_text(encoding="utf-8")


def test_re_enriching_an_enriched_file_replaces_its_blocks(log: Path, cfg: Path) -> None:
    run_cli("run", "--file", str(log), "--config", str(cfg), "--format", "markdown")
    md = log.with_name("000.enriched.md")
    code, _, err = run_cli("run", "--file", str(md), "--config", str(cfg), "--format", "both")
    assert code == 0, err
    again = md.with_name("000.enriched.enriched.md").read_text(encoding="utf-8")
    assert again == md.read_text(encoding="utf-8")
    doc = load_json(md.with_name("000.enriched.enriched.json"))
    first_line = next(lk["line"] for lk in doc["links"])
    assert first_line == 4  # line numbers refer to the text without blocks


def test_quiet_prints_nothing_on_success(log: Path, cfg: Path) -> None:
    code, out, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--quiet")
    assert (code, out, err) == (0, "", "")


# -- bad input ---------------------------------------------------------------------------------


def test_missing_file_is_exit_2_and_other_files_are_still_processed(
        log: Path, cfg: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("run", "--file", str(tmp_path / "nope.txt"), "--file", str(log),
                           "--config", str(cfg))
    assert code == 2
    assert "nope.txt" in err and "Traceback" not in err
    assert log.with_name("000.enriched.json").exists()
    assert not (tmp_path / "nope.enriched.json").exists()


@pytest.mark.parametrize("kind", ["directory", "binary", "undecodable"])
def test_unusable_input_is_exit_2_with_a_clear_message(kind: str, cfg: Path,
                                                       tmp_path: Path) -> None:
    path = tmp_path / f"bad-{kind}.txt"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 20)
    else:
        path.write_bytes("正常的文字".encode() + b"\xff\xfe\xfa" * 50 + b"\x80\x81")
    code, _, err = run_cli("run", "--file", str(path), "--config", str(cfg))
    assert code == 2
    assert path.name in err and "Traceback" not in err
    assert not list(tmp_path.glob("bad-*.enriched.*"))


@pytest.mark.parametrize("failing", ["md", "json"])
def test_an_output_that_cannot_be_written_is_exit_2_and_no_output_is_replaced(
        log: Path, cfg: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    # issue 15 section 5: every output goes to its temporary file before any is renamed,
    # so a full disk on either one leaves the previous pair (here: none) as it was.
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if f".enriched.{failing}." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 2
    assert "000.txt: cannot write outputs: No space left on device" in err
    md, js = log.with_name("000.enriched.md"), log.with_name("000.enriched.json")
    assert not md.exists() and not js.exists()
    assert not list(log.parent.glob(".*.tmp"))
    # the cache was closed and the lock released: the next run serves it all
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--offline")
    assert code == 0, err
    assert md.exists() and js.exists()


def test_empty_file_gives_empty_outputs_and_exit_0(cfg: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    code, _, err = run_cli("run", "--file", str(path), "--config", str(cfg))
    assert code == 0, err
    doc = load_json(tmp_path / "empty.enriched.json")
    assert doc["links"] == [] and doc["papers"] == {} and doc["repos"] == {}


def test_bad_config_is_exit_2_naming_the_key(log: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("github:\n  concurency: 4\n")
    code, _, err = run_cli("run", "--file", str(log), "--config", str(bad))
    assert code == 2
    assert "github.concurency" in err and "Traceback" not in err
    assert not log.with_name("000.enriched.json").exists()


def test_usage_error_is_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli("run")
    assert exc.value.code == 2


def test_corrupt_cache_is_exit_2_naming_the_file(log: Path, cfg: Path) -> None:
    db = cfg.parent / "cache" / "enrich.sqlite3"
    db.parent.mkdir(exist_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 2
    assert str(db) in err and "Traceback" not in err
    assert db.read_bytes() == b"this is not a database" * 100


def test_lock_held_is_exit_75(log: Path, cfg: Path) -> None:
    from enrich.lock import RunLock

    with RunLock(cfg.parent / "cache" / "enrich.sqlite3"):
        code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 75
    assert "another enrich run" in err
    assert not log.with_name("000.enriched.json").exists()


# -- failures from the APIs ---------------------------------------------------------------------


def test_api_failure_after_a_good_run_keeps_data_as_stale_and_exits_1(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    good = load_json(log.with_name("000.enriched.json"))
    github_server.faults.add("*", "status", times=500, status=503)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--refresh")
    assert code == 1
    doc = load_json(log.with_name("000.enriched.json"))
    assert {r["status"] for r in doc["repos"].values()} == {"stale"}
    for key, rec in doc["repos"].items():
        assert rec["stars"] == good["repos"][key]["stars"]
    assert {p["status"] for p in doc["papers"].values()} == {"ok"}
    assert doc["errors"] and all(e["kind"] == "github" for e in doc["errors"])
    assert "failed" in err
    # the cache still has the good data: the next healthy run is clean again
    github_server.faults.clear()
    assert run_cli("run", "--file", str(log), "--config", str(cfg), "--refresh")[0] == 0


def test_verbose_logs_each_request_with_method_url_and_status(
        log: Path, cfg: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg), "--verbose")
    assert code == 0, err
    lines = err.splitlines()
    assert any("arxiv GET" in ln and "/api/query" in ln and "-> 200" in ln for ln in lines)
    rest = [ln for ln in lines if ("github GET /repos/" in ln or "github GET /repositories/" in ln)
            and "-> 200" in ln]
    assert len(rest) == github_server.count_status(200, endpoint="rest")
    assert any("-> 301" in ln for ln in lines)  # the renamed repositories


def test_extract_prints_a_table_and_json(log: Path) -> None:
    code, out, _ = run_cli("extract", "--file", str(log))
    assert code == 0
    assert out.splitlines()[0].split() == ["LINE:COL", "KIND", "ID", "VER", "AS", "WRITTEN"]
    assert "hep-th/9711200" in out and "links:" in out.splitlines()[-1]
    code, out, _ = run_cli("extract", "--file", str(log), "--json")
    data = json.loads(out)
    assert set(data) == {"links", "arxiv", "github"}
    assert data["arxiv"] == sorted(data["arxiv"]) and "math/0211159" in data["arxiv"]
    assert all({"kind", "id", "line", "column", "start", "end", "text"} <= set(lk)
               for lk in data["links"])


def test_cache_stats_prune_and_clear(log: Path, cfg: Path) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    code, out, _ = run_cli("cache", "stats", "--config", str(cfg))
    assert code == 0 and "papers:" in out and "total: 14" in out
    code, out, _ = run_cli("cache", "prune", "--config", str(cfg))
    assert code == 0 and "pruned" in out
    code, out, _ = run_cli("cache", "clear", "--config", str(cfg))
    assert code == 0 and "cleared" in out
    code, out, _ = run_cli("cache", "stats", "--config", str(cfg))
    assert "total: 0" in out


def test_trends_lists_the_logs_repositories(log: Path, cfg: Path) -> None:
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    code, out, _ = run_cli("trends", "--file", str(log), "--config", str(cfg))
    assert code == 0
    assert out.splitlines()[0].startswith("REPOSITORY")
    assert "meta-llama/llama" in out.lower() and "karpathy/nanogpt" in out.lower()


def test_version() -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli("--version")
    assert exc.value.code == 0
