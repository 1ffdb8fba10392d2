"""Issue 15: safe on the machine it runs on.

Outputs and the lock never write through planted links, inputs are never misread,
bad settings are refused up front. Each test names the point of the issue it covers.
Runs go through the CLI against the fake APIs, or through real processes.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakeapi.arxiv import FakeArxiv
from fakeapi.github import FakeGitHub
from support import load_json, run_cli, write_config

from enrich.models import Paper
from enrich.store import Cached, Store
from enrich.textio import decode_bytes, read_source

LOG = (
    "# notes\n"
    "Read https://arxiv.org/abs/2305.09781 today.\n"
    "Code: https://github.com/flexflow/FlexFlow\n"
)


@pytest.fixture
def fakes(arxiv_server: FakeArxiv, github_server: FakeGitHub) -> tuple[FakeArxiv, FakeGitHub]:
    arxiv_server.add_paper("2305.09781", title="SpecInfer", authors=["Xupeng Miao"])
    github_server.add_repo("flexflow/FlexFlow", stars=1700)
    return arxiv_server, github_server


@pytest.fixture
def cfg(tmp_path: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> Path:
    return write_config(tmp_path / "config.yaml", *fakes)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "000.txt").write_text(LOG, encoding="utf-8")
    return folder


def requests(fakes: tuple[FakeArxiv, FakeGitHub]) -> int:
    return fakes[0].count() + fakes[1].count()


def cache_of(cfg: Path) -> Path:
    return cfg.parent / "cache" / "enrich.sqlite3"


# -- 1. outputs and the lock never follow planted links ----------------------------------------


def test_1_an_output_symlink_is_replaced_not_written_through(
        logs: Path, cfg: Path, tmp_path: Path) -> None:
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA... owner\n", encoding="utf-8")
    (logs / "000.enriched.md").symlink_to(victim)
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 0, err
    assert victim.read_text(encoding="utf-8") == "ssh-ed25519 AAAA... owner\n"
    md = logs / "000.enriched.md"
    assert not md.is_symlink() and "2305.09781" in md.read_text(encoding="utf-8")


def test_1_an_output_linked_to_another_input_is_a_usage_error_before_any_request(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    a, b = logs / "a.txt", logs / "b.txt"
    a.write_text(LOG, encoding="utf-8")
    b.write_text("the other log\n", encoding="utf-8")
    (logs / "a.enriched.md").symlink_to(b)
    code, _, err = run_cli("run", "--file", str(a), "--file", str(b), "--config", str(cfg))
    assert code == 2
    assert "a.enriched.md would overwrite the input" in err and str(b) in err
    assert b.read_text(encoding="utf-8") == "the other log\n"
    assert requests(fakes) == 0
    assert not (logs / "a.enriched.json").exists() and not (logs / "b.enriched.md").exists()


def test_1_an_output_that_is_its_own_input_is_a_usage_error(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    refs = logs / "refs.bib"  # `--format bib` would write refs.bib over itself
    refs.write_text(LOG, encoding="utf-8")
    code, _, err = run_cli("run", "--file", str(refs), "--format", "bib", "--config", str(cfg))
    assert code == 2 and "would overwrite the input" in err
    assert refs.read_text(encoding="utf-8") == LOG
    assert requests(fakes) == 0


@pytest.mark.parametrize("suffix", ["", ".lock", "-wal"])
def test_1_an_output_linked_to_the_cache_or_its_lock_is_a_usage_error(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub], suffix: str) -> None:
    assert run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))[0] == 0
    target = Path(f"{cache_of(cfg)}{suffix}")
    target.touch()
    before = target.read_bytes()
    fakes[0].reset_log()
    fakes[1].reset_log()
    out = logs / "000.enriched.json"
    out.unlink()
    out.symlink_to(target)
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2
    assert "000.enriched.json would overwrite the cache" in err
    assert target.read_bytes() == before and out.is_symlink()
    assert requests(fakes) == 0


def test_1_a_lock_file_linked_elsewhere_is_never_opened(
        logs: Path, cfg: Path, tmp_path: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    lock = Path(f"{cache_of(cfg)}.lock")
    lock.parent.mkdir()
    lock.symlink_to(victim)
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2
    assert "enrich.sqlite3.lock" in err and "symbolic link" in err
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert requests(fakes) == 0


def test_1_a_lock_file_hard_linked_to_another_file_is_never_written(
        logs: Path, cfg: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    lock = Path(f"{cache_of(cfg)}.lock")
    lock.parent.mkdir()
    os.link(victim, lock)
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2 and "hard links" in err
    assert victim.read_text(encoding="utf-8") == "precious\n"


def test_1_two_inputs_writing_one_output_path_is_a_usage_error_before_any_request(
        tmp_path: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "notes.txt").write_text(LOG, encoding="utf-8")
    od = tmp_path / "od"
    code, _, err = run_cli("run", "--out-dir", str(od), "--file", str(tmp_path / "a/notes.txt"),
                           "--file", str(tmp_path / "b/notes.txt"), "--config", str(cfg))
    assert code == 2
    assert "a/notes.txt and " in err and "b/notes.txt would both write" in err
    assert requests(fakes) == 0
    assert not od.exists()  # nothing written, not even the folder


def test_1_the_same_input_named_twice_is_not_a_clash(logs: Path, cfg: Path) -> None:
    log = str(logs / "000.txt")
    code, _, err = run_cli("run", "--file", log, "--file", log, "--config", str(cfg))
    assert code == 0, err


# -- 2. a stray NUL byte is not UTF-16 ---------------------------------------------------------


def test_2_one_nul_byte_is_an_input_error_and_keeps_the_old_outputs(
        logs: Path, cfg: Path) -> None:
    log = logs / "000.txt"
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    before = {p.name: p.read_bytes() for p in logs.glob("000.enriched.*")}
    data = LOG.replace("Code:", "\x00Code:").encode()
    if len(data) % 2:  # even, as in the attack: the length UTF-16 needs
        data += b"\n"
    log.write_bytes(data)
    code, _, err = run_cli("run", "--quiet", "--file", str(log), "--config", str(cfg))
    assert code == 2
    assert "NUL byte at line 3, column 1" in err
    assert {p.name: p.read_bytes() for p in logs.glob("000.enriched.*")} == before


def test_2_utf16_without_a_bom_is_still_recognised() -> None:
    text = "日志 https://arxiv.org/abs/2305.09781\r\n第二行\r\n"
    assert decode_bytes(text.encode("utf-16-le"), "x") == (text, "utf-16-le")
    assert decode_bytes(text.encode("utf-16-be"), "x") == (text, "utf-16-be")


def test_2_mostly_utf8_with_a_bad_byte_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes("第一行 arXiv:2305.09781\n第二行 ".encode() + b"\xff" + "好的\n".encode())
    with pytest.raises(Exception, match=r"invalid UTF-8 at line 2, column 5"):
        read_source(path)


def test_2_a_legacy_encoding_is_still_decoded() -> None:
    text = "今天读了论文，代码在这里：https://github.com/o/r\n" * 3
    assert decode_bytes(text.encode("gb18030"), "x") == (text, "gb18030")


# -- 3. the token is cleaned up or refused -----------------------------------------------------


TOKEN = "ghp_SafetyTokenForEnrich0123456789ab"


@pytest.mark.parametrize("saved", ["\ufeff" + TOKEN, TOKEN + "\n", TOKEN + "\r\n",
                                   "  " + TOKEN + "\t"])
def test_3_a_bom_or_surrounding_whitespace_is_stripped_from_the_token(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub],
        monkeypatch: pytest.MonkeyPatch, saved: str) -> None:
    fakes[1].tokens[TOKEN] = "cron"
    monkeypatch.setenv("GITHUB_TOKEN", saved)
    t0 = time.monotonic()
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 0, err
    assert fakes[1].count(credential=TOKEN) >= 1
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("bad", [TOKEN[:10] + "é" + TOKEN[10:], TOKEN[:10] + "\r" + TOKEN[10:],
                                 TOKEN[:10] + " " + TOKEN[10:], TOKEN + "\x1b"])
def test_3_a_token_that_cannot_be_a_header_is_a_config_error_naming_the_variable(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub],
        monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("MY_GH", bad)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(
        "github:\n", "github:\n  token_env: MY_GH\n"), encoding="utf-8")
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2
    assert "MY_GH" in err and "HTTP header" in err and "Traceback" not in err
    assert TOKEN[:12] not in err and TOKEN[-12:] not in err
    assert requests(fakes) == 0
    assert not (logs / "000.enriched.json").exists()


# -- 4. concurrent first opens of a brand-new cache --------------------------------------------

_OPENER = """
import sys, time
from enrich.errors import CacheError
from enrich.store import Store
folder, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
failed = 0
for i in range(count):
    # every process opens file i at the same moment
    time.sleep(max(0.0, start + i * 0.06 - time.time()))
    try:
        Store(f"{folder}/c{i}.sqlite3").close()
    except CacheError as exc:
        failed += 1
        print(exc, file=sys.stderr)
