"""Group data files: parsed with their sources, members valid, malformed files refused."""

from __future__ import annotations

import pytest

import critmin as cm
from critmin.data import load_groups
from critmin.data.groups import read_group_file
from critmin.errors import DataError


def test_bundled_groups_have_sources_and_known_members():
    groups = load_groups()
    assert {"eu27", "g7", "oecd", "quad", "msp", "ministerial_2026"} <= set(groups)
    known = {c.iso3 for c in cm.data.all_countries()}
    for group in groups.values():
        assert group.source and group.as_of, group.id
        assert set(group.members) <= known, group.id


def test_group_sizes():
    groups = load_groups()
    assert len(groups["eu27"].members) == 27
    assert len(groups["g7"].members) == 7
    assert len(groups["oecd"].members) == 38
    assert set(groups["g7"].members) <= set(groups["oecd"].members)


def test_user_group_file_extends_the_bundled_ones(isolated_user_data):
    folder = isolated_user_data / "groups"
    folder.mkdir()
    (folder / "lithium_triangle.csv").write_text(
        "# id: lithium_triangle\n# name: Lithium triangle\n# source: test\n# as_of: 2026-01-01\n"
        "iso3,name,since,source\nARG,Argentina,,\nBOL,Bolivia,,\nCHL,Chile,,\n",
        encoding="utf-8",
    )
    assert cm.group("Lithium triangle").members == ("ARG", "BOL", "CHL")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iso3\nUSA\n", "header lacks id, name, source, as_of"),
        ("# id: x\n# name: X\n# source: s\n# as_of: 2026\ncode\nUSA\n", "'iso3' column"),
        ("# id: x\n# name: X\n# source: s\n# as_of: 2026\niso3\nUSA\nUSA\n", "duplicate"),
    ],
)
def test_malformed_group_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_group_file(path)


def test_msp_and_ministerial_as_published():
    groups = load_groups()
    assert len(groups["msp"].members) == 15  # 15 countries; the EU is a partner, not listed
    assert groups["msp"].member_since["IND"] == "2023-06"
    ministerial = groups["ministerial_2026"]
    assert len(ministerial.members) == 55  # 54 attending countries and the host
    assert {"COD", "COK", "UZB", "KOR", "USA"} <= set(ministerial.members)
    assert "CHN" not in ministerial.members
