"""Alembic environment: runs on the connection critmin hands over (no ini file)."""

from alembic import context

from critmin.registry.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
