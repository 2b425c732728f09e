# ruff: noqa: E501  (the table of bad studies and their messages reads best unwrapped)
"""Scenario files: the examples validate; bad files are refused with one clear line before
any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from critmin.errors import InputError
from critmin.scenarios.schema import load_study, validate_study

EXAMPLES = sorted(Path("examples").glob("*.yaml"))
BASE = {"name": "t", "base_year": 2023, "commodities": ["rare_earths"]}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(path):
    study = load_study(path)
    assert study.commodities and len(study.digest()) == 64


def test_the_ministerial_example_is_the_february_2026_zone_under_a_ban():
    study = load_study("examples/ministerial_2026_chinese_ban.yaml")
    assert study.commodities == ["rare_earths", "graphite", "tungsten"]
    assert study.policies.bans[0].exporter == "CHN"
    assert study.policies.zone.members == "ministerial_2026"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ensemble": {"draws": "many"}}, "ensemble.draws: Input should be a valid integer"),
        ({"ensemble": {"draws": 200_000}}, "exceeds limits.max_draws = 100,000"),
        ({"ensemble": {"draws": 10**9}}, "ensemble.draws: Input should be less than or equal to 1000000"),
        ({"limits": {"max_draws": 10**9}}, "limits.max_draws: Input should be less than or equal to 1000000"),
        ({"policies": {"bans": [{"exporter": "Chna"}]}}, "policies.bans.0.exporter: unknown country or group 'Chna'"),
        ({"policies": {"bans": [{"exportr": "CHN"}]}}, "policies.bans.0.exportr: unknown key; allowed here: exporter, targets"),
        ({"colour": "blue"}, "colour: unknown key; allowed here: name, description"),
        ({"commodities": ["unobtainium"]}, "commodities: unknown commodity 'unobtainium'"),
        ({"policies": {"quotas": [{"exporter": "CHN", "fraction": 1.5}]}}, "policies.quotas.0.fraction: Input should be less than or equal to 1"),
        ({"parameters": {"demand_elasticity": -1}}, "cannot be negative"),
        ({"base_year": 1850}, "base_year: no trade data for 1850"),
        ({"policies": {"zone": {"members": "g7", "floors": {"graphite": 1.3}}}}, "graphite is not in commodities"),
        ({"horizon": "medium"}, "horizon: Input should be 'short' or 'long'"),
    ],
)  # fmt: skip
def test_bad_studies_are_refused_with_the_field_and_value(change, message):
    with pytest.raises(InputError, match=None) as caught:
        validate_study({**BASE, **change}, "t.yaml")
    text = str(caught.value)
    assert message in text, text
    assert text.startswith("t.yaml: ") and "\n" not in text


def test_extends_merges_and_refuses_cycles(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nbase_year: 2023\ncommodities: [graphite]\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\nhorizon: long\n")
    child = load_study(tmp_path / "child.yaml")
    assert (child.name, child.horizon, child.commodities) == ("child", "long", ["graphite"])
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(InputError, match=r"extends cycle: a.yaml → b.yaml → a.yaml"):
        load_study(tmp_path / "a.yaml")


def test_self_referencing_yaml_and_broken_files(tmp_path):
    (tmp_path / "loop.yaml").write_text("name: &x [1, *x]\ncommodities: [graphite]\n")
    with pytest.raises(InputError, match="refers to itself"):
        load_study(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"bad\.yaml: line 2 is not valid YAML"):
        load_study(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="a scenario file is a mapping"):
        load_study(tmp_path / "list.yaml")
    with pytest.raises(InputError, match="cannot read scenario file"):
        load_study(tmp_path / "missing.yaml")
