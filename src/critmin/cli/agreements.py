"""`critmin agreements`: the registry of memoranda, offtakes, price floors and deadlines."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape

from critmin.cli.output import OutputFormat, console, emit, emit_json, write_output
from critmin.cli.sanitise import spreadsheet_cell, terminal_text, unescape_cell
from critmin.data.io import read_user_bytes
from critmin.errors import InputError
from critmin.registry.coverage import coverage as coverage_table
from critmin.registry.deadlines import deadlines as deadline_table
from critmin.registry.records import AGREEMENT_FIELDS
from critmin.registry.store import Registry

app = typer.Typer(
    help="Agreements, commitments and deadlines (SQLite or PostgreSQL).", no_args_is_help=True
)
FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json.")
ACTOR = typer.Option(None, "--actor", help="Who makes the change (default: your user name).")
NESTED = ("parties", "minerals", "commitments", "milestones", "sources")
# The exchange format's columns: every field, and whether the record is archived (so an
# export of the whole registry imports back as it was).
CSV_FIELDS = (*AGREEMENT_FIELDS, "archived")
MAX_IMPORT_BYTES = 64_000_000  # a registry of 100,000 agreements is about 60 MB of JSON


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _summary(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": r["id"],
                "kind": r["kind"],
                "status": r["status"],
                "signed": r["signed"],
                "parties": ", ".join(p["party"] for p in r["parties"]),
                "minerals": ", ".join(r["minerals"]),
                "commitments": len(r["commitments"]),
                "archived": r["archived"],
            }
            for r in records
        ],
        columns=[
            "id",
            "kind",
            "status",
            "signed",
            "parties",
            "minerals",
            "commitments",
            "archived",
        ],
    )


@app.command("list")
def list_agreements(
    status: str | None = typer.Option(None, help="Only this status."),
    party: str | None = typer.Option(None, help="Only agreements with this party (ISO3, EU)."),
    mineral: str | None = typer.Option(None, help="Only agreements covering this mineral."),
    archived: bool = typer.Option(False, help="Include archived agreements."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Agreements, filtered."""
    records = Registry().records(include_archived=archived)
    if status:
        records = [r for r in records if r["status"] == status]
    if party:
        records = [r for r in records if party in {p["party"] for p in r["parties"]}]
    if mineral:
        from critmin.data import commodity

        wanted = commodity(mineral).id
        records = [
            r
            for r in records
            if wanted in r["minerals"] or wanted in {c["mineral"] for c in r["commitments"]}
        ]
    if fmt is OutputFormat.json:
        emit_json(records)
    else:
        emit(_summary(records), fmt, title=f"{len(records)} agreements")


@app.command("show")
def show(ident: str = typer.Argument(...), fmt: OutputFormat = FORMAT) -> None:
    """One agreement with its parties, commitments and milestones."""
    record = Registry().get(ident)
    if fmt is OutputFormat.json:
        emit_json(record)
        return
    # The record's text is printed as written (escaped), not read as Rich markup, and with
    # no escape sequence a writer stored in it (terminal_text).
    console.print(
        f"[bold]{escape(terminal_text(record['title']))}[/] ({record['id']}; {record['kind']}, "
        f"{record['status']}; signed {record['signed'] or '–'})",
        highlight=False,
    )
    console.print(
        f"source: {terminal_text(record['source_url'] or '–')}", markup=False, highlight=False
    )
    for source in record["sources"]:
        console.print(f"  also: {terminal_text(source)}", markup=False, highlight=False)
    if record["notes"]:
        console.print(
            terminal_text(record["notes"], keep_newlines=True), markup=False, highlight=False
        )
    for name in ("parties", "commitments", "milestones"):
        if record[name]:
            emit(pd.DataFrame(record[name]), fmt, title=name)


def _checked(rows: csv.DictReader, path: Path):
    """The CSV rows, with the csv module's own errors (e.g. a field over its size limit)
    turned into one line naming the file."""
    try:
        yield from rows
    except csv.Error as exc:
        raise InputError(f"{path}:{rows.line_num}: malformed CSV ({exc})") from None


