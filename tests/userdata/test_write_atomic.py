"""write_atomic: readers never see half a file, and the file gets the mode the umask gives any new file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from align.runinfo import write_atomic, write_json


@pytest.fixture
def umask():
    """Set a umask for one test and restore the process's own afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_file_gets_the_umask_mode(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    out = tmp_path / "reports" / "report.html"
    write_atomic(out, "<html></html>\n")
    write_json(tmp_path / "metrics.json", {"loss": 1.0})
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == mode
    assert out.read_text(encoding="utf-8") == "<html></html>\n"


def test_replacing_keeps_no_temp_file_and_a_failed_write_leaves_the_old_file(tmp_path: Path, umask) -> None:
    out = tmp_path / "report.json"
    write_atomic(out, "old\n")
    write_atomic(out, "new\n")
    assert out.read_text(encoding="utf-8") == "new\n" and os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(UnicodeEncodeError):
        write_atomic(out, "half \ud800")  # cannot be encoded: the write fails midway
    assert out.read_text(encoding="utf-8") == "new\n" and os.listdir(tmp_path) == ["report.json"]
