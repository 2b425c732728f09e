"""Importing BACI CSV files: the right rows in the tidy schema, or a clear error and no change."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import critmin as cm
from critmin.data.baci import first_bad_line, hs_revision_of, import_baci
from critmin.errors import InputError

GOOD = """t,i,j,k,v,q
2025,156,842,284690,1000.5,10.25
2025,156,251,284690,200.0,NA
2025,36,699,260400,50.125,
2025,490,392,81110,7.0,1.5
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_import_maps_codes_keeps_missing_quantities_and_extends_trade(tmp_path, isolated_user_data):
    path = write(tmp_path, "BACI_HS17_Y2025_V202501.csv", GOOD)
    result = import_baci([path])
    assert result.rows == 4 and result.years == (2025, 2025) and result.hs_revision == "HS17"
    frame = cm.trade(year=2025).set_index(["exporter", "importer", "hs6"])
    assert frame.loc[("CHN", "USA", "284690"), "value_kusd"] == 1000.5
    assert frame.loc[("CHN", "USA", "284690"), "qty_t"] == 10.25
    assert pd_isna(frame.loc[("CHN", "FRA", "284690"), "qty_t"])  # 'NA' stays missing
    assert pd_isna(frame.loc[("AUS", "IND", "260400"), "qty_t"])  # blank stays missing
    assert frame.loc[("TWN", "JPN", "081110"), "value_kusd"] == 7.0  # leading zero restored
    # The bundled years are still there: the import extends, it does not replace.
    assert len(cm.trade(year=2024, commodity="cobalt")) > 100
    manifest = json.loads((isolated_user_data / "manifest.json").read_text())
    assert manifest["tables"]["trade"]["hs_revision"] == "HS17"
    assert manifest["tables"]["trade"]["imports"][0]["sources"] == [path.name]


def pd_isna(value) -> bool:
    return value != value or value is None


def test_user_years_replace_bundled_years(tmp_path):
    path = write(tmp_path, "BACI_HS92_Y2024_x.csv", "t,i,j,k,v,q\n2024,156,842,284690,1.0,1.0\n")
    import_baci([path])
    frame = cm.trade(year=2024)
    assert len(frame) == 1  # the bundled 2024 rows give way to the imported ones


def test_overlapping_years_need_replace(tmp_path, isolated_user_data):
    first = write(tmp_path, "BACI_HS17_Y2025_a.csv", GOOD)
    import_baci([first])
    second = write(tmp_path, "BACI_HS17_Y2025_b.csv", "t,i,j,k,v,q\n2025,156,842,284690,5,5\n")
    before = snapshot(isolated_user_data)
    with pytest.raises(InputError, match=r"overlap.*--replace"):
        import_baci([second])
    assert snapshot(isolated_user_data) == before
    result = import_baci([second], replace=True)
    assert result.replaced and len(cm.trade(year=2025)) == 1
    assert len(list((isolated_user_data / "trade").glob("*.parquet"))) == 1


def test_only_codes_filter(tmp_path):
    path = write(tmp_path, "BACI_HS17_Y2025_c.csv", GOOD)
    result = import_baci([path], only_codes=["284690"])
    assert result.rows == 2


BAD_FILES = [
    ("header", "t,i,j,k,v\n2025,156,842,284690,1\n", ":1: expected the header"),
    ("fields", GOOD + "2025,156,842,284690,1.0\n", ":6:"),
    ("value", GOOD.replace("200.0", "abc"), ":3: value v='abc'"),
    ("negative", GOOD.replace("50.125", "-50"), ":4: value v='-50'"),
    ("nan", GOOD.replace("10.25", "nan"), ":2: quantity q='nan'"),
    ("inf", GOOD.replace("1000.5", "inf"), ":2: value v='inf'"),
    ("country", GOOD.replace("2025,36,", "2025,9999,"), ":4: unknown BACI country code i=9999"),
    ("year", GOOD.replace("2025,490", "20x5,490"), ":5: year t='20x5'"),
    ("product", GOOD.replace("81110", "8111000"), ":5: product code"),
    ("duplicate", GOOD + "2025,156,842,284690,1,1\n", "duplicated"),
    ("empty", "t,i,j,k,v,q\n", "no data rows"),
]


