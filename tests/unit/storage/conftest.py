"""Every storage test runs against SQLite (a temporary file) and PostgreSQL (``$TLSWARD_TEST_PG_ADMIN``, by default
127.0.0.1:5432 with trust auth as user postgres; ``scripts/with-postgres.sh``, which ``make test`` runs pytest under,
starts a throwaway cluster when none answers). The session creates uniquely named databases and drops them at the
end. No PostgreSQL is a failure, never a skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tlsward.storage import Store, open_store

PG_ADMIN = os.environ.get("TLSWARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = ("observation", "sighting", "certificate", "endpoint", "endpoint_file", "file_problem", "alert", "silence",
          "api_token", "web_session", "audit_log", "truststore_root", "truststore", "truststore_host",
          "clientlog_mix", "clientlog_client", "clientlog_malformed", "clientlog_checkpoint",
          "probe_worker", "probe_zone", "scheduler_lease", "certificate_renewal",
          "ca_certificate", "ca_authority",
          "acme_challenge", "acme_authorization", "acme_order", "acme_certificate", "acme_eab_key", "acme_account")


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} (run the tests with `make test`, which starts one): "
                    f"{str(exc).strip().splitlines()[0]}")


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[object]:
    """Creates uniquely named databases on demand; drops every one of them when the session ends."""
    created: list[str] = []

    def create() -> str:
        name = f"tlsward_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)

    yield create
    if created:
        with _pg_admin() as admin:
            for name in created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_database_factory: object) -> str:
    assert callable(pg_database_factory)
    url: str = pg_database_factory()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of each backend; PostgreSQL's is shared by the session and emptied per test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inventory.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as opened:
        if opened.engine.dialect.name == "postgresql":
            with opened.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        yield opened


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> str:
    """A brand-new, empty database of the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'empty.db'}"
    factory = request.getfixturevalue("pg_database_factory")
    url: str = factory()
    return url
