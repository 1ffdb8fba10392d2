"""The data enrich produces: links found in text, paper and repository records,
and the enriched document (the JSON described in docs/format.md).

All models are pydantic v2. ``EnrichedDocument.model_dump_json()`` is the
``STEM.enriched.json`` output; its JSON Schema ships in ``enrich/schema/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_serializer

SCHEMA_VERSION = 1


LinkKind = Literal["arxiv", "github"]
Status = Literal["ok", "stale", "not_found", "unavailable", "missing", "error"]
STATUSES: tuple[Status, ...] = ("ok", "stale", "not_found", "unavailable", "missing", "error")


class Link(BaseModel):
    """One occurrence of an arXiv paper or GitHub repository in a text.

    ``id`` is canonical (docs/format.md, Links): an arXiv id without version and
    without subject class, or a lower-case ``owner/repo``. ``line`` and
    ``column`` are 1-based (columns count code points); ``start``/``end`` are
    0-based code-point offsets into the text, ``text[start:end] == text``.
    """

    model_config = ConfigDict(frozen=True)

    kind: LinkKind
    id: str
    version: str | None = None
    text: str
    line: int = Field(ge=1)
    column: int = Field(ge=1)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    via: Literal["pages"] | None = None

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: Any) -> dict[str, Any]:
        return _link_out(handler(self))


def _link_out(data: dict[str, Any]) -> dict[str, Any]:
    """A link's fields as written: ``version`` only for arXiv, ``via`` only when set."""
    if data.get("kind") != "arxiv":
        data.pop("version", None)
    if data.get("via") is None:
        data.pop("via", None)
    return data


class Record(BaseModel):
    """What every paper and repository record has."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    fetched_at: datetime | None = None
    linked_from: list[str] | None = None


class Paper(Record):
    """arXiv metadata for one paper, keyed by its canonical id."""

    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    abstract: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    latest_version: str | None = None
    primary_category: str | None = None
    categories: list[str] = Field(default_factory=list)
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    abs_url: str | None = None
    pdf_url: str | None = None
    code: list[str] = Field(default_factory=list)


class License(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spdx_id: str | None = None
    name: str | None = None


class StarTrend(BaseModel):
    """Star growth computed from the cache's history of observations."""

    model_config = ConfigDict(extra="forbid")

    since_previous: int | None = None
    week: int | None = None
    month: int | None = None
    sparkline: str | None = None


class Repo(Record):
    """GitHub metadata for one repository, keyed by lower-case ``owner/repo``."""

    full_name: str | None = None
    html_url: str | None = None
    description: str | None = None
    homepage: str | None = None
    stars: int | None = None
    forks: int | None = None
    license: License | None = None
    topics: list[str] = Field(default_factory=list)
    language: str | None = None
    archived: bool | None = None
    fork: bool | None = None
    pushed_at: datetime | None = None
    renamed_from: str | None = None
    papers: list[str] = Field(default_factory=list)
    trend: StarTrend | None = None


class ErrorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: LinkKind
    id: str
    message: str


class SourceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    bytes: int


class EnrichedDocument(BaseModel):
    """The enriched JSON (``schema_version: 1``; docs/format.md)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    source: SourceInfo | None = None
    generated_at: datetime
    links: list[Link] = Field(default_factory=list)
    papers: dict[str, Paper] = Field(default_factory=dict)
    repos: dict[str, Repo] = Field(default_factory=dict)
    errors: list[ErrorEntry] = Field(default_factory=list)


class SourceCounts(BaseModel):
    """Per-source figures of one file's run: what the summary line reports."""

    found: int = 0
    from_cache: int = 0
    fetched: int = 0
    failed: int = 0


class Failure(NamedTuple):
    """A record a run could not serve current: its status and why (for the report).

    A tuple, not a model: a big log's offline run has hundreds of thousands."""

    kind: LinkKind
    id: str
    status: Status
    message: str


class FileReport(BaseModel):
    """What a run did for one input file."""

    path: str
    exit_code: int = 0
    papers: SourceCounts = Field(default_factory=SourceCounts)
    repos: SourceCounts = Field(default_factory=SourceCounts)
    outputs: list[str] = Field(default_factory=list)
    error: str | None = None
    failures: list[Failure] = Field(default_factory=list)
    """The records that could not be served current, with why."""


class RunReport(BaseModel):
    """What a whole ``enrich run`` did; ``exit_code`` is the worst file's."""

    files: list[FileReport] = Field(default_factory=list)
    requests: dict[str, int] = Field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        codes = [f.exit_code for f in self.files] or [0]
        for code in (2, 1):
            if code in codes:
                return code
        return max(codes)
