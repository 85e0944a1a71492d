"""Ring 3: the inventory database (SQLAlchemy 2 + Alembic; SQLite by default, PostgreSQL by URL).

Imports only ``tlsward.model``; callers get and give ``tlsward.model.inventory`` records."""

from __future__ import annotations

from tlsward.storage.store import Store, default_url, open_store, parse_url

__all__ = ["Store", "default_url", "open_store", "parse_url"]
