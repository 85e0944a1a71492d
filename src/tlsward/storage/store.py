"""The inventory repository: ``open_store(url)`` gives a :class:`Store` whose methods take and return
``tlsward.model.inventory`` records; rows never leave this module.

SQLite (the default, a file) runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing; PostgreSQL is used through psycopg 3.
The schema is brought to the newest Alembic revision each time a store is opened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Engine,
    Text,
    case,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy import inspect as sqlalchemy_inspect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tlsward.model.certificate import CertificateFacts
from tlsward.model.discovery import FileScan
from tlsward.model.distributed import DEFAULT_ZONE
from tlsward.model.errors import StorageError, UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import (
    IMPORTED_FIELDS,
    CertificateListing,
    CertificateRecord,
    EndpointChange,
    EndpointFileRecord,
    EndpointRecord,
    EndpointSummary,
    ObservationRecord,
    PruneReport,
    RetentionPolicy,
)
from tlsward.model.monitor import ChainCert, EndpointWatch
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.storage.tables import Certificate, Endpoint, EndpointFile, FileProblem, Observation, Sighting

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
DEEP_PROBE_SUFFIX = ":deep"          # the monitor's probe ids of deep scans end with this
IMPORT_CHUNK = 1000                 # rows per IN (...) lookup and executemany; SQLite allows 32,766 parameters
_PG_MIGRATION_LOCK = 0x746C7377   # "tlsw": one migrator at a time on PostgreSQL


def default_url() -> str:
    """``$TLSWARD_DB`` (a URL, or a path to an SQLite file), else ``$XDG_DATA_HOME/tlsward/inventory.db``,
    else ``~/.local/share/tlsward/inventory.db``."""
    if env := os.environ.get("TLSWARD_DB"):
        return env
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'tlsward' / 'inventory.db'}"


def parse_url(raw: str | None) -> URL:
    """A SQLAlchemy URL from ``--db``/``$TLSWARD_DB``; a bare path means an SQLite file. Raises UsageError."""
    text_ = raw if raw is not None else default_url()
    if "://" not in text_:
        text_ = f"sqlite:///{Path(text_).expanduser()}"
    try:
        url = make_url(text_)
    except ArgumentError:
        raise UsageError(f"--db {text_!r} is not a database URL (sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST/DB)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(f"--db {url.render_as_string(hide_password=True)!r}: only sqlite:/// and "
                         "postgresql+psycopg:// databases are supported")
    if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
        url = url.set(drivername="postgresql+psycopg")
    return url


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None   # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # "database is locked" without waiting, which is exactly what concurrent writers must not see.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried: on a brand-new file two processes opening it at once race to switch
    the journal, and SQLite answers "database is locked" at once there instead of calling the busy handler."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


HEAD_REVISION = "0012"   # the newest migration; a test checks it against migrations/versions


def current_revision(connection: Connection) -> str | None:
    """The schema revision stored in the database; None for an empty one."""
    if not sqlalchemy_inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest revision, inside the caller's transaction. Alembic (~0.3 s to import)
    is only loaded when there is something to do."""
    if current_revision(connection) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class Store:
    """The inventory. Use as a context manager (``with open_store(url) as store:``) or call ``close()``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"{self.url}: {_first_line(exc)}") from exc

    def _insert(self, table: Any) -> Any:
        """An INSERT that knows ON CONFLICT, for this dialect."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql  # only where used: ~25 ms of imports

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    # -- endpoints ---------------------------------------------------------------------------------

    def upsert_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Insert, or update every field but ``created_at``, keyed by ``record.target``."""
        with self._transaction() as session:
            row = self._upsert_endpoint(session, record, _now())
            return _endpoint_record(row)

    def _upsert_endpoint(self, session: Session, record: EndpointRecord, now: dt.datetime) -> Endpoint:
        values = _endpoint_values(record, now)
        statement = self._insert(Endpoint).values(created_at=now, **values)
        statement = statement.on_conflict_do_update(index_elements=["target"], set_=values)
        session.execute(statement)
        return session.scalars(select(Endpoint).where(Endpoint.target == record.target)
                               .execution_options(populate_existing=True)).one()

    def import_endpoints(self, records: Sequence[EndpointRecord], *, dry_run: bool = False) -> list[EndpointChange]:
        """Upsert a batch in one transaction (none with ``dry_run``); what each record changes, in order.
        ``records`` must have distinct targets. Written in chunks with executemany: 100,000 rows in seconds."""
        now = _now()
        changes: list[EndpointChange] = []
        with self._transaction() as session:
            for start in range(0, len(records), IMPORT_CHUNK):
                chunk = records[start:start + IMPORT_CHUNK]
                current = {row.target: _endpoint_record(row) for row in session.scalars(
                    select(Endpoint).where(Endpoint.target.in_([record.target for record in chunk])))}
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for record in chunk:
                    before = current.get(record.target)
                    if before is None:
                        changes.append(EndpointChange(record.target, "added"))
                        inserts.append({**_endpoint_values(record, now), "zone": record.zone or DEFAULT_ZONE,
                                        "created_at": now})
                        continue
                    fields = tuple(name for name in IMPORTED_FIELDS if getattr(before, name) != getattr(record, name))
                    if record.zone is not None and record.zone != before.zone:   # None: the file says nothing
                        fields = (*fields, "zone")
                    changes.append(EndpointChange(record.target, "updated" if fields else "unchanged", fields))
                    if fields:
                        assert before.id is not None
                        updates.append({"id": before.id, **_endpoint_values(record, now),
                                        "zone": record.zone or before.zone})
                if dry_run:
                    continue
                if inserts:
                    session.execute(insert(Endpoint), inserts)
                if updates:
                    session.execute(update(Endpoint), updates)
        return changes

    def ensure_endpoints(self, records: Sequence[EndpointRecord]) -> list[EndpointChange]:
        """Add the records whose targets are not in the inventory; leave known endpoints exactly as they are
        (discovery must not overwrite what people entered)."""
        now = _now()
        with self._transaction() as session:
            targets = [record.target for record in records]
            known = set(session.scalars(select(Endpoint.target).where(Endpoint.target.in_(targets)))) \
                if targets else set()
            changes = []
            for record in records:
                if record.target in known:
                    changes.append(EndpointChange(record.target, "unchanged"))
                    continue
                self._upsert_endpoint(session, record, now)
                known.add(record.target)
                changes.append(EndpointChange(record.target, "added"))
            return changes

    def get_endpoint(self, target: str) -> EndpointRecord | None:
        with self._transaction() as session:
            row = session.scalars(select(Endpoint).where(Endpoint.target == target)).one_or_none()
            return _endpoint_record(row) if row is not None else None

    def remove_endpoint(self, target: str) -> bool:
        """Delete the endpoint, its observations and sightings; certificates stay. False when absent."""
        with self._transaction() as session:
            row = session.scalars(select(Endpoint).where(Endpoint.target == target)).one_or_none()
            if row is None:
                return False
            session.execute(delete(Observation).where(Observation.endpoint_id == row.id))
            session.execute(delete(Sighting).where(Sighting.endpoint_id == row.id))
            session.delete(row)
            return True

    def list_endpoints(self, *, owner: str | None = None, team: str | None = None, tag: str | None = None,
                       issuer: str | None = None, days_left_max: float | None = None,
                       failing: bool | None = None, now: dt.datetime | None = None) -> list[EndpointRecord]:
        """Endpoints ordered by target, every filter in SQL. ``issuer`` (a case-insensitive substring) and
        ``days_left_max`` are about the leaf of the latest successful observation; ``failing`` about the latest
        observation (never scanned counts as not failing)."""
        query = self._filtered(select(*Endpoint.__table__.c).order_by(Endpoint.target), owner=owner, team=team,
                               tag=tag, issuer=issuer, days_left_max=days_left_max, failing=failing,
                               now=now or _now())
        with self._transaction() as session:
            # Streamed in chunks: at 100,000 endpoints a fully buffered result doubles the peak memory.
            return [_endpoint_record(row) for row in session.execute(query.execution_options(yield_per=2000))]

    def last_observed(self) -> dict[str, dt.datetime]:
        """Each endpoint's newest observation time, by target (endpoints never probed are absent): what the
        monitor needs at start, without loading 100,000 full records."""
        with self._transaction() as session:
            return {row.target: row.observed_at for row in session.execute(
                select(Endpoint.target, Observation.observed_at)
                .join(Observation, Observation.id == Endpoint.last_observation_id))}

    def endpoint_summaries(self, *, owner: str | None = None, team: str | None = None, tag: str | None = None,
                           issuer: str | None = None, days_left_max: float | None = None,
                           failing: bool | None = None, q: str | None = None, with_findings: bool = False,
                           after: str | None = None, offset: int = 0, limit: int | None = None,
                           now: dt.datetime | None = None) -> list[EndpointSummary]:
        """``list_endpoints`` with each endpoint's newest observation and last presented leaf, in one query.

        ``q`` keeps targets containing it; ``with_findings`` endpoints whose newest observation has findings.
        A page is ``limit`` rows after the target ``after`` (keyset: as fast on the last page of 100,000 as on
        the first), skipping ``offset`` rows first."""
        observation, leaf = Observation.__table__, Certificate.__table__.alias("leaf")   # alias: the issuer
        # filter's subquery must correlate to the endpoint, not to this join
        # Only what a list line shows, and the datetime and JSON columns as the driver returns them (parsed
        # below with the C parsers): SQLAlchemy's per-value processors cost more than the query at 100,000 rows.
        endpoint = Endpoint.__table__.c
        query = (select(endpoint.id, endpoint.target, endpoint.host, endpoint.port, endpoint.scheme, endpoint.sni,
                        endpoint.connect, endpoint.owner, endpoint.team, endpoint.environment,
                        _raw(endpoint.tags, "tags"), endpoint.probe_interval_s, endpoint.enabled,
                        endpoint.leaf_sha256, _raw(endpoint.leaf_not_after, "leaf_not_after"),
                        _raw(observation.c.observed_at, "observed_at"), observation.c.success,
                        observation.c.failure_kind, observation.c.version, observation.c.cipher,
                        _raw(observation.c.finding_ids, "finding_ids"), observation.c.worst_severity,
                        leaf.c.subject.label("leaf_subject"), leaf.c.issuer.label("leaf_issuer"))
                 .outerjoin(observation, observation.c.id == Endpoint.last_observation_id)
                 .outerjoin(leaf, leaf.c.sha256 == Endpoint.leaf_sha256).order_by(Endpoint.target))
        query = self._filtered(query, owner=owner, team=team, tag=tag, issuer=issuer, days_left_max=days_left_max,
                               failing=failing, q=q, now=now or _now())
        if with_findings:
            query = query.where(cast(observation.c.finding_ids, Text) != "[]")
        if after is not None:
            query = query.where(Endpoint.target > after)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        severities = {int(s): s for s in Severity}
        summaries = []
        with self._transaction() as session:
            # A Core connection and tuple unpacking: the ORM's row wrapping and attribute lookups by name are
            # most of the cost at this size.
            for (id_, target, host, port, scheme, sni, connect, owner, team, environment, tags, interval, enabled,
                 leaf_sha256, leaf_not_after, observed_at, success, failure_kind, version, cipher, finding_ids,
                 worst, leaf_subject, leaf_issuer) in session.connection().execute(query):
                summaries.append(EndpointSummary(
                    endpoint=EndpointRecord(target=target, host=host, port=port, scheme=scheme, sni=sni,
                                            connect=connect, owner=owner, team=team, environment=environment,
                                            tags=_json_list(tags), probe_interval_s=interval, enabled=bool(enabled),
                                            id=id_),
                    observed_at=_utc(observed_at), success=None if success is None else bool(success),
                    failure_kind=failure_kind, version=version, cipher=cipher, finding_ids=_json_list(finding_ids),
                    worst_severity=severities.get(worst) if worst is not None else None,
                    leaf_sha256=leaf_sha256, leaf_subject=leaf_subject, leaf_issuer=leaf_issuer,
                    leaf_not_after=_utc(leaf_not_after)))
        return summaries

    def count_endpoints(self, *, owner: str | None = None, team: str | None = None, tag: str | None = None,
                        issuer: str | None = None, days_left_max: float | None = None, failing: bool | None = None,
                        q: str | None = None, now: dt.datetime | None = None) -> int:
        """How many endpoints ``endpoint_summaries`` would return with these filters and no page."""
        query = self._filtered(select(func.count()).select_from(Endpoint), owner=owner, team=team, tag=tag,
                               issuer=issuer, days_left_max=days_left_max, failing=failing, q=q, now=now or _now())
        with self._transaction() as session:
            return int(session.execute(query).scalar() or 0)

    def watch_states(self, endpoint_ids: Sequence[int], *, failing_window: int = 3) -> list[EndpointWatch]:
        """What the monitor's alert rules read for these endpoints, in a few set-based queries per chunk: the
        newest observation, the run of failures (up to ``failing_window``), the newest successful chain and
        the leaf of the success before it."""
        window = max(failing_window, 1)
        watches: list[EndpointWatch] = []
        with self._transaction() as session:
            for start in range(0, len(endpoint_ids), IMPORT_CHUNK):
                chunk = list(endpoint_ids[start:start + IMPORT_CHUNK])
                endpoints = {row.id: _endpoint_record(row) for row in session.execute(
                    select(*Endpoint.__table__.c).where(Endpoint.id.in_(chunk)))}
                recent = self._ranked(session, chunk, window, success_only=False)
                successes = self._ranked(session, chunk, 2, success_only=True)
                deep = self._ranked(session, chunk, 1, success_only=True, deep_only=True)
                shas = {sha for rows in successes.values() for row in rows for sha in (row.chain or ())}
                certs: dict[str, ChainCert] = {}
                wanted = sorted(shas)
                for offset in range(0, len(wanted), IMPORT_CHUNK):
                    for cert in session.execute(select(
                            Certificate.sha256, Certificate.subject, Certificate.issuer, Certificate.not_before,
                            Certificate.not_after).where(Certificate.sha256.in_(wanted[offset:offset + IMPORT_CHUNK]))):
                        certs[cert.sha256] = ChainCert(cert.sha256, cert.subject, cert.issuer, cert.not_before,
                                                       cert.not_after)
                for endpoint_id in chunk:
                    record = endpoints.get(endpoint_id)
                    if record is None:
                        continue
                    rows = recent.get(endpoint_id, [])
                    newest = rows[0] if rows else None
                    failures = 0
                    for row in rows:
                        if row.success:
                            break
                        failures += 1
                    good = successes.get(endpoint_id, [])
                    chain = tuple(certs[sha] for sha in (good[0].chain or ()) if sha in certs) if good else ()
                    previous = None
                    if len(good) > 1 and good[1].chain and good[0].chain and good[1].chain[0] != good[0].chain[0]:
                        previous = certs.get(good[1].chain[0])
                    watches.append(EndpointWatch(
                        endpoint=record, observed_at=newest.observed_at if newest else None,
                        success=newest.success if newest else None,
                        failure_kind=newest.failure_kind if newest else None,
                        finding_ids=tuple(newest.finding_ids or ()) if newest else (),
                        deep_finding_ids=tuple(deep[endpoint_id][0].finding_ids or ()) if endpoint_id in deep else (),
                        consecutive_failures=failures, chain=chain,
                        chain_seen_at=good[0].observed_at if good else None, previous_leaf=previous,
                        previous_leaf_until=good[0].observed_at if previous is not None else None))
        return watches

    @staticmethod
    def _ranked(session: Session, endpoint_ids: list[int], depth: int, *, success_only: bool,
                deep_only: bool = False) -> dict[int, list[Any]]:
        """The newest ``depth`` observations (or successes, or deep scans) of each endpoint, newest first."""
        ranked = select(Observation.id.label("oid"), func.row_number().over(
            partition_by=Observation.endpoint_id,
            order_by=(Observation.observed_at.desc(), Observation.id.desc())).label("rank")).where(
            Observation.endpoint_id.in_(endpoint_ids))
        if success_only:
            ranked = ranked.where(Observation.success.is_(True))
        if deep_only:
            ranked = ranked.where(Observation.probe_id.endswith(DEEP_PROBE_SUFFIX, autoescape=True))
        ranked_sq = ranked.subquery()
        rows = session.execute(
            select(Observation.endpoint_id, Observation.observed_at, Observation.success, Observation.failure_kind,
                   Observation.finding_ids, Observation.chain, ranked_sq.c.rank)
            .join(ranked_sq, ranked_sq.c.oid == Observation.id).where(ranked_sq.c.rank <= depth)
            .order_by(Observation.endpoint_id, ranked_sq.c.rank))
        grouped: dict[int, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row.endpoint_id, []).append(row)
        return grouped

    def _filtered(self, query: Any, *, owner: str | None, team: str | None, tag: str | None, issuer: str | None,
                  days_left_max: float | None, failing: bool | None, now: dt.datetime, q: str | None = None) -> Any:
        """The inventory filters, all in SQL, on the endpoint's current-state columns."""
        if q:
            # Targets are canonical (lowercase), so a lowercased needle matches alike on SQLite's
            # case-insensitive LIKE and PostgreSQL's case-sensitive one.
            query = query.where(Endpoint.target.contains(q.lower(), autoescape=True))
        if owner is not None:
            query = query.where(Endpoint.owner == owner)
        if team is not None:
            query = query.where(Endpoint.team == team)
        if tag is not None:
            elements = (func.json_each(Endpoint.tags) if self.engine.dialect.name == "sqlite"
                        else func.json_array_elements_text(Endpoint.tags)).table_valued("value")
            query = query.where(exists(select(1).select_from(elements).where(elements.c.value == tag)))
        if failing is not None:
            query = query.where(Endpoint.last_success.is_(False) if failing
                                else or_(Endpoint.last_success.is_(True), Endpoint.last_success.is_(None)))
        if days_left_max is not None:
            query = query.where(Endpoint.leaf_not_after <= _shift(now, days_left_max))
        if issuer is not None:
            query = query.where(exists(select(1).select_from(Certificate).where(
                Certificate.sha256 == Endpoint.leaf_sha256,
                func.lower(Certificate.issuer).contains(issuer.lower(), autoescape=True))))
        return query


    # -- discovery: files on disk and server configs -------------------------------------------------

    def record_files(self, scan: FileScan, roots: Sequence[str], *, now: dt.datetime | None = None) -> int:
        """Store every certificate found in files (once per fingerprint) with a sighting per file and index,
        and make the stored file problems under ``roots`` exactly this walk's. Returns new certificates."""
        now = now or _now()
        with self._transaction() as session:
            # Set-based: 100,000 files are a few executemany statements, not 200,000 round trips.
            by_fingerprint = {found.facts.sha256: found for found in scan.certificates}
            fingerprints = list(by_fingerprint)
            known: set[str] = set()
            for start in range(0, len(fingerprints), IMPORT_CHUNK):
                known.update(session.scalars(select(Certificate.sha256).where(
                    Certificate.sha256.in_(fingerprints[start:start + IMPORT_CHUNK]))))
            new = [_certificate_values(found.facts, found.der) for sha256, found in by_fingerprint.items()
                   if sha256 not in known]
            for start in range(0, len(new), IMPORT_CHUNK):
                session.execute(insert(Certificate), new[start:start + IMPORT_CHUNK])
            added = len(new)
            sightings = list({(found.facts.sha256, f"file:{found.path}#{found.index}"): {
                "certificate_sha256": found.facts.sha256, "file_path": found.path,
                "source": f"file:{found.path}#{found.index}", "position": found.index, "first_seen": now,
                "last_seen": now} for found in scan.certificates}.values())
            statement = self._insert(Sighting)
            upsert = statement.on_conflict_do_update(index_elements=["certificate_sha256", "source"],
                                                     set_={"last_seen": statement.excluded.last_seen})
            for start in range(0, len(sightings), IMPORT_CHUNK):
                session.execute(upsert, sightings[start:start + IMPORT_CHUNK])
            for root in roots:
                prefix = root.rstrip("/") + "/"
                session.execute(delete(FileProblem).where(
                    (FileProblem.path == root) | FileProblem.path.startswith(prefix, autoescape=True)))
            for problem in scan.problems:
                values = {"line": problem.line, "severity": int(problem.finding.severity),
                          "evidence": problem.finding.evidence, "seen_at": now}
                session.execute(self._insert(FileProblem).values(path=problem.path, finding_id=problem.finding.id,
                                                                 **values)
                                .on_conflict_do_update(index_elements=["path", "finding_id"], set_=values))
            return added

    def file_problems(self, *, path_prefix: str | None = None) -> list[tuple[str, int | None, str, Severity, str]]:
        """(path, line, finding id, severity, evidence) of stored file problems, worst first."""
        with self._transaction() as session:
            query = select(FileProblem).order_by(FileProblem.severity.desc(), FileProblem.path)
            if path_prefix is not None:
                query = query.where(FileProblem.path.startswith(path_prefix, autoescape=True))
            return [(row.path, row.line, row.finding_id, Severity(row.severity), row.evidence)
                    for row in session.scalars(query)]

    def certificate_places(self, sha256_prefix: str, *, limit: int = 20) -> list[
            tuple[CertificateRecord, list[tuple[str, int | None, dt.datetime, dt.datetime]]]]:
        """Certificates whose fingerprint starts with the prefix, each with every place it was seen: an
        endpoint target or a file path, the position (chain position or index in the file), first and last
        seen. One certificate, many places."""
        prefix = sha256_prefix.strip().lower().replace(":", "")
        with self._transaction() as session:
            certificates = list(session.scalars(select(Certificate).where(
                Certificate.sha256.startswith(prefix, autoescape=True)).order_by(Certificate.sha256).limit(limit)))
            found = []
            for cert in certificates:
                rows = session.execute(
                    select(Sighting.endpoint_id, Endpoint.target, Sighting.file_path, Sighting.config_path,
                           Sighting.position, Sighting.first_seen, Sighting.last_seen)
                    .outerjoin(Endpoint, Endpoint.id == Sighting.endpoint_id)
                    .where(Sighting.certificate_sha256 == cert.sha256)
                    .order_by(Sighting.last_seen.desc()))
                places = [(target or file_path or config_path or "?", position, first, last)
                          for _, target, file_path, config_path, position, first, last in rows]
                found.append((_certificate_record(cert), places))
            return found

    def certificate_listing(self, *, q: str | None = None, issuer: str | None = None,
                            days_left_max: float | None = None, leaf_only: bool = True, limit: int = 50,
                            offset: int = 0, now: dt.datetime | None = None) -> tuple[list[CertificateListing], int]:
        """Certificates soonest-expiring first, with how many endpoints and files hold each, and the total that
        match. ``q``: a case-insensitive substring of the subject; ``leaf_only``: seen as a leaf or in a file."""
        now = now or _now()
        places = (select(Sighting.certificate_sha256.label("sha"),
                         func.count(func.distinct(Sighting.endpoint_id)).label("endpoints"),
                         func.count(func.distinct(Sighting.file_path)).label("files"),
                         func.max(case((or_(Sighting.position == 0, Sighting.file_path.is_not(None)), 1),
                                       else_=0)).label("leaf"))
                  .group_by(Sighting.certificate_sha256).subquery())
        query = select(Certificate.sha256, Certificate.subject, Certificate.issuer, Certificate.not_after,
                       Certificate.key_type, Certificate.key_bits, func.coalesce(places.c.endpoints, 0),
                       func.coalesce(places.c.files, 0), func.coalesce(places.c.leaf, 0)).outerjoin(
            places, places.c.sha == Certificate.sha256)
        if q:
            query = query.where(func.lower(Certificate.subject).contains(q.lower(), autoescape=True))
        if issuer:
            query = query.where(func.lower(Certificate.issuer).contains(issuer.lower(), autoescape=True))
        if days_left_max is not None:
            query = query.where(Certificate.not_after <= _shift(now, days_left_max))
        if leaf_only:
            query = query.where(places.c.leaf == 1)
        with self._transaction() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(Certificate.not_after, Certificate.sha256)
                                   .limit(limit).offset(offset)).all()
        return [CertificateListing(sha, subject, issuer_, not_after, key_type, key_bits, int(endpoints), int(files),
                                   bool(leaf)) for sha, subject, issuer_, not_after, key_type, key_bits, endpoints,
                files, leaf in rows], int(total)

    def link_endpoint_files(self, record: EndpointRecord, links: Sequence[EndpointFileRecord], *,
                            now: dt.datetime | None = None) -> EndpointRecord:
        """Upsert a config-discovered endpoint (owner/team/tags already stored are kept unless given) and
        replace the files its config says it serves."""
        now = now or _now()
        with self._transaction() as session:
            current = session.scalars(select(Endpoint).where(Endpoint.target == record.target)).one_or_none()
            if current is not None:
                record = EndpointRecord(
                    target=record.target, host=record.host, port=record.port, scheme=record.scheme,
                    sni=record.sni, connect=record.connect, owner=record.owner or current.owner,
                    team=record.team or current.team, environment=record.environment or current.environment,
                    tags=tuple(dict.fromkeys((*(current.tags or ()), *record.tags))),
                    probe_interval_s=current.probe_interval_s, enabled=current.enabled)
            row = self._upsert_endpoint(session, record, now)
            session.execute(delete(EndpointFile).where(EndpointFile.endpoint_id == row.id))
            for link in {link.certificate_path: link for link in links}.values():
                session.add(EndpointFile(endpoint_id=row.id, server=link.server, config_path=link.config_path,
                                         config_line=link.config_line, certificate_path=link.certificate_path,
                                         key_path=link.key_path, seen_at=now))
            return _endpoint_record(row)

    def endpoint_files(self, target: str | None = None) -> list[EndpointFileRecord]:
        """The certificate files server configs link to endpoints (one endpoint's, or all), by target."""
        with self._transaction() as session:
            query = select(EndpointFile, Endpoint.target).join(Endpoint).order_by(Endpoint.target,
                                                                                   EndpointFile.certificate_path)
            if target is not None:
                query = query.where(Endpoint.target == target)
            return [EndpointFileRecord(target=endpoint_target, server=row.server, config_path=row.config_path,
                                       config_line=row.config_line, certificate_path=row.certificate_path,
                                       key_path=row.key_path)
                    for row, endpoint_target in session.execute(query)]

    def endpoint_states(self, records: Sequence[EndpointRecord]) -> list[
            tuple[EndpointRecord, ObservationRecord | None, CertificateRecord | None]]:
        """Each record with its newest observation and the leaf of its newest successful one, read with a few
        set-based queries (``inventory list`` at 100,000 endpoints must stay under a second)."""
        ids = [record.id for record in records if record.id is not None]
        latest: dict[int, Any] = {}
        leaves: dict[int, str] = {}
        certificates: dict[str, CertificateRecord] = {}
        with self._transaction() as session:
            for start in range(0, len(ids), IMPORT_CHUNK):
                chunk = ids[start:start + IMPORT_CHUNK]
                # Plain rows, not ORM objects: building 20,000 instances costs more than the queries.
                for row in session.execute(
                        select(*Observation.__table__.c).join(Endpoint, Observation.id == Endpoint.last_observation_id)
                        .where(Endpoint.id.in_(chunk))):
                    latest[row.endpoint_id] = row
                for row in session.execute(
                        select(Endpoint.id.label("endpoint_id"), *Certificate.__table__.c)
                        .join(Certificate, Certificate.sha256 == Endpoint.leaf_sha256).where(Endpoint.id.in_(chunk))):
                    leaves[row.endpoint_id] = row.sha256
                    certificates[row.sha256] = _certificate_record(row)
        states = []
        for record in records:
            observation = latest.get(record.id) if record.id is not None else None
            leaf = leaves.get(record.id) if record.id is not None else None
            states.append((record, _observation_record(observation, record.target) if observation else None,
                           certificates.get(leaf) if leaf else None))
        return states

    # -- scans and observations --------------------------------------------------------------------

    def record_scan(self, result: ScanResult, *, probe_id: str | None = None) -> ObservationRecord:
        """Upsert the endpoint, store each presented certificate once (by fingerprint), note where it was
        seen, and add one observation: all in one transaction. Writing the same ``probe_id`` again is a
        no-op that returns the observation already stored."""
        target = result.target
        now = result.scanned_at
        with self._transaction() as session:
            if probe_id is not None:
                existing = session.scalars(select(Observation).where(Observation.probe_id == probe_id)).first()
                if existing is not None:
                    return self._observation_record(session, existing)
            current = session.scalars(select(Endpoint).where(Endpoint.target == str(target))).one_or_none()
            endpoint = self._upsert_endpoint(session, _endpoint_for(target, current), _now())
            chain = self._store_chain(session, result, endpoint.id, now)
            session.flush()
            values = _observation_values(result, endpoint.id, probe_id)
            values["chain"] = list(chain)
            statement = self._insert(Observation).values(**values)
            if probe_id is not None:
                statement = statement.on_conflict_do_nothing(index_elements=["probe_id"])
            session.execute(statement)
            self._refresh_state(session, [endpoint.id])
            row = session.scalars(select(Observation).where(Observation.probe_id == probe_id)).one() \
                if probe_id is not None else session.scalars(
                    select(Observation).where(Observation.endpoint_id == endpoint.id)
                    .order_by(Observation.id.desc()).limit(1)).one()
            return self._observation_record(session, row)

    def record_scans(self, batch: Sequence[tuple[ScanResult, str | None]]) -> int:
        """Record many scans (result, probe_id) in one transaction with a handful of set-based statements:
        what the monitor does after every round of probes. Endpoints unknown to the inventory are added
        (known ones are left as they are); a probe_id already stored is skipped. Returns observations written."""
        if not batch:
            return 0
        now = _now()
        written = 0
        with self._transaction() as session:
            for start in range(0, len(batch), IMPORT_CHUNK):
                written += self._record_chunk(session, batch[start:start + IMPORT_CHUNK], now)
        return written

    def _record_chunk(self, session: Session, chunk: Sequence[tuple[ScanResult, str | None]],
                      now: dt.datetime) -> int:
        probe_ids = [probe_id for _, probe_id in chunk if probe_id is not None]
        done = set(session.scalars(select(Observation.probe_id).where(Observation.probe_id.in_(probe_ids)))) \
            if probe_ids else set()
        todo = [(result, probe_id) for result, probe_id in chunk if probe_id is None or probe_id not in done]
        if not todo:
            return 0
        targets = {str(result.target): result.target for result, _ in todo}
        ids: dict[str, int] = {}
        ids.update((row[0], row[1]) for row in session.execute(
            select(Endpoint.target, Endpoint.id).where(Endpoint.target.in_(list(targets)))))
        missing = [{**_endpoint_values(_endpoint_for(target, None), now), "created_at": now}
                   for text_, target in targets.items() if text_ not in ids]
        if missing:
            session.execute(insert(Endpoint), missing)
            ids.update((row[0], row[1]) for row in session.execute(select(Endpoint.target, Endpoint.id).where(
                Endpoint.target.in_([values["target"] for values in missing]))))
        certificates: dict[str, dict[str, Any]] = {}
        sightings: dict[tuple[str, str], dict[str, Any]] = {}
        observations = []
        for result, probe_id in todo:
            endpoint_id = ids[str(result.target)]
            ders = {hashlib.sha256(der).hexdigest(): der
                    for der in (result.session.chain_der if result.session is not None else ())}
            for position, facts in enumerate(result.chain):
                certificates.setdefault(facts.sha256, _certificate_values(facts, ders.get(facts.sha256, b"")))
                source = f"endpoint:{endpoint_id}:{position}"
                sightings[(facts.sha256, source)] = {
                    "certificate_sha256": facts.sha256, "endpoint_id": endpoint_id, "source": source,
                    "position": position, "first_seen": result.scanned_at, "last_seen": result.scanned_at}
            observations.append(_observation_values(result, endpoint_id, probe_id))
        known = set(session.scalars(select(Certificate.sha256).where(Certificate.sha256.in_(list(certificates))))) \
            if certificates else set()
        new_certificates = [values for sha256, values in certificates.items() if sha256 not in known]
        if new_certificates:
            session.execute(insert(Certificate), new_certificates)
        if sightings:
            statement = self._insert(Sighting)
            session.execute(statement.on_conflict_do_update(
                index_elements=["certificate_sha256", "source"], set_={"last_seen": statement.excluded.last_seen}),
                list(sightings.values()))
        session.execute(insert(Observation), observations)
        self._refresh_state(session, sorted({row["endpoint_id"] for row in observations}))
        return len(observations)

    @staticmethod
    def _refresh_state(session: Session, endpoint_ids: Sequence[int] | None) -> None:
        """Recompute the endpoints' current-state columns from their history (all endpoints when None)."""
        def newest(success_only: bool) -> Any:
            query = select(Observation.id).where(Observation.endpoint_id == Endpoint.id)
            if success_only:
                query = query.where(Observation.success.is_(True))
            return (query.order_by(Observation.observed_at.desc(), Observation.id.desc()).limit(1)
                    .correlate(Endpoint).scalar_subquery())

        chunks = [None] if endpoint_ids is None else [endpoint_ids[i:i + IMPORT_CHUNK]
                                                      for i in range(0, len(endpoint_ids), IMPORT_CHUNK)]
        for chunk in chunks:
            where = [] if chunk is None else [Endpoint.id.in_(chunk)]
            session.execute(update(Endpoint).where(*where).values(
                last_observation_id=newest(False), last_success_id=newest(True))
                .execution_options(synchronize_session=False))
            session.execute(update(Endpoint).where(*where).values(
                last_success=select(Observation.success).where(Observation.id == Endpoint.last_observation_id)
                .correlate(Endpoint).scalar_subquery(),
                leaf_sha256=select(Observation.chain[0].as_string())
                .where(Observation.id == Endpoint.last_success_id).correlate(Endpoint).scalar_subquery())
                .execution_options(synchronize_session=False))
            session.execute(update(Endpoint).where(*where).values(
                leaf_not_after=select(Certificate.not_after).where(Certificate.sha256 == Endpoint.leaf_sha256)
                .correlate(Endpoint).scalar_subquery()).execution_options(synchronize_session=False))

    def _store_chain(self, session: Session, result: ScanResult, endpoint_id: int,
                     now: dt.datetime) -> list[str]:
        """Insert new certificates and upsert sightings; the fingerprints as presented, leaf first."""
        ders = result.session.chain_der if result.session is not None else ()
        by_fingerprint = {hashlib.sha256(der).hexdigest(): der for der in ders}
        fingerprints: list[str] = []
        for position, facts in enumerate(result.chain):
            fingerprints.append(facts.sha256)
            statement = self._insert(Certificate).values(**_certificate_values(facts,
                                                         by_fingerprint.get(facts.sha256, b"")))
            session.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
            sighting = self._insert(Sighting).values(
                certificate_sha256=facts.sha256, endpoint_id=endpoint_id, source=f"endpoint:{endpoint_id}:{position}",
                position=position, first_seen=now, last_seen=now)
            session.execute(sighting.on_conflict_do_update(
                index_elements=["certificate_sha256", "source"], set_={"last_seen": now}))
        return fingerprints

    def observations(self, target: str, limit: int = 10) -> list[ObservationRecord]:
        """The endpoint's newest observations first; empty for an unknown target."""
        with self._transaction() as session:
            rows = session.scalars(select(Observation).join(Endpoint).where(Endpoint.target == target)
                                   .order_by(Observation.observed_at.desc(), Observation.id.desc())
                                   .limit(limit)).all()
            return [_observation_record(row, target) for row in rows]

    def count_observations(self) -> int:
        with self._transaction() as session:
            return session.scalar(select(func.count()).select_from(Observation)) or 0

    def certificates(self, target: str) -> list[tuple[int | None, CertificateRecord]]:
        """Certificates of the latest successful observation, in chain order, with their positions;
        when there is none, every certificate ever sighted on the endpoint."""
        with self._transaction() as session:
            endpoint = session.scalars(select(Endpoint).where(Endpoint.target == target)).one_or_none()
            if endpoint is None:
                return []
            latest = self._latest(session, endpoint.id, success_only=True)
            if latest is not None and latest.chain:
                rows = {row.sha256: row for row in session.scalars(
                    select(Certificate).where(Certificate.sha256.in_(latest.chain)))}
                return [(i, _certificate_record(rows[fp])) for i, fp in enumerate(latest.chain) if fp in rows]
            pairs = session.execute(select(Sighting.position, Certificate).join(Certificate)
                                    .where(Sighting.endpoint_id == endpoint.id)
                                    .order_by(Sighting.position)).all()
            return [(position, _certificate_record(cert)) for position, cert in pairs]

    def latest(self, target: str) -> tuple[ObservationRecord | None, CertificateRecord | None]:
        """The newest observation and the leaf of the newest successful one."""
        with self._transaction() as session:
            endpoint = session.scalars(select(Endpoint).where(Endpoint.target == target)).one_or_none()
            if endpoint is None:
                return None, None
            latest = self._latest(session, endpoint.id, success_only=False)
            leaf = self._leaf(session, endpoint.id)
            return (_observation_record(latest, target) if latest else None,
                    _certificate_record(leaf) if leaf else None)

    @staticmethod
    def _latest(session: Session, endpoint_id: int, *, success_only: bool) -> Observation | None:
        query = select(Observation).where(Observation.endpoint_id == endpoint_id)
        if success_only:
            query = query.where(Observation.success.is_(True))
        return session.scalars(query.order_by(Observation.observed_at.desc(), Observation.id.desc())
                               .limit(1)).first()

    def _leaf(self, session: Session, endpoint_id: int) -> Certificate | None:
        latest = self._latest(session, endpoint_id, success_only=True)
        if latest is None or not latest.chain:
            return None
        return session.get(Certificate, latest.chain[0])

    def prune(self, policy: RetentionPolicy, *, now: dt.datetime | None = None,
              dry_run: bool = False) -> PruneReport:
        """Apply the retention policy to observation history (see ``tlsward.storage.retention``)."""
        from tlsward.storage.retention import prune

        return prune(self._transaction, policy, now or _now(), self._refresh_state, dry_run=dry_run)

    def _observation_record(self, session: Session, row: Observation) -> ObservationRecord:
        target = session.scalar(select(Endpoint.target).where(Endpoint.id == row.endpoint_id)) or ""
        return _observation_record(row, target)


