"""Read an input log: bytes from disk to text, and the encoding to write back in.

Why it is careful: the user's logs are mostly UTF-8, but Chinese logs saved
by older Windows tools are GBK/GB18030 or UTF-16 with a byte-order mark, and
a cron job pointed at the wrong file (a PDF, a directory, a half-written
file) must fail loudly with exit 2 instead of writing nonsense.

Nothing is normalised: line endings (``\\n``, ``\\r\\n``, ``\\r``) are kept
as they are, so the markdown writer can reproduce every line byte for byte.
A byte-order mark is removed from the text and remembered in the encoding
name (``utf-8-sig``, ``utf-16``), so that ``text.encode(encoding)`` writes
it back.

Order of attempts, strictest first: a BOM; strict UTF-8; strict GB18030 when
the result reads like Chinese; charset-normalizer's best guess.
"""

from __future__ import annotations

import codecs
import logging
import os
from pathlib import Path

from .errors import InputError

__all__ = ["decode_bytes", "read_source", "read_text"]

log = logging.getLogger(__name__)

#: Bytes looked at to decide whether a file is binary.
_SNIFF = 1 << 16
#: A file whose first bytes are more than this share of control characters
#: (other than tab, line breaks, form feed and ESC of terminal colours) is binary.
_MAX_CONTROL_SHARE = 0.10
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0b\x0c\x1b") + b"\x7f"
#: GB18030 is accepted without a detector when at least this share of the
#: non-ASCII characters are common Chinese (GB2312 level-1 hanzi, symbols).
_MIN_COMMON_CHINESE = 0.80

#: BOMs, longest first (the UTF-32-LE BOM begins with the UTF-16-LE one).
#: The codec names both strip the BOM when decoding and write one when
#: encoding (``utf-16``/``utf-32`` in the machine's byte order).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of an input file; :class:`InputError` if it is no usable text."""
    return read_source(path)[0]


def read_source(path: str | os.PathLike[str]) -> tuple[str, bytes, str]:
    """``(text, raw bytes, encoding)`` of an input file.

    The pipeline needs the raw bytes for the source's sha256 and size, and
    the encoding to write the enriched markdown in the file's own encoding.
    """
    name = os.fspath(path)
    p = Path(name)
    try:
        if p.is_dir():
            raise InputError(name, "is a directory, not a file")
        data = p.read_bytes()
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except IsADirectoryError:
        raise InputError(name, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except OSError as err:
        raise InputError(name, f"cannot read: {err.strerror or err}") from None
    text, encoding = decode_bytes(data, name)
    return text, data, encoding


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode a file's bytes: ``(text, encoding)``.

    ``encoding`` is a Python codec name such that ``text.encode(encoding)``
    gives the file's encoding back, BOM included (a UTF-16 big-endian file
    is written back in the machine's byte order, with its BOM). ``name`` is
    only used in the :class:`InputError` raised for binary or undecodable
    data.
    """
    if not data:
        return "", "utf-8"
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as err:
                reason = f"invalid {codec.upper()} text at byte {err.start}"
                raise InputError(name, reason) from None
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        if utf16 is not None:
            return utf16
        raise InputError(name, "binary file (contains NUL bytes)")
    sniff = data[:_SNIFF]
    controls = len(sniff) - len(sniff.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_SHARE * len(sniff):
        raise InputError(name, "binary file (mostly control bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        if _reads_as_chinese(text):
            return text, "gb18030"
    guessed = _detect(data)
    if guessed is not None:
        return guessed
    raise InputError(name, "cannot decode: not UTF-8, UTF-16, GB18030 or another known encoding")


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NUL bytes only ever in every other byte, a strict
    decode, and (almost) no control characters in the result; binary data
    fails one of these."""
    if len(data) % 2:
        return None
    # Little-endian ASCII is "a\0": NULs at odd offsets, never at even ones.
    for never_nul, codec in ((data[0::2], "utf-16-le"), (data[1::2], "utf-16-be")):
        if b"\x00" in never_nul:
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            return None
        sample = text[:_SNIFF]
        if sum(1 for c in sample if c < " " and c not in "\t\n\r\x0b\x0c\x1b") > 0.01 * len(sample):
            return None
        return text, codec
    return None


def _reads_as_chinese(text: str) -> bool:
    """Whether a strict GB18030 decode looks like real Chinese, not mojibake.

    GB18030 decodes most Big5 or Shift-JIS byte strings without error, into
    rare characters. Real simplified-Chinese text is made overwhelmingly of
    the 3,755 common hanzi of GB2312 level 1 and GB2312's punctuation, which
    are exactly the GB2312 codes with lead bytes 0xB0-0xD7 and 0xA1-0xA9.
    """
    common = other = 0
    for ch in text:
        if ch < "\x80":
            continue
        try:
            lead = ch.encode("gb2312")[0]
        except UnicodeEncodeError:
            other += 1
            continue
        if 0xB0 <= lead <= 0xD7 or 0xA1 <= lead <= 0xA9:
            common += 1
        else:
            other += 1
        if common + other >= 20_000:
            break  # enough evidence
    total = common + other
    return total > 0 and common >= _MIN_COMMON_CHINESE * total


def _detect(data: bytes) -> tuple[str, str] | None:
    """charset-normalizer's best guess, or None when it has none."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    best = from_bytes(data).best()
    if best is None:
        return None
    log.debug("detected %s (chaos %.2f)", best.encoding, best.percent_chaos)
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError):  # pragma: no cover - the detector decoded it
        return None
