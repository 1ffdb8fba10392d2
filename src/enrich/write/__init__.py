"""The output writers: pure functions from text and records to output text
(:mod:`.markdown` for ``STEM.enriched.md``, :mod:`.json` for ``STEM.enriched.json``,
:mod:`.bib` for ``STEM.bib``), and :mod:`.atomic` to put that text on disk.

Nothing is imported here, so that ``python -m enrich.write.json`` (which regenerates the
shipped JSON Schema) runs without a double import.
"""
