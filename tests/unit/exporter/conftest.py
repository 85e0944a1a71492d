"""The storage fixtures (every test that takes ``store`` runs on SQLite and on PostgreSQL), re-exported."""

from __future__ import annotations

from tests.unit.storage.conftest import db_url, pg_database_factory, pg_url, store

__all__ = ["db_url", "pg_database_factory", "pg_url", "store"]
