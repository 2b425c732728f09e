"""Regression tests of issue 19 (hardening, second round) on the command line: outputs,
terminal and spreadsheet text, registry round trips, canonical ids, user datasets."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from critmin.cli.main import run
from critmin.cli.sanitise import spreadsheet_cell, terminal_text, unescape_cell
from critmin.registry.store import Registry

OUTPUTS = [
    ["risk", "EU", "REE", "-f", "xlsx", "--out"],
    ["risk", "EU", "REE", "-f", "csv", "--out"],
    ["agreements", "export", "--out"],
    ["brief", "--minerals", "gallium", "--out"],
]


def _said(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.err + captured.out).split())


@pytest.mark.parametrize("command", OUTPUTS, ids=lambda c: "-".join(c[:3]))
@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_out_replaces_only_regular_files(command, kind, tmp_path, capsys, isolated_user_data):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "target"
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    assert run([*command, str(target)]) == 2
    said = _said(capsys)
    assert said.startswith("error:") and "Traceback" not in said
    assert victim.read_text() == "keep me"
    assert {"symlink": target.is_symlink, "fifo": target.is_fifo, "folder": target.is_dir}[kind]()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary


def test_risk_csv_out_writes_the_file_not_stdout(tmp_path, capsys, isolated_user_data):
    out = tmp_path / "risk.csv"
    assert run(["risk", "EU", "REE", "-f", "csv", "--out", str(out)]) == 0
    assert "rows written to" in capsys.readouterr().out
    assert pd.read_csv(out)["entity"].eq("eu27").all()


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_full_stdout_is_one_line_not_a_traceback(fmt):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "critmin", "dependence", "DEU", "REE", "-f", fmt],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: cannot write the output: no space left on the device"


def test_a_full_disk_during_run_leaves_no_table_without_summary(
    tmp_path, monkeypatch, capsys, isolated_user_data
):
    import critmin.scenarios.runner as runner

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "write_json_atomic", full)
    out = tmp_path / "results"
    study = Path(__file__).parents[2] / "examples" / "ministerial_2026_chinese_ban.yaml"
    assert run(["run", str(study), "--out", str(out)]) == 2
    assert "no space left on the device" in _said(capsys)
    assert list(out.iterdir()) == []


def test_terminal_text_drops_escape_sequences():
    assert terminal_text("\x1b[31mred\x1b[0m") == "red"
    assert terminal_text("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b") == "alinkb"
    assert terminal_text("over\rwrite") == "over\\x0dwrite"
    assert terminal_text("\x9b2J") == ""
    assert terminal_text("two\nlines", keep_newlines=True) == "two\nlines"


@pytest.mark.parametrize(
    "value", ["=cmd|' /C calc'!A0", "=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx",
              "'=x", "'", "plain", ""],
)  # fmt: skip
def test_spreadsheet_cells_are_escaped_and_reversible(value):
    escaped = spreadsheet_cell(value)
    assert not str(escaped).startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == value
    assert spreadsheet_cell(-5.0) == -5.0 and spreadsheet_cell(3) == 3  # numbers stay numbers


def test_csv_output_escapes_formulas_and_keeps_numbers(capsys):
    from critmin.cli.output import OutputFormat, emit

    emit(pd.DataFrame({"name": ["=1+2", "ok"], "value": [-1.5, 2.0]}), OutputFormat.csv)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == ["'=1+2", "ok"] and rows[0]["value"] == "-1.5"


AWKWARD = [
    {
        "id": "awkward-1",
        "title": "=HYPERLINK(\"http://x\")\rbare CR, \"quotes\", tab\t",
        "kind": "memorandum",
        "status": "signed",
        "signed": "2024-01-02",
        "parties": [{"party": "Japan"}, {"party": "USA", "lead_agency": ""}],
        "minerals": ["REE", "natural graphite"],
        "commitments": [
            {"mineral": "REE", "supplier": "AUS", "recipient": "USA", "tonnes_per_year": 100,
             "note": ""},
        ],
        "milestones": [{"title": "-minus", "planned": "2025", "status": "planned"}],
        "source_url": "'quoted",
        "notes": "",
    },
    {
        "id": "awkward-2",
        "title": "\x1b[31mred\x1b[0m",
        "kind": "memorandum",
        "status": "signed",
        "parties": ["USA"],
        "notes": "line1\nline2\r\n@x",
        "archived": True,
    },
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_import_round_trip_is_identical(fmt, tmp_path, capsys, isolated_user_data):
    registry = Registry()
    registry.import_records(json.loads(json.dumps(AWKWARD)), "test")
    registry.archive("us-jpn-cma-2023", "test")
    out = tmp_path / f"all.{fmt}"
    assert run(["agreements", "export", "-f", fmt, "--out", str(out)]) == 0
    fresh = Registry(f"sqlite:///{tmp_path / 'fresh.sqlite'}", seed=False)
    os.environ["CRITMIN_DB_URL"] = fresh.url  # isolated_user_data's monkeypatch restores it
    assert run(["agreements", "import", "--replace", str(out)]) == 0  # over the seed

    def content(reg):
        return [{k: v for k, v in r.items() if k != "version"} for r in reg.records(True)]

    assert content(fresh) == content(registry)
    assert fresh.get("us-jpn-cma-2023")["archived"] and fresh.get("awkward-2")["archived"]
    assert fresh.get("awkward-1")["notes"] == "" and fresh.get("awkward-1")["title"].count("\r")


def test_ids_are_canonical_on_every_write_and_counted_in_coverage(isolated_user_data):
    registry = Registry()
    [written] = registry.import_records([json.loads(json.dumps(AWKWARD[0]))], "test")
    assert written["minerals"] == ["rare_earths", "graphite"]
    assert written["commitments"][0]["mineral"] == "rare_earths"
    assert [p["party"] for p in written["parties"]] == ["JPN", "USA"]
    updated = registry.update("awkward-1", {"commitments": [{"mineral": "natural graphite"}]}, "t")
    assert updated["commitments"][0]["mineral"] == "graphite"


def test_a_csv_with_a_byte_order_mark_imports(tmp_path, capsys, isolated_user_data):
    path = tmp_path / "bom.csv"
    path.write_bytes(
        '\ufeffid,title,kind,status,parties\r\nbom-1,BOM,memorandum,signed,"[""USA""]"\r\n'.encode()
    )
    assert run(["agreements", "import", str(path)]) == 0, _said(capsys)
    assert Registry().get("bom-1")["title"] == "BOM"


def test_stored_escape_sequences_do_not_reach_the_terminal(capsys, isolated_user_data):
    Registry().import_records([json.loads(json.dumps(AWKWARD[1]))], "test")
    for argv in (["agreements", "show", "awkward-2"], ["agreements", "list", "--archived"]):
        assert run(argv) == 0
        assert "\x1b" not in capsys.readouterr().out


def test_actor_is_bounded_and_printable(isolated_user_data):
    from critmin.errors import InputError

    for actor in ("x" * 121, "evil\x1b]8;;http://x\x07", ""):
        with pytest.raises(InputError):
            Registry().archive("us-jpn-cma-2023", actor)