@pytest.mark.parametrize(("label", "text", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_malformed_files_name_the_line_and_change_nothing(
    tmp_path, isolated_user_data, label, text, message
):
    import_baci([write(tmp_path, "BACI_HS17_Y2020_ok.csv", "t,i,j,k,v,q\n2020,4,8,250100,1,1\n")])
    before = snapshot(isolated_user_data)
    path = write(tmp_path, f"BACI_HS17_Y2025_{label}.csv", text)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        import_baci([path])
    assert snapshot(isolated_user_data) == before
    leftovers = [p.name for p in isolated_user_data.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_non_utf8_file_is_refused(tmp_path, isolated_user_data):
    path = write(tmp_path, "BACI_HS17_Y2025_latin.csv", b"t,i,j,k,v,q\n" + b"\xff\xfe1\n")
    with pytest.raises(InputError, match=r":2: "):
        import_baci([path])


def test_truncated_file_is_refused(tmp_path):
    path = write(tmp_path, "BACI_HS17_Y2025_cut.csv", GOOD[:-8])
    with pytest.raises(InputError, match=":5:"):
        import_baci([path])


def test_missing_file_and_revision():
    with pytest.raises(InputError, match="no such file"):
        import_baci([Path("/nonexistent/BACI_HS17_Y2025.csv")])
    with pytest.raises(InputError, match="HS revision"):
        hs_revision_of([Path("trade.csv")], None)
    with pytest.raises(InputError, match="unknown HS revision"):
        hs_revision_of([Path("trade.csv")], "HS99")
    assert hs_revision_of([Path("x.csv")], "hs12") == "HS12"


def test_bad_memory_limit(tmp_path):
    with pytest.raises(InputError, match="memory limit"):
        import_baci([write(tmp_path, "BACI_HS17_Y1.csv", GOOD)], memory_limit="lots")


def test_first_bad_line_on_a_good_file(tmp_path):
    assert (
        first_bad_line(write(tmp_path, "g.csv", GOOD), {156, 842, 251, 36, 699, 490, 392}) is None
    )


CODES = [156, 842, 251, 36, 699, 490, 392, 276, 710, 124]
row_strategy = st.tuples(
    st.integers(1995, 2030),
    st.sampled_from(CODES),
    st.sampled_from(CODES),
    st.integers(10100, 999999),
    st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row_strategy, min_size=1, max_size=40, unique_by=lambda r: r[:4]))
def test_any_valid_file_round_trips_exactly(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("roundtrip")
    lines = ["t,i,j,k,v,q"] + [
        f"{t},{i},{j},{k},{v},{'NA' if q is None else q}" for t, i, j, k, v, q in rows
    ]
    path = write(folder, "BACI_HS17_Yany.csv", "\n".join(lines) + "\n")
    import_baci([path], target_dir=folder / "dataset")
    imported = pd.read_parquet(next((folder / "dataset" / "trade").glob("*.parquet")))
    iso3 = {code: c.iso3 for c in cm.data.all_countries() for code in c.baci_codes}
    expected = {
        (t, iso3[i], iso3[j], f"{k:06d}"): (float(v), None if q is None else float(q))
        for t, i, j, k, v, q in rows
    }
    got = {
        (r.year, r.exporter, r.importer, r.hs6): (
            r.value_kusd,
            None if pd.isna(r.qty_t) else r.qty_t,
        )
        for r in imported.itertuples()
    }
    assert got == expected


def test_a_full_release_of_another_revision_fills_the_stages(tmp_path):
    """An HS17 import (magnets 850511, the Ga/Ge basket 811292) fills the product and refined
    stages of its year through the concordance; its year replaces the bundled years."""
    from critmin.metrics.api import stage_dependence
    from critmin.metrics.balances import clear_cache

    # BACI numeric codes: 156 China, 392 Japan, 842 USA.
    text = (
        "t,i,j,k,v,q\n"
        "2025,156,842,850511,1000.0,100.0\n"
        "2025,392,842,850511,1000.0,300.0\n"
        "2025,156,842,811292,500.0,10.0\n"
    )
    import_baci([write(tmp_path, "BACI_HS17_Y2025_stage.csv", text)])
    clear_cache()
    magnets = stage_dependence("USA", "REE", year=2025, stage="product", basis="gross").iloc[0]
    assert magnets["imports"] == pytest.approx(400.0)
    assert magnets["supplier_share"] == pytest.approx(0.25)
    gallium = stage_dependence("USA", "gallium", year=2025, stage="refined", basis="gross")
    assert gallium.iloc[0]["imports"] == pytest.approx(10.0 * 0.37)  # the stated basket key
    assert gallium.iloc[0]["status"] in ("basket_split", "no_production_data")
    clear_cache()
