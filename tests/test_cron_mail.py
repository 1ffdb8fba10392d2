"""What cron mails after a failing run: one line per cause, with its count and what to
do, never one line per id (``--verbose`` keeps those); a closed stdout ends quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import run_cli, write_config


@pytest.fixture
def many_repos(tmp_path: Path, arxiv_server: FakeArxiv,
               github_server: FakeGitHub) -> tuple[Path, Path]:
    names = github_server.add_synthetic(40)
    log = tmp_path / "log.txt"
    log.write_text("".join(f"- 代码：https://github.com/{n}\n" for n in names), encoding="utf-8")
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    return log, cfg


def test_a_spent_anonymous_limit_is_one_line_naming_the_token_variable(
        many_repos: tuple[Path, Path], github_server: FakeGitHub) -> None:
    log, cfg = many_repos
    github_server.exhaust("anon", reset_in=3600)
    code, _, err = run_cli("run", "--quiet", "--file", str(log), "--config", str(cfg))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 2, err  # the file's summary, and the cause
    assert lines[0].startswith(f"{log}: papers 0")
    cause = lines[1]
    assert cause.startswith("GitHub: 40 repositories not fetched: ")
    assert "rate limit" in cause and cause.endswith(
        "; set GITHUB_TOKEN (a token allows 5000 requests an hour instead of 60)")
    assert github_server.count("rest") <= 4  # the first requests in flight, then none


def test_verbose_keeps_one_line_per_id(many_repos: tuple[Path, Path],
                                       github_server: FakeGitHub) -> None:
    log, cfg = many_repos
    github_server.exhaust("anon", reset_in=3600)
    code, _, err = run_cli("run", "--verbose", "--file", str(log), "--config", str(cfg))
    assert code == 1
    per_id = [line for line in err.splitlines() if line.startswith("  github ")]
    assert len(per_id) == 40 and all("(missing)" in line for line in per_id)
    assert sum(line.startswith("GitHub: 40 repositories") for line in err.splitlines()) == 1


def test_causes_are_counted_over_every_file_of_the_run(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub) -> None:
    names = github_server.add_synthetic(6)
    logs = []
    for n in range(3):  # overlapping files: a repository counts once
        log = tmp_path / f"log{n}.txt"
        log.write_text("".join(f"github.com/{k}\n" for k in names[n:n + 4]), encoding="utf-8")
        logs.append(str(log))
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    github_server.exhaust("anon", reset_in=3600)
    code, _, err = run_cli("run", "--quiet", "--file", *logs, "--config", str(cfg))
    assert code == 1
    causes = [line for line in err.splitlines() if line.startswith("GitHub:")]
    assert len(causes) == 1 and causes[0].startswith("GitHub: 6 repositories not fetched")


def test_offline_never_fetched_says_to_run_online(many_repos: tuple[Path, Path]) -> None:
    log, cfg = many_repos
    code, _, err = run_cli("run", "--quiet", "--offline", "--file", str(log), "--config",
                           str(cfg))
    assert code == 1
    assert err.splitlines()[-1] == ("GitHub: 40 repositories not fetched: offline: never "
                                    "fetched; run without --offline to fetch")


@pytest.mark.parametrize("args", [["extract", "--file", "LOG"], ["cache", "stats"]])
def test_a_reader_that_closes_stdout_early_ends_the_command_quietly(
        tmp_path: Path, args: list[str]) -> None:
    log = tmp_path / "big.txt"
    log.write_text("".join(f"arXiv:2301.{i:05d} github.com/o{i}/r{i}\n" for i in range(5000)),
                   encoding="utf-8")
    cache = tmp_path / "c.sqlite3"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"cache:\n  path: {cache}\n", encoding="utf-8")
    if args[0] == "cache":
        subprocess.run([sys.executable, "-m", "enrich", "run", "--offline", "--quiet",
                        "--file", str(log), "--config", str(cfg)], check=False, timeout=60)
        args = [*args, "--config", str(cfg)]
    argv = [str(log) if a == "LOG" else a for a in args]
    done = subprocess.run(
        f"{sys.executable} -m enrich {' '.join(argv)} | head -1", shell=True,
        capture_output=True, timeout=60)
    assert done.stdout.count(b"\n") == 1
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr


def test_cache_prune_of_a_cache_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("cache:\n  path: nowhere/c.sqlite3\n", encoding="utf-8")
    code, out, _ = run_cli("cache", "prune", "--config", str(cfg))
    assert code == 0 and "does not exist yet" in out
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("codec", ["gbk", "utf-16", "utf-8-sig", "utf-8"])
def test_outputs_are_utf8_whatever_the_logs_encoding(
        tmp_path: Path, arxiv_server: FakeArxiv, github_server: FakeGitHub, codec: str) -> None:
    from enrich.write.markdown import strip_blocks

    text = "# 日志\n\n- 论文：arXiv:2305.09781，代码 github.com/o/r 😀\n" if codec != "gbk" else \
        "# 日志\n\n- 论文：arXiv:2305.09781，代码 github.com/o/r\n"
    arxiv_server.add_paper("2305.09781", title="一篇论文")
    github_server.add_repo("o/r", description="描述")
    log = tmp_path / "log.txt"
    log.write_bytes(text.encode(codec))
    cfg = write_config(tmp_path / "config.yaml", arxiv_server, github_server)
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 0, err
    md = (tmp_path / "log.enriched.md").read_bytes()
    assert md.startswith(b"\xef\xbb\xbf") == (codec == "utf-8-sig")
    decoded = md.decode("utf-8-sig")
    assert "一篇论文" in decoded and strip_blocks(decoded) == text
    if codec.startswith("utf-8"):
        assert strip_blocks(decoded).encode(codec) == log.read_bytes()  # byte for byte
