"""Atomic writes: a failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import pytest

from critmin.data.io import atomic_path, write_text_atomic


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_success_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "result.txt"
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o044  # readable by others, unlike mkstemp's 0600
