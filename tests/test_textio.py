"""Reading input logs: every encoding we accept, and every file we refuse."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from enrich.errors import EnrichError, InputError
from enrich.textio import decode_bytes, read_source, read_text

CHINESE = (
    "# 6.1 周报\n"
    "* 1、大模型推理提速2.8倍：论文链接：https://arxiv.org/abs/2305.09781\n"
    "项目地址：github.com/flexflow/FlexFlow，欢迎试用。\n"
)
TRADITIONAL = (
    "這是一個測試文件，包含中文和English混合內容。論文連結：https://arxiv.org/abs/2305.09781\n" * 3
)
JAPANESE = "これはテストファイルです。日本語の文章。論文：https://arxiv.org/abs/2305.09781\n" * 3


def write(tmp_path: Path, data: bytes, name: str = "log.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CHINESE.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + CHINESE.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + CHINESE.encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + CHINESE.encode("utf-32-le"), "utf-32"),
        (CHINESE.encode("gbk"), "gb18030"),
        ((CHINESE + "表情😀和欧元€\n").encode("gb18030"), "gb18030"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-32-bom", "gbk", "gb18030"],
)
def test_read_text_decodes_every_accepted_encoding(
    tmp_path: Path, data: bytes, encoding: str
) -> None:
    text, raw, found = read_source(write(tmp_path, data))
    assert text.startswith("# 6.1 周报\n")
    assert "\ufeff" not in text  # the BOM is not text
    assert "github.com/flexflow/FlexFlow，" in text
    assert raw == data
    assert found == encoding
    assert read_text(tmp_path / "log.txt") == text


@pytest.mark.parametrize(
    "data",
    [
        CHINESE.encode("utf-8"),
        codecs.BOM_UTF8 + CHINESE.encode("utf-8"),
        codecs.BOM_UTF16_LE + CHINESE.encode("utf-16-le"),
        CHINESE.encode("gbk"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "gbk"],
)
def test_encoding_name_writes_the_same_bytes_back(data: bytes) -> None:
    text, encoding = decode_bytes(data, "log.txt")
    assert text.encode(encoding) == data


def test_utf16_big_endian_is_written_back_as_utf16_with_a_bom() -> None:
    data = codecs.BOM_UTF16_BE + CHINESE.encode("utf-16-be")
    text, encoding = decode_bytes(data, "log.txt")
    back = text.encode(encoding)
    assert back[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    assert back.decode("utf-16") == text


def test_utf16_without_bom_is_recognised_by_its_nul_pattern() -> None:
    ascii_heavy = "log of 2023-06-01\narXiv:2305.09781 and github.com/a/b\n" * 4
    for codec in ("utf-16-le", "utf-16-be"):
        text, encoding = decode_bytes(ascii_heavy.encode(codec), "log.txt")
        assert (text, encoding) == (ascii_heavy, codec)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings_are_kept_as_they_are(tmp_path: Path, newline: str) -> None:
    body = CHINESE.replace("\n", newline)
    for encoding in ("utf-8", "gbk", "utf-16"):
        path = write(tmp_path, body.encode(encoding))
        assert read_text(path) == body


def test_mixed_line_endings_are_kept(tmp_path: Path) -> None:
    body = "a\r\nb\nc\rd"
    assert read_text(write(tmp_path, body.encode())) == body


def test_empty_file_is_empty_text(tmp_path: Path) -> None:
    assert read_source(write(tmp_path, b"")) == ("", b"", "utf-8")


def test_raw_bytes_give_the_source_sha256(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + CHINESE.encode("utf-8")
    _, raw, _ = read_source(write(tmp_path, data))
    assert hashlib.sha256(raw).hexdigest() == hashlib.sha256(data).hexdigest()
    assert len(raw) == len(data)


def test_accepts_str_and_path_like(tmp_path: Path) -> None:
    path = write(tmp_path, b"arXiv:2305.09781\n")
    assert read_text(str(path)) == read_text(path) == "arXiv:2305.09781\n"


def test_big5_traditional_chinese_is_detected_not_misread_as_gb18030() -> None:
    data = TRADITIONAL.encode("big5")
    data.decode("gb18030")  # decodes without error, into nonsense ...
    text, encoding = decode_bytes(data, "log.txt")
    assert text == TRADITIONAL  # ... which the Chinese check refuses
    assert codecs.lookup(encoding).name == "big5"


def test_shift_jis_japanese_is_detected() -> None:
    text, encoding = decode_bytes(JAPANESE.encode("shift_jis"), "log.txt")
    assert text == JAPANESE
    assert codecs.lookup(encoding).name in ("cp932", "shift_jis")


def test_short_gbk_text_is_still_gb18030() -> None:
    assert decode_bytes("中文".encode("gbk"), "log.txt") == ("中文", "gb18030")


# ---------------------------------------------------------------- refusals


def _refused(path: Path | str) -> InputError:
    with pytest.raises(InputError) as info:
        read_source(path)
    err = info.value
    assert isinstance(err, EnrichError)
    assert err.path == str(path)
    assert str(path) in str(err)
    return err


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    assert "no such file" in _refused(tmp_path / "nope.txt").reason


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    assert "directory" in _refused(tmp_path).reason


def test_binary_file_with_nul_bytes_is_an_input_error(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256))
    assert "binary" in _refused(write(tmp_path, png, "image.png")).reason


def test_nul_bytes_in_text_make_it_binary(tmp_path: Path) -> None:
    data = CHINESE.encode("utf-8") + b"\x00" + CHINESE.encode("utf-8")
    assert "NUL" in _refused(write(tmp_path, data)).reason


def test_file_of_control_bytes_is_binary(tmp_path: Path) -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 19, 20, 21] * 64) + b"text\n"
    assert "control" in _refused(write(tmp_path, data)).reason


def test_a_few_control_characters_do_not_make_text_binary(tmp_path: Path) -> None:
    data = ("\x1b[32mok\x1b[0m " + CHINESE + "\x0c\n").encode("utf-8")
    assert read_text(write(tmp_path, data)).startswith("\x1b[32mok")


def test_undecodable_file_is_an_input_error(tmp_path: Path) -> None:
    data = ("中文文本" * 20).encode("utf-8") + b"\xff\xfe\xfa" + ("更多" * 20).encode("utf-8")
    assert "decode" in _refused(write(tmp_path, data)).reason


def test_truncated_utf8_is_an_input_error(tmp_path: Path) -> None:
    data = ("中文文本" * 20).encode("utf-8")[:-1]
    assert "decode" in _refused(write(tmp_path, data)).reason


def test_bom_followed_by_invalid_data_is_an_input_error(tmp_path: Path) -> None:
    data = codecs.BOM_UTF16_LE + b"a\x00\x00\xd8"  # a lone surrogate
    assert "UTF-16" in _refused(write(tmp_path, data)).reason


def test_decode_bytes_names_the_file_in_its_errors() -> None:
    with pytest.raises(InputError, match=r"^logs/000\.txt: binary"):
        decode_bytes(b"\x00\x01\x02\x03\x00\x00\xff", "logs/000.txt")
