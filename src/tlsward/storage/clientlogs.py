"""Client TLS telemetry in the inventory database: what ``tlsward logs ingest`` folds from access logs, and the
checkpoints that make ingestion exactly-once.

:meth:`ClientLogStore.record` writes one batch in one transaction: request counts are added to what is stored
(``requests = requests + excluded.requests``), the client rows of every key the batch touches are merged with
the stored ones and cut back to the top K plus one "other clients" row, malformed-line counts are added (the
first samples kept), and the sources' checkpoints move, all or nothing. A run killed at any point leaves counts
and checkpoints in agreement, so the next run resumes exactly where the last committed batch ended. With
``previous`` it also checks that nobody else moved a source's checkpoint meanwhile (two ingesters on one file
would count it twice): :class:`ConcurrentIngestError`. On PostgreSQL writers take a transaction-scoped advisory
lock, so the read-merge-write of client rows and that check are serialised (SQLite's ``BEGIN IMMEDIATE`` does the
same there).

Reading: :meth:`~ClientLogStore.mix` (what ``tlsward logs show``, ``tlsward impact`` and the dashboards read),
:meth:`~ClientLogStore.endpoints`, :meth:`~ClientLogStore.malformed`, :meth:`~ClientLogStore.checkpoint`.
Buckets are kept until :meth:`~ClientLogStore.prune` removes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, text, tuple_
from sqlalchemy.orm import Session

from tlsward.model.clientlogs import (
    BUCKET_SECONDS,
    OTHER_CLIENTS,
    PLAIN,
    TOP_CLIENTS,
    Checkpoint,
    ClientMix,
    ClientRow,
    IngestBatch,
    MalformedLines,
    MixRow,
    legacy_reason,
)
from tlsward.model.errors import UsageError
from tlsward.storage.store import IMPORT_CHUNK, Store
from tlsward.storage.tables import (
    ClientLogCheckpointRow,
    ClientLogClientRow,
    ClientLogMalformedRow,
    ClientLogMixRow,
)

__all__ = ["MALFORMED_SAMPLES", "ClientLogStore", "ConcurrentIngestError", "EndpointShare", "bucket_floor"]

MALFORMED_SAMPLES = 10                # samples kept per source, the first ones seen
_PG_INGEST_LOCK = 0x746C7363          # "tlsc": one client-log writer at a time on PostgreSQL
_KEY_CHUNK = 200                      # (endpoint, bucket) pairs per lookup of stored client rows

Key = tuple[str, dt.datetime, str, str]            # (endpoint, bucket, protocol, cipher)
EndpointShare = tuple[str, int, float]             # (endpoint, requests, share of TLS requests that are legacy)


class ConcurrentIngestError(UsageError):
    """A source's stored checkpoint is not the one this ingester left: another one is reading the same file."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def bucket_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the bucket holding ``moment`` (UTC; a naive datetime is taken as UTC)."""
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    seconds = int(moment.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _chunks(items: Sequence[Any], size: int = IMPORT_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class ClientLogStore:
    """Client-log telemetry over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store, *, top_clients: int = TOP_CLIENTS, samples: int = MALFORMED_SAMPLES) -> None:
        self.store = store
        self.top_clients = top_clients
        self.samples = samples

    # -- writing ---------------------------------------------------------------------------------------------------

    def record(self, batch: IngestBatch, checkpoints: Sequence[Checkpoint] = (), *,
               previous: Mapping[str, Checkpoint | None] | None = None, now: dt.datetime | None = None) -> None:
        """Add ``batch`` and move ``checkpoints``, atomically. With ``previous`` (source → the checkpoint this
        writer last saw, None for none), raise :class:`ConcurrentIngestError` and write nothing when a stored
        checkpoint differs from it."""
        moment = now or _now()
        with self.store._transaction() as session:
            if self.store.engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_INGEST_LOCK})
            if previous is not None:
                self._check_previous(session, checkpoints, previous)
            self._add_mix(session, batch.rows)
            self._merge_clients(session, batch.clients)
            self._add_malformed(session, batch.malformed, moment)
            self._move_checkpoints(session, checkpoints, moment)

    def _check_previous(self, session: Session, checkpoints: Sequence[Checkpoint],
                        previous: Mapping[str, Checkpoint | None]) -> None:
        sources = [mark.source for mark in checkpoints]
        stored = {row.source: (row.inode, row.offset) for row in session.scalars(
            select(ClientLogCheckpointRow).where(ClientLogCheckpointRow.source.in_(sources)))} if sources else {}
        for source in sources:
            expected = previous.get(source)
            held = stored.get(source)
            if held != (None if expected is None else (expected.inode, expected.offset)):
                raise ConcurrentIngestError(
                    f"{source}: its checkpoint moved under this ingester (another `tlsward logs ingest` reads it?); "
                    "nothing of this batch was written")

    def _add_mix(self, session: Session, rows: Sequence[MixRow]) -> None:
        if not rows:
            return
        table = ClientLogMixRow.__table__
        statement = self.store._insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["endpoint", "bucket_start", "protocol", "cipher"],
            set_={"requests": table.c.requests + statement.excluded.requests})
        merged: dict[Key, int] = {}
        for row in rows:
            key = (row.endpoint, _utc(row.bucket), row.protocol, row.cipher)
            merged[key] = merged.get(key, 0) + row.requests
        values = [{"endpoint": e, "bucket_start": b, "protocol": p, "cipher": c, "requests": n}
                  for (e, b, p, c), n in merged.items()]
        for chunk in _chunks(values):
            session.execute(statement, list(chunk))

    def _merge_clients(self, session: Session, rows: Sequence[ClientRow]) -> None:
        """Stored rows + the batch's, per key: the top K named clients stay, the rest is summed into OTHER."""
        if not rows:
            return
        incoming: dict[Key, dict[tuple[str, str], int]] = {}
        for row in rows:
            group = incoming.setdefault((row.endpoint, _utc(row.bucket), row.protocol, row.cipher), {})
            client = (row.user_agent, row.network)
            group[client] = group.get(client, 0) + row.requests
        stored = self._stored_clients(session, list(incoming))
        upserts: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        for key, batch in incoming.items():
            held = stored.get(key, {})
            merged = dict(held)
            for client, requests in batch.items():
                merged[client] = merged.get(client, 0) + requests
            other = merged.pop((OTHER_CLIENTS, OTHER_CLIENTS), 0)
            named = [(client, requests) for client, requests in merged.items() if client[1] != OTHER_CLIENTS]
            other += sum(requests for client, requests in merged.items() if client[1] == OTHER_CLIENTS)
            named.sort(key=lambda item: (-item[1], item[0]))
            keep = dict(named[:self.top_clients])
            other += sum(requests for _, requests in named[self.top_clients:])
            if other:
                keep[(OTHER_CLIENTS, OTHER_CLIENTS)] = other
            endpoint, bucket, protocol, cipher = key
            for client in held:
                if client not in keep:
                    deletes.append({"e": endpoint, "b": bucket, "p": protocol, "c": cipher, "n": client[1],
                                    "u": client[0]})
            for (agent, network), requests in keep.items():
                if held.get((agent, network)) != requests:
                    upserts.append({"endpoint": endpoint, "bucket_start": bucket, "protocol": protocol,
                                    "cipher": cipher, "network": network, "user_agent": agent,
                                    "requests": requests})
        table = ClientLogClientRow.__table__
        if deletes:
            columns = ClientLogClientRow
            statement = delete(columns).where(and_(
                columns.endpoint == bindparam("e"), columns.bucket_start == bindparam("b"),
                columns.protocol == bindparam("p"), columns.cipher == bindparam("c"),
                columns.network == bindparam("n"), columns.user_agent == bindparam("u")))
            for chunk in _chunks(deletes):
                session.connection().execute(statement, list(chunk))
        if upserts:
            insert = self.store._insert(table)
            insert = insert.on_conflict_do_update(
                index_elements=["endpoint", "bucket_start", "protocol", "cipher", "network", "user_agent"],
                set_={"requests": insert.excluded.requests})
            for chunk in _chunks(upserts):
                session.execute(insert, list(chunk))

    @staticmethod
    def _stored_clients(session: Session, keys: Sequence[Key]) -> dict[Key, dict[tuple[str, str], int]]:
        table = ClientLogClientRow.__table__
        wanted = set(keys)
        pairs = sorted({(endpoint, bucket) for endpoint, bucket, _, _ in keys})
        stored: dict[Key, dict[tuple[str, str], int]] = {}
        for chunk in _chunks(pairs, _KEY_CHUNK):
            query = select(table.c.endpoint, table.c.bucket_start, table.c.protocol, table.c.cipher,
                           table.c.user_agent, table.c.network, table.c.requests).where(
                tuple_(table.c.endpoint, table.c.bucket_start).in_(list(chunk)))
            for endpoint, bucket, protocol, cipher, agent, network, requests in session.execute(query):
                key = (endpoint, bucket, protocol, cipher)
                if key in wanted:
                    stored.setdefault(key, {})[(agent, network)] = requests
        return stored

    def _add_malformed(self, session: Session, malformed: Sequence[MalformedLines], moment: dt.datetime) -> None:
        for entry in malformed:
            row = session.get(ClientLogMalformedRow, entry.source)
            samples = [[number, sample] for number, sample in entry.samples]
            if row is None:
                session.add(ClientLogMalformedRow(source=entry.source, count=entry.count,
                                                  samples=samples[:self.samples], updated_at=moment))
                continue
            row.count += entry.count
            if len(row.samples) < self.samples:
                row.samples = [*row.samples, *samples][:self.samples]
            row.updated_at = moment
        session.flush()

    def _move_checkpoints(self, session: Session, checkpoints: Sequence[Checkpoint], moment: dt.datetime) -> None:
        if not checkpoints:
            return
        insert = self.store._insert(ClientLogCheckpointRow.__table__)
        insert = insert.on_conflict_do_update(index_elements=["source"], set_={
            name: getattr(insert.excluded, name) for name in ("inode", "offset", "line", "fingerprint",
                                                               "updated_at")})
        session.execute(insert, [{"source": mark.source, "inode": mark.inode, "offset": mark.offset,
                                  "line": mark.line, "fingerprint": mark.fingerprint, "updated_at": moment}
                                 for mark in checkpoints])

    def prune(self, before: dt.datetime) -> int:
        """Delete the buckets (counts and clients) that start before ``before``; how many mix rows went."""
        cutoff = _utc(before)
        with self.store._transaction() as session:
            session.execute(delete(ClientLogClientRow).where(ClientLogClientRow.bucket_start < cutoff))
            result = session.execute(delete(ClientLogMixRow).where(ClientLogMixRow.bucket_start < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

    def forget(self, source: str) -> bool:
        """Drop a source's checkpoint and malformed counts (its next ingest starts from the beginning of the
        file; the counts already added stay). False when nothing was stored for it."""
        with self.store._transaction() as session:
            gone = session.execute(delete(ClientLogCheckpointRow).where(ClientLogCheckpointRow.source == source))
            bad = session.execute(delete(ClientLogMalformedRow).where(ClientLogMalformedRow.source == source))
            return bool(getattr(gone, "rowcount", 0) or getattr(bad, "rowcount", 0))

    # -- reading ---------------------------------------------------------------------------------------------------

    def checkpoint(self, source: str) -> Checkpoint | None:
        """Where ingestion of ``source`` (an absolute path) stopped; None if it never ran."""
        with self.store._transaction() as session:
            row = session.get(ClientLogCheckpointRow, source)
            return None if row is None else Checkpoint(row.source, row.inode, row.offset, row.line, row.fingerprint)

    def checkpoints(self) -> list[Checkpoint]:
        with self.store._transaction() as session:
            return [Checkpoint(row.source, row.inode, row.offset, row.line, row.fingerprint) for row in
                    session.scalars(select(ClientLogCheckpointRow).order_by(ClientLogCheckpointRow.source))]

    def mix(self, endpoint: str | None, since: dt.datetime, until: dt.datetime, *,
            by_bucket: bool = True) -> ClientMix:
        """The traffic of ``endpoint`` (every endpoint with None) in the buckets starting in [``since`` rounded
        down to its hour, ``until``). Rows are per bucket, or with ``by_bucket=False`` summed over the window
        (their ``bucket`` is then the window's first). Clients include the OTHER_CLIENTS rows."""
        start, end = bucket_floor(since), _utc(until)
        mix_t, client_t = ClientLogMixRow.__table__, ClientLogClientRow.__table__
        with self.store._transaction() as session:
            rows = tuple(MixRow(*values) for values in session.execute(
                self._window(select(mix_t.c.endpoint, mix_t.c.bucket_start, mix_t.c.protocol, mix_t.c.cipher,
                                    mix_t.c.requests), mix_t, endpoint, start, end, by_bucket)))
            clients = tuple(ClientRow(*values) for values in session.execute(
                self._window(select(client_t.c.endpoint, client_t.c.bucket_start, client_t.c.protocol,
                                    client_t.c.cipher, client_t.c.user_agent, client_t.c.network,
                                    client_t.c.requests), client_t, endpoint, start, end, by_bucket)))
        if not by_bucket:   # (PostgreSQL's SUM of a BIGINT is a NUMERIC: Decimal)
            rows = tuple(MixRow(row.endpoint, start, row.protocol, row.cipher, int(row.requests)) for row in rows)
            clients = tuple(ClientRow(row.endpoint, start, row.protocol, row.cipher, row.user_agent, row.network,
                                      int(row.requests)) for row in clients)
        return ClientMix(endpoint=endpoint, since=start, until=end, rows=rows, clients=clients)

    @staticmethod
    def _window(query: Any, table: Any, endpoint: str | None, start: dt.datetime, end: dt.datetime,
                by_bucket: bool) -> Any:
        query = query.where(table.c.bucket_start >= start, table.c.bucket_start < end)
        if endpoint is not None:
            query = query.where(table.c.endpoint == endpoint)
        keys = [table.c.endpoint, table.c.protocol, table.c.cipher]
        if "user_agent" in table.c:
            keys += [table.c.user_agent, table.c.network]
        if not by_bucket:
            columns = [table.c.endpoint, func.min(table.c.bucket_start), table.c.protocol, table.c.cipher]
            if "user_agent" in table.c:
                columns += [table.c.user_agent, table.c.network]
            query = query.with_only_columns(*columns, func.sum(table.c.requests)).group_by(*keys)
            order = [table.c.endpoint, table.c.protocol, table.c.cipher, func.sum(table.c.requests).desc()]
            return query.order_by(*order, *keys[3:])
        return query.order_by(table.c.endpoint, table.c.bucket_start, table.c.protocol, table.c.cipher,
                              table.c.requests.desc(), *keys[3:])

    def endpoints(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[EndpointShare]:
        """Every endpoint with requests in the window (all time by default): (endpoint, requests, the share of
        its TLS requests that are legacy by :func:`~tlsward.model.clientlogs.legacy_reason`), busiest first."""
        table = ClientLogMixRow.__table__
        query = select(table.c.endpoint, table.c.protocol, table.c.cipher, func.sum(table.c.requests)).group_by(
            table.c.endpoint, table.c.protocol, table.c.cipher)
        if since is not None:
            query = query.where(table.c.bucket_start >= bucket_floor(since))
        if until is not None:
            query = query.where(table.c.bucket_start < _utc(until))
        totals: dict[str, list[int]] = {}
        legacy: dict[tuple[str, str], bool] = {}
        with self.store._transaction() as session:
            for endpoint, protocol, cipher, requests in session.execute(query):
                counts = totals.setdefault(endpoint, [0, 0, 0])    # requests, TLS requests, legacy requests
                counts[0] += int(requests)
                if protocol == PLAIN:
                    continue
                counts[1] += int(requests)
                if (flag := legacy.get((protocol, cipher))) is None:
                    flag = legacy[(protocol, cipher)] = legacy_reason(protocol, cipher) is not None
                if flag:
                    counts[2] += int(requests)
        shares = [(endpoint, n, legacy_n / tls if tls else 0.0) for endpoint, (n, tls, legacy_n) in totals.items()]
        return sorted(shares, key=lambda share: (-share[1], share[0]))

    def malformed(self, source: str | None = None) -> list[MalformedLines]:
        """Malformed-line counts and samples, per source (one source with ``source``)."""
        query = select(ClientLogMalformedRow).order_by(ClientLogMalformedRow.source)
        if source is not None:
            query = query.where(ClientLogMalformedRow.source == source)
        with self.store._transaction() as session:
            return [MalformedLines(row.source, row.count, tuple((int(n), str(t)) for n, t in row.samples))
                    for row in session.scalars(query)]
