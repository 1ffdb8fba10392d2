"""Config precedence, durations, key-naming errors, cache path resolution, token handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrich.config import Config, default_cache_path, parse_duration
from enrich.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("3s", 3), ("250ms", 0.25),
     (7, 7), ("1.5s", 1.5), ("2w", 14 * 86400), ("45", 45)],
)
def test_durations_accept_units_and_seconds(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["soon", "-3s", True, "3 days", ""])
def test_bad_duration_is_rejected(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_defaults_match_the_spec() -> None:
    cfg = Config.load()
    assert cfg.arxiv.api_url == "https://export.arxiv.org/api/query"
    assert cfg.arxiv.batch_size == 100
    assert cfg.arxiv.min_interval == 3.0
    assert cfg.github.api_url == "https://api.github.com"
    assert cfg.github.graphql_url == "https://api.github.com/graphql"
    assert cfg.github.batch_size == 100 and cfg.github.concurrency == 4
    assert cfg.github.max_wait == 300.0
    assert cfg.http.timeout == 20.0 and cfg.http.max_retries == 4
    assert cfg.cache.arxiv_ttl == 30 * 86400 and cfg.cache.github_ttl == 86400
    assert cfg.cache.not_found_ttl == 7 * 86400
    assert cfg.output.formats == ["markdown", "json"]


def test_shipped_config_yaml_equals_the_builtin_defaults() -> None:
    shipped = Path(__file__).resolve().parent.parent / "config.yaml"
    from_file = Config.load(shipped)
    builtin = Config.load()
    assert from_file.model_dump(exclude={"cache"}) == builtin.model_dump(exclude={"cache"})
    exclude = {"path"}
    assert from_file.cache.model_dump(exclude=exclude) == builtin.cache.model_dump(exclude=exclude)
    assert from_file.cache_path == shipped.parent / "cache" / "enrich.sqlite3"


def test_without_any_config_file_the_cache_lives_in_the_user_cache_folder(tmp_path: Path) -> None:
    cfg = Config.load()
    assert cfg.cache_path == default_cache_path()
    assert str(cfg.cache_path).startswith(str(tmp_path / "home"))
    assert not str(cfg.cache_path).startswith(str(Path.cwd()))


def test_precedence_flags_over_env_over_file_over_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("arxiv:\n  batch_size: 50\n  min_interval: 10s\nhttp:\n  timeout: 5s\n")
    monkeypatch.setenv("ENRICH_ARXIV__BATCH_SIZE", "25")
    cfg = Config.load(f, overrides={"http.timeout": "1s"})
    assert cfg.arxiv.batch_size == 25          # env beats file
    assert cfg.arxiv.min_interval == 10.0      # file beats default
    assert cfg.http.timeout == 1.0             # flag beats file


def test_env_values_are_yaml_scalars_or_flow_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENRICH_OUTPUT__FORMATS", "[json, bib]")
    monkeypatch.setenv("ENRICH_GITHUB__API_URL", "http://127.0.0.1:9/")
    cfg = Config.load()
    assert cfg.output.formats == ["json", "bib"]
    assert cfg.github.api_url == "http://127.0.0.1:9/"


def test_enrich_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "named.yaml"
    f.write_text("github:\n  concurrency: 2\n")
    monkeypatch.setenv("ENRICH_CONFIG", str(f))
    assert Config.load().github.concurrency == 2


def test_local_config_yaml_is_used_when_present() -> None:
    Path("config.yaml").write_text("github:\n  concurrency: 3\n")
    assert Config.load().github.concurrency == 3


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [("arxiv:\n  batchsize: 3\n", "arxiv.batchsize"),
     ("nosuch:\n  a: 1\n", "nosuch"),
     ("http:\n  timeout: forever\n", "http.timeout"),
     ("github:\n  concurrency: many\n", "github.concurrency"),
     ("output:\n  formats: [pdf]\n", "output.formats.0"),
     ("cache: 3\n", "cache")],
)
def test_unknown_keys_and_wrong_types_name_the_key(tmp_path: Path, yaml_text: str,
                                                   key: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        Config.load(f)
    assert err.value.key == key
    assert key in str(err.value)
    assert str(f) in str(err.value)


def test_unknown_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENRICH_HTTP__TIMEOUTT", "3s")
    with pytest.raises(ConfigError, match=r"http\.timeoutt"):
        Config.load()


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("arxiv:\n  batch_size: [1,\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml.*line"):
        Config.load(f)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.yaml")


def test_relative_cache_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    d = tmp_path / "conf"
    d.mkdir()
    f = d / "config.yaml"
    f.write_text("cache:\n  path: data/c.sqlite3\n")
    assert Config.load(f).cache_path == d / "data" / "c.sqlite3"


def test_relative_cache_path_from_env_is_relative_to_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "conf"
    d.mkdir()
    f = d / "config.yaml"
    f.write_text("cache:\n  path: data/c.sqlite3\n")
    monkeypatch.setenv("ENRICH_CACHE__PATH", "elsewhere.sqlite3")
    assert Config.load(f).cache_path == Path.cwd() / "elsewhere.sqlite3"


def test_token_is_read_from_the_named_variable_and_kept_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_GH", "ghp_secretvalue123")
    monkeypatch.setenv("ENRICH_GITHUB__TOKEN_ENV", "MY_GH")
    cfg = Config.load()
    assert cfg.token is not None
    assert cfg.token.get_secret_value() == "ghp_secretvalue123"
    assert "ghp_secretvalue123" not in repr(cfg)
    assert "ghp_secretvalue123" not in cfg.model_dump_json()
    assert "ghp_secretvalue123" not in str(cfg.token)


def test_config_built_in_code_raises_config_error_naming_the_key() -> None:


    with pytest.raises(ConfigError, match=r"arxiv\.batch_size"):
        Config(arxiv={"batch_size": 0})
    cfg = Config()
    with pytest.raises(ConfigError, match="batch_size"):
        cfg.arxiv.batch_size = "many"  # type: ignore[assignment]


def test_a_bad_environment_variable_is_named_as_the_source(tmp_path: Path) -> None:


    file = tmp_path / "config.yaml"
    file.write_text("arxiv:\n  batch_size: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Config.load(file, env={"ENRICH_ARXIV__BATCH_SIZE": "many"})
    assert "environment variable ENRICH_ARXIV__BATCH_SIZE" in str(caught.value)
    assert str(file) not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Config.load(file, env={}, overrides={"output.formats": ["pdf"]})
    assert "output.formats" in str(caught.value) and "command line" in str(caught.value)
