"""Alembic environment: always run from ``tlsward.storage`` with a live connection in
``config.attributes["connection"]`` (no alembic.ini, no logging setup)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tlsward.storage.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("tlsward migrations run through tlsward.storage.open_store, with a connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
