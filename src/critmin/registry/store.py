"""The registry store: SQLite (WAL, foreign keys) by default, PostgreSQL by CRITMIN_DB_URL.

Every write is one transaction that changes the agreement and appends its audit entry, so
the two never disagree; nothing is deleted (archive / restore).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import platformdirs
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from critmin.errors import DataError, InputError, NotFoundError
from critmin.registry.models import Agreement, AuditEntry, Commitment, Milestone, Party
from critmin.registry.records import (
    COMMITMENT_FIELDS,
    MILESTONE_FIELDS,
    RecordError,
    actor_problem,
    canonical_record,
    validate_records,
)

DB_URL_ENV = "CRITMIN_DB_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
SEED_FILE = Path(__file__).parent / "seed" / "agreements.json"


def default_url() -> str:
    """$CRITMIN_DB_URL, else a SQLite file in the user's data folder."""
    url = os.environ.get(DB_URL_ENV)
    if url:
        return url
    folder = Path(platformdirs.user_data_dir("critmin", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'registry.sqlite'}"


def shown_url(url: str) -> str:
    """`url` as it may be printed: the password replaced by '***'."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<a database URL that cannot be read>"


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            # Take the write lock up front: no deadlock between readers upgrading to writers.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        # SQLAlchemy's own message quotes the whole URL, password included.
        detail = "not a database URL" if isinstance(exc, ArgumentError) else str(exc)
        raise InputError(f"cannot use database URL {shown_url(url)!r}: {detail}") from exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_record(agreement: Agreement) -> dict:
    """The exchange-format dict of an agreement."""
    return {
        "id": agreement.id,
        "title": agreement.title,
        "kind": agreement.kind,
        "status": agreement.status,
        "signed": agreement.signed,
        "effective": agreement.effective,
        "expiry": agreement.expiry,
        "parties": [{"party": p.party, "lead_agency": p.lead_agency} for p in agreement.parties],
        "minerals": [m for m in agreement.minerals.split("|") if m],
        "commitments": [
            {f: getattr(c, f) for f in COMMITMENT_FIELDS} for c in agreement.commitments
        ],
        "milestones": [{f: getattr(m, f) for f in MILESTONE_FIELDS} for m in agreement.milestones],
        "source_url": agreement.source_url,
        "sources": [s for s in (agreement.sources or "").split("\n") if s],
        "notes": agreement.notes,
        "archived": agreement.archived,
        "version": agreement.version,
    }


def _apply(agreement: Agreement, record: dict) -> None:
    for field in (
        "title",
        "kind",
        "status",
        "signed",
        "effective",
        "expiry",
        "source_url",
        "notes",
    ):
        setattr(agreement, field, record.get(field))
    agreement.minerals = "|".join(record.get("minerals") or [])
    agreement.sources = "\n".join(record.get("sources") or [])
    agreement.parties = [
        Party(
            position=i,
            party=p["party"] if isinstance(p, dict) else p,
            lead_agency=p.get("lead_agency") if isinstance(p, dict) else None,
        )
        for i, p in enumerate(record.get("parties") or [])
    ]
    agreement.commitments = [
        Commitment(position=i, **{f: c.get(f) for f in COMMITMENT_FIELDS})
        for i, c in enumerate(record.get("commitments") or [])
    ]
    agreement.milestones = [
        Milestone(position=i, **{f: m.get(f) for f in MILESTONE_FIELDS})
        for i, m in enumerate(record.get("milestones") or [])
    ]


def _check_actor(actor: object) -> None:
    if problem := actor_problem(actor):
        raise InputError(f"{problem} (at most 120 printable characters, e.g. a user name)")


class Registry:
    """Agreements in a SQL database; every write is audited, nothing is deleted."""

    def __init__(self, url: str | None = None, seed: bool = True) -> None:
        self.url = url or default_url()
        self.engine = _engine(self.url)
        try:
            self._migrate()
            # Seeded while nothing was ever written (nothing is deleted, so no audit entry
            # means never written): a first start killed between the migration and the seed
            # seeds on the next start instead of leaving an empty registry for good.
            unwritten = self.audit_count() == 0
        except SQLAlchemyError as exc:
            raise DataError(
                f"cannot open the registry at {shown_url(self.url)}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        if unwritten and seed and SEED_FILE.is_file():
            try:
                self.import_records(json.loads(SEED_FILE.read_text("utf-8"))["agreements"], "seed")
            except RecordError as exc:
                # Another process seeding the same new registry at the same time got there first.
                if not all("already exists" in problem for problem in exc.problems):
                    raise

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _load(self, session: Session, ident: str, lock: bool = False) -> Agreement:
        statement = (
            select(Agreement)
            .where(Agreement.id == ident)
            .options(
                selectinload(Agreement.parties),
                selectinload(Agreement.commitments),
                selectinload(Agreement.milestones),
            )
        )
        if lock and not self.url.startswith("sqlite"):
            statement = statement.with_for_update()
        found = session.scalars(statement).first()
        if found is None:
            raise NotFoundError(f"no agreement {ident!r}; see 'critmin agreements list'")
        return found

    def _audit(
        self,
        session: Session,
        actor: str,
        action: str,
        ident: str,
        before: dict | None,
        after: dict | None,
    ) -> None:
        session.add(
            AuditEntry(
                at=_now(),
                actor=actor,
                action=action,
                agreement_id=ident,
                before=None if before is None else json.dumps(before, sort_keys=True),
                after=None if after is None else json.dumps(after, sort_keys=True),
            )
        )

    def add(self, record: dict, actor: str) -> dict:
        """Insert a new agreement (validated); its id must be new."""
        return self.import_records([record], actor)[0]

    def import_records(self, records: list, actor: str, replace: bool = False) -> list[dict]:
        """Insert (or with `replace`, overwrite) many records in one transaction.

        Every record is validated first; any problem, including an id that exists when
        `replace` is off, aborts the whole import with every problem listed.
        """
        _check_actor(actor)
        if isinstance(records, list):
            records = [canonical_record(r) for r in records]
        validate_records(records)
        with self._session() as session, session.begin():
            existing = set(
                session.scalars(
                    select(Agreement.id).where(Agreement.id.in_([r["id"] for r in records]))
                )
            )
            if existing and not replace:
                raise RecordError(
                    [f"id {i!r} already exists (use update or --replace)" for i in sorted(existing)]
                )
            written = []
            for record in records:
                if record["id"] in existing:
                    agreement = self._load(session, record["id"], lock=True)
                    before = to_record(agreement)
                    _apply(agreement, record)
                    agreement.version += 1
                    action = "replace"
                else:
                    agreement, before, action = Agreement(id=record["id"], version=1), None, "add"
                    _apply(agreement, record)
                    agreement.archived = False
                    session.add(agreement)
                if "archived" in record:  # an exported archived record comes back archived
                    agreement.archived = bool(record["archived"])
                agreement.updated_at = _now()
                session.flush()
                after = to_record(agreement)
                self._audit(session, actor, action, agreement.id, before, after)
                written.append(after)
        return written

    def update(self, ident: str, changes: dict, actor: str) -> dict:
        """Change fields of an agreement (validated as a whole); one audit entry."""
        if not changes:
            raise InputError("nothing to update")
        if "id" in changes and changes["id"] != ident:
            raise InputError("an agreement's id cannot change")
        _check_actor(actor)
        with self._session() as session, session.begin():
            agreement = self._load(session, ident, lock=True)
            before = to_record(agreement)
            merged = {k: v for k, v in before.items() if k not in ("archived", "version")}
            merged.update(changes)
            merged = canonical_record(merged)
            validate_records([merged])
            _apply(agreement, merged)
            agreement.version += 1
            agreement.updated_at = _now()
            session.flush()
            after = to_record(agreement)
            self._audit(session, actor, "update", ident, before, after)
        return after

    def _set_archived(self, ident: str, archived: bool, actor: str) -> dict:
        _check_actor(actor)
        with self._session() as session, session.begin():
            agreement = self._load(session, ident, lock=True)
            if agreement.archived == archived:
                raise InputError(f"{ident} is {'already' if archived else 'not'} archived")
            before = to_record(agreement)
            agreement.archived = archived
            agreement.version += 1
            agreement.updated_at = _now()
            session.flush()
            after = to_record(agreement)
            self._audit(session, actor, "archive" if archived else "restore", ident, before, after)
        return after

    def archive(self, ident: str, actor: str) -> dict:
        """Hide an agreement from lists and coverage (kept, with its history)."""
        return self._set_archived(ident, True, actor)

    def restore(self, ident: str, actor: str) -> dict:
        """Bring an archived agreement back."""
        return self._set_archived(ident, False, actor)

    def get(self, ident: str) -> dict:
        """One agreement, archived or not."""
        with self._session() as session:
            return to_record(self._load(session, ident))

    def records(self, include_archived: bool = False) -> list[dict]:
        """Every agreement (by id), archived ones only if asked."""
        with self._session() as session:
            statement = (
                select(Agreement)
                .options(
                    selectinload(Agreement.parties),
                    selectinload(Agreement.commitments),
                    selectinload(Agreement.milestones),
                )
                .order_by(Agreement.id)
            )
            if not include_archived:
                statement = statement.where(Agreement.archived.is_(False))
            return [to_record(a) for a in session.scalars(statement)]

    def history(self, ident: str) -> list[dict]:
        """The audit entries of an agreement, oldest first."""
        with self._session() as session:
            entries = session.scalars(
                select(AuditEntry).where(AuditEntry.agreement_id == ident).order_by(AuditEntry.id)
            ).all()
            if not entries:
                self._load(session, ident)  # unknown id → clear error
            return [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "before": None if e.before is None else json.loads(e.before),
                    "after": None if e.after is None else json.loads(e.after),
                }
                for e in entries
            ]

    def audit_count(self) -> int:
        """Number of audit entries (one per acknowledged write)."""
        with self._session() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0
