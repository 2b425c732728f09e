"""Fuzzing the file parsers: the BACI CSV import, the registry import (JSON and CSV) and the
scenario loader. Inputs are random bytes and text, and valid files with mutated fields.

The property, for every input: the parser either yields valid data (checked here field by
field) or raises critmin's own error (CritminError), never another exception; and a refused
input leaves the stored data (dataset folder, registry) as it was.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critmin.cli.agreements import NESTED, _read_records
from critmin.data.baci import MAX_QTY_T, MAX_VALUE_KUSD, import_baci
from critmin.data.resolve import all_countries
from critmin.errors import CritminError
from critmin.registry.records import (
    AGREEMENT_FIELDS,
    COMMITMENT_FIELDS,
    MILESTONE_FIELDS,
    record_problems,
)
from critmin.registry.store import SEED_FILE, Registry
from critmin.scenarios.runner import prepare_study
from critmin.scenarios.schema import Study, load_study, read_study_file
from tests.fuzz import budget

EXAMPLES = Path(__file__).parents[2] / "examples"


def fuzz(fast: int, stress: int) -> settings:
    """The loaded profile's settings (tests/conftest.py) with this property's budget; slow
    examples and a fixture shared by all examples (a folder, a registry) are intended."""
    return settings(
        max_examples=budget(fast, stress),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


# Strings that have broken parsers before or are at an edge of a rule.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\ufeff",
    "x" * 400,
    "NA",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0",
    "0",
    "1e400",
    "1_0",
    "0x10",
    "²",
    "1²",
    "٢٠٢٥",
    "9" * 25,
    '"',
    '""',
    ",",
    "\n",
    "\r",
    "USA",
    "EU",
    "company:" + "x" * 200,
    "2026-02-31",
    "0000",
    "2026-13",
    "graphite",
    "rare_earths",
    "CHN",
    "g7",
    "[",
    "{",
    "*a",
    "&a",
    "!!binary",
    "~",
    "extends",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(NASTY),
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(NASTY), children, max_size=4)
    ),
    max_leaves=12,
)


def text_mutations(text: str) -> st.SearchStrategy[str]:
    """`text` with a few characters inserted, deleted or replaced, or cut short."""

    @st.composite
    def mutate(draw) -> str:
        out = text
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(out)))
            action = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
            piece = draw(st.sampled_from(NASTY) | st.text(max_size=4))
            if action == "insert":
                out = out[:at] + piece + out[at:]
            elif action == "delete":
                out = out[:at] + out[at + draw(st.integers(1, 20)) :]
            elif action == "replace":
                out = out[:at] + piece + out[at + len(piece) :]
            else:
                out = out[:at]
        return out

    return mutate()


def encoded(text: str) -> bytes:
    """UTF-8, lone surrogates kept (as invalid bytes) rather than refused."""
    return text.encode("utf-8", errors="surrogatepass")


# ---------------------------------------------------------------------------------------
# BACI CSV import
# ---------------------------------------------------------------------------------------

CODES = sorted({code for c in all_countries() for code in c.baci_codes})
ISO3 = {c.iso3 for c in all_countries()}
HEADER = ["t", "i", "j", "k", "v", "q"]
baci_field = st.text(max_size=8) | st.sampled_from(NASTY)
valid_row = st.tuples(
    st.integers(1995, 2030).map(str),
    st.sampled_from(CODES).map(str),
    st.sampled_from(CODES).map(str),
    st.integers(1, 999_999).map(lambda k: f"{k:06d}" if k % 2 else str(k)),
    st.floats(0, 1e6).map(repr),
    st.one_of(st.just("NA"), st.just(""), st.floats(0, 1e6).map(repr)),
).map(list)


@st.composite
def mutated_baci(draw) -> bytes:
    """A valid BACI file with a few fields, rows, the header or the bytes corrupted."""
    header = list(HEADER)
    rows = draw(st.lists(valid_row, min_size=1, max_size=8))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(
            st.sampled_from(
                ["field", "drop", "add", "header", "duplicate", "blank", "quote", "permute"]
            )
        )
        row = draw(st.sampled_from(rows))
        column = draw(st.integers(0, 5))
        if action == "field" and column < len(row):
            row[column] = draw(baci_field)
        elif action == "drop" and row:
            del row[min(column, len(row) - 1)]
        elif action == "add":
            row.append(draw(baci_field))
        elif action == "header":
            header[column] = draw(baci_field)
        elif action == "duplicate":
            rows.append(list(row))
        elif action == "blank" and column < len(row):
            row[column] = ""
        elif action == "quote" and column < len(row):
            row[column] = f'"{row[column]}'
        elif action == "permute":
            header = draw(st.permutations(header))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(",".join(r) for r in [header, *rows]) + newline
    data = encoded(text)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


baci_inputs = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=400).map(lambda b: b"t,i,j,k,v,q\n" + b),
    st.lists(st.lists(baci_field, min_size=1, max_size=7), max_size=6).map(
        lambda rows: encoded("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n")
    ),
    mutated_baci(),
)


def check_baci(data: bytes) -> None:
    """Import `data` as a BACI file into an empty dataset folder and check the property."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BACI_HS17_Y2025_fuzz.csv"
        path.write_bytes(data)
        target = Path(tmp) / "dataset"
        try:
            result = import_baci([path], target_dir=target)
        except CritminError:
            leftovers = [p.name for p in target.rglob("*") if p.is_file()]
            assert leftovers == [], f"a refused import left {leftovers}"
            return
        frame = pd.read_parquet(result.path)
        assert len(frame) == result.rows > 0
        assert frame["year"].notna().all() and frame["year"].between(1900, 2100).all()
        assert (int(frame["year"].min()), int(frame["year"].max())) == result.years
        assert frame["exporter"].isin(ISO3).all() and frame["importer"].isin(ISO3).all()
        assert (
            frame["hs6"].map(lambda k: isinstance(k, str) and bool(re.fullmatch(r"\d{6}", k))).all()
        )
        values = frame["value_kusd"]
        assert values.notna().all() and values.map(math.isfinite).all()
        assert values.between(0, MAX_VALUE_KUSD).all()
        quantities = frame["qty_t"].dropna()
        assert quantities.map(math.isfinite).all() and quantities.between(0, MAX_QTY_T).all()
        assert not frame.duplicated(["year", "exporter", "importer", "hs6"]).any()
        assert (target / "manifest.json").is_file()


