"""Agreement records as plain dicts (the JSON/CSV exchange format) and their validation."""

from __future__ import annotations

import datetime as dt
import math
import re

from critmin.data import commodity, country
from critmin.errors import CritminError
from critmin.registry.models import KINDS, MILESTONE_STATUSES, STATUSES

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_DATE = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")
AGREEMENT_FIELDS = (
    "id",
    "title",
    "kind",
    "status",
    "signed",
    "effective",
    "expiry",
    "parties",
    "minerals",
    "commitments",
    "milestones",
    "source_url",
    "sources",
    "notes",
)
COMMITMENT_FIELDS = (
    "mineral",
    "supplier",
    "recipient",
    "tonnes_per_year",
    "price_usd_per_t",
    "floor_usd_per_t",
    "start",
    "end",
    "note",
)
MILESTONE_FIELDS = ("title", "planned", "actual", "status")
# Widths of the registry's text columns (models.py): longer text is refused here, not by
# the database (PostgreSQL fails the write, SQLite would keep it).
TITLE_CHARS = 300
PARTY_CHARS = 120
SOURCE_CHARS = 2000  # one URL or citation
MAX_SOURCES = 50
NOTE_CHARS = 20_000  # a note is a paragraph or a page, not a document (notes, commitment notes)
ACTOR_CHARS = 120  # the audit table's actor column
MAX_TONNES = 1e10  # t a year: world mine output of all metals together is ~3e9 t
MAX_PRICE = 1e9  # USD/t: rhodium ~ 5e8 USD/t is the dearest traded metal
FIRST_YEAR, LAST_YEAR = 1900, 2100  # dates outside are typing errors (0001, 2566)


class RecordError(CritminError):
    """One or more records are invalid; `problems` lists every one, by record."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:20]) + (
            f"; … {len(problems) - 20} more" if len(problems) > 20 else ""
        )
        super().__init__(f"{len(problems)} problem(s): {shown}")


def valid_date(text: object) -> bool:
    """ISO date of the precision the source gives: YYYY, YYYY-MM or YYYY-MM-DD, and one
    the calendar has (no 2026-02-31, no year 0)."""
    if text is None:
        return True
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return False
    year, month, day = (int(part) for part in (text + "-01-01").split("-")[:3])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return False
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _earliest(date: str) -> str:
    return (date + "-01-01")[:10]


def _latest(date: str) -> str:
    return (date + "-12-31")[:10] if len(date) < 10 else date


def order_problem(first_label: str, first: object, then_label: str, then: object) -> str | None:
    """A problem if date `then` (e.g. an end) lies wholly before date `first` (a start);
    dates of different precision compare by the span each covers."""
    if not (isinstance(first, str) and isinstance(then, str)):
        return None
    if not (valid_date(first) and valid_date(then)):
        return None  # reported as an invalid date
    if _latest(then) < _earliest(first):
        return f"{then_label} {then} is before {first_label} {first}"
    return None


def actor_problem(actor: object) -> str | None:
    """None if `actor` can be stored in the audit log: 1-120 characters of printable text."""
    if not isinstance(actor, str) or not actor.strip():
        return "actor is empty"
    if problem := text_problem("actor", actor, ACTOR_CHARS):
        return problem
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in actor):
        return "actor contains control characters (escape sequences)"
    return None


def _canonical_party(party: object) -> object:
    if not isinstance(party, str) or party == "EU" or party.startswith("company:"):
        return party
    try:
        return country(party.strip()).iso3
    except CritminError:
        return party  # reported by the validation


def _canonical_mineral(mineral: object) -> object:
    if not isinstance(mineral, str):
        return mineral
    try:
        return commodity(mineral.strip()).id
    except CritminError:
        return mineral  # reported by the validation


def canonical_record(record: object) -> object:
    """`record` with its commodity and country ids in canonical form ("REE" → rare_earths,
    "natural graphite" → graphite, "Japan" → JPN), in minerals, parties and commitments;
    done on every write, so that coverage and lists never count one mineral under two
    names. What cannot be resolved is left as it is for the validation to report."""
    if not isinstance(record, dict):
        return record
    out = dict(record)
    if isinstance(out.get("minerals"), list):
        minerals: list = []
        for mineral in map(_canonical_mineral, out["minerals"]):
            if mineral not in minerals:  # "REE" and "rare_earths" are one mineral
                minerals.append(mineral)
        out["minerals"] = minerals
    if isinstance(out.get("parties"), list):
        out["parties"] = [
            {**p, "party": _canonical_party(p.get("party"))}
            if isinstance(p, dict)
            else _canonical_party(p)
            for p in out["parties"]
        ]
    if isinstance(out.get("commitments"), list):
        out["commitments"] = [
            {
                **c,
                "mineral": _canonical_mineral(c.get("mineral")),
                **{
                    side: _canonical_party(c[side])
                    for side in ("supplier", "recipient")
                    if c.get(side) is not None
                },
            }
            if isinstance(c, dict)
            else c
            for c in out["commitments"]
        ]
    return out


def text_problem(label: str, value: object, limit: int | None = None) -> str | None:
    """None if `value` is None or text the database can store: at most `limit` characters,
    no NUL (PostgreSQL refuses it), no lone surrogate (not encodable as UTF-8)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{label} must be text, not {type(value).__name__}"
    if limit is not None and len(value) > limit:
        return f"{label} has {len(value):,} characters; at most {limit:,}"
    if "\x00" in value:
        return f"{label} contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{label} is not valid Unicode text (a lone surrogate)"
    return None