def _read_records(path: Path) -> list[dict]:
    """Records from a JSON file (a list, an object with 'agreements', or one agreement) or
    a CSV file."""
    data = read_user_bytes(path, MAX_IMPORT_BYTES, "registry import file")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is dropped
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if path.suffix.lower() == ".csv":
        records = []
        rows = csv.DictReader(io.StringIO(text, newline=""))
        for number, row in enumerate(_checked(rows, path), start=2):
            # An empty cell is a missing value; a cell critmin escaped for spreadsheets
            # ('=…, a lone ' for "") reads back as written (unescape_cell).
            record = {
                k: (unescape_cell(v) if v != "" else None)
                for k, v in row.items()
                if k and isinstance(v, str)
            }
            if "archived" in record:
                flag = (record["archived"] or "false").strip().lower()
                if flag not in ("true", "false"):
                    raise InputError(f"{path}:{number}: archived must be true or false")
                record["archived"] = flag == "true"
            for field in NESTED:
                if record.get(field):
                    try:
                        record[field] = json.loads(record[field])
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number}: {field} is not JSON ({exc})") from exc
                    except RecursionError:
                        raise InputError(f"{path}:{number}: {field} is nested too deeply") from None
            records.append(record)
        if not records:
            raise InputError(f"{path}: no agreements in the file")
        return records
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be agreements") from None
    records = payload
    if isinstance(payload, dict):  # {"agreements": [...]}, or one agreement (as `add` takes)
        records = payload.get("agreements", [payload])
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a list of agreements or {{'agreements': [...]}}")
    if not records:
        raise InputError(f"{path}: no agreements in the file")
    return records


@app.command("add")
def add(
    path: Path = typer.Argument(..., help="JSON file with one agreement."),
    actor: str | None = ACTOR,
) -> None:
    """Add an agreement from a JSON file."""
    records = _read_records(path)
    written = Registry().import_records(records, _actor(actor))
    console.print(f"added {', '.join(r['id'] for r in written)}")


@app.command("update")
def update(
    ident: str = typer.Argument(...),
    set_: list[str] = typer.Option(..., "--set", help="field=value (value may be JSON)."),
    actor: str | None = ACTOR,
) -> None:
    """Change fields: --set status=in_force --set 'milestones=[...]'."""
    changes = {}
    for item in set_:
        field, sep, value = item.partition("=")
        if not sep or field not in AGREEMENT_FIELDS:
            raise InputError(
                f"--set {item!r}: use field=value with a field of {', '.join(AGREEMENT_FIELDS)}"
            )
        try:
            changes[field] = json.loads(value)
        except json.JSONDecodeError:
            changes[field] = value
    record = Registry().update(ident, changes, _actor(actor))
    console.print(f"{ident} updated (version {record['version']})")


@app.command("archive")
def archive(ident: str = typer.Argument(...), actor: str | None = ACTOR) -> None:
    """Archive an agreement (kept with its history; restore brings it back)."""
    Registry().archive(ident, _actor(actor))
    console.print(f"{ident} archived")


@app.command("restore")
def restore(ident: str = typer.Argument(...), actor: str | None = ACTOR) -> None:
    """Restore an archived agreement."""
    Registry().restore(ident, _actor(actor))
    console.print(f"{ident} restored")


@app.command("history")
def history(ident: str = typer.Argument(...), fmt: OutputFormat = FORMAT) -> None:
    """Every change of an agreement: who, when, what."""
    entries = Registry().history(ident)
    if fmt is OutputFormat.json:
        emit_json(entries)
        return
    rows = []
    for entry in entries:
        before, after = entry["before"] or {}, entry["after"] or {}
        changed = sorted(
            k for k in set(before) | set(after) if before.get(k) != after.get(k) and k != "version"
        )
        rows.append(
            {
                "at": entry["at"],
                "actor": entry["actor"],
                "action": entry["action"],
                "changed": ", ".join(changed),
            }
        )
    emit(pd.DataFrame(rows), fmt, title=f"history of {ident}")


@app.command("import")
def import_command(
    path: Path = typer.Argument(..., help="JSON or CSV file of agreements."),
    replace: bool = typer.Option(False, help="Overwrite agreements whose id exists."),
    actor: str | None = ACTOR,
) -> None:
    """Import agreements; a file with any bad row changes nothing and lists every problem."""
    written = Registry().import_records(_read_records(path), _actor(actor), replace=replace)
    console.print(f"imported {len(written)} agreements")


