"""Migrations: an empty database goes to head on open, a second open is a no-op, and the migrations
produce exactly the schema the ORM classes describe (what ``alembic check`` verifies)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from tlsward.storage import open_store
from tlsward.storage.store import MIGRATIONS
from tlsward.storage.tables import Base


def head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_empty_database_is_migrated_to_head_on_open(empty_db_url: str) -> None:
    with open_store(empty_db_url) as store, store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head()
        assert set(inspect(connection).get_table_names()) >= {"endpoint", "certificate", "sighting",
                                                              "observation", "alembic_version"}
    with open_store(empty_db_url) as store, store.engine.connect() as connection:   # again: nothing to do
        assert MigrationContext.configure(connection).get_current_revision() == head()


def test_migrations_match_the_orm_metadata(empty_db_url: str) -> None:
    open_store(empty_db_url).close()
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    open_store(empty_db_url).close()
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    with open_store(empty_db_url) as store, store.engine.connect() as connection:
        assert "observation" in inspect(connection).get_table_names()
