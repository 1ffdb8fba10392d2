"""The enriched JSON (``STEM.enriched.json``, docs/format.md) and its JSON Schema.

The JSON is ``EnrichedDocument.model_dump(mode="json")`` with a stable layout
(two-space indent, UTF-8 text rather than ``\\u`` escapes, papers and repos
sorted by id, a trailing newline), so that nightly runs diff cleanly.

The schema is generated from the pydantic models and shipped as
``enrich/schema/enriched.schema.json``; regenerate it with::

    python -m enrich.write.json > src/enrich/schema/enriched.schema.json

A test compares the shipped file with :func:`json_schema`, so the two cannot
drift. The generated schema is stricter than pydantic's own: every key the
writer always emits is required, and a link carries ``version`` exactly when it
is an arXiv link and ``via`` only as ``"pages"`` (``Link`` drops them otherwise
when serialising, which pydantic cannot express in a schema).
"""

from __future__ import annotations

import copy
import json
import sys
from importlib import resources
from typing import Any

import pydantic_core

from ..models import EnrichedDocument, Link

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_RESOURCE = ("schema", "enriched.schema.json")


def render_json(doc: EnrichedDocument) -> str:
    """The document as JSON text: indent 2, ensure_ascii off, trailing newline.

    Keys keep the model's field order; ``papers`` and ``repos`` are sorted by id.
    """
    if list(doc.papers) != sorted(doc.papers) or list(doc.repos) != sorted(doc.repos):
        doc = doc.model_copy(update={"papers": dict(sorted(doc.papers.items())),
                                     "repos": dict(sorted(doc.repos.items()))})
    try:
        # pydantic writes the same text as json.dumps(indent=2, ensure_ascii=False)
        return doc.model_dump_json(indent=2) + "\n"
    except (pydantic_core.PydanticSerializationError, ValueError):
        # e.g. a lone surrogate (from a JSON "\ud800" escape): keep the stdlib's behaviour
        return json.dumps(doc.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def render_json_bytes(doc: EnrichedDocument) -> bytes:
    """:func:`render_json` encoded as UTF-8: the bytes of ``STEM.enriched.json``.

    A lone surrogate (an API's ``"\\ud800"``) cannot be UTF-8: it is written as the JSON
    escape it came as, which reads back as the same string."""
    return render_json(doc).encode("utf-8", "backslashreplace")


def _link_schema() -> dict[str, Any]:
    """``Link`` as it is serialised: version only for arXiv, via only when set."""
    schema = Link.model_json_schema(mode="validation")
    props = schema["properties"]
    props["via"] = {"const": "pages", "title": "Via", "type": "string"}
    for key in ("version", "via"):
        props[key].pop("default", None)
    schema["additionalProperties"] = False
    schema["required"] = [k for k in props if k not in ("version", "via")]
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": "arxiv"}}},
            "then": {"required": ["version"]},
            "else": {"not": {"required": ["version"]}},
        }
    ]
    schema["description"] = (
        "One occurrence of an arXiv paper or GitHub repository in the text. `version` "
        "(the vN written in the text, or null) is present only for arXiv links; `via` "
        "only for an OWNER.github.io/REPO link verified as a repository."
    )
    return schema


def _require_all(schema: dict[str, Any]) -> None:
    """Mark every property required: ``model_dump`` always writes every field."""
    props = schema.get("properties")
    if isinstance(props, dict):
        schema["required"] = list(props)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`render_json`'s output."""
    schema = copy.deepcopy(EnrichedDocument.model_json_schema(mode="serialization"))
    defs: dict[str, Any] = schema["$defs"]
    for name, sub in defs.items():
        if name != "Link":
            _require_all(sub)
    _require_all(schema)
    defs["Link"] = _link_schema()
    schema["$defs"] = dict(sorted(defs.items()))  # pydantic's order, Link among them
    out: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": "enrich enriched document",
    }
    out.update((k, v) for k, v in schema.items() if k != "title")
    out["description"] = (
        "STEM.enriched.json written by `enrich run` (schema_version 1). papers and repos "
        "are keyed by canonical id: an arXiv id without version, a lower-case owner/repo."
    )
    return out


def load_schema() -> dict[str, Any]:
    """The schema shipped with the package (``enrich/schema/enriched.schema.json``)."""
    ref = resources.files("enrich").joinpath(*SCHEMA_RESOURCE)
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data


def dump_schema() -> str:
    """The schema file's exact text (what the shipped file must equal)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dump_schema())
