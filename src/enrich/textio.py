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
the result reads like Chinese; then a file that is mostly UTF-8 is an error
naming the first bad byte's line and column (never guessed as another
encoding); last, charset-normalizer's best guess. UTF-16 without a BOM is
taken only from the NUL pattern of real UTF-16 text, never from a stray NUL.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import stat

from .errors import InputError

__all__ = ["DEFAULT_MAX_BYTES", "decode_bytes", "read_source", "read_text"]

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
#: UTF-16 without a BOM is only guessed when at least this share of its code units
#: hold a NUL byte (ASCII characters do, line breaks included), never from a stray NUL.
_MIN_UTF16_NUL_SHARE = 0.05
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
#: The largest input read when no ``input.max_bytes`` is given (1 GB).
DEFAULT_MAX_BYTES = 10**9

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


def read_text(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of an input file; :class:`InputError` if it is no usable text."""
    return read_source(path, max_bytes=max_bytes)[0]


def read_source(path: str | os.PathLike[str], *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, bytes, str]:
    """``(text, raw bytes, encoding)`` of an input file.

    The pipeline needs the raw bytes for the source's sha256 and size, and
    the encoding to write the enriched markdown in the file's own encoding.
    Only a regular file is read (a FIFO would hang the run, ``/dev/zero`` fill
    the memory), and only up to ``max_bytes`` (``input.max_bytes``).
    """
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it).
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except OSError as err:
        raise InputError(name, f"cannot read: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        _check_file(name, info, max_bytes)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            # read() allocates what it is asked for: ask for the file's size (+ 1 to see
            # whether it grew since), and only then for the rest up to the limit
            data = fh.read(info.st_size + 1)
            if len(data) > info.st_size:
                data += fh.read(max_bytes + 1 - len(data))
    except OSError as err:
        raise InputError(name, f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(name, f"is more than input.max_bytes ({max_bytes}) bytes")
    text, encoding = decode_bytes(data, name)
    return text, data, encoding


def _check_file(name: str, info: os.stat_result, max_bytes: int) -> None:
    """Raise :class:`InputError` unless ``info`` is a regular file of at most ``max_bytes``."""
    if stat.S_ISDIR(info.st_mode):
        raise InputError(name, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(name, "is not a regular file (a pipe, device or socket); "
                               "only regular files are read")
    if info.st_size > max_bytes:
        raise InputError(name, f"is {info.st_size} bytes, more than input.max_bytes "
                               f"({max_bytes})")


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
        line, column = _line_and_column(data, data.index(b"\x00"))
        raise InputError(name, f"binary file: a NUL byte at line {line}, column {column}")
    sniff = data[:_SNIFF]
    controls = len(sniff) - len(sniff.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_SHARE * len(sniff):
        raise InputError(name, "binary file (mostly control bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        first_bad = err.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        if _reads_as_chinese(text):
            return text, "gb18030"
    if _mostly_utf8(data):
        line, column = _line_and_column(data, first_bad)
        raise InputError(name, f"cannot decode: invalid UTF-8 at line {line}, column {column} "
                               "(the rest of the file is UTF-8): fix or remove the bad bytes")
    guessed = _detect(data)
    if guessed is not None:
        return guessed
    raise InputError(name, "cannot decode: not UTF-8, UTF-16, GB18030 or another known encoding")


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NUL bytes only ever in every other byte and in at
    least one code unit in :data:`_MIN_UTF16_NUL_SHARE` (every ASCII character,
    line breaks included, has one), a strict decode, and (almost) no control
    characters in the result. Binary data fails one of these, and so does a
    UTF-8 file with one stray NUL byte."""
    if len(data) % 2 or data.count(b"\x00") < _MIN_UTF16_NUL_SHARE * (len(data) // 2):
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


def _mostly_utf8(data: bytes) -> bool:
    """Whether ``data`` (not valid UTF-8) is UTF-8 with a few bad bytes: it holds
    multi-byte UTF-8 characters, at least two for every byte that is not UTF-8.

    Such a file is damaged UTF-8, not a legacy encoding: guessing another encoding
    for it would turn all of its non-ASCII text into mojibake. (GBK or Latin-1
    text has few valid multi-byte UTF-8 sequences, and many bad bytes.)
    """
    text = data.decode("utf-8", "surrogateescape")  # each bad byte -> U+DC80..U+DCFF
    bad = len(_ESCAPED_BYTE.findall(text))
    non_ascii = len(_NON_ASCII.findall(text)) - bad
    return non_ascii > 0 and bad * 2 <= non_ascii


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the byte at ``offset``.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``; the bytes before ``offset`` are
    decoded as UTF-8, a bad byte counting as one character.
    """
    before = data[:offset].decode("utf-8", "surrogateescape")
    line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
    line_start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, len(before) - line_start + 1


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
