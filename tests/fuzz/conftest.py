"""The registry fuzz tests run on SQLite and on the PostgreSQL server `make test` starts
(the same fixture as tests/registry: PostgreSQL is where column lengths and NUL bytes bite)."""

from tests.registry.conftest import db_url  # noqa: F401  (a fixture, re-exported)
