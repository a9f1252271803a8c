"""All-or-nothing outputs with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from analyzer.errors import OutputError
from analyzer.outputs import atomic_write_text, staged_dir


def test_atomic_file_gets_ordinary_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "a.json", "{}")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_staged_dir_appears_only_when_complete(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("failed midway")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(out) as tmp:
        (tmp / "whole.txt").write_text("whole")
    assert (out / "whole.txt").read_text() == "whole"
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask()


def test_staged_dir_refuses_existing_unless_forced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(OutputError, match="already exists"), staged_dir(out):
        pass
    with staged_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
