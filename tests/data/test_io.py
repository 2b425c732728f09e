"""Atomic writes: a failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import os

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


def test_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    """A writer killed mid-write leaves its temporary file; the next writer removes it, but
    never a live writer's temporary file or any other file."""
    import subprocess
    import sys

    from critmin.data.io import sweep_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".markets.parquet.{dead_pid}.k2j4x9_a.tmp"
    live = tmp_path / f".markets.parquet.{os.getpid()}.q8w1e3rt.tmp"
    other = [tmp_path / "markets.parquet", tmp_path / ".hidden.tmp", tmp_path / "a.1.b.tmp"]
    for path in (stale, live, *other):
        path.write_bytes(b"x")
    with atomic_path(tmp_path / "summary.json") as writing:  # its own name has our pid
        assert writing.name.startswith(f".summary.json.{os.getpid()}.")
        assert sweep_stale_temporaries(tmp_path) == [stale.name]
        assert writing.exists()
    assert not stale.exists() and live.exists() and all(p.exists() for p in other)
