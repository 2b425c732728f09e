"""Country groups (EU27, G7, OECD, Quad, MSP, the 2026 ministerial ...) read from data files."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from critmin.data.catalog import GROUPS_DIR, user_data_dir
from critmin.errors import DataError

_HEADER = re.compile(r"^#\s*(\w+)\s*:\s*(.*?)\s*$")
REQUIRED_KEYS = ("id", "name", "source", "as_of")


@dataclass(frozen=True)
class Group:
    """A named set of countries with its source: members are ISO3 codes."""

    id: str
    name: str
    members: tuple[str, ...]
    source: str
    as_of: str
    note: str = ""
    aliases: tuple[str, ...] = ()
    member_since: dict[str, str] = field(default_factory=dict, compare=False)
    path: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"Group({self.id!r}, {len(self.members)} members, as of {self.as_of})"


def read_group_file(path: Path) -> Group:
    """Parse one group CSV: '# key: value' header lines, then iso3,name,since,source rows."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read group file ({exc})") from exc
    header: dict[str, str] = {}
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            match = _HEADER.match(line)
            if match:
                header[match.group(1).lower()] = match.group(2)
            continue
        if line.strip():
            body.append(line)
        elif body:
            raise DataError(f"{path}:{number}: blank line inside the member rows")
    missing = [key for key in REQUIRED_KEYS if not header.get(key)]
    if missing:
        raise DataError(f"{path}: header lacks {', '.join(missing)} ('# key: value' lines)")
    rows = list(csv.DictReader(body))
    if not rows or "iso3" not in rows[0]:
        raise DataError(f"{path}: needs an 'iso3' column and at least one member")
    members = [row["iso3"].strip().upper() for row in rows]
    duplicates = sorted({m for m in members if members.count(m) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate members {', '.join(duplicates)}")
    aliases = tuple(a.strip() for a in header.get("aliases", "").split("|") if a.strip())
    return Group(
        id=header["id"],
        name=header["name"],
        members=tuple(members),
        source=header["source"],
        as_of=header["as_of"],
        note=header.get("note", ""),
        aliases=aliases,
        member_since={row["iso3"].strip().upper(): row.get("since") or "" for row in rows},
        path=str(path),
    )


def load_groups() -> dict[str, Group]:
    """Every group: the bundled files, then the user's (<data dir>/groups/*.csv) by id."""
    groups: dict[str, Group] = {}
    for folder in (GROUPS_DIR, user_data_dir() / "groups"):
        if folder.is_dir():
            for path in sorted(folder.glob("*.csv")):
                group = read_group_file(path)
                groups[group.id] = group
    return groups
