"""The registry store on SQLite and PostgreSQL: writes, audit, archive, imports, durability."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from critmin.errors import DataError, InputError
from critmin.registry.records import RecordError
from critmin.registry.store import Registry


def record(ident: str = "us-aus-2025", **changes) -> dict:
    base = {
        "id": ident,
        "title": "US-Australia critical minerals framework",
        "kind": "framework",
        "status": "signed",
        "signed": "2025-10-20",
        "parties": [{"party": "USA", "lead_agency": None}, {"party": "AUS", "lead_agency": None}],
        "minerals": ["rare_earths", "gallium"],
        "commitments": [
            {
                "mineral": "rare_earths",
                "supplier": "AUS",
                "recipient": "USA",
                "tonnes_per_year": 1000.0,
            }
        ],
        "milestones": [{"title": "first projects", "planned": "2026-04", "status": "planned"}],
        "source_url": "https://example.org/source",
        "sources": ["https://example.org/press-release", "Reuters, 20 October 2025"],
        "notes": "Signed at the White House.",
    }
    base.update(changes)
    return base


def test_write_cycle_is_audited(db_url):
    registry = Registry(db_url, seed=False)
    registry.add(record(), "alice")
    registry.update("us-aus-2025", {"status": "in_force"}, "bob")
    registry.archive("us-aus-2025", "carol")
    assert registry.records() == []
    assert [r["id"] for r in registry.records(include_archived=True)] == ["us-aus-2025"]
    restored = registry.restore("us-aus-2025", "dave")
    assert restored["status"] == "in_force" and restored["version"] == 4
    history = registry.history("us-aus-2025")
    assert [(h["actor"], h["action"]) for h in history] == [
        ("alice", "add"),
        ("bob", "update"),
        ("carol", "archive"),
        ("dave", "restore"),
    ]
    assert history[1]["before"]["status"] == "signed"
    assert history[1]["after"]["status"] == "in_force"
    assert registry.audit_count() == 4


def test_round_trip_keeps_every_field(db_url):
    registry = Registry(db_url, seed=False)
    written = registry.add(record(), "alice")
    again = registry.get("us-aus-2025")
    assert again == written
    # Every field given comes back as given, nested ones filled with None where not given
    # (`sources` was once validated and then dropped).
    for field, given in record().items():
        if field in ("commitments", "milestones"):
            assert [{k: item[k] for k in first} for item, first in zip(
                again[field], given, strict=True)] == given, field  # fmt: skip
        else:
            assert again[field] == given, field
    assert again["commitments"][0]["tonnes_per_year"] == 1000.0
    assert again["parties"][1] == {"party": "AUS", "lead_agency": None}


def test_malformed_import_changes_nothing_and_lists_every_bad_row(db_url):
    registry = Registry(db_url, seed=False)
    registry.add(record("kept"), "alice")
    bad = [
        record("ok-1"),
        record("bad-date", signed="2025-13-40"),
        record("bad-country", parties=[{"party": "Atlantis", "lead_agency": None}]),
        record("bad-tonnes", commitments=[{"mineral": "cobalt", "tonnes_per_year": -3}]),
        record("ok-1"),
        record("kept"),
    ]
    with pytest.raises(RecordError) as caught:
        registry.import_records(bad, "mallory")
    message = "\n".join(caught.value.problems)
    for expected in ("2025-13-40", "Atlantis", "-3", "duplicate id 'ok-1'"):
        assert expected in message
    assert [r["id"] for r in registry.records()] == ["kept"]
    assert registry.audit_count() == 1


def test_existing_id_needs_replace(db_url):
    registry = Registry(db_url, seed=False)
    registry.add(record(), "alice")
    with pytest.raises(RecordError, match="already exists"):
        registry.import_records([record()], "bob")
    registry.import_records([record(status="in_force")], "bob", replace=True)
    assert registry.get("us-aus-2025")["status"] == "in_force"


def test_unknown_id_and_bad_updates(db_url):
    registry = Registry(db_url, seed=False)
    registry.add(record(), "alice")
    with pytest.raises(InputError, match="no agreement"):
        registry.update("nope", {"status": "signed"}, "bob")
    with pytest.raises(RecordError, match="status"):
        registry.update("us-aus-2025", {"status": "maybe"}, "bob")
    registry.archive("us-aus-2025", "bob")
    with pytest.raises(InputError, match="already"):
        registry.archive("us-aus-2025", "bob")
    assert registry.get("us-aus-2025")["version"] == 2


WRITER = """
import sys
from critmin.registry.store import Registry
url, ident, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
registry = Registry(url, seed=False)
for i in range(count):
    written = registry.update(ident, {"notes": str(i)}, ident)
    print(written["version"], flush=True)  # acknowledged
