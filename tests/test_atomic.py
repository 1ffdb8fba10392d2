"""write_atomic: all or nothing, permissions kept, bytes exact."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from enrich.write.atomic import write_atomic


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of its own (conftest puts home/ and work/ in tmp_path)."""
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_creates_a_new_file_with_umask_permissions(folder: Path,
                                                          umask_022: None) -> None:
    target = folder / "out.enriched.md"
    write_atomic(target, "hello\n")
    assert target.read_text(encoding="utf-8") == "hello\n"
    assert mode(target) == 0o644
    assert os.listdir(folder) == ["out.enriched.md"]


def test_atomic_replaces_an_existing_file_and_keeps_its_permissions(folder: Path) -> None:
    target = folder / "out.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    write_atomic(str(target), "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert mode(target) == 0o640
    assert os.listdir(folder) == ["out.json"]


def test_atomic_writes_line_endings_and_bytes_exactly(folder: Path) -> None:
    target = folder / "x.md"
    write_atomic(target, "a\r\nb\rc\n中")
    assert target.read_bytes() == "a\r\nb\rc\n中".encode()
    write_atomic(target, b"\x00\xff raw")
    assert target.read_bytes() == b"\x00\xff raw"


def test_atomic_encodes_with_the_given_encoding_and_error_handler(folder: Path) -> None:
    target = folder / "x.md"
    write_atomic(target, "日志 ★", encoding="gb18030")
    assert target.read_bytes() == "日志 ★".encode("gb18030")
    write_atomic(target, "café ★", encoding="latin-1", errors="xmlcharrefreplace")
    assert target.read_bytes() == b"caf\xe9 &#9733;"


def test_atomic_unencodable_text_leaves_the_old_file(folder: Path) -> None:
    target = folder / "x.md"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "★", encoding="latin-1")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(folder) == ["x.md"]


@pytest.mark.parametrize("failing", ["replace", "fsync", "chmod"])
def test_atomic_failure_mid_write_keeps_old_content_and_no_temp_file(
        folder: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    target = folder / "out.md"
    target.write_text("precious old output\n", encoding="utf-8")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new output that must not half-appear\n")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "precious old output\n"
    assert os.listdir(folder) == ["out.md"]


def test_atomic_interrupt_during_write_removes_the_temp_file(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = folder / "out.md"

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "x")
    monkeypatch.undo()
    assert os.listdir(folder) == []


def test_atomic_missing_folder_raises_and_creates_nothing(folder: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(folder / "no" / "such" / "out.md", "x")
    assert os.listdir(folder) == []


def test_atomic_replaces_a_symlink_and_never_writes_through_it(folder: Path,
                                                              umask_022: None) -> None:
    # issue 15: a link planted at an output path must not send our write elsewhere
    real = folder / "real.md"
    real.write_text("old", encoding="utf-8")
    real.chmod(0o600)
    link = folder / "link.md"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert not link.is_symlink() and link.read_text(encoding="utf-8") == "new"
    assert real.read_text(encoding="utf-8") == "old"
    assert mode(link) == 0o644  # the default, not the target's 0o600
    assert sorted(os.listdir(folder)) == ["link.md", "real.md"]