@fuzz(150, 3000)
@given(data=baci_inputs)
def test_baci_import_yields_valid_rows_or_an_input_error(data):
    check_baci(data)


@pytest.mark.parametrize(
    "text",
    [
        # Unicode digits pass str.isdigit() but not int(): first_bad_line raised ValueError.
        "t,i,j,k,v,q\n²,156,842,284690,1.0,1.0\n",
        "t,i,j,k,v,q\n2025,1²,842,284690,1.0,1.0\n",
        # An empty product code or year passed the checks as NULL (year NULL: TypeError).
        "t,i,j,k,v,q\n2025,156,842,,1.0,1.0\n",
        "t,i,j,k,v,q\n2025,156,842,284690,1.0,1.0\n,156,251,284690,1.0,1.0\n",
        # Columns in another order were read by position: exporter and importer swapped.
        "t,j,i,k,v,q\n2025,156,842,284690,1.0,1.0\n",
    ],
)
def test_baci_regressions_found_by_fuzzing(text):
    check_baci(text.encode("utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BACI_HS17_Y2025_fuzz.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CritminError):
            import_baci([path], target_dir=Path(tmp) / "dataset")


# ---------------------------------------------------------------------------------------
# Registry import (JSON and CSV), as `critmin agreements import` does it
# ---------------------------------------------------------------------------------------

SEED = json.loads(SEED_FILE.read_text(encoding="utf-8"))["agreements"]
SUBFIELDS = {
    "parties": ("party", "lead_agency"),
    "commitments": COMMITMENT_FIELDS,
    "milestones": MILESTONE_FIELDS,
}


@st.composite
def mutated_records(draw) -> list:
    """One to three real agreements (the registry's seed) with a few fields replaced by
    junk, deleted or added, at the top level or inside parties, commitments, milestones."""
    chosen = st.lists(st.sampled_from(SEED), min_size=1, max_size=3, unique_by=lambda r: r["id"])
    records = copy.deepcopy(draw(chosen))
    for _ in range(draw(st.integers(1, 2))):
        target = draw(st.sampled_from(records))
        key = draw(st.sampled_from([*AGREEMENT_FIELDS, "extra"]))
        nested = target.get(key)
        if key in SUBFIELDS and isinstance(nested, list) and nested and draw(st.booleans()):
            item = draw(st.sampled_from(nested))
            if isinstance(item, dict):
                target, key = item, draw(st.sampled_from([*SUBFIELDS[key], "extra"]))
        if draw(st.integers(0, 3)) == 0 and key in target:
            del target[key]
        else:
            target[key] = draw(junk)
    return records


def as_csv(records: list) -> str:
    """Records in the CSV form `critmin agreements export -f csv` writes."""
    buffer = io.StringIO()
    columns = [*AGREEMENT_FIELDS[:-2], "notes"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        if isinstance(record, dict):
            writer.writerow(
                {k: json.dumps(v) if k in NESTED else v for k, v in record.items() if k}
            )
    return buffer.getvalue()


registry_files = st.one_of(
    st.tuples(st.sampled_from(["json", "csv"]), st.binary(max_size=300)),
    st.tuples(st.just("json"), junk.map(lambda v: encoded(json.dumps(v)))),
    st.tuples(
        st.just("json"),
        st.tuples(mutated_records(), st.booleans()).map(
            lambda r: encoded(json.dumps({"agreements": r[0]} if r[1] else r[0]))
        ),
    ),
    st.tuples(st.just("csv"), mutated_records().map(lambda r: encoded(as_csv(r)))),
    st.tuples(
        st.just("csv"), st.sampled_from(SEED[:4]).map(lambda r: as_csv([r])).flatmap(text_mutations)
    ).map(lambda pair: (pair[0], encoded(pair[1]))),
    st.tuples(
        st.just("json"),
        st.sampled_from(SEED[:4]).map(lambda r: json.dumps([r])).flatmap(text_mutations),
    ).map(lambda pair: (pair[0], encoded(pair[1]))),
)


def check_registry_import(registry: Registry, suffix: str, data: bytes, replace: bool) -> None:
    """Import the file as `critmin agreements import` does and check the property."""
    before = registry.audit_count()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"agreements.{suffix}"
        path.write_bytes(data)
        try:
            written = registry.import_records(_read_records(path), "fuzz", replace=replace)
        except CritminError:
            assert registry.audit_count() == before, "a refused import changed the registry"
            return
    assert registry.audit_count() == before + len(written)
    for record in written:
        stored = registry.get(record["id"])
        assert stored == record
        assert record_problems(stored) == [], stored


@pytest.fixture
def registry(db_url):
    """An empty registry (no seed: the fuzzed files reuse the seed's ids)."""
    registry = Registry(db_url, seed=False)
    yield registry
    registry.engine.dispose()


@fuzz(150, 3000)
@given(file=registry_files, replace=st.booleans())
def test_registry_import_yields_valid_agreements_or_a_critmin_error(registry, file, replace):
    check_registry_import(registry, *file, replace)


def _seed_with(field: str, value: object, nested: str | None = None) -> list:
    """The seed's US-Australia framework (parties, commitments and milestones) with one
    field set to `value`, in its first party, commitment or milestone if `nested`."""
    record = copy.deepcopy(next(r for r in SEED if r["id"] == "us-aus-framework-2025"))
    if nested:
        record[nested][0][field] = value
    else:
        record[field] = value
    return [record]


REGISTRY_REGRESSIONS = {
    # Values of the wrong type reached the database driver (ProgrammingError, TypeError, …).
    "notes-object": _seed_with("notes", {"a": 1}),
    "source-url-list": _seed_with("source_url", ["https://example.org"]),
    "minerals-number": _seed_with("minerals", 5),
    "minerals-mapping": _seed_with("minerals", {"graphite": 1}),
    "minerals-of-numbers": _seed_with("minerals", [5]),
    "commitments-number": _seed_with("commitments", 5),
    "milestones-number": _seed_with("milestones", 5),
    "milestone-title-number": _seed_with("milestones", [{"title": 5, "status": "planned"}]),
    "milestone-title-object": _seed_with("milestones", [{"title": {"a": 1}, "status": "planned"}]),
    "lead-agency-object": _seed_with("parties", [{"party": "USA", "lead_agency": {"a": 1}}]),
    "commitment-note-list": _seed_with("note", [1], "commitments"),
    "commitment-mineral-list": _seed_with("mineral", ["graphite"], "commitments"),
    # Text the database cannot store: lone surrogates (UnicodeEncodeError), NUL (PostgreSQL).
    "title-surrogate": _seed_with("title", "a\ud800b"),
    "party-surrogate": _seed_with("parties", [{"party": "company:\ud800"}]),
    "title-nul": _seed_with("title", "a\x00b"),
    # Longer than the column (PostgreSQL: StringDataRightTruncation).
    "title-too-long": _seed_with("title", "x" * 301),
    "company-too-long": _seed_with("parties", [{"party": "company:" + "x" * 120}]),
    "lead-agency-too-long": _seed_with("parties", [{"party": "USA", "lead_agency": "x" * 301}]),
    # Dates the pattern allowed but the calendar does not: `agreements deadlines` crashed.
    "milestone-february-31": _seed_with(
        "milestones", [{"title": "x", "status": "planned", "planned": "2026-02-31"}]
    ),
    "signed-year-zero": _seed_with("signed", "0000"),
    # Sources that are not one line of text: AttributeError (None), or stored and lost.
    "sources-none": _seed_with("sources", [None]),
    "sources-text": _seed_with("sources", "https://example.org"),
    "sources-two-lines": _seed_with("sources", ["https://a.org\nhttps://b.org"]),
    # An integer too large for a float: OverflowError when the database driver bound it.
    "tonnes-huge-integer": _seed_with("tonnes_per_year", 10**400, "commitments"),
}


@pytest.mark.parametrize("records", REGISTRY_REGRESSIONS.values(), ids=REGISTRY_REGRESSIONS)
def test_registry_regressions_found_by_fuzzing(registry, records):
    data = encoded(json.dumps(records))
    check_registry_import(registry, "json", data, False)
    with pytest.raises(CritminError):
        registry.import_records(records, "fuzz")
    assert registry.audit_count() == 0


def test_registry_csv_regression_deeply_nested_cell():
    """A CSV cell nested deeper than Python's recursion limit: RecursionError escaped."""
    cell = "[" * 5000 + "]" * 5000
    text = f"id,title,kind,status,parties\nx,X,memorandum,signed,{cell}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agreements.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CritminError):
            _read_records(path)


# ---------------------------------------------------------------------------------------
# Scenario files (load_study)
# ---------------------------------------------------------------------------------------

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
EXAMPLE_STUDIES = [read_study_file(path) for path in EXAMPLE_FILES]
STUDY_KEYS = {
    "": list(Study.model_fields),
    "policies": ["bans", "quotas", "tariffs", "export_taxes", "zone", "releases", "capacity"],
    "ensemble": ["draws", "seed", "targets", "hazard"],
    "limits": ["max_draws", "max_commodities"],
}


# Values a study could hold: names that resolve, numbers in and just out of range, so that
# a mutated study often loads and the checks after loading run too.
plausible_name = st.sampled_from(
    ["CHN", "USA", "DEU", "AUS", "JPN", "EU", "g7", "eu27", "quad", "ministerial_2026",
     "rare_earths", "graphite", "tungsten", "cobalt", "lithium", "gallium", "REE", "USA,JPN"]
)  # fmt: skip
plausible_number = st.one_of(
    st.floats(-1, 3), st.integers(-1, 3000), st.sampled_from([0, 0.5, 1, 1.3, 2023, 1e6])
)
plausible = st.recursive(
    plausible_name | plausible_number | st.sampled_from(["tariff", "guarantee", "all", "bloc"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            plausible_name | st.sampled_from(["exporter", "targets", "fraction"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=6,
)


@st.composite
def mutated_study(draw) -> str:
    """An example study (extends merged) with a few values replaced, deleted or added,
    dumped as YAML."""
    study = copy.deepcopy(draw(st.sampled_from(EXAMPLE_STUDIES)))
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(STUDY_KEYS)))
        target = study if not section else study.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        key = draw(st.sampled_from([*STUDY_KEYS[section], "extends", "extra"]))
        nested = target.get(key)
        if isinstance(nested, list) and nested and isinstance(nested[0], dict):
            target, key = nested[0], draw(st.sampled_from([*nested[0], "extra"]))
        elif isinstance(nested, dict) and nested and draw(st.booleans()):
            target, key = nested, draw(st.sampled_from([*nested, "extra"]))
        if draw(st.integers(0, 3)) == 0 and key in target:
            del target[key]
        else:
            target[key] = draw(plausible | junk)
    return yaml.safe_dump(study, allow_unicode=draw(st.booleans()))


def _maybe(draw, strategy):
    return draw(strategy) if draw(st.booleans()) else None


def _drop_none(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None}


@st.composite
def plausible_study(draw) -> dict:
    """A study built from names that resolve and numbers near their limits (NaN and
    infinity included): most load, so the checks of `prepare_study` run on them."""
    countries = st.sampled_from(STUDY_COUNTRIES)
    names = st.one_of(countries, countries, countries, st.sampled_from(["ZZZ", "", "graphite"]))
    number = plausible_number | st.sampled_from([math.nan, math.inf, -0.0, 1e308])
    commodities = draw(
        st.lists(st.sampled_from(STUDY_COMMODITIES), min_size=1, max_size=2, unique=True)
    )
    floor = number | st.sampled_from(["1.3x", "45000usd", "1e5e5", ".", "-1", "nan"])
    policies = _drop_none(
        {
            "bans": _maybe(draw, st.lists(st.fixed_dictionaries(
                {"exporter": names}, optional={"targets": names}), max_size=2)),
            "quotas": _maybe(draw, st.lists(st.fixed_dictionaries(
                {"exporter": names, "fraction": number},
                optional={"targets": names, "aggregate": st.booleans()}), max_size=2)),
            "tariffs": _maybe(draw, st.lists(st.fixed_dictionaries(
                {"importers": names, "rate": number}, optional={"exporters": names}),
                max_size=2)),
            "export_taxes": _maybe(draw, st.lists(st.fixed_dictionaries(
                {"exporter": names, "rate": number}, optional={"targets": names}), max_size=2)),
            "zone": _maybe(draw, st.fixed_dictionaries(
                {"members": names,
                 "floors": st.dictionaries(st.sampled_from(commodities), floor, min_size=1)},
                optional={"mechanism": st.sampled_from(["tariff", "guarantee"])})),
            "releases": _maybe(draw, st.dictionaries(names, number, max_size=2)),
            "capacity": _maybe(draw, st.dictionaries(names, number, max_size=2)),
        }
    )  # fmt: skip
    parameter = st.sampled_from(
        ["armington_sigma", "demand_elasticity", "supply_elasticity", "cutoff_price"]
    )
    return _drop_none(
        {
            "name": "fuzz",
            "base_year": _maybe(draw, st.sampled_from([2018, 2020, 2023, 2024])),
            "horizon": draw(st.sampled_from(["short", "long"])),
            "commodities": commodities,
            "bloc": _maybe(draw, names),
            "policies": policies,
            "parameters": _maybe(
                draw,
                st.dictionaries(
                    parameter, number | st.dictionaries(names, number, max_size=2), max_size=2
                ),
            ),
        }
    )


STUDY_COMMODITIES = ["rare_earths", "graphite", "tungsten", "cobalt", "gallium", "lithium"]
STUDY_COUNTRIES = ["CHN", "USA", "DEU", "AUS", "JPN", "COD", "EU", "g7", "eu27", "USA,JPN"]

study_texts = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    junk.map(lambda v: yaml.safe_dump(v)),
    mutated_study(),
    st.sampled_from(EXAMPLE_FILES)
    .map(lambda p: p.read_text(encoding="utf-8"))
    .flatmap(text_mutations),
)


def check_study(text: str | bytes) -> None:
    """Load `text` as a scenario file next to copies of the examples (for `extends`)."""
    with tempfile.TemporaryDirectory() as tmp:
        for example in EXAMPLE_FILES:
            (Path(tmp) / example.name).write_bytes(example.read_bytes())
        path = Path(tmp) / "study.yaml"
        path.write_bytes(text if isinstance(text, bytes) else encoded(text))
        try:
            study = load_study(path)
        except CritminError:
            return
    assert isinstance(study, Study)
    assert Study.model_validate(study.model_dump()) == study


@fuzz(200, 4000)
@given(text=study_texts)
def test_scenario_loader_yields_a_study_or_an_input_error(text):
    check_study(text)


@pytest.mark.parametrize(
    "text",
    [
        # A NUL byte in `extends`: Path.resolve() raised ValueError (embedded null byte).
        'extends: "a\\0b"\nname: x\ncommodities: [rare_earths]\n',
    ],
)
def test_scenario_regressions_found_by_fuzzing(text):
    check_study(text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CritminError):
            load_study(path)


@fuzz(60, 1000)
@given(data=plausible_study())
def test_a_loaded_study_prepares_or_raises_an_input_error(data):
    """The run's own checks (calibration, policy compilation) after a study loads: what
    `critmin run` does before any solve and what POST /api/runs does before queueing."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        try:
            study = load_study(path)
        except CritminError:
            return
    with contextlib.suppress(CritminError):
        prepare_study(study)
