"""The enriched JSON writer and the shipped JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

import enrich.write.json as write_json
from enrich.extract import extract
from enrich.models import (
    STATUSES,
    EnrichedDocument,
    ErrorEntry,
    License,
    Link,
    Paper,
    Repo,
    SourceInfo,
    StarTrend,
)
from enrich.write.json import (
    dump_schema,
    json_schema,
    load_schema,
    render_json,
    render_json_bytes,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def validator() -> Any:
    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def full_doc() -> EnrichedDocument:
    """A document using every status, every field and both link kinds."""
    links = [
        Link(kind="arxiv", id="2305.09781", version="v2", text="arxiv.org/abs/2305.09781v2",
             line=3, column=40, start=80, end=106),
        Link(kind="arxiv", id="math/0309136", text="arXiv:math.GT/0309136", line=4, column=1,
             start=107, end=128),
        Link(kind="github", id="flexflow/flexflow",
             text="https://github.com/flexflow/FlexFlow/tree/inference", line=5, column=7,
             start=135, end=186),
        Link(kind="github", id="owner/site", text="owner.github.io/site", line=6, column=1,
             start=190, end=210, via="pages"),
    ]
    papers = {
        "2305.09781": Paper(
            status="ok", fetched_at=NOW, title="SpecInfer", authors=["Xupeng Miao"],
            abstract="We present ... github.com/flexflow/FlexFlow", published=NOW, updated=NOW,
            latest_version="v4", primary_category="cs.CL", categories=["cs.CL", "cs.LG"],
            doi="10.1145/3620666.3651335", journal_ref="ASPLOS 2024", comment="中文注释",
            abs_url="https://arxiv.org/abs/2305.09781v4",
            pdf_url="https://arxiv.org/pdf/2305.09781v4", code=["flexflow/flexflow"]),
        "math/0309136": Paper(status="stale", fetched_at=NOW, title="Old"),
        "1706.03762": Paper(status="ok", linked_from=["flexflow/flexflow"], title="Attention"),
    }
    papers.update({f"2401.0000{i}": Paper(status=s) for i, s in enumerate(STATUSES)})
    repos = {
        "flexflow/flexflow": Repo(
            status="ok", fetched_at=NOW, full_name="flexflow/FlexFlow",
            html_url="https://github.com/flexflow/FlexFlow", description="LLM serving",
            homepage="https://flexflow.ai", stars=1712, forks=229,
            license=License(spdx_id="Apache-2.0", name="Apache License 2.0"),
            topics=["llm"], language="C++", archived=False, fork=False, pushed_at=NOW,
            renamed_from="flexflow/flexflow-old", papers=["2305.09781"],
            trend=StarTrend(since_previous=3, week=56, month=300, sparkline="▁▂▃")),
        "owner/site": Repo(status="not_found", fetched_at=NOW),
    }
    repos.update({f"x/r{i}": Repo(status=s) for i, s in enumerate(STATUSES)})
    return EnrichedDocument(
        source=SourceInfo(path="000.txt", sha256="ab" * 32, bytes=18363), generated_at=NOW,
        links=links, papers=papers, repos=repos,
        errors=[ErrorEntry(kind="github", id="x/r5", message="HTTP 502 after 4 tries")])


def test_json_output_validates_against_the_shipped_schema() -> None:
    validator().validate(json.loads(render_json(full_doc())))
    validator().validate(json.loads(render_json(EnrichedDocument(generated_at=NOW))))


def test_json_shipped_schema_file_equals_the_generated_schema() -> None:
    shipped = Path(write_json.__file__).parent.parent / "schema" / "enriched.schema.json"
    assert shipped.read_text(encoding="utf-8") == dump_schema(), (
        "regenerate: python -m enrich.write.json > src/enrich/schema/enriched.schema.json")
    assert load_schema() == json_schema()


def test_json_is_the_models_own_dump_with_a_stable_layout() -> None:
    doc = full_doc()
    text = render_json(doc)
    assert text.endswith("}\n") and text.startswith('{\n  "schema_version": 1,\n')
    data = json.loads(text)
    assert data == json.loads(doc.model_dump_json())
    assert list(data) == ["schema_version", "source", "generated_at", "links", "papers",
                          "repos", "errors"]
    assert list(data["papers"]) == sorted(data["papers"])
    assert list(data["repos"]) == sorted(data["repos"])
    assert "中文注释" in text and "★" not in text  # UTF-8 kept, not \\u escaped
    assert data["generated_at"] == "2026-11-29T03:00:00Z"
    assert EnrichedDocument.model_validate_json(text) == doc


def test_json_key_order_of_records_does_not_depend_on_insertion_order() -> None:
    doc = full_doc()
    reversed_doc = doc.model_copy(update={
        "papers": dict(reversed(doc.papers.items())), "repos": dict(reversed(doc.repos.items()))})
    assert render_json(reversed_doc) == render_json(doc)


def test_json_link_version_only_for_arxiv_and_via_only_when_set() -> None:
    data = json.loads(render_json(full_doc()))
    arxiv, arxiv_no_version, github, pages = data["links"]
    assert arxiv["version"] == "v2" and "via" not in arxiv
    assert "version" in arxiv_no_version and arxiv_no_version["version"] is None
    assert "version" not in github and "via" not in github
    assert pages["via"] == "pages" and "version" not in pages
    assert list(arxiv) == ["kind", "id", "version", "text", "line", "column", "start", "end"]
    # the document writes its links in one loop: exactly as each Link serialises itself,
    # whether it was validated or built by the extractor's shortcut
    doc = full_doc()
    extracted = extract("see arXiv:2305.09781v3 and github.com/a/b\n")
    doc = doc.model_copy(update={"links": [*doc.links, *extracted]})
    assert json.loads(render_json(doc))["links"] == [
        json.loads(lk.model_dump_json()) for lk in doc.links]
    assert doc.model_dump()["links"] == [lk.model_dump() for lk in doc.links]


def _link(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": "arxiv", "id": "2305.09781", "version": None,
                            "text": "arXiv:2305.09781", "line": 1, "column": 1,
                            "start": 0, "end": 16}
    data.update(kw)
    return {k: v for k, v in data.items() if v != "DROP"}


@pytest.mark.parametrize(("mutate", "why"), [
    (lambda d: d["links"].append(_link(kind="github", id="a/b", version="v1")),
     "github link with version"),
    (lambda d: d["links"].append(_link(version="DROP")), "arxiv link without version"),
    (lambda d: d["links"].append(_link(via="other")), "via other than pages"),
    (lambda d: d["links"].append(_link(line=0)), "line 0"),
    (lambda d: d["links"].append(_link(extra=1)), "unknown link key"),
    (lambda d: d["papers"]["2305.09781"].update(status="fine"), "unknown status"),
    (lambda d: d["papers"]["2305.09781"].pop("doi"), "paper without doi key"),
    (lambda d: d["repos"]["flexflow/flexflow"].update(stars="many"), "stars not a number"),
    (lambda d: d["repos"]["flexflow/flexflow"].update(color="red"), "unknown repo key"),
    (lambda d: d.update(schema_version=2), "other schema version"),
    (lambda d: d.pop("errors"), "missing errors"),
])
def test_json_schema_rejects_what_the_writer_never_writes(mutate: Any, why: str) -> None:
    data = json.loads(render_json(full_doc()))
    mutate(data)
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(data)


def test_json_schema_accepts_a_github_pages_link_and_linked_records() -> None:
    data = json.loads(render_json(full_doc()))
    data["links"].append(_link(kind="github", id="a/b", version="DROP", via="pages"))
    validator().validate(data)
    assert data["papers"]["1706.03762"]["linked_from"] == ["flexflow/flexflow"]


def test_json_schema_module_prints_the_schema() -> None:
    # -W error: the lazy enrich.write package must not import the module before runpy does
    out = subprocess.run([sys.executable, "-W", "error", "-m", "enrich.write.json"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout == dump_schema()


def test_a_lone_surrogate_from_an_api_is_written_as_its_json_escape() -> None:
    doc = EnrichedDocument(generated_at=NOW, repos={"a/b": Repo(status="ok",
                                                                   description="x\ud800y")})
    data = render_json_bytes(doc)
    data.decode("utf-8")  # the file is valid UTF-8
    assert json.loads(data)["repos"]["a/b"]["description"] == "x\ud800y"
