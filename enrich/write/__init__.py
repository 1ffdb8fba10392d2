"""The output writers: pure functions from text and records to output text, plus
:func:`write_atomic` to put that text on disk.

``render_markdown``/``strip_blocks`` (``STEM.enriched.md``), ``render_json``
(``STEM.enriched.json``) and ``render_bib`` (``STEM.bib``) do no I/O. The
submodules are imported on first use, so ``python -m enrich.write.json`` (which
regenerates the shipped JSON Schema) runs without a double import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .atomic import write_atomic
    from .bib import render_bib
    from .json import json_schema, load_schema, render_json
    from .markdown import BLOCK_END, BLOCK_START, render_markdown, strip_blocks

__all__ = [
    "BLOCK_END",
    "BLOCK_START",
    "json_schema",
    "load_schema",
    "render_bib",
    "render_json",
    "render_markdown",
    "strip_blocks",
    "write_atomic",
]

_LAZY = {
    "BLOCK_END": "markdown",
    "BLOCK_START": "markdown",
    "json_schema": "json",
    "load_schema": "json",
    "render_bib": "bib",
    "render_json": "json",
    "render_markdown": "markdown",
    "strip_blocks": "markdown",
    "write_atomic": "atomic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
