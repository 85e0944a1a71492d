"""Migrations: an empty database goes to head on open, a second open is a no-op, and the migrations
produce exactly the schema the ORM classes describe (what ``alembic check`` verifies)."""

from __future__ import annotations

import datetime as dt

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from tlsward.storage import open_store
from tlsward.storage.store import MIGRATIONS
from tlsward.storage.tables import Base

T0 = dt.datetime(2026, 1, 2, 3, 4, 5)   # naive: 0001 stored SQLite times as naive UTC


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


def test_upgrade_from_the_previous_schema_keeps_every_row(empty_db_url: str) -> None:
    """A database left at 0001 by an older tlsward, with data in it, is upgraded on open: nothing is lost and
    the retention columns are filled from what 0001 stored (one sample each, successes from success)."""
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            assert MigrationContext.configure(connection).get_current_revision() == "0001"
            connection.execute(text(
                "INSERT INTO endpoint (id, target, host, port, scheme, sni, owner, team, environment, tags, "
                "probe_interval_s, enabled, created_at, updated_at) VALUES (1, 'old.test:443', 'old.test', 443, "
                "'tls', 'old.test', 'ana', 'web', 'prod', '[\"pci\"]', 300, true, :t, :t)"), {"t": T0})
            for i, success in enumerate((True, False, True), start=1):
                connection.execute(text(
                    "INSERT INTO observation (id, endpoint_id, observed_at, success, failure_kind, version, cipher, "
                    "handshake_ms, chain, finding_ids, worst_severity, probe_id) VALUES (:id, 1, :t, :ok, :kind, "
                    "'TLSv1.3', 'TLS_AES_128_GCM_SHA256', 12.5, '[]', '[]', NULL, :probe)"),
                    {"id": i, "t": T0 + dt.timedelta(minutes=i), "ok": success,
                     "kind": None if success else "refused", "probe": f"p{i}"})
    finally:
        engine.dispose()
    with open_store(empty_db_url) as store:
        endpoint = store.get_endpoint("old.test:443")
        assert endpoint is not None and (endpoint.owner, endpoint.tags, endpoint.connect) == ("ana", ("pci",), None)
        history = store.observations("old.test:443")
        assert [(o.probe_id, o.success, o.samples, o.successes, o.resolution) for o in history] == [
            ("p3", True, 1, 1, "raw"), ("p2", False, 1, 0, "raw"), ("p1", True, 1, 1, "raw")]
        with store.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head()


def test_head_revision_constant_matches_the_migrations() -> None:
    """open_store skips Alembic when the database is at HEAD_REVISION: it must be the real head."""
    from tlsward.storage.store import HEAD_REVISION

    assert head() == HEAD_REVISION