@app.command("export")
def export(
    fmt: str = typer.Option("json", "--format", "-f", help="json or csv."),
    out: Path | None = typer.Option(None, help="File to write (default: standard output)."),
    archived: bool = typer.Option(True, help="Include archived agreements."),
) -> None:
    """Export every agreement as JSON or CSV (nested fields as JSON in CSV cells)."""
    if fmt not in ("json", "csv"):
        raise InputError(f"--format {fmt!r}: use json or csv")
    records = Registry().records(include_archived=archived)
    if fmt == "json":
        exported = [{k: v for k, v in r.items() if k != "version"} for r in records]
        text = json.dumps({"agreements": exported}, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO(newline="")
        # Every text cell quoted (a bare CR in a title stays inside its cell), text that a
        # spreadsheet would run as a formula escaped with an apostrophe, and "" written as a
        # lone apostrophe so that it does not come back as a missing value.
        writer = csv.DictWriter(
            buffer,
            fieldnames=list(CSV_FIELDS),
            extrasaction="ignore",
            lineterminator="\r\n",
            quoting=csv.QUOTE_MINIMAL,
        )
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False)
                    if k in NESTED
                    else "true"
                    if v is True
                    else "false"
                    if v is False
                    else "'"
                    if v == ""
                    else spreadsheet_cell(v)
                    for k, v in record.items()
                }
            )
        text = buffer.getvalue()
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_output(out, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))
        console.print(f"{len(records)} agreements written to {terminal_text(out)}")


@app.command("coverage")
def coverage(
    bloc: str = typer.Argument(..., help="Country, group or A,B,C list."),
    year: int | None = typer.Option(None, help="Year of the import need."),
    supplier: str = typer.Option("CHN", help="Supplier whose share before/after is shown."),
    fuels: bool = typer.Option(False, "--fuels", help="Include mineral fuels (coal, oil, gas)."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Import need per mineral vs committed volumes: covered share, gap, supplier share after
    (mineral fuels only with --fuels)."""
    from critmin.data import country
    from critmin.registry.coverage import agreements_of

    records = Registry().records()
    table = coverage_table(records, bloc, year, country(supplier).iso3, include_fuels=fuels)
    if not agreements_of(records, bloc) and fmt is OutputFormat.table:
        console.print(f"{terminal_text(bloc)} is party to no agreement in the registry.")
    emit(
        table,
        fmt,
        title=f"Coverage of {bloc}'s net import need by active agreements",
        caption="need = imports − exports (t); committed = signed/in-force commitments with "
        "tonnes; gap filled by today's suppliers in today's proportions",
    )


@app.command("controls")
def controls(
    today: str | None = typer.Option(None, help="Date of the state shown (default: today)."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """The export-control tracker: China's 2023–2025 measures, their dates, state and sources
    (ids usable in scenario files: policies.controls)."""
    from critmin.registry.controls import tracker

    try:
        reference = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError as exc:
        raise InputError(f"--today {today!r} is not YYYY-MM-DD") from exc
    rows = tracker(reference)
    if fmt is OutputFormat.json:
        emit_json(rows)
        return
    table = pd.DataFrame(
        [
            {
                "id": r["id"],
                "minerals": ", ".join(r["commodities"]),
                "kind": r["kind"],
                "to": r["scope"],
                "start": r["start"],
                "end": r["end"] or "",
                "state": r["state"],
                "instrument": r["instrument"],
                "source": r["sources"][0],
            }
            for r in rows
        ]
    )
    title = f"Export controls tracked ({len(rows)}), state on {reference}"
    if fmt is not OutputFormat.table:
        emit(table, fmt, title=title)
        return
    from rich.table import Table

    shown = Table(title=title, caption="instruments and sources: --format csv or json")
    shown.add_column("id", no_wrap=True)  # the id is what a scenario file names: never cut
    for column in ("minerals", "to", "start", "state"):
        shown.add_column(column, overflow="fold")
    for r in table.itertuples():
        shown.add_row(*(terminal_text(v) for v in (r.id, r.minerals, r.to, r.start, r.state)))
    console.print(shown)


@app.command("deadlines")
def deadlines(
    within: int = typer.Option(90, min=0, help="Days ahead to include."),
    today: str | None = typer.Option(None, help="Reference date (default: today)."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Milestones and deadlines due within --within days, and every overdue one."""
    try:
        reference = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError as exc:
        raise InputError(f"--today {today!r} is not YYYY-MM-DD") from exc
    table = deadline_table(Registry().records(), reference, within)
    emit(table, fmt, title=f"Deadlines as of {reference} ({int(table['overdue'].sum())} overdue)")
