"""How the CA records what it issues, on SQLite and PostgreSQL: concurrent ``issue()`` calls share commits (group
commit) yet every certificate is in the inventory, seen from another connection, before ``issue()`` returns it;
batches are atomic; a failing record is reported to its own caller only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import inspect

from tlsward.ca.authority import CertificateAuthority, IssueRequest
from tlsward.model.ca import IssuedRecord
from tlsward.model.errors import StorageError
from tlsward.storage import Store, open_store
from tlsward.storage.ca import CaStore, _Pending

THREADS, PER_THREAD = 8, 50
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _record(serial: int, authority: str = "ab" * 20) -> IssuedRecord:
    return IssuedRecord(authority=authority, serial=serial, subject="CN=a.example.test", names=("a.example.test",),
                        profile="server", key_type="ecdsa-p256", not_before=NOW, not_after=NOW + dt.timedelta(days=30),
                        issued_at=NOW, requester="test", sha256=f"{serial:064x}", der=b"\x30\x00")


@pytest.fixture
def cas(store: Store) -> CaStore:
    cas = CaStore(store)
    cas.ensure_authority("ab" * 20, name="Test", subject="CN=Test Intermediate", now=NOW)
    return cas


def test_concurrent_issues_are_all_recorded_before_they_return(tmp_path: Path, store: Store, db_url: str) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", store, name="Concurrent", passphrase=b"unit",
                                   root_passphrase=b"root")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued: list[list[x509.Certificate]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)
    with open_store(db_url) as other:   # another engine, other connections: what another process would see
        observer = CaStore(other)

        def worker(index: int) -> None:
            try:
                start.wait()
                for n in range(PER_THREAD):
                    cert = ca.issue(names=[f"host{index}-{n}.example.test"], public_key=key).certificate
                    seen = observer.get(ca.key_id, cert.serial_number)   # committed before issue() returned
                    assert seen is not None, f"serial {cert.serial_number:x} not in the inventory after issue()"
                    assert seen.der == cert.public_bytes(serialization.Encoding.DER)
                    assert seen.names == (f"host{index}-{n}.example.test",)
                    issued[index].append(cert)
            except BaseException as exc:   # re-raised in the main thread below
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not failures, failures[0]
        serials = [cert.serial_number for certs in issued for cert in certs]
        assert len(serials) == THREADS * PER_THREAD == len(set(serials))
        recorded = {record.serial for record in observer.certificates(ca.key_id)}
        assert recorded == set(serials)
    for certs in issued:
        for cert in certs:
            cert.verify_directly_issued_by(ca.intermediate)


def test_issue_many_is_one_transaction_beyond_one_statement(tmp_path: Path, store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", store, name="Batch", passphrase=b"unit", root_passphrase=b"r")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    requests = [IssueRequest(names=(f"b{n}.example.test",), public_key=key) for n in range(150)]
    batch = ca.issue_many(requests)
    assert {r.serial for r in ca.certificates()} == {c.serial for c in batch}
    assert ca.record(batch[-1].serial).names == ("b149.example.test",)


def test_a_failing_batch_records_nothing(cas: CaStore) -> None:
    records = [_record(n) for n in range(1, 150)]
    with pytest.raises(StorageError):
        cas.record_issued(*records, _record(5))   # the last one repeats a serial: the whole batch is refused
    assert cas.certificates(include_expired=True) == []
    cas.record_issued(*records)
    assert len(cas.certificates(include_expired=True)) == 149


def test_a_failure_in_a_shared_commit_reaches_its_caller_only(cas: CaStore) -> None:
    cas.record_issued(_record(1))
    writer = cas._record_writer()
    good, bad = _Pending([writer.row(_record(2)), writer.row(_record(3))]), _Pending([writer.row(_record(1))])
    writer._commit_group([good, bad])
    assert good.error is None and bad.error is not None
    assert {r.serial for r in cas.certificates(include_expired=True)} == {1, 2, 3}


def test_stored_values_read_back_as_written(cas: CaStore) -> None:
    record = dataclasses.replace(_record((1 << 158) + 1), names=("x.example.test", "10.0.0.1"), replaces=7,
                                 not_after=NOW + dt.timedelta(days=1, microseconds=5))
    cas.record_issued(record)
    assert cas.get(record.authority, record.serial) == record
    assert [r.serial for r in cas.certificates(now=NOW + dt.timedelta(days=1))] == [record.serial]
    assert cas.certificates(now=NOW + dt.timedelta(days=1, seconds=1)) == []


def test_the_writer_lets_go_of_its_connection_with_the_store(store: Store, db_url: str) -> None:
    del store   # (the fixture empties the PostgreSQL database; this test opens and closes its own store)
    with open_store(db_url) as store:
        cas = CaStore(store)
        cas.ensure_authority("ab" * 20, name="Test", subject="CN=Test Intermediate", now=NOW)
        cas.record_issued(_record(1))
        writer = cas._record_writer()
        assert (writer.connection is not None) == writer.sqlite   # SQLite: the writer's own, PostgreSQL: pooled
    assert writer.connection is None
    with open_store(db_url) as reopened:   # and what it wrote is there for the next process
        assert CaStore(reopened).get("ab" * 20, 1) is not None


def test_a_lone_caller_commits_in_its_own_thread_and_a_failure_leaves_the_writer_usable(cas: CaStore) -> None:
    cas.record_issued(_record(0x501))
    with pytest.raises(StorageError, match=r"(?i)unique|duplicate"):
        cas.record_issued(_record(0x501))   # the same serial again: refused, to this caller
    writer = cas._record_writer()
    assert not writer.writing and not writer.queue and not writer.signing
    with cas.issuing():
        cas.record_issued(_record(0x502))
    with pytest.raises(ValueError), cas.issuing():   # left without recording
        raise ValueError
    assert writer.signing == 0
    assert cas.get("ab" * 20, 0x502) is not None


def test_the_inventory_indexes_only_the_key_and_the_revoked_rows(store: Store) -> None:
    """Each index is a page written by every issuance: the key (authority, serial) and a partial index that holds
    revoked rows only; lookups by fingerprint still work (a scan)."""
    with store.engine.connect() as connection:
        indexes = inspect(connection).get_indexes("ca_certificate")
    assert [(i["name"], i["column_names"]) for i in indexes] == [("ix_ca_certificate_revoked_at", ["revoked_at"])]
    cas = CaStore(store)
    cas.ensure_authority("cd" * 20, name="Test", subject="CN=Test Intermediate", now=NOW)
    cas.record_issued(_record(0x601, "cd" * 20))
    found = cas.find(f"{0x601:064x}".upper())
    assert found is not None and found.serial == 0x601