"""


def _writer(url: str, ident: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, ident, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )


def test_eight_concurrent_writers_lose_nothing(db_url):
    registry = Registry(db_url, seed=False)
    idents = [f"writer-{n}" for n in range(8)]
    registry.import_records([record(i) for i in idents], "setup")
    writers = [_writer(db_url, ident, 250) for ident in idents]
    acknowledged = {}
    for ident, process in zip(idents, writers, strict=True):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        acknowledged[ident] = [int(v) for v in out.split()]
    for ident in idents:
        assert len(acknowledged[ident]) == 250
        final = registry.get(ident)
        assert final["version"] == 251 and final["notes"] == "249"
        assert len(registry.history(ident)) == 251  # the add and one entry per write
    assert registry.audit_count() == 8 + 8 * 250


def test_writer_killed_mid_transaction_leaves_a_consistent_database(db_url):
    registry = Registry(db_url, seed=False)
    registry.add(record("victim"), "setup")
    process = _writer(db_url, "victim", 100_000)
    first = process.stdout.readline()  # the writer is up and writing
    assert first.strip()
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate()
    acknowledged = [int(first)] + [int(v) for v in out.split()]
    reopened = Registry(db_url, seed=False)
    final = reopened.get("victim")
    assert final["version"] >= acknowledged[-1]
    assert len(reopened.history("victim")) == final["version"]
    if db_url.startswith("sqlite"):
        import sqlite3

        path = db_url.removeprefix("sqlite:///")
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_seed_data_loads_and_is_valid(tmp_path):
    seed = Path(__file__).parents[2] / "src" / "critmin" / "registry" / "seed" / "agreements.json"
    if not seed.is_file():
        pytest.skip("no seed file")
    registry = Registry(f"sqlite:///{tmp_path / 'seeded.sqlite'}")
    records = registry.records()
    assert len(records) == len(json.loads(seed.read_text())["agreements"]) > 0
    assert all(r["source_url"] for r in records)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://analyst:s3cret-pw@127.0.0.1:1/critmin",  # nothing listens there
        "postgresql+nosuchdriver://analyst:s3cret-pw@127.0.0.1/critmin",  # driver missing
        "not a url s3cret-pw",  # unparsable: SQLAlchemy's message quotes it whole
    ],
)
def test_errors_never_show_the_database_password(url):
    with pytest.raises((InputError, DataError)) as raised:
        Registry(url)
    assert "s3cret-pw" not in str(raised.value)
    assert "cannot" in str(raised.value)


def test_upgrade_from_the_previous_schema_keeps_the_agreements(tmp_path):
    """A registry made before `sources` was stored (schema 0002) is upgraded in place on
    open: its agreements read back unchanged, with no sources, and new ones keep theirs."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from critmin.registry.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(sa.text(
            "INSERT INTO agreement (id, title, kind, status, minerals, archived, version,"
            " updated_at) VALUES ('old-mou', 'Old MoU', 'memorandum', 'signed', 'graphite',"
            " 0, 1, '2025-01-01 00:00:00')"
        ))  # fmt: skip
    engine.dispose()
    registry = Registry(url, seed=False)
    old = registry.get("old-mou")
    assert (old["title"], old["minerals"], old["sources"]) == ("Old MoU", ["graphite"], [])
    assert registry.add(record(), "alice")["sources"] == record()["sources"]
