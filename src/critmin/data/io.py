"""Crash-safe file writing: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from critmin.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def os_problem(error: OSError) -> str:
    """A short reason for a failed file operation, for a one-line message."""
    reasons = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EISDIR: "is a folder",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.ENOENT: "no such file or folder",
        errno.ENAMETOOLONG: "file name too long",
        errno.EPIPE: "the reader closed the pipe",
    }
    return reasons.get(error.errno, error.strerror or error.__class__.__name__)


def check_output_target(target: Path) -> Path:
    """`target` as a path an output may be written to: not empty, and either absent or a
    regular file. A device (/dev/null as root would be replaced), a FIFO, a socket, a
    folder or a symbolic link (whose target would be replaced by a file) is refused."""
    if str(target) in ("", "."):
        raise InputError("--out is empty; give a file name")
    target = Path(target)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as error:
        raise InputError(f"cannot write {target}: {os_problem(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"cannot write {target}: it is a folder; give a file name")
    if stat.S_ISLNK(info.st_mode):
        raise InputError(
            f"cannot write {target}: it is a symbolic link; give the file it points to"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"cannot write {target}: not a regular file (a device, FIFO or socket); "
            "outputs replace only regular files"
        )
    return target


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The rename is atomic on POSIX file systems, so readers see the old file or the new one,
    never half of one; on error the temporary file is removed and `target` is untouched.
    Only a regular file (or nothing) at `target` is ever replaced (check_output_target);
    a file-system error (read-only folder, full disk, ...) is one InputError line.
    """
    target = check_output_target(Path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The writer's pid is in the name, so that sweep_stale_temporaries can tell a file
        # left by a killed writer from one being written now.
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
        )
    except OSError as error:
        raise InputError(f"cannot write {target}: {os_problem(error)}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        check_output_target(target)  # still nothing but a regular file there
        os.replace(tmp, target)
    except OSError as error:
        raise InputError(f"cannot write {target}: {os_problem(error)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def read_user_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a file a user named, at most `limit` of them.

    Only a regular file is read: a device (/dev/zero reports size 0 and never ends), a FIFO
    (opening it waits for a writer for ever), a socket or a folder is refused; the file is
    opened without blocking and read up to `limit` + 1 bytes, so a file that grows while
    read cannot exceed the bound either. Errors are one InputError line.
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a folder, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (a device, FIFO or socket)")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the stat
                raise InputError(f"{path}: not a regular file (a device, FIFO or socket)")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({os_problem(error)})") from None
    if len(data) > limit:
        raise InputError(f"{path}: over {limit:,} bytes; a {what} is limited to {limit:,} bytes")
    return data


def check_regular_file(path: Path, what: str = "file") -> Path:
    """`path` if it is a regular file (for inputs read in a stream, with no byte bound)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({os_problem(error)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: not a regular file (a device, FIFO or socket)")
    return path


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
    import pyarrow as pa
    import pyarrow.parquet as pq

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
