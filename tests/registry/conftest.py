"""Registry tests run on SQLite and on the PostgreSQL server `make test` starts."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

PG_ENV = "CRITMIN_TEST_PG_URL"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty registry database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: make test starts PostgreSQL for these tests")
        pytest.skip(f"{PG_ENV} not set (make test starts a PostgreSQL server)")
    _reset_postgres(url)
    return url
