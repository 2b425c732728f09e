"""Dataset manifests: one entry per table with source, licence, version, rows and checksum."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from critmin.data.io import sha256_file, write_json_atomic
from critmin.data.schema import table_columns
from critmin.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def table_manifest_entry(name: str, path: Path, frame: pd.DataFrame, meta: dict) -> dict:
    """The manifest entry of one written table (`meta` gives source, url, licence, version)."""
    entry = dict(meta)
    entry.update(
        {
            "file": path.name,
            "rows": len(frame),
            "sha256": sha256_file(path),
            "columns": {
                c.name: {"type": c.type, "unit": c.unit, "description": c.description}
                for c in table_columns(name)
            },
        }
    )
    if "year" in frame.columns and len(frame):
        entry["years"] = [int(frame["year"].min()), int(frame["year"].max())]
    return entry


def write_manifest(directory: Path, tables: dict[str, dict], **extra: object) -> dict:
    """Write (atomically) the manifest of a dataset folder, merging with any existing one."""
    path = Path(directory) / MANIFEST_NAME
    manifest = read_manifest(directory) if path.exists() else {"tables": {}}
    manifest["format"] = FORMAT_VERSION
    manifest.update(extra)
    manifest["tables"].update(tables)
    write_json_atomic(path, manifest)
    return manifest


def read_manifest(directory: Path) -> dict:
    """The manifest of a dataset folder; an empty one if the folder has none."""
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        return {"format": FORMAT_VERSION, "tables": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
        raise DataError(f"{path}: a manifest needs a 'tables' object")
    for name, entry in manifest["tables"].items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: tables.{name} must be an object (file, rows, sha256 ...)")
        files = entry.get("files")
        if files is not None and (
            not isinstance(files, list) or not all(isinstance(f, str) for f in files)
        ):
            raise DataError(f"{path}: tables.{name}.files must be a list of file names")
        if files is not None and any("/" in f or "\\" in f or f in ("", ".", "..") for f in files):
            raise DataError(f"{path}: tables.{name}.files must name files in {name}/")
    return manifest
