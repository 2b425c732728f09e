"""Initial registry schema: agreement, party, commitment, milestone, audit_log.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreement",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("signed", sa.String(10)),
        sa.Column("effective", sa.String(10)),
        sa.Column("expiry", sa.String(10)),
        sa.Column("source_url", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("minerals", sa.Text, nullable=False, server_default=""),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for name, columns in (
        (
            "party",
            [
                sa.Column("party", sa.String(120), nullable=False),
                sa.Column("lead_agency", sa.String(300)),
            ],
        ),
        (
            "commitment",
            [
                sa.Column("mineral", sa.String(60), nullable=False),
                sa.Column("supplier", sa.String(120)),
                sa.Column("recipient", sa.String(120)),
                sa.Column("tonnes_per_year", sa.Float),
                sa.Column("price_usd_per_t", sa.Float),
                sa.Column("floor_usd_per_t", sa.Float),
                sa.Column("start", sa.String(10)),
                sa.Column("end", sa.String(10)),
                sa.Column("note", sa.Text),
            ],
        ),
        (
            "milestone",
            [
                sa.Column("title", sa.String(300), nullable=False),
                sa.Column("planned", sa.String(10)),
                sa.Column("actual", sa.String(10)),
                sa.Column("status", sa.String(20), nullable=False),
            ],
        ),
    ):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "agreement_id",
                sa.String(80),
                sa.ForeignKey("agreement.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("position", sa.Integer, nullable=False),
            *columns,
        )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("agreement_id", sa.String(80), nullable=False, index=True),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )


def downgrade() -> None:
    for name in ("audit_log", "milestone", "commitment", "party", "agreement"):
        op.drop_table(name)
