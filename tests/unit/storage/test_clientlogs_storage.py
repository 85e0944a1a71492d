"""Client-log telemetry in the inventory, on SQLite and PostgreSQL: counts are added, client rows are merged and
kept to the top K plus "other" (whose sums stay exact), malformed lines are counted with the first samples, and
a batch and its checkpoints are written all or nothing, so an ingester killed between (or during) batches resumes
without losing or doubling a line. Reading: windows, per-bucket and summed mixes, endpoint shares, pruning."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tlsward.logs.follow import FileSource, run
from tlsward.logs.ingest import Fold
from tlsward.model.clientlogs import OTHER_CLIENTS, PLAIN, Checkpoint, ClientRow, IngestBatch, MalformedLines, MixRow
from tlsward.model.errors import StorageError
from tlsward.storage import Store, open_store
from tlsward.storage.clientlogs import ClientLogStore, ConcurrentIngestError
from tlsward.storage.tables import ClientLogClientRow

H0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
H1 = H0 + dt.timedelta(hours=1)
EVER = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
TABLES = "clientlog_mix, clientlog_client, clientlog_malformed, clientlog_checkpoint"


@pytest.fixture
def logs(store: Store) -> Iterator[ClientLogStore]:
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {TABLES}"))
    yield ClientLogStore(store, top_clients=3)


def mix_batch(*rows: tuple[str, dt.datetime, str, str, int]) -> IngestBatch:
    return IngestBatch(rows=tuple(MixRow(*row) for row in rows))


def totals(logs: ClientLogStore, endpoint: str | None = None) -> dict[tuple[str, str, str], int]:
    mix = logs.mix(endpoint, *EVER, by_bucket=False)
    return {(row.endpoint, row.protocol, row.cipher): row.requests for row in mix.rows}


def test_counts_are_added_and_read_per_bucket_or_summed(logs: ClientLogStore) -> None:
    logs.record(mix_batch(("a:443", H0, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 5), ("a:443", H0, PLAIN, PLAIN, 1)))
    logs.record(mix_batch(("a:443", H0, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 2),
                          ("a:443", H1, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 4), ("b:443", H1, "TLSv1", "X", 1)))
    mix = logs.mix("a:443", H0 + dt.timedelta(minutes=30), H1 + dt.timedelta(minutes=1))
    assert mix.since == H0 and mix.rows == (MixRow("a:443", H0, PLAIN, PLAIN, 1),
                                            MixRow("a:443", H0, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 7),
                                            MixRow("a:443", H1, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 4))
    assert logs.mix("a:443", H0, H1).requests == 8, "until is exclusive"
    assert totals(logs) == {("a:443", PLAIN, PLAIN): 1, ("a:443", "TLSv1.3", "TLS_AES_128_GCM_SHA256"): 11,
                            ("b:443", "TLSv1", "X"): 1}
    assert all(isinstance(row.requests, int) for row in logs.mix(None, *EVER, by_bucket=False).rows)


def clients(key: tuple[str, dt.datetime, str, str], **named: int) -> tuple[ClientRow, ...]:
    return tuple(ClientRow(*key, agent, f"10.0.{i}.0/24", n) for i, (agent, n) in enumerate(sorted(named.items())))


def stored_clients(logs: ClientLogStore) -> dict[tuple[str, str], int]:
    return {(c.user_agent, c.network): c.requests for c in logs.mix(None, *EVER).clients}


def test_client_rows_merge_to_the_top_k_and_other_keeps_the_sum(logs: ClientLogStore) -> None:
    key = ("legacy:443", H0, "TLSv1.0", "ECDHE-RSA-AES128-SHA")
    logs.record(IngestBatch(rows=(MixRow(*key, 10),), clients=clients(key, a=4, b=3, c=2, d=1)))
    other = (OTHER_CLIENTS, OTHER_CLIENTS)
    assert stored_clients(logs) == {("a", "10.0.0.0/24"): 4, ("b", "10.0.1.0/24"): 3, ("c", "10.0.2.0/24"): 2,
                                    other: 1}
    batch = (*clients(key, b=5, e=9), ClientRow(*key, OTHER_CLIENTS, OTHER_CLIENTS, 2))
    logs.record(IngestBatch(rows=(MixRow(*key, 16),), clients=batch))
    # b: 3 + 5 (its network in this batch is 10.0.0.0/24: another client), e: 9, a: 4 ...
    held = stored_clients(logs)
    assert len(held) == 4 and held[other] == 26 - sum(n for client, n in held.items() if client != other)
    assert sorted(n for client, n in held.items() if client != other) == [4, 5, 9]
    assert sum(held.values()) == logs.mix(None, *EVER).requests == 26


def test_client_rows_stay_bounded_under_concurrent_writers(db_url: str, logs: ClientLogStore) -> None:
    """Four writers, each with its own connection, add to the same keys at once: the sums are exact and each key
    keeps at most K + 1 rows (the read-merge-write is serialised: BEGIN IMMEDIATE, an advisory lock)."""
    key = ("busy:443", H0, "TLSv1.1", "AES128-SHA")
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            with open_store(db_url) as own:
                mine = ClientLogStore(own, top_clients=3)
                for round_ in range(8):
                    named = {f"w{worker}r{round_}c{i}": i + 1 for i in range(5)}
                    mine.record(IngestBatch(rows=(MixRow(*key, 15),), clients=clients(key, **named)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert totals(logs) == {("busy:443", "TLSv1.1", "AES128-SHA"): 4 * 8 * 15}
    held = stored_clients(logs)
    assert len(held) == 4 and sum(held.values()) == 4 * 8 * 15


def test_malformed_lines_add_up_and_keep_the_first_samples(logs: ClientLogStore) -> None:
    logs.samples = 3
    logs.record(IngestBatch(malformed=(MalformedLines("/a.log", 2, ((1, "x"), (5, "y"))),)))
    logs.record(IngestBatch(malformed=(MalformedLines("/a.log", 4, ((9, "z\ufffd"), (10, "w"))),
                                       MalformedLines("/b.log", 1, ((3, "é"),)))))
    assert logs.malformed() == [MalformedLines("/a.log", 6, ((1, "x"), (5, "y"), (9, "z\ufffd"))),
                                MalformedLines("/b.log", 1, ((3, "é"),))]
    assert logs.malformed("/b.log") == [MalformedLines("/b.log", 1, ((3, "é"),))]


def test_a_batch_and_its_checkpoint_are_one_transaction(logs: ClientLogStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = Checkpoint("/x.log", 11, 100, 2, "f1")
    logs.record(mix_batch(("a:443", H0, "TLSv1.2", "X", 2)), [first], previous={"/x.log": None})
    assert logs.checkpoint("/x.log") == first

    def crash(*_: object) -> None:
        raise StorageError("disk full (after the counts were written, before the checkpoint)")

    monkeypatch.setattr(ClientLogStore, "_move_checkpoints", crash)
    with pytest.raises(StorageError):
        logs.record(IngestBatch(rows=(MixRow("a:443", H0, "TLSv1.2", "X", 5),),
                                clients=clients(("a:443", H0, "TLSv1.2", "X"), ua=5),
                                malformed=(MalformedLines("/x.log", 1, ((3, "bad"),)),)),
                    [Checkpoint("/x.log", 11, 200, 4, "f2")], previous={"/x.log": first})
    monkeypatch.undo()
    assert totals(logs) == {("a:443", "TLSv1.2", "X"): 2} and logs.checkpoint("/x.log") == first
    assert logs.malformed() == [] and stored_clients(logs) == {}


def test_a_second_ingester_on_the_same_file_is_refused(logs: ClientLogStore) -> None:
    mark = Checkpoint("/x.log", 11, 100, 2, "f")
    logs.record(mix_batch(("a:443", H0, "TLSv1.2", "X", 2)), [mark], previous={"/x.log": None})
    with pytest.raises(ConcurrentIngestError, match=r"/x\.log"):      # it too thinks it starts from nothing
        logs.record(mix_batch(("a:443", H0, "TLSv1.2", "X", 2)), [Checkpoint("/x.log", 11, 100, 2, "f")],
                    previous={"/x.log": None})
    assert totals(logs) == {("a:443", "TLSv1.2", "X"): 2}


def log_lines(n: int, start: int = 0) -> bytes:
    return "".join(f'10.0.{i % 3}.1 [2026-03-01T{12 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z] '
                   f'"GET / HTTP/1.1" 200 "agent{i % 5}" {("TLSv1.3", "TLSv1.2", "TLSv1")[i % 3]} '
                   f'{("TLS_AES_128_GCM_SHA256", "AES128-SHA", "ECDHE-RSA-AES256-SHA")[i % 3]} a.example 443\n'
                   for i in range(start, start + n)).encode()


def ingest_file(logs: ClientLogStore, path: Path, batch_lines: int = 500_000) -> None:
    source = FileSource(path, logs.checkpoint(str(path)))
    try:
        run([source], Fold("nginx"), lambda b, m, p: logs.record(b, m, previous=p),
            previous={source.name: logs.checkpoint(source.name)}, batch_lines=batch_lines)
    finally:
        source.close()


def test_killed_during_a_batch_the_next_run_resumes_exactly(logs: ClientLogStore, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingester dies inside the third transaction (counts written, checkpoint not yet): the transaction is
    rolled back, the next run starts at the second batch's checkpoint, and the totals are exact."""
    log = tmp_path / "access.log"
    log.write_bytes(log_lines(40_000))
    calls = {"n": 0}
    real = ClientLogStore._move_checkpoints

    def dying(self: ClientLogStore, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt      # like a kill: not even an Error
        real(self, *args)                # type: ignore[arg-type]

    monkeypatch.setattr(ClientLogStore, "_move_checkpoints", dying)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(logs, log, batch_lines=1000)
    monkeypatch.undo()
    mark = logs.checkpoint(str(log))
    assert mark is not None and 0 < mark.line < 40_000
    assert logs.mix(None, *EVER).requests == mark.line
    ingest_file(logs, log, batch_lines=1000)
    with log.open("ab") as handle:
        handle.write(log_lines(100, start=40_000))
    ingest_file(logs, log)
    assert logs.mix(None, *EVER).requests == 40_100
    assert totals(logs) == {("a.example:443", "TLSv1.3", "TLS_AES_128_GCM_SHA256"): 13_367,
                            ("a.example:443", "TLSv1.2", "AES128-SHA"): 13_367,
                            ("a.example:443", "TLSv1.0", "ECDHE-RSA-AES256-SHA"): 13_366}
    legacy = logs.mix("a.example:443", *EVER, by_bucket=False).clients
    assert sum(c.requests for c in legacy) == 13_367 + 13_366, "TLS 1.3 is not itemised; the rest is, exactly"


def test_endpoints_and_their_legacy_share(logs: ClientLogStore) -> None:
    logs.record(mix_batch(("a:443", H0, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 6), ("a:443", H0, "TLSv1.0", "X", 1),
                          ("a:443", H0, "TLSv1.2", "AES128-SHA", 1),
                          ("a:443", H0, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 2),
                          ("*:80", H0, PLAIN, PLAIN, 50), ("b:443", H1, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 3)))
    assert logs.endpoints() == [("*:80", 50, 0.0), ("a:443", 10, 0.2), ("b:443", 3, 0.0)]
    assert logs.endpoints(since=H1) == [("b:443", 3, 0.0)]
    assert logs.endpoints(until=H1) == [("*:80", 50, 0.0), ("a:443", 10, 0.2)]


def test_prune_drops_old_buckets(logs: ClientLogStore, store: Store) -> None:
    key = ("a:443", H0, "TLSv1.0", "X")
    logs.record(IngestBatch(rows=(MixRow(*key, 3), MixRow("a:443", H1, "TLSv1.0", "X", 1)),
                            clients=clients(key, ua=3)))
    assert logs.prune(H1) == 1
    assert totals(logs) == {("a:443", "TLSv1.0", "X"): 1}
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ClientLogClientRow)).scalar_one() == 0


def test_text_round_trips(logs: ClientLogStore) -> None:
    key = ("xn--bcher-kva.example:8443", H0, "TLSv1.1", "ECDHE-ECDSA-AES128-SHA")
    agent = "Mozilla/5.0 (日本語; ü) 🙂 " + "x" * 200
    logs.record(IngestBatch(rows=(MixRow(*key, 1),), clients=(ClientRow(*key, agent, "2001:db8::/48", 1),)))
    assert logs.mix(key[0], *EVER).clients == (ClientRow(*key, agent, "2001:db8::/48", 1),)


def test_checkpoints_and_forget(logs: ClientLogStore) -> None:
    assert logs.checkpoint("/nope") is None and logs.checkpoints() == []
    marks = [Checkpoint("/b.log", 2, 20, 2, ""), Checkpoint("/a.log", 1, 10, 1, "ff")]
    logs.record(IngestBatch(), marks)
    assert logs.checkpoints() == sorted(marks, key=lambda m: m.source)
    assert logs.forget("/a.log") and not logs.forget("/a.log")
    assert logs.checkpoint("/a.log") is None