def _add(problems: list[str], problem: str | None, where: str = "") -> None:
    """Append `problem` (prefixed with `where`) when there is one."""
    if problem:
        problems.append(f"{where}: {problem}" if where else problem)


def party_problem(party: object) -> str | None:
    """None if `party` is an ISO3 country, 'EU' or 'company:Name'."""
    if not isinstance(party, str) or not party.strip():
        return f"party {party!r} is empty"
    if problem := text_problem("party", party, PARTY_CHARS):
        return problem
    if party == "EU" or party.startswith("company:"):
        return None
    try:
        if country(party).iso3 != party:
            return f"party {party!r} must be written as its ISO3 code {country(party).iso3}"
    except CritminError as exc:
        return str(exc)
    return None


def _number_problem(label: str, value: object, bound: float = 1e300) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{label} {value!r} is not a number"
    if isinstance(value, int) and abs(value) > 1e300:  # no float holds it: OverflowError
        return f"{label} is too large (over 1e300)"
    if math.isnan(value) or math.isinf(value) or value < 0:
        return f"{label} {value!r} must be a finite number >= 0"
    if value > bound:
        return f"{label} {value:g} is over {bound:g}; no commitment is that large"
    return None


def record_problems(record: object) -> list[str]:
    """Every problem of one agreement record (empty when valid)."""
    if not isinstance(record, dict):
        return ["a record must be an object"]
    problems = []
    unknown = set(record) - set(AGREEMENT_FIELDS) - {"archived", "version"}
    if unknown:
        problems.append(f"unknown fields {sorted(unknown)}")
    ident = record.get("id")
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        problems.append(f"id {ident!r} must be a lowercase slug (a-z, 0-9, . _ -)")
    if not isinstance(record.get("title"), str) or not record["title"].strip():
        problems.append("title is required")
    else:
        _add(problems, text_problem("title", record["title"], TITLE_CHARS))
    _add(problems, text_problem("source_url", record.get("source_url")))
    _add(problems, text_problem("notes", record.get("notes"), NOTE_CHARS))
    if not isinstance(record.get("archived", False), bool):
        problems.append(f"archived {record.get('archived')!r} must be true or false")
    if record.get("kind") not in KINDS:
        problems.append(f"kind {record.get('kind')!r} is not one of {', '.join(KINDS)}")
    if record.get("status") not in STATUSES:
        problems.append(f"status {record.get('status')!r} is not one of {', '.join(STATUSES)}")
    for field in ("signed", "effective", "expiry"):
        if not valid_date(record.get(field)):
            problems.append(
                f"{field} {record.get(field)!r} is not YYYY, YYYY-MM or YYYY-MM-DD "
                f"between {FIRST_YEAR} and {LAST_YEAR}"
            )
    _add(problems, order_problem("signed", record.get("signed"), "expiry", record.get("expiry")))
    _add(
        problems,
        order_problem("effective", record.get("effective"), "expiry", record.get("expiry")),
    )
    parties = record.get("parties") or []
    if not isinstance(parties, list) or not parties:
        problems.append("parties must list at least one party")
        parties = []
    seen_parties: set[str] = set()
    for party in parties:
        name = party.get("party") if isinstance(party, dict) else party
        problem = party_problem(name)
        if problem:
            problems.append(problem)
        elif name in seen_parties:
            problems.append(f"party {name!r} is listed twice")
        if isinstance(name, str):
            seen_parties.add(name)
        if isinstance(party, dict):
            _add(problems, text_problem("lead_agency", party.get("lead_agency"), TITLE_CHARS))
    lists = {}
    for field in ("minerals", "commitments", "milestones", "sources"):
        lists[field] = record.get(field) or []
        if not isinstance(lists[field], list):
            problems.append(f"{field} must be a list, not {type(lists[field]).__name__}")
            lists[field] = []
    if len(lists["sources"]) > MAX_SOURCES:
        problems.append(f"sources has {len(lists['sources'])} entries; at most {MAX_SOURCES}")
    for number, source in enumerate(lists["sources"][:MAX_SOURCES], start=1):
        if not isinstance(source, str) or not source.strip() or "\n" in source or "\r" in source:
            problems.append(f"source {number} must be one non-empty line (a URL or a citation)")
        else:
            _add(problems, text_problem(f"source {number}", source, SOURCE_CHARS))
    for mineral in lists["minerals"]:
        if not isinstance(mineral, str):
            problems.append(f"mineral {mineral!r} must be a commodity id")
            continue
        try:
            if commodity(mineral).id != mineral:
                problems.append(f"mineral {mineral!r} must be written {commodity(mineral).id!r}")
        except CritminError as exc:
            problems.append(str(exc))
    for number, item in enumerate(lists["commitments"], start=1):
        where = f"commitment {number}"
        if not isinstance(item, dict):
            problems.append(f"{where} must be an object")
            continue
        if not isinstance(item.get("mineral"), str):
            problems.append(f"{where}: mineral {item.get('mineral')!r} must be a commodity id")
        else:
            try:
                commodity(item["mineral"])
            except CritminError as exc:
                problems.append(f"{where}: {exc}")
        _add(problems, text_problem("note", item.get("note"), NOTE_CHARS), where)
        unknown = set(item) - set(COMMITMENT_FIELDS)
        if unknown:
            problems.append(f"{where}: unknown fields {sorted(unknown)}")
        for side in ("supplier", "recipient"):
            if item.get(side) is not None and party_problem(item[side]):
                problems.append(f"{where}: {party_problem(item[side])}")
        if item.get("supplier") is not None and item.get("supplier") == item.get("recipient"):
            problems.append(f"{where}: supplier and recipient are both {item['supplier']!r}")
        for field, bound in (
            ("tonnes_per_year", MAX_TONNES),
            ("price_usd_per_t", MAX_PRICE),
            ("floor_usd_per_t", MAX_PRICE),
        ):
            problem = _number_problem(field, item.get(field), bound)
            if problem:
                problems.append(f"{where}: {problem}")
        for field in ("start", "end"):
            if not valid_date(item.get(field)):
                problems.append(f"{where}: {field} {item.get(field)!r} is not a date")
        _add(problems, order_problem("start", item.get("start"), "end", item.get("end")), where)
    for number, item in enumerate(lists["milestones"], start=1):
        where = f"milestone {number}"
        if not isinstance(item, dict) or not item.get("title"):
            problems.append(f"{where} needs a title")
            continue
        _add(problems, text_problem("title", item["title"], TITLE_CHARS), where)
        if item.get("status") not in MILESTONE_STATUSES:
            problems.append(
                f"{where}: status {item.get('status')!r} is not one of "
                f"{', '.join(MILESTONE_STATUSES)}"
            )
        for field in ("planned", "actual"):
            if not valid_date(item.get(field)):
                problems.append(f"{where}: {field} {item.get(field)!r} is not a date")
        unknown = set(item) - set(MILESTONE_FIELDS)
        if unknown:
            problems.append(f"{where}: unknown fields {sorted(unknown)}")
    return problems


def validate_records(records: list) -> None:
    """Raise RecordError listing every problem of every record (and duplicate ids)."""
    problems = []
    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        label = record.get("id") if isinstance(record, dict) else None
        for problem in record_problems(record):
            problems.append(f"record {number} ({label}): {problem}")
        if isinstance(label, str):
            if label in seen:
                problems.append(
                    f"record {number}: duplicate id {label!r} (also record {seen[label]})"
                )
            seen.setdefault(label, number)
    if problems:
        raise RecordError(problems)
