"""All-or-nothing outputs with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from analyzer.errors import OutputError
from analyzer.outputs import MARKER, atomic_write_text, check_output, staged_dir


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
    with staged_dir(out) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(OutputError, match="already exists"), staged_dir(out):
        pass
    with staged_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_never_replaces_a_folder_prunecard_did_not_write(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(OutputError, match="not written by prunecard"), staged_dir(out, force=True):
        pass
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_an_empty_folder_is_filled(tmp_path):
    (tmp_path / "empty").mkdir()
    with staged_dir(tmp_path / "empty") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "empty" / "a.txt").read_text() == "a"


@pytest.mark.parametrize(
    ("out", "relation"),
    [("in", "is the input"), ("in/sub", "lies inside"), (".", "contains the input")],
)
def test_output_apart_from_inputs(tmp_path, out, relation):
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in")
    with pytest.raises(OutputError, match=relation):
        check_output(tmp_path / out, [tmp_path / "link"], force=True)


def test_output_file_may_not_be_a_hard_link_to_an_input(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    os.link(tmp_path / "data.json", tmp_path / "alias.json")
    with pytest.raises(OutputError, match="is the input"):
        check_output(tmp_path / "alias.json", [tmp_path / "data.json"], folder=False)


def test_longest_legal_name_is_not_pushed_past_the_limit(tmp_path):
    name = "r" * 250
    with staged_dir(tmp_path / name) as tmp:
        (tmp / "a.txt").write_text("a")
    atomic_write_text(tmp_path / ("f" * 251), "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f" * 251, name]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
