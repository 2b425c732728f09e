"""SQLAlchemy 2 models of the registry (the Alembic migrations create the same schema)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

KINDS = (
    "agreement",
    "memorandum",
    "framework",
    "offtake",
    "price_floor",
    "stockpile",
    "plurilateral",
    "forum",
    "investment_fund",
)
STATUSES = ("announced", "negotiating", "signed", "in_force", "expired", "superseded")
MILESTONE_STATUSES = ("planned", "done", "slipped", "cancelled")


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""


class Agreement(Base):
    """An agreement, memorandum, offtake, price floor, stockpile programme or forum.

    Dates are ISO text of the precision the source gives (YYYY, YYYY-MM or YYYY-MM-DD).
    `version` counts writes; archived agreements are hidden, never deleted.
    """

    __tablename__ = "agreement"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    signed: Mapped[str | None] = mapped_column(String(10))
    effective: Mapped[str | None] = mapped_column(String(10))
    expiry: Mapped[str | None] = mapped_column(String(10))
    source_url: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    minerals: Mapped[str] = mapped_column(Text, default="")  # '|'-joined commodity ids
    sources: Mapped[str] = mapped_column(Text, default="", server_default="")  # one per line
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    parties: Mapped[list[Party]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="Party.position"
    )
    commitments: Mapped[list[Commitment]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="Commitment.position"
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="Milestone.position"
    )


class Party(Base):
    """A party to an agreement (ISO3, 'EU' or 'company:Name') and its lead agency."""

    __tablename__ = "party"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    party: Mapped[str] = mapped_column(String(120))
    lead_agency: Mapped[str | None] = mapped_column(String(300))
    agreement: Mapped[Agreement] = relationship(back_populates="parties")


class Commitment(Base):
    """A committed flow: mineral, supplier → recipient, tonnes a year, price or floor, period."""

    __tablename__ = "commitment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    mineral: Mapped[str] = mapped_column(String(60))
    supplier: Mapped[str | None] = mapped_column(String(120))
    recipient: Mapped[str | None] = mapped_column(String(120))
    tonnes_per_year: Mapped[float | None] = mapped_column(Float)
    price_usd_per_t: Mapped[float | None] = mapped_column(Float)
    floor_usd_per_t: Mapped[float | None] = mapped_column(Float)
    start: Mapped[str | None] = mapped_column(String(10))
    end: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    agreement: Mapped[Agreement] = relationship(back_populates="commitments")


class Milestone(Base):
    """A milestone or deadline: planned and actual dates and a status."""

    __tablename__ = "milestone"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    planned: Mapped[str | None] = mapped_column(String(10))
    actual: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    agreement: Mapped[Agreement] = relationship(back_populates="milestones")


class AuditEntry(Base):
    """One write: who, when, what, the record before and after (JSON text)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(20))
    agreement_id: Mapped[str] = mapped_column(String(80), index=True)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token for the web API's write endpoints; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
