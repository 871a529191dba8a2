"""Crash-safe writes: a temporary file in the target folder, fsynced, os.replace'd, then the folder fsynced."""
import os
import stat

import pytest

from ganforge.utils.atomic import atomic_write, atomic_write_text


def test_write_goes_through_a_synced_temporary_in_the_same_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd):
        events.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        return real_fsync(fd)

    def spy_replace(src, dst):
        events.append(("replace", os.path.dirname(src), open(src).read()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    (tmp_path / "out.txt").write_text("old")
    p = atomic_write_text(tmp_path / "out.txt", "new content")
    assert p == tmp_path / "out.txt" and p.read_text() == "new content"
    # the file's data is on disk before it takes the name, and the rename itself is flushed afterwards
    assert events == [("fsync", "file"), ("replace", str(tmp_path), "new content"), ("fsync", "dir")]
    assert [f.name for f in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    (tmp_path / "keep.txt").write_text("old")

    def half(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise KeyboardInterrupt  # interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "keep.txt", half)
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["keep.txt"]


def test_missing_parent_folders_are_created(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "b" / "c.txt", "x")
    assert p.read_text() == "x"