print(failed)
"""


def test_4_concurrent_first_opens_of_a_new_cache_all_succeed(tmp_path: Path) -> None:
    count, procs = 40, 6
    start = time.time() + 1.5  # after every interpreter has started
    running = [subprocess.Popen([sys.executable, "-c", _OPENER, str(tmp_path), str(start),
                                 str(count)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(procs)]
    results = [p.communicate(timeout=120) for p in running]
    assert [out.strip() for out, _ in results] == ["0"] * procs, [e for _, e in results]
    for i in range(count):
        with Store(tmp_path / f"c{i}.sqlite3", readonly=True) as store:
            assert store.stats()["schema_version"] >= 2


# -- 5. the rest -------------------------------------------------------------------------------


def test_5_a_rename_that_fails_after_another_says_which_outputs_are_new(
        logs: Path, cfg: Path) -> None:
    log = logs / "000.txt"
    blocker = logs / "000.enriched.json"  # a folder with a file in it: rename onto it fails
    blocker.mkdir()
    (blocker / "keep").touch()
    code, _, err = run_cli("run", "--file", str(log), "--config", str(cfg))
    assert code == 2
    md = logs / "000.enriched.md"
    assert md.is_file()
    assert f"new: {md}; not written (old or absent): {blocker}" in err
    assert not list(logs.glob(".*.tmp"))


def test_5_a_full_disk_while_writing_the_second_output_keeps_the_old_pair(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    # A real file size limit (RLIMIT_FSIZE) in a real process: the JSON (written first
    # here) fits under it, the long log's markdown does not. Old code renamed the new
    # JSON before it wrote the markdown. (The limit stays above SQLite's 32 KiB -shm.)
    write_config(cfg, *fakes, output={"formats": ["json", "markdown"]})
    log = logs / "000.txt"
    log.write_text(LOG + "filler line\n" * 4000, encoding="utf-8")
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    md, js = logs / "000.enriched.md", logs / "000.enriched.json"
    before = {md: md.read_bytes(), js: js.read_bytes()}
    limit = 40_000
    assert len(before[js]) + 1000 < limit < len(before[md])
    log.write_text(LOG + "one more line\n" + "filler line\n" * 4000, encoding="utf-8")
    script = (
        "import resource, signal, sys\n"
        "from enrich.cli import main\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, "run", "--offline", "--file", str(log),
                           "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cannot write outputs: File too large" in done.stderr
    assert {md: md.read_bytes(), js: js.read_bytes()} == before
    assert not list(logs.glob(".*.tmp"))


def _as_reader(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions bind: as is for a normal user; for root,
    without its capabilities (root ignores permission bits otherwise)."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all", *cmd]


def test_5_a_read_only_cache_folder_serves_offline_dry_run_and_stats(
        logs: Path, cfg: Path, tmp_path: Path) -> None:
    log = logs / "000.txt"
    assert run_cli("run", "--file", str(log), "--config", str(cfg))[0] == 0
    before = load_json(logs / "000.enriched.json")
    folder = cache_of(cfg).parent
    for leftover in folder.iterdir():  # the cron run ended: only the database stays
        if leftover.name != "enrich.sqlite3":
            leftover.unlink()
    folder.chmod(0o555)
    try:
        base = [sys.executable, "-m", "enrich"]
        for args in (["run", "--offline", "--file", str(log), "--config", str(cfg)],
                     ["run", "--dry-run", "--file", str(log), "--config", str(cfg)],
                     ["cache", "stats", "--config", str(cfg)]):
            done = subprocess.run(_as_reader(base + args), capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, (args, done.stderr)
        assert sorted(p.name for p in folder.iterdir()) == ["enrich.sqlite3"]
    finally:
        folder.chmod(0o755)
    after = load_json(logs / "000.enriched.json")
    assert after["papers"] == before["papers"] and after["repos"] == before["repos"]


def test_5_a_record_from_the_future_is_expired() -> None:
    now = datetime.now(UTC)
    future = Cached(Paper(status="not_found"), now + timedelta(days=2))
    assert not future.is_fresh(ttl=30 * 86400, not_found_ttl=7 * 86400, now=now)
    present = Cached(Paper(status="not_found"), now - timedelta(days=1))
    assert present.is_fresh(ttl=30 * 86400, not_found_ttl=7 * 86400, now=now)


def test_5_a_not_found_written_after_a_clock_jump_is_fetched_again(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    cache = cache_of(cfg)
    cache.parent.mkdir()
    with Store(cache) as store:  # a run while the clock was a year ahead
        store.put_papers({"2305.09781": Paper(status="not_found")},
                         datetime.now(UTC) + timedelta(days=365))
        assert store.stats(arxiv_ttl=86400, github_ttl=86400,
                           not_found_ttl=86400)["papers"]["fresh"] == 0
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 0, err
    assert load_json(logs / "000.enriched.json")["papers"]["2305.09781"]["status"] == "ok"
    assert fakes[0].count() == 1


def _enrich_process(args: list[str], *, memory: int | None = None
                    ) -> subprocess.CompletedProcess[str]:
    """``python -m enrich ARGS`` in a real process (a regression hangs or eats memory
    there, not in the test run): 60 s at most, and ``memory`` bytes if given."""
    limit = ("" if memory is None else
             f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n")
    script = limit + "import sys\nfrom enrich.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=60)


def test_5_a_fifo_as_input_is_refused_at_once(tmp_path: Path, cfg: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    done = _enrich_process(["run", "--file", str(fifo), "--config", str(cfg)])
    assert done.returncode == 2
    assert "pipe.txt: is not a regular file" in done.stderr


def test_5_a_device_as_input_is_refused(cfg: Path) -> None:
    done = _enrich_process(["run", "--file", "/dev/zero", "--config", str(cfg)],
                           memory=2 * 10**9)
    assert done.returncode == 2
    assert "/dev/zero: is not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_5_an_input_over_input_max_bytes_is_refused_before_reading(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub]) -> None:
    write_config(cfg, *fakes, input={"max_bytes": "50B"})
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2 and "more than input.max_bytes (50)" in err
    assert requests(fakes) == 0


def test_5_input_max_bytes_defaults_to_1gb_and_takes_sizes(cfg: Path) -> None:
    from enrich.config import Config

    assert Config.load(env={}).input.max_bytes == 10**9
    assert Config.load(env={"ENRICH_INPUT__MAX_BYTES": "2GB"}).input.max_bytes == 2 * 10**9


@pytest.mark.parametrize(("section", "values", "key"), [
    ("http", {"timeout": 0}, "http.timeout"),
    ("http", {"timeout": "0s"}, "http.timeout"),
    ("http", {"max_bytes": 0}, "http.max_bytes"),
    ("http", {"max_bytes": -1}, "http.max_bytes"),
    ("output", {"formats": []}, "output.formats"),
    ("cache", {"path": "~nouser-enrich-test/x.sqlite3"}, "cache.path"),
    ("input", {"max_bytes": 0}, "input.max_bytes"),
])
def test_5_settings_that_cannot_work_are_refused_at_load(
        logs: Path, cfg: Path, fakes: tuple[FakeArxiv, FakeGitHub],
        section: str, values: dict[str, object], key: str) -> None:
    write_config(cfg, *fakes, **{section: values})
    code, _, err = run_cli("run", "--file", str(logs / "000.txt"), "--config", str(cfg))
    assert code == 2
    assert f"config key '{key}'" in err and "Traceback" not in err
    assert requests(fakes) == 0
    assert not (logs / "000.enriched.json").exists()


def test_5_input_file_mode_check_uses_the_file_itself(tmp_path: Path) -> None:
    # a symlink to a regular file is a regular file to read (only outputs are strict)
    real = tmp_path / "real.txt"
    real.write_text(LOG, encoding="utf-8")
    link = tmp_path / "latest.txt"
    link.symlink_to(real)
    text, _, _ = read_source(link)
    assert text == LOG and stat.S_ISLNK(link.lstat().st_mode)
