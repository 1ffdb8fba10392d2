"""Coverage-guided fuzzing of the extractor with atheris (libFuzzer), beside the
hypothesis tests of ``tests/test_hostile_input.py``.

Not part of the test suite, and atheris is not a dependency: ``pip install atheris``
first. Run::

    .venv/bin/python bench/fuzz_extract.py -max_total_time=60

Each input is either raw text or a mix of URL fragments picked by the fuzzer, and
must pass the same checks as the tests: no exception, every id within the grammar
of spec section 2, offsets, lines and columns consistent, and every repository key
mapping to an API path inside ``/repos/{owner}/{repo}``. Any libFuzzer flag may be
given (``-runs=N``, ``-max_len=N``, a corpus folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["enrich"]):
    import enrich.extract  # noqa: F401

from test_hostile_input import FRAGMENTS, check_links  # noqa: E402


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    else:
        parts = []
        while fdp.remaining_bytes() > 0:
            if fdp.ConsumeBool():
                parts.append(FRAGMENTS[fdp.ConsumeIntInRange(0, len(FRAGMENTS) - 1)])
            else:
                parts.append(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 4)))
        text = "".join(parts)
    check_links(text)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
