"""Crash-safe file writing: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The rename is atomic on POSIX file systems, so readers see the old file or the new one,
    never half of one; on error the temporary file is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid is in the name, so that sweep_stale_temporaries can tell a file left
    # by a killed writer from one being written now.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


_TEMPORARY = re.compile(r"\..+\.(\d+)\.[^.]+\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale_temporaries(folder: Path) -> list[str]:
    """Remove atomic_path's temporary files in `folder` whose writer is no longer running
    (a process killed mid-write cannot remove its own); returns their names. Files of a
    live writer, and every other file, are left alone."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            match = _TEMPORARY.fullmatch(entry.name)
            if match and entry.is_file() and not _alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def write_text_atomic(target: Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, payload: object) -> None:
    """Write `payload` as indented, key-sorted JSON to `target` atomically."""
    write_text_atomic(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(target: Path, frame: pd.DataFrame, schema: pa.Schema) -> None:
    """Write `frame` with an explicit Arrow `schema` (zstd, deterministic) atomically."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    # Drop pandas metadata so the file's bytes depend only on the data and the schema.
    table = table.replace_schema_metadata(None)
    with atomic_path(target) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=9,
            use_dictionary=True,
            write_statistics=True,
            row_group_size=1 << 20,
        )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
