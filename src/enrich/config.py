"""Configuration: built-in defaults < config file < ``ENRICH_*`` environment < flags.

The config file is ``--config FILE``, else ``$ENRICH_CONFIG``, else
``./config.yaml`` when present. Environment overrides are
``ENRICH_<SECTION>__<KEY>`` whose values are read as YAML scalars or flow lists.
Unknown keys and wrong types raise :class:`~enrich.errors.ConfigError` naming
the key. Durations accept ``30d``, ``12h``, ``90m``, ``3s``, ``250ms`` or a number
of seconds. The GitHub token is read from the variable named by
``github.token_env`` and kept as a :class:`~pydantic.SecretStr`; it is never
written anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)

from .errors import ConfigError
from .textio import DEFAULT_MAX_BYTES

ENV_PREFIX = "ENRICH_"
DEFAULT_CONFIG_NAME = "config.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``30d``, ``12h``, ``90m``, ``3s``, ``250ms`` or a number."""
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"not a duration: {value!r} (use e.g. 30d, 12h, 90m, 3s or seconds)")


Duration = Annotated[float, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20,
               "gb": 10**9, "gib": 2**30}


def parse_size(value: Any) -> int:
    """Bytes from ``20MB``, ``512KiB`` or a number."""
    if isinstance(value, bool):
        raise ValueError("a size, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(m.group(1)) * _SIZE_UNITS[unit]
    raise ValueError(f"not a size: {value!r} (use e.g. 20MB or bytes)")


Size = Annotated[int, BeforeValidator(parse_size)]


class _Section(BaseModel):
    """A section of the config: assigning a value that cannot work raises ConfigError."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise _config_error(exc, None, {}) from None


class CacheConfig(_Section):
    path: Path | None = None
    """SQLite file; None means the user's cache folder (~/.cache/enrich/enrich.sqlite3)."""
    arxiv_ttl: Duration = 30 * 86400.0
    github_ttl: Duration = 86400.0
    not_found_ttl: Duration = 7 * 86400.0
    url: str | None = None
    """A PostgreSQL database (``postgresql://user@host:port/dbname``) shared by several
    hosts instead of the SQLite file; None (the default) keeps the SQLite cache."""
    lease: Duration = Field(default=60.0, gt=0, le=60.0)
    """PostgreSQL cache: how long a run's claim on the ids it fetches lasts unless it is
    renewed (it is, every third of it, while the run works)."""
    poll_interval: Duration = Field(default=1.0, gt=0)
    """PostgreSQL cache: how often a run waiting for ids another run claimed looks again."""

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql://user@host:port/dbname URL")
        return value


class ArxivConfig(_Section):
    api_url: str = "https://export.arxiv.org/api/query"
    batch_size: int = Field(default=100, ge=1, le=2000)
    min_interval: Duration = 3.0
    """arXiv's terms: at most one request every 3 seconds, one connection at a time."""
    throttle_wait: Duration = 60.0
    """Wait after a 429 that names no Retry-After, before the one retry; a second 429 in
    a row stops asking arXiv for the rest of the run."""


class GithubConfig(_Section):
    api_url: str = "https://api.github.com"
    graphql_url: str = "https://api.github.com/graphql"
    token_env: str = "GITHUB_TOKEN"
    batch_size: int = Field(default=100, ge=1, le=100)
    concurrency: int = Field(default=4, ge=1, le=100)
    max_wait: Duration = 300.0
    """Longest total wait on rate limits in one run before giving up on GitHub."""
    secondary_wait: Duration = 60.0
    """Wait after a secondary rate limit that names no Retry-After (GitHub: at least 1 minute)."""


class HttpConfig(_Section):
    timeout: Duration = Field(default=20.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff: Duration = 1.0
    """First backoff after a transient failure; doubles each retry, with jitter."""
    backoff_max: Duration = 60.0
    max_bytes: Size = Field(default=20 * 10**6, gt=0)
    """Largest response body accepted; a larger one is an error, not a memory blow-up."""
    user_agent: str | None = None


OutputFormat = Literal["markdown", "json", "bib"]


def _default_formats() -> list[OutputFormat]:
    return ["markdown", "json"]


class OutputConfig(_Section):
    formats: list[OutputFormat] = Field(default_factory=lambda: _default_formats(),
                                        min_length=1)


class InputConfig(_Section):
    max_bytes: Size = Field(default=DEFAULT_MAX_BYTES, gt=0)
    """Largest input log read; a larger one is an input error (checked before reading)."""


class Config(_Section):
    """The whole configuration. Build it with :meth:`load`; ``Config(...)`` in code also
    raises ConfigError for a value that cannot work."""

    cache: CacheConfig = Field(default_factory=CacheConfig)
    arxiv: ArxivConfig = Field(default_factory=ArxivConfig)
    github: GithubConfig = Field(default_factory=GithubConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    input: InputConfig = Field(default_factory=InputConfig)

    _token: SecretStr | None = PrivateAttr(default=None)
    _source: Path | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # pydantic calls this for model_validate too: load() adds where the value came from
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc, None, {}) from None

    # -- loading -----------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *,
             env: Mapping[str, str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> Config:
        """Load ``path`` (or the default file, if any), then env, then ``overrides``.

        ``overrides`` maps dotted keys (``"arxiv.min_interval"``) to values.
        """
        env = os.environ if env is None else env
        file_path = _find_config_file(path, env)
        data: dict[str, Any] = {}
        if file_path is not None:
            data = _read_yaml(file_path)
        env_data, env_names = _env_overrides(env)
        merged = _deep_merge(data, env_data)
        origins = dict(env_names)  # dotted key -> where its value came from, if not the file
        if overrides:
            for dotted, value in overrides.items():
                section, _, key = dotted.partition(".")
                merged.setdefault(section, {})
                if not isinstance(merged[section], dict):
                    raise ConfigError("must be a mapping", key=section)
                merged[section][key] = value
                origins[dotted] = "the command line"
        try:
            cfg = Config.model_validate(merged)
        except ConfigError as exc:
            key = exc.key or ""
            where = next((origin for k, origin in origins.items()
                          if key == k or key.startswith(k + ".")),
                         str(file_path) if file_path else None)
            raise ConfigError(exc.reason, key=exc.key, source=where) from None
        cfg._source = file_path
        cfg._resolve_cache_path(file_path, data)
        name = cfg.github.token_env
        cfg._token = clean_token(env.get(name), f"the environment variable {name} "
                                 "(named by github.token_env)")
        return cfg

    def _resolve_cache_path(self, file_path: Path | None, file_data: dict[str, Any]) -> None:
        path = self.cache.path
        if path is None:
            self.cache.path = default_cache_path()
            return
        try:
            path = path.expanduser()
        except RuntimeError:  # ~nouser/x, or ~ without a home folder
            raise ConfigError(f"cannot expand {str(path).split('/')[0]!r}: no such user "
                              "or home folder", key="cache.path", source=_where(file_path)
                              ) from None
        if not path.is_absolute():
            from_file = (
                file_path is not None
                and isinstance(file_data.get("cache"), dict)
                and "path" in file_data["cache"]
                and str(file_data["cache"]["path"]) == str(self.cache.path)
            )
            base = file_path.parent if (from_file and file_path is not None) else Path.cwd()
            path = base / path
        self.cache.path = path.resolve()

    # -- access --------------------------------------------------------------------

    @property
    def token(self) -> SecretStr | None:
        """The GitHub token from ``$<github.token_env>``, or None."""
        return self._token

    @token.setter
    def token(self, value: str | SecretStr | None) -> None:
        if isinstance(value, str):
            value = clean_token(value, "the token")
        self._token = value

    @property
    def source(self) -> Path | None:
        """The config file this was loaded from, if any."""
        return self._source

    @property
    def cache_path(self) -> Path:
        return self.cache.path if self.cache.path is not None else default_cache_path()


def clean_token(value: str | None, where: str) -> SecretStr | None:
    """The token without surrounding whitespace or byte-order mark; None if empty.

    A token file saved with a BOM or a final newline is common. Anything else that
    cannot be sent in an HTTP header (a control or non-ASCII character) is a
    :class:`ConfigError` naming ``where`` the token came from, never its value.
    """
    if value is None:
        return None
    token = value.strip().lstrip("\ufeff").strip()
    if not token:
        return None
    if not all("!" <= ch <= "~" for ch in token):
        raise ConfigError(f"{where} holds a character that cannot be sent in an HTTP header "
                          "(a space, control or non-ASCII character); a GitHub token is "
                          "plain ASCII: save it again without it")
    return SecretStr(token)


def _where(file_path: Path | None) -> str | None:
    return str(file_path) if file_path is not None else None


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/enrich/enrich.sqlite3``, else ``~/.cache/enrich/enrich.sqlite3``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "enrich" / "enrich.sqlite3"


def _find_config_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found or not a file", source=str(p))
        return p.resolve()
    named = env.get("ENRICH_CONFIG")
    if named:
        p = Path(named)
        if not p.is_file():
            raise ConfigError("config file named by $ENRICH_CONFIG not found", source=str(p))
        return p.resolve()
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local.resolve() if local.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    # imported here, not at the top: ~0.02 s that a run without a config file (and
    # without ENRICH_* variables), `enrich extract` or ``import enrich`` never needs
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"not valid YAML{where}", source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections", source=str(path))
    for section, body in data.items():
        if body is None:
            data[section] = {}
        elif not isinstance(body, dict):
            raise ConfigError("a section must be a mapping", key=str(section), source=str(path))
    return data


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``ENRICH_<SECTION>__<KEY>`` values by section, and each dotted key's variable."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == "ENRICH_CONFIG":
            continue
        rest = name[len(ENV_PREFIX):]
        section, sep, key = rest.partition("__")
        if not sep or not section or not key:
            continue
        import yaml  # see _read_yaml

        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            raise ConfigError(f"environment variable {name} is not a YAML scalar or flow list",
                              key=f"{section.lower()}.{key.lower()}") from None
        if isinstance(value, dict):
            raise ConfigError(f"environment variable {name} must be a scalar or a list",
                              key=f"{section.lower()}.{key.lower()}")
        out.setdefault(section.lower(), {})[key.lower()] = value
        names[f"{section.lower()}.{key.lower()}"] = f"environment variable {name}"
    return out, names


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return merged


def _config_error(exc: ValidationError, source: str | None,
                  origins: Mapping[str, str]) -> ConfigError:
    """pydantic's first complaint as a ConfigError naming the key and where its value
    came from: the ``ENRICH_…`` variable or the command line, else the file."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    return ConfigError(msg, key=key or None, source=origins.get(key, source))
