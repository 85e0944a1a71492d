"""The internal CA's inventory: issued certificates, revocations and each authority's current CRL.

Every issuance is recorded (committed) before the certificate is returned, and the record is the CA's hottest
path after the signature itself: see :class:`_RecordWriter` (one raw DBAPI INSERT per transaction, group commit).
The CRL lives in the database with its number, so that the process that revokes and the process that serves
(``tlsward serve``) hand out the same CRL and the number never goes back.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from tlsward.model.ca import CaError, CrlState, IssuedRecord, RevocationRecord
from tlsward.model.errors import StorageError
from tlsward.storage.store import Store
from tlsward.storage.tables import CaAuthorityRow, CaCertificateRow, UTCDateTime

# build(number, revocations) -> (der, this_update, next_update): the CA signs inside the CRL transaction.
CrlBuilder = Callable[[int, Sequence[RevocationRecord]], tuple[bytes, dt.datetime, dt.datetime]]




def serial_text(serial: int) -> str:
    """The serial as the database keys it: lower-case hex without a prefix (what ``openssl x509 -serial`` prints,
    lower-cased)."""
    return f"{serial:x}"


def _record(row: CaCertificateRow) -> IssuedRecord:
    return IssuedRecord(
        authority=row.authority, serial=int(row.serial, 16), subject=row.subject, names=tuple(row.names),
        profile=row.profile, key_type=row.key_type, not_before=row.not_before, not_after=row.not_after,
        issued_at=row.issued_at, requester=row.requester, sha256=row.sha256, der=bytes(row.der),
        replaces=None if row.replaces is None else int(row.replaces, 16), revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason)


class CaStore:
    """The CA tables over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writer: _RecordWriter | None = None
        self._writer_lock = threading.Lock()

    # -- authorities ---------------------------------------------------------------------------------------------

    def ensure_authority(self, key_id: str, *, name: str, subject: str, now: dt.datetime) -> None:
        """Register an intermediate (idempotent: opening a CA twice, or on a second host, is harmless)."""
        with self.store._transaction() as session:
            session.execute(self.store._insert(CaAuthorityRow).values(
                key_id=key_id, name=name, subject=subject, created_at=now, crl_number=0)
                .on_conflict_do_nothing(index_elements=["key_id"]))

    def crl_state(self, key_id: str) -> CrlState:
        with self.store._transaction() as session:
            row = session.get(CaAuthorityRow, key_id)
            if row is None:
                raise CaError(f"CA {key_id}: not in the inventory {self.store.url} (was it initialised with "
                              "another --db?)")
            return CrlState(number=row.crl_number, this_update=row.crl_this_update,
                            next_update=row.crl_next_update, der=None if row.crl_der is None else bytes(row.crl_der))

    def publish_crl(self, key_id: str, build: CrlBuilder, *, now: dt.datetime) -> CrlState:
        """Sign the next CRL (``build`` gets its number and the revocations of unexpired certificates) and keep it,
        in one transaction that holds the authority's row: two publishers never sign the same number."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaAuthorityRow).where(CaAuthorityRow.key_id == key_id)
                                  .with_for_update()).one_or_none()
            if row is None:
                raise CaError(f"CA {key_id}: not in the inventory {self.store.url}")
            revoked = [RevocationRecord(serial=int(serial, 16), revoked_at=at or now, reason=reason or "unspecified")
                       for serial, at, reason in session.execute(
                           select(CaCertificateRow.serial, CaCertificateRow.revoked_at,
                                  CaCertificateRow.revocation_reason)
                           .where(CaCertificateRow.authority == key_id, CaCertificateRow.revoked_at.is_not(None),
                                  CaCertificateRow.not_after > now)
                           .order_by(CaCertificateRow.revoked_at, CaCertificateRow.serial))]
            number = row.crl_number + 1
            der, this_update, next_update = build(number, revoked)
            row.crl_number, row.crl_der = number, der
            row.crl_this_update, row.crl_next_update = this_update, next_update
            return CrlState(number=number, this_update=this_update, next_update=next_update, der=der)

    # -- certificates --------------------------------------------------------------------------------------------

    def issuing(self) -> AbstractContextManager[None]:
        """Around signing a certificate that ``record_issued`` will record from the same thread: while it is open,
        a commit that starts waits (a millisecond at most) for this record to join it. Without it, concurrent
        callers still share commits, only less often."""
        return self._record_writer().issuing()

    def record_issued(self, *records: IssuedRecord) -> None:
        """Commit ``records`` (in one transaction, possibly shared with other threads' records: group commit) and
        return only once they are committed. StorageError, one line, if they are not."""
        if records:
            self._record_writer().record(records)

    def _record_writer(self) -> _RecordWriter:
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = _RecordWriter(self.store)
                writer = self._writer
        return writer

    def get(self, key_id: str, serial: int) -> IssuedRecord | None:
        with self.store._transaction() as session:
            row = session.get(CaCertificateRow, (key_id, serial_text(serial)))
            return None if row is None else _record(row)

    def find(self, sha256: str) -> IssuedRecord | None:
        """A certificate by its SHA-256 fingerprint: a scan (no index, so that issuing writes none; ``ca renew
        --cert FILE`` goes by the file's serial)."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaCertificateRow).where(CaCertificateRow.sha256 == sha256.lower())
                                  ).first()
            return None if row is None else _record(row)

    def status(self, key_id: str, serial: int) -> tuple[bool, RevocationRecord | None]:
        """(issued by this authority?, its revocation if revoked): what an OCSP answer needs, in one SELECT."""
        with self.store._transaction() as session:
            found = session.execute(select(CaCertificateRow.revoked_at, CaCertificateRow.revocation_reason)
                                    .where(CaCertificateRow.authority == key_id,
                                           CaCertificateRow.serial == serial_text(serial))).one_or_none()
        if found is None:
            return False, None
        revoked_at, reason = found
        if revoked_at is None:
            return True, None
        return True, RevocationRecord(serial=serial, revoked_at=revoked_at, reason=reason or "unspecified")

    def revoke(self, key_id: str, serial: int, *, reason: str, now: dt.datetime) -> IssuedRecord:
        """Mark a certificate revoked. CaError for a serial this authority never issued or already revoked."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaCertificateRow).where(
                CaCertificateRow.authority == key_id, CaCertificateRow.serial == serial_text(serial))
                .with_for_update()).one_or_none()
            if row is None:
                raise CaError(f"serial {serial_text(serial)}: not issued by this CA (see `tlsward ca list`)")
            if row.revoked_at is not None:
                raise CaError(f"serial {serial_text(serial)}: already revoked on {row.revoked_at:%Y-%m-%d %H:%M}Z "
                              f"({row.revocation_reason})")
            session.execute(update(CaCertificateRow).where(
                CaCertificateRow.authority == key_id, CaCertificateRow.serial == row.serial)
                .values(revoked_at=now, revocation_reason=reason))
            session.refresh(row)
            return _record(row)

    def certificates(self, key_id: str | None = None, *, include_revoked: bool = True, include_expired: bool = False,
                     name: str | None = None, now: dt.datetime | None = None, limit: int | None = None
                     ) -> list[IssuedRecord]:
        """Issued certificates, newest first; expired ones only when asked."""
        query = select(CaCertificateRow).order_by(CaCertificateRow.issued_at.desc(), CaCertificateRow.serial)
        if key_id is not None:
            query = query.where(CaCertificateRow.authority == key_id)
        if not include_revoked:
            query = query.where(CaCertificateRow.revoked_at.is_(None))
        if not include_expired:
            query = query.where(CaCertificateRow.not_after > (now or dt.datetime.now(dt.UTC)))
        if limit is not None:
            query = query.limit(limit)
        with self.store._transaction() as session:
            records = [_record(row) for row in session.scalars(query)]
        if name is not None:
            records = [r for r in records if name in r.names]
        return records


_COLUMNS = ("authority", "serial", "subject", "names", "profile", "key_type", "not_before", "not_after", "issued_at",
            "requester", "sha256", "der", "replaces", "revoked_at", "revocation_reason")


def _values(record: IssuedRecord) -> list[Any]:
    """The columns of ``ca_certificate`` in table order, unprocessed."""
    return [record.authority, f"{record.serial:x}", record.subject, list(record.names), record.profile,
            record.key_type, record.not_before, record.not_after, record.issued_at, record.requester, record.sha256,
            record.der, None if record.replaces is None else serial_text(record.replaces), record.revoked_at,
            record.revocation_reason]


# The automatic WAL checkpoint (which copies the WAL's pages into the database file, inside whichever commit crosses
# the threshold) every 10,000 pages (40 MB of WAL) on the connection that records certificates, instead of SQLite's
# 1,000: a checkpoint copies each page once however often it was written (a one-record commit writes the last
# pages of the table and of its primary key, the same ones commit after commit), and syncs the database file.
# Measured (with the former seven-page records): ~85 us per one-record commit at 1,000, ~60 us at 10,000. The WAL file
# keeps its largest size (SQLite reuses it from the start after a checkpoint).
WAL_AUTOCHECKPOINT = 10_000
GATHER_SECONDS = 0.002
_log = logging.getLogger("tlsward.ca")


class _Pending:
    """One caller's records waiting for a commit: ``wake`` is released when they are committed (``done``) or when
    the caller is to lead the next commit; ``error`` stays set unless they were committed."""

    __slots__ = ("done", "error", "rows", "wake")

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.done = False
        self.error: str | None = "not recorded: the commit that was to hold it failed"
        self.wake = threading.Lock()
        self.wake.acquire()


class _Issuing:
    """``_RecordWriter.issuing()``: a plain context manager (no generator), one per writer."""

    __slots__ = ("writer",)

    def __init__(self, writer: _RecordWriter) -> None:
        self.writer = writer

    def __enter__(self) -> None:
        writer = self.writer
        with writer.mutex:
            writer.signing += 1
        writer.local.signing = True

    def __exit__(self, *_: object) -> None:
        self.writer._left_issuing()


class _RecordWriter:
    """Writes issued-certificate records, one short transaction per group, as fast as the database allows.

    - Raw DBAPI: the INSERT is compiled once by SQLAlchemy for this dialect (the SQL and the bind processing of
      ``insert(CaCertificateRow)`` through Core) and run on the DBAPI cursor, with no SELECT before it:
      SQLAlchemy's per-statement machinery cost more than SQLite's commit itself. SQLite: on the writer's own
      connection (``_sqlite_connection``); PostgreSQL: on a pooled one.
    - SQLite: one INSERT statement (several rows in one ``VALUES`` list) with no explicit transaction *is* one
      transaction, committed when the statement completes, and takes the write lock when it starts, as ``BEGIN
      IMMEDIATE`` would (SQLite opens a statement's write transaction before it reads anything). One driver
      call, so one release of the GIL: each release costs a waiting thread up to the interpreter's switch interval
      (5 ms) to get it back from a thread that is signing. Larger groups run in BEGIN IMMEDIATE ... COMMIT.
      Durability: WAL with ``synchronous = NORMAL`` (set by the store): a committed transaction is in the WAL file
      and survives a crash of the application; a power loss can lose the last commits, not corrupt the database.
      The writer's connection checkpoints every ``WAL_AUTOCHECKPOINT`` pages instead of SQLite's 1,000.
    - PostgreSQL: the same INSERT, then COMMIT; ``synchronous_commit`` stays on (the COMMIT returns after the WAL
      flush).
    - Group commit, leader/follower: a caller whose records are queued while no commit runs becomes the leader and
      commits everything queued (its own and other threads') in one transaction; then it wakes the callers it
      committed for, and hands the lead to the first caller queued meanwhile. A single thread pays two lock
      round trips, nothing more; a caller that finds no commit running and nobody else signing commits its own
      records at once in its own thread (no queue, no hand-off). Every caller returns only after a commit that holds
      its records. If a group
      fails, its callers' records are retried one caller at a time, so that an error only reaches the caller it
      belongs to. The leader of a commit waits for the records of the callers that are signing at that moment
      (``issuing()``, at most ``GATHER_SECONDS``): under the GIL, threads sign one after the other, so without
      waiting most commits would hold one record and cost as much CPU as a signature.
    """

    ROWS_PER_STATEMENT = 64   # 64 x 15 parameters: under SQLite's oldest limit of 999

    def __init__(self, store: Store) -> None:
        self.url = store.url
        self.engine: Engine = store.engine
        dialect = self.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        table = CaCertificateRow.__table__
        columns = [c.key for c in table.c]
        if columns != list(_COLUMNS):
            raise AssertionError(f"ca_certificate has the columns {columns}, _values() makes {_COLUMNS}")
        compiled = insert(CaCertificateRow).compile(dialect=dialect, column_keys=columns)
        self.sql = compiled.string
        if self.sqlite:   # qmark: positional parameters in column order, one "(?, ...)" group per row
            if list(compiled.positiontup or ()) != columns or self.sql.count(" VALUES ") != 1:
                raise AssertionError(f"unexpected SQLite INSERT {self.sql!r}")
            self.head, self.group = self.sql.split(" VALUES ")
        self.keys: list[str] | None = None if self.sqlite else columns   # named parameters (psycopg)
        self.statements: dict[int, str] = {}
        self.processors = [(index, processor, isinstance(c.type, UTCDateTime)) for index, c in enumerate(table.c)
                           if (processor := c.type.dialect_impl(dialect).bind_processor(dialect)) is not None]
        self.memo: dict[dt.datetime, Any] = {}   # processed datetimes: a second's certificates share them
        self.errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error, SQLAlchemyError)
        self.mutex = threading.Lock()
        self.arrival = threading.Condition(self.mutex)
        self.queue: list[_Pending] = []
        self.writing = False
        self.signing = 0   # callers inside issuing() that have not queued their records yet
        self.gathering = False
        self.shared = False   # the last commit held several callers' records
        self.local = threading.local()
        self._issuing = _Issuing(self)
        self.connection: PoolProxiedConnection | None = None   # SQLite: see _sqlite_connection
        if self.sqlite:
            reference = weakref.ref(self)

            def disposed(_engine: Engine) -> None:   # Store.close() disposes the engine: close ours as well
                writer = reference()
                if writer is not None:
                    writer.close()

            event.listen(self.engine, "engine_disposed", disposed)
            weakref.finalize(self, _forget, self.engine, disposed)

    def row(self, record: IssuedRecord) -> Any:
        """The INSERT's parameters for ``record``, as SQLAlchemy would bind them (its own bind processors)."""
        values = _values(record)
        memo = self.memo
        for index, process, is_time in self.processors:
            value = values[index]
            if is_time and value is not None:
                processed = memo.get(value)
                if processed is None:
                    if len(memo) > 64:
                        memo.clear()
                    processed = memo[value] = process(value)
                values[index] = processed
            else:
                values[index] = process(value)
        return values if self.keys is None else dict(zip(self.keys, values, strict=True))

    def issuing(self) -> _Issuing:
        return self._issuing

    def _left_issuing(self) -> None:
        """``issuing()`` left without recording (refused, or failed before the record)."""
        local = self.local
        if getattr(local, "signing", False):
            local.signing = False
            with self.mutex:
                self.signing -= 1
                if self.gathering:
                    self.arrival.notify()

    def record(self, records: Sequence[IssuedRecord]) -> None:
        rows = [self.row(record) for record in records]
        local = self.local
        announced = getattr(local, "signing", False)
        if announced:
            local.signing = False
        with self.mutex:
            if announced:
                self.signing -= 1
            if not self.writing and not self.signing:   # alone: commit in this thread, no hand-off
                self.writing = True
                entry = None
            else:
                entry = _Pending(rows)
                self.queue.append(entry)
                lead = not self.writing
                self.writing = True
                if self.gathering:
                    self.arrival.notify()
        if entry is None:
            self._record_alone(rows)
            return
        if not lead:
            entry.wake.acquire()   # committed by another leader, or handed the lead
            if entry.done:
                self._raise(entry)
                return
        if self.shared:
            time.sleep(0)   # the callers the last commit woke: let them start signing again (and say so)
        with self.mutex:
            if self.signing:   # others are signing now: let their records join this commit
                deadline = time.monotonic() + GATHER_SECONDS
                self.gathering = True
                while self.signing and (remaining := deadline - time.monotonic()) > 0:
                    self.arrival.wait(remaining)
                self.gathering = False
            group, self.queue = self.queue, []
        self.shared = len(group) > 1
        successor: _Pending | None = None
        try:
            self._commit_group(group)
        finally:
            for pending in group:
                pending.done = True
            with self.mutex:
                if self.queue:
                    successor = self.queue[0]   # queued during this commit: it leads the next one
                else:
                    self.writing = False
            for pending in group:
                if pending is not entry:
                    pending.wake.release()
            if successor is not None:
                successor.wake.release()
        self._raise(entry)

    def _record_alone(self, rows: list[Any]) -> None:
        """The fast path of ``record``: no other caller was committing or signing, so this thread commits its own
        rows at once (and hands the lead to whoever queued meanwhile)."""
        self.shared = False
        error: str | None = None
        try:
            self._write(rows)
        except self.errors as exc:
            error = _first_line(exc)
        finally:
            with self.mutex:
                successor = self.queue[0] if self.queue else None
                if successor is None:
                    self.writing = False
            if successor is not None:
                successor.wake.release()   # queued during this commit: it leads the next one
        if error is not None:
            raise StorageError(f"{self.url}: {error}")

    def _raise(self, entry: _Pending) -> None:
        if entry.error is not None:
            raise StorageError(f"{self.url}: {entry.error}")

    def _commit_group(self, group: list[_Pending]) -> None:
        try:
            self._write([row for pending in group for row in pending.rows])
        except self.errors as exc:
            if len(group) == 1:
                group[0].error = _first_line(exc)
                return
            for pending in group:   # attribute the failure: each caller's records alone
                try:
                    self._write(pending.rows)
                except self.errors as single:
                    pending.error = _first_line(single)
                else:
                    pending.error = None
            return
        for pending in group:
            pending.error = None

    def _statement(self, rows: int) -> str:
        statement = self.statements.get(rows)
        if statement is None:
            statement = self.statements[rows] = f"{self.head} VALUES {', '.join([self.group] * rows)}"
        return statement

    def _write(self, rows: list[Any]) -> None:
        if self.sqlite:
            self._write_sqlite(rows)
            return
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                if len(rows) == 1:
                    cursor.execute(self.sql, rows[0])
                else:
                    cursor.executemany(self.sql, rows)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            cursor.close()
        except BaseException:
            connection.invalidate()   # whatever state it is in, it does not go back to the pool
            raise
        finally:
            connection.close()

    def _sqlite_connection(self) -> PoolProxiedConnection:
        """The writer's own SQLite connection (made by the store's engine, so with its pragmas), detached from the
        pool: its page cache stays warm from one record to the next (a pooled connection's is dropped whenever
        another connection has written since its last use). Used by the leader only; closed with the store
        (``Store.close``), when the writer is garbage, or after an error."""
        connection = self.connection
        if connection is None:
            connection = self.engine.raw_connection()
            connection.detach()
            try:
                connection.cursor().execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
            except BaseException:
                _close_quietly(connection)
                raise
            weakref.finalize(self, _close_quietly, connection)
            self.connection = connection
        return connection

    def _write_sqlite(self, rows: list[Any]) -> None:
        connection = self._sqlite_connection()
        try:
            cursor = connection.cursor()
            if len(rows) == 1:
                cursor.execute(self.sql, rows[0])   # autocommit: the statement is the transaction
            elif len(rows) <= self.ROWS_PER_STATEMENT:
                cursor.execute(self._statement(len(rows)), [value for row in rows for value in row])
            else:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    for first in range(0, len(rows), self.ROWS_PER_STATEMENT):
                        chunk = rows[first:first + self.ROWS_PER_STATEMENT]
                        cursor.execute(self._statement(len(chunk)), [value for row in chunk for value in row])
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            cursor.close()
        except BaseException:
            self.connection = None
            _close_quietly(connection)
            raise

    def close(self) -> None:
        """Close the SQLite connection (the next record opens another)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            _close_quietly(connection)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _close_quietly(connection: PoolProxiedConnection) -> None:
    try:
        connection.close()
    except Exception:   # already closed, or its file gone: nothing left to release
        _log.debug("closing the CA record writer's connection failed", exc_info=True)


def _forget(engine: Engine, listener: Callable[[Engine], None]) -> None:
    if event.contains(engine, "engine_disposed", listener):
        event.remove(engine, "engine_disposed", listener)
