"""Names users type resolve to ids; unknown names fail with the closest valid ones."""

from __future__ import annotations

import pytest

import critmin as cm
from critmin.data import countries_of
from critmin.data.resolve import normalise_name
from critmin.errors import InputError, UnknownNameError


@pytest.mark.parametrize(
    "typed", ["REE", "rare earths", "Rare earth", "Rare Earths (REO)", "RARE_EARTHS", "reo"]
)
def test_rare_earth_aliases(typed):
    assert cm.commodity(typed).id == "rare_earths"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Gallium", "gallium"),
        ("wolfram", "tungsten"),
        ("Lithium (Li2O)", "lithium"),
        ("natural graphite", "graphite"),
        ("Chromite", "chromium"),
        ("sulphur", "sulfur"),
    ],
)
def test_commodity_names(typed, expected):
    assert cm.commodity(typed).id == expected


def test_rare_earth_codes_and_recycling_rate():
    ree = cm.commodity("rare_earths")
    assert ree.hs6 == ("284690",)
    assert set(ree.hs6_complementary) == {"284610", "280530"}
    assert ree.eol_rir == pytest.approx(0.01)


def test_unknown_commodity_suggests_closest():
    with pytest.raises(UnknownNameError) as caught:
        cm.commodity("galium")
    assert caught.value.suggestions[0] == "gallium"
    assert "\n" not in str(caught.value)


def test_ambiguous_alias_is_refused_not_guessed():
    with pytest.raises(InputError, match=r"ambiguous.*diamonds_gem.*diamonds_industrial"):
        cm.commodity("Diamonds")


@pytest.mark.parametrize(
    ("typed", "iso3"),
    [
        ("USA", "USA"),
        ("United States", "USA"),
        ("united states of america", "USA"),
        ("South Korea", "KOR"),
        ("Rep. of Korea", "KOR"),
        ("Côte d'Ivoire", "CIV"),
        ("cote d ivoire", "CIV"),
        ("Taiwan", "TWN"),
        ("Other Asia, nes", "TWN"),
        ("Türkiye", "TUR"),
        ("DRC", "COD"),
        ("French Guiana", "GUF"),
        ("Guyana", "GUY"),
    ],
)
def test_country_names(typed, iso3):
    assert cm.country(typed).iso3 == iso3


def test_baci_special_codes_map_to_iso():
    assert cm.country("FRA").baci_codes == (251,)
    assert cm.country("FRA").iso_num == 250
    assert cm.country("IND").baci_codes == (699,)
    assert cm.country("USA").baci_codes == (842,)
    assert cm.country("TWN").baci_codes == (490,)
    assert cm.country("SDN").baci_codes == (729, 736)


def test_unknown_country_suggests_closest():
    with pytest.raises(UnknownNameError, match="closest: United States"):
        cm.country("Untied States")


def test_groups_and_ad_hoc_lists():
    assert len(cm.group("EU").members) == 27
    assert cm.group("g7").id == "g7"
    assert countries_of("Quad") == ("AUS", "IND", "JPN", "USA")
    assert countries_of("USA, Japan,AUS") == ("USA", "JPN", "AUS")


def test_unknown_group_or_country():
    with pytest.raises(UnknownNameError, match="country or group"):
        countries_of("Atlantis")


def test_normalise_name():
    assert normalise_name("  Rare_Earths (REO) ") == "rare earths reo"
    assert normalise_name("Türkiye") == "turkiye"