def open_store(url: str | None = None) -> Store:
    """Open (and create or migrate) the inventory at ``url`` (see :func:`parse_url`; None: the default).

    Raises UsageError for a malformed URL and StorageError when the database cannot be reached or migrated.
    """
    parsed = parse_url(url)
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = _sqlite_engine(parsed) if parsed.get_backend_name() == "sqlite" else create_engine(
            parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise UsageError(f"--db {shown!r}: {_first_line(exc)}") from None
    except OSError as exc:
        raise StorageError(f"{shown}: {exc}") from None
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            migrate(connection)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError(f"{shown}: {_first_line(exc)}") from None
    return Store(engine)


def _raw(column: Any, name: str) -> Any:
    """The column's value as the driver gives it (no SQLAlchemy result processing)."""
    return type_coerce(column, Text()).label(name)


def _utc(value: Any) -> dt.datetime | None:
    """A stored time: SQLite gives naive-UTC text, PostgreSQL an aware datetime."""
    if value is None:
        return None
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _json_list(value: Any) -> tuple[str, ...]:
    """A stored JSON list: SQLite gives its text, PostgreSQL the decoded list."""
    if value is None or value == "[]":
        return ()
    return tuple(json.loads(value) if isinstance(value, str) else value)


def _shift(now: dt.datetime, days: float) -> dt.datetime:
    """``now`` plus ``days`` (may be negative), clamped to the datetimes Python can represent."""
    try:
        return now + dt.timedelta(days=days)
    except (OverflowError, ValueError):   # huge, or NaN (which excludes nothing, as a comparison would)
        return dt.datetime.max.replace(tzinfo=dt.UTC) if days > 0 else dt.datetime.min.replace(tzinfo=dt.UTC)


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return lines[0] if lines else type(inner).__name__


def _endpoint_for(target: Target, current: Endpoint | None) -> EndpointRecord:
    """The record a scan writes: the target's own fields; inventory metadata kept when already known."""
    if current is None:
        return EndpointRecord(target=str(target), host=target.host, port=target.port, scheme=target.scheme,
                              sni=target.sni, connect=target.connect)
    return EndpointRecord(target=str(target), host=target.host, port=target.port, scheme=target.scheme,
                          sni=target.sni, connect=target.connect or current.connect, owner=current.owner,
                          team=current.team, environment=current.environment,
                          tags=tuple(current.tags or ()), probe_interval_s=current.probe_interval_s,
                          enabled=current.enabled)


def _observation_values(result: ScanResult, endpoint_id: int, probe_id: str | None) -> dict[str, Any]:
    worst = max((f.severity for f in result.findings), default=None)
    session = result.session
    return {"endpoint_id": endpoint_id, "observed_at": result.scanned_at, "success": result.failure is None,
            "failure_kind": str(result.failure.kind) if result.failure is not None else None,
            "version": session.version if session else None, "cipher": session.cipher if session else None,
            "handshake_ms": result.timings.handshake_ms, "chain": [facts.sha256 for facts in result.chain],
            "timings": {name: value for name, value in (("dns_ms", result.timings.dns_ms),
                                                         ("connect_ms", result.timings.connect_ms),
                                                         ("starttls_ms", result.timings.starttls_ms),
                                                         ("handshake_ms", result.timings.handshake_ms))
                        if value is not None},
            "finding_ids": [f.id for f in sorted(result.findings, key=lambda f: -f.severity)],
            "worst_severity": int(worst) if worst is not None else None, "probe_id": probe_id,
            "samples": 1, "successes": int(result.failure is None), "resolution": "raw"}


def _endpoint_values(record: EndpointRecord, now: dt.datetime) -> dict[str, Any]:
    values = {"target": record.target, "host": record.host, "port": record.port, "scheme": record.scheme,
              "sni": record.sni, "connect": record.connect, "owner": record.owner, "team": record.team,
              "environment": record.environment, "tags": list(record.tags),
              "probe_interval_s": record.probe_interval_s, "enabled": record.enabled, "updated_at": now}
    if record.zone is not None:     # None: keep the stored zone (the column's default for a new endpoint)
        values["zone"] = record.zone
    return values


def _certificate_values(facts: CertificateFacts, der: bytes) -> dict[str, Any]:
    return {"sha256": facts.sha256, "subject": facts.subject, "issuer": facts.issuer, "serial": facts.serial,
            "not_before": facts.not_before, "not_after": facts.not_after,
            "sans": [*facts.dns_names, *facts.ip_addresses], "key_type": facts.key_type,
            "key_bits": facts.key_bits, "signature_algorithm": facts.signature_algorithm, "der": der}


def _endpoint_record(row: Endpoint | Any) -> EndpointRecord:
    """From an ORM instance or a plain row with the same columns."""
    return EndpointRecord(target=row.target, host=row.host, port=row.port, scheme=row.scheme, sni=row.sni,
                          connect=row.connect, owner=row.owner, team=row.team, environment=row.environment,
                          tags=tuple(row.tags or ()), probe_interval_s=row.probe_interval_s, enabled=row.enabled,
                          zone=row.zone, id=row.id, created_at=row.created_at, updated_at=row.updated_at)


def _certificate_record(row: Certificate | Any) -> CertificateRecord:
    return CertificateRecord(sha256=row.sha256, subject=row.subject, issuer=row.issuer, serial=row.serial,
                             not_before=row.not_before, not_after=row.not_after, sans=tuple(row.sans or ()),
                             key_type=row.key_type, key_bits=row.key_bits,
                             signature_algorithm=row.signature_algorithm, der=row.der)


def _observation_record(row: Observation | Any, target: str) -> ObservationRecord:
    return ObservationRecord(target=target, observed_at=row.observed_at, success=row.success,
                             failure_kind=row.failure_kind, version=row.version, cipher=row.cipher,
                             handshake_ms=row.handshake_ms, chain=tuple(row.chain or ()),
                             finding_ids=tuple(row.finding_ids or ()),
                             worst_severity=Severity(row.worst_severity) if row.worst_severity is not None else None,
                             probe_id=row.probe_id, id=row.id, samples=row.samples, successes=row.successes,
                             resolution=row.resolution, timings=tuple(sorted((row.timings or {}).items())))


__all__: Sequence[str] = ("Store", "default_url", "migrate", "open_store", "parse_url")
